//! An HTTP/1 client (hyper-util's pooled legacy client, keep-alive): the cheapest way to issue
//! requests, so that the client does not dominate what is measured. Plain HTTP, or HTTPS
//! (rustls through hyper-rustls) trusting the cluster CA and presenting a client certificate.

use anyhow::{bail, Context};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A client of one apiserver.
#[derive(Clone)]
pub struct ApiClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
}

impl ApiClient {
    /// A client of the server at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> ApiClient {
        // No TLS is spoken to an http:// base; the configuration is only there for the type.
        let tls = daemon::tls::client_config(None, None).expect("a TLS config without files");
        ApiClient::with_config(base, tls)
    }

    /// A client of the server at `base` (`https://127.0.0.1:PORT`) trusting the CA in `ca_pem`
    /// and presenting `client` (certificate and key, PEM).
    pub fn tls(base: &str, ca_pem: &str, client: &pki::KeyCert) -> anyhow::Result<ApiClient> {
        let tls = daemon::tls::client_config(
            Some(ca_pem),
            Some((client.cert_pem.as_str(), client.key_pem.as_str())),
        )
        .context("client TLS configuration")?;
        Ok(ApiClient::with_config(base, tls))
    }

    fn with_config(base: &str, tls: std::sync::Arc<rustls::ClientConfig>) -> ApiClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(connector);
        ApiClient {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request and returns its status and the response (body not yet read).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> anyhow::Result<hyper::Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path))
            .header(http::header::ACCEPT, "application/json");
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        self.http
            .request(req)
            .await
            .with_context(|| format!("request to {}{path}", self.base))
    }

    /// Sends a request and reads the whole response body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the response of {path}"))?
            .to_bytes();
        Ok((status, bytes))
    }

    /// GET that must answer 200.
    pub async fn get_ok(&self, path: &str) -> anyhow::Result<Bytes> {
        let (status, body) = self.call(Method::GET, path, None).await?;
        if status != StatusCode::OK {
            bail!(
                "GET {path}: {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(500)])
            );
        }
        Ok(body)
    }

    /// POST that must answer 201 Created.
    pub async fn create(&self, path: &str, body: Bytes) -> anyhow::Result<Bytes> {
        let (status, resp) = self.call(Method::POST, path, Some(body)).await?;
        if status != StatusCode::CREATED {
            bail!(
                "POST {path}: {status}: {}",
                String::from_utf8_lossy(&resp[..resp.len().min(500)])
            );
        }
        Ok(resp)
    }
}
