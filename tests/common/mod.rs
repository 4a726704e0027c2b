//! Helpers shared by the integration tests that start real VMs.

/// Fails the test, saying why, when /dev/kvm cannot be used: these tests never skip.
pub fn require_kvm() {
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        panic!("these tests start real KVM virtual machines and need /dev/kvm, which cannot be opened here: {e}");
    }
}

#[allow(dead_code)] // not every test binary restores into the pool
/// Fails the test, saying how to fix it, when the host's pool of 2 MiB huge
/// pages has fewer than `pages` free (make test reserves them as root).
pub fn require_huge_pages(pages: u64) {
    let pool = vmm_lite::memory::HugePool::read();
    if pool.available() < pages {
        panic!(
            "this test restores VMs into the host's huge-page pool and needs {pages} free 2 MiB pages; the pool has {} \
             (run as root: `twinkle host prepare --huge-pages 256`; `make test` does it)",
            pool.available()
        );
    }
}
