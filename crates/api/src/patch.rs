//! PATCH: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and Kubernetes' strategic merge
//! patch with the patch-merge keys of the built-in types.
//!
//! The strategic merge follows k8s.io/apimachinery/pkg/util/strategicpatch: lists with a
//! `merge` patch strategy are merged by their patch-merge key (or as sets for primitives),
//! every other list is replaced; the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/<f>` and
//! `$setElementOrder/<f>` directives are honoured and `null` deletes a field.

use serde_json::{Map, Value};

use crate::registry::ResourceInfo;

/// The PATCH flavours, by their Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type of a Content-Type header value (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }

    /// The Content-Type of the patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch body is not valid JSON of the expected shape.
    #[error("invalid patch body: {0}")]
    InvalidBody(String),
    /// A JSON patch operation failed (missing path, failed test).
    #[error("the json patch could not be applied: {0}")]
    JsonPatch(String),
    /// A strategic merge patch is malformed (unknown directive, missing merge key).
    #[error("unable to apply the strategic merge patch: {0}")]
    Strategic(String),
    /// The patch type is not supported for the resource.
    #[error("the patch type {0} is not supported")]
    Unsupported(&'static str),
}

/// Applies `patch` (raw body) of `patch_type` to `original` and returns the patched object.
pub fn apply_patch(
    resource: &ResourceInfo,
    original: &Value,
    patch_type: PatchType,
    patch: &[u8],
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(patch)
                .map_err(|e| PatchError::InvalidBody(e.to_string()))?;
            let mut doc = original.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| PatchError::JsonPatch(e.to_string()))?;
            Ok(doc)
        }
        PatchType::Merge => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| PatchError::InvalidBody(e.to_string()))?;
            if !p.is_object() {
                return Err(PatchError::InvalidBody(
                    "a merge patch must be a JSON object".into(),
                ));
            }
            let mut doc = original.clone();
            json_patch::merge(&mut doc, &p);
            Ok(doc)
        }
        PatchType::StrategicMerge => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| PatchError::InvalidBody(e.to_string()))?;
            strategic_merge(resource.group, resource.kind, original, &p)
        }
        PatchType::Apply => Err(PatchError::Unsupported("application/apply-patch+yaml")),
    }
}

/// Applies a strategic merge patch (already parsed) to an object of kind `group`/`kind`.
pub fn strategic_merge(
    group: &str,
    kind: &str,
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    let Value::Object(patch_map) = patch else {
        return Err(PatchError::InvalidBody(
            "a strategic merge patch must be a JSON object".into(),
        ));
    };
    let ty = Ty::Root(root_kind(group, kind));
    let original_map = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    Ok(Value::Object(merge_map(original_map, patch_map, ty)?))
}

/// Root kinds with a schema of merge keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pod,
    Workload,
    Deployment,
    StatefulSet,
    Service,
    Node,
    ServiceAccount,
    Pvc,
    Other,
}

fn root_kind(group: &str, kind: &str) -> Kind {
    match (group, kind) {
        ("", "Pod") => Kind::Pod,
        ("apps", "Deployment") => Kind::Deployment,
        ("apps", "StatefulSet") => Kind::StatefulSet,
        ("apps", "ReplicaSet")
        | ("apps", "DaemonSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => Kind::Workload,
        ("", "Service") => Kind::Service,
        ("", "Node") => Kind::Node,
        ("", "ServiceAccount") => Kind::ServiceAccount,
        ("", "PersistentVolumeClaim") => Kind::Pvc,
        _ => Kind::Other,
    }
}

/// A position in an object's type tree that has merge metadata somewhere below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Root(Kind),
    Meta,
    WorkloadSpec(Kind),
    PodTemplate,
    PodSpec,
    Container,
    Status,
    PodStatus,
    NodeSpec,
    NodeStatus,
    ServiceSpec,
    Unknown,
}

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// Atomic: the patch's list replaces the original.
    Replace,
    /// Merge lists of maps by this key.
    MergeKey(&'static str),
    /// Merge lists of primitives as sets.
    MergeSet,
}

