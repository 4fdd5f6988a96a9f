//! Output formats as kubectl prints them: the tab-aligned table, `-o name`, JSON (sorted keys,
//! four-space indent, HTML-escaped like Go's encoder), YAML (sigs.k8s.io/yaml's style), the
//! JSONPath template language and custom columns.

use serde_json::Value;

use crate::error::{Error, Result};

/// Go's text/tabwriter: `\t`-terminated cells are aligned per column block (consecutive lines
/// that have the cell) to the block's widest cell plus `padding`, at least `minwidth`.
pub fn tabwriter(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::new();
    let mut widths = Vec::new();
    format_block(
        &lines,
        0,
        lines.len(),
        &mut widths,
        minwidth,
        padding,
        &mut out,
    );
    if !text.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    out
}

fn format_block(
    lines: &[Vec<&str>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column >= lines[this].len() - 1 {
            this += 1;
            continue;
        }
        write_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = minwidth;
        while this < line1 && column < lines[this].len() - 1 {
            width = width.max(lines[this][column].chars().count() + padding);
            this += 1;
        }
        widths.push(width);
        format_block(lines, line0, this, widths, minwidth, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, line0, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len() {
                if let Some(w) = widths.get(j) {
                    let pad = w.saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        out.push('\n');
    }
}

/// Lays out rows like kubectl's table printer (tabwriter, minwidth 6, padding 3).
pub fn tabulate(rows: &[Vec<String>]) -> String {
    let text: String = rows.iter().map(|r| format!("{}\n", r.join("\t"))).collect();
    tabwriter(&text, 6, 3)
}

/// Recursively sorts object keys (Go's encoding of maps).
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Go's json.MarshalIndent escaping of `<`, `>` and `&`.
fn html_escape(json: String) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// `-o json`: sorted keys, four-space indent, trailing newline.
pub fn to_json(value: &Value) -> String {
    to_json_in_order(&sorted(value))
}

/// `-o json` of a typed object: keys in the order given (the Go struct order kubectl uses).
pub fn to_json_in_order(value: &Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    value.serialize(&mut ser).expect("serialize JSON");
    let mut s = html_escape(String::from_utf8(buf).expect("JSON is UTF-8"));
    s.push('\n');
    s
}

/// Compact JSON with sorted keys and Go's escaping (the last-applied annotation's encoding).
pub fn to_compact_json(value: &Value) -> String {
    html_escape(serde_json::to_string(&sorted(value)).expect("serialize JSON"))
}

/// `-o yaml`: sorted keys, two-space indent, sequences at their key's indentation.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => yaml_map(&sorted(value), 0, &mut out),
        Value::Array(a) if !a.is_empty() => yaml_seq(&sorted(value), 0, &mut out),
        other => {
            out.push_str(&yaml_scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn yaml_map(value: &Value, indent: usize, out: &mut String) {
    let Value::Object(map) = value else { return };
    for (i, (key, v)) in map.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            out.extend(std::iter::repeat_n(' ', indent));
        }
        out.push_str(&yaml_string(key, indent));
        out.push(':');
        yaml_value_after_key(v, indent, out);
    }
}

fn yaml_value_after_key(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            yaml_map(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            yaml_seq(v, indent, out);
        }
        other => {
            out.push(' ');
            out.push_str(&yaml_scalar(other, indent));
            out.push('\n');
        }
    }
}

fn yaml_seq(value: &Value, indent: usize, out: &mut String) {
    let Value::Array(items) = value else { return };
    for item in items {
        out.extend(std::iter::repeat_n(' ', indent));
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => yaml_map(item, indent + 2, out),
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                yaml_seq(item, indent + 2, out);
            }
            other => {
                out.push_str(&yaml_scalar(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn yaml_scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_string(s, indent),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// A string scalar in go-yaml v2's style: plain when unambiguous, a literal block when it has
/// line breaks, double quotes when it would read as another type, single quotes otherwise.
fn yaml_string(s: &str, indent: usize) -> String {
    if s.contains('\n') {
        let header = if s.ends_with('\n') { "|" } else { "|-" };
        let mut out = header.to_string();
        for line in s.trim_end_matches('\n').split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.extend(std::iter::repeat_n(' ', indent + 2));
                out.push_str(line);
            }
        }
        return out;
    }
    if reads_as_other_type(s) {
        return format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    }
    let first = s.chars().next().unwrap_or(' ');
    let needs_quotes = "-?:,[]{}#&*!|>'\"%@`".contains(first)
        && !(first == '-' && s.len() > 1 && !s[1..].starts_with(' ') && s != "---")
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.contains('\t');
    if needs_quotes {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        s.to_string()
    }
}

/// True when YAML 1.1 (go-yaml v2) would resolve the plain scalar to a non-string.
fn reads_as_other_type(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "yes",
        "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N",
        ".inf", ".Inf", "-.inf", ".nan", ".NaN",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let plain = s.replace('_', "");
    if plain.parse::<f64>().is_ok() && !plain.ends_with('.')
        || plain.starts_with("0x") && i64::from_str_radix(&plain[2..], 16).is_ok()
    {
        return true;
    }
    // Timestamps (2006-01-02 and 2006-01-02T15:04:05Z forms).
    let bytes = s.as_bytes();
    bytes.len() >= 10
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[5..7].iter().all(u8::is_ascii_digit)
        && bytes[7] == b'-'
        && bytes[8..10].iter().all(u8::is_ascii_digit)
        && (bytes.len() == 10 || matches!(bytes[10], b'T' | b't' | b' '))
}

/// The text of one JSONPath result, as kubectl prints it.
pub fn jsonpath_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Object(_) | Value::Array(_) => serde_json::to_string(&sorted(v)).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// One parsed piece of a JSONPath template.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(Vec<Step>),
    Range(Vec<Step>, Vec<Node>),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
}

/// Splits `{...}` actions out of a template.
fn template_actions(template: &str) -> Result<Vec<(bool, String)>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push((false, rest[..open].to_string()));
        }
        let after = &rest[open + 1..];
        let mut in_quote = false;
        let mut close = None;
        for (i, c) in after.char_indices() {
            match c {
                '"' => in_quote = !in_quote,
                '}' if !in_quote => {
                    close = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let close = close.ok_or_else(|| {
            Error::Usage(format!(
                "error parsing jsonpath {template}, unclosed action"
            ))
        })?;
        parts.push((true, after[..close].trim().to_string()));
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        parts.push((false, rest.to_string()));
    }
    Ok(parts)
}

fn parse_path(expr: &str) -> Result<Vec<Step>> {
    let bad = || {
        Error::Usage(format!(
            "error parsing jsonpath {{{expr}}}, unrecognized path"
        ))
    };
    let expr = expr.trim();
    let expr = expr.strip_prefix('$').unwrap_or(expr);
    let mut steps = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut name = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    name.push(chars[i]);
                    i += 1;
                }
                if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let end = chars[i..].iter().position(|c| *c == ']').ok_or_else(bad)? + i;
                let inner: String = chars[i + 1..end].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\''))
                {
                    steps.push(Step::Field(q.to_string()));
                } else {
                    steps.push(Step::Index(inner.parse().map_err(|_| bad())?));
                }
                i = end + 1;
            }
            _ => return Err(bad()),
        }
    }
    Ok(steps)
}

