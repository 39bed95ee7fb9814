//! Gives libshmframe.so its soname, as a system library has: `libshmframe.so.MAJOR` from 1.0 on,
//! `libshmframe.so.0.MINOR` before (0.x minor versions may break the ABI), like cargo-c.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_else(|_| "0".into());
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libshmframe.so.{abi}");
    println!("cargo:rerun-if-changed=build.rs");
}
