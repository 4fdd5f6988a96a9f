//! The protobuf form of `/openapi/v2` (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`),
//! which is the only form client-go's discovery asks for (`OpenAPISchema()`): gnostic's
//! `openapi_v2.Document` encoded from the swagger JSON. Vendor extensions travel as YAML text
//! in `Any.yaml` (JSON is YAML), as kube-openapi reads them. Security sections are left out.

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.tag(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn string_of(&mut self, field: u32, v: Option<&Value>) {
        if let Some(Value::String(s)) = v {
            self.string(field, s);
        }
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.tag(field, 0);
            self.varint(1);
        }
    }

    fn bool_of(&mut self, field: u32, v: Option<&Value>) {
        self.boolean(field, v.and_then(Value::as_bool).unwrap_or(false));
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn strings_of(&mut self, field: u32, v: Option<&Value>) {
        match v {
            Some(Value::Array(items)) => {
                for i in items {
                    if let Some(s) = i.as_str() {
                        self.bytes(field, s.as_bytes());
                    }
                }
            }
            Some(Value::String(s)) => self.bytes(field, s.as_bytes()),
            _ => {}
        }
    }
}

/// gnostic `Any` holding a value as YAML (JSON) text.
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &serde_json::to_string(v).unwrap_or_default());
    m
}

/// Repeated `NamedAny` vendor extensions (`x-*` keys) of an object.
fn vendor_extensions(m: &mut Msg, field: u32, obj: &Map<String, Value>) {
    for (k, v) in obj {
        if k.starts_with("x-") {
            let mut named = Msg::default();
            named.string(1, k);
            named.message(2, any(v));
            m.message(field, named);
        }
    }
}

fn schema(v: &Value) -> Msg {
    let mut m = Msg::default();
    let Some(o) = v.as_object() else {
        return m;
    };
    m.string_of(1, o.get("$ref"));
    m.string_of(2, o.get("format"));
    m.string_of(3, o.get("title"));
    m.string_of(4, o.get("description"));
    if let Some(d) = o.get("default") {
        m.message(5, any(d));
    }
    m.bool_of(16, o.get("uniqueItems"));
    m.strings_of(19, o.get("required"));
    if let Some(Value::Array(values)) = o.get("enum") {
        for e in values {
            m.message(20, any(e));
        }
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Msg::default();
            item.tag(2, 0);
            item.varint(u64::from(*b));
            m.message(21, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema(s));
            m.message(21, item);
        }
        _ => {}
    }
    if let Some(t) = o.get("type") {
        let mut item = Msg::default();
        item.strings_of(1, Some(t));
        m.message(22, item);
    }
    match o.get("items") {
        Some(Value::Array(list)) => {
            let mut item = Msg::default();
            for s in list {
                item.message(1, schema(s));
            }
            m.message(23, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema(s));
            m.message(23, item);
        }
        _ => {}
    }
    if let Some(Value::Array(all)) = o.get("allOf") {
        for s in all {
            m.message(24, schema(s));
        }
    }
    if let Some(Value::Object(props)) = o.get("properties") {
        let mut p = Msg::default();
        for (name, s) in props {
            p.message(1, named_schema(name, s));
        }
        m.message(25, p);
    }
    m.bool_of(27, o.get("readOnly"));
    vendor_extensions(&mut m, 31, o);
    m
}

fn named_schema(name: &str, s: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.message(2, schema(s));
    m
}

fn parameter(p: &Value) -> Msg {
    let mut param = Msg::default();
    let location = p.get("in").and_then(Value::as_str).unwrap_or("");
    if location == "body" {
        let mut body = Msg::default();
        body.string_of(1, p.get("description"));
        body.string_of(2, p.get("name"));
        body.string(3, "body");
        body.bool_of(4, p.get("required"));
        if let Some(s) = p.get("schema") {
            body.message(5, schema(s));
        }
        param.message(1, body);
    } else {
        let mut sub = Msg::default();
        sub.bool_of(1, p.get("required"));
        sub.string(2, location);
        sub.string_of(3, p.get("description"));
        sub.string_of(4, p.get("name"));
        // QueryParameterSubSchema and PathParameterSubSchema differ from field 5 on; the
        // documents have no header or form parameters.
        let (sub_field, type_field, unique_field) = if location == "path" {
            (4, 5, 19)
        } else {
            (3, 6, 20)
        };
        sub.string_of(type_field, p.get("type"));
        sub.bool_of(unique_field, p.get("uniqueItems"));
        let mut non_body = Msg::default();
        non_body.message(sub_field, sub);
        param.message(2, non_body);
    }
    let mut item = Msg::default();
    item.message(1, param);
    item
}

fn responses(r: &Map<String, Value>) -> Msg {
    let mut m = Msg::default();
    for (code, resp) in r {
        let mut response = Msg::default();
        response.string_of(1, resp.get("description"));
        if let Some(s) = resp.get("schema") {
            let mut item = Msg::default();
            item.message(1, schema(s));
            response.message(2, item);
        }
        let mut value = Msg::default();
        value.message(1, response);
        let mut named = Msg::default();
        named.string(1, code);
        named.message(2, value);
        m.message(1, named);
    }
    m
}

fn operation(op: &Value) -> Msg {
    let mut m = Msg::default();
    let Some(o) = op.as_object() else {
        return m;
    };
    m.strings_of(1, o.get("tags"));
    m.string_of(3, o.get("description"));
    m.string_of(5, o.get("operationId"));
    m.strings_of(6, o.get("produces"));
    m.strings_of(7, o.get("consumes"));
    if let Some(Value::Array(params)) = o.get("parameters") {
        for p in params {
            m.message(8, parameter(p));
        }
    }
    if let Some(Value::Object(r)) = o.get("responses") {
        m.message(9, responses(r));
    }
    m.strings_of(10, o.get("schemes"));
    vendor_extensions(&mut m, 13, o);
    m
}

fn path_item(item: &Value) -> Msg {
    let mut m = Msg::default();
    let Some(o) = item.as_object() else {
        return m;
    };
    for (method, field) in [
        ("get", 2),
        ("put", 3),
        ("post", 4),
        ("delete", 5),
        ("options", 6),
        ("head", 7),
        ("patch", 8),
    ] {
        if let Some(op) = o.get(method) {
            m.message(field, operation(op));
        }
    }
    if let Some(Value::Array(params)) = o.get("parameters") {
        for p in params {
            m.message(9, parameter(p));
        }
    }
    vendor_extensions(&mut m, 10, o);
    m
}

/// Encodes a swagger 2.0 JSON document as gnostic's `openapi_v2.Document`.
pub(super) fn encode_document(doc: &Value) -> Vec<u8> {
    let mut m = Msg::default();
    m.string_of(1, doc.get("swagger"));
    if let Some(info) = doc.get("info") {
        let mut i = Msg::default();
        i.string_of(1, info.get("title"));
        i.string_of(2, info.get("version"));
        m.message(2, i);
    }
    if let Some(Value::Object(paths)) = doc.get("paths") {
        let mut p = Msg::default();
        for (path, item) in paths {
            let mut named = Msg::default();
            named.string(1, path);
            named.message(2, path_item(item));
            p.message(2, named);
        }
        m.message(8, p);
    }
    if let Some(Value::Object(defs)) = doc.get("definitions") {
        let mut d = Msg::default();
        for (name, s) in defs {
            d.message(1, named_schema(name, s));
        }
        m.message(9, d);
    }
    m.0
}
