//! The admission decisions, as upstream's
//! `staging/src/k8s.io/pod-security-admission/admission/{admission.go,response.go}` and the
//! in-tree plugin `plugin/pkg/admission/security/podsecurity/admission.go` make them: pods are
//! enforced, audited and warned; workload resources with pod templates are only audited and
//! warned; namespaces get their labels validated and, when the enforce level tightens, a dry
//! run over their existing pods; exemptions by username, namespace and runtime class.
//!
//! Everything here is a pure function of the request, the configuration and what a
//! [`Cluster`] answers (namespace labels, the pods of a namespace). Metrics are not kept.

mod namespace;
mod objects;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use objects::unexpected_kind;
pub use objects::{has_pod_spec, is_significant_pod_update, pod_template};

use crate::api::{
    aggregate_messages, parse_policy, LabelError, Level, LevelVersion, Policy, Version,
    AUDIT_VIOLATIONS_ANNOTATION_KEY, ENFORCED_POLICY_ANNOTATION_KEY,
    EXEMPTION_REASON_ANNOTATION_KEY, LABEL_PREFIX,
};
use crate::checks::{aggregate_detail, evaluate_with, CheckResult, EvalOptions};
use crate::pod::{string, string_or_empty};

/// Upstream's default bound on the pods checked when a namespace's enforce level tightens.
pub const DEFAULT_NAMESPACE_MAX_PODS_TO_CHECK: usize = 3000;

/// Requests exempt from every check (upstream's `PodSecurityExemptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exemptions {
    /// Authenticated usernames whose requests are not checked.
    pub usernames: Vec<String>,
    /// Namespaces whose pods and workloads are not checked.
    pub namespaces: Vec<String>,
    /// Pods (and templates) with one of these `runtimeClassName`s are not checked.
    pub runtime_classes: Vec<String>,
}

/// The admission configuration (upstream's `PodSecurityConfiguration` plus its fixed limits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The policy of namespaces without labels (privileged:latest by default).
    pub defaults: Policy,
    /// Exempt users, namespaces and runtime classes.
    pub exemptions: Exemptions,
    /// Bound on the existing pods checked when a namespace's enforce level tightens.
    pub namespace_max_pods_to_check: usize,
    /// Check options (the user-namespace relaxation).
    pub eval: EvalOptions,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            defaults: Policy::default(),
            exemptions: Exemptions::default(),
            namespace_max_pods_to_check: DEFAULT_NAMESPACE_MAX_PODS_TO_CHECK,
            eval: EvalOptions::default(),
        }
    }
}

/// What PodSecurity asks of the cluster (upstream's `NamespaceGetter` and `PodLister`). Errors
/// are the texts of the failures (`namespaces "x" not found`).
pub trait Cluster {
    /// The labels of a namespace.
    fn namespace_labels(&self, namespace: &str) -> Result<Map<String, Value>, String>;
    /// The pods of a namespace, as JSON objects.
    fn list_pods(&self, namespace: &str) -> Result<Vec<Value>, String>;
}

/// Evaluates pods at a level and version (upstream's `policy.Evaluator`); the default is this
/// crate's checks.
pub trait Evaluator {
    /// The results for a pod's metadata and spec; failed ones count.
    fn evaluate_pod(&self, lv: &LevelVersion, meta: &Value, spec: &Value) -> Vec<CheckResult>;
}

/// The checks of this crate with the given options.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultEvaluator(pub EvalOptions);

impl Evaluator for DefaultEvaluator {
    fn evaluate_pod(&self, lv: &LevelVersion, meta: &Value, spec: &Value) -> Vec<CheckResult> {
        evaluate_with(&self.0, lv, meta, spec)
    }
}

/// The request's operation. PodSecurity only looks at creates and updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// CREATE
    Create,
    /// UPDATE
    Update,
    /// DELETE
    Delete,
    /// CONNECT
    Connect,
}

