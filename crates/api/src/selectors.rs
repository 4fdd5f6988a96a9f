//! Label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`) and field selectors, parsed
//! from their query-string form or from a metav1 LabelSelector, and matched against objects.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use crate::registry::ResourceInfo;
use crate::validation::{is_qualified_name, is_valid_label_value};

/// Errors from parsing or applying a selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector requirement could not be parsed.
    #[error("unable to parse requirement: {0}")]
    Requirement(String),
    /// A label selector string is malformed outside a single requirement.
    #[error("{0}")]
    Syntax(String),
    /// A field selector term has no operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm { selector: String, term: String },
    /// A field selector names a field the resource does not support.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

/// Operator of one label requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One label requirement: `key op values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    /// Sorted and de-duplicated for `in`/`notin`; one value for the equality operators.
    pub values: Vec<String>,
}

impl Requirement {
    fn new(key: &str, operator: Operator, mut values: Vec<String>) -> Result<Self, SelectorError> {
        if let Some(msg) = is_qualified_name(key).into_iter().next() {
            return Err(SelectorError::Requirement(format!(
                "key: Invalid value: \"{key}\": {msg}"
            )));
        }
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    return Err(SelectorError::Requirement(
                        "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"
                            .into(),
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    return Err(SelectorError::Requirement(
                        "values: Invalid value: exact-match compatibility requires one single value"
                            .into(),
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    return Err(SelectorError::Requirement(
                        "values: Invalid value: values set must be empty for exists and does not exist"
                            .into(),
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 || values[0].parse::<i64>().is_err() {
                    return Err(SelectorError::Requirement(
                        "values: Invalid value: for 'Gt', 'Lt' operators, exactly one integer value is required"
                            .into(),
                    ));
                }
            }
        }
        if !matches!(operator, Operator::GreaterThan | Operator::LessThan) {
            for (i, v) in values.iter().enumerate() {
                if let Some(msg) = is_valid_label_value(v).into_iter().next() {
                    return Err(SelectorError::Requirement(format!(
                        "values[{i}][{key}]: Invalid value: \"{v}\": {msg}"
                    )));
                }
            }
        }
        values.sort();
        values.dedup();
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        })
    }

    /// True when the labels satisfy the requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                value.is_some_and(|v| self.values.contains(v))
            }
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(limit)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    v > limit
                } else {
                    v < limit
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map(String::as_str).unwrap_or("");
        match self.operator {
            Operator::Equals => write!(f, "{}={}", self.key, first),
            Operator::DoubleEquals => write!(f, "{}=={}", self.key, first),
            Operator::NotEquals => write!(f, "{}!={}", self.key, first),
            Operator::In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::GreaterThan => write!(f, "{}>{}", self.key, first),
            Operator::LessThan => write!(f, "{}<{}", self.key, first),
        }
    }
}

/// A label selector: a conjunction of requirements. An empty selector matches everything;
/// [`Selector::nothing`] matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl Selector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Selector::default()
    }

    /// The selector that matches no object (a nil metav1 selector in controllers).
    pub fn nothing() -> Self {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the query-string form (`app=web,tier in (a,b),!canary`).
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let tokens = lex(input)?;
        let mut p = Parser { tokens, pos: 0 };
        let mut requirements = Vec::new();
        loop {
            match p.peek() {
                Tok::End => break,
                Tok::Ident(_) | Tok::Not => {
                    requirements.push(p.requirement()?);
                    match p.next() {
                        Tok::End => break,
                        Tok::Comma => {
                            if matches!(p.peek(), Tok::End) {
                                return Err(SelectorError::Syntax(
                                    "found 'end of string', expected: identifier after ','".into(),
                                ));
                            }
                        }
                        t => {
                            return Err(SelectorError::Syntax(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.text()
                            )))
                        }
                    }
                }
                t => {
                    return Err(SelectorError::Syntax(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.text()
                    )))
                }
            }
        }
        Ok(Selector::from_requirements(requirements))
    }

    /// Builds a selector from requirements (sorted by key as upstream does).
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector {
            requirements,
            nothing: false,
        }
    }

    /// A selector that matches exactly the given labels (`matchLabels`).
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        Selector::from_requirements(
            labels
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    operator: Operator::Equals,
                    values: vec![v.clone()],
                })
                .collect(),
        )
    }

    /// Converts a metav1 LabelSelector; `None` gives [`Selector::nothing`], an empty one
    /// matches everything.
    pub fn from_label_selector(selector: Option<&LabelSelector>) -> Result<Self, SelectorError> {
        let Some(sel) = selector else {
            return Ok(Selector::nothing());
        };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
        }
        for expr in sel.match_expressions.iter().flatten() {
            let op = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::Syntax(format!(
                        "\"{other}\" is not a valid label selector operator"
                    )))
                }
            };
            reqs.push(Requirement::new(
                &expr.key,
                op,
                expr.values.clone().unwrap_or_default(),
            )?);
        }
        Ok(Selector::from_requirements(reqs))
    }

    /// Converts a metav1 LabelSelector in JSON form (`null` or absent gives nothing).
    pub fn from_value(selector: Option<&Value>) -> Result<Self, SelectorError> {
        match selector {
            None | Some(Value::Null) => Ok(Selector::nothing()),
            Some(v) => {
                let sel: LabelSelector = serde_json::from_value(v.clone())
                    .map_err(|e| SelectorError::Syntax(format!("invalid label selector: {e}")))?;
                Selector::from_label_selector(Some(&sel))
            }
        }
    }

    /// True when the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches the labels of an object in JSON form (`metadata.labels`).
    pub fn matches_object(&self, object: &Value) -> bool {
        self.matches(&labels_of(object))
    }

    /// True when the selector has no requirements (matches everything).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that matches nothing.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(|r| r.to_string()).collect();
        write!(f, "{}", parts.join(","))
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

