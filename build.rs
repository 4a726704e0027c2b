//! Builds the guest programs (the separate workspace in guests/, for the
//! guest: static, non-PIE, no_std) and embeds them in the twinkle binary, so
//! `twinkle vm run --app hello` needs no other file.
//!
//! The guests get their own target directory (target/guests) so this nested
//! cargo never waits on the outer build's lock, and the outer build's
//! compiler settings are removed from its environment.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest programs embedded in twinkle.
const APPS: &[&str] = &["hello", "crash", "memtouch"];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let guests = root.join("guests");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("guests");
    println!("cargo:rerun-if-changed=guests");
    println!("cargo:rerun-if-changed=build.rs");

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&guests).args(["build", "--release", "--target-dir"]).arg(&target_dir);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let inherited_setting =
            k.starts_with("CARGO_") && !matches!(k.as_str(), "CARGO_HOME" | "CARGO_MAKEFLAGS" | "CARGO_NET_OFFLINE");
        if inherited_setting
            || matches!(
                k.as_str(),
                "RUSTFLAGS" | "RUSTDOCFLAGS" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "RUSTC"
            )
        {
            cmd.env_remove(&k);
        }
    }
    let status =
        cmd.status().unwrap_or_else(|e| panic!("cannot run cargo for the guests in {}: {e}", guests.display()));
    if !status.success() {
        panic!("building the guest programs in {} failed (see the errors above)", guests.display());
    }

    let bin_dir = target_dir.join("x86_64-unknown-linux-gnu").join("release");
    let mut table = String::from(
        "/// Guest programs built from guests/ and embedded at build time.\npub static APPS: &[(&str, &[u8])] = &[\n",
    );
    for app in APPS {
        let src = bin_dir.join(app);
        let dst = out.join(format!("{app}.elf"));
        copy(&src, &dst);
        table.push_str(&format!("    ({app:?}, include_bytes!({:?})),\n", dst.display().to_string()));
    }
    table.push_str("];\n");
    std::fs::write(out.join("guest_apps.rs"), table).expect("write guest_apps.rs");
}

fn copy(src: &Path, dst: &Path) {
    std::fs::copy(src, dst).unwrap_or_else(|e| panic!("guest program {} missing after the build: {e}", src.display()));
}
