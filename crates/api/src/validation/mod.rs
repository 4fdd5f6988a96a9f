//! Validation with field paths: names, labels, required fields, uniqueness, ranges and the
//! fields that may not change on update.
//!
//! Messages and paths follow upstream's pkg/apis/core/validation and pkg/apis/apps/validation
//! (field.Error's `ErrorBody`): `Required value`, `Invalid value: "x": detail`,
//! `Unsupported value: "x": supported values: "A", "B"`, `Duplicate value: "x"`,
//! `Forbidden: detail`, `Too long: detail`.

mod ephemeral;
mod kinds;
mod names;
mod pod;
mod prune;
mod rbac;
mod update;
mod workloads;

use serde_json::{Map, Value};

use crate::registry::{ResourceInfo, Scope};

pub use names::{
    inclusive_range_error, is_config_map_key, is_dns1035_label, is_dns1123_label,
    is_dns1123_subdomain, is_env_var_name, is_qualified_name, is_valid_ip, is_valid_label_value,
    is_valid_port_name, is_valid_port_num, max_len_error, regex_error,
};
pub use pod::parse_quantity;
pub use prune::{prune_kind, PruneError};

/// One invalid field, as reported in a Status' `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Kubernetes' cause type: `FieldValueRequired`, `FieldValueInvalid`,
    /// `FieldValueNotSupported`, `FieldValueDuplicate`, `FieldValueForbidden`, `FieldValueTooLong`.
    pub reason: &'static str,
    /// Path of the field, `spec.template.spec.containers[0].name`.
    pub field: String,
    /// The message after the path, as Kubernetes words it: `Required value`,
    /// `Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of ...`.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl FieldError {
    /// `Required value` (with `: detail` when not empty).
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueRequired",
            field: field.into(),
            message: with_detail("Required value".into(), detail),
        }
    }

    /// `Invalid value: <value>: detail`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Self::invalid_raw(field, &go_value(value), detail)
    }

    /// `Invalid value: <rendered>: detail` with the value already rendered Go-style.
    pub fn invalid_raw(field: impl Into<String>, rendered: &str, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: with_detail(format!("Invalid value: {rendered}"), detail),
        }
    }

    /// `Unsupported value: "x": supported values: "A", "B"`.
    pub fn not_supported(field: impl Into<String>, value: &Value, valid: &[&str]) -> Self {
        let list: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
        FieldError {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                go_value(value),
                list.join(", ")
            ),
        }
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        FieldError {
            reason: "FieldValueDuplicate",
            field: field.into(),
            message: format!("Duplicate value: {}", go_value(value)),
        }
    }

    /// `Forbidden: detail`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: with_detail("Forbidden".into(), detail),
        }
    }

    /// `Too long: may not be more than N bytes`.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            reason: "FieldValueTooLong",
            field: field.into(),
            message: format!("Too long: may not be more than {max} bytes"),
        }
    }

    /// `Not found: <value>`.
    pub fn not_found(field: impl Into<String>, value: &Value) -> Self {
        FieldError {
            reason: "FieldValueNotFound",
            field: field.into(),
            message: format!("Not found: {}", go_value(value)),
        }
    }
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

/// Renders a value as Go's field.Error does: strings quoted, numbers and booleans bare, string
/// maps as `map[string]string{"k":"v"}`, other values as compact JSON.
pub fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Object(m) if m.values().all(Value::is_string) => go_string_map(value),
        other => other.to_string(),
    }
}

/// `map[string]string{"a":"b"}` with sorted keys (Go's %#v).
pub fn go_string_map(value: &Value) -> String {
    let Some(m) = value.as_object() else {
        return "map[string]string(nil)".into();
    };
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let parts: Vec<String> = keys
        .iter()
        .map(|k| format!("{:?}:{:?}", k, m[*k].as_str().unwrap_or("")))
        .collect();
    format!("map[string]string{{{}}}", parts.join(", "))
}

