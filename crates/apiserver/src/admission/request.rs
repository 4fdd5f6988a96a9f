//! One admission request (upstream's `admission.Attributes`) and the chain run over it:
//! mutating plugins, then validating plugins and the RBAC registries' escalation check, then
//! the checks on deletes. The handlers build a [`Request`] and call these; which kind a
//! plugin looks at is the plugin's business.

use api::ResourceInfo;
use auth::UserInfo;
use serde_json::Value;

use super::plugins::Plugin;
use super::{node_restriction, pod_security, priority, rbac_escalation, service_account};
use crate::error::ApiError;
use crate::server::ApiServer;

/// The operation of a request, as admission sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// CREATE (also the binding and eviction subresources).
    Create,
    /// UPDATE (PUT and PATCH, of the object or a subresource).
    Update,
    /// DELETE.
    Delete,
}

impl Operation {
    /// Upstream's spelling (`CREATE`, `UPDATE`, `DELETE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// What admission knows of a write.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who asks.
    pub user: &'a UserInfo,
    /// The operation.
    pub operation: Operation,
    /// The resource (the parent's for subresources).
    pub resource: &'static ResourceInfo,
    /// The subresource (`status`, `eviction`, ...), "" for the object itself.
    pub subresource: &'a str,
    /// The namespace, "" for cluster-scoped resources.
    pub namespace: &'a str,
    /// The object's name as messages name it (its generateName before a name is generated).
    pub name: &'a str,
    /// Whether nothing is to be written.
    pub dry_run: bool,
    /// The stored object an update or delete changes.
    pub old: Option<&'a Value>,
}

impl Request<'_> {
    /// upstream's `admission.NewForbidden`: `pods "x" is forbidden: <why>`.
    pub fn forbidden(&self, why: &str) -> ApiError {
        ApiError::forbidden(self.resource, self.name, why)
    }

    /// Whether the request is for this group and resource.
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.resource.group == group && self.resource.plural == plural
    }
}

/// The mutating plugins in upstream's order (ServiceAccount, NodeRestriction, Priority) on the
/// decoded, defaulted object of a create or update (the Eviction of an eviction).
pub async fn mutate(srv: &ApiServer, req: &Request<'_>, obj: &mut Value) -> Result<(), ApiError> {
    let plugins = &srv.config.admission;
    if plugins.enabled(Plugin::ServiceAccount) && req.is("", "pods") {
        service_account::admit(srv, req, obj).await?;
    }
    if plugins.enabled(Plugin::NodeRestriction) {
        node_restriction::admit(srv, req, Some(obj)).await?;
    }
    if plugins.enabled(Plugin::Priority)
        && req.is("", "pods")
        && req.operation == Operation::Create
        && req.subresource.is_empty()
    {
        priority::admit_pod_priority(srv, obj).await?;
    }
    Ok(())
}

/// The validating plugins (PodSecurity, PriorityClass) and the RBAC escalation check on the
/// object about to be stored; the warnings go back to the client.
pub async fn validate(
    srv: &ApiServer,
    req: &Request<'_>,
    obj: &Value,
) -> Result<Vec<String>, ApiError> {
    let plugins = &srv.config.admission;
    let mut warnings = Vec::new();
    if plugins.enabled(Plugin::PodSecurity) {
        warnings.extend(pod_security::admit(srv, req, obj).await?);
    }
    if plugins.enabled(Plugin::Priority)
        && req.is("scheduling.k8s.io", "priorityclasses")
        && req.subresource.is_empty()
    {
        priority::admit_priority_class(srv, obj).await?;
    }
    if rbac_escalation::applies(req) {
        rbac_escalation::check(srv, req, obj)?;
    }
    Ok(warnings)
}

/// The checks on a delete of `req.old`.
pub async fn admit_delete(srv: &ApiServer, req: &Request<'_>) -> Result<(), ApiError> {
    priority::check_priority_class_delete(req.resource, req.name)?;
    if srv.config.admission.enabled(Plugin::NodeRestriction) {
        node_restriction::admit(srv, req, None).await?;
    }
    Ok(())
}
