//! Records, for the report, the raft-rs version that Cargo.lock resolved and the compiler.

include!("../common/build_versions.rs");

fn main() {
    println!("cargo::rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    println!(
        "cargo::rustc-env=RAFT_RS_VERSION={}",
        locked_version(&lock, "raft")
    );
    record_rustc_version();
}
