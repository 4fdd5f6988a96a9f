//! Decoding through the typed k8s-openapi structs: unknown fields are found by comparing the
//! input with its typed round trip, type mismatches are reported like Go's encoding/json.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use k8s_openapi::api::{
    apps, autoscaling, batch, coordination, core, discovery, events, policy, rbac, scheduling,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use crate::registry::ResourceInfo;

/// Why an object could not be decoded into its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneError {
    /// A value has the wrong JSON type for its field.
    #[error("json: cannot unmarshal {got} into Go struct field {kind}.{path} of type {expected}")]
    TypeMismatch {
        kind: String,
        path: String,
        got: String,
        expected: String,
    },
    /// Any other decoding problem (bad enum value, bad base64, wrong apiVersion).
    #[error("error decoding {kind}.{path}: {message}")]
    Decode {
        kind: String,
        path: String,
        message: String,
    },
}

/// Prunes an object of `resource`; see [`prune_kind`].
pub(crate) fn prune(
    resource: &ResourceInfo,
    object: Value,
) -> Result<(Value, Vec<String>), PruneError> {
    prune_kind(resource.group, resource.kind, object)
}

/// Decodes `object` as the k8s-openapi type of `group`/`kind` and returns it with unknown fields
/// removed plus their paths. Kinds without a known type come back unchanged. Also covers the
/// subresource kinds `Binding`, `Scale` (autoscaling), `Eviction` (policy) and `DeleteOptions`.
pub fn prune_kind(
    group: &str,
    kind: &str,
    object: Value,
) -> Result<(Value, Vec<String>), PruneError> {
    let typed = match (group, kind) {
        ("", "Namespace") => roundtrip::<core::v1::Namespace>(&object, kind)?,
        ("", "Pod") => roundtrip::<core::v1::Pod>(&object, kind)?,
        ("", "Node") => roundtrip::<core::v1::Node>(&object, kind)?,
        ("", "Service") => roundtrip::<core::v1::Service>(&object, kind)?,
        ("", "Endpoints") => roundtrip::<core::v1::Endpoints>(&object, kind)?,
        ("", "ConfigMap") => roundtrip::<core::v1::ConfigMap>(&object, kind)?,
        ("", "Secret") => roundtrip::<core::v1::Secret>(&object, kind)?,
        ("", "Event") => roundtrip::<core::v1::Event>(&object, kind)?,
        ("", "ServiceAccount") => roundtrip::<core::v1::ServiceAccount>(&object, kind)?,
        ("", "PersistentVolumeClaim") => {
            roundtrip::<core::v1::PersistentVolumeClaim>(&object, kind)?
        }
        ("", "PersistentVolume") => roundtrip::<core::v1::PersistentVolume>(&object, kind)?,
        ("", "ReplicationController") => {
            roundtrip::<core::v1::ReplicationController>(&object, kind)?
        }
        ("", "ComponentStatus") => roundtrip::<core::v1::ComponentStatus>(&object, kind)?,
        ("", "Binding") => roundtrip::<core::v1::Binding>(&object, kind)?,
        ("apps", "Deployment") => roundtrip::<apps::v1::Deployment>(&object, kind)?,
        ("apps", "ReplicaSet") => roundtrip::<apps::v1::ReplicaSet>(&object, kind)?,
        ("apps", "StatefulSet") => roundtrip::<apps::v1::StatefulSet>(&object, kind)?,
        ("apps", "DaemonSet") => roundtrip::<apps::v1::DaemonSet>(&object, kind)?,
        ("apps", "ControllerRevision") => roundtrip::<apps::v1::ControllerRevision>(&object, kind)?,
        ("batch", "Job") => roundtrip::<batch::v1::Job>(&object, kind)?,
        ("coordination.k8s.io", "Lease") => roundtrip::<coordination::v1::Lease>(&object, kind)?,
        ("scheduling.k8s.io", "PriorityClass") => {
            roundtrip::<scheduling::v1::PriorityClass>(&object, kind)?
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            roundtrip::<discovery::v1::EndpointSlice>(&object, kind)?
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            roundtrip::<autoscaling::v2::HorizontalPodAutoscaler>(&object, kind)?
        }
        ("autoscaling", "Scale") => roundtrip::<autoscaling::v1::Scale>(&object, kind)?,
        ("events.k8s.io", "Event") => roundtrip::<events::v1::Event>(&object, kind)?,
        ("rbac.authorization.k8s.io", "Role") => roundtrip::<rbac::v1::Role>(&object, kind)?,
        ("rbac.authorization.k8s.io", "ClusterRole") => {
            roundtrip::<rbac::v1::ClusterRole>(&object, kind)?
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => {
            roundtrip::<rbac::v1::RoleBinding>(&object, kind)?
        }
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            roundtrip::<rbac::v1::ClusterRoleBinding>(&object, kind)?
        }
        ("policy", "Eviction") => roundtrip::<policy::v1::Eviction>(&object, kind)?,
        (_, "DeleteOptions") => roundtrip::<meta::DeleteOptions>(&object, kind)?,
        _ => return Ok((object, Vec::new())),
    };
    let mut object = object;
    let mut unknown = Vec::new();
    compare(&mut object, &typed, "", &mut unknown);
    Ok((object, unknown))
}

