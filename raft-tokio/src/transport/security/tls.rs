//! Mutual TLS with rustls and its ring provider: the PEM files loaded once, and each
//! connection secured from either end, with the node named by the other end's
//! certificate read out of it.

use std::fmt::Display;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use raft_core::NodeId;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::rustls::{self, ClientConfig, InconsistentKeys, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::identity::NodeIdentity;
use super::{PeerProof, SecuredStream};
use crate::transport::TlsFiles;

/// How each file is named in errors.
const CA_CERTIFICATES_FILE: &str = "CA certificates file";
const CERTIFICATE_FILE: &str = "certificate file";
const PRIVATE_KEY_FILE: &str = "private key file";

/// Both ends of this node's connections: the listener's and the senders'. Cloning shares
/// the settings.
#[derive(Clone)]
pub(in crate::transport) struct TlsContext {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    /// The cluster the peers' certificates must name.
    cluster_id: u64,
}

impl TlsContext {
    /// Reads and checks the files: each must hold what it should, the key must be the
    /// certificate's, and the certificate must name node `id` of cluster `cluster_id`.
    /// Errors name the file and the reason, on one line.
    pub(super) fn load(files: &TlsFiles, cluster_id: u64, id: NodeId) -> io::Result<TlsContext> {
        // The provider is given explicitly rather than installed process-wide, so that
        // what other crates of the program install (or not) does not matter.
        let provider = Arc::new(ring::default_provider());
        let roots = Arc::new(load_roots(&files.ca_certificates)?);
        let identity = Arc::new(load_identity(files, &provider)?);
        // Every peer would refuse a certificate naming another node: better to fail here,
        // once and plainly, than to run refused by all.
        certificate_identity(&identity.cert)
            .and_then(|named| named.check(cluster_id, id))
            .map_err(|reason| {
                invalid(
                    &files.certificate,
                    CERTIFICATE_FILE,
                    format!(
                        "this is node {} of cluster {cluster_id}, but {reason}",
                        id.0
                    ),
                )
            })?;

        // Built without `allow_unauthenticated`: a peer without a certificate is refused.
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|error| invalid(&files.ca_certificates, CA_CERTIFICATES_FILE, error))?;
        let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_client_cert_verifier(client_verifier)
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::clone(&identity))));
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity)));
        Ok(TlsContext {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            cluster_id,
        })
    }

    /// Runs the server side of the handshake, which requires the peer's certificate, and
    /// reads the node it names (checked against the node's handshake later).
    pub(super) async fn accept(&self, stream: TcpStream) -> io::Result<(SecuredStream, PeerProof)> {
        let stream = self
            .acceptor
            .accept(stream)
            .await
            .map_err(handshake_failed)?;
        let identity =
            certificate_identity(stream.get_ref().1.peer_certificates().unwrap_or_default());
        Ok((Box::new(stream), PeerProof::Certificate(identity)))
    }

    /// Runs the client side of the handshake with node `peer` at `address`, whose
    /// certificate must name the address's host, and `peer` of this cluster: otherwise the
    /// connection is dropped before this node says anything on it.
    pub(super) async fn connect(
        &self,
        stream: TcpStream,
        address: &str,
        peer: NodeId,
    ) -> io::Result<SecuredStream> {
        let name = server_name(address)?;
        let stream = self
            .connector
            .connect(name, stream)
            .await
            .map_err(handshake_failed)?;
        certificate_identity(stream.get_ref().1.peer_certificates().unwrap_or_default())
            .and_then(|named| named.check(self.cluster_id, peer))
            .map_err(|reason| {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("node {} dialled at {address}, but {reason}", peer.0),
                )
            })?;
        Ok(Box::new(stream))
    }
}

/// The node named by the first certificate of `chain` (the end entity's).
fn certificate_identity(chain: &[CertificateDer<'_>]) -> Result<NodeIdentity, String> {
    match chain.first() {
        Some(certificate) => NodeIdentity::of_certificate(certificate),
        // rustls requires a certificate of both ends; kept an error rather than a panic.
        None => Err("no certificate was presented".to_string()),
    }
}

/// Keeps the error's kind (the listener tells refusals from departures by it) and says
/// where it happened.
fn handshake_failed(error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("TLS handshake failed: {error}"))
}

