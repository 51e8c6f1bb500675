//! Where the server is, whether it speaks TLS, and the token: the flags
//! every client command shares, and the gRPC channel they open.

use std::path::PathBuf;

use clap::Args;
use clap::builder::FalseyValueParser;
use http::uri::Authority;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use super::CliError;
use crate::proto::v1::consumer_groups_client::ConsumerGroupsClient;
use crate::proto::v1::event_log_client::EventLogClient;

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server address: `host:port` (plaintext unless --tls), or a URL
    /// (`http://host:port`, `https://host:port` for TLS).
    #[arg(
        long,
        env = "RIVERLOG_SERVER",
        default_value = "127.0.0.1:50051",
        value_parser = ServerAddress::parse,
        global = true
    )]
    pub server: ServerAddress,
    /// Speak TLS to a `host:port` server (as `https://` does).
    #[arg(long, env = "RIVERLOG_TLS", value_parser = FalseyValueParser::new(), global = true)]
    pub tls: bool,
    /// Bearer token (prefer the variable: flags show up in `ps`).
    #[arg(long, env = "RIVERLOG_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// PEM CA that signed the server's certificate (with TLS).
    #[arg(long, env = "RIVERLOG_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

/// A `--server` value as given: host and port, and the scheme if a URL
/// named one. Whether TLS is used is settled with `--tls` in
/// [`Connection::target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// `host:port` (`[::1]:50051` for IPv6).
    authority: Authority,
    /// `Some(true)` for `https://`, `Some(false)` for `http://`, `None`
    /// for a bare `host:port`.
    tls_scheme: Option<bool>,
    /// As typed, for messages.
    raw: String,
}

impl ServerAddress {
    /// Parses `host:port`, `http://host[:port]` or `https://host[:port]`
    /// (a URL without a port gets its scheme's: 80 or 443). Anything else,
    /// a path included, is refused with the accepted forms.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let forms = "give host:port (like 127.0.0.1:50051), http://host:port or https://host:port";
        let (tls_scheme, rest) = match raw.split_once("://") {
            Some(("http", rest)) => (Some(false), rest),
            Some(("https", rest)) => (Some(true), rest),
            Some((scheme, _)) => return Err(format!("{scheme}:// is not supported: {forms}")),
            None => (None, raw),
        };
        // A trailing slash is what URLs often carry; any other path is not
        // an address riverlog can use.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let authority: Authority = rest
            .parse()
            .map_err(|_| format!("{raw:?} is not an address: {forms}"))?;
        if authority.as_str().contains('@') {
            return Err(format!("{raw:?}: no user info in the address; {forms}"));
        }
        let authority = match (authority.port_u16(), tls_scheme) {
            (Some(_), _) => authority,
            (None, Some(tls)) => {
                let port = if tls { 443 } else { 80 };
                format!("{}:{port}", authority.as_str())
                    .parse()
                    .map_err(|_| format!("{raw:?} is not an address: {forms}"))?
            }
            (None, None) => return Err(format!("{raw:?} has no port: {forms}")),
        };
        Ok(Self {
            authority,
            tls_scheme,
            raw: raw.to_owned(),
        })
    }

    /// `host:port`.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }
}

/// The server to call, resolved from `--server` and `--tls`.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`.
    pub authority: Authority,
    /// Whether the channel speaks TLS.
    pub tls: bool,
}

impl Target {
    /// `http://host:port` or `https://host:port`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }
}

/// An error with its causes, `outer: inner: ...`: tonic's own text is only
/// "transport error", the reason (refused, a certificate no CA vouches
/// for, ...) is in its sources.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text += ": ";
            text += &next;
        }
        source = cause.source();
    }
    text
}

/// Adds `authorization: Bearer ...` to every call.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel that sends the token.
pub type Authed = InterceptedService<Channel, Bearer>;