fn roundtrip<T: DeserializeOwned + Serialize>(
    object: &Value,
    kind: &str,
) -> Result<Value, PruneError> {
    let typed: T = serde_path_to_error::deserialize(object.clone()).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        decode_error(kind, &path, &message)
    })?;
    serde_json::to_value(&typed).map_err(|e| PruneError::Decode {
        kind: kind.to_string(),
        path: ".".into(),
        message: e.to_string(),
    })
}

fn decode_error(kind: &str, path: &str, message: &str) -> PruneError {
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((got, expected)) = rest.split_once(", expected ") {
            return PruneError::TypeMismatch {
                kind: kind.to_string(),
                path: path.to_string(),
                got: go_json_kind(got).to_string(),
                expected: go_type(expected),
            };
        }
    }
    PruneError::Decode {
        kind: kind.to_string(),
        path: path.to_string(),
        message: message.to_string(),
    }
}

fn go_json_kind(serde_unexpected: &str) -> &'static str {
    let word = serde_unexpected.split_whitespace().next().unwrap_or("");
    match word {
        "string" | "character" => "string",
        "integer" | "floating" => "number",
        "boolean" => "bool",
        "map" => "object",
        "sequence" => "array",
        "null" | "unit" => "null",
        _ => "value",
    }
}

fn go_type(serde_expected: &str) -> String {
    match serde_expected.trim() {
        "i32" | "a 32-bit integer" => "int32".into(),
        "i64" => "int64".into(),
        "f64" => "float64".into(),
        "a string" | "string" | "a borrowed string" => "string".into(),
        "a boolean" | "bool" => "bool".into(),
        "a sequence" => "[]interface {}".into(),
        "a map" => "map[string]string".into(),
        other => other
            .trim_start_matches("struct ")
            .trim_start_matches("a ")
            .to_string(),
    }
}

