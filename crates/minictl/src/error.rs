//! The errors of minictl's library, rendered the way kubectl renders them.

/// Everything a minictl verb can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server answered with a failure Status.
    #[error("Error from server ({reason}): {message}")]
    Server {
        reason: String,
        message: String,
        code: u16,
    },
    /// The server could not be reached or spoke garbage.
    #[error("unable to reach the server: {0}")]
    Transport(String),
    /// The kubeconfig could not be loaded.
    #[error("error loading kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    /// A resource type the server does not know.
    #[error("error: the server doesn't have a resource type \"{0}\"")]
    UnknownResource(String),
    /// A manifest that cannot be parsed.
    #[error("error: error parsing {path}: {message}")]
    Manifest { path: String, message: String },
    /// A manifest whose kind the server does not serve.
    #[error("error: resource mapping not found for name: \"{name}\" namespace: \"{namespace}\" from \"{path}\": no matches for kind \"{kind}\" in version \"{api_version}\"\nensure CRDs are installed first")]
    NoKindMatch {
        name: String,
        namespace: String,
        path: String,
        kind: String,
        api_version: String,
    },
    /// Bad command-line use.
    #[error("error: {0}")]
    Usage(String),
    /// A local file could not be read or written.
    #[error("error: {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True for a NotFound answer of the server.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Server { code: 404, .. })
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => Error::Server {
                reason: if status.reason.is_empty() {
                    "Unknown".into()
                } else {
                    status.reason.clone()
                },
                message: status.message.clone(),
                code: status.code,
            },
            other => Error::Transport(other.to_string()),
        }
    }
}

/// The result type of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