impl Connection {
    /// The server and whether to speak TLS: `https://` or `--tls` say
    /// TLS, `http://` or a bare `host:port` plaintext. `http://` with
    /// `--tls` contradicts itself and is a usage error.
    pub fn target(&self) -> Result<Target, CliError> {
        let tls = match (self.server.tls_scheme, self.tls) {
            (Some(false), true) => {
                return Err(CliError::Usage(format!(
                    "--server {} says http:// (plaintext) but --tls asks for TLS: \
                     use https:// or drop --tls",
                    self.server.raw
                )));
            }
            (Some(scheme), _) => scheme,
            (None, flag) => flag,
        };
        Ok(Target {
            authority: self.server.authority.clone(),
            tls,
        })
    }

    async fn channel(&self) -> Result<Channel, CliError> {
        let target = self.target()?;
        let mut endpoint = Endpoint::from_shared(target.url())
            .map_err(|e| CliError::Usage(format!("--server {}: {e}", self.server.raw)))?;
        if target.tls {
            let mut tls = ClientTlsConfig::new();
            if let Some(path) = &self.ca_cert {
                let pem = std::fs::read(path)
                    .map_err(|e| CliError::Usage(format!("--ca-cert {}: {e}", path.display())))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| CliError::Usage(format!("TLS: {e}")))?;
        }
        endpoint.connect().await.map_err(|e| {
            CliError::Unreachable(format!("cannot reach {}: {}", target.url(), causes(&e)))
        })
    }

    fn bearer(&self) -> Result<Bearer, CliError> {
        self.token
            .as_ref()
            .map(|t| {
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| CliError::Usage("the token must be printable ASCII".into()))
            })
            .transpose()
            .map(Bearer)
    }

    /// An `EventLog` client.
    pub async fn event_log(&self) -> Result<EventLogClient<Authed>, CliError> {
        Ok(EventLogClient::with_interceptor(
            self.channel().await?,
            self.bearer()?,
        ))
    }

    /// A `ConsumerGroups` client.
    pub async fn groups(&self) -> Result<ConsumerGroupsClient<Authed>, CliError> {
        Ok(ConsumerGroupsClient::with_interceptor(
            self.channel().await?,
            self.bearer()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(server: &str, tls: bool) -> Connection {
        Connection {
            server: ServerAddress::parse(server).expect("parses"),
            tls,
            token: None,
            ca_cert: None,
        }
    }

    fn url(server: &str, tls: bool) -> String {
        connection(server, tls).target().expect("resolves").url()
    }

    #[test]
    fn host_port_is_plaintext_unless_tls_is_asked_for() {
        assert_eq!(url("127.0.0.1:50051", false), "http://127.0.0.1:50051");
        assert_eq!(url("127.0.0.1:50051", true), "https://127.0.0.1:50051");
        assert_eq!(url("[::1]:7", false), "http://[::1]:7");
        assert_eq!(url("localhost:50051", true), "https://localhost:50051");
    }

    #[test]
    fn urls_keep_their_scheme_and_get_its_default_port() {
        assert_eq!(url("http://h:1", false), "http://h:1");
        assert_eq!(url("https://h:1", false), "https://h:1");
        assert_eq!(url("https://h:1/", true), "https://h:1");
        assert_eq!(url("https://h", false), "https://h:443");
        assert_eq!(url("http://h", false), "http://h:80");
    }

    #[test]
    fn http_with_tls_contradicts_itself() {
        let Err(CliError::Usage(message)) = connection("http://h:1", true).target() else {
            panic!("accepted http:// with --tls");
        };
        assert!(message.contains("use https:// or drop --tls"), "{message}");
    }

    #[test]
    fn addresses_without_a_port_or_with_a_path_or_scheme_are_refused() {
        let no_port = ServerAddress::parse("localhost").unwrap_err();
        assert!(no_port.contains("has no port"), "{no_port}");
        assert!(no_port.contains("host:port"), "{no_port}");
        for bad in ["grpc://h:1", "h:1/x", "", "user@h:1", "h:port"] {
            assert!(ServerAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            ServerAddress::parse("grpc://h:1")
                .unwrap_err()
                .contains("grpc:// is not supported")
        );
    }
}
