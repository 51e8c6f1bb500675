//! TLS for the gRPC and HTTP listeners from PEM files, optionally asking
//! clients for certificates signed by a given CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up; names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {key} file {path}: {source}")]
    Read {
        /// The setting.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item.
    #[error("{key} file {path}: {message}")]
    Pem {
        /// The setting.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the combination.
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The PEM material both listeners are served with.
#[derive(Clone)]
pub struct TlsMaterial {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
    client_auth_optional: bool,
    /// Parsed once; also proves the files are usable before serving.
    http: Arc<rustls::ServerConfig>,
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

fn certificates(
    key: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            key,
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            key,
            path: path.to_owned(),
            message: "no CERTIFICATE found".into(),
        });
    }
    Ok(certs)
}

impl TlsMaterial {
    /// Loads and checks the files.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        client_ca_path: Option<&Path>,
        client_auth_optional: bool,
    ) -> Result<Self, TlsError> {
        let cert = read("tls_cert", cert_path)?;
        let key = read("tls_key", key_path)?;
        let client_ca = client_ca_path
            .map(|p| read("tls_client_ca", p))
            .transpose()?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certificates("tls_cert", cert_path, &cert)?;
        let private_key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| TlsError::Pem {
            key: "tls_key",
            path: key_path.to_owned(),
            message: e.to_string(),
        })?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match (&client_ca, client_ca_path) {
            (Some(pem), Some(path)) => {
                let mut roots = rustls::RootCertStore::empty();
                for ca in certificates("tls_client_ca", path, pem)? {
                    roots.add(ca)?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if client_auth_optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|e| TlsError::Pem {
                    key: "tls_client_ca",
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut http = builder.with_single_cert(chain, private_key)?;
        http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            cert,
            key,
            client_ca,
            client_auth_optional,
            http: Arc::new(http),
        })
    }

    /// The gRPC listener's TLS settings.
    pub fn grpc(&self) -> tonic::transport::ServerTlsConfig {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(&self.cert, &self.key));
        if let Some(ca) = &self.client_ca {
            config = config
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(self.client_auth_optional);
        }
        config
    }

    /// The HTTP listener's TLS settings.
    pub fn http(&self) -> Arc<rustls::ServerConfig> {
        self.http.clone()
    }
}
