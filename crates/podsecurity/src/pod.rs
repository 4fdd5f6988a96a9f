//! Reading a pod's metadata and spec from JSON, and the message helpers, as upstream's
//! `staging/src/k8s.io/pod-security-admission/policy/{visitor.go,helpers.go}` define them
//! (`visitContainers`, `joinQuote`, `pluralize`), plus Go's `%q` (`strconv.Quote`).
//!
//! Upstream reads typed Go structs. Here every read is total over hostile JSON: a missing or
//! `null` field is Go's zero value / nil pointer, a field of the wrong type never panics, and
//! where a check must decide whether a wrongly-typed value is allowed it fails closed (the
//! value counts as the forbidden one). The apiserver's schema validation rejects such pods
//! before admission anyway; this only keeps the checks safe on their own.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// The object at `v[key]`, if it is a JSON object (a nil pointer otherwise).
pub(crate) fn object<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| x.is_object())
}

/// Whether `v[key]` is set (present and not `null`), whatever its type: how a volume source
/// or an annotation counts as present.
pub(crate) fn is_set(v: &Value, key: &str) -> bool {
    v.get(key).is_some_and(|x| !x.is_null())
}

/// The array at `v[key]`; empty when missing, `null` or not an array.
pub(crate) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A JSON value as a Go string: strings as they are, any other value as its JSON text (which
/// is never one of the allowed values a check compares against).
pub(crate) fn text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.to_string()),
    }
}

/// The string at `v[key]`: `None` when missing or `null`, otherwise [`text`].
pub(crate) fn string<'a>(v: &'a Value, key: &str) -> Option<Cow<'a, str>> {
    v.get(key).filter(|x| !x.is_null()).map(text)
}

/// The string at `v[key]`, or Go's zero value `""`.
pub(crate) fn string_or_empty<'a>(v: &'a Value, key: &str) -> Cow<'a, str> {
    string(v, key).unwrap_or(Cow::Borrowed(""))
}

/// The `*bool` at `v[key]`: `None` when missing or `null`; a value that is not a boolean reads
/// as `unsafe_value`, the value the calling check forbids.
pub(crate) fn flag(v: &Value, key: &str, unsafe_value: bool) -> Option<bool> {
    match v.get(key)? {
        Value::Null => None,
        Value::Bool(b) => Some(*b),
        _ => Some(unsafe_value),
    }
}

/// Whether the integer at `v[key]` is set and zero. A non-numeric value counts as zero (the
/// value `runAsUser` forbids).
pub(crate) fn is_zero(v: &Value, key: &str) -> bool {
    match v.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(_) => true,
    }
}

/// A container's name (`""` when missing).
pub(crate) fn name(container: &Value) -> Cow<'_, str> {
    string_or_empty(container, "name")
}

/// Every container in upstream's `visitContainers` order: `initContainers`, `containers`,
/// then `ephemeralContainers`.
pub(crate) fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    list(spec, "initContainers")
        .iter()
        .chain(list(spec, "containers"))
        .chain(list(spec, "ephemeralContainers"))
}

/// A container's (or the pod's) `securityContext`, if it is an object.
pub(crate) fn security_context(v: &Value) -> Option<&Value> {
    object(v, "securityContext")
}

/// The pod's annotations, if they are an object.
pub(crate) fn annotations(meta: &Value) -> Option<&Map<String, Value>> {
    meta.get("annotations").and_then(Value::as_object)
}

/// Whether `spec.os.name` is `windows`.
pub(crate) fn is_windows(spec: &Value) -> bool {
    object(spec, "os").is_some_and(|os| string(os, "name").as_deref() == Some("windows"))
}

/// Whether the pod asks for a user namespace (`spec.hostUsers: false`).
pub(crate) fn in_user_namespace(spec: &Value) -> bool {
    spec.get("hostUsers").and_then(Value::as_bool) == Some(false)
}

/// Upstream's `joinQuote`: `"a", "b"` (no escaping), empty for no items.
pub(crate) fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut out = String::from("\"");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str("\", \"");
        }
        out.push_str(item.as_ref());
    }
    out.push('"');
    out
}

