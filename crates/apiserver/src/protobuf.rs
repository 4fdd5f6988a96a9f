//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! which client-go's typed clients (and so `kubectl create namespace|configmap|secret|
//! serviceaccount|service` and `kubectl create role|clusterrole|rolebinding|clusterrolebinding`)
//! send. The `k8s\0` envelope is unwrapped and the object decoded into its JSON form with a
//! field table per type. Only the types listed in [`schema_for`] are
//! supported; others are answered 415 so the client can send JSON.

use base64::Engine;
use serde_json::{json, Map, Value};

/// The four magic bytes before every protobuf-encoded Kubernetes object.
const MAGIC: &[u8] = b"k8s\0";

/// What a field holds and how it becomes JSON. Go's JSON encoding drops the zero values of
/// non-pointer `omitempty` fields, which protobuf always carries: empty strings, and the ints and
/// bools marked as such; pointer fields keep theirs (`Bool`, `Int`).
enum Field {
    Str,
    Bool,
    BoolOmitFalse,
    Int,
    IntOmitZero,
    Time,
    Msg(&'static [(u32, &'static str, Field)]),
    RepStr,
    RepMsg(&'static [(u32, &'static str, Field)]),
    MapStr,
    MapBytes,
    /// map<string, ExtraValue> (ExtraValue: `repeated string items = 1`): a map of string lists.
    MapStrList,
    /// intstr.IntOrString: {type 1 (0 int, 1 string), intVal 2, strVal 3}.
    IntOrStr,
}

use Field::*;

const OWNER_REF: &[(u32, &str, Field)] = &[
    (5, "apiVersion", Str),
    (1, "kind", Str),
    (3, "name", Str),
    (4, "uid", Str),
    (6, "controller", Bool),
    (7, "blockOwnerDeletion", Bool),
];

const OBJECT_META: &[(u32, &str, Field)] = &[
    (1, "name", Str),
    (2, "generateName", Str),
    (3, "namespace", Str),
    (5, "uid", Str),
    (6, "resourceVersion", Str),
    (7, "generation", Int),
    (8, "creationTimestamp", Time),
    (9, "deletionTimestamp", Time),
    (10, "deletionGracePeriodSeconds", Int),
    (11, "labels", MapStr),
    (12, "annotations", MapStr),
    (13, "ownerReferences", RepMsg(OWNER_REF)),
    (14, "finalizers", RepStr),
];

const NAMESPACE: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "spec", Msg(&[(1, "finalizers", RepStr)])),
    (3, "status", Msg(&[(1, "phase", Str)])),
];

const CONFIG_MAP: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "data", MapStr),
    (3, "binaryData", MapBytes),
    (4, "immutable", Bool),
];

const SECRET: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "data", MapBytes),
    (3, "type", Str),
    (4, "stringData", MapStr),
    (5, "immutable", Bool),
];

const OBJECT_REF: &[(u32, &str, Field)] = &[
    (1, "kind", Str),
    (2, "namespace", Str),
    (3, "name", Str),
    (4, "uid", Str),
    (5, "apiVersion", Str),
];

const SERVICE_ACCOUNT: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "secrets", RepMsg(OBJECT_REF)),
    (3, "imagePullSecrets", RepMsg(&[(1, "name", Str)])),
    (4, "automountServiceAccountToken", Bool),
];

const SERVICE_PORT: &[(u32, &str, Field)] = &[
    (1, "name", Str),
    (2, "protocol", Str),
    (6, "appProtocol", Str),
    (3, "port", Int),
    (4, "targetPort", IntOrStr),
    (5, "nodePort", IntOmitZero),
];

const SERVICE_SPEC: &[(u32, &str, Field)] = &[
    (1, "ports", RepMsg(SERVICE_PORT)),
    (2, "selector", MapStr),
    (3, "clusterIP", Str),
    (18, "clusterIPs", RepStr),
    (4, "type", Str),
    (5, "externalIPs", RepStr),
    (7, "sessionAffinity", Str),
    (8, "loadBalancerIP", Str),
    (9, "loadBalancerSourceRanges", RepStr),
    (10, "externalName", Str),
    (11, "externalTrafficPolicy", Str),
    (12, "healthCheckNodePort", IntOmitZero),
    (13, "publishNotReadyAddresses", BoolOmitFalse),
    (
        14,
        "sessionAffinityConfig",
        Msg(&[(1, "clientIP", Msg(&[(1, "timeoutSeconds", Int)]))]),
    ),
    (19, "ipFamilies", RepStr),
    (17, "ipFamilyPolicy", Str),
    (20, "allocateLoadBalancerNodePorts", Bool),
    (21, "loadBalancerClass", Str),
    (22, "internalTrafficPolicy", Str),
    (23, "trafficDistribution", Str),
];

