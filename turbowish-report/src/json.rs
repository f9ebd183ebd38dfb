//! JSON output (`--json`): streamed to the writer, never built as a
//! `serde_json::Value` first, with names made safe for a terminal.
//!
//! serde_json escapes the control characters below U+0020, but writes DEL,
//! the C1 controls (U+009B is a terminal's escape too), the bidi controls
//! and the noncharacters as they are. Here every character the shared
//! escaping ([`shown_escaped`]) names is written as a JSON `\uXXXX`
//! escape instead: the output decodes to the very same strings (JSON's
//! own escape, not the `\u{..}` of text output, so no data changes), and
//! no such character reaches the terminal raw.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use turbowish_snapshot::format::shown_escaped;

/// Writes `value` as pretty-printed JSON to `writer`, streaming (memory
/// does not grow with the output), with every character
/// [`shown_escaped`] names as a `\uXXXX` escape.
///
/// ```
/// let mut out = Vec::new();
/// turbowish_report::json::to_writer_pretty(&mut out, &["a\u{202e}b"]).unwrap();
/// assert_eq!(String::from_utf8(out).unwrap(), "[\n  \"a\\u202eb\"\n]");
/// ```
pub fn to_writer_pretty<W: Write, T: Serialize + ?Sized>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(writer, SafeFormatter::default());
    value.serialize(&mut ser)
}

/// serde_json's pretty formatter, with [`shown_escaped`] characters
/// escaped in strings.
#[derive(Debug, Default)]
struct SafeFormatter {
    pretty: PrettyFormatter<'static>,
}

impl Formatter for SafeFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(shown_escaped) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.begin_array(writer)
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.end_array(writer)
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_array_value(writer, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.end_array_value(writer)
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.begin_object(writer)
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.pretty.begin_object_key(writer, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.pretty.end_object_value(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(value: &impl Serialize) -> String {
        let mut out = Vec::new();
        to_writer_pretty(&mut out, value).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_what_serde_json_leaves_raw_and_round_trips() {
        let name = "a\u{1b}[2J\u{7f}\u{9b}\u{202e}\u{2066}\u{fffe}\u{1ffff}\"\\\n日";
        let text = json(&serde_json::json!({ "name": name }));
        assert_eq!(
            text,
            "{\n  \"name\": \"a\\u001b[2J\\u007f\\u009b\\u202e\\u2066\\ufffe\\ud83f\\udfff\\\"\\\\\\n日\"\n}"
        );
        assert!(!text.chars().any(|c| c != '\n' && shown_escaped(c)));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["name"], name);
    }

    #[test]
    fn layout_is_serde_jsons_pretty_layout() {
        let value = serde_json::json!({"a": [1, {"b": []}], "c": {}});
        assert_eq!(json(&value), serde_json::to_string_pretty(&value).unwrap());
    }
}
