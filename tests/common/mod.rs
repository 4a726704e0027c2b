//! Helpers shared by the integration tests that start real VMs.

/// Fails the test, saying why, when /dev/kvm cannot be used: these tests never skip.
pub fn require_kvm() {
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        panic!("these tests start real KVM virtual machines and need /dev/kvm, which cannot be opened here: {e}");
    }
}
