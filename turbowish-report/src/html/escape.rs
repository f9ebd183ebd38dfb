//! The one way text from a snapshot enters the page.
//!
//! Task, resource and frame names come from the program that was profiled,
//! so they are untrusted: a task may be named `<script>alert(1)</script>`.
//! Every such string passes [`text`] on its way into element content or an
//! attribute value, and the page's script only ever reads it back through
//! `textContent` and `dataset`, never as markup.

use turbowish_snapshot::format::printable;

/// `s` as HTML text that is safe both as element content and inside a
/// double- or single-quoted attribute value. Control characters and the
/// bidirectional-text controls are shown escaped (`\u{202e}`) by
/// [`printable`], the escaping every writer shares, as the terminal output
/// shows them, so a name cannot reorder or hide what the page shows next
/// to it.
pub(crate) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    push_text(&mut out, s);
    out
}

/// [`text`], appended to `out`.
pub(crate) fn push_text(out: &mut String, s: &str) {
    for c in printable(s).chars() {
        push_markup_char(out, c);
    }
}

/// Markup we made ourselves (a whole document for an `<iframe srcdoc>`)
/// as an attribute value: only the characters that could end the value or
/// start a tag are replaced, so its line breaks survive. Names inside it
/// must already be escaped for that markup.
pub(crate) fn push_markup_attribute(out: &mut String, markup: &str) {
    for c in markup.chars() {
        push_markup_char(out, c);
    }
}

/// `c`, or its character reference when it could end an attribute value
/// or start a tag.
fn push_markup_char(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c => out.push(c),
    }
}

/// At most `n` characters of `s`, with `…` when cut (labels that must fit
/// a tile or a box; the full name is in its tooltip).
pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_name_stays_text() {
        assert_eq!(
            text("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(text("a\"b'c&d"), "a&quot;b&#39;c&amp;d");
    }

    #[test]
    fn controls_and_bidi_are_shown_not_obeyed() {
        assert_eq!(text("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\u{a}");
        assert_eq!(text("x\u{202e}y\u{2066}"), "x\\u{202e}y\\u{2066}");
        assert_eq!(
            text("\u{fffe}\u{1ffff}\u{fdd0}"),
            "\\u{fffe}\\u{1ffff}\\u{fdd0}"
        );
        assert_eq!(text("naïve ✓ 日本"), "naïve ✓ 日本");
    }
}