/// One admission request.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    /// The operation.
    pub operation: Operation,
    /// API group of the resource (`""`, `apps`, `batch`).
    pub group: &'a str,
    /// The resource, plural (`pods`, `deployments`, `namespaces`).
    pub resource: &'a str,
    /// The subresource, `""` for the main resource.
    pub subresource: &'a str,
    /// The request's namespace (for namespaces, what the apiserver puts there for them).
    pub namespace: &'a str,
    /// The object's name.
    pub name: &'a str,
    /// The authenticated username.
    pub username: &'a str,
    /// The new object.
    pub object: &'a Value,
    /// The old object, for updates.
    pub old_object: Option<&'a Value>,
}

/// Why a request is denied; the apiserver turns it into a Status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// 403 Forbidden, with the error text (`violates PodSecurity "baseline:latest": ...`).
    Forbidden(String),
    /// 422 Invalid namespace labels.
    Invalid(Vec<LabelError>),
    /// 400 BadRequest, with the message (`failed to decode pod`).
    BadRequest(String),
    /// 500 InternalError, with the error (`failed to lookup namespace "x"`).
    InternalError(String),
}

impl Denial {
    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Denial::Forbidden(_) => 403,
            Denial::Invalid(_) => 422,
            Denial::BadRequest(_) => 400,
            Denial::InternalError(_) => 500,
        }
    }

    /// The Status reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::Forbidden(_) => "Forbidden",
            Denial::Invalid(_) => "Invalid",
            Denial::BadRequest(_) => "BadRequest",
            Denial::InternalError(_) => "InternalError",
        }
    }

    /// The Status message, as upstream's `apierrors.NewForbidden` / `NewInvalid` /
    /// `NewBadRequest` / `NewInternalError` word it for this request:
    /// `pods "x" is forbidden: violates PodSecurity ...`,
    /// `Namespace "x" is invalid: metadata.labels[...]: Invalid value: ...`.
    pub fn message(&self, attrs: &Attributes<'_>) -> String {
        match self {
            Denial::Forbidden(err) => {
                let gr = if attrs.group.is_empty() {
                    attrs.resource.to_string()
                } else {
                    format!("{}.{}", attrs.resource, attrs.group)
                };
                if attrs.name.is_empty() {
                    format!("{gr} is forbidden: {err}")
                } else {
                    format!("{gr} \"{}\" is forbidden: {err}", attrs.name)
                }
            }
            Denial::Invalid(errors) => format!(
                "Namespace \"{}\" is invalid: {}",
                attrs.name,
                aggregate_messages(errors)
            ),
            Denial::BadRequest(msg) => msg.clone(),
            Denial::InternalError(err) => format!("Internal error occurred: {err}"),
        }
    }
}

/// The admission response (upstream's `AdmissionResponse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Why not, when it may not.
    pub denial: Option<Denial>,
    /// Warnings for the client (`would violate PodSecurity "restricted:latest": ...`).
    pub warnings: Vec<String>,
    /// Audit annotations, keys without the `pod-security.kubernetes.io/` prefix.
    pub audit_annotations: BTreeMap<String, String>,
}

impl Response {
    fn allow() -> Self {
        Response {
            allowed: true,
            denial: None,
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
        }
    }

    fn allow_annotated(key: &str, value: impl Into<String>) -> Self {
        let mut r = Response::allow();
        r.audit_annotations.insert(key.to_string(), value.into());
        r
    }

    fn exempt(reason: &str) -> Self {
        Response::allow_annotated(EXEMPTION_REASON_ANNOTATION_KEY, reason)
    }

    /// Upstream's `errorResponse`: denied, with the audit annotation
    /// `error: <status message>[: <err>]`.
    fn error(denial: Denial, status_message: &str, err: Option<&str>) -> Self {
        let detail = match err {
            Some(e) => format!("{status_message}: {e}"),
            None => status_message.to_string(),
        };
        let mut r = Response::allow_annotated("error", detail);
        r.allowed = false;
        r.denial = Some(denial);
        r
    }

    fn bad_request(message: &str) -> Self {
        Response::error(Denial::BadRequest(message.to_string()), message, None)
    }

    /// The audit annotations as the plugin records them, keys prefixed with
    /// `pod-security.kubernetes.io/`.
    pub fn prefixed_audit_annotations(&self) -> BTreeMap<String, String> {
        self.audit_annotations
            .iter()
            .map(|(k, v)| (format!("{LABEL_PREFIX}{k}"), v.clone()))
            .collect()
    }
}

/// Subresources of pods PodSecurity never looks at.
const IGNORED_POD_SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