fn parse_nodes(parts: &[(bool, String)], pos: &mut usize, in_range: bool) -> Result<Vec<Node>> {
    let mut nodes = Vec::new();
    while *pos < parts.len() {
        let (action, text) = &parts[*pos];
        *pos += 1;
        if !action {
            nodes.push(Node::Text(text.clone()));
        } else if text == "end" {
            if in_range {
                return Ok(nodes);
            }
            return Err(Error::Usage(
                "error parsing jsonpath, not in range, nothing to end".into(),
            ));
        } else if let Some(path) = text.strip_prefix("range ") {
            let steps = parse_path(path)?;
            let body = parse_nodes(parts, pos, true)?;
            nodes.push(Node::Range(steps, body));
        } else if text.starts_with('"') {
            let literal: String = serde_json::from_str(text)
                .map_err(|_| Error::Usage(format!("error parsing jsonpath {{{text}}}")))?;
            nodes.push(Node::Text(literal));
        } else {
            nodes.push(Node::Path(parse_path(text)?));
        }
    }
    if in_range {
        return Err(Error::Usage(
            "error parsing jsonpath, unclosed range".into(),
        ));
    }
    Ok(nodes)
}

fn walk<'a>(roots: Vec<&'a Value>, steps: &[Step]) -> Vec<&'a Value> {
    let mut current = roots;
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => {
                    if let Some(child) = v.get(name) {
                        next.push(child);
                    }
                }
                Step::Index(i) => {
                    if let Value::Array(items) = v {
                        let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                        if let Some(child) = usize::try_from(idx).ok().and_then(|i| items.get(i)) {
                            next.push(child);
                        }
                    }
                }
                Step::All => match v {
                    Value::Array(items) => next.extend(items.iter()),
                    Value::Object(map) => next.extend(map.values()),
                    _ => {}
                },
            }
        }
        current = next;
    }
    current
}

fn render(nodes: &[Node], data: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Path(steps) => {
                let results: Vec<String> = walk(vec![data], steps)
                    .into_iter()
                    .map(jsonpath_text)
                    .collect();
                out.push_str(&results.join(" "));
            }
            Node::Range(steps, body) => {
                for item in walk(vec![data], steps) {
                    render(body, item, out);
                }
            }
        }
    }
}

