//! The node a certificate belongs to: a URI subject alternative name
//! `raft://cluster/<cluster id>/node/<node id>` (ids in decimal, no leading zeros).
//!
//! A CA trusted by the cluster may sign certificates for every node; without a name in
//! each, any of them could claim any node id in the handshake. The URI binds the
//! certificate to one node of one cluster, so that a peer proves the id it claims.

use std::fmt;

use raft_core::NodeId;
use rustls_pki_types::CertificateDer;

/// The scheme of identity URIs; any URI of this scheme in a certificate is an identity
/// claim, and must be well formed.
const SCHEME: &str = "raft";

/// The form of an identity URI, for messages.
pub(in crate::transport) const IDENTITY_FORM: &str = "raft://cluster/<cluster id>/node/<node id>";

/// One node of one cluster, as a certificate names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::transport) struct NodeIdentity {
    pub(in crate::transport) cluster_id: u64,
    pub(in crate::transport) node: NodeId,
}

impl NodeIdentity {
    /// The identity named by `certificate` (an end-entity certificate, DER); the reason
    /// when it names none, several, or a malformed one.
    pub(in crate::transport) fn of_certificate(
        certificate: &CertificateDer<'_>,
    ) -> Result<NodeIdentity, String> {
        let parsed = webpki::EndEntityCert::try_from(certificate)
            .map_err(|error| format!("the certificate cannot be read: {error}"))?;
        let claims: Vec<&str> = parsed
            .valid_uri_names()
            .filter(|uri| {
                uri.split_once(':')
                    .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case(SCHEME))
            })
            .collect();
        match claims.as_slice() {
            [] => Err(format!("the certificate has no {IDENTITY_FORM} URI")),
            [uri] => NodeIdentity::parse(uri).ok_or_else(|| {
                format!("the certificate's URI {uri:?} is not of the form {IDENTITY_FORM}")
            }),
            // One certificate per node: a certificate valid for several would let one
            // node act as the others.
            several => Err(format!(
                "the certificate names several nodes ({})",
                several.join(", ")
            )),
        }
    }

    /// The identity of a URI `raft://cluster/<cluster id>/node/<node id>`, spelled exactly
    /// so, so that one identity has one spelling.
    fn parse(uri: &str) -> Option<NodeIdentity> {
        let path = uri.strip_prefix("raft://cluster/")?;
        let (cluster_id, node) = path.split_once("/node/")?;
        Some(NodeIdentity {
            cluster_id: decimal(cluster_id)?,
            node: NodeId(decimal(node)?),
        })
    }

    /// Whether this is `node` of cluster `cluster_id`; otherwise what the certificate
    /// names instead.
    pub(in crate::transport) fn check(&self, cluster_id: u64, node: NodeId) -> Result<(), String> {
        if self.cluster_id == cluster_id && self.node == node {
            Ok(())
        } else {
            Err(format!("the certificate names {self}"))
        }
    }
}

impl fmt::Display for NodeIdentity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "node {} of cluster {} (raft://cluster/{}/node/{})",
            self.node.0, self.cluster_id, self.cluster_id, self.node.0
        )
    }
}

/// A decimal `u64` of digits alone: no sign, no leading zero (`u64::from_str` takes a
/// `+`).
fn decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(cluster_id: u64, node: u64) -> Option<NodeIdentity> {
        Some(NodeIdentity {
            cluster_id,
            node: NodeId(node),
        })
    }

    #[test]
    fn an_identity_uri_has_one_spelling() {
        assert_eq!(
            NodeIdentity::parse("raft://cluster/1/node/2"),
            identity(1, 2)
        );
        assert_eq!(
            NodeIdentity::parse("raft://cluster/18446744073709551615/node/0"),
            identity(u64::MAX, 0)
        );
        for malformed in [
            "raft://cluster/1/node/",
            "raft://cluster//node/2",
            "raft://cluster/1/node/02",
            "raft://cluster/+1/node/2",
            "raft://cluster/1/node/2/",
            "raft://cluster/1/node/2?x",
            "raft://cluster/1/node/2/node/3",
            "raft://cluster/18446744073709551616/node/2",
            "raft://Cluster/1/node/2",
            "RAFT://cluster/1/node/2",
            "raft:cluster/1/node/2",
        ] {
            assert_eq!(NodeIdentity::parse(malformed), None, "{malformed}");
        }
    }

    #[test]
    fn a_mismatch_says_what_the_certificate_names() {
        let two = identity(1, 2).unwrap();
        assert_eq!(two.check(1, NodeId(2)), Ok(()));
        assert_eq!(
            two.check(1, NodeId(1)).unwrap_err(),
            "the certificate names node 2 of cluster 1 (raft://cluster/1/node/2)"
        );
        assert!(two.check(2, NodeId(2)).is_err());
    }
}
