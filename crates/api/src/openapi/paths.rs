//! The `paths` of the OpenAPI documents: kube-apiserver's operations for each resource (list,
//! create, deletecollection, read, replace, patch, delete, watch, and the status, scale, binding
//! and eviction subresources), with their query parameters and `x-kubernetes-action` /
//! `x-kubernetes-group-version-kind` extensions. kubectl finds a resource's kind through these
//! (explain) and decides on server-side field validation by finding `fieldValidation` among the
//! PATCH operation's parameters.

use serde_json::{json, Map, Value};

use super::{gvk, schema_name, META, V2_REF, V3_REF};
use crate::registry::{ResourceInfo, Subresource};

const MEDIA: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const MEDIA_LIST: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// One query or path parameter.
#[derive(Debug, Clone)]
struct Param {
    name: &'static str,
    location: &'static str,
    description: String,
    ty: &'static str,
    required: bool,
}

fn query(name: &'static str, ty: &'static str, description: &str) -> Param {
    Param {
        name,
        location: "query",
        description: description.to_string(),
        ty,
        required: false,
    }
}

fn path_param(name: &'static str, description: String) -> Param {
    Param {
        name,
        location: "path",
        description,
        ty: "string",
        required: true,
    }
}

impl Param {
    fn to_v3(&self) -> Value {
        let mut p = json!({
            "description": self.description,
            "in": self.location,
            "name": self.name,
            "schema": { "type": self.ty, "uniqueItems": true }
        });
        if self.required {
            p["required"] = Value::Bool(true);
        }
        p
    }

    fn to_v2(&self) -> Value {
        let mut p = json!({
            "description": self.description,
            "in": self.location,
            "name": self.name,
            "type": self.ty,
            "uniqueItems": true
        });
        if self.required {
            p["required"] = Value::Bool(true);
        }
        p
    }
}

fn pretty() -> Param {
    query(
        "pretty",
        "string",
        "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
    )
}

fn dry_run() -> Param {
    query(
        "dryRun",
        "string",
        "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
    )
}

fn field_manager() -> Param {
    query(
        "fieldManager",
        "string",
        "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
    )
}

fn field_validation() -> Param {
    query(
        "fieldValidation",
        "string",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
    )
}

fn force() -> Param {
    query(
        "force",
        "boolean",
        "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
    )
}

fn write_params() -> Vec<Param> {
    vec![dry_run(), field_manager(), field_validation()]
}

fn delete_params() -> Vec<Param> {
    vec![
        dry_run(),
        query(
            "gracePeriodSeconds",
            "integer",
            "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.",
        ),
        query(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
            "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it",
        ),
        query(
            "orphanDependents",
            "boolean",
            "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.",
        ),
        query(
            "propagationPolicy",
            "string",
            "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.",
        ),
    ]
}