impl Ty {
    fn child(self, key: &str) -> Ty {
        match (self, key) {
            (Ty::Root(_), "metadata") => Ty::Meta,
            (Ty::Root(Kind::Pod), "spec") => Ty::PodSpec,
            (Ty::Root(Kind::Pod), "status") => Ty::PodStatus,
            (Ty::Root(k @ (Kind::Workload | Kind::Deployment | Kind::StatefulSet)), "spec") => {
                Ty::WorkloadSpec(k)
            }
            (Ty::Root(Kind::Service), "spec") => Ty::ServiceSpec,
            (Ty::Root(Kind::Node), "spec") => Ty::NodeSpec,
            (Ty::Root(Kind::Node), "status") => Ty::NodeStatus,
            (Ty::Root(_), "status") => Ty::Status,
            (Ty::WorkloadSpec(_), "template") => Ty::PodTemplate,
            (Ty::WorkloadSpec(Kind::StatefulSet), "volumeClaimTemplates") => Ty::Root(Kind::Pvc),
            (Ty::PodTemplate, "metadata") => Ty::Meta,
            (Ty::PodTemplate, "spec") => Ty::PodSpec,
            (Ty::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => Ty::Container,
            _ => Ty::Unknown,
        }
    }

    fn list(self, key: &str) -> ListStrategy {
        use ListStrategy::*;
        match (self, key) {
            (Ty::Meta, "finalizers") => MergeSet,
            (Ty::Meta, "ownerReferences") => MergeKey("uid"),
            (Ty::Root(Kind::ServiceAccount), "secrets") => MergeKey("name"),
            (Ty::PodSpec, "volumes") => MergeKey("name"),
            (Ty::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
                MergeKey("name")
            }
            (Ty::PodSpec, "imagePullSecrets") => MergeKey("name"),
            (Ty::PodSpec, "hostAliases") => MergeKey("ip"),
            (Ty::PodSpec, "topologySpreadConstraints") => MergeKey("topologyKey"),
            (Ty::PodSpec, "schedulingGates") => MergeKey("name"),
            (Ty::PodSpec, "resourceClaims") => MergeKey("name"),
            (Ty::Container, "ports") => MergeKey("containerPort"),
            (Ty::Container, "env") => MergeKey("name"),
            (Ty::Container, "volumeMounts") => MergeKey("mountPath"),
            (Ty::Container, "volumeDevices") => MergeKey("devicePath"),
            (Ty::ServiceSpec, "ports") => MergeKey("port"),
            (Ty::NodeSpec, "podCIDRs") => MergeSet,
            (Ty::Status | Ty::PodStatus | Ty::NodeStatus, "conditions") => MergeKey("type"),
            (Ty::PodStatus, "podIPs" | "hostIPs") => MergeKey("ip"),
            (Ty::NodeStatus, "addresses") => MergeKey("type"),
            _ => Replace,
        }
    }
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    ty: Ty,
) -> Result<Map<String, Value>, PatchError> {
    match patch.get(DIRECTIVE) {
        None => {}
        Some(Value::String(d)) if d == "replace" => {
            let mut out = patch.clone();
            out.remove(DIRECTIVE);
            return clean(out, ty);
        }
        Some(Value::String(d)) if d == "delete" => return Ok(Map::new()),
        Some(Value::String(d)) if d == "merge" => {}
        Some(other) => {
            return Err(PatchError::Strategic(format!(
                "unknown patch type: {other} in map"
            )))
        }
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let Some(keys) = retain.as_array() else {
            return Err(PatchError::Strategic(
                "$retainKeys must be a list of strings".into(),
            ));
        };
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        for (k, v) in patch {
            if !v.is_null() && !k.starts_with('$') && !keys.contains(&k.as_str()) {
                return Err(PatchError::Strategic(format!(
                    "all fields in the patch must be listed in $retainKeys: {k} is missing"
                )));
            }
        }
        original.retain(|k, _| keys.contains(&k.as_str()));
    }
    // Element order directives apply after the lists are merged, against the original order.
    let mut orders: Vec<(&str, &Value, Vec<Value>)> = Vec::new();
    for (k, v) in patch {
        if k == DIRECTIVE || k == RETAIN_KEYS {
            continue;
        }
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            let server_order = original
                .get(field)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            orders.push((field, v, server_order));
            continue;
        }
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) {
            let Some(remove) = v.as_array() else {
                return Err(PatchError::Strategic(format!(
                    "{k} must be a list of primitives"
                )));
            };
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|i| !remove.contains(i));
            }
            continue;
        }
        if k.starts_with('$') {
            return Err(PatchError::Strategic(format!("unknown directive {k}")));
        }
        if v.is_null() {
            original.remove(k);
            continue;
        }
        let merged = match original.remove(k) {
            None => merge_value(None, v, ty, k)?,
            Some(orig) => merge_value(Some(orig), v, ty, k)?,
        };
        if let Some(m) = merged {
            original.insert(k.clone(), m);
        }
    }
    for (field, order, server_order) in orders {
        let Some(order) = order.as_array() else {
            return Err(PatchError::Strategic(format!(
                "{SET_ORDER}{field} must be a list"
            )));
        };
        let key = match ty.list(field) {
            ListStrategy::MergeKey(key) => Some(key),
            ListStrategy::MergeSet => None,
            // Order directives only apply to merged lists.
            ListStrategy::Replace => continue,
        };
        if let Some(Value::Array(items)) = original.get_mut(field) {
            let merged = std::mem::take(items);
            *items = normalize_order(merged, order, &server_order, key);
        }
    }
    Ok(original)
}