/// Upstream's `pluralize`: the singular for a count of exactly one.
pub(crate) fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 {
        singular
    } else {
        plural
    }
}

/// `"<items joined>"` preceded by `container`/`containers`: the setter phrase the checks share.
pub(crate) fn containers_phrase<S: AsRef<str>>(names: &[S]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// Go's `%q` for a string (`strconv.Quote`): `\a \b \f \n \r \t \v \\ \"` escaped, other
/// control bytes as `\xNN`, other non-printable runes as `\uNNNN` / `\UNNNNNNNN`.
///
/// Go's `unicode.IsPrint` is approximated: control, separator (other than U+0020), format and
/// private-use characters and noncharacters are escaped; unassigned code points are printed
/// as they are.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_chars = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F);
    let private_use = matches!(u, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let nonchar = (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE;
    !(format_chars || private_use || nonchar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn join_quote_and_pluralize() {
        assert_eq!(join_quote::<&str>(&[]), "");
        assert_eq!(join_quote(&["a"]), "\"a\"");
        assert_eq!(join_quote(&["a", "b", "c"]), "\"a\", \"b\", \"c\"");
        assert_eq!(pluralize("x", "xs", 1), "x");
        assert_eq!(pluralize("x", "xs", 0), "xs");
        assert_eq!(pluralize("x", "xs", 2), "xs");
        assert_eq!(containers_phrase(&["a", "b"]), "containers \"a\", \"b\"");
    }

    #[test]
    fn go_quote_like_strconv_quote() {
        assert_eq!(go_quote("bogus"), "\"bogus\"");
        assert_eq!(go_quote(""), "\"\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            go_quote("\n\t\r\u{7}\u{8}\u{c}\u{b}"),
            "\"\\n\\t\\r\\a\\b\\f\\v\""
        );
        assert_eq!(go_quote("\u{1}\u{7f}"), "\"\\x01\\x7f\"");
        assert_eq!(
            go_quote("\u{85}\u{a0}\u{200b}"),
            "\"\\u0085\\u00a0\\u200b\""
        );
        assert_eq!(go_quote("héllo 世界 ✓"), "\"héllo 世界 ✓\"");
        assert_eq!(go_quote("\u{10ffff}"), "\"\\U0010ffff\"");
    }

    #[test]
    fn containers_in_upstream_order() {
        let spec = json!({
            "containers": [{"name": "c"}],
            "ephemeralContainers": [{"name": "e"}],
            "initContainers": [{"name": "i"}, {"name": "j"}],
        });
        let names: Vec<_> = containers(&spec).map(|c| name(c).into_owned()).collect();
        assert_eq!(names, ["i", "j", "c", "e"]);
    }

    #[test]
    fn reads_are_total() {
        let v = json!({"a": "x", "b": 5, "c": null, "d": [1], "e": {"k": 1}, "f": true});
        assert_eq!(string(&v, "a").as_deref(), Some("x"));
        assert_eq!(string(&v, "b").as_deref(), Some("5"));
        assert_eq!(string(&v, "c"), None);
        assert_eq!(string_or_empty(&v, "zz"), "");
        assert_eq!(list(&v, "d").len(), 1);
        assert!(list(&v, "a").is_empty());
        assert!(object(&v, "e").is_some());
        assert!(object(&v, "d").is_none());
        assert_eq!(flag(&v, "f", false), Some(true));
        assert_eq!(flag(&v, "a", true), Some(true));
        assert_eq!(flag(&v, "a", false), Some(false));
        assert_eq!(flag(&v, "c", true), None);
        assert!(is_zero(&json!({"u": 0}), "u"));
        assert!(is_zero(&json!({"u": 0.0}), "u"));
        assert!(is_zero(&json!({"u": "1"}), "u"));
        assert!(!is_zero(&json!({"u": 1}), "u"));
        assert!(!is_zero(&json!({"u": null}), "u"));
        let s = json!("not an object");
        assert!(containers(&s).next().is_none());
        assert!(security_context(&s).is_none());
        assert!(!is_windows(&json!({"os": {"name": "linux"}})));
        assert!(is_windows(&json!({"os": {"name": "windows"}})));
    }
}
