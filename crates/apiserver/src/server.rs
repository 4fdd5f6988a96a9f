//! The server: configuration, shared state, start-up (store, watch cache, allocators, bootstrap
//! objects) and the HTTP entry point that routes each request.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, Uri};
use ipnet::Ipv4Net;
use store::Store;

use auth::rbac::RbacAuthorizer;
use auth::UserInfo;

use crate::admission;
use crate::allocator::Allocator;
use crate::authn::Authenticator;
use crate::authz::{Authorizer, Mode};
use crate::cache::WatchCache;
use crate::discovery;
use crate::error::ApiError;
use crate::gate;
use crate::handlers;
use crate::metrics::Metrics;
use crate::node_graph::NodeGraph;
use crate::rbac_index::RbacIndex;
use crate::request::{self, Query};
use crate::sa_tokens::Tokens;
use crate::tls::PeerCerts;

/// What the server needs to know at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address clients reach the server at (published in the `kubernetes` Endpoints).
    pub advertise: SocketAddr,
    pub service_cluster_ip_range: Ipv4Net,
    pub service_node_port_range: (u16, u16),
    /// How often watchers that asked for them get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// How often old store revisions are compacted (the history kept is about this long).
    pub compaction_interval: Duration,
    /// Network namespace kubelets are dialed from (a local lab cluster whose nodes live in
    /// namespaces); None: this process's own.
    pub kubelet_netns: Option<std::path::PathBuf>,
    /// TLS towards kubelets (the apiserver's kubelet-client certificate, and the CA of their
    /// serving certificates when one is given); None dials them over plain HTTP (a test
    /// cluster whose kubelets serve plain).
    pub kubelet_tls: Option<Arc<rustls::ClientConfig>>,
    /// tolerationSeconds of the not-ready NoExecute toleration added to every pod.
    pub default_not_ready_toleration_seconds: i64,
    /// tolerationSeconds of the unreachable NoExecute toleration added to every pod.
    pub default_unreachable_toleration_seconds: i64,
    /// The etcd endpoints of the store (empty: the embedded store), for componentstatuses.
    pub etcd_servers: Vec<String>,
    /// The admission plugins that run (`--enable-admission-plugins`,
    /// `--disable-admission-plugins`; upstream's default set).
    pub admission: admission::Plugins,
    /// PodSecurity's configuration (defaults privileged:latest, no exemptions).
    pub pod_security: podsecurity::admission::Config,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            advertise: SocketAddr::from(([127, 0, 0, 1], 6443)),
            service_cluster_ip_range: "10.96.0.0/12".parse().expect("valid default range"),
            service_node_port_range: (30000, 32767),
            bookmark_interval: Duration::from_secs(60),
            compaction_interval: Duration::from_secs(300),
            kubelet_netns: None,
            kubelet_tls: None,
            default_not_ready_toleration_seconds: 300,
            default_unreachable_toleration_seconds: 300,
            etcd_servers: Vec::new(),
            admission: admission::Plugins::default(),
            pod_security: podsecurity::admission::Config::default(),
        }
    }
}

/// Who may call the server: its authenticator and authorizers.
pub struct Security {
    /// How requests are authenticated.
    pub authn: Authenticator,
    /// How they are authorized.
    pub authz: Authorizer,
    /// Checks (and, with the private key, issues) ServiceAccount tokens; None: ServiceAccount
    /// tokens are not accepted.
    pub sa_tokens: Option<Arc<Tokens>>,
}

impl Default for Security {
    /// Everyone is the anonymous user and everything is allowed (in-process tests).
    fn default() -> Security {
        Security {
            authn: Authenticator::anonymous_only(),
            authz: Authorizer::always_allow(),
            sa_tokens: None,
        }
    }
}

/// Shared state of a running apiserver.
pub struct ApiServer {
    pub store: Arc<dyn Store>,
    pub cache: Arc<WatchCache>,
    pub alloc: Allocator,
    pub config: Config,
    pub metrics: Metrics,
    pub security: Security,
    /// The RBAC authorizer over the RBAC objects.
    pub rbac: RbacAuthorizer<Arc<RbacIndex>>,
    /// Which objects each node's pods use (only with the Node authorizer).
    pub node_graph: Option<Arc<NodeGraph>>,
}

impl ApiServer {
    /// Starts the server's state over a store: fills the watch cache, restores allocations,
    /// creates the bootstrap objects and starts the compactor.
    pub async fn start(
        store: Arc<dyn Store>,
        config: Config,
    ) -> Result<Arc<ApiServer>, store::StoreError> {
        ApiServer::start_secured(store, config, Security::default()).await
    }

