//! How peer connections are secured: plain TCP, or mutual TLS with the `tls` feature.
//!
//! Either way a connection becomes one [`SecuredStream`], so that the handshake and the
//! framing above it are the same code for both.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::TransportConfig;

#[cfg(feature = "tls")]
mod tls;

/// The bytes of a connection: as they travel, or decrypted.
pub(super) trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<Stream: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for Stream {}

/// A connection once secured. Boxed rather than generic so that the listener and the
/// senders hold one type whatever the security: a virtual call per read or write costs
/// nothing beside the system call behind it, and reads are buffered, writes batched.
pub(super) type SecuredStream = Box<dyn PeerStream>;

/// How connections are secured, settled once when the transport starts.
#[derive(Clone)]
pub(super) enum Security {
    /// Plain TCP.
    Plain,
    /// Mutual TLS: both ends present a certificate signed by a CA the other trusts.
    #[cfg(feature = "tls")]
    Tls(tls::TlsContext),
}

impl Security {
    /// Plain TCP, or TLS with the files of `config.tls` loaded (and checked) now, so that
    /// a bad file stops the start instead of failing every connection later.
    pub(super) fn from_config(config: &TransportConfig) -> io::Result<Security> {
        match &config.tls {
            None => Ok(Security::Plain),
            #[cfg(feature = "tls")]
            Some(files) => tls::TlsContext::load(files).map(Security::Tls),
            #[cfg(not(feature = "tls"))]
            Some(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TLS is configured but raft-tokio was built without its `tls` feature",
            )),
        }
    }

    /// Secures an accepted connection. A TLS handshake failing on the peer's part (no
    /// certificate, one from an unknown CA, not TLS at all) is an error of kind
    /// `InvalidData`; a peer leaving during the handshake is one of kind `UnexpectedEof`.
    pub(super) async fn accept(&self, stream: TcpStream) -> io::Result<SecuredStream> {
        match self {
            Security::Plain => Ok(Box::new(stream)),
            #[cfg(feature = "tls")]
            Security::Tls(context) => context.accept(stream).await,
        }
    }

    /// Secures a connection made to the peer at `address` (as the address book gives it;
    /// with TLS its host is the name the peer's certificate must carry).
    pub(super) async fn connect(
        &self,
        stream: TcpStream,
        address: &str,
    ) -> io::Result<SecuredStream> {
        // Only TLS needs the address.
        #[cfg(not(feature = "tls"))]
        let _ = address;
        match self {
            Security::Plain => Ok(Box::new(stream)),
            #[cfg(feature = "tls")]
            Security::Tls(context) => context.connect(stream, address).await,
        }
    }
}

#[cfg(all(test, not(feature = "tls")))]
mod tests {
    use super::*;
    use crate::transport::TlsFiles;
    use raft_core::NodeId;

    #[test]
    fn tls_files_without_the_feature_are_refused_rather_than_ignored() {
        let mut config = TransportConfig::new(1, NodeId(1), "127.0.0.1:0".parse().unwrap());
        config.tls = Some(TlsFiles {
            ca_certificates: "ca.pem".into(),
            certificate: "node.pem".into(),
            private_key: "node.key".into(),
        });
        let Err(error) = Security::from_config(&config) else {
            panic!("TLS files accepted without the `tls` feature");
        };
        assert_eq!(error.kind(), io::ErrorKind::Unsupported);
        assert!(error.to_string().contains("`tls` feature"), "{error}");
    }
}