/// Merges one field; `None` means the field ends up absent.
fn merge_value(
    original: Option<Value>,
    patch: &Value,
    parent: Ty,
    key: &str,
) -> Result<Option<Value>, PatchError> {
    let ty = parent.child(key);
    match patch {
        Value::Object(pm) => {
            let om = match original {
                Some(Value::Object(om)) => om,
                _ => Map::new(),
            };
            Ok(Some(Value::Object(merge_map(om, pm, ty)?)))
        }
        Value::Array(pl) => {
            let strategy = parent.list(key);
            let ol = match original {
                Some(Value::Array(ol)) => Some(ol),
                _ => None,
            };
            merge_list(ol, pl, strategy, ty).map(|l| Some(Value::Array(l)))
        }
        other => Ok(Some(other.clone())),
    }
}

fn merge_list(
    original: Option<Vec<Value>>,
    patch: &[Value],
    strategy: ListStrategy,
    ty: Ty,
) -> Result<Vec<Value>, PatchError> {
    // A `{"$patch": "replace"}` element replaces the whole list with the other elements.
    let replace = patch.iter().any(|e| {
        e.as_object()
            .and_then(|m| m.get(DIRECTIVE))
            .and_then(Value::as_str)
            == Some("replace")
    });
    if replace {
        let rest: Vec<Value> = patch
            .iter()
            .filter(|e| {
                e.as_object()
                    .and_then(|m| m.get(DIRECTIVE))
                    .and_then(Value::as_str)
                    != Some("replace")
            })
            .cloned()
            .collect();
        return clean_list(rest, ty);
    }
    match strategy {
        ListStrategy::Replace => clean_list(patch.to_vec(), ty),
        ListStrategy::MergeSet => {
            let server_order = original.clone().unwrap_or_default();
            let mut out = original.unwrap_or_default();
            for p in patch {
                if p.is_object() || p.is_array() {
                    return Err(PatchError::Strategic(
                        "a list of primitives may not contain objects or lists".into(),
                    ));
                }
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
            Ok(normalize_order(out, patch, &server_order, None))
        }
        ListStrategy::MergeKey(merge_key) => {
            let server_order = original.clone().unwrap_or_default();
            let mut out = original.unwrap_or_default();
            for p in patch {
                let Value::Object(pm) = p else {
                    // Primitives in a keyed list: treat as a set.
                    if !out.contains(p) {
                        out.push(p.clone());
                    }
                    continue;
                };
                let directive = pm.get(DIRECTIVE).and_then(Value::as_str);
                let Some(key_value) = pm.get(merge_key) else {
                    return Err(PatchError::Strategic(format!(
                        "map: {} does not contain declared merge key: {merge_key}",
                        Value::Object(pm.clone())
                    )));
                };
                let pos = out
                    .iter()
                    .position(|o| o.get(merge_key).is_some_and(|v| same_key(v, key_value)));
                match directive {
                    Some("delete") => {
                        out.retain(|o| !o.get(merge_key).is_some_and(|v| same_key(v, key_value)));
                    }
                    Some("replace") => {
                        let mut m = pm.clone();
                        m.remove(DIRECTIVE);
                        let v = Value::Object(clean(m, ty)?);
                        match pos {
                            Some(i) => out[i] = v,
                            None => out.push(v),
                        }
                    }
                    None | Some("merge") => match pos {
                        Some(i) => {
                            let Value::Object(om) = std::mem::take(&mut out[i]) else {
                                out[i] = Value::Object(clean(pm.clone(), ty)?);
                                continue;
                            };
                            out[i] = Value::Object(merge_map(om, pm, ty)?);
                        }
                        None => out.push(Value::Object(clean(pm.clone(), ty)?)),
                    },
                    Some(other) => {
                        return Err(PatchError::Strategic(format!(
                            "unknown patch type: {other} in list"
                        )))
                    }
                }
            }
            Ok(normalize_order(out, patch, &server_order, Some(merge_key)))
        }
    }
}

/// Merge keys compare as JSON values, with numbers and numeric strings equal (ports).
fn same_key(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            n.to_string() == *s
        }
        _ => false,
    }
}