/// A Service as clients send it: its status (load balancer ingress) is the server's to write.
const SERVICE: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "spec", Msg(SERVICE_SPEC)),
];

const LABEL_SELECTOR: &[(u32, &str, Field)] = &[
    (1, "matchLabels", MapStr),
    (
        2,
        "matchExpressions",
        RepMsg(&[(1, "key", Str), (2, "operator", Str), (3, "values", RepStr)]),
    ),
];

const POLICY_RULE: &[(u32, &str, Field)] = &[
    (1, "verbs", RepStr),
    (2, "apiGroups", RepStr),
    (3, "resources", RepStr),
    (4, "resourceNames", RepStr),
    (5, "nonResourceURLs", RepStr),
];

/// rbac/v1 Role (`kubectl create role`).
const ROLE: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "rules", RepMsg(POLICY_RULE)),
];

/// rbac/v1 ClusterRole (`kubectl create clusterrole`, with `--aggregation-rule`).
const CLUSTER_ROLE: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "rules", RepMsg(POLICY_RULE)),
    (
        3,
        "aggregationRule",
        Msg(&[(1, "clusterRoleSelectors", RepMsg(LABEL_SELECTOR))]),
    ),
];

/// rbac/v1 RoleBinding and ClusterRoleBinding (`kubectl create [cluster]rolebinding`).
const BINDING: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (
        2,
        "subjects",
        RepMsg(&[
            (1, "kind", Str),
            (2, "apiGroup", Str),
            (3, "name", Str),
            (4, "namespace", Str),
        ]),
    ),
    (
        3,
        "roleRef",
        Msg(&[(1, "apiGroup", Str), (2, "kind", Str), (3, "name", Str)]),
    ),
];

/// The field table of a supported kind.
const SELECTOR_REQUIREMENT: &[(u32, &str, Field)] =
    &[(1, "key", Str), (2, "operator", Str), (3, "values", RepStr)];

const SELECTOR_ATTRIBUTES: &[(u32, &str, Field)] = &[
    (1, "rawSelector", Str),
    (2, "requirements", RepMsg(SELECTOR_REQUIREMENT)),
];

const RESOURCE_ATTRIBUTES: &[(u32, &str, Field)] = &[
    (1, "namespace", Str),
    (2, "verb", Str),
    (3, "group", Str),
    (4, "version", Str),
    (5, "resource", Str),
    (6, "subresource", Str),
    (7, "name", Str),
    (8, "fieldSelector", Msg(SELECTOR_ATTRIBUTES)),
    (9, "labelSelector", Msg(SELECTOR_ATTRIBUTES)),
];

const NON_RESOURCE_ATTRIBUTES: &[(u32, &str, Field)] = &[(1, "path", Str), (2, "verb", Str)];

const ACCESS_REVIEW_SPEC: &[(u32, &str, Field)] = &[
    (1, "resourceAttributes", Msg(RESOURCE_ATTRIBUTES)),
    (2, "nonResourceAttributes", Msg(NON_RESOURCE_ATTRIBUTES)),
    (3, "user", Str),
    (4, "groups", RepStr),
    (5, "extra", MapStrList),
    (6, "uid", Str),
];

/// SubjectAccessReview and LocalSubjectAccessReview (the status is the server's to fill).
const SUBJECT_ACCESS_REVIEW: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "spec", Msg(ACCESS_REVIEW_SPEC)),
];

const SELF_SUBJECT_ACCESS_REVIEW: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (
        2,
        "spec",
        Msg(&[
            (1, "resourceAttributes", Msg(RESOURCE_ATTRIBUTES)),
            (2, "nonResourceAttributes", Msg(NON_RESOURCE_ATTRIBUTES)),
        ]),
    ),
];

const SELF_SUBJECT_RULES_REVIEW: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (2, "spec", Msg(&[(1, "namespace", Str)])),
];

const SELF_SUBJECT_REVIEW: &[(u32, &str, Field)] = &[(1, "metadata", Msg(OBJECT_META))];

const TOKEN_REVIEW: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (
        2,
        "spec",
        Msg(&[(1, "token", Str), (2, "audiences", RepStr)]),
    ),
];

const TOKEN_REQUEST: &[(u32, &str, Field)] = &[
    (1, "metadata", Msg(OBJECT_META)),
    (
        2,
        "spec",
        Msg(&[
            (1, "audiences", RepStr),
            (4, "expirationSeconds", Int),
            (
                3,
                "boundObjectRef",
                Msg(&[
                    (1, "kind", Str),
                    (2, "apiVersion", Str),
                    (3, "name", Str),
                    (4, "uid", Str),
                ]),
            ),
        ]),
    ),
];