fn list_params() -> Vec<Param> {
    vec![
        query(
            "allowWatchBookmarks",
            "boolean",
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.",
        ),
        query(
            "continue",
            "string",
            "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize.",
        ),
        query(
            "fieldSelector",
            "string",
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        ),
        query(
            "labelSelector",
            "string",
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        ),
        query(
            "limit",
            "integer",
            "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results.",
        ),
        query(
            "resourceVersion",
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        query(
            "resourceVersionMatch",
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        query(
            "sendInitialEvents",
            "boolean",
            "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event will be sent.",
        ),
        query(
            "timeoutSeconds",
            "integer",
            "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
        ),
        query(
            "watch",
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
        ),
    ]
}

/// What an operation takes as its body.
#[derive(Debug, Clone)]
enum Body {
    /// A JSON object of the named schema, any content type.
    Object(String),
    /// A patch document in one of the four patch content types.
    Patch,
}

/// One HTTP operation of a path.
#[derive(Debug, Clone)]
struct Op {
    method: &'static str,
    id: String,
    description: String,
    action: &'static str,
    tag: String,
    gvk: (String, String, String),
    params: Vec<Param>,
    body: Option<Body>,
    /// (status code, description, schema name).
    responses: Vec<(&'static str, &'static str, Option<String>)>,
    produces: &'static [&'static str],
}

impl Op {
    fn gvk_value(&self) -> Value {
        gvk(&self.gvk.0, &self.gvk.1, &self.gvk.2)
    }

    fn to_v3(&self) -> Value {
        let mut responses = Map::new();
        for (code, desc, schema) in &self.responses {
            let mut r = json!({ "description": desc });
            if let Some(schema) = schema {
                let mut content = Map::new();
                for media in self.produces {
                    content.insert(
                        media.to_string(),
                        json!({ "schema": schema_ref_v3(schema) }),
                    );
                }
                r["content"] = Value::Object(content);
            }
            responses.insert(code.to_string(), r);
        }
        responses.insert("401".into(), json!({ "description": "Unauthorized" }));
        let mut op = json!({
            "tags": [self.tag],
            "description": self.description,
            "operationId": self.id,
            "responses": responses,
            "x-kubernetes-action": self.action,
        });
        if !self.gvk.2.is_empty() {
            op["x-kubernetes-group-version-kind"] = self.gvk_value();
        }
        if !self.params.is_empty() {
            op["parameters"] = Value::Array(self.params.iter().map(Param::to_v3).collect());
        }
        match &self.body {
            Some(Body::Object(schema)) => {
                op["requestBody"] = json!({
                    "content": { "*/*": { "schema": schema_ref_v3(schema) } },
                    "required": self.method != "delete"
                });
            }
            Some(Body::Patch) => {
                let mut content = Map::new();
                for t in PATCH_TYPES {
                    content.insert(
                        t.to_string(),
                        json!({ "schema": schema_ref_v3(&format!("{META}.Patch")) }),
                    );
                }
                op["requestBody"] = json!({ "content": content, "required": true });
            }
            None => {}
        }
        op
    }

    fn to_v2(&self) -> Value {
        let mut responses = Map::new();
        for (code, desc, schema) in &self.responses {
            let mut r = json!({ "description": desc });
            if let Some(schema) = schema {
                r["schema"] = json!({ "$ref": format!("{V2_REF}{schema}") });
            }
            responses.insert(code.to_string(), r);
        }
        responses.insert("401".into(), json!({ "description": "Unauthorized" }));
        let mut params: Vec<Value> = Vec::new();
        match &self.body {
            Some(Body::Object(schema)) => params.push(json!({
                "in": "body",
                "name": "body",
                "required": self.method != "delete",
                "schema": { "$ref": format!("{V2_REF}{schema}") }
            })),
            Some(Body::Patch) => params.push(json!({
                "in": "body",
                "name": "body",
                "required": true,
                "schema": { "$ref": format!("{V2_REF}{META}.Patch") }
            })),
            None => {}
        }
        params.extend(self.params.iter().map(Param::to_v2));
        let consumes: Vec<&str> = match &self.body {
            Some(Body::Patch) => PATCH_TYPES.to_vec(),
            _ => vec!["*/*"],
        };
        let mut op = json!({
            "consumes": consumes,
            "description": self.description,
            "operationId": self.id,
            "produces": self.produces,
            "responses": responses,
            "schemes": ["https"],
            "tags": [self.tag],
            "x-kubernetes-action": self.action,
        });
        if !self.gvk.2.is_empty() {
            op["x-kubernetes-group-version-kind"] = self.gvk_value();
        }
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        op
    }
}

fn schema_ref_v3(name: &str) -> Value {
    json!({ "$ref": format!("{V3_REF}{name}") })
}

/// One path with its shared parameters and operations.
#[derive(Debug, Clone)]
pub(super) struct PathItem {
    pub path: String,
    params: Vec<Param>,
    ops: Vec<Op>,
}

impl PathItem {
    pub fn to_v3(&self) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            item.insert(op.method.to_string(), op.to_v3());
        }
        if !self.params.is_empty() {
            item.insert(
                "parameters".into(),
                Value::Array(self.params.iter().map(Param::to_v3).collect()),
            );
        }
        Value::Object(item)
    }

    pub fn to_v2(&self) -> Value {
        let mut item = Map::new();
        for op in &self.ops {
            item.insert(op.method.to_string(), op.to_v2());
        }
        if !self.params.is_empty() {
            item.insert(
                "parameters".into(),
                Value::Array(self.params.iter().map(Param::to_v2).collect()),
            );
        }
        Value::Object(item)
    }

    /// Names of the schemas the operations refer to.
    pub fn collect_refs(&self, out: &mut Vec<String>) {
        for op in &self.ops {
            if let Some(Body::Object(s)) = &op.body {
                out.push(s.clone());
            }
            if matches!(op.body, Some(Body::Patch)) {
                out.push(format!("{META}.Patch"));
            }
            for (_, _, s) in &op.responses {
                if let Some(s) = s {
                    out.push(s.clone());
                }
            }
        }
    }
}

