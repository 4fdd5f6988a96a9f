//! The secured side of the benchmark (issue 15): an ordinary user `bench`, not an admin, with a
//! client certificate signed by the cluster CA and pod rights granted through RoleBindings in
//! the bench namespaces, so that every measured request goes through TLS, x509
//! authentication and a real RBAC evaluation; and the comparison of its numbers with the plain
//! run's, with the aims (secured at most 1.2 × plain).

use std::fmt::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::client::ApiClient;
use crate::procs::ApiServerProcess;
use crate::scenarios::{create_namespaces, BackendResult, NAMESPACES};
use crate::stats::Summary;

/// The user the secured measurements run as.
pub const USER: &str = "bench";
/// The ClusterRole granted to [`USER`] in each bench namespace.
const ROLE: &str = "bench-pods";
/// The aim: secured latency at most this many times the plain one.
pub const GOAL_RATIO: f64 = 1.2;
const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";

/// A client of `server` for the measurements, with the bench namespaces made. Plain: the one
/// client does everything. Secured: the admin (system:masters) makes the namespaces, a
/// ClusterRole with pod rights and a RoleBinding of it to [`USER`] in each namespace; the
/// client returned is [`USER`], once RBAC lets it list pods in every namespace.
pub async fn prepare(server: &ApiServerProcess) -> anyhow::Result<ApiClient> {
    let Some(pki) = server.pki() else {
        let client = ApiClient::new(server.base());
        create_namespaces(&client).await?;
        return Ok(client);
    };
    let admin_cert = pki.component(pki::Component::Admin)?;
    let admin = ApiClient::tls(server.base(), &pki.ca_pem, &admin_cert)?;
    create_namespaces(&admin).await?;
    grant(&admin).await?;
    let ca_key = std::fs::read_to_string(pki.path("ca.key")).context("reading ca.key")?;
    let ca = pki::Ca::from_pem(&pki.ca_pem, &ca_key)?;
    let cert = ca.issue(&pki::Leaf {
        cn: USER.into(),
        orgs: vec![],
        dns: vec![],
        ips: vec![],
        usage: pki::Usage::Client,
        days: 1,
    })?;
    let client = ApiClient::tls(server.base(), &pki.ca_pem, &cert)?;
    wait_allowed(&client).await?;
    Ok(client)
}

async fn post(admin: &ApiClient, path: &str, body: String) -> anyhow::Result<()> {
    let (status, resp) = admin
        .call(Method::POST, path, Some(Bytes::from(body)))
        .await?;
    if status != StatusCode::CREATED && status != StatusCode::CONFLICT {
        bail!("POST {path}: {status}: {}", String::from_utf8_lossy(&resp));
    }
    Ok(())
}

/// A ClusterRole with the pod verbs the measurements use, bound to [`USER`] by a RoleBinding
/// in each namespace (the RBAC index's namespaced path; `edit` would need the
/// controller-manager's aggregation, which does not run here).
async fn grant(admin: &ApiClient) -> anyhow::Result<()> {
    let role = format!(
        r#"{{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{{"name":"{ROLE}"}},"rules":[{{"apiGroups":[""],"resources":["pods"],"verbs":["create","get","list","watch","delete"]}}]}}"#
    );
    post(admin, &format!("{RBAC}/clusterroles"), role).await?;
    for ns in NAMESPACES {
        let binding = format!(
            r#"{{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{{"name":"{ROLE}","namespace":"{ns}"}},"roleRef":{{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"{ROLE}"}},"subjects":[{{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"{USER}"}}]}}"#
        );
        post(
            admin,
            &format!("{RBAC}/namespaces/{ns}/rolebindings"),
            binding,
        )
        .await?;
    }
    Ok(())
}

/// Waits until the RBAC index (eventually consistent) lets `client` list pods everywhere.
async fn wait_allowed(client: &ApiClient) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    for ns in NAMESPACES {
        loop {
            let path = format!("/api/v1/namespaces/{ns}/pods");
            let (status, body) = client.call(Method::GET, &path, None).await?;
            if status == StatusCode::OK {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{USER} still may not list pods in {ns}: {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// One compared latency: (aim name, row label, plain, secured).
fn latencies<'a>(
    plain: &'a BackendResult,
    secure: &'a BackendResult,
    n: usize,
) -> Vec<(String, String, &'a Summary, &'a Summary)> {
    vec![
        (
            "create-1-client".into(),
            "create pod, 1 client".into(),
            &plain.create_seq.latency,
            &secure.create_seq.latency,
        ),
        (
            format!("create-{n}-clients"),
            format!("create pod, {n} clients"),
            &plain.create_conc.latency,
            &secure.create_conc.latency,
        ),
        (
            "get".into(),
            "get pod, 1 client".into(),
            &plain.get,
            &secure.get,
        ),
    ]
}

/// The plain and secured numbers of one backend side by side with their ratios (Markdown),
/// then one `aim` line per compared percentile:
/// `aim tls-authz-<backend>-<op>-p99-ratio: 1.12 x (goal <= 1.2) met`.
pub fn comparison(backend: &str, plain: &BackendResult, secure: &BackendResult) -> String {
    let n = plain.create_conc.clients;
    let mut out = format!(
        "| {backend}: plain vs TLS + x509 authn + Node,RBAC as user `{USER}` | plain | secured | secured ÷ plain |\n|---|---:|---:|---:|\n"
    );
    let through = [
        (
            "create pod, 1 client: pods/s",
            &plain.create_seq,
            &secure.create_seq,
        ),
        (
            "create pod, N clients: pods/s",
            &plain.create_conc,
            &secure.create_conc,
        ),
    ];
    for (label, p, s) in through {
        let label = label.replace('N', &n.to_string());
        let _ = writeln!(
            out,
            "| {label} | {:.0} | {:.0} | {:.2} |",
            p.per_second(),
            s.per_second(),
            s.per_second() / p.per_second()
        );
    }
    let rows = latencies(plain, secure, n);
    for (_, label, p, s) in &rows {
        for (pct, pv, sv) in [("p50", p.p50_ms, s.p50_ms), ("p99", p.p99_ms, s.p99_ms)] {
            let _ = writeln!(
                out,
                "| {label}: latency {pct} | {pv:.2} ms | {sv:.2} ms | {:.2} |",
                sv / pv
            );
        }
    }
    out.push('\n');
    for (name, _, p, s) in &rows {
        for (pct, pv, sv) in [("p50", p.p50_ms, s.p50_ms), ("p99", p.p99_ms, s.p99_ms)] {
            let ratio = sv / pv;
            let _ = writeln!(
                out,
                "aim tls-authz-{backend}-{name}-{pct}-ratio: {ratio:.2} x (goal <= {GOAL_RATIO}) {}",
                if ratio <= GOAL_RATIO { "met" } else { "missed" }
            );
        }
    }
    out
}
