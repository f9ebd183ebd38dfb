//! Text helpers both sides print with: sizes, signed growth, percentages,
//! and names from a snapshot made safe for a terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The widest a name column grows: a longer name overflows its column
/// (pushing the rest of its row right) rather than widening every row,
/// and the formatter refuses widths from 65,536 on anyway.
pub const MAX_NAME_WIDTH: usize = 60;

/// Formats a byte count with binary units: `512 B`, `1.5 KiB`, `3.0 MiB`.
///
/// ```
/// use turbowish_snapshot::format::human_bytes;
/// assert_eq!(human_bytes(512), "512 B");
/// assert_eq!(human_bytes(3 << 20), "3.0 MiB");
/// ```
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A growth in bytes with its sign: `+1.5 KiB`, `-512 B`, `0 B`.
///
/// ```
/// use turbowish_snapshot::format::signed_bytes;
/// assert_eq!(signed_bytes(-512), "-512 B");
/// assert_eq!(signed_bytes(1536), "+1.5 KiB");
/// ```
pub fn signed_bytes(delta: i64) -> String {
    let magnitude = human_bytes(delta.unsigned_abs());
    match delta.signum() {
        1 => format!("+{magnitude}"),
        -1 => format!("-{magnitude}"),
        _ => magnitude,
    }
}

/// `new - old`, saturated to `i64`.
///
/// ```
/// use turbowish_snapshot::format::delta;
/// assert_eq!(delta(10, 4), -6);
/// assert_eq!(delta(0, u64::MAX), i64::MAX);
/// ```
pub fn delta(old: u64, new: u64) -> i64 {
    let d = i128::from(new) - i128::from(old);
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

/// `part` as a percentage of `whole` (0 when `whole` is 0).
///
/// ```
/// use turbowish_snapshot::format::percent;
/// assert_eq!(percent(1, 4), 25.0);
/// assert_eq!(percent(1, 0), 0.0);
/// ```
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// `part` as a share of `whole` for text, to one decimal (`"25.0%"`).
/// A part larger than its whole (totals in a snapshot that disagree with
/// its rows) shows as `">100%"`, not as an absurd figure.
///
/// ```
/// use turbowish_snapshot::format::share;
/// assert_eq!(share(1, 4), "25.0%");
/// assert_eq!(share(u64::MAX, 1), ">100%");
/// assert_eq!(share(1, 0), ">100%");
/// assert_eq!(share(0, 0), "0.0%");
/// ```
pub fn share(part: u64, whole: u64) -> String {
    if part > whole {
        ">100%".to_owned()
    } else {
        format!("{:.1}%", percent(part, whole))
    }
}

/// Whether a character from a snapshot is shown escaped (`\u{202e}`)
/// rather than as itself, wherever text from a snapshot goes (terminal,
/// error message, DOT, folded stacks, SVG, HTML): every control character
/// (C0, DEL and C1: an escape sequence, a NUL, a line break), Unicode's
/// line and paragraph separators (U+2028, U+2029: a line break to many
/// viewers and editors), its bidirectional-text controls (U+061C, U+200E,
/// U+200F, U+202A–U+202E, U+2066–U+2069: they reorder what a terminal
/// shows next to them), and the noncharacters (which XML refuses).
///
/// A backslash is no such character: a name that holds the text
/// `\u{1b}` itself is shown as is, looking like an escaped one.
///
/// ```
/// use turbowish_snapshot::format::shown_escaped;
/// assert!(shown_escaped('\u{1b}') && shown_escaped('\u{9b}') && shown_escaped('\u{202e}'));
/// assert!(!shown_escaped('a') && !shown_escaped('日'));
/// ```
pub fn shown_escaped(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
        || matches!(c as u32, 0xfdd0..=0xfdef)
        || (c as u32) & 0xfffe == 0xfffe
}

/// Text from a snapshot as every writer shows it: each character that
/// [`shown_escaped`] names is written as its Rust escape (`\u{1b}`), so a
/// snapshot cannot drive a terminal, reorder what it shows, start a second
/// line in an error message, or break a DOT, folded or XML file. This is
/// the one escaping function: the terminal, error messages, DOT, folded
/// stacks, the SVG and the HTML page all pass names through it (and add
/// their own quoting on top).
///
/// ```
/// use turbowish_snapshot::format::printable;
/// assert_eq!(printable("cache"), "cache");
/// assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
/// assert_eq!(printable("x\u{202e}y\nz"), "x\\u{202e}y\\u{a}z");
/// ```
pub fn printable(name: &str) -> Cow<'_, str> {
    escape(name, false)
}

