//! The OpenAPI documents kubectl reads: v3 (`/openapi/v3` index and one document per
//! group/version, used by `kubectl explain`, by `kubectl apply` to build strategic merge patches
//! and by `kubectl apply/create --validate=strict` to detect server-side field validation) and v2
//! (`/openapi/v2`, swagger 2.0, JSON form).
//!
//! Schemas come from k8s-openapi's `schemars` feature (descriptions, types, required lists) with
//! Kubernetes' vendor extensions added: `x-kubernetes-group-version-kind` on kinds and on
//! operations, and the list/map/patch extensions from [`extensions`]. Paths follow
//! kube-apiserver's layout and operation ids for every resource in [`crate::registry`].
//! Documents are generated once and cached with their serialized bytes and a content hash.

mod extensions;
mod paths;
mod protobuf;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use k8s_openapi::api::{
    apps::v1 as apps, authentication::v1 as authn, authorization::v1 as authz,
    autoscaling::v1 as autoscaling_v1, autoscaling::v2 as autoscaling_v2, batch::v1 as batch,
    coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
    events::v1 as events, policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};

use crate::registry::{self, ResourceInfo};

/// Where v3 documents refer to schemas.
const V3_REF: &str = "#/components/schemas/";
/// Where v2 documents refer to schemas.
const V2_REF: &str = "#/definitions/";

/// Content type of the JSON documents.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type of the protobuf form of `/openapi/v2` as kube-apiserver answers it. client-go's
/// discovery (`OpenAPISchema()`) asks only for that form, spelled
/// `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`; the `@` form must not be
/// echoed back (Go's mime parser rejects it), hence the dotted form. See [`v2_protobuf`].
pub const CONTENT_TYPE_V2_PROTOBUF: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// A generated document: its serialized bytes and their hash (uppercase hex SHA-512, as
/// kube-apiserver puts in `?hash=` and the ETag).
#[derive(Debug)]
pub struct Document {
    pub bytes: Arc<Vec<u8>>,
    pub hash: String,
}

impl Document {
    fn new(value: &Value) -> Document {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        let hash = hex::encode_upper(Sha512::digest(&bytes));
        Document {
            bytes: Arc::new(bytes),
            hash,
        }
    }

