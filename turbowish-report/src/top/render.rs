//! Drawing the viewer: a header, the task table with a sparkline of each
//! row's live bytes, the resource pane, the status line and the keys.

use std::borrow::Cow;

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::Frame;
use turbowish_snapshot::format::{human_bytes, printable, signed_bytes};
use turbowish_snapshot::live::{LiveParty, LiveResource};
use turbowish_snapshot::schema::{Provenance, TaskRef};

use super::app::App;
use super::model::{Model, SortKey, TaskRow};

/// The eight heights of a sparkline's bars, lowest first (a row with no
/// live bytes draws a space).
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Widths of the task table's fixed columns, after TASK and before the
/// sparkline.
const FIXED: [(&str, u16, Option<SortKey>); 9] = [
    ("ID", 6, None),
    ("STATE", 9, None),
    ("LIVE", 10, Some(SortKey::Live)),
    ("BLOCKS", 8, Some(SortKey::Blocks)),
    ("GROWTH", 11, Some(SortKey::Growth)),
    ("ALLOC/S", 11, Some(SortKey::AllocRate)),
    ("POLLS", 7, Some(SortKey::Polls)),
    ("BUSY", 8, Some(SortKey::Busy)),
    ("RESOURCES", 18, None),
];

/// The narrowest the TASK column and the sparkline get before the
/// RESOURCES column makes way.
const MIN_NAME: u16 = 16;
const MIN_SPARK: u16 = 8;

/// Most resource lines the pane shows.
const RESOURCE_LINES: usize = 6;