/// [`printable`] for whole lines of output: line breaks and tabs stay (the
/// text's own layout); every other character [`shown_escaped`] names is
/// escaped. The CLI passes all of its text output through it, as a net
/// under the names already escaped.
///
/// ```
/// use turbowish_snapshot::format::printable_text;
/// assert_eq!(printable_text("a\tb\n\u{7}"), "a\tb\n\\u{7}");
/// ```
pub fn printable_text(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// [`printable`], appended to `out`.
pub fn push_printable(out: &mut String, name: &str) {
    out.push_str(&printable(name));
}

fn escape(s: &str, keep_layout: bool) -> Cow<'_, str> {
    let bad = |c: char| shown_escaped(c) && !(keep_layout && (c == '\n' || c == '\t'));
    let Some(first) = s.find(bad) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if bad(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `block` or `blocks`.
pub fn block_word(n: u64) -> &'static str {
    if n == 1 {
        "block"
    } else {
        "blocks"
    }
}

/// `one` when `n` is 1, else `many`.
pub fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_sizes_and_saturating_deltas() {
        assert_eq!(signed_bytes(1536), "+1.5 KiB");
        assert_eq!(signed_bytes(-512), "-512 B");
        assert_eq!(signed_bytes(0), "0 B");
        assert_eq!(signed_bytes(i64::MIN), "-8.0 EiB");
        assert_eq!(delta(0, u64::MAX), i64::MAX);
        assert_eq!(delta(u64::MAX, 0), i64::MIN);
        assert_eq!(delta(10, 4), -6);
        assert_eq!(percent(1, 0), 0.0);
        assert_eq!(percent(1, 4), 25.0);
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(printable("cache-filler"), "cache-filler");
        assert_eq!(printable("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\u{a}");
        assert_eq!(
            printable("\u{0}\u{7}\u{7f}\u{9b}"),
            "\\u{0}\\u{7}\\u{7f}\\u{9b}"
        );
        assert_eq!(
            printable("x\u{202e}y\u{2066}\u{200f}"),
            "x\\u{202e}y\\u{2066}\\u{200f}"
        );
        assert_eq!(
            printable("\u{fffe}\u{1ffff}\u{fdd0}"),
            "\\u{fffe}\\u{1ffff}\\u{fdd0}"
        );
        // The Arabic letter mark (a bidi control), the line and
        // paragraph separators.
        assert_eq!(
            printable("a\u{61c}b\u{2028}c\u{2029}d"),
            "a\\u{61c}b\\u{2028}c\\u{2029}d"
        );
        for c in ['\u{61c}', '\u{2028}', '\u{2029}', '\u{200e}', '\u{2069}'] {
            assert!(shown_escaped(c), "{c:?}");
        }
        // Their neighbours are text.
        for c in [
            '\u{61b}', '\u{61d}', '\u{2027}', '\u{202f}', '\u{2065}', '\u{206a}',
        ] {
            assert!(!shown_escaped(c), "{c:?}");
        }
        // A backslash is text: a name spelling an escape shows as is.
        assert_eq!(printable("a\\u{1b}b"), "a\\u{1b}b");
        assert_eq!(printable("naïve ✓ 日本 [u8; 4]"), "naïve ✓ 日本 [u8; 4]");
        assert_eq!(printable_text("a\n\tb\r"), "a\n\tb\\u{d}");
    }
}