/// Upstream's normalizeElementOrder: the merged items named in `patch_order` come in that
/// order, the others (server-only) in their original order, and the two runs are interleaved
/// by their positions in `server_order` (mergeSortedSlice).
fn normalize_order(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let ident = |v: &Value| -> Value {
        match key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let position = |list: &[Value], item: &Value| -> Option<usize> {
        let id = ident(item);
        list.iter().position(|o| {
            let is_delete = o.get(DIRECTIVE).and_then(Value::as_str) == Some("delete");
            !is_delete && same_key(&ident(o), &id)
        })
    };
    let (mut patch_items, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|m| position(patch_order, m).is_some());
    patch_items.sort_by_key(|m| position(patch_order, m));
    server_only.sort_by_key(|m| position(server_order, m).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        patch_items.into_iter().peekable(),
    );
    loop {
        match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => out.extend(left.next()),
            (None, Some(_)) => out.extend(right.next()),
            (Some(l), Some(r)) => {
                let take_left = match (position(server_order, l), position(server_order, r)) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                };
                if take_left {
                    out.extend(left.next());
                } else {
                    out.extend(right.next());
                }
            }
        }
    }
    out
}

/// Removes directives and nulls from a value added without an original.
fn clean(map: Map<String, Value>, ty: Ty) -> Result<Map<String, Value>, PatchError> {
    merge_map(Map::new(), &map, ty)
}