    /// Like [`ApiServer::start`], with authentication and authorization.
    pub async fn start_secured(
        store: Arc<dyn Store>,
        config: Config,
        security: Security,
    ) -> Result<Arc<ApiServer>, store::StoreError> {
        // The OpenAPI documents take a moment to build: do it off the request path.
        tokio::task::spawn_blocking(api::openapi::warm_up);
        let cache = WatchCache::start(store.clone()).await?;
        let alloc = Allocator::new(
            config.service_cluster_ip_range,
            config.service_node_port_range,
        );
        let services = api::registry::find("", "v1", "services").expect("services registered");
        let rc = cache.resource(services);
        for svc in rc
            .snapshot(&services.key_prefix(), cache.revision())
            .await
            .objects
        {
            admission::restore(services, &svc, &alloc);
        }
        let rbac = RbacAuthorizer::new(RbacIndex::start(&cache));
        let node_graph = security
            .authz
            .modes()
            .contains(&Mode::Node)
            .then(|| NodeGraph::start(&cache));
        let srv = Arc::new(ApiServer {
            rbac,
            node_graph,
            store,
            cache,
            alloc,
            config,
            metrics: Metrics::new(),
            security,
        });
        crate::bootstrap::run(&srv).await?;
        tokio::spawn(compactor(srv.clone()));
        Ok(srv)
    }

    /// The axum router serving every path.
    pub fn router(self: &Arc<ApiServer>) -> axum::Router {
        axum::Router::new()
            .fallback(dispatch)
            .with_state(self.clone())
    }

    /// The IP published for the `kubernetes` service.
    pub fn advertise_ip(&self) -> IpAddr {
        self.config.advertise.ip()
    }
}

/// Compacts store history older than about one interval, like kube-apiserver's compactor.
async fn compactor(srv: Arc<ApiServer>) {
    let mut previous: Option<i64> = None;
    loop {
        tokio::time::sleep(srv.config.compaction_interval).await;
        let current = match srv.store.current_revision().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "compactor could not read the revision");
                continue;
            }
        };
        if let Some(rev) = previous {
            if rev > 0 {
                match srv.store.compact(rev).await {
                    Ok(()) => tracing::debug!(revision = rev, "compacted store"),
                    Err(e) => tracing::warn!(error = %e, revision = rev, "compaction failed"),
                }
            }
        }
        previous = Some(current);
    }
}

/// Routes one request.
async fn dispatch(State(srv): State<Arc<ApiServer>>, mut req: axum::extract::Request) -> Response {
    // Exec and attach hand the connection to the kubelet after the upgrade.
    let upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    let (parts, body) = req.into_parts();
    let peer = parts.extensions.get::<PeerCerts>().cloned();
    let (method, uri, headers): (Method, Uri, HeaderMap) = (parts.method, parts.uri, parts.headers);
    let started = Instant::now();
    let path = uri.path().to_string();
    let query = Query::parse(uri.query());
    let (verb, resource, response) =
        match gate::gate(&srv, peer.as_ref(), &method, &path, &query, &headers).await {
            Ok(user) => route(&srv, &user, &method, &path, &query, &headers, body, upgrade).await,
            Err(e) => ("other", "", Err(e)),
        };
    let response = match response {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let code = response.status().as_u16();
    let elapsed = started.elapsed();
    srv.metrics.observe(verb, resource, code, elapsed);
    let agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::debug!(
        verb = verb,
        uri = %uri,
        code = code,
        latency = ?elapsed,
        user_agent = agent,
        "HTTP"
    );
    response
}

type Routed = (&'static str, &'static str, Result<Response, ApiError>);

#[allow(clippy::too_many_arguments)]
async fn route(
    srv: &Arc<ApiServer>,
    user: &UserInfo,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Routed {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // Non-resource paths.
    let non_resource = match segs.as_slice() {
        [] => Some(discovery::root_paths()),
        ["version"] => Some(discovery::version()),
        ["healthz", ..] | ["livez", ..] | ["readyz", ..] => Some(Ok(discovery::health())),
        ["metrics"] => Some(Ok(srv.metrics.render(&srv.cache))),
        ["api"] => Some(discovery::core_versions(srv, headers)),
        ["apis"] => Some(discovery::groups(headers)),
        ["api", "v1"] => Some(discovery::resource_list("", "v1")),
        ["apis", group] => Some(discovery::group(group)),
        ["apis", group, version] => Some(discovery::resource_list(group, version)),
        ["openapi", ..] => Some(discovery::openapi(&segs[1..], query, headers)),
        _ => None,
    };
    if let Some(r) = non_resource {
        if method != Method::GET && method != Method::HEAD {
            return ("other", "", Err(ApiError::method_not_allowed()));
        }
        return ("get", "", r);
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return ("other", "", Err(ApiError::not_found_path())),
    };
    let rp = match request::parse_resource_path(group, version, rest) {
        Ok(rp) => rp,
        Err(e) => return ("other", "", Err(e)),
    };
    let plural = rp.resource.plural;
    let verb = handlers::verb_name(method, &rp, query);
    let result = handlers::handle(srv, user, method, rp, query, headers, body, upgrade).await;
    (verb, plural, result)
}
