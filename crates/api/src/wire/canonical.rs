//! An object as upstream's apiserver would write it after decoding it into its Go struct:
//! fields in Go declaration order, `omitempty` zero values dropped, fields without
//! `omitempty` and every non-pointer struct present with their zero values, map keys sorted.

use serde_json::{Map, Value};

use super::shape::{Field, GoTypes, Shape};

/// Rewrites `value`, an encoding of struct `index`, in place.
pub(super) fn canonical_struct(types: &GoTypes, index: usize, value: &mut Value) {
    match value {
        Value::Object(map) => canonical_fields(types, &types.structs[index], map),
        Value::Null => *value = zero_struct(types, index),
        _ => {}
    }
}

fn canonical_fields(types: &GoTypes, fields: &[Field], map: &mut Map<String, Value>) {
    let mut old = std::mem::take(map);
    for f in fields {
        match old.swap_remove_entry(&f.name) {
            Some((name, mut v)) => {
                if keep(types, &f.shape, f.omitempty, &mut v) {
                    map.insert(name, v);
                }
            }
            None => {
                if let Some(z) = absent(types, &f.shape, f.omitempty) {
                    map.insert(f.name.clone(), z);
                }
            }
        }
    }
    // Fields the table does not know (newer than it) go after the known ones.
    map.extend(old);
}

/// Normalizes a present field's value; false when Go would leave the field out.
fn keep(types: &GoTypes, shape: &Shape, omitempty: bool, v: &mut Value) -> bool {
    match shape {
        Shape::Pointer(inner) => {
            if v.is_null() {
                return !omitempty;
            }
            keep(types, inner, false, v);
            true
        }
        Shape::Slice(inner) => match v {
            Value::Null => !omitempty,
            Value::Array(items) => {
                for item in items.iter_mut() {
                    keep(types, inner, false, item);
                }
                !(omitempty && items.is_empty())
            }
            _ => true,
        },
        Shape::Map(inner) => match v {
            Value::Null => !omitempty,
            Value::Object(m) => {
                m.sort_keys();
                for item in m.values_mut() {
                    keep(types, inner, false, item);
                }
                !(omitempty && m.is_empty())
            }
            _ => true,
        },
        Shape::Struct(index) => {
            canonical_struct(types, *index, v);
            true
        }
        Shape::Time | Shape::Raw => true,
        Shape::Duration | Shape::Quantity | Shape::IntOrString => {
            if v.is_null() {
                *v = zero_scalar(shape);
            }
            true
        }
        Shape::Any | Shape::Bytes => match v {
            Value::Null => !omitempty,
            Value::String(s) if s.is_empty() => !omitempty,
            _ => true,
        },
        Shape::Str | Shape::Int | Shape::Float | Shape::Bool => {
            if v.is_null() {
                *v = zero_scalar(shape);
            }
            !(omitempty && is_zero_scalar(v))
        }
    }
}

/// What Go writes for a field the object does not have: None when it leaves it out.
fn absent(types: &GoTypes, shape: &Shape, omitempty: bool) -> Option<Value> {
    match shape {
        // omitempty never drops a struct.
        Shape::Struct(index) => Some(zero_struct(types, *index)),
        Shape::Time | Shape::Raw => Some(Value::Null),
        Shape::Duration | Shape::Quantity | Shape::IntOrString => Some(zero_scalar(shape)),
        _ if omitempty => None,
        Shape::Str | Shape::Int | Shape::Float | Shape::Bool => Some(zero_scalar(shape)),
        _ => Some(Value::Null),
    }
}

/// The encoding of a zero struct.
pub(super) fn zero_struct(types: &GoTypes, index: usize) -> Value {
    let mut map = Map::new();
    for f in &types.structs[index] {
        if let Some(z) = absent(types, &f.shape, f.omitempty) {
            map.insert(f.name.clone(), z);
        }
    }
    Value::Object(map)
}

fn zero_scalar(shape: &Shape) -> Value {
    match shape {
        Shape::Str => Value::String(String::new()),
        Shape::Int | Shape::Float | Shape::IntOrString => Value::from(0),
        Shape::Bool => Value::Bool(false),
        Shape::Duration => Value::String("0s".into()),
        Shape::Quantity => Value::String("0".into()),
        _ => Value::Null,
    }
}

fn is_zero_scalar(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        Value::Null => true,
        _ => false,
    }
}