/// A label selector rendered as Go prints `v1.LabelSelector` with %#v.
pub fn go_label_selector(value: &Value) -> String {
    let labels = match value.get("matchLabels") {
        Some(v @ Value::Object(_)) => go_string_map(v),
        _ => "map[string]string(nil)".into(),
    };
    let exprs = match value.get("matchExpressions").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    let values = match e.get("values").and_then(Value::as_array) {
                        Some(vs) => format!(
                            "[]string{{{}}}",
                            vs.iter()
                                .map(|v| format!("{:?}", v.as_str().unwrap_or("")))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        None => "[]string(nil)".into(),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{:?}, Operator:{:?}, Values:{}}}",
                        s(e, "key"),
                        s(e, "operator"),
                        values
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
        _ => "[]v1.LabelSelectorRequirement(nil)".into(),
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")
}

// ---- small accessors on JSON objects ------------------------------------------------------

/// The string at `key`, `""` when absent or not a string.
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `key`.
pub(crate) fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// The list at `key`, empty when absent.
pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The map at `key`.
pub(crate) fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// True when `key` is present and not null.
pub(crate) fn has(v: &Value, key: &str) -> bool {
    !matches!(v.get(key), None | Some(Value::Null))
}

/// `a.b` (or `b` when `a` is empty).
pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// `path[key]`, upstream's `Key()`.
pub(crate) fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

// ---- shared validators ---------------------------------------------------------------------

/// The name rule of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Dns1123Subdomain,
    Dns1123Label,
    Dns1035Label,
    PathSegment,
}

impl NameRule {
    fn check(self, name: &str) -> Vec<String> {
        match self {
            NameRule::Dns1123Subdomain => is_dns1123_subdomain(name),
            NameRule::Dns1123Label => is_dns1123_label(name),
            NameRule::Dns1035Label => is_dns1035_label(name),
            NameRule::PathSegment => {
                let mut errs = Vec::new();
                if name == "." || name == ".." {
                    errs.push(format!("may not be '{name}'"));
                }
                for c in ["/", "%"] {
                    if name.contains(c) {
                        errs.push(format!("may not contain '{c}'"));
                    }
                }
                errs
            }
        }
    }
}

/// The name rule upstream applies to objects of `resource`.
pub fn name_rule(resource: &ResourceInfo) -> NameRule {
    match (resource.group, resource.kind) {
        ("", "Namespace") => NameRule::Dns1123Label,
        ("", "Service") => NameRule::Dns1035Label,
        ("autoscaling", "HorizontalPodAutoscaler") => NameRule::PathSegment,
        // upstream's ValidateRBACName
        (rbac::GROUP, _) => NameRule::PathSegment,
        _ => NameRule::Dns1123Subdomain,
    }
}

/// Validates `metadata.labels`-style maps (keys qualified names, values label values).
pub(crate) fn validate_labels(labels: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(map) = labels.and_then(Value::as_object) else {
        return;
    };
    for (k, v) in map {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, &Value::String(k.clone()), &msg));
        }
        let value = v.as_str().unwrap_or("");
        for msg in is_valid_label_value(value) {
            errs.push(FieldError::invalid(path, v, &msg));
        }
    }
}

const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

/// Validates `metadata.annotations`.
pub(crate) fn validate_annotations(
    annotations: Option<&Value>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let Some(map) = annotations.and_then(Value::as_object) else {
        return;
    };
    let mut total = 0;
    for (k, v) in map {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, &Value::String(k.clone()), &msg));
        }
        total += k.len() + v.as_str().map(str::len).unwrap_or(0);
    }
    if total > TOTAL_ANNOTATION_SIZE {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE));
    }
}

