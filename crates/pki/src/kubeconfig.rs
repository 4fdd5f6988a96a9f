//! Kubeconfigs that carry their credentials: the CA (`certificate-authority-data`) and a
//! client certificate and key (`client-certificate-data`, `client-key-data`), or a bearer
//! token, in the one-cluster, one-user, one-context shape kubeadm writes.

use base64::Engine;

/// How the user of a kubeconfig authenticates.
pub enum Credential<'a> {
    /// A client certificate and key (PEM).
    Cert {
        /// Certificate.
        cert_pem: &'a str,
        /// Key.
        key_pem: &'a str,
    },
    /// A bearer token.
    Token(&'a str),
}

/// A kubeconfig for `server` (an `https://` URL) trusting `ca_pem`, named `name` (cluster,
/// user and context alike), authenticating with `cred`.
pub fn kubeconfig(name: &str, server: &str, ca_pem: &str, cred: Credential<'_>) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let user = match cred {
        Credential::Cert { cert_pem, key_pem } => format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(cert_pem),
            b64(key_pem)
        ),
        Credential::Token(t) => format!("    token: {t}\n"),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {server}\n  name: {name}\ncontexts:\n- context:\n    cluster: {name}\n    user: {name}\n  name: {name}\ncurrent-context: {name}\npreferences: {{}}\nusers:\n- name: {name}\n  user:\n{user}",
        b64(ca_pem)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_the_ca_and_the_credential() {
        let k = kubeconfig(
            "c",
            "https://127.0.0.1:6443",
            "CA",
            Credential::Cert {
                cert_pem: "CERT",
                key_pem: "KEY",
            },
        );
        assert!(k.contains("certificate-authority-data: Q0E=\n"), "{k}");
        assert!(k.contains("client-certificate-data: Q0VSVA==\n"), "{k}");
        assert!(k.contains("client-key-data: S0VZ\n"), "{k}");
        assert!(k.contains("server: https://127.0.0.1:6443\n"), "{k}");
        assert!(kubeconfig("c", "https://x", "CA", Credential::Token("t")).contains("token: t\n"));
    }
}