/// Evaluates a kubectl JSONPath template (`{.metadata.name}`, `{range .items[*]}...{end}`).
pub fn jsonpath(template: &str, data: &Value) -> Result<String> {
    let parts = template_actions(template)?;
    let mut pos = 0;
    let nodes = parse_nodes(&parts, &mut pos, false)?;
    let mut out = String::new();
    render(&nodes, data, &mut out);
    Ok(out)
}

/// The values of one custom column (`.spec.containers[*].image`), joined with commas.
pub fn custom_column(path: &str, object: &Value) -> Result<String> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let path = if path.starts_with('.') || path.starts_with('$') || path.starts_with('[') {
        path.to_string()
    } else {
        format!(".{path}")
    };
    let steps = parse_path(&path)?;
    let values: Vec<String> = walk(vec![object], &steps)
        .into_iter()
        .map(jsonpath_text)
        .collect();
    Ok(if values.is_empty() {
        "<none>".into()
    } else {
        values.join(",")
    })
}

/// Parses `-o custom-columns=NAME:.metadata.name,...` into (header, path) pairs.
pub fn parse_custom_columns(spec: &str) -> Result<Vec<(String, String)>> {
    spec.split(',')
        .map(|col| {
            col.split_once(':')
                .map(|(h, p)| (h.to_string(), p.to_string()))
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "unexpected custom-columns spec: {col}, expected <header>:<json-path-expr>"
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_is_padded_like_tabwriter() {
        let rows = vec![
            vec!["NAME".into(), "READY".into(), "AGE".into()],
            vec!["web-abc".into(), "1/1".into(), "5s".into()],
        ];
        assert_eq!(
            tabulate(&rows),
            "NAME      READY   AGE\nweb-abc   1/1     5s\n"
        );
        let narrow = vec![vec!["A".into(), "B".into()]];
        assert_eq!(tabulate(&narrow), "A     B\n");
    }

    #[test]
    fn tabwriter_aligns_column_blocks() {
        let text = "Name:\tweb\nReplicas:\t1\nPod Template:\n  Labels:\tapp=web\n";
        assert_eq!(
            tabwriter(text, 0, 2),
            "Name:      web\nReplicas:  1\nPod Template:\n  Labels:  app=web\n"
        );
    }

    #[test]
    fn json_is_sorted_indented_and_escaped() {
        let v = json!({"b": 1, "a": {"y": "<none>", "x": []}});
        assert_eq!(
            to_json(&v),
            "{\n    \"a\": {\n        \"x\": [],\n        \"y\": \"\\u003cnone\\u003e\"\n    },\n    \"b\": 1\n}\n"
        );
    }

    #[test]
    fn yaml_matches_kubectl_style() {
        let v = json!({
            "metadata": {"name": "web", "creationTimestamp": "2025-01-01T00:00:00Z",
                          "annotations": {"a": "{\"x\":1}\n"}, "labels": {"v": "1"}},
            "spec": {"containers": [{"name": "c", "args": ["-x", "true"]}], "empty": {}}
        });
        let expected = "metadata:\n  annotations:\n    a: |\n      {\"x\":1}\n  creationTimestamp: \"2025-01-01T00:00:00Z\"\n  labels:\n    v: \"1\"\n  name: web\nspec:\n  containers:\n  - args:\n    - -x\n    - \"true\"\n    name: c\n  empty: {}\n";
        assert_eq!(to_yaml(&v), expected);
    }

    #[test]
    fn jsonpath_templates() {
        let list = json!({"items": [
            {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}}},
            {"metadata": {"name": "b"}}
        ]});
        assert_eq!(jsonpath("{.items[*].metadata.name}", &list).unwrap(), "a b");
        assert_eq!(
            jsonpath(
                "{.items[0].metadata.labels.app\\.kubernetes\\.io/name}",
                &list
            )
            .unwrap(),
            "x"
        );
        assert_eq!(
            jsonpath("{range .items[*]}{.metadata.name}{\"\\n\"}{end}", &list).unwrap(),
            "a\nb\n"
        );
        assert_eq!(
            jsonpath("n={.items[-1].metadata.name}", &list).unwrap(),
            "n=b"
        );
        assert!(jsonpath("{.items[*]", &list).is_err());
    }

    #[test]
    fn custom_columns() {
        let pod = json!({"spec": {"containers": [{"image": "a"}, {"image": "b"}]}});
        assert_eq!(
            custom_column(".spec.containers[*].image", &pod).unwrap(),
            "a,b"
        );
        assert_eq!(custom_column(".spec.nodeName", &pod).unwrap(), "<none>");
        assert!(parse_custom_columns("NAME").is_err());
    }
}
