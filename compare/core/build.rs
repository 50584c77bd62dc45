//! Records, for the report, the raft-rs version that Cargo.lock resolved and the compiler.

use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    // Lockfile entries read `name = "raft"` followed by `version = "..."`.
    let raft_version = lock
        .split("[[package]]")
        .find(|package| package.contains("\nname = \"raft\"\n"))
        .and_then(|package| package.split("\nversion = \"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("unknown")
        .to_owned();
    println!("cargo::rustc-env=RAFT_RS_VERSION={raft_version}");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|version| version.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=RUSTC_VERSION={rustc_version}");
}