    /// The ETag header value: the hash, quoted.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.hash)
    }

    /// The bytes for the life of the process (for a zero-copy `Bytes::from_static`).
    pub fn static_bytes(&'static self) -> &'static [u8] {
        self.bytes.as_slice()
    }

    /// The document parsed back into JSON (JSON documents only).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

/// The `/openapi/v3` key of a group/version: `api/v1` or `apis/apps/v1`.
pub fn v3_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The `/openapi/v3` index: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}}}`.
pub fn v3_index() -> Value {
    DOCS.v3_index.value()
}

/// The `/openapi/v3` index as bytes ready to serve (`application/json`), with its hash.
pub fn v3_index_document() -> &'static Document {
    &DOCS.v3_index
}

/// The OpenAPI 3.0 document of one group/version (`api/v1`, `apis/apps/v1`), if served.
pub fn v3_group_version(gv: &str) -> Option<Value> {
    v3_group_version_document(gv).map(Document::value)
}

/// The OpenAPI 3.0 document of one group/version with its bytes and hash.
pub fn v3_group_version_document(gv: &str) -> Option<&'static Document> {
    DOCS.v3.get(gv.trim_matches('/'))
}

/// Bytes of one group/version's v3 document (`application/json`) and its hash.
pub fn v3_group_version_bytes(gv: &str) -> Option<(Arc<Vec<u8>>, String)> {
    v3_group_version_document(gv).map(|d| (d.bytes.clone(), d.hash.clone()))
}

/// The swagger 2.0 document served at `/openapi/v2` (JSON form).
pub fn v2() -> Value {
    DOCS.v2.value()
}

/// The swagger 2.0 document (JSON form) with its bytes and hash.
pub fn v2_document() -> &'static Document {
    &DOCS.v2
}

/// Bytes of the swagger 2.0 document (`application/json`) and its hash.
pub fn v2_bytes() -> (Arc<Vec<u8>>, String) {
    (DOCS.v2.bytes.clone(), DOCS.v2.hash.clone())
}

/// The swagger 2.0 document as gnostic protobuf (serve with [`CONTENT_TYPE_V2_PROTOBUF`]
/// when [`accepts_v2_protobuf`]); its hash is the JSON form's, as kube-apiserver does.
pub fn v2_protobuf() -> &'static Document {
    &DOCS.v2_protobuf
}

/// Whether an Accept header asks for the protobuf form of `/openapi/v2` (either spelling).
pub fn accepts_v2_protobuf(accept: &str) -> bool {
    accept.split(',').any(|a| {
        a.trim()
            .starts_with("application/com.github.proto-openapi.spec.v2")
    })
}

/// Builds every document now (they are otherwise built on first use, which takes a moment).
pub fn warm_up() {
    LazyLock::force(&DOCS);
}

/// The schema name of a kind: `io.k8s.api.core.v1.Pod`, `io.k8s.api.apps.v1.Deployment`.
pub fn schema_name(group: &str, version: &str, kind: &str) -> String {
    let package = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("io.k8s.api.{package}.{version}.{kind}")
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// Every served document, built together so that the schemas are generated once and dropped.
struct Docs {
    v3_index: Document,
    v3: BTreeMap<String, Document>,
    v2: Document,
    v2_protobuf: Document,
}

static DOCS: LazyLock<Docs> = LazyLock::new(|| {
    let schemas = build_schemas();
    let v3 = build_v3(&schemas);
    let mut paths = Map::new();
    for (key, doc) in &v3 {
        paths.insert(
            key.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={}", doc.hash) }),
        );
    }
    let v3_index = Document::new(&json!({ "paths": paths }));
    let v2_value = build_v2(&schemas);
    let v2 = Document::new(&v2_value);
    let v2_protobuf = Document {
        bytes: Arc::new(protobuf::encode_document(&v2_value)),
        hash: v2.hash.clone(),
    };
    Docs {
        v3_index,
        v3,
        v2,
        v2_protobuf,
    }
});

/// The resources of a group/version that have a schema.
fn served_resources(
    schemas: &BTreeMap<String, Value>,
    group: &str,
    version: &str,
) -> Vec<&'static ResourceInfo> {
    registry::resources_in(group, version)
        .filter(|r| schemas.contains_key(&schema_name(r.group, r.version, r.kind)))
        .collect()
}

fn build_v3(schemas: &BTreeMap<String, Value>) -> BTreeMap<String, Document> {
    let mut out = BTreeMap::new();
    for gv in registry::group_versions() {
        let resources = served_resources(schemas, gv.group, gv.version);
        let mut roots: Vec<String> = Vec::new();
        for r in &resources {
            roots.push(schema_name(r.group, r.version, r.kind));
            roots.push(schema_name(r.group, r.version, &r.list_kind()));
        }
        let path_items = paths::group_version_paths(gv.group, gv.version, &resources);
        for item in &path_items {
            item.collect_refs(&mut roots);
        }
        let components = closure(schemas, &roots);
        let mut paths_json = Map::new();
        for item in &path_items {
            paths_json.insert(item.path.clone(), item.to_v3());
        }
        let doc = json!({
            "openapi": "3.0.0",
            "info": { "title": "Kubernetes", "version": "v1.33.0" },
            "paths": paths_json,
            "components": {
                "schemas": components,
                "securitySchemes": {
                    "BearerToken": {
                        "description": "Bearer Token authentication",
                        "in": "header",
                        "name": "authorization",
                        "type": "apiKey"
                    }
                }
            },
            "security": [{ "BearerToken": [] }]
        });
        out.insert(v3_key(gv.group, gv.version), Document::new(&doc));
    }
    out
}

fn build_v2(schemas: &BTreeMap<String, Value>) -> Value {
    let mut definitions = Map::new();
    for (name, schema) in schemas {
        let mut s = schema.clone();
        to_v2_schema(&mut s);
        definitions.insert(name.clone(), s);
    }
    // swagger 2.0 has no oneOf: the two polymorphic scalars are plain strings there.
    definitions.insert(
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString".into(),
        json!({
            "description": description_of(schemas, "io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
            "format": "int-or-string",
            "type": "string"
        }),
    );
    definitions.insert(
        "io.k8s.apimachinery.pkg.api.resource.Quantity".into(),
        json!({
            "description": description_of(schemas, "io.k8s.apimachinery.pkg.api.resource.Quantity"),
            "type": "string"
        }),
    );
    let mut paths_json = Map::new();
    for gv in registry::group_versions() {
        let resources = served_resources(schemas, gv.group, gv.version);
        for item in paths::group_version_paths(gv.group, gv.version, &resources) {
            paths_json.insert(item.path.clone(), item.to_v2());
        }
    }
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0" },
        "paths": paths_json,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "description": "Bearer Token authentication",
                "in": "header",
                "name": "authorization",
                "type": "apiKey"
            }
        },
        "security": [{ "BearerToken": [] }]
    })
}

fn description_of(schemas: &BTreeMap<String, Value>, name: &str) -> Value {
    schemas
        .get(name)
        .and_then(|s| s.get("description"))
        .cloned()
        .unwrap_or(Value::Null)
}

macro_rules! subschemas {
    ($gen:expr; $($t:ty),* $(,)?) => {
        $( let _ = $gen.subschema_for::<$t>(); )*
    };
}

/// Every schema (v3 form, refs under `#/components/schemas/`), keyed by name.
fn build_schemas() -> BTreeMap<String, Value> {
    let mut generator = SchemaGenerator::new(SchemaSettings::openapi3().with(|s| {
        s.meta_schema = None;
        s.transforms.clear();
        s.inline_subschemas = false;
    }));
    subschemas!(generator;
        core::Namespace, core::Pod, core::Node, core::Service, core::Endpoints, core::ConfigMap,
        core::Secret, core::Event, core::ServiceAccount, core::PersistentVolumeClaim,
        core::PersistentVolume, core::Binding, policy::Eviction, core::ReplicationController,
        core::ComponentStatus, authn::TokenRequest,
        authn::TokenReview, authn::SelfSubjectReview, authz::SubjectAccessReview,
        authz::SelfSubjectAccessReview, authz::LocalSubjectAccessReview,
        authz::SelfSubjectRulesReview,
        apps::Deployment, apps::ReplicaSet, apps::StatefulSet, apps::DaemonSet,
        apps::ControllerRevision, autoscaling_v1::Scale,
        batch::Job, coordination::Lease, discovery::EndpointSlice, scheduling::PriorityClass,
        autoscaling_v2::HorizontalPodAutoscaler, events::Event,
        rbac::Role, rbac::ClusterRole, rbac::RoleBinding, rbac::ClusterRoleBinding,
        meta::DeleteOptions, meta::Status, meta::WatchEvent<core::Pod>, meta::Patch,
        meta::APIResourceList,
    );
    let mut schemas: BTreeMap<String, Value> =
        generator.take_definitions(false).into_iter().collect();

    // Lists: k8s-openapi has one generic List<T> without a schema.
    for r in registry::RESOURCES {
        let item = schema_name(r.group, r.version, r.kind);
        if !schemas.contains_key(&item) {
            continue;
        }
        let list = schema_name(r.group, r.version, &r.list_kind());
        schemas.insert(list, list_schema(r));
    }

    for schema in schemas.values_mut() {
        to_v3_schema(schema);
    }

    // The two scalars that are "int or string" and "string or number", as kube-apiserver has them.
    if let Some(s) = schemas.get_mut("io.k8s.apimachinery.pkg.util.intstr.IntOrString") {
        let desc = s.get("description").cloned().unwrap_or(Value::Null);
        *s = json!({
            "description": desc,
            "format": "int-or-string",
            "oneOf": [{ "type": "integer" }, { "type": "string" }]
        });
    }
    if let Some(s) = schemas.get_mut("io.k8s.apimachinery.pkg.api.resource.Quantity") {
        let desc = s.get("description").cloned().unwrap_or(Value::Null);
        *s = json!({
            "description": desc,
            "oneOf": [{ "type": "string" }, { "type": "number" }]
        });
    }

    apply_extensions(&mut schemas);
    add_group_version_kinds(&mut schemas);
    schemas
}

