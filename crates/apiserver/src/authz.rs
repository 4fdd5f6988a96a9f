//! Authorization: a request's attributes (upstream's RequestInfoFactory: verb, namespace,
//! group, version, resource, subresource, name, or a non-resource path) and the authorizers
//! asked in `--authorization-mode` order (`Node`, `RBAC`, `AlwaysAllow`, `AlwaysDeny`), the
//! first decision that is not "no opinion" winning, as upstream's union authorizer. Members of
//! `system:masters` are always allowed (upstream's privileged-group authorizer).

use auth::{names, Attributes, Decision, UserInfo};
use http::Method;

use crate::request::Query;

/// One authorizer of `--authorization-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything is allowed (upstream's binary default; tests).
    AlwaysAllow,
    /// Nothing is allowed.
    AlwaysDeny,
    /// Role-based access control over the rbac.authorization.k8s.io objects.
    Rbac,
    /// Kubelets reach what their pods need (see [`crate::node_authz`]).
    Node,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "AlwaysAllow" => Ok(Mode::AlwaysAllow),
            "AlwaysDeny" => Ok(Mode::AlwaysDeny),
            "RBAC" => Ok(Mode::Rbac),
            "Node" => Ok(Mode::Node),
            other => Err(format!(
                "unknown authorization mode {other:?}: want AlwaysAllow, AlwaysDeny, Node or RBAC"
            )),
        }
    }
}

/// The attributes of a request by `user` (upstream's RequestInfo turned into
/// `authorizer.Attributes`).
pub fn attributes(method: &Method, path: &str, query: &Query, user: &UserInfo) -> Attributes {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return non_resource(method, path, user),
    };
    if rest.is_empty() {
        return non_resource(method, path, user);
    }
    let mut parts: Vec<&str> = rest.to_vec();
    let mut watch = query.flag("watch");
    if parts.first() == Some(&"watch") {
        watch = true;
        parts.remove(0);
    }
    let mut namespace = "";
    if parts.first() == Some(&"namespaces") && parts.len() > 1 {
        namespace = parts[1];
        // /namespaces/{name}[/status|/finalize] is the namespace itself; anything else after
        // the name is a resource in that namespace.
        if parts.len() > 2 && !["status", "finalize"].contains(&parts[2]) {
            parts.drain(..2);
        }
    }
    let resource = parts.first().copied().unwrap_or("");
    let name = parts.get(1).copied().unwrap_or("");
    let subresource = parts.get(2).copied().unwrap_or("");
    let verb = match *method {
        Method::GET | Method::HEAD if name.is_empty() && watch => "watch",
        Method::GET | Method::HEAD if name.is_empty() => "list",
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if name.is_empty() => "deletecollection",
        Method::DELETE => "delete",
        _ => "",
    };
    // A list or watch of metadata.name=X is a request for X (upstream sets the name).
    let field_selector = query.get("fieldSelector").unwrap_or("").to_string();
    let mut name = name.to_string();
    if name.is_empty() && (verb == "list" || verb == "watch") {
        if let Some(n) = field_selector.split(',').find_map(|r| {
            let r = r.trim();
            r.strip_prefix("metadata.name==")
                .or_else(|| r.strip_prefix("metadata.name="))
        }) {
            name = n.to_string();
        }
    }
    Attributes {
        field_selector,
        user: user.clone(),
        verb: verb.to_string(),
        resource_request: true,
        namespace: namespace.to_string(),
        api_group: group.to_string(),
        api_version: version.to_string(),
        resource: resource.to_string(),
        subresource: subresource.to_string(),
        name,
        path: path.to_string(),
    }
}

fn non_resource(method: &Method, path: &str, user: &UserInfo) -> Attributes {
    Attributes {
        user: user.clone(),
        verb: method.as_str().to_ascii_lowercase(),
        resource_request: false,
        path: path.to_string(),
        ..Default::default()
    }
}

/// The authorizers of a server, in order.
#[derive(Debug, Clone)]
pub struct Authorizer {
    modes: Vec<Mode>,
}

impl Authorizer {
    /// Asks `modes` in order.
    pub fn new(modes: Vec<Mode>) -> Authorizer {
        Authorizer { modes }
    }

    /// Everything allowed (in-process tests).
    pub fn always_allow() -> Authorizer {
        Authorizer::new(vec![Mode::AlwaysAllow])
    }

