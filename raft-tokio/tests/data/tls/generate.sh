#!/bin/sh
# Regenerates the test certificates of tests/tls.rs (needs the openssl command line).
# Each certificate is valid for 127.0.0.1, ::1 and localhost, usable by both ends of a
# connection, and names the raft node it belongs to with a URI subject alternative name,
# raft://cluster/<cluster id>/node/<node id>, which peers check against the node id the
# connection claims. The CA keys are thrown away: regenerating makes all anew.
set -eu
cd "$(dirname "$0")"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
days=36500 # About a century, so that the tests do not expire.

make_ca() { # name, subject
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$scratch/$1.key"
    openssl req -x509 -new -key "$scratch/$1.key" -subj "$2" -days "$days" -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$1.pem"
}

make_node() { # name, CA name, subject, identity URI (empty for none)
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
    openssl req -new -key "$1.key" -subj "$3" -out "$scratch/$1.csr"
    names="IP:127.0.0.1,IP:::1,DNS:localhost"
    if [ -n "$4" ]; then
        names="$names,URI:$4"
    fi
    printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth,clientAuth" \
        "subjectAltName=$names" >"$scratch/$1.ext"
    openssl x509 -req -in "$scratch/$1.csr" -CA "$2.pem" -CAkey "$scratch/$2.key" \
        -CAcreateserial -CAserial "$scratch/$2.srl" -days "$days" -sha256 \
        -extfile "$scratch/$1.ext" -out "$1.pem"
}

make_ca ca "/CN=raft test cluster CA"
# Cluster 7: the cluster id of the tests.
for id in 1 2 3; do
    make_node "node-$id" ca "/CN=raft test node $id" "raft://cluster/7/node/$id"
done
# Signed by the cluster's CA, but no node of cluster 7.
make_node cluster-8-node-2 ca "/CN=raft test node 2 of cluster 8" "raft://cluster/8/node/2"
make_node no-identity ca "/CN=raft test node without identity" ""
# Names node 2 of cluster 7, but another CA signed it.
make_ca other-ca "/CN=another CA"
make_node other-node other-ca "/CN=node of another CA" "raft://cluster/7/node/2"