/// The name the peer at `address` ("host:port") must prove: its host, an IP address or a
/// DNS name.
fn server_name(address: &str) -> io::Result<ServerName<'static>> {
    if let Ok(socket) = address.parse::<SocketAddr>() {
        return Ok(ServerName::IpAddress(socket.ip().into()));
    }
    let host = address
        .rsplit_once(':')
        .map_or(address, |(host, _port)| host);
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host)
        .map(|name| name.to_owned())
        .map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no TLS server name in the peer address {address:?}: {error}"),
            )
        })
}

/// The CAs peers' certificates must come from: every certificate of the file.
fn load_roots(path: &Path) -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for certificate in read_certificates(path, CA_CERTIFICATES_FILE)? {
        roots.add(certificate).map_err(|error| {
            invalid(
                path,
                CA_CERTIFICATES_FILE,
                format!("unusable CA certificate: {}", certificate_problem(error)),
            )
        })?;
    }
    Ok(roots)
}

/// This node's certificate chain and the key proving it.
fn load_identity(files: &TlsFiles, provider: &CryptoProvider) -> io::Result<CertifiedKey> {
    let chain = read_certificates(&files.certificate, CERTIFICATE_FILE)?;
    let key = PrivateKeyDer::from_pem_file(&files.private_key)
        .map_err(|error| pem_error(&files.private_key, PRIVATE_KEY_FILE, "private key", error))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| {
            invalid(
                &files.private_key,
                PRIVATE_KEY_FILE,
                format!("unusable private key: {error}"),
            )
        })?;
    let identity = CertifiedKey::new(chain, signing_key);
    // Checked here, as rustls would, to tell which file is at fault.
    match identity.keys_match() {
        // A key type whose public half rustls cannot derive: nothing to compare.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(identity),
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(invalid(
            &files.private_key,
            PRIVATE_KEY_FILE,
            format!(
                "not the key of the certificate in {}",
                files.certificate.display()
            ),
        )),
        Err(error) => Err(invalid(
            &files.certificate,
            CERTIFICATE_FILE,
            format!("unusable certificate: {}", certificate_problem(error)),
        )),
    }
}

/// What is wrong with a certificate, without rustls's "invalid peer certificate" framing,
/// which would mislead about a local file.
fn certificate_problem(error: rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(problem) => problem.to_string(),
        other => other.to_string(),
    }
}

/// Every certificate of the PEM file at `path`; at least one.
fn read_certificates(path: &Path, role: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|sections| sections.collect::<Result<Vec<_>, _>>())
        .map_err(|error| pem_error(path, role, "certificate", error))?;
    if certificates.is_empty() {
        return Err(pem_error(
            path,
            role,
            "certificate",
            pem::Error::NoItemsFound,
        ));
    }
    Ok(certificates)
}

/// `item` could not be read from the file at `path`.
fn pem_error(path: &Path, role: &str, item: &str, error: pem::Error) -> io::Error {
    match error {
        // Keeps the kind (`NotFound`, `PermissionDenied`...) for callers that check it.
        pem::Error::Io(error) => io::Error::new(
            error.kind(),
            format!("TLS {role} {}: cannot read it: {error}", path.display()),
        ),
        pem::Error::NoItemsFound => invalid(path, role, format!("no PEM {item} in it")),
        // The markers as text: their `Display` shows them as byte arrays.
        pem::Error::MissingSectionEnd { end_marker } => invalid(
            path,
            role,
            format!(
                "malformed PEM: no \"-----END {}-----\" line",
                String::from_utf8_lossy(&end_marker)
            ),
        ),
        pem::Error::IllegalSectionStart { line } => invalid(
            path,
            role,
            format!(
                "malformed PEM: bad section start {:?}",
                String::from_utf8_lossy(&line).trim_end()
            ),
        ),
        other => invalid(path, role, format!("malformed PEM: {other}")),
    }
}

fn invalid(path: &Path, role: &str, reason: impl Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("TLS {role} {}: {reason}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn ip(address: &str) -> IpAddr {
        match server_name(address).unwrap() {
            ServerName::IpAddress(ip) => IpAddr::from(ip),
            other => panic!("expected an IP address, got {other:?}"),
        }
    }

    #[test]
    fn the_server_name_is_the_host_of_the_address() {
        assert_eq!(ip("127.0.0.1:7000"), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(ip("[::1]:7000"), IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(
            server_name("node-1.example.com:7000").unwrap(),
            ServerName::try_from("node-1.example.com").unwrap()
        );
        assert_eq!(
            server_name("localhost:7000").unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        let error = server_name("bad name!:7000").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains("bad name!:7000"), "{error}");
    }
}