/// Walks the input beside its typed round trip: members the type dropped are unknown (removed
/// and reported), explicit nulls the type dropped are removed silently, numbers the type turned
/// into strings (quantities) take the typed form.
fn compare(input: &mut Value, typed: &Value, path: &str, unknown: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(im), Value::Object(tm)) => {
            let keys: Vec<String> = im.keys().cloned().collect();
            for k in keys {
                let child_path = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match tm.get(&k) {
                    Some(tv) => {
                        if let Some(iv) = im.get_mut(&k) {
                            compare(iv, tv, &child_path, unknown);
                        }
                    }
                    None => {
                        let value = im.shift_remove(&k);
                        if !matches!(value, Some(Value::Null)) {
                            unknown.push(child_path);
                        }
                    }
                }
            }
        }
        (Value::Array(ia), Value::Array(ta)) => {
            for (i, (iv, tv)) in ia.iter_mut().zip(ta).enumerate() {
                compare(iv, tv, &format!("{path}[{i}]"), unknown);
            }
        }
        (i @ Value::Number(_), Value::String(t)) => *i = Value::String(t.clone()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::prune_unknown_fields;
    use crate::validation::tests::res;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_reported_and_removed() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "foo": "bar"}], "extra": {}}});
        let (out, unknown) = prune_unknown_fields(res("pods"), pod).unwrap();
        assert_eq!(
            unknown,
            vec!["metadata.bogus", "spec.containers[0].foo", "spec.extra"]
        );
        assert!(out["spec"]["containers"][0].get("foo").is_none());
        assert_eq!(out["spec"]["containers"][0]["image"], "i");
    }

    #[test]
    fn known_fields_are_kept_as_written() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"},
                "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "demo-web:v1",
                        "resources": {"limits": {"cpu": 1, "memory": "128Mi"}}}]}}}});
        let (out, unknown) = prune_unknown_fields(res("deployments"), d.clone()).unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "1"
        );
        assert_eq!(out["metadata"], d["metadata"]);
        assert_eq!(out["spec"]["strategy"], d["spec"]["strategy"]);
    }

    #[test]
    fn explicit_nulls_are_not_unknown() {
        let cm = json!({"metadata": {"name": "c", "creationTimestamp": null}, "data": {"a": "1"}});
        let (out, unknown) = prune_unknown_fields(res("configmaps"), cm).unwrap();
        assert!(unknown.is_empty());
        assert!(out["metadata"].get("creationTimestamp").is_none());
    }

    #[test]
    fn type_mismatch_names_the_field() {
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": "3"}});
        let e = prune_unknown_fields(res("deployments"), d).unwrap_err();
        assert_eq!(
            e,
            "json: cannot unmarshal string into Go struct field Deployment.spec.replicas of type int32"
        );
        let p = json!({"metadata": {"name": "p"}, "spec": {"containers": {"name": "c"}}});
        let e = prune_unknown_fields(res("pods"), p).unwrap_err();
        assert!(
            e.contains("cannot unmarshal object into Go struct field Pod.spec.containers"),
            "{e}"
        );
    }

    #[test]
    fn secrets_need_base64() {
        let s = json!({"metadata": {"name": "s"}, "data": {"a": "not base64!"}});
        let e = prune_unknown_fields(res("secrets"), s).unwrap_err();
        assert!(e.contains("data.a"), "{e}");
        let s = json!({"metadata": {"name": "s"}, "data": {"a": "aGk="}, "stringData": {"b": "x"}});
        let (_, unknown) = prune_unknown_fields(res("secrets"), s).unwrap();
        assert!(unknown.is_empty());
    }

    #[test]
    fn every_registered_kind_round_trips_an_empty_object() {
        for r in crate::registry::RESOURCES {
            let obj =
                json!({"apiVersion": r.api_version(), "kind": r.kind, "metadata": {"name": "x"}});
            let (out, unknown) =
                prune_unknown_fields(r, obj.clone()).unwrap_or_else(|e| panic!("{}: {e}", r.kind));
            assert!(unknown.is_empty(), "{}: {unknown:?}", r.kind);
            assert_eq!(out, obj);
        }
    }

    #[test]
    fn subresource_kinds() {
        let b = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}, "x": 1});
        let (_, unknown) = prune_kind("", "Binding", b).unwrap();
        assert_eq!(unknown, vec!["x"]);
        let unknown_kind = json!({"a": 1});
        assert_eq!(
            prune_kind("example.com", "Widget", unknown_kind.clone())
                .unwrap()
                .0,
            unknown_kind
        );
    }
}
