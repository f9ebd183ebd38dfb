//! Text helpers both sides print with: sizes, signed growth, percentages,
//! and names from a snapshot made safe for a terminal.

use std::borrow::Cow;

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

/// A name from a snapshot as shown on a terminal: control characters (an
/// escape sequence in a task's name, a NUL, a line break) are shown
/// escaped (`\u{1b}`), not sent to the terminal. (The CLI also escapes
/// bidi controls where it prints.)
///
/// ```
/// use turbowish_snapshot::format::printable;
/// assert_eq!(printable("cache"), "cache");
/// assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
/// ```
pub fn printable(name: &str) -> Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return Cow::Borrowed(name);
    }
    name.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
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
    }
}