/// Draws the whole screen.
pub fn render(app: &mut App, frame: &mut Frame<'_>) {
    let pane = app.shown().resources.len().clamp(1, RESOURCE_LINES) as u16 + 3;
    let [header, summary, tasks, pane_area, status, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(pane),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    frame.render_widget(Paragraph::new(header_line(app.shown())), header);
    frame.render_widget(Paragraph::new(summary_line(app)), summary);
    render_tasks(app, frame, tasks);
    render_resources(&resource_lines(app.shown()), frame, pane_area);
    let status_text = if app.editing {
        format!(
            " filter: {}▏ (Enter keeps it, Esc clears it)",
            safe(&app.filter)
        )
    } else {
        format!(" {}", safe(&app.status))
    };
    frame.render_widget(Paragraph::new(status_text), status);
    frame.render_widget(
        Paragraph::new(" q quit  s snapshot  p pause  / filter  ←→ sort  r reverse  ↑↓ select")
            .style(Style::new().add_modifier(Modifier::DIM)),
        keys,
    );
}

fn header_line(model: &Model) -> String {
    format!(
        " turbowish top · pid {} · {} · update {}",
        model.hello.pid,
        safe(&model.hello.executable),
        model.seq
    )
}

fn summary_line(app: &App) -> String {
    let model = app.shown();
    let mut line = format!(
        " live {} in {} blocks · allocating {}/s · {} rows · sorted by {} {}",
        human_bytes(model.totals.live_bytes),
        model.totals.live_blocks,
        human_bytes(model.totals.alloc_rate),
        model.rows.len(),
        app.sort.label(),
        if app.descending { "↓" } else { "↑" }
    );
    if !app.filter.is_empty() {
        line.push_str(&format!(" · filter \"{}\"", safe(&app.filter)));
    }
    if app.paused() {
        line.push_str(" · PAUSED");
    }
    line
}

fn render_tasks(app: &mut App, frame: &mut Frame<'_>, area: Rect) {
    let inner_width = area.width.saturating_sub(2);
    let width_of = |cols: &[(&str, u16, Option<SortKey>)]| -> u16 {
        cols.iter().map(|c| c.1 + 1).sum::<u16>() + 1
    };
    // Narrow terminals lose the RESOURCES column (the pane below still
    // names holders and waiters) before TASK and the sparkline get tight.
    let fixed: &[(&str, u16, Option<SortKey>)] =
        if inner_width >= width_of(&FIXED) + MIN_NAME + MIN_SPARK {
            &FIXED
        } else {
            &FIXED[..FIXED.len() - 1]
        };
    let spark = inner_width
        .saturating_sub(width_of(fixed) + 20)
        .clamp(MIN_SPARK, 60);
    let arrow = if app.descending { "▼" } else { "▲" };
    let title = |name: &str, key: Option<SortKey>| -> String {
        if key == Some(app.sort) {
            format!("{name}{arrow}")
        } else {
            name.to_owned()
        }
    };
    let mut header = vec![Cell::from(title("TASK", Some(SortKey::Name)))];
    header.extend(fixed.iter().enumerate().map(|(i, (name, _, key))| {
        let text = title(name, *key);
        // Figures are right-aligned, and so are their titles.
        if (2..8).contains(&i) {
            Cell::from(Line::from(text).alignment(Alignment::Right))
        } else {
            Cell::from(text)
        }
    }));
    header.push(Cell::from("LIVE BYTES"));

    let model = app.shown();
    let rows: Vec<Row<'static>> = app
        .rows()
        .into_iter()
        .map(|r| task_row(model, r, fixed.len() == FIXED.len(), spark as usize))
        .collect();
    let count = rows.len();
    let shown = if count == model.rows.len() {
        format!(" Tasks ({count}) ")
    } else {
        format!(" Tasks ({count} of {} shown) ", model.rows.len())
    };
    let mut widths = vec![Constraint::Fill(1)];
    widths.extend(fixed.iter().map(|c| Constraint::Length(c.1)));
    widths.push(Constraint::Length(spark));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(Block::bordered().title(shown));
    if app.table.selected().is_some_and(|s| s >= count) {
        app.table.select(Some(count.saturating_sub(1)));
    }
    frame.render_stateful_widget(table, area, &mut app.table);
}

fn task_row(model: &Model, r: &TaskRow, resources: bool, spark: usize) -> Row<'static> {
    let right = |s: String| Cell::from(Line::from(s).alignment(Alignment::Right));
    let mut cells = vec![
        Cell::from(safe(&r.name).into_owned()),
        Cell::from(r.id().map_or_else(|| "-".to_owned(), |id| id.to_string())),
        Cell::from(r.state.map_or("-", |s| s.name())),
        right(human_bytes(r.live_bytes)),
        right(r.live_blocks.to_string()),
        right(signed_bytes(r.growth)),
        right(format!("{}/s", human_bytes(r.alloc_rate))),
        // Only TurboWish tasks count polls.
        right(
            r.state
                .map_or_else(|| "-".to_owned(), |_| r.polls.to_string()),
        ),
        right(
            r.state
                .map_or_else(|| "-".to_owned(), |_| duration(r.busy_ns)),
        ),
    ];
    if resources {
        cells.push(Cell::from(resource_cell(model, r)));
    }
    cells.push(Cell::from(sparkline(&r.history, spark)));
    Row::new(cells)
}

/// What a task waits for (first), else what it holds.
fn resource_cell(model: &Model, r: &TaskRow) -> String {
    let (holds, waits) = model.resources_of(r.owner);
    if let Some(w) = waits.first() {
        format!("waits {}", safe(&w.name))
    } else {
        match holds.as_slice() {
            [] => String::new(),
            [one] => format!("holds {}", safe(&one.name)),
            many => format!("holds {}", many.len()),
        }
    }
}

/// The last `width` values of `history` as bars scaled to their own
/// highest (a row's shape, not its size: LIVE gives the size).
pub fn sparkline(history: &std::collections::VecDeque<u64>, width: usize) -> String {
    let shown: Vec<u64> = history
        .iter()
        .skip(history.len().saturating_sub(width))
        .copied()
        .collect();
    let max = shown.iter().copied().max().unwrap_or(0);
    shown
        .iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                ' '
            } else {
                // 1..=8, highest at the maximum.
                let level = (u128::from(v) * 8).div_ceil(u128::from(max)) as usize;
                BARS[level.clamp(1, 8) - 1]
            }
        })
        .collect()
}

