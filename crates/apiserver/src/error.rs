//! API errors and their wire form: every failure is a `metav1.Status` with Kubernetes' code,
//! reason, message and details.

use api::validation::FieldError;
use api::ResourceInfo;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{json, Value};

/// One failed API request, ready to be rendered as a Status object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    /// 401: the credentials are missing or not valid (upstream says nothing more).
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 from the authorizer, upstream's NewForbidden: `pods "x" is forbidden: User ...`
    /// (`forbidden: User ... cannot get path "/x"` for non-resource paths).
    pub fn forbidden_by_authorizer(a: &auth::Attributes, reason: &str) -> ApiError {
        let message = auth::rbac::forbidden_status_message(a, reason);
        if !a.resource_request || a.resource.is_empty() {
            return ApiError::new(403, "Forbidden", message).with_details(json!({}));
        }
        let mut d = json!({"kind": a.resource});
        if !a.name.is_empty() {
            d["name"] = json!(a.name);
        }
        if !a.api_group.is_empty() {
            d["group"] = json!(a.api_group);
        }
        ApiError::new(403, "Forbidden", message).with_details(d)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn not_found_path() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn not_found(resource: &ResourceInfo, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", qualified(resource), name),
        )
        .with_details(details(resource, name))
    }

    pub fn namespace_not_found(namespace: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
        )
        .with_details(json!({"name": namespace, "kind": "namespaces"}))
    }

    pub fn already_exists(resource: &ResourceInfo, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", qualified(resource), name),
        )
        .with_details(details(resource, name))
    }

    pub fn conflict(resource: &ResourceInfo, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                qualified(resource),
                name,
                why
            ),
        )
        .with_details(details(resource, name))
    }

    pub fn modified(resource: &ResourceInfo, name: &str) -> ApiError {
        ApiError::conflict(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn invalid(resource: &ResourceInfo, name: &str, errors: &[FieldError]) -> ApiError {
        let kind = if resource.group.is_empty() {
            resource.kind.to_string()
        } else {
            format!("{}.{}", resource.kind, resource.group)
        };
        let list = if errors.len() == 1 {
            errors[0].to_string()
        } else {
            format!(
                "[{}]",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field}))
            .collect();
        let mut d = json!({"name": name, "kind": resource.kind, "causes": causes});
        if !resource.group.is_empty() {
            d["group"] = json!(resource.group);
        }
        ApiError::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {list}"),
        )
        .with_details(d)
    }

    /// Invalid request options (upstream's NewInvalid for the meta.k8s.io kind `ListOptions`,
    /// `CreateOptions`...): one Forbidden field.
    pub fn invalid_options(kind: &str, field: &str, detail: &str) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!("{kind}.meta.k8s.io \"\" is invalid: {field}: Forbidden: {detail}"),
        )
        .with_details(json!({"group": "meta.k8s.io", "kind": kind, "causes": [{
            "reason": "FieldValueForbidden",
            "message": format!("Forbidden: {detail}"),
            "field": field,
        }]}))
    }

    pub fn gone(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> ApiError {
        ApiError::new(406, "NotAcceptable", message)
    }

    pub fn forbidden(resource: &ResourceInfo, name: &str, why: &str) -> ApiError {
        ApiError::new(
            403,
            "Forbidden",
            format!("{} \"{}\" is forbidden: {}", qualified(resource), name, why),
        )
        .with_details(details(resource, name))
    }

    /// NamespaceLifecycle's refusal to create in a terminating namespace, with upstream's
    /// NamespaceTerminating cause.
    pub fn namespace_terminating(resource: &ResourceInfo, name: &str, namespace: &str) -> ApiError {
        let mut e = ApiError::forbidden(
            resource,
            name,
            &format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
        );
        if let Some(d) = e.details.as_mut() {
            d["causes"] = json!([{
                "reason": "NamespaceTerminating",
                "message": format!("namespace {namespace} is being terminated"),
                "field": "metadata.namespace",
            }]);
        }
        e
    }

    pub fn service_unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "ServiceUnavailable", message)
    }

    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(504, "Timeout", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// The Status object of this error, in upstream's field order.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        });
        api::wire::canonicalize_as("meta/v1.Status", &mut status);
        status
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> ApiError {
        match e {
            store::StoreError::Compacted {
                requested,
                compacted,
            } => ApiError::gone(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = api::wire::to_body(&self.to_status());
        (
            code,
            [(http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// `pods` or `deployments.apps`, as Kubernetes names a resource in messages.
pub fn qualified(resource: &ResourceInfo) -> String {
    if resource.group.is_empty() {
        resource.plural.to_string()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

fn details(resource: &ResourceInfo, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": resource.plural});
    if !resource.group.is_empty() {
        d["group"] = json!(resource.group);
    }
    d
}
