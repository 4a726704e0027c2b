// Build script shared by every guest app: links with the guest linker script,
// except for native builds (TWINKLE_NATIVE=1), which are ordinary Linux programs.
fn main() {
    println!("cargo:rerun-if-env-changed=TWINKLE_NATIVE");
    if std::env::var_os("TWINKLE_NATIVE").is_some() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = dir.join("../link.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg=-T{}", script.display());
}
