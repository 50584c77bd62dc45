//! Records, for the report, the openraft and Tokio versions that Cargo.lock resolved and
//! the compiler.

use std::process::Command;

/// The version Cargo.lock gives the package `name`.
fn locked_version(lock: &str, name: &str) -> String {
    // Lockfile entries read `name = "..."` followed by `version = "..."`.
    lock.split("[[package]]")
        .find(|package| package.contains(&format!("\nname = \"{name}\"\n")))
        .and_then(|package| package.split("\nversion = \"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("unknown")
        .to_owned()
}

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