fn clean_list(list: Vec<Value>, ty: Ty) -> Result<Vec<Value>, PatchError> {
    list.into_iter()
        .map(|v| match v {
            Value::Object(m) => clean(m, ty).map(Value::Object),
            other => Ok(other),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::find;
    use serde_json::json;

    fn smp(plural: &str, group: &str, original: Value, patch: Value) -> Value {
        let version = if group == "autoscaling" { "v2" } else { "v1" };
        let r = find(group, version, plural).unwrap();
        apply_patch(
            r,
            &original,
            PatchType::StrategicMerge,
            patch.to_string().as_bytes(),
        )
        .unwrap()
    }

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "web", "image": "demo-web:v1", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "side", "image": "busybox"}
            ]}}}})
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json; charset=utf-8"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        assert_eq!(
            PatchType::StrategicMerge.content_type(),
            "application/strategic-merge-patch+json"
        );
    }

    #[test]
    fn kubectl_patch_image_by_container_name() {
        let out = smp(
            "deployments",
            "apps",
            deployment(),
            json!({"spec":{"template":{"spec":{"containers":[{"name":"web","image":"demo-web:v2"}]}}}}),
        );
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["image"], "demo-web:v2");
        assert_eq!(cs[0]["ports"][0]["containerPort"], 8080);
        assert_eq!(cs[1]["name"], "side");
    }

    #[test]
    fn new_container_comes_first_without_element_order() {
        // Upstream's mergeSortedSlice puts patch items absent from the live list first.
        let out = smp(
            "deployments",
            "apps",
            deployment(),
            json!({"spec":{"template":{"spec":{"containers":[{"name":"extra","image":"x"}]}}}}),
        );
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[0]["name"], "extra");
        assert_eq!(cs[1]["name"], "web");
    }

    #[test]
    fn patch_order_is_kept_like_upstream() {
        // mergeSortedSlice: new patch items first in patch order, server-only ones interleaved.
        let out = smp(
            "deployments",
            "apps",
            deployment(),
            json!({"spec":{"template":{"spec":{"containers":[{"name":"extra","image":"x"},{"name":"web","image":"v2"}]}}}}),
        );
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["extra", "web", "side"]);
    }

    #[test]
    fn delete_directive_removes_element() {
        let out = smp(
            "deployments",
            "apps",
            deployment(),
            json!({"spec":{"template":{"spec":{"containers":[{"name":"side","$patch":"delete"}]}}}}),
        );
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 1);
    }

    #[test]
    fn env_merges_by_name_and_null_deletes() {
        let out = smp(
            "deployments",
            "apps",
            deployment(),
            json!({"metadata": {"labels": {"app": null, "tier": "fe"}},
                "spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"B","value":"3"},{"name":"C","value":"4"}]}]}}}}),
        );
        let env = out["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        assert_eq!(env.len(), 3);
        assert_eq!(env[1]["value"], "3");
        assert_eq!(out["metadata"]["labels"], json!({"tier": "fe"}));
    }

    #[test]
    fn list_without_merge_key_is_replaced() {
        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["a", "b"]);
        let out = smp(
            "deployments",
            "apps",
            d,
            json!({"spec":{"template":{"spec":{"containers":[{"name":"web","args":["c"]}]}}}}),
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["c"])
        );
    }

    #[test]
    fn retain_keys_switches_strategy() {
        let out = smp(
            "deployments",
            "apps",
            deployment(),
            json!({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn patch_replace_directive_on_map() {
        let out = smp(
            "deployments",
            "apps",
            deployment(),
            json!({"metadata":{"labels":{"$patch":"replace","only":"this"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));
    }

    #[test]
    fn patch_replace_directive_in_list() {
        let out = smp(
            "deployments",
            "apps",
            deployment(),
            json!({"spec":{"template":{"spec":{"containers":[{"$patch":"replace"},{"name":"solo","image":"x"}]}}}}),
        );
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0]["name"], "solo");
    }

    #[test]
    fn service_ports_merge_by_port() {
        let svc = json!({"kind": "Service", "spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "protocol": "TCP"}]}});
        let out = smp(
            "services",
            "",
            svc,
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        );
        let ports = out["spec"]["ports"].as_array().unwrap();
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0]["targetPort"], 9090);
        assert_eq!(ports[0]["name"], "http");
    }

    #[test]
    fn finalizers_merge_as_set_and_delete_from_primitive_list() {
        let obj = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = smp(
            "configmaps",
            "",
            obj.clone(),
            json!({"metadata": {"finalizers": ["b", "c"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let out = smp(
            "configmaps",
            "",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"finalizers": ["c", "a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let out = smp(
            "configmaps",
            "",
            obj,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn set_element_order() {
        let out = smp(
            "deployments",
            "apps",
            deployment(),
            json!({"spec":{"template":{"spec":{
                "$setElementOrder/containers":[{"name":"side"},{"name":"web"}],
                "containers":[{"name":"web","image":"demo-web:v2"}]}}}}),
        );
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs[0]["name"], "side");
        assert_eq!(cs[1]["image"], "demo-web:v2");
    }

    #[test]
    fn kubectl_apply_three_way_patch() {
        // What kubectl apply sends after editing replicas, an env var and the image.
        let patch = json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"replicas": 3, "template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                "containers": [{"$setElementOrder/env": [{"name": "A"}],
                    "env": [{"$patch": "delete", "name": "B"}],
                    "image": "demo-web:v2", "name": "web"}]}}}});
        let out = smp("deployments", "apps", deployment(), patch);
        assert_eq!(out["spec"]["replicas"], 3);
        let web = &out["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(web["image"], "demo-web:v2");
        assert_eq!(web["env"], json!([{"name": "A", "value": "1"}]));
        assert!(out["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_some());
    }

    #[test]
    fn missing_merge_key_is_an_error() {
        let r = find("apps", "v1", "deployments").unwrap();
        let e = apply_patch(
            r,
            &deployment(),
            PatchType::StrategicMerge,
            br#"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("does not contain declared merge key: name"),
            "{e}"
        );
    }

    #[test]
    fn unknown_types_merge_maps_and_replace_lists() {
        let cm = json!({"data": {"a": "1", "b": "2"}, "list": [1, 2]});
        let out = smp(
            "configmaps",
            "",
            cm,
            json!({"data": {"b": null, "c": "3"}, "list": [3]}),
        );
        assert_eq!(out["data"], json!({"a": "1", "c": "3"}));
        assert_eq!(out["list"], json!([3]));
    }

    #[test]
    fn new_fields_are_cleaned_of_directives() {
        let out = smp(
            "pods",
            "",
            json!({"spec": {"containers": [{"name": "c"}]}}),
            json!({"spec": {"volumes": [{"name": "v", "emptyDir": {"$patch": "merge"}}]}}),
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "emptyDir": {}}])
        );
    }

    #[test]
    fn status_conditions_merge_by_type() {
        let pod = json!({"status": {"conditions": [{"type": "Ready", "status": "False"},
            {"type": "PodScheduled", "status": "True"}]}});
        let out = smp(
            "pods",
            "",
            pod,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        let c = out["status"]["conditions"].as_array().unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0]["status"], "True");
    }

    #[test]
    fn owner_references_merge_by_uid() {
        let obj = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}});
        let out = smp(
            "replicasets",
            "apps",
            obj,
            json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}),
        );
        assert_eq!(
            out["metadata"]["ownerReferences"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn json_patch_and_merge_patch() {
        let r = find("", "v1", "configmaps").unwrap();
        let cm = json!({"data": {"a": "1"}});
        let out = apply_patch(
            r,
            &cm,
            PatchType::Json,
            br#"[{"op":"add","path":"/data/b","value":"2"}]"#,
        )
        .unwrap();
        assert_eq!(out["data"], json!({"a": "1", "b": "2"}));
        let err = apply_patch(
            r,
            &cm,
            PatchType::Json,
            br#"[{"op":"remove","path":"/data/zz"}]"#,
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::JsonPatch(_)));
        let out = apply_patch(r, &cm, PatchType::Merge, br#"{"data":{"a":null,"c":"3"}}"#).unwrap();
        assert_eq!(out["data"], json!({"c": "3"}));
        assert!(matches!(
            apply_patch(r, &cm, PatchType::Merge, b"not json"),
            Err(PatchError::InvalidBody(_))
        ));
        assert!(matches!(
            apply_patch(r, &cm, PatchType::Apply, b"{}"),
            Err(PatchError::Unsupported(_))
        ));
    }

    #[test]
    fn merge_patch_replaces_lists() {
        let r = find("apps", "v1", "deployments").unwrap();
        let out = apply_patch(
            r,
            &deployment(),
            PatchType::Merge,
            br#"{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"x"}]}}}}"#,
        )
        .unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}