/// `metadata.labels` of an object in JSON form.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Comma,
    Open,
    Close,
    Eq,
    DoubleEq,
    NotEq,
    Not,
    In,
    NotIn,
    Gt,
    Lt,
    End,
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Ident(s) => s.clone(),
            Tok::Comma => ",".into(),
            Tok::Open => "(".into(),
            Tok::Close => ")".into(),
            Tok::Eq => "=".into(),
            Tok::DoubleEq => "==".into(),
            Tok::NotEq => "!=".into(),
            Tok::Not => "!".into(),
            Tok::In => "in".into(),
            Tok::NotIn => "notin".into(),
            Tok::Gt => ">".into(),
            Tok::Lt => "<".into(),
            Tok::End => "".into(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '<' | '>')
}

fn lex(input: &str) -> Result<Vec<Tok>, SelectorError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let tok = match (c, next) {
            ('=', Some('=')) => {
                i += 2;
                Tok::DoubleEq
            }
            ('!', Some('=')) => {
                i += 2;
                Tok::NotEq
            }
            ('=', _) => {
                i += 1;
                Tok::Eq
            }
            ('!', _) => {
                i += 1;
                Tok::Not
            }
            (',', _) => {
                i += 1;
                Tok::Comma
            }
            ('(', _) => {
                i += 1;
                Tok::Open
            }
            (')', _) => {
                i += 1;
                Tok::Close
            }
            ('>', _) => {
                i += 1;
                Tok::Gt
            }
            ('<', _) => {
                i += 1;
                Tok::Lt
            }
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.as_str() {
                    "in" => Tok::In,
                    "notin" => Tok::NotIn,
                    _ => Tok::Ident(word),
                }
            }
        };
        out.push(tok);
    }
    out.push(Tok::End);
    Ok(out)
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Tok {
        self.tokens.get(self.pos).cloned().unwrap_or(Tok::End)
    }

    fn next(&mut self) -> Tok {
        let t = self.peek();
        self.pos += 1;
        t
    }

    /// After `in`/`notin` keywords, a bare word may be an identifier that happens to read `in`.
    fn ident_like(t: &Tok) -> Option<String> {
        match t {
            Tok::Ident(s) => Some(s.clone()),
            Tok::In => Some("in".into()),
            Tok::NotIn => Some("notin".into()),
            _ => None,
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let negated = if self.peek() == Tok::Not {
            self.next();
            true
        } else {
            false
        };
        let key = match self.next() {
            Tok::Ident(s) => s,
            t => {
                return Err(SelectorError::Requirement(format!(
                    "found '{}', expected: identifier",
                    t.text()
                )))
            }
        };
        if negated {
            return Requirement::new(&key, Operator::DoesNotExist, Vec::new());
        }
        let op = match self.peek() {
            Tok::End | Tok::Comma => return Requirement::new(&key, Operator::Exists, Vec::new()),
            Tok::Eq => Operator::Equals,
            Tok::DoubleEq => Operator::DoubleEquals,
            Tok::NotEq => Operator::NotEquals,
            Tok::In => Operator::In,
            Tok::NotIn => Operator::NotIn,
            Tok::Gt => Operator::GreaterThan,
            Tok::Lt => Operator::LessThan,
            t => {
                return Err(SelectorError::Requirement(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.text()
                )))
            }
        };
        self.next();
        let values = match op {
            Operator::In | Operator::NotIn => {
                if self.next() != Tok::Open {
                    let t = self.tokens[self.pos - 1].text();
                    return Err(SelectorError::Requirement(format!(
                        "found '{t}', expected: '('"
                    )));
                }
                let mut values = Vec::new();
                loop {
                    match self.next() {
                        Tok::Close => {
                            if values.is_empty() {
                                values.push(String::new());
                            }
                            break;
                        }
                        t => {
                            let value = if let Some(v) = Self::ident_like(&t) {
                                match self.next() {
                                    Tok::Comma => {
                                        values.push(v);
                                        continue;
                                    }
                                    Tok::Close => {
                                        values.push(v);
                                        break;
                                    }
                                    t2 => {
                                        return Err(SelectorError::Requirement(format!(
                                            "found '{}', expected: ',' or ')'",
                                            t2.text()
                                        )))
                                    }
                                }
                            } else if t == Tok::Comma {
                                // empty value: `(a,,b)` or `(,a)`
                                String::new()
                            } else {
                                return Err(SelectorError::Requirement(format!(
                                    "found '{}', expected: ',', ')' or identifier",
                                    t.text()
                                )));
                            };
                            values.push(value);
                        }
                    }
                }
                values
            }
            _ => match self.peek() {
                Tok::End | Tok::Comma => vec![String::new()],
                t => match Self::ident_like(&t) {
                    Some(v) => {
                        self.next();
                        vec![v]
                    }
                    None => {
                        return Err(SelectorError::Requirement(format!(
                            "found '{}', expected: identifier",
                            t.text()
                        )))
                    }
                },
            },
        };
        Requirement::new(&key, op, values)
    }
}