/// One line per busy resource, longest wait first.
fn resource_lines(model: &Model) -> Vec<&LiveResource> {
    let mut lines: Vec<&LiveResource> = model.resources.iter().collect();
    let longest = |r: &LiveResource| r.waiters.iter().map(|w| w.since_ms).max().unwrap_or(0);
    lines.sort_by(|a, b| longest(b).cmp(&longest(a)).then(a.id.cmp(&b.id)));
    lines
}

fn render_resources(lines: &[&LiveResource], frame: &mut Frame<'_>, area: Rect) {
    let block = Block::bordered().title(format!(" Resources ({} held or awaited) ", lines.len()));
    if lines.is_empty() {
        frame.render_widget(
            Paragraph::new(" no resource has a holder or a waiter").block(block),
            area,
        );
        return;
    }
    let rows: Vec<Row<'static>> = lines
        .iter()
        .take(RESOURCE_LINES)
        .map(|r| {
            let mut held = parties(&r.holders, true);
            if r.extra_holders > 0 {
                held.push_str(&format!(" and {} more", r.extra_holders));
            }
            Row::new(vec![
                Cell::from(format!("{} \"{}\"", safe(r.kind.name()), safe(&r.name))),
                Cell::from(held),
                Cell::from(parties(&r.waiters, false)),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        // Holders say where they come from, so they get as much room as
        // the waiters; on a narrow terminal the resource's name makes way
        // first.
        [
            Constraint::Length((area.width.saturating_sub(2) / 4).clamp(16, 28)),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ],
    )
    .header(
        Row::new(["RESOURCE", "HELD BY (FOR)", "WAITING (FOR)"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .column_spacing(1)
    .block(block);
    frame.render_widget(table, area);
}

/// `name #id 2.5s` for each party; with `from`, where each comes from
/// before the time: `worker #5 owns 2.5s`, `transfer #2 recorded 2.5s`.
fn parties(list: &[LiveParty], from: bool) -> String {
    if list.is_empty() {
        return "-".to_owned();
    }
    list.iter()
        .map(|p| {
            let id = match p.task {
                TaskRef::Task(id) => format!(" #{id}"),
                TaskRef::TokioTask(_) | TaskRef::Thread(_) => String::new(),
            };
            let from = if from {
                format!(" {}", provenance(&p.provenance))
            } else {
                String::new()
            };
            format!(
                "{}{id}{from} {}",
                safe(&p.task_name),
                duration(p.since_ms.saturating_mul(1_000_000))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a holder comes from, in a word: `owns` (the task's state owns
/// the handle, found by the program's ownership scan), `recorded` (the
/// record of who took the guard, or created, cloned or last used the
/// channel end), `tokio` (tokio's own instrumentation).
fn provenance(p: &Provenance) -> &'static str {
    match p {
        Provenance::Owns { .. } => "owns",
        Provenance::Recorded => "recorded",
        Provenance::Tokio => "tokio",
    }
}

/// A duration for a narrow column: `850µs`, `4.2ms`, `35ms`, `2.5s`,
/// `3m07s`, `2h05m`.
pub fn duration(ns: u64) -> String {
    let us = ns / 1_000;
    let ms = ns / 1_000_000;
    let s = ms / 1000;
    match ns {
        _ if ns < 1_000_000 => format!("{us}µs"),
        _ if ns < 10_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        _ if ns < 1_000_000_000 => format!("{ms}ms"),
        _ if s < 60 => format!("{:.1}s", ns as f64 / 1e9),
        _ if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

/// A name from the program as the terminal may show it: control and
/// bidirectional-text characters escaped (`\u{1b}`).
fn safe(name: &str) -> Cow<'_, str> {
    printable(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::app::App;
    use crate::top::model::tests::{bank, hello};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::collections::VecDeque;

    fn screen(app: &mut App, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| render(app, f)).unwrap();
        let buffer = terminal.backend().buffer();
        // The selected row (the first) is reversed; the header is bold.
        assert!(buffer[(1, 4)].modifier.contains(Modifier::REVERSED));
        assert!(!buffer[(1, 5)].modifier.contains(Modifier::REVERSED));
        assert!(buffer[(1, 3)].modifier.contains(Modifier::BOLD));
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn the_screen_is_exactly_this() {
        let mut app = App::new(hello());
        app.model = bank();
        app.status = "snapshot written: /var/tmp/tw/turbowish-4242-1.json".to_owned();
        let found = screen(&mut app, 140, 18);
        let expected = [
            " turbowish top · pid 4242 · /srv/bank/bin/bank-service · update 2",
            " live 6.1 MiB in 6229 blocks · allocating 4.0 MiB/s · 5 rows · sorted by live ↓",
            "┌ Tasks (5) ───────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┐",
            "│TASK                 ID     STATE          LIVE▼   BLOCKS      GROWTH     ALLOC/S   POLLS     BUSY RESOURCES          LIVE BYTES          │",
            "│session-cache        1      idle         6.0 MiB     6144    +2.0 MiB   4.0 MiB/s    1536     62ms holds audit        ▆█                  │",
            "│transfer             2      idle        64.0 KiB       64         0 B       0 B/s      16    655µs holds 2            ██                  │",
            "│main (outside tasks) -      -           20.0 KiB       20         0 B       0 B/s       -        -                    ██                  │",
            "│reader-1             3      idle         2.0 KiB        2         0 B       0 B/s       0     20µs waits ledger       ██                  │",
            "│reader-2             4      idle         1.0 KiB        1         0 B       0 B/s       0     10µs waits ledger       ██                  │",
            "│                                                                                                                                          │",
            "└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘",
            "┌ Resources (2 held or awaited) ───────────────────────────────────────────────────────────────────────────────────────────────────────────┐",
            "│RESOURCE                     HELD BY (FOR)                                          WAITING (FOR)                                         │",
            "│Mutex \"ledger\"               transfer #2 recorded 2.5s                              reader-1 #3 2.1s, reader-2 #4 300ms                   │",
            "│Channel \"audit\"              session-cache #1 owns 5.2s, transfer #2 recorded 5.2s  -                                                     │",
            "└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘",
            " snapshot written: /var/tmp/tw/turbowish-4242-1.json",
            " q quit  s snapshot  p pause  / filter  ←→ sort  r reverse  ↑↓ select",
        ];
        assert_eq!(found, expected, "found:\n{}", found.join("\n"));
    }

    #[test]
    fn paused_filtered_and_narrow_the_screen_is_exactly_this() {
        use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let mut app = App::new(hello());
        app.model = bank();
        app.model.resources.clear();
        for code in [KeyCode::Char('p'), KeyCode::Right, KeyCode::Right] {
            app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
        }
        for c in "/read".chars() {
            app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
        let found = screen(&mut app, 112, 12);
        let expected = [
            " turbowish top · pid 4242 · /srv/bank/bin/bank-service · update 2",
            " live 6.1 MiB in 6229 blocks · allocating 4.0 MiB/s · 5 rows · sorted by growth ↓ · filter \"read\" · PAUSED",
            "┌ Tasks (2 of 5 shown) ────────────────────────────────────────────────────────────────────────────────────────┐",
            "│TASK                 ID     STATE           LIVE   BLOCKS     GROWTH▼     ALLOC/S   POLLS     BUSY LIVE BYTES │",
            "│reader-1             3      idle         2.0 KiB        2         0 B       0 B/s       0     20µs ██         │",
            "└──────────────────────────────────────────────────────────────────────────────────────────────────────────────┘",
            "┌ Resources (0 held or awaited) ───────────────────────────────────────────────────────────────────────────────┐",
            "│ no resource has a holder or a waiter                                                                         │",
            "│                                                                                                              │",
            "└──────────────────────────────────────────────────────────────────────────────────────────────────────────────┘",
            " filter: read▏ (Enter keeps it, Esc clears it)",
            " q quit  s snapshot  p pause  / filter  ←→ sort  r reverse  ↑↓ select",
        ];
        assert_eq!(found, expected, "found:\n{}", found.join("\n"));
    }

    #[test]
    fn on_a_narrow_terminal_the_pane_keeps_its_columns() {
        let mut app = App::new(hello());
        app.model = bank();
        let found = screen(&mut app, 100, 14);
        let expected = [
            " turbowish top · pid 4242 · /srv/bank/bin/bank-service · update 2",
            " live 6.1 MiB in 6229 blocks · allocating 4.0 MiB/s · 5 rows · sorted by live ↓",
            "┌ Tasks (5) ───────────────────────────────────────────────────────────────────────────────────────┐",
            "│TASK        ID     STATE          LIVE▼   BLOCKS      GROWTH     ALLOC/S   POLLS     BUSY LIVE BYT│",
            "│session-cac 1      idle         6.0 MiB     6144    +2.0 MiB   4.0 MiB/s    1536     62ms ▆█      │",
            "│transfer    2      idle        64.0 KiB       64         0 B       0 B/s      16    655µs ██      │",
            "└──────────────────────────────────────────────────────────────────────────────────────────────────┘",
            "┌ Resources (2 held or awaited) ───────────────────────────────────────────────────────────────────┐",
            "│RESOURCE                 HELD BY (FOR)                        WAITING (FOR)                       │",
            "│Mutex \"ledger\"           transfer #2 recorded 2.5s            reader-1 #3 2.1s, reader-2 #4 300ms │",
            "│Channel \"audit\"          session-cache #1 owns 5.2s, transfer -                                   │",
            "└──────────────────────────────────────────────────────────────────────────────────────────────────┘",
            "",
            " q quit  s snapshot  p pause  / filter  ←→ sort  r reverse  ↑↓ select",
        ];
        assert_eq!(found, expected, "found:\n{}", found.join("\n"));
    }

    #[test]
    fn sparklines_scale_to_their_own_highest() {
        let h: VecDeque<u64> = [0, 1, 2, 4, 8].into_iter().collect();
        assert_eq!(sparkline(&h, 10), " ▁▂▄█");
        assert_eq!(sparkline(&h, 3), "▂▄█");
        let flat: VecDeque<u64> = [5, 5].into_iter().collect();
        assert_eq!(sparkline(&flat, 4), "██");
        assert_eq!(sparkline(&VecDeque::new(), 4), "");
        let huge: VecDeque<u64> = [u64::MAX, 1].into_iter().collect();
        assert_eq!(sparkline(&huge, 2), "█▁");
    }

    #[test]
    fn durations_fit_a_narrow_column() {
        assert_eq!(duration(850_000), "850µs");
        assert_eq!(duration(4_200_000), "4.2ms");
        assert_eq!(duration(35_000_000), "35ms");
        assert_eq!(duration(2_500_000_000), "2.5s");
        assert_eq!(duration(187_000_000_000), "3m07s");
        assert_eq!(duration(7_500_000_000_000), "2h05m");
        assert_eq!(duration(u64::MAX), "5124095h34m");
    }

    #[test]
    fn a_resource_kind_from_the_wire_is_shown_escaped() {
        // A declared or tokio kind is the program's text, as a name is.
        use turbowish_snapshot::schema::ResourceKind;
        let mut app = App::new(hello());
        app.model = bank();
        app.model.resources[0].kind = ResourceKind::Declared("p\u{1b}[2J\u{202e}".to_owned());
        let found = screen(&mut app, 140, 18);
        assert!(
            found
                .iter()
                .any(|l| l.starts_with("│p\\u{1b}[2J\\u{202e} \"ledger\"")),
            "found:\n{}",
            found.join("\n")
        );
        assert!(
            !found
                .iter()
                .any(|l| l.contains('\u{1b}') || l.contains('\u{202e}')),
            "found:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn names_cannot_drive_the_terminal() {
        assert_eq!(safe("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(safe("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(safe("plain"), "plain");
    }
}
