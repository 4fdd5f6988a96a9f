//! `v1/componentstatuses` (`kubectl get cs`): never stored; each request probes the scheduler's
//! and the controller-manager's /healthz on this machine and the store, as upstream's
//! pkg/registry/core/componentstatus does (get and list only).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::render;
use crate::request::Rendering;
use crate::server::ApiServer;

/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A component and where its health is read.
enum Probe {
    /// `GET http://<addr>/healthz` answering 200.
    Healthz(&'static str),
    /// A read of the store's current revision.
    Store,
}

/// The components, in upstream's order: scheduler, controller-manager, then the store.
fn components(srv: &ApiServer) -> Vec<(String, Probe)> {
    let mut out = vec![
        ("scheduler".to_string(), Probe::Healthz("127.0.0.1:10259")),
        (
            "controller-manager".to_string(),
            Probe::Healthz("127.0.0.1:10257"),
        ),
    ];
    let store_name = if srv.config.etcd_servers.is_empty() {
        "embedded-store".to_string()
    } else {
        "etcd-0".to_string()
    };
    out.push((store_name, Probe::Store));
    out
}

/// One health check: Ok(message) when healthy, Err(error) when not.
async fn probe(srv: &ApiServer, p: &Probe) -> Result<String, String> {
    match p {
        Probe::Store => match srv.store.current_revision().await {
            Ok(_) => Ok("ok".into()),
            Err(e) => Err(e.to_string()),
        },
        Probe::Healthz(addr) => {
            let url = format!("http://{addr}/healthz");
            let fetch = async {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("Get \"{url}\": dial tcp {addr}: {e}"))?;
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(|e| format!("Get \"{url}\": {e}"))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                let req = Request::get("/healthz")
                    .header(http::header::HOST, *addr)
                    .body(Body::empty())
                    .map_err(|e| e.to_string())?;
                let resp = sender
                    .send_request(req)
                    .await
                    .map_err(|e| format!("Get \"{url}\": {e}"))?;
                let code = resp.status();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                    .unwrap_or_default();
                if code == StatusCode::OK {
                    Ok(body)
                } else {
                    Err(format!("unhealthy status code: {}", code.as_u16()))
                }
            };
            tokio::time::timeout(PROBE_TIMEOUT, fetch)
                .await
                .unwrap_or_else(|_| Err(format!("Get \"{url}\": context deadline exceeded")))
        }
    }
}

/// The ComponentStatus object of one component.
fn component_status(name: &str, result: Result<String, String>) -> Value {
    let condition = match result {
        Ok(message) => json!({"type": "Healthy", "status": "True", "message": message}),
        Err(error) => json!({"type": "Healthy", "status": "False", "error": error}),
    };
    let mut cs = json!({
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": name},
        "conditions": [condition],
    });
    api::wire::canonicalize_as("core/v1.ComponentStatus", &mut cs);
    cs
}

/// GET of one component or of the list.
pub async fn handle(
    srv: &Arc<ApiServer>,
    r: &'static api::ResourceInfo,
    method: &Method,
    name: Option<&str>,
    rendering: Rendering,
) -> Result<Response, ApiError> {
    if *method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    let wanted: Vec<(String, Probe)> = components(srv)
        .into_iter()
        .filter(|(n, _)| name.is_none_or(|want| want == n))
        .collect();
    if let Some(n) = name {
        if wanted.is_empty() {
            return Err(ApiError::not_found(r, n));
        }
    }
    let results = futures::future::join_all(wanted.iter().map(|(_, p)| probe(srv, p))).await;
    let items: Vec<Value> = wanted
        .iter()
        .zip(results)
        .map(|((n, _), res)| component_status(n, res))
        .collect();
    match name {
        Some(_) => {
            let obj = items.into_iter().next().unwrap_or(Value::Null);
            Ok(render::object_response(
                r,
                obj,
                rendering,
                StatusCode::OK,
                vec![],
            ))
        }
        None => Ok(render::list_response(
            r,
            items.into_iter().map(Arc::new).collect(),
            0,
            None,
            rendering,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_and_unhealthy_conditions_read_like_upstreams() {
        let ok = component_status("scheduler", Ok("ok".into()));
        assert_eq!(
            String::from_utf8(api::wire::to_body(&ok)).unwrap(),
            "{\"kind\":\"ComponentStatus\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"scheduler\",\"creationTimestamp\":null},\"conditions\":[{\"type\":\"Healthy\",\"status\":\"True\",\"message\":\"ok\"}]}\n"
        );
        let bad = component_status("controller-manager", Err("connection refused".into()));
        assert_eq!(bad["conditions"][0]["status"], "False");
        assert_eq!(bad["conditions"][0]["error"], "connection refused");
    }
}