/// `CoreV1`, `AppsV1`, `CoordinationV1`, `AutoscalingV2`...
fn op_group(group: &str, version: &str) -> String {
    let g = if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("{}{}", capitalize(g), capitalize(version))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Every path of one group/version, sorted by path.
pub(super) fn group_version_paths(
    group: &str,
    version: &str,
    resources: &[&ResourceInfo],
) -> Vec<PathItem> {
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let tag = format!(
        "{}_{}",
        if group.is_empty() {
            "core"
        } else {
            group.split('.').next().unwrap_or(group)
        },
        version
    );
    let og = op_group(group, version);
    let mut items = vec![PathItem {
        path: format!("{prefix}/"),
        params: vec![],
        ops: vec![Op {
            method: "get",
            id: format!("get{og}APIResources"),
            description: "get available resources".into(),
            action: "get",
            tag: tag.clone(),
            gvk: (String::new(), String::new(), String::new()),
            params: vec![],
            body: None,
            responses: vec![("200", "OK", Some(format!("{META}.APIResourceList")))],
            produces: MEDIA,
        }],
    }];
    for r in resources {
        items.extend(resource_paths(r, &prefix, &tag, &og));
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    items
}

fn resource_paths(r: &ResourceInfo, prefix: &str, tag: &str, og: &str) -> Vec<PathItem> {
    let kind = r.kind;
    let this = schema_name(r.group, r.version, kind);
    let list = schema_name(r.group, r.version, &r.list_kind());
    let status = format!("{META}.Status");
    let gvk_self = (r.group.to_string(), r.version.to_string(), kind.to_string());
    let ns = r.namespaced();
    let nsd = if ns { "Namespaced" } else { "" };
    let has = |verb: &str| r.verbs.contains(&verb);
    let (collection, named, watch_collection, watch_named) = if ns {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural),
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural),
            format!("{prefix}/watch/namespaces/{{namespace}}/{}", r.plural),
            format!(
                "{prefix}/watch/namespaces/{{namespace}}/{}/{{name}}",
                r.plural
            ),
        )
    } else {
        (
            format!("{prefix}/{}", r.plural),
            format!("{prefix}/{}/{{name}}", r.plural),
            format!("{prefix}/watch/{}", r.plural),
            format!("{prefix}/watch/{}/{{name}}", r.plural),
        )
    };
    let ns_param = || {
        path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects".into(),
        )
    };
    let name_param = |what: &str| path_param("name", format!("name of the {what}"));
    let base = |method: &'static str, id: String, description: String, action: &'static str| Op {
        method,
        id,
        description,
        action,
        tag: tag.to_string(),
        gvk: gvk_self.clone(),
        params: vec![],
        body: None,
        responses: vec![],
        produces: MEDIA,
    };
    let mut out = Vec::new();

    // collection: list, create, deletecollection
    let mut ops = Vec::new();
    if has("list") {
        let mut op = base(
            "get",
            format!("list{og}{nsd}{kind}"),
            format!("list or watch objects of kind {kind}"),
            "list",
        );
        op.params = list_params();
        op.responses = vec![("200", "OK", Some(list.clone()))];
        op.produces = MEDIA_LIST;
        ops.push(op);
    }
    if has("create") {
        let mut op = base(
            "post",
            format!("create{og}{nsd}{kind}"),
            format!("create {}", article(kind)),
            "post",
        );
        op.params = write_params();
        op.body = Some(Body::Object(this.clone()));
        op.responses = vec![
            ("200", "OK", Some(this.clone())),
            ("201", "Created", Some(this.clone())),
            ("202", "Accepted", Some(this.clone())),
        ];
        ops.push(op);
    }
    if has("deletecollection") {
        let mut op = base(
            "delete",
            format!("delete{og}Collection{nsd}{kind}"),
            format!("delete collection of {kind}"),
            "deletecollection",
        );
        let mut params = list_params();
        params.retain(|p| !matches!(p.name, "allowWatchBookmarks" | "watch"));
        params.extend(delete_params());
        params.sort_by_key(|p| p.name);
        op.params = params;
        op.body = Some(Body::Object(format!("{META}.DeleteOptions")));
        op.responses = vec![("200", "OK", Some(status.clone()))];
        ops.push(op);
    }
    let mut params = Vec::new();
    if ns {
        params.push(ns_param());
    }
    params.push(pretty());
    out.push(PathItem {
        path: collection,
        params,
        ops,
    });

    // one object: read, replace, delete, patch
    let mut ops = Vec::new();
    if has("get") {
        let mut op = base(
            "get",
            format!("read{og}{nsd}{kind}"),
            format!("read the specified {kind}"),
            "get",
        );
        op.responses = vec![("200", "OK", Some(this.clone()))];
        ops.push(op);
    }
    if has("update") {
        let mut op = base(
            "put",
            format!("replace{og}{nsd}{kind}"),
            format!("replace the specified {kind}"),
            "put",
        );
        op.params = write_params();
        op.body = Some(Body::Object(this.clone()));
        op.responses = vec![
            ("200", "OK", Some(this.clone())),
            ("201", "Created", Some(this.clone())),
        ];
        ops.push(op);
    }
    if has("delete") {
        let mut op = base(
            "delete",
            format!("delete{og}{nsd}{kind}"),
            format!("delete {}", article(kind)),
            "delete",
        );
        op.params = delete_params();
        op.body = Some(Body::Object(format!("{META}.DeleteOptions")));
        op.responses = vec![
            ("200", "OK", Some(this.clone())),
            ("202", "Accepted", Some(this.clone())),
        ];
        ops.push(op);
    }
    if has("patch") {
        let mut op = base(
            "patch",
            format!("patch{og}{nsd}{kind}"),
            format!("partially update the specified {kind}"),
            "patch",
        );
        let mut params = write_params();
        params.push(force());
        op.params = params;
        op.body = Some(Body::Patch);
        op.responses = vec![
            ("200", "OK", Some(this.clone())),
            ("201", "Created", Some(this.clone())),
        ];
        ops.push(op);
    }
    let mut params = vec![name_param(kind)];
    if ns {
        params.push(ns_param());
    }
    params.push(pretty());
    out.push(PathItem {
        path: named.clone(),
        params: params.clone(),
        ops,
    });

    // subresources
    for sub in r.subresources {
        let sub_kind = capitalize(sub.name());
        let (schema, sub_gvk) = match sub {
            Subresource::Status => (this.clone(), gvk_self.clone()),
            Subresource::Scale => (
                "io.k8s.api.autoscaling.v1.Scale".to_string(),
                ("autoscaling".into(), "v1".into(), "Scale".into()),
            ),
            Subresource::Binding => (
                "io.k8s.api.core.v1.Binding".to_string(),
                (String::new(), "v1".into(), "Binding".into()),
            ),
            Subresource::Eviction => (
                "io.k8s.api.policy.v1.Eviction".to_string(),
                ("policy".into(), "v1".into(), "Eviction".into()),
            ),
            // log, exec, attach, portforward are streams, not objects: left out as they are
            // of no use to kubectl's schema readers.
            _ => continue,
        };
        let mut ops = Vec::new();
        match sub {
            Subresource::Status | Subresource::Scale => {
                let what = if *sub == Subresource::Status {
                    "status"
                } else {
                    "scale"
                };
                let mut get = base(
                    "get",
                    format!("read{og}{nsd}{kind}{sub_kind}"),
                    format!("read {what} of the specified {kind}"),
                    "get",
                );
                get.gvk = sub_gvk.clone();
                get.responses = vec![("200", "OK", Some(schema.clone()))];
                let mut put = base(
                    "put",
                    format!("replace{og}{nsd}{kind}{sub_kind}"),
                    format!("replace {what} of the specified {kind}"),
                    "put",
                );
                put.gvk = sub_gvk.clone();
                put.params = write_params();
                put.body = Some(Body::Object(schema.clone()));
                put.responses = vec![
                    ("200", "OK", Some(schema.clone())),
                    ("201", "Created", Some(schema.clone())),
                ];
                let mut patch = base(
                    "patch",
                    format!("patch{og}{nsd}{kind}{sub_kind}"),
                    format!("partially update {what} of the specified {kind}"),
                    "patch",
                );
                patch.gvk = sub_gvk.clone();
                let mut p = write_params();
                p.push(force());
                patch.params = p;
                patch.body = Some(Body::Patch);
                patch.responses = vec![
                    ("200", "OK", Some(schema.clone())),
                    ("201", "Created", Some(schema.clone())),
                ];
                ops.extend([get, put, patch]);
            }
            _ => {
                let mut post = base(
                    "post",
                    format!("create{og}{nsd}{kind}{sub_kind}"),
                    format!("create {} of {}", sub.name(), article(kind)),
                    "post",
                );
                post.gvk = sub_gvk.clone();
                post.params = write_params();
                post.body = Some(Body::Object(schema.clone()));
                post.responses = vec![
                    ("200", "OK", Some(schema.clone())),
                    ("201", "Created", Some(schema.clone())),
                    ("202", "Accepted", Some(schema.clone())),
                ];
                ops.push(post);
            }
        }
        let mut params = vec![name_param(&sub_kind)];
        if ns {
            params.push(ns_param());
        }
        params.push(pretty());
        out.push(PathItem {
            path: format!("{named}/{}", sub.name()),
            params,
            ops,
        });
    }

    if has("list") {
        // list across namespaces
        if ns {
            let mut op = base(
                "get",
                format!("list{og}{kind}ForAllNamespaces"),
                format!("list or watch objects of kind {kind}"),
                "list",
            );
            op.responses = vec![("200", "OK", Some(list.clone()))];
            op.produces = MEDIA_LIST;
            let mut params = list_params();
            params.push(pretty());
            params.sort_by_key(|p| p.name);
            out.push(PathItem {
                path: format!("{prefix}/{}", r.plural),
                params,
                ops: vec![op],
            });
        }
    }
    if has("watch") {
        let watch_event = format!("{META}.WatchEvent");
        let watch_op = |id: String, description: String, action: &'static str| {
            let mut op = base("get", id, description, action);
            op.responses = vec![("200", "OK", Some(watch_event.clone()))];
            op.produces = MEDIA_LIST;
            op
        };
        let mut with = |path: String, op: Op, extra: Vec<Param>| {
            let mut params = list_params();
            params.extend(extra);
            params.push(pretty());
            params.sort_by_key(|p| p.name);
            out.push(PathItem {
                path,
                params,
                ops: vec![op],
            });
        };
        let ns_extra = || if ns { vec![ns_param()] } else { vec![] };
        with(
            watch_collection,
            watch_op(
                format!("watch{og}{nsd}{kind}List"),
                format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."),
                "watchlist",
            ),
            ns_extra(),
        );
        let mut extra = vec![name_param(kind)];
        extra.extend(ns_extra());
        with(
            watch_named,
            watch_op(
                format!("watch{og}{nsd}{kind}"),
                format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."),
                "watch",
            ),
            extra,
        );
        if ns {
            with(
                format!("{prefix}/watch/{}", r.plural),
                watch_op(
                    format!("watch{og}{kind}ListForAllNamespaces"),
                    format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."),
                    "watchlist",
                ),
                vec![],
            );
        }
    }
    out
}

/// "a Pod", "an Endpoints".
fn article(kind: &str) -> String {
    let vowel = kind.chars().next().is_some_and(|c| "AEIOU".contains(c));
    if vowel {
        format!("an {kind}")
    } else {
        format!("a {kind}")
    }
}