    /// The configured modes.
    pub fn modes(&self) -> &[Mode] {
        &self.modes
    }

    /// The decision for `a`; `ask` answers for the modes that need the server's objects
    /// (RBAC, Node).
    pub fn authorize(
        &self,
        a: &Attributes,
        ask: impl Fn(Mode, &Attributes) -> Decision,
    ) -> Decision {
        if a.user.groups.iter().any(|g| g == names::MASTERS) {
            // Upstream's privileged-group authorizer gives no reason.
            return Decision::Allow(String::new());
        }
        let mut reasons = Vec::new();
        for m in &self.modes {
            let d = match m {
                Mode::AlwaysAllow => Decision::Allow(String::new()),
                Mode::AlwaysDeny => Decision::Deny("Everything is forbidden.".into()),
                Mode::Rbac | Mode::Node => ask(*m, a),
            };
            match d {
                Decision::NoOpinion(r) => {
                    if !r.is_empty() {
                        reasons.push(r);
                    }
                }
                decided => return decided,
            }
        }
        Decision::NoOpinion(reasons.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, path: &str, query: &str) -> Attributes {
        attributes(
            &method,
            path,
            &Query::parse(Some(query)),
            &UserInfo::default(),
        )
    }

    #[test]
    fn request_info_as_upstream_derives_it() {
        let a = attrs(Method::GET, "/api/v1/namespaces/default/pods", "");
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.namespace.as_str()),
            ("list", "pods", "default")
        );
        let a = attrs(Method::GET, "/api/v1/namespaces/default/pods", "watch=true");
        assert_eq!(a.verb, "watch");
        let a = attrs(Method::GET, "/api/v1/watch/namespaces/default/pods/web", "");
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "web"));
        let a = attrs(
            Method::POST,
            "/api/v1/namespaces/default/pods/web/exec",
            "command=sh",
        );
        assert_eq!(
            (
                a.verb.as_str(),
                a.resource.as_str(),
                a.subresource.as_str(),
                a.name.as_str()
            ),
            ("create", "pods", "exec", "web")
        );
        let a = attrs(Method::DELETE, "/apis/apps/v1/namespaces/x/deployments", "");
        assert_eq!(
            (
                a.verb.as_str(),
                a.api_group.as_str(),
                a.api_version.as_str()
            ),
            ("deletecollection", "apps", "v1")
        );
        let a = attrs(Method::GET, "/api/v1/namespaces/kube-system", "");
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("namespaces", "kube-system", "kube-system")
        );
        let a = attrs(Method::PUT, "/api/v1/namespaces/kube-system/finalize", "");
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.subresource.as_str()),
            ("update", "namespaces", "finalize")
        );
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/ns/secrets",
            "watch=1&fieldSelector=metadata.name%3Ddb",
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "db"));
        assert_eq!(a.field_selector, "metadata.name=db");
        let a = attrs(Method::GET, "/api/v1/nodes/n1/proxy/metrics", "");
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.subresource.as_str()),
            ("nodes", "n1", "proxy")
        );
        for p in ["/version", "/healthz", "/api", "/apis/apps", "/openapi/v2"] {
            let a = attrs(Method::GET, p, "");
            assert!(!a.resource_request, "{p}");
            assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", p));
        }
    }

    #[test]
    fn the_first_opinion_wins_and_masters_always_may() {
        let z = Authorizer::new(vec![Mode::Node, Mode::Rbac]);
        let mut a = attrs(Method::GET, "/api/v1/pods", "");
        let no = |_: Mode, _: &Attributes| Decision::NoOpinion(String::new());
        assert!(!z.authorize(&a, no).allowed());
        let rbac_yes = |m: Mode, _: &Attributes| match m {
            Mode::Rbac => Decision::Allow("rbac".into()),
            _ => Decision::NoOpinion("no relationship found".into()),
        };
        assert_eq!(z.authorize(&a, rbac_yes), Decision::Allow("rbac".into()));
        a.user.groups = vec!["system:masters".into()];
        assert!(z.authorize(&a, no).allowed());
        assert!(!Authorizer::new(vec![Mode::AlwaysDeny, Mode::AlwaysAllow])
            .authorize(&attrs(Method::GET, "/version", ""), no)
            .allowed());
        assert_eq!("RBAC".parse::<Mode>(), Ok(Mode::Rbac));
        assert!("rbac".parse::<Mode>().is_err());
    }
}