/// Validates an ObjectMeta at `path` (`metadata`, or `spec.template.metadata` with
/// `name_required` false).
pub(crate) fn validate_object_meta(
    meta: Option<&Value>,
    path: &str,
    rule: NameRule,
    scope: Option<Scope>,
    errs: &mut Vec<FieldError>,
) {
    let empty = Value::Object(Map::new());
    let meta = meta.unwrap_or(&empty);
    let name = s(meta, "name");
    let generate_name = s(meta, "generateName");
    if scope.is_some() {
        if !generate_name.is_empty() {
            let trimmed = generate_name.trim_end_matches('-');
            let prefix = if trimmed.is_empty() { "a" } else { trimmed };
            for msg in rule.check(prefix) {
                errs.push(FieldError::invalid(
                    child(path, "generateName"),
                    &Value::String(generate_name.into()),
                    &msg,
                ));
            }
        }
        if name.is_empty() {
            if generate_name.is_empty() {
                errs.push(FieldError::required(
                    child(path, "name"),
                    "name or generateName is required",
                ));
            }
        } else {
            for msg in rule.check(name) {
                errs.push(FieldError::invalid(
                    child(path, "name"),
                    &Value::String(name.into()),
                    &msg,
                ));
            }
        }
        let namespace = s(meta, "namespace");
        match scope {
            Some(Scope::Namespaced) => {
                if !namespace.is_empty() {
                    for msg in is_dns1123_label(namespace) {
                        errs.push(FieldError::invalid(
                            child(path, "namespace"),
                            &Value::String(namespace.into()),
                            &msg,
                        ));
                    }
                }
            }
            _ => {
                if !namespace.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(path, "namespace"),
                        "not allowed on this type",
                    ));
                }
            }
        }
    }
    validate_labels(meta.get("labels"), &child(path, "labels"), errs);
    validate_annotations(meta.get("annotations"), &child(path, "annotations"), errs);
    for (i, f) in arr(meta, "finalizers").iter().enumerate() {
        let fin = f.as_str().unwrap_or("");
        for msg in is_qualified_name(fin) {
            errs.push(FieldError::invalid(
                index(&child(path, "finalizers"), i),
                f,
                &msg,
            ));
        }
    }
    let owners = arr(meta, "ownerReferences");
    let mut controllers = 0;
    for owner in owners {
        let p = child(path, "ownerReferences");
        if s(owner, "apiVersion").is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "apiVersion"),
                &Value::String(String::new()),
                "version must not be empty",
            ));
        }
        if s(owner, "kind").is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "kind"),
                &Value::String(String::new()),
                "kind must not be empty",
            ));
        }
        if s(owner, "name").is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                &Value::String(String::new()),
                "name must not be empty",
            ));
        }
        if s(owner, "uid").is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "uid"),
                &Value::String(String::new()),
                "uid must not be empty",
            ));
        }
        if owner.get("controller").and_then(Value::as_bool) == Some(true) {
            controllers += 1;
        }
    }
    if controllers > 1 {
        errs.push(FieldError::invalid(
            child(path, "ownerReferences"),
            &Value::Array(owners.to_vec()),
            "Only one reference can have Controller set to true",
        ));
    }
}