/// The PodSecurity admission plugin over a configuration and an evaluator.
#[derive(Debug, Clone, Default)]
pub struct Admission<E: Evaluator = DefaultEvaluator> {
    /// The configuration.
    pub config: Config,
    /// The evaluator.
    pub evaluator: E,
}

impl Admission<DefaultEvaluator> {
    /// The plugin with this crate's checks.
    pub fn new(config: Config) -> Self {
        let evaluator = DefaultEvaluator(config.eval);
        Admission { config, evaluator }
    }
}

impl<E: Evaluator> Admission<E> {
    /// The plugin's `Validate`: namespaces, pods and the workload resources with pod
    /// templates on create and update; every other request is allowed untouched.
    pub fn validate(&self, attrs: &Attributes<'_>, cluster: &dyn Cluster) -> Response {
        if !matches!(attrs.operation, Operation::Create | Operation::Update) {
            return Response::allow();
        }
        match (attrs.group, attrs.resource) {
            ("", "namespaces") => self.validate_namespace(attrs, cluster),
            ("", "pods") => self.validate_pod(attrs, cluster),
            (g, r) if has_pod_spec(g, r) => self.validate_pod_controller(attrs, cluster),
            _ => Response::allow(),
        }
    }

    /// The policy a namespace's labels set over the configured defaults.
    pub fn policy_to_evaluate(&self, labels: &Map<String, Value>) -> (Policy, Vec<LabelError>) {
        parse_policy(labels, &self.config.defaults)
    }

    fn exempt_namespace(&self, ns: &str) -> bool {
        !ns.is_empty() && self.config.exemptions.namespaces.iter().any(|n| n == ns)
    }

    fn exempt_user(&self, user: &str) -> bool {
        !user.is_empty() && self.config.exemptions.usernames.iter().any(|u| u == user)
    }

    fn exempt_runtime_class(&self, spec: &Value) -> bool {
        string(spec, "runtimeClassName").is_some_and(|rc| {
            !rc.is_empty()
                && self
                    .config
                    .exemptions
                    .runtime_classes
                    .iter()
                    .any(|c| *c == rc)
        })
    }

    /// Upstream's `ValidatePod`: enforce, audit and warn a pod create or update.
    pub fn validate_pod(&self, attrs: &Attributes<'_>, cluster: &dyn Cluster) -> Response {
        if IGNORED_POD_SUBRESOURCES.contains(&attrs.subresource) {
            return Response::allow();
        }
        if self.exempt_namespace(attrs.namespace) {
            return Response::exempt("namespace");
        }
        if self.exempt_user(attrs.username) {
            return Response::exempt("user");
        }
        let labels = match cluster.namespace_labels(attrs.namespace) {
            Ok(l) => l,
            Err(e) => {
                let err = format!("failed to lookup namespace \"{}\"", attrs.namespace);
                let status = format!("Internal error occurred: {err}");
                return Response::error(Denial::InternalError(err), &status, Some(&e));
            }
        };
        let (policy, errors) = self.policy_to_evaluate(&labels);
        if errors.is_empty() && policy.fully_privileged() {
            let privileged = LevelVersion::new(Level::Privileged, Version::Latest);
            return Response::allow_annotated(
                ENFORCED_POLICY_ANNOTATION_KEY,
                privileged.to_string(),
            );
        }
        if !is_kind(attrs.object, "Pod") {
            return Response::bad_request("failed to decode pod");
        }
        if attrs.operation == Operation::Update {
            let Some(old) = attrs.old_object else {
                return Response::bad_request("failed to decode old object");
            };
            if !is_kind(old, "Pod") {
                return Response::bad_request("failed to decode old pod");
            }
            if !is_significant_pod_update(attrs.object, old) {
                return Response::allow();
            }
        }
        let meta = field_or_null(attrs.object, "metadata");
        let spec = field_or_null(attrs.object, "spec");
        self.evaluate_pod(&policy, &errors, meta, spec, true)
    }