fn schema_for(api_version: &str, kind: &str) -> Option<&'static [(u32, &'static str, Field)]> {
    match (api_version, kind) {
        ("authentication.k8s.io/v1", "TokenReview") => Some(TOKEN_REVIEW),
        ("authentication.k8s.io/v1", "TokenRequest") => Some(TOKEN_REQUEST),
        ("authentication.k8s.io/v1", "SelfSubjectReview") => Some(SELF_SUBJECT_REVIEW),
        ("authorization.k8s.io/v1", "SubjectAccessReview" | "LocalSubjectAccessReview") => {
            Some(SUBJECT_ACCESS_REVIEW)
        }
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => Some(SELF_SUBJECT_ACCESS_REVIEW),
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => Some(SELF_SUBJECT_RULES_REVIEW),
        ("v1", "Namespace") => Some(NAMESPACE),
        ("v1", "ConfigMap") => Some(CONFIG_MAP),
        ("v1", "Secret") => Some(SECRET),
        ("v1", "ServiceAccount") => Some(SERVICE_ACCOUNT),
        ("v1", "Service") => Some(SERVICE),
        ("rbac.authorization.k8s.io/v1", "Role") => Some(ROLE),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => Some(CLUSTER_ROLE),
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => Some(BINDING),
        _ => None,
    }
}

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    #[error("the protobuf body does not start with the k8s magic bytes")]
    NoMagic,
    #[error("the protobuf body is malformed: {0}")]
    Malformed(&'static str),
    #[error("protobuf bodies of {0} are not supported by this server; send application/json")]
    Unsupported(String),
}

struct Reader<'a> {
    buf: &'a [u8],
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut out: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or(ProtobufError::Malformed("truncated varint"))?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(ProtobufError::Malformed("varint too long"))
    }

    fn next(&mut self) -> Result<Option<(u32, Wire<'a>)>, ProtobufError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field =
            u32::try_from(key >> 3).map_err(|_| ProtobufError::Malformed("field number"))?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtobufError::Malformed("length"))?;
                if len > self.buf.len() {
                    return Err(ProtobufError::Malformed("length beyond the body"));
                }
                let (data, rest) = self.buf.split_at(len);
                self.buf = rest;
                Wire::Bytes(data)
            }
            1 => {
                self.skip(8)?;
                Wire::Fixed
            }
            5 => {
                self.skip(4)?;
                Wire::Fixed
            }
            _ => return Err(ProtobufError::Malformed("unsupported wire type")),
        };
        Ok(Some((field, wire)))
    }

    fn skip(&mut self, n: usize) -> Result<(), ProtobufError> {
        if self.buf.len() < n {
            return Err(ProtobufError::Malformed("truncated fixed field"));
        }
        self.buf = &self.buf[n..];
        Ok(())
    }
}

fn text(bytes: &[u8]) -> Result<String, ProtobufError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ProtobufError::Malformed("invalid UTF-8 in a string"))
}

fn map_entry(bytes: &[u8], as_bytes: bool) -> Result<(String, Value), ProtobufError> {
    let mut r = Reader { buf: bytes };
    let mut key = String::new();
    let mut value = json!("");
    while let Some((f, w)) = r.next()? {
        match (f, w) {
            (1, Wire::Bytes(b)) => key = text(b)?,
            (2, Wire::Bytes(b)) if as_bytes => {
                value = json!(base64::engine::general_purpose::STANDARD.encode(b))
            }
            (2, Wire::Bytes(b)) => value = json!(text(b)?),
            _ => {}
        }
    }
    Ok((key, value))
}

/// One entry of a map<string, ExtraValue>: the key and its list of strings.
fn string_list_entry(bytes: &[u8]) -> Result<(String, Value), ProtobufError> {
    let mut r = Reader { buf: bytes };
    let mut key = String::new();
    let mut items = Vec::new();
    while let Some((f, w)) = r.next()? {
        match (f, w) {
            (1, Wire::Bytes(b)) => key = text(b)?,
            (2, Wire::Bytes(b)) => {
                let mut inner = Reader { buf: b };
                while let Some((g, x)) = inner.next()? {
                    if let (1, Wire::Bytes(s)) = (g, x) {
                        items.push(json!(text(s)?));
                    }
                }
            }
            _ => {}
        }
    }
    Ok((key, Value::Array(items)))
}

