//! Tells, after a call failed at the transport, whether the server speaks
//! TLS: a client that spoke plaintext to a TLS listener (or the reverse)
//! otherwise only sees "transport error".
//!
//! The probe sends a TLS ClientHello on a fresh connection and looks at the
//! first byte of the answer: a TLS server answers with a handshake (0x16)
//! or alert (0x15) record (RFC 8446 §5.1); riverlog's plaintext gRPC
//! listener answers with an HTTP/2 frame or closes the connection. It runs
//! only on the error path, so a working command pays nothing for it.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::connection::Target;

/// What the server at an address speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaks {
    /// It answered the ClientHello with a TLS record.
    Tls,
    /// It answered with something else, or closed the connection.
    Plaintext,
    /// It could not be asked (no connection, no answer in time).
    Unknown,
}

/// How long the probe waits to connect and for the first answer byte.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Asks the server at `target` whether it speaks TLS.
pub async fn speaks(target: &Target) -> Speaks {
    let Some(hello) = client_hello(target.authority.host()) else {
        return Speaks::Unknown;
    };
    let ask = async {
        let mut tcp = TcpStream::connect(target.authority.as_str()).await?;
        tcp.write_all(&hello).await?;
        let mut first = [0u8; 2];
        let n = tcp.read(&mut first).await?;
        std::io::Result::Ok(match first[..n] {
            [0x15 | 0x16, 0x03] | [0x15 | 0x16] => Speaks::Tls,
            _ => Speaks::Plaintext,
        })
    };
    match tokio::time::timeout(PROBE_TIMEOUT, ask).await {
        Ok(Ok(speaks)) => speaks,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Speaks::Plaintext,
        _ => Speaks::Unknown,
    }
}

/// The bytes of a TLS ClientHello for `host`, from rustls. Nothing is
/// verified: the handshake is never finished.
fn client_hello(host: &str) -> Option<Vec<u8>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    // An IPv6 authority's host is bracketed; the server name is not.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).ok()?;
    let mut connection = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let mut hello = Vec::new();
    connection.write_tls(&mut hello).ok()?;
    Some(hello)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_is_a_tls_handshake_record() {
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            let hello = client_hello(host).expect("a hello");
            assert_eq!(hello[..2], [0x16, 0x03], "{host}");
        }
    }
}
