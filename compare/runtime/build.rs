//! Records, for the report, the openraft and Tokio versions that Cargo.lock resolved and
//! the compiler.

include!("../common/build_versions.rs");

fn main() {
    println!("cargo::rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    println!(
        "cargo::rustc-env=OPENRAFT_VERSION={}",
        locked_version(&lock, "openraft")
    );
    println!(
        "cargo::rustc-env=TOKIO_VERSION={}",
        locked_version(&lock, "tokio")
    );
    record_rustc_version();
}