fn list_schema(r: &ResourceInfo) -> Value {
    let item = schema_name(r.group, r.version, r.kind);
    json!({
        "description": format!("{}List is a list of {} objects.", r.kind, r.kind),
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string"
            },
            "items": {
                "description": format!("List of {}.", r.plural),
                "items": { "$ref": format!("{V3_REF}{item}") },
                "type": "array"
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string"
            },
            "metadata": {
                "$ref": format!("{V3_REF}{META}.ListMeta"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
            }
        },
        "required": ["items"],
        "type": "object"
    })
}

/// `{"$ref": R, "description": D}` becomes `{"allOf": [{"$ref": R}], "description": D}`, the
/// form kube-apiserver's v3 documents use (siblings of `$ref` are ignored in OpenAPI 3.0).
fn to_v3_schema(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (_, child) in map.iter_mut() {
                to_v3_schema(child);
            }
            if map.len() > 1 {
                if let Some(r) = map.remove("$ref") {
                    map.insert("allOf".into(), json!([{ "$ref": r }]));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_v3_schema),
        _ => {}
    }
}

/// The reverse for swagger 2.0: a single-`$ref` `allOf` becomes a `$ref` with siblings, and refs
/// point under `#/definitions/`.
fn to_v2_schema(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (_, child) in map.iter_mut() {
                to_v2_schema(child);
            }
            let single_ref = match map.get("allOf") {
                Some(Value::Array(all)) if all.len() == 1 => all[0].get("$ref").cloned(),
                _ => None,
            };
            if let Some(r) = single_ref {
                map.remove("allOf");
                map.insert("$ref".into(), r);
            }
            if let Some(Value::String(r)) = map.get_mut("$ref") {
                if let Some(rest) = r.strip_prefix(V3_REF) {
                    *r = format!("{V2_REF}{rest}");
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_v2_schema),
        _ => {}
    }
}

