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
const APPS: &[&str] = &["hello", "crash", "memtouch", "workload", "rubis", "tpcw"];
/// Guest programs also built as native Linux programs (same source, the
/// runtime's `native` feature), to measure what the VM costs.
const NATIVE_APPS: &[&str] = &["hello", "rubis", "tpcw"];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let guests = root.join("guests");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("guests");
    println!("cargo:rerun-if-changed=guests");
    println!("cargo:rerun-if-changed=build.rs");

    // Guest builds run inside guests/ so that its .cargo/config.toml (guest
    // target, static non-PIE flags) applies.
    let mut cmd = cargo_command(&guests);
    cmd.args(["build", "--release", "--target-dir"]).arg(&target_dir);
    run(cmd, "the guest programs");

    // Native builds run from the root, without the guest configuration.
    let native_dir = target_dir.with_file_name("guests-native");
    for app in NATIVE_APPS {
        let mut cmd = cargo_command(&root);
        cmd.env("TWINKLE_NATIVE", "1")
            .args(["build", "--release", "--manifest-path"])
            .arg(guests.join("Cargo.toml"))
            .args(["-p", app, "--features", "twinkle-rt/native", "--target-dir"])
            .arg(&native_dir);
        run(cmd, &format!("the native build of {app}"));
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
    table.push_str(
        "];\n/// The same programs built as native Linux executables.\npub static NATIVE_APPS: &[(&str, &[u8])] = &[\n",
    );
    for app in NATIVE_APPS {
        let src = native_dir.join("release").join(app);
        let dst = out.join(format!("{app}.native"));
        copy(&src, &dst);
        table.push_str(&format!("    ({app:?}, include_bytes!({:?})),\n", dst.display().to_string()));
    }
    table.push_str("];\n");
    std::fs::write(out.join("guest_apps.rs"), table).expect("write guest_apps.rs");
}

/// A cargo command in `dir` without the outer build's compiler settings.
fn cargo_command(dir: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir);
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
    cmd
}

fn run(mut cmd: Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run cargo to build {what}: {e}"));
    if !status.success() {
        panic!("building {what} failed (see the errors above)");
    }
}

fn copy(src: &Path, dst: &Path) {
    std::fs::copy(src, dst).unwrap_or_else(|e| panic!("guest program {} missing after the build: {e}", src.display()));
}
