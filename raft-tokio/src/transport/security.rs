//! How peer connections are secured: plain TCP, or mutual TLS with the `tls` feature.
//!
//! Either way a connection becomes one [`SecuredStream`], so that the handshake and the
//! framing above it are the same code for both. With TLS, each end also learns which node
//! the other's certificate names ([`identity`]), and holds the other to it.

use std::io;

use raft_core::NodeId;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::TransportConfig;

#[cfg(feature = "tls")]
mod identity;
#[cfg(feature = "tls")]
mod tls;

#[cfg(feature = "tls")]
use identity::NodeIdentity;

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
    /// Mutual TLS: both ends present a certificate signed by a CA the other trusts, which
    /// names the node presenting it.
    #[cfg(feature = "tls")]
    Tls(tls::TlsContext),
}

/// What an accepted peer proved about which node it is, to be held against the node id
/// its handshake claims.
pub(super) enum PeerProof {
    /// Plain TCP proves nothing: the handshake is taken at its word.
    Unproven,
    /// The node named by the peer's certificate, or why it names none.
    #[cfg(feature = "tls")]
    Certificate(Result<NodeIdentity, String>),
}

impl PeerProof {
    /// Whether the peer may be `node` of cluster `cluster_id`; if not, the reason, naming
    /// the claimed node and what the certificate says instead.
    pub(super) fn allows(&self, cluster_id: u64, node: NodeId) -> Result<(), String> {
        // Only a certificate can contradict the claim.
        #[cfg(not(feature = "tls"))]
        let _ = (cluster_id, node);
        match self {
            PeerProof::Unproven => Ok(()),
            #[cfg(feature = "tls")]
            PeerProof::Certificate(identity) => identity
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|identity| identity.check(cluster_id, node))
                .map_err(|reason| {
                    format!("node {} claimed in the handshake, but {reason}", node.0)
                }),
        }
    }
}

impl Security {
    /// Plain TCP, or TLS with the files of `config.tls` loaded (and checked) now, so that
    /// a bad file, or a certificate naming another node than `config.id` of
    /// `config.cluster_id`, stops the start instead of failing every connection later.
    pub(super) fn from_config(config: &TransportConfig) -> io::Result<Security> {
        match &config.tls {
            None => Ok(Security::Plain),
            #[cfg(feature = "tls")]
            Some(files) => {
                tls::TlsContext::load(files, config.cluster_id, config.id).map(Security::Tls)
            }
            #[cfg(not(feature = "tls"))]
            Some(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "TLS is configured but raft-tokio was built without its `tls` feature",
            )),
        }
    }

    /// Secures an accepted connection, and tells what the peer proved about which node
    /// it is. A TLS handshake failing on the peer's part (no certificate, one from an
    /// unknown CA, not TLS at all) is an error of kind `InvalidData`; a peer leaving
    /// during the handshake is one of kind `UnexpectedEof`.
    pub(super) async fn accept(&self, stream: TcpStream) -> io::Result<(SecuredStream, PeerProof)> {
        match self {
            Security::Plain => Ok((Box::new(stream), PeerProof::Unproven)),
            #[cfg(feature = "tls")]
            Security::Tls(context) => context.accept(stream).await,
        }
    }

    /// Secures a connection made to node `peer` at `address` (as the address book gives
    /// it; with TLS its host is a name the peer's certificate must carry, and the
    /// certificate must name `peer` of this cluster). A certificate naming another node is
    /// an error of kind `PermissionDenied`.
    pub(super) async fn connect(
        &self,
        stream: TcpStream,
        address: &str,
        peer: NodeId,
    ) -> io::Result<SecuredStream> {
        // Only TLS needs the address and the id.
        #[cfg(not(feature = "tls"))]
        let _ = (address, peer);
        match self {
            Security::Plain => Ok(Box::new(stream)),
            #[cfg(feature = "tls")]
            Security::Tls(context) => context.connect(stream, address, peer).await,
        }
    }
}

#[cfg(all(test, not(feature = "tls")))]
mod tests {
    use super::*;
    use crate::transport::TlsFiles;

    #[test]
    fn tls_files_without_the_feature_are_refused_rather_than_ignored() {
        let mut config = TransportConfig::new(1, NodeId(1), "127.0.0.1:0".parse().unwrap());
        config.tls = Some(TlsFiles {
            ca_certificates: "ca.pem".into(),
            certificate: "node-1.pem".into(),
            private_key: "node-1.key".into(),
        });
        let Err(error) = Security::from_config(&config) else {
            panic!("TLS files accepted without the `tls` feature");
        };
        assert_eq!(error.kind(), io::ErrorKind::Unsupported);
        assert!(error.to_string().contains("`tls` feature"), "{error}");
    }
}
