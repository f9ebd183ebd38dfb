// The page's only script: sorting, treemap modes and zoom. It reads the
// page through dataset and textContent only and never writes markup, so
// names from the snapshot stay text.
(function () {
  'use strict';

  function cellValue(row, key, numeric) {
    var cell = row.querySelector('td[data-key="' + key + '"]');
    if (!cell) return numeric ? 0 : '';
    if (numeric) return Number(cell.dataset.v || 0);
    return (cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent).toLowerCase();
  }

  // Stable: rows that compare equal keep their order.
  function sortTable(table, key, dir) {
    var th = table.tHead.querySelector('th[data-key="' + key + '"]');
    if (!th) return false;
    var numeric = th.dataset.type === 'num';
    if (dir !== 'asc' && dir !== 'desc') dir = numeric ? 'desc' : 'asc';
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      return { row: row, i: i, v: cellValue(row, key, numeric) };
    });
    var sign = dir === 'asc' ? 1 : -1;
    rows.sort(function (a, b) {
      if (a.v < b.v) return -sign;
      if (a.v > b.v) return sign;
      return a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    Array.prototype.forEach.call(table.tHead.querySelectorAll('th'), function (h) {
      h.removeAttribute('aria-sort');
    });
    th.setAttribute('aria-sort', dir === 'asc' ? 'ascending' : 'descending');
    table.dataset.sort = key + '-' + dir;
    return true;
  }

  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.querySelectorAll('th[data-key]'), function (th) {
      function go() {
        var current = th.getAttribute('aria-sort');
        var dir = current === 'descending' ? 'asc' : current === 'ascending' ? 'desc' : null;
        sortTable(table, th.dataset.key, dir);
      }
      th.addEventListener('click', go);
      th.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); }
      });
    });
  });

  // #sort=KEY or #sort=KEY-asc|desc sorts the task table on load.
  var match = /(?:^#|&)sort=([a-z]+)(?:-(asc|desc))?/.exec(location.hash);
  var tasks = document.getElementById('tasks');
  if (match && tasks) sortTable(tasks, match[1], match[2]);

  // Treemap: one mode shown at a time, one view of it at a time.
  var section = document.getElementById('treemap');
  if (section) {
    var back = section.querySelector('button.zoom-out');
    var crumb = section.querySelector('.crumb');
    var showView = function (view) {
      var mode = view.dataset.mode;
      Array.prototype.forEach.call(section.querySelectorAll('svg.treemap-view[data-mode="' + mode + '"]'), function (v) {
        // SVG elements have no `hidden` property: the attribute and the
        // stylesheet's [hidden] rule do it.
        if (v === view) v.removeAttribute('hidden'); else v.setAttribute('hidden', '');
      });
      var zoomed = view.dataset.back !== undefined;
      back.hidden = !zoomed;
      back.dataset.target = zoomed ? view.dataset.back : '';
      crumb.textContent = zoomed ? view.getAttribute('aria-label') : '';
    };
    Array.prototype.forEach.call(section.querySelectorAll('.modes button[data-mode]'), function (button) {
      button.addEventListener('click', function () {
        var mode = button.dataset.mode;
        Array.prototype.forEach.call(section.querySelectorAll('.modes button[data-mode]'), function (b) {
          b.setAttribute('aria-pressed', String(b === button));
        });
        Array.prototype.forEach.call(section.querySelectorAll('div.treemap-mode'), function (d) {
          d.hidden = d.dataset.mode !== mode;
        });
        var root = document.getElementById(mode + '-view-0');
        if (root) showView(root);
      });
    });
    section.addEventListener('click', function (e) {
      var target = e.target;
      if (!(target instanceof Element)) return;
      var group = target.closest('g.tile-group');
      if (!group) return;
      // A click on a site inside an owner zooms into the owner.
      var tile = group.querySelector('rect.tile');
      var owner = tile && tile.dataset.parent ? document.getElementById(tile.dataset.parent) : tile;
      var view = owner && owner.dataset.zoom ? document.getElementById(owner.dataset.zoom) : null;
      if (view) showView(view);
    });
    back.addEventListener('click', function () {
      var root = document.getElementById(back.dataset.target);
      if (root) showView(root);
    });

    // #mode=retained shows that treemap; #zoom=VIEW-ID one owner's view,
    // as clicking would (a link to a picture, and how the tests click).
    var mode = /(?:^#|&)mode=([a-z]+)/.exec(location.hash);
    var modeButton = mode && section.querySelector('.modes button[data-mode="' + mode[1] + '"]');
    if (modeButton) modeButton.click();
    var zoom = /(?:^#|&)zoom=([a-z]+-view-[0-9]+)/.exec(location.hash);
    var zoomed = zoom && document.getElementById(zoom[1]);
    if (zoomed && zoomed.classList.contains('treemap-view')) {
      var button = section.querySelector('.modes button[data-mode="' + zoomed.dataset.mode + '"]');
      if (button) button.click();
      showView(zoomed);
    }
  }

  document.body.dataset.ready = '1';
})();
