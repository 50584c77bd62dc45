//! Records, for the report, the compiler that built the load generator.

include!("../common/build_versions.rs");

fn main() {
    record_rustc_version();
}
