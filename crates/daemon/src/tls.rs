//! TLS for the daemons' APIs (rustls, aws-lc-rs): the serving certificate, client certificates
//! requested but not required (a client without one may still use a token), the certificates
//! a client presented handed to each request as [`PeerCerts`], and [`ClientCa`], which judges
//! them: as upstream, a wrong or expired client certificate fails authentication (401), not the
//! handshake. The apiserver and the kubelet API serve through it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tower::ServiceExt;

/// The certificates a client presented in the TLS handshake (leaf first), unverified.
#[derive(Debug, Clone, Default)]
pub struct PeerCerts(pub Arc<Vec<CertificateDer<'static>>>);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{what}: {reason}")]
    Pem {
        /// Which file.
        what: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The process's crypto provider (aws-lc-rs), installed once as rustls' default.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let p = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let _ = rustls::crypto::CryptoProvider::install_default((*p).clone());
    p
}

/// Certificates from PEM text.
pub fn certs_from_pem(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    match certs {
        Ok(c) if !c.is_empty() => Ok(c),
        Ok(_) => Err(TlsError::Pem {
            what: what.into(),
            reason: "no certificate".into(),
        }),
        Err(e) => Err(TlsError::Pem {
            what: what.into(),
            reason: e.to_string(),
        }),
    }
}

/// A server configuration for the serving certificate chain and key (PEM), asking clients for
/// a certificate signed by `client_ca` without requiring one.
pub fn server_config(
    cert_pem: &str,
    key_pem: &str,
    client_ca: Option<&ClientCa>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let chain = certs_from_pem(cert_pem, "serving certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Pem {
        what: "serving key".into(),
        reason: e.to_string(),
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match client_ca {
        Some(ca) => {
            let hints = ca.certs.iter().filter_map(subject_of).collect();
            builder
                .with_client_cert_verifier(Arc::new(RequestClientCert { provider, hints }))
                .with_single_cert(chain, key)?
        }
        None => builder.with_no_client_auth().with_single_cert(chain, key)?,
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The DER subject of a certificate (a hint telling clients which CA to pick a cert for).
fn subject_of(der: &CertificateDer<'_>) -> Option<DistinguishedName> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(DistinguishedName::from(cert.subject().as_raw().to_vec()))
}

/// Asks for a client certificate and checks only that the client holds its key (the handshake
/// signature); the chain is judged by the x509 authenticator, so a bad one is a 401.
#[derive(Debug)]
struct RequestClientCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
    hints: Vec<DistinguishedName>,
}

impl ClientCertVerifier for RequestClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Client certificates signed by a CA: who they name.
#[derive(Clone)]
pub struct ClientCa {
    verifier: Arc<dyn ClientCertVerifier>,
    certs: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCa")
    }
}

impl ClientCa {
    /// Trusts the CA certificates in `pem`.
    pub fn from_pem(pem: &str) -> Result<ClientCa, TlsError> {
        ClientCa::from_certs(certs_from_pem(pem, "client CA")?)
    }

    /// Trusts the CA certificates given as DER (a kubeconfig's `certificate-authority-data`).
    pub fn from_der(ders: &[Vec<u8>]) -> Result<ClientCa, TlsError> {
        ClientCa::from_certs(
            ders.iter()
                .map(|d| CertificateDer::from(d.clone()))
                .collect(),
        )
    }

    fn from_certs(certs: Vec<CertificateDer<'static>>) -> Result<ClientCa, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for c in &certs {
            roots.add(c.clone())?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(|e| TlsError::Pem {
            what: "client CA".into(),
            reason: e.to_string(),
        })?;
        Ok(ClientCa { verifier, certs })
    }

    /// The (CN, O values) of a chain that verifies against the CA now (client auth usage).
    pub fn identity(
        &self,
        chain: &[CertificateDer<'static>],
    ) -> Result<(String, Vec<String>), String> {
        let (leaf, intermediates) = chain.split_first().ok_or("empty chain")?;
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map_err(|e| e.to_string())?;
        let info = pki::info_der(leaf).map_err(|e| e.to_string())?;
        if info.cn.is_empty() {
            return Err("certificate without a common name".into());
        }
        Ok((info.cn, info.orgs))
    }
}

/// A client configuration trusting the CA certificates in `roots` (PEM), or, without roots,
/// any server certificate (upstream's HTTPS probes, and the apiserver towards kubelets without
/// --kubelet-certificate-authority); with `client`, presenting that certificate and key.
pub fn client_config(
    roots: Option<&str>,
    client: Option<(&str, &str)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match roots {
        Some(pem) => {
            let mut store = rustls::RootCertStore::empty();
            for c in certs_from_pem(pem, "server CA")? {
                store.add(c)?;
            }
            builder.with_root_certificates(store)
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider))),
    };
    let config = match client {
        Some((cert, key)) => builder.with_client_auth_cert(
            certs_from_pem(cert, "client certificate")?,
            PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| TlsError::Pem {
                what: "client key".into(),
                reason: e.to_string(),
            })?,
        )?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Accepts every server certificate; the handshake's signatures are still checked with the
/// provider's algorithms, so the connection itself is sound.
#[derive(Debug)]
struct AnyServerCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` completes: each connection's
/// client certificates go into its requests' extensions as [`PeerCerts`]; HTTP/1.1 upgrades
/// (exec, attach, port-forward) and HTTP/2 work as over plain TCP.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(acceptor, tcp, peer, router).await {
                tracing::debug!(%peer, error = %e, "TLS connection");
            }
        });
    }
}

async fn connection(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    router: axum::Router,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = tcp.set_nodelay(true);
    let tls = acceptor.accept(tcp).await?;
    let certs = PeerCerts(Arc::new(
        tls.get_ref()
            .1
            .peer_certificates()
            .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
            .unwrap_or_default(),
    ));
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(certs.clone());
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let router = router.clone();
            async move {
                let resp = router
                    .oneshot(req.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|e: Infallible| match e {});
                Ok::<_, Infallible>(resp)
            }
        });
    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(tls), service)
        .await
}