/// Operator of a field selector term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    Equals,
    DoubleEquals,
    NotEquals,
}

/// One field selector term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

/// A field selector (`spec.nodeName=n1,status.phase!=Running`); empty matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the query-string form; `\,` `\=` `\!` and `\\` escape in values.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        if input.trim().is_empty() {
            return Ok(FieldSelector::default());
        }
        for term in split_unescaped(input, ',') {
            if term.is_empty() {
                continue;
            }
            let (field, operator, value) = if let Some(i) = find_unescaped(&term, "!=") {
                (&term[..i], FieldOperator::NotEquals, &term[i + 2..])
            } else if let Some(i) = find_unescaped(&term, "==") {
                (&term[..i], FieldOperator::DoubleEquals, &term[i + 2..])
            } else if let Some(i) = find_unescaped(&term, "=") {
                (&term[..i], FieldOperator::Equals, &term[i + 1..])
            } else {
                return Err(SelectorError::FieldTerm {
                    selector: input.to_string(),
                    term: term.clone(),
                });
            };
            requirements.push(FieldRequirement {
                field: field.trim().to_string(),
                operator,
                value: unescape(value),
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// True when the selector has no terms.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Checks every field is supported for the resource (`field label not supported: x`).
    pub fn validate(&self, resource: &ResourceInfo) -> Result<(), SelectorError> {
        let fields = supported_fields(resource);
        for r in &self.requirements {
            if !fields.contains(&r.field.as_str()) {
                return Err(SelectorError::UnsupportedField(r.field.clone()));
            }
        }
        Ok(())
    }

    /// Matches an object of `resource`; an unsupported field is an error.
    pub fn matches(&self, object: &Value, resource: &ResourceInfo) -> Result<bool, SelectorError> {
        for r in &self.requirements {
            let Some(actual) = field_value(resource, object, &r.field) else {
                return Err(SelectorError::UnsupportedField(r.field.clone()));
            };
            let equal = actual == r.value;
            let ok = match r.operator {
                FieldOperator::Equals | FieldOperator::DoubleEquals => equal,
                FieldOperator::NotEquals => !equal,
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| {
                let op = match r.operator {
                    FieldOperator::Equals => "=",
                    FieldOperator::DoubleEquals => "==",
                    FieldOperator::NotEquals => "!=",
                };
                format!("{}{}{}", r.field, op, escape(&r.value))
            })
            .collect();
        write!(f, "{}", parts.join(","))
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    out.push(cur);
    out
}

fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i..].starts_with(pat.as_bytes()) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=' | '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The fields a field selector may use for a resource, as upstream's field label conversions.
pub fn supported_fields(resource: &ResourceInfo) -> &'static [&'static str] {
    match (resource.group, resource.kind) {
        ("", "Pod") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "Node") => &["metadata.name", "spec.unschedulable"],
        ("", "Namespace") => &["metadata.name", "status.phase"],
        ("", "Secret") => &["metadata.name", "metadata.namespace", "type"],
        ("", "Service") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.clusterIP",
            "spec.type",
        ],
        ("", "Event") => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "Event") => &[
            "metadata.name",
            "metadata.namespace",
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            &["metadata.name", "metadata.namespace", "status.replicas"]
        }
        ("batch", "Job") => &["metadata.name", "metadata.namespace", "status.successful"],
        _ if resource.namespaced() => &["metadata.name", "metadata.namespace"],
        _ => &["metadata.name"],
    }
}

