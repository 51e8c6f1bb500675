//! TLS on both listeners, and client certificates when a client CA is set.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use riverlog::proto::v1::event_log_client::EventLogClient;
use riverlog::server::{Application, ServerError};
use tempfile::TempDir;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::common::*;

/// A CA, a server certificate for localhost signed by it, and a client
/// certificate signed by it, written as PEM files.
pub struct Pki {
    dir: TempDir,
    ca_pem: String,
    client_cert: String,
    client_key: String,
    /// A client certificate from a CA the server does not know.
    stranger_cert: String,
    stranger_key: String,
}

fn issue(params: CertificateParams, issuer: &Issuer<'_, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn authority() -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (pem, Issuer::new(params, key))
}

impl Pki {
    pub fn new() -> Self {
        let (ca_pem, ca) = authority();
        let server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let (server_cert, server_key) = issue(server, &ca);
        let client = CertificateParams::new(vec!["client.riverlog.test".to_owned()]).unwrap();
        let (client_cert, client_key) = issue(client, &ca);
        let (_, other_ca) = authority();
        let stranger = CertificateParams::new(vec!["stranger.test".to_owned()]).unwrap();
        let (stranger_cert, stranger_key) = issue(stranger, &other_ca);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.pem"), server_cert).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        Self {
            dir,
            ca_pem,
            client_cert,
            client_key,
            stranger_cert,
            stranger_key,
        }
    }

    /// A file of the set: `server.pem`, `server.key`, `ca.pem`.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A server speaking TLS with the certificate; with `client_ca`, only
    /// to clients with a certificate from the CA.
    pub async fn server(&self, client_ca: bool) -> TestServer {
        let (cert, key, ca) = (
            self.path("server.pem"),
            self.path("server.key"),
            self.path("ca.pem"),
        );
        TestServer::start_with(move |c| {
            c.tls_cert = Some(cert);
            c.tls_key = Some(key);
            c.tls_client_ca = client_ca.then_some(ca);
        })
        .await
    }

    /// Connects over TLS, with a client certificate when given one.
    async fn client(
        &self,
        server: &TestServer,
        identity: Option<(&str, &str)>,
    ) -> Result<EventLogClient<Channel>, tonic::transport::Error> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .domain_name("localhost");
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let channel = Channel::from_shared(format!("https://localhost:{}", server.addr.port()))
            .unwrap()
            .tls_config(tls)?
            .connect()
            .await?;
        Ok(EventLogClient::new(channel))
    }

    /// GET /metrics over HTTPS; the status code, or the TLS failure.
    async fn https_get(
        &self,
        server: &TestServer,
        identity: Option<(&str, &str)>,
    ) -> Result<u16, String> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(server.http_addr)
            .await
            .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response);
        text.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no HTTP response: {text:?}"))
    }
}

#[tokio::test]
async fn both_listeners_speak_tls_and_nothing_else() {
    let pki = Pki::new();
    let server = pki.server(false).await;
    let mut client = pki.client(&server, None).await.expect("TLS connects");
    publish(&mut client, "s", vec![event("a")]).await;
    assert_eq!(pki.https_get(&server, None).await, Ok(200));

    // Plaintext gRPC gets nowhere.
    let mut plain = server.client().await;
    assert!(
        plain
            .publish(publish_request("s", vec![event("b")]))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn with_a_client_ca_only_certified_clients_get_in() {
    let pki = Pki::new();
    let server = pki.server(true).await;
    let good = Some((pki.client_cert.as_str(), pki.client_key.as_str()));
    let stranger = Some((pki.stranger_cert.as_str(), pki.stranger_key.as_str()));

    let mut client = pki
        .client(&server, good)
        .await
        .expect("certified client connects");
    publish(&mut client, "s", vec![event("a")]).await;
    assert_eq!(pki.https_get(&server, good).await, Ok(200));

    for identity in [None, stranger] {
        let refused = match pki.client(&server, identity).await {
            Err(_) => true,
            Ok(mut c) => c
                .publish(publish_request("s", vec![event("b")]))
                .await
                .is_err(),
        };
        assert!(
            refused,
            "gRPC let in a client without a trusted certificate"
        );
        assert!(pki.https_get(&server, identity).await.is_err(), "HTTPS too");
    }
    assert_eq!(read_all(&mut client, "s").await.len(), 1);
}

#[tokio::test]
async fn unusable_tls_files_stop_start_up_naming_the_setting() {
    let pki = Pki::new();
    let db = TestDb::new().await;
    let mut config = riverlog::config::Config::new(db.url.clone(), "127.0.0.1:0");
    config.tls_cert = Some(pki.path("missing.pem"));
    config.tls_key = Some(pki.path("server.key"));
    let err = Application::build(config.clone())
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, ServerError::Tls(_)));
    assert!(err.to_string().contains("tls_cert"), "{err}");

    config.tls_cert = Some(pki.path("server.key"));
    let err = Application::build(config).await.err().expect("refused");
    assert!(err.to_string().contains("tls_cert"), "{err}");
}