    /// Upstream's `ValidatePodController`: audit and warn (never deny) a workload's template.
    pub fn validate_pod_controller(
        &self,
        attrs: &Attributes<'_>,
        cluster: &dyn Cluster,
    ) -> Response {
        if !attrs.subresource.is_empty() {
            return Response::allow();
        }
        if self.exempt_namespace(attrs.namespace) {
            return Response::exempt("namespace");
        }
        if self.exempt_user(attrs.username) {
            return Response::exempt("user");
        }
        let labels = match cluster.namespace_labels(attrs.namespace) {
            Ok(l) => l,
            Err(e) => {
                return Response::allow_annotated(
                    "error",
                    format!("failed to lookup namespace \"{}\": {e}", attrs.namespace),
                );
            }
        };
        let (policy, errors) = self.policy_to_evaluate(&labels);
        if errors.is_empty()
            && policy.warn.level == Level::Privileged
            && policy.audit.level == Level::Privileged
        {
            return Response::allow();
        }
        if let Some(gvk) = unexpected_kind(attrs.group, attrs.resource, attrs.object) {
            return Response::allow_annotated(
                "error",
                format!("failed to extract pod template: unexpected object type: {gvk}"),
            );
        }
        let Some((meta, spec)) = pod_template(attrs.group, attrs.resource, attrs.object) else {
            return Response::allow();
        };
        self.evaluate_pod(&policy, &errors, meta, spec, false)
    }

    /// Upstream's `EvaluatePod`: the enforce decision (when `enforce`), the audit annotation
    /// and the warning for one pod or template.
    pub fn evaluate_pod(
        &self,
        policy: &Policy,
        label_errors: &[LabelError],
        meta: &Value,
        spec: &Value,
        enforce: bool,
    ) -> Response {
        if self.exempt_runtime_class(spec) {
            return Response::exempt("runtimeClass");
        }
        let mut response = Response::allow();
        if !label_errors.is_empty() {
            response.audit_annotations.insert(
                "error".into(),
                format!(
                    "Failed to parse policy: {}",
                    aggregate_messages(label_errors)
                ),
            );
        }
        let mut cache: Vec<(LevelVersion, Vec<CheckResult>)> = Vec::new();
        let mut results = |lv: &LevelVersion| -> Vec<CheckResult> {
            if let Some((_, r)) = cache.iter().find(|(k, _)| k == lv) {
                return r.clone();
            }
            let r: Vec<CheckResult> = self
                .evaluator
                .evaluate_pod(lv, meta, spec)
                .into_iter()
                .filter(|r| !r.allowed)
                .collect();
            cache.push((*lv, r.clone()));
            r
        };
        if enforce {
            response.audit_annotations.insert(
                ENFORCED_POLICY_ANNOTATION_KEY.into(),
                policy.enforce.to_string(),
            );
            let failed = results(&policy.enforce);
            if !failed.is_empty() {
                response.allowed = false;
                response.denial = Some(Denial::Forbidden(format!(
                    "violates PodSecurity \"{}\": {}",
                    policy.enforce,
                    aggregate_detail(&failed)
                )));
            }
        }
        let failed = results(&policy.audit);
        if !failed.is_empty() {
            response.audit_annotations.insert(
                AUDIT_VIOLATIONS_ANNOTATION_KEY.into(),
                format!(
                    "would violate PodSecurity \"{}\": {}",
                    policy.audit,
                    aggregate_detail(&failed)
                ),
            );
        }
        if response.allowed {
            let failed = results(&policy.warn);
            if !failed.is_empty() {
                response.warnings.push(format!(
                    "would violate PodSecurity \"{}\": {}",
                    policy.warn,
                    aggregate_detail(&failed)
                ));
            }
        }
        response
    }
}

/// Whether a JSON object is of a kind: an object whose `kind`, when set, is `kind`.
fn is_kind(obj: &Value, kind: &str) -> bool {
    obj.is_object() && string(obj, "kind").is_none_or(|k| k == kind)
}

static NULL: Value = Value::Null;

/// `obj[key]`, or `null` (read as an empty object) when missing.
fn field_or_null<'a>(obj: &'a Value, key: &str) -> &'a Value {
    obj.get(key).unwrap_or(&NULL)
}

/// A pod's `metadata.name` (or `""`).
fn pod_name(pod: &Value) -> String {
    string_or_empty(field_or_null(pod, "metadata"), "name").into_owned()
}

#[cfg(test)]
mod tests;
