//! Go's formatting where clients see it: `%q` of a string (`strconv.Quote`) and of a
//! `[]string`, and the text of `utilerrors.NewAggregate` (apimachinery's
//! `pkg/util/errors/errors.go`), so RBAC messages read byte for byte as upstream's.

use std::fmt::Write as _;

/// `fmt.Sprintf("%q", s)`: double-quoted with Go escapes (`\"`, `\\`, `\n`, `\x01`, `\u00a0`).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if !is_go_printable(c) => {
                if (c as u32) <= 0xffff {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `fmt.Sprintf("%q", list)` for a `[]string`: `["a" "b"]`, `[]` when empty.
pub fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s.as_ref())).collect();
    format!("[{}]", quoted.join(" "))
}

/// The message of `utilerrors.NewAggregate(errs)`: one message alone, several distinct ones
/// as `[a, b]` (duplicates dropped, first occurrence kept), "" for none.
pub fn aggregate<S: AsRef<str>>(messages: &[S]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for message in messages {
        let message = message.as_ref();
        if !seen.contains(&message) {
            seen.push(message);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen[0].to_string(),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// Approximates Go's `unicode.IsPrint` for characters `strconv.Quote` keeps as they are:
/// letters, marks, numbers, punctuation, symbols and the ASCII space, but not other spaces,
/// controls or format characters.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0x00ad | 0x0600..=0x0605 | 0x061c | 0x06dd | 0x070f | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f
        | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xfff0..=0xfff8 | 0xfffe | 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_like_go_strconv_quote() {
        assert_eq!(quote("alice"), r#""alice""#);
        assert_eq!(quote(""), r#""""#);
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("a\nb\tc\u{1}"), r#""a\nb\tc\x01""#);
        assert_eq!(quote("é日本"), "\"é日本\"");
        assert_eq!(quote("a\u{a0}b\u{200b}"), r#""a\u00a0b\u200b""#);
        assert_eq!(quote("\u{7f}"), r#""\x7f""#);
    }

    #[test]
    fn quote_list_is_go_percent_q_of_a_slice() {
        assert_eq!(quote_list::<&str>(&[]), "[]");
        assert_eq!(
            quote_list(&["system:authenticated"]),
            r#"["system:authenticated"]"#
        );
        assert_eq!(quote_list(&["a", "b c"]), r#"["a" "b c"]"#);
    }

    #[test]
    fn aggregate_matches_utilerrors() {
        assert_eq!(aggregate::<&str>(&[]), "");
        assert_eq!(aggregate(&["x"]), "x");
        assert_eq!(aggregate(&["x", "x"]), "x");
        assert_eq!(aggregate(&["x", "y", "x"]), "[x, y]");
    }
}
