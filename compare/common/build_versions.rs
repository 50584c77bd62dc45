// What the comparisons' build scripts record for their reports: the versions Cargo.lock
// resolved and the compiler. Pasted into each `build.rs` with `include!`, so it holds
// items only and needs only the standard library.

/// The version Cargo.lock gives the package `name`, or "unknown".
// Not every comparison records a locked version (the server one needs only the compiler).
#[allow(dead_code)]
fn locked_version(lock: &str, name: &str) -> String {
    // Lockfile entries read `name = "..."` followed by `version = "..."`.
    lock.split("[[package]]")
        .find(|package| package.contains(&format!("\nname = \"{name}\"\n")))
        .and_then(|package| package.split("\nversion = \"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("unknown")
        .to_owned()
}

/// Sets `RUSTC_VERSION` for the crate to what `rustc --version` prints.
fn record_rustc_version() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|version| version.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=RUSTC_VERSION={rustc_version}");
}
