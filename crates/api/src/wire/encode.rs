//! JSON text as Go's encoding/json writes it (what upstream's apiserver sends): `<`, `>`, `&`,
//! U+2028 and U+2029 escaped as `\u003c`... inside strings; everything else as serde_json.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;
use serde_json::Value;

/// serde_json's compact formatter with Go's HTML-safe string escaping.
#[derive(Debug, Default, Clone, Copy)]
pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + Write,
    {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Appends the Go encoding of `value` to `out` (no trailing newline).
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    let mut ser = serde_json::Serializer::with_formatter(out, GoFormatter);
    // Writing a Value into memory cannot fail.
    let _ = value.serialize(&mut ser);
}

/// The Go encoding of `value` followed by a newline, as json.Encoder writes a response body.
pub fn to_body(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value);
    out.push(b'\n');
    out
}
