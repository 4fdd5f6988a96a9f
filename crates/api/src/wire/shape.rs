//! The table of upstream's Go API structs (`go_types.json`, generated from k8s.io/api and
//! k8s.io/apimachinery by `scripts/gen-go-wire-types.py`): each struct's JSON fields in Go
//! declaration order, with their shapes and `omitempty`.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The JSON shape of a Go field's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    Str,
    Int,
    Float,
    Bool,
    /// `[]byte`: base64 text.
    Bytes,
    /// `metav1.Time` / `MicroTime`: `null` when zero.
    Time,
    /// `metav1.Duration`: `"0s"` when zero.
    Duration,
    /// `resource.Quantity`: `"0"` when zero.
    Quantity,
    /// `intstr.IntOrString`: `0` when zero.
    IntOrString,
    /// `runtime.RawExtension`: `null` when empty.
    Raw,
    /// An interface or a type with a marshaller of its own: left as it is.
    Any,
    /// A struct, by index into [`GoTypes::structs`].
    Struct(usize),
    Pointer(Box<Shape>),
    Slice(Box<Shape>),
    /// A map with string keys (Go writes them sorted).
    Map(Box<Shape>),
}

/// One JSON field of a struct.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub shape: Shape,
    pub omitempty: bool,
}

/// Every known struct.
#[derive(Debug, Default)]
pub struct GoTypes {
    pub structs: Vec<Vec<Field>>,
    pub by_name: HashMap<String, usize>,
}

const TABLE: &str = include_str!("go_types.json");

/// The table, parsed once.
pub static GO_TYPES: LazyLock<GoTypes> =
    LazyLock::new(|| GoTypes::parse(TABLE).expect("go_types.json is a valid table"));

impl GoTypes {
    /// Parses the generated table.
    pub fn parse(text: &str) -> Result<GoTypes, String> {
        type Raw = HashMap<String, Vec<(String, String, u8)>>;
        let raw: Raw = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut names: Vec<&String> = raw.keys().collect();
        names.sort();
        let by_name: HashMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| ((*n).clone(), i))
            .collect();
        let mut structs = Vec::with_capacity(names.len());
        for name in names {
            let mut fields = Vec::new();
            for (field, shape, omitempty) in &raw[name] {
                fields.push(Field {
                    name: field.clone(),
                    shape: parse_shape(shape, &by_name)
                        .ok_or_else(|| format!("{name}.{field}: bad shape {shape:?}"))?,
                    omitempty: *omitempty != 0,
                });
            }
            structs.push(fields);
        }
        Ok(GoTypes { structs, by_name })
    }

    /// The struct named `pkg/version.Name` (`core/v1.Pod`, `meta/v1.Status`).
    pub fn lookup(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
}

fn parse_shape(s: &str, by_name: &HashMap<String, usize>) -> Option<Shape> {
    if let Some(rest) = s.strip_prefix('*') {
        return Some(Shape::Pointer(Box::new(parse_shape(rest, by_name)?)));
    }
    if let Some(rest) = s.strip_prefix("[]") {
        return Some(Shape::Slice(Box::new(parse_shape(rest, by_name)?)));
    }
    if let Some(rest) = s.strip_prefix("{}") {
        return Some(Shape::Map(Box::new(parse_shape(rest, by_name)?)));
    }
    if let Some(name) = s.strip_prefix("T:") {
        return by_name.get(name).map(|i| Shape::Struct(*i));
    }
    Some(match s {
        "s" => Shape::Str,
        "i" => Shape::Int,
        "f" => Shape::Float,
        "b" => Shape::Bool,
        "bytes" => Shape::Bytes,
        "time" => Shape::Time,
        "duration" => Shape::Duration,
        "quantity" => Shape::Quantity,
        "intstr" => Shape::IntOrString,
        "raw" => Shape::Raw,
        "any" => Shape::Any,
        _ => return None,
    })
}