fn time(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut r = Reader { buf: bytes };
    let mut seconds: i64 = 0;
    while let Some((f, w)) = r.next()? {
        if let (1, Wire::Varint(v)) = (f, w) {
            seconds = v as i64;
        }
    }
    let t = jiff::Timestamp::from_second(seconds)
        .map_err(|_| ProtobufError::Malformed("timestamp out of range"))?;
    Ok(json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn int_or_string(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let mut r = Reader { buf: bytes };
    let (mut is_string, mut int, mut string) = (false, 0i64, String::new());
    while let Some((f, w)) = r.next()? {
        match (f, w) {
            (1, Wire::Varint(v)) => is_string = v == 1,
            (2, Wire::Varint(v)) => int = i64::from(v as i32),
            (3, Wire::Bytes(b)) => string = text(b)?,
            _ => {}
        }
    }
    Ok(if is_string { json!(string) } else { json!(int) })
}

fn message(bytes: &[u8], schema: &[(u32, &str, Field)]) -> Result<Value, ProtobufError> {
    let mut r = Reader { buf: bytes };
    let mut out = Map::new();
    while let Some((num, wire)) = r.next()? {
        let Some((_, name, field)) = schema.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let name = name.to_string();
        match (field, wire) {
            (Str, Wire::Bytes(b)) => {
                if !b.is_empty() {
                    out.insert(name, json!(text(b)?));
                }
            }
            (BoolOmitFalse, Wire::Varint(v)) => {
                if v != 0 {
                    out.insert(name, json!(true));
                }
            }
            (IntOmitZero, Wire::Varint(v)) => {
                if v != 0 {
                    out.insert(name, json!(v as i64));
                }
            }
            (Bool, Wire::Varint(v)) => {
                out.insert(name, json!(v != 0));
            }
            (Int, Wire::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (Time, Wire::Bytes(b)) => {
                // Go encodes a zero metav1.Time as an empty message: JSON null, left out.
                let t = time(b)?;
                if t != json!("1970-01-01T00:00:00Z") {
                    out.insert(name, t);
                }
            }
            (Msg(s), Wire::Bytes(b)) => {
                out.insert(name, message(b, s)?);
            }
            (RepStr, Wire::Bytes(b)) => {
                let entry = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = entry.as_array_mut() {
                    a.push(json!(text(b)?));
                }
            }
            (RepMsg(s), Wire::Bytes(b)) => {
                let item = message(b, s)?;
                let entry = out.entry(name).or_insert_with(|| json!([]));
                if let Some(a) = entry.as_array_mut() {
                    a.push(item);
                }
            }
            (IntOrStr, Wire::Bytes(b)) => {
                out.insert(name, int_or_string(b)?);
            }
            (MapStr, Wire::Bytes(b)) | (MapBytes, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, matches!(field, MapBytes))?;
                let entry = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = entry.as_object_mut() {
                    m.insert(k, v);
                }
            }
            (MapStrList, Wire::Bytes(b)) => {
                let (k, v) = string_list_entry(b)?;
                let entry = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = entry.as_object_mut() {
                    m.insert(k, v);
                }
            }
            _ => return Err(ProtobufError::Malformed("a field has the wrong wire type")),
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a `k8s\0`-wrapped protobuf object into its JSON form.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let inner = body.strip_prefix(MAGIC).ok_or(ProtobufError::NoMagic)?;
    let mut r = Reader { buf: inner };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    while let Some((num, wire)) = r.next()? {
        match (num, wire) {
            (1, Wire::Bytes(tm)) => {
                let mut t = Reader { buf: tm };
                while let Some((f, w)) = t.next()? {
                    match (f, w) {
                        (1, Wire::Bytes(b)) => api_version = text(b)?,
                        (2, Wire::Bytes(b)) => kind = text(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = Some(b),
            _ => {}
        }
    }
    let schema = schema_for(&api_version, &kind)
        .ok_or_else(|| ProtobufError::Unsupported(format!("{api_version}/{kind}")))?;
    let mut obj = message(raw.unwrap_or(&[]), schema)?;
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(api_version));
        m.insert("kind".into(), json!(kind));
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![((num << 3) | 2) as u8, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }

    /// upstream's fully populated fixtures (k8s.io/api testdata/HEAD at v0.33.9) decode into
    /// what the JSON fixtures hold, for every field of the RBAC kinds' own.
    #[test]
    fn decodes_upstreams_rbac_fixtures() {
        let fixtures: [(&str, &[u8], &[&str]); 4] = [
            (
                "Role",
                include_bytes!("testdata/rbac.authorization.k8s.io.v1.Role.pb"),
                &["rules"],
            ),
            (
                "ClusterRole",
                include_bytes!("testdata/rbac.authorization.k8s.io.v1.ClusterRole.pb"),
                &["rules", "aggregationRule"],
            ),
            (
                "RoleBinding",
                include_bytes!("testdata/rbac.authorization.k8s.io.v1.RoleBinding.pb"),
                &["subjects", "roleRef"],
            ),
            (
                "ClusterRoleBinding",
                include_bytes!("testdata/rbac.authorization.k8s.io.v1.ClusterRoleBinding.pb"),
                &["subjects", "roleRef"],
            ),
        ];
        for (kind, pb, fields) in fixtures {
            let v = decode(pb).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(v["kind"], kind);
            assert_eq!(v["apiVersion"], "rbac.authorization.k8s.io/v1");
            assert_eq!(v["metadata"]["name"], "nameValue", "{kind}");
            assert_eq!(v["metadata"]["labels"]["labelsKey"], "labelsValue");
            let expected: Value = match kind {
                "Role" => json!({"rules": [RULE.clone()]}),
                "ClusterRole" => json!({"rules": [RULE.clone()], "aggregationRule": {
                    "clusterRoleSelectors": [{"matchLabels": {"matchLabelsKey": "matchLabelsValue"},
                    "matchExpressions": [{"key": "keyValue", "operator": "operatorValue",
                        "values": ["valuesValue"]}]}]}}),
                _ => json!({"subjects": [{"kind": "kindValue", "apiGroup": "apiGroupValue",
                    "name": "nameValue", "namespace": "namespaceValue"}],
                    "roleRef": {"apiGroup": "apiGroupValue", "kind": "kindValue",
                        "name": "nameValue"}}),
            };
            for f in fields {
                assert_eq!(v[*f], expected[*f], "{kind}.{f}");
            }
        }
    }

    static RULE: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
        json!({"verbs": ["verbsValue"], "apiGroups": ["apiGroupsValue"],
            "resources": ["resourcesValue"], "resourceNames": ["resourceNamesValue"],
            "nonResourceURLs": ["nonResourceURLsValue"]})
    });

    #[test]
    fn decodes_a_configmap_like_client_go_sends_it() {
        let mut meta = field(1, b"cfg");
        meta.extend(field(11, &[field(1, b"app"), field(2, b"web")].concat()));
        let mut cm = field(1, &meta);
        cm.extend(field(2, &[field(1, b"k"), field(2, b"v")].concat()));
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let mut body = MAGIC.to_vec();
        body.extend(field(1, &type_meta));
        body.extend(field(2, &cm));
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cfg", "labels": {"app": "web"}}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn refuses_garbage_and_unknown_kinds() {
        assert_eq!(decode(b"{}"), Err(ProtobufError::NoMagic));
        assert!(matches!(
            decode(b"k8s\0\x0a\x7f"),
            Err(ProtobufError::Malformed(_))
        ));
        let type_meta = [field(1, b"apps/v1"), field(2, b"Deployment")].concat();
        let mut body = MAGIC.to_vec();
        body.extend(field(1, &type_meta));
        assert!(matches!(decode(&body), Err(ProtobufError::Unsupported(_))));
    }

    fn varint(num: u32, v: u8) -> Vec<u8> {
        vec![(num << 3) as u8, v]
    }

    #[test]
    fn decodes_a_service_with_int_and_named_target_ports() {
        let int_port = [varint(1, 0), varint(2, 80)].concat();
        let named_port = [varint(1, 1), field(3, b"http")].concat();
        let p1 = [
            field(1, b"a"),
            field(2, b"TCP"),
            varint(3, 80),
            field(4, &int_port),
        ]
        .concat();
        let p2 = [
            field(1, b"b"),
            varint(3, 81),
            field(4, &named_port),
            varint(5, 100),
        ]
        .concat();
        let spec = [
            field(1, &p1),
            field(1, &p2),
            field(2, &[field(1, b"app"), field(2, b"web")].concat()),
            field(4, b"NodePort"),
            field(7, b"ClientIP"),
            field(14, &field(1, &varint(1, 60))),
        ]
        .concat();
        let svc = [field(1, &field(1, b"web")), field(2, &spec)].concat();
        let type_meta = [field(1, b"v1"), field(2, b"Service")].concat();
        let mut body = MAGIC.to_vec();
        body.extend(field(1, &type_meta));
        body.extend(field(2, &svc));
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"ports": [
                    {"name": "a", "protocol": "TCP", "port": 80, "targetPort": 80},
                    {"name": "b", "port": 81, "targetPort": "http", "nodePort": 100}],
                "selector": {"app": "web"}, "type": "NodePort", "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}})
        );
    }
}
