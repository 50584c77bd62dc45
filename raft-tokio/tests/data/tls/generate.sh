#!/bin/sh
# Regenerates the test certificates of tests/tls.rs (needs the openssl command line).
# Two CAs, each signing one certificate valid for 127.0.0.1, ::1 and localhost, usable by
# both ends of a connection. The CA keys are thrown away: regenerating makes all anew.
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

make_node() { # name, CA name, subject
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
    openssl req -new -key "$1.key" -subj "$3" -out "$scratch/$1.csr"
    printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth,clientAuth" \
        "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" >"$scratch/$1.ext"
    openssl x509 -req -in "$scratch/$1.csr" -CA "$2.pem" -CAkey "$scratch/$2.key" \
        -CAcreateserial -CAserial "$scratch/$2.srl" -days "$days" -sha256 \
        -extfile "$scratch/$1.ext" -out "$1.pem"
}

make_ca ca "/CN=raft test cluster CA"
make_node node ca "/CN=raft test node"
make_ca other-ca "/CN=another CA"
make_node other-node other-ca "/CN=node of another CA"