fn apply_extensions(schemas: &mut BTreeMap<String, Value>) {
    for (schema, property, ext) in extensions::EXTENSIONS {
        let Some(target) = schemas.get_mut(*schema) else {
            continue;
        };
        let target = if property.is_empty() {
            Some(target)
        } else {
            target
                .get_mut("properties")
                .and_then(|p| p.get_mut(*property))
        };
        let (Some(Value::Object(target)), Ok(Value::Object(ext))) =
            (target, serde_json::from_str::<Value>(ext))
        else {
            continue;
        };
        for (k, v) in ext {
            if k == "x-description-suffix" {
                let suffix = v.as_str().unwrap_or_default();
                let desc = match target.get("description") {
                    Some(Value::String(d)) => format!("{d}{suffix}"),
                    _ => suffix.trim_start().to_string(),
                };
                target.insert("description".into(), Value::String(desc));
            } else {
                target.insert(k, v);
            }
        }
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

fn add_group_version_kinds(schemas: &mut BTreeMap<String, Value>) {
    let mut tags: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in registry::RESOURCES {
        tags.entry(schema_name(r.group, r.version, r.kind))
            .or_default()
            .push(gvk(r.group, r.version, r.kind));
        tags.entry(schema_name(r.group, r.version, &r.list_kind()))
            .or_default()
            .push(gvk(r.group, r.version, &r.list_kind()));
    }
    tags.entry("io.k8s.api.core.v1.Binding".into())
        .or_default()
        .push(gvk("", "v1", "Binding"));
    tags.entry("io.k8s.api.policy.v1.Eviction".into())
        .or_default()
        .push(gvk("policy", "v1", "Eviction"));
    tags.entry("io.k8s.api.autoscaling.v1.Scale".into())
        .or_default()
        .push(gvk("autoscaling", "v1", "Scale"));
    tags.entry(format!("{META}.Status"))
        .or_default()
        .push(gvk("", "v1", "Status"));
    for gv in registry::group_versions() {
        for kind in ["DeleteOptions", "WatchEvent"] {
            tags.entry(format!("{META}.{kind}"))
                .or_default()
                .push(gvk(gv.group, gv.version, kind));
        }
    }
    for (name, list) in tags {
        if let Some(Value::Object(s)) = schemas.get_mut(&name) {
            s.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
        }
    }
}

/// The schemas reachable from `roots` (following `$ref`s).
fn closure(schemas: &BTreeMap<String, Value>, roots: &[String]) -> Map<String, Value> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut stack: Vec<String> = roots.to_vec();
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(s) = schemas.get(&name) {
            let mut refs = Vec::new();
            collect_refs(s, &mut refs);
            stack.extend(refs.into_iter().filter(|r| !seen.contains(r)));
        }
    }
    seen.into_iter()
        .filter_map(|n| schemas.get(&n).map(|s| (n, s.clone())))
        .collect()
}

/// Names of the schemas a value refers to.
fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                if let Some(name) = r.strip_prefix(V3_REF) {
                    out.push(name.to_string());
                }
            }
            map.values().for_each(|c| collect_refs(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