/// `must be greater than or equal to 0` for an optional integer field.
pub(crate) fn non_negative(v: &Value, k: &str, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = int(v, k) {
        if n < 0 {
            errs.push(FieldError::invalid(
                child(path, k),
                &Value::from(n),
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// Checks a string field is one of `valid` (when set; `required` adds Required when empty).
pub(crate) fn one_of(
    v: &Value,
    k: &str,
    path: &str,
    valid: &[&str],
    required: bool,
    errs: &mut Vec<FieldError>,
) {
    match v.get(k) {
        None | Some(Value::Null) => {
            if required {
                errs.push(FieldError::required(child(path, k), ""));
            }
        }
        Some(Value::String(x)) if x.is_empty() => {
            if required {
                errs.push(FieldError::required(child(path, k), ""));
            }
        }
        Some(val) => {
            if !val.as_str().is_some_and(|x| valid.contains(&x)) {
                errs.push(FieldError::not_supported(child(path, k), val, valid));
            }
        }
    }
}

/// Validates a new object.
pub fn validate_create(resource: &ResourceInfo, object: &Value) -> Vec<FieldError> {
    let mut errs = validate_object(resource, object);
    if (resource.group, resource.kind) == ("", "Pod") {
        ephemeral::validate_pod_create(object, &mut errs);
    }
    errs
}

/// The checks an object is held to on create and on update: metadata and its kind's rules.
fn validate_object(resource: &ResourceInfo, object: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_object_meta(
        object.get("metadata"),
        "metadata",
        name_rule(resource),
        Some(resource.scope),
        &mut errs,
    );
    kinds::validate_kind(resource, object, &mut errs);
    errs
}

/// Validates an update of `old` into `new` (including the immutable fields).
pub fn validate_update(resource: &ResourceInfo, new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate_object(resource, new);
    update::validate_immutable(resource, new, old, &mut errs);
    errs
}

/// Validates a write of pods/ephemeralcontainers (upstream's
/// ValidatePodEphemeralContainersUpdate): the pod as a whole, and its existing ephemeral
/// containers unchanged.
pub fn validate_ephemeral_containers_update(
    resource: &ResourceInfo,
    new: &Value,
    old: &Value,
) -> Vec<FieldError> {
    let mut errs = validate_object(resource, new);
    ephemeral::validate_update(new, old, &mut errs);
    errs
}

/// Decodes an object through its typed k8s-openapi struct: returns the object with unknown
/// fields pruned, and the JSON paths of the fields that were unknown (`spec.foo`).
pub fn prune_unknown_fields(
    resource: &ResourceInfo,
    object: Value,
) -> Result<(Value, Vec<String>), String> {
    prune::prune(resource, object).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;
    use serde_json::json;

    pub(crate) fn res(plural: &str) -> &'static ResourceInfo {
        crate::registry::RESOURCES
            .iter()
            .find(|r| r.plural == plural && r.group != "events.k8s.io")
            .unwrap()
    }

    pub(crate) fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn name_required_unless_generate_name() {
        let cms = find("", "v1", "configmaps").unwrap();
        let errs = validate_create(cms, &json!({"metadata": {}}));
        assert_eq!(
            messages(&errs),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        assert_eq!(errs[0].reason, "FieldValueRequired");
        assert!(validate_create(cms, &json!({"metadata": {"generateName": "web-"}})).is_empty());
    }

    #[test]
    fn subdomain_name_message() {
        let errs = validate_create(res("configmaps"), &json!({"metadata": {"name": "Foo"}}));
        assert_eq!(
            messages(&errs),
            vec!["metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
        );
        assert_eq!(errs[0].reason, "FieldValueInvalid");
    }

    #[test]
    fn namespace_names_are_labels() {
        let errs = validate_create(res("namespaces"), &json!({"metadata": {"name": "a.b"}}));
        assert_eq!(
            messages(&errs),
            vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
        );
    }

    #[test]
    fn service_names_are_dns1035() {
        let errs = validate_create(
            res("services"),
            &json!({"metadata": {"name": "1web"}, "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "type": "ClusterIP", "sessionAffinity": "None"}}),
        );
        assert_eq!(
            messages(&errs),
            vec!["metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
        );
    }

    #[test]
    fn label_and_annotation_keys() {
        let errs = validate_create(
            res("configmaps"),
            &json!({"metadata": {"name": "a", "labels": {"bad key": "v", "ok": "-bad"},
                "annotations": {"a/b/c": "x"}}}),
        );
        let m = messages(&errs);
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(m[0]
            .starts_with("metadata.labels: Invalid value: \"bad key\": name part must consist of"));
        assert!(m[1].starts_with(
            "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string"
        ));
        assert!(m[2].starts_with(
            "metadata.annotations: Invalid value: \"a/b/c\": a qualified name must consist of"
        ));
    }

    #[test]
    fn cluster_scoped_namespace_forbidden() {
        let errs = validate_create(
            res("nodes"),
            &json!({"metadata": {"name": "n1", "namespace": "default"}}),
        );
        assert_eq!(
            messages(&errs),
            vec!["metadata.namespace: Forbidden: not allowed on this type"]
        );
    }

    #[test]
    fn go_value_formatting() {
        assert_eq!(go_value(&json!("x")), "\"x\"");
        assert_eq!(go_value(&json!(3)), "3");
        assert_eq!(
            go_value(&json!({"b": "2", "a": "1"})),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
        assert_eq!(
            go_label_selector(&json!({"matchLabels": {"app": "web"}})),
            "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
    }

    #[test]
    fn field_error_forms() {
        assert_eq!(
            FieldError::not_supported("spec.restartPolicy", &json!("Sometimes"), &["Always", "OnFailure", "Never"]).to_string(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
        );
        assert_eq!(
            FieldError::duplicate("spec.containers[1].name", &json!("web")).to_string(),
            "spec.containers[1].name: Duplicate value: \"web\""
        );
        assert_eq!(FieldError::required("x", "").message, "Required value");
        assert_eq!(FieldError::forbidden("x", "no").message, "Forbidden: no");
        assert_eq!(FieldError::too_long("x", 10).reason, "FieldValueTooLong");
    }
}