/// The value of a selectable field of an object as upstream renders it (missing strings are
/// `""`, missing booleans `false`, missing numbers `0`); `None` when the field is not supported.
pub fn field_value(resource: &ResourceInfo, object: &Value, field: &str) -> Option<String> {
    if !supported_fields(resource).contains(&field) {
        return None;
    }
    let pointer = format!("/{}", field.replace('.', "/"));
    let v = object.pointer(&pointer);
    let rendered = match (resource.kind, field) {
        (_, "spec.hostNetwork") | (_, "spec.unschedulable") => {
            v.and_then(Value::as_bool).unwrap_or(false).to_string()
        }
        (_, "status.replicas") | (_, "status.successful") => {
            v.and_then(Value::as_i64).unwrap_or(0).to_string()
        }
        ("Event", "source") => object
            .pointer("/source/component")
            .and_then(Value::as_str)
            .or_else(|| object.get("reportingComponent").and_then(Value::as_str))
            .unwrap_or("")
            .to_string(),
        _ => match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        },
    };
    Some(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_equality_forms() {
        let s = Selector::parse("app=web, tier == front,env!=prod").unwrap();
        assert_eq!(s.requirements().len(), 3);
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("env", "prod")
        ])));
        assert!(!s.matches(&labels(&[("app", "db"), ("tier", "front")])));
    }

    #[test]
    fn parses_set_forms() {
        let s = Selector::parse("env in (prod, staging),tier notin (db)").unwrap();
        assert!(s.matches(&labels(&[("env", "prod")])));
        assert!(s.matches(&labels(&[("env", "staging"), ("tier", "web")])));
        assert!(!s.matches(&labels(&[("env", "staging"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("env", "dev")])));
    }

    #[test]
    fn parses_exists_forms() {
        let s = Selector::parse("app,!canary").unwrap();
        assert!(s.matches(&labels(&[("app", "x")])));
        assert!(!s.matches(&labels(&[("app", "x"), ("canary", "1")])));
        assert!(!s.matches(&labels(&[])));
    }

    #[test]
    fn empty_matches_everything() {
        let s = Selector::parse("").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(&labels(&[])));
        let s = Selector::parse("   ").unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn display_round_trips_sorted() {
        let s = Selector::parse("z=1,a in (y, x),!b,c").unwrap();
        assert_eq!(s.to_string(), "a in (x,y),!b,c,z=1");
        let again = Selector::parse(&s.to_string()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn empty_value_is_allowed() {
        let s = Selector::parse("a=").unwrap();
        assert!(s.matches(&labels(&[("a", "")])));
        assert!(!s.matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn parse_errors_are_worded_like_upstream() {
        let e = Selector::parse("a in x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to parse requirement: found 'x', expected: '('"
        );
        let e = Selector::parse("a b").unwrap_err();
        assert!(
            e.to_string()
                .contains("expected: in, notin, =, ==, !=, gt, lt"),
            "{e}"
        );
        let e = Selector::parse("a=b,").unwrap_err();
        assert!(e.to_string().contains("found 'end of string'"), "{e}");
        let e = Selector::parse("a in (b").unwrap_err();
        assert!(e.to_string().contains("expected: ',' or ')'"), "{e}");
        let e = Selector::parse("=b").unwrap_err();
        assert!(e.to_string().contains("expected: !, identifier"), "{e}");
    }

    #[test]
    fn invalid_key_or_value_is_rejected() {
        let e = Selector::parse("a@b=c").unwrap_err();
        assert!(
            e.to_string().starts_with("unable to parse requirement: "),
            "{e}"
        );
        let e = Selector::parse("a=b@c").unwrap_err();
        assert!(e.to_string().contains("Invalid value: \"b@c\""), "{e}");
    }

    #[test]
    fn gt_lt() {
        let s = Selector::parse("n>3").unwrap();
        assert!(s.matches(&labels(&[("n", "5")])));
        assert!(!s.matches(&labels(&[("n", "2")])));
        assert!(Selector::parse("n<x").is_err());
    }

    #[test]
    fn label_selector_conversion() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        let s = Selector::from_label_selector(Some(&sel)).unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "b")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert_eq!(s.to_string(), "app=web,tier in (a,b)");
    }

    #[test]
    fn nil_selector_matches_nothing_empty_everything() {
        let none = Selector::from_label_selector(None).unwrap();
        assert!(!none.matches(&labels(&[])));
        assert!(none.is_nothing());
        let empty = Selector::from_label_selector(Some(&LabelSelector::default())).unwrap();
        assert!(empty.matches(&labels(&[("x", "y")])));
        let v = Selector::from_value(Some(&json!({}))).unwrap();
        assert!(v.is_empty());
        assert!(Selector::from_value(None).unwrap().is_nothing());
    }

    #[test]
    fn label_selector_bad_operator() {
        let sel = json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]});
        assert!(Selector::from_value(Some(&sel)).is_err());
        let sel = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]});
        assert!(Selector::from_value(Some(&sel)).is_err());
        let sel = json!({"matchExpressions": [{"key": "a", "operator": "Exists"}]});
        let s = Selector::from_value(Some(&sel)).unwrap();
        assert!(s.matches_object(&json!({"metadata": {"labels": {"a": "1"}}})));
    }

    #[test]
    fn field_selector_parse_and_match() {
        let pods = find("", "v1", "pods").unwrap();
        let pod = json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Pending").unwrap();
        assert!(s.matches(&pod, pods).unwrap());
        let s = FieldSelector::parse("spec.nodeName==").unwrap();
        assert!(!s.matches(&pod, pods).unwrap());
        let unbound = json!({"metadata": {"name": "q"}, "spec": {}});
        assert!(s.matches(&unbound, pods).unwrap());
        let s = FieldSelector::parse("metadata.name=p").unwrap();
        assert!(s.matches(&pod, pods).unwrap());
    }

    #[test]
    fn field_selector_errors() {
        let pods = find("", "v1", "pods").unwrap();
        let e = FieldSelector::parse("spec.nodeName").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid selector: 'spec.nodeName'; can't understand 'spec.nodeName'"
        );
        let s = FieldSelector::parse("spec.foo=x").unwrap();
        assert_eq!(
            s.validate(pods).unwrap_err().to_string(),
            "field label not supported: spec.foo"
        );
        assert!(s.matches(&json!({}), pods).is_err());
    }

    #[test]
    fn field_values_per_type() {
        let nodes = find("", "v1", "nodes").unwrap();
        let node = json!({"metadata": {"name": "n"}, "spec": {}});
        assert_eq!(
            field_value(nodes, &node, "spec.unschedulable").unwrap(),
            "false"
        );
        assert_eq!(field_value(nodes, &node, "metadata.namespace"), None);
        let events = find("", "v1", "events").unwrap();
        let ev = json!({"involvedObject": {"kind": "Pod", "name": "p"}, "source": {"component": "kubelet"}, "type": "Normal"});
        assert_eq!(
            field_value(events, &ev, "involvedObject.kind").unwrap(),
            "Pod"
        );
        assert_eq!(field_value(events, &ev, "source").unwrap(), "kubelet");
        let secrets = find("", "v1", "secrets").unwrap();
        assert_eq!(
            field_value(secrets, &json!({"type": "Opaque"}), "type").unwrap(),
            "Opaque"
        );
        let rs = find("apps", "v1", "replicasets").unwrap();
        assert_eq!(
            field_value(rs, &json!({"status": {"replicas": 3}}), "status.replicas").unwrap(),
            "3"
        );
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!(
            field_value(
                pods,
                &json!({"spec": {"hostNetwork": true}}),
                "spec.hostNetwork"
            )
            .unwrap(),
            "true"
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for input in [
            "é=ü",
            "a in (é,",
            "!",
            "!!a",
            "a==",
            "(",
            ")",
            "a notin",
            "a in ()",
            "x,,y",
            "\\",
        ] {
            let _ = Selector::parse(input);
            let _ = FieldSelector::parse(input);
        }
        assert!(FieldSelector::parse("metadata.name=é").is_ok());
        assert!(FieldSelector::parse("é!=x").is_ok());
    }

    #[test]
    fn field_selector_escapes() {
        let s = FieldSelector::parse(r"metadata.name=a\,b").unwrap();
        assert_eq!(s.requirements[0].value, "a,b");
        assert_eq!(s.to_string(), r"metadata.name=a\,b");
    }
}
