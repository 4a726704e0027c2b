//! What `twinkle vm run` does, as a library call: bind the listener, resolve
//! the endpoints, create the VM, run it, report how it ended.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;

use crate::control_socket::{ControlSocket, VmInfo};
use crate::error::{VmExit, VmmError};
use crate::vm::{CreateTimings, RestoreConfig, Strategy, Vm, VmConfig};

/// Milestones of a launch, reported as they happen.
#[derive(Debug, Clone, Copy)]
pub enum LaunchEvent {
    /// The listener is bound (useful with port 0).
    Listening(SocketAddr),
    /// The VM is created and about to run.
    Created(CreateTimings),
    /// A restored VM ended: what its page server did.
    Paged(crate::pager::PagerReport),
    /// The VM ended: its milestones, ms after creation.
    Ended(Milestones),
}

/// When a VM reached its milestones, ms after creation began.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Milestones {
    /// The guest reported Ready (a booted VM) or null (a restored one).
    pub ready_ms: Option<f64>,
    /// The guest sent its first byte to a client.
    pub first_byte_ms: Option<f64>,
    /// The VM ended.
    pub ended_ms: f64,
}

/// Options of one VM run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The guest ELF.
    pub elf: Vec<u8>,
    /// A name for messages (`hello`, or the ELF path).
    pub name: String,
    /// Guest memory in MiB.
    pub mem_mib: u32,
    /// Host address to accept connections on.
    pub listen: Option<String>,
    /// `NAME=HOST:PORT` outbound endpoints.
    pub connect: Vec<String>,
    /// Guest arguments.
    pub args: Vec<String>,
    /// Most open connections.
    pub max_conns: usize,
    /// Unix socket for the control protocol (docs/vm-control.md).
    pub control: Option<PathBuf>,
    /// Write an image here when the guest reports Ready, then end (`image build`).
    pub snapshot: Option<PathBuf>,
}

/// Parses `NAME=HOST:PORT`, resolving the host.
pub fn parse_endpoint(spec: &str) -> Result<(String, SocketAddr), VmmError> {
    let (name, addr) = spec.split_once('=').ok_or_else(|| {
        VmmError::Config(format!("--connect {spec:?}: expected NAME=HOST:PORT, e.g. redis=127.0.0.1:6379"))
    })?;
    if name.is_empty() || name.len() > guest_abi::MAX_ENDPOINT_NAME {
        return Err(VmmError::Config(format!(
            "--connect {spec:?}: the name must have 1 to {} characters",
            guest_abi::MAX_ENDPOINT_NAME
        )));
    }
    let resolved = addr
        .to_socket_addrs()
        .map_err(|e| VmmError::Config(format!("--connect {spec:?}: cannot resolve {addr:?}: {e}")))?
        .next()
        .ok_or_else(|| VmmError::Config(format!("--connect {spec:?}: {addr:?} resolves to no address")))?;
    Ok((name.to_string(), resolved))
}

fn bind(listen: &Option<String>, on_event: &mut impl FnMut(LaunchEvent)) -> Result<Option<TcpListener>, VmmError> {
    match listen {
        Some(addr) => {
            let l = TcpListener::bind(addr.as_str())
                .map_err(|source| VmmError::Io { what: format!("cannot listen on {addr}"), source })?;
            let local = l.local_addr().map_err(|source| VmmError::Io { what: "listener address".into(), source })?;
            on_event(LaunchEvent::Listening(local));
            Ok(Some(l))
        }
        None => Ok(None),
    }
}

/// Serves the control socket (if asked), reports creation, runs the VM.
fn run_created(
    vm: Vm,
    control: &Option<PathBuf>,
    info: VmInfo,
    on_event: &mut impl FnMut(LaunchEvent),
) -> Result<VmExit, VmmError> {
    tracing::debug!(
        app = %info.app,
        vm_create_us = vm.timings.vm_create_us,
        load_us = vm.timings.load_us,
        vcpu_us = vm.timings.vcpu_us,
        "VM created"
    );
    let pager = vm.pager_stats();
    let shared = vm.shared();
    let _control = match control {
        Some(path) => Some(
            ControlSocket::start(path, vm.shared(), VmInfo { mem: Some(vm.memory()), pager: pager.clone(), ..info })
                .map_err(|source| VmmError::Io {
                    what: format!("cannot serve the control socket {}", path.display()),
                    source,
                })?,
        ),
        None => None,
    };
    on_event(LaunchEvent::Created(vm.timings));
    let exit = vm.run();
    if let Some(p) = pager {
        on_event(LaunchEvent::Paged(p.report()));
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    on_event(LaunchEvent::Ended(Milestones {
        ready_ms: shared.ready_after().map(ms),
        first_byte_ms: shared.first_byte_after().map(ms),
        ended_ms: ms(shared.started.elapsed()),
    }));
    Ok(exit)
}

/// Creates and runs the VM, reporting milestones to `on_event`.
pub fn run(opts: RunOptions, mut on_event: impl FnMut(LaunchEvent)) -> Result<VmExit, VmmError> {
    let endpoints = opts.connect.iter().map(|c| parse_endpoint(c)).collect::<Result<Vec<_>, _>>()?;
    let listener = bind(&opts.listen, &mut on_event)?;
    let listen = listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string());
    let vm = Vm::create(VmConfig {
        mem_mib: opts.mem_mib,
        elf: opts.elf.clone(),
        args: opts.args.clone(),
        listener,
        endpoints,
        max_conns: opts.max_conns,
        snapshot: opts.snapshot.clone(),
        app: opts.name.clone(),
    })?;
    let info = VmInfo { mem: None, pager: None, app: opts.name.clone(), mem_mib: opts.mem_mib, listen };
    run_created(vm, &opts.control, info, &mut on_event)
}

/// Options of a restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The image: a directory or `http://HOST:PORT/PATH`.
    pub image: String,
    /// How memory is brought in.
    pub strategy: Strategy,
    /// Host address to accept connections on.
    pub listen: Option<String>,
    /// `NAME=HOST:PORT` endpoints (the names the image's guest knows).
    pub connect: Vec<String>,
    /// Most open connections.
    pub max_conns: usize,
    /// Unix socket for the control protocol.
    pub control: Option<PathBuf>,
    /// Refuse an image of another app.
    pub expect_app: Option<String>,
    /// Techniques of page-at-a-time strategies (default: the strategy's).
    pub techniques: Option<crate::pager::Techniques>,
    /// Whether guest memory comes from the host's huge-page pool.
    pub huge_pages: crate::vm::HugePages,
}

/// Restores a VM from an image and runs it.
pub fn restore(opts: RestoreOptions, mut on_event: impl FnMut(LaunchEvent)) -> Result<VmExit, VmmError> {
    let endpoints = opts.connect.iter().map(|c| parse_endpoint(c)).collect::<Result<Vec<_>, _>>()?;
    let listener = bind(&opts.listen, &mut on_event)?;
    let listen = listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string());
    let vm = Vm::restore(RestoreConfig {
        image: opts.image.clone(),
        strategy: opts.strategy,
        listener,
        endpoints,
        max_conns: opts.max_conns,
        expect_app: opts.expect_app.clone(),
        techniques: opts.techniques,
        record: false,
        huge_pages: opts.huge_pages,
    })?;
    let mem_mib = (vm.memory().size() >> 20) as u32;
    let info = VmInfo { mem: None, pager: None, app: opts.image.clone(), mem_mib, listen };
    run_created(vm, &opts.control, info, &mut on_event)
}

/// Settings of a working-set tracking run (`twinkle image track`).
#[derive(Debug, Clone)]
pub struct TrackOptions {
    /// The image directory; the working set is written into it.
    pub image: PathBuf,
    /// Paths requested over and over from the restored app while tracking
    /// (empty: the app runs on its own, as memtouch does).
    pub warmup: Vec<String>,
    /// `NAME=HOST:PORT` endpoints of the image.
    pub connect: Vec<String>,
    /// Longest tracking window.
    pub max_window: std::time::Duration,
    /// The window ends once fewer than this many new pages arrive per sample...
    pub quiet_pages: u64,
    /// ...for this many samples in a row (100 ms each).
    pub quiet_samples: u32,
}

/// Tracks the working set: restores the image lazily with every page
/// non-present, drives the warm-up, records pages in first-touch order until
/// the new-page rate stays low (or the cap, or the app exits), and writes
/// `working-set.bin` into the image.
pub fn track(opts: TrackOptions) -> Result<crate::snapshot::WorkingSetInfo, VmmError> {
    use std::io::{Read as _, Write as _};
    use std::time::{Duration, Instant};
    let endpoints = opts.connect.iter().map(|c| parse_endpoint(c)).collect::<Result<Vec<_>, _>>()?;
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|source| VmmError::Io { what: "tracking listener".into(), source })?;
    let addr = listener.local_addr().map_err(|source| VmmError::Io { what: "tracking listener".into(), source })?;
    let vm = Vm::restore(RestoreConfig {
        image: opts.image.display().to_string(),
        strategy: Strategy::Lazy,
        listener: Some(listener),
        endpoints,
        max_conns: 1024,
        expect_app: None,
        techniques: Some(crate::pager::Techniques::lazy()),
        record: true,
        huge_pages: crate::vm::HugePages::Off,
    })?;
    let stats = vm.pager_stats().ok_or_else(|| VmmError::Config("tracking needs the page server".into()))?;
    let shared = vm.shared();
    let runner = std::thread::spawn(move || vm.run());
    let stop_warmup = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let warmup = if opts.warmup.is_empty() {
        None
    } else {
        let stop = std::sync::Arc::clone(&stop_warmup);
        let paths = opts.warmup.clone();
        Some(std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(mut s) = std::net::TcpStream::connect(addr) else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                for p in &paths {
                    let req = format!("GET {p} HTTP/1.1\r\nHost: track\r\nConnection: close\r\n\r\n");
                    if s.write_all(req.as_bytes()).is_err() {
                        break;
                    }
                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                    match std::net::TcpStream::connect(addr) {
                        Ok(n) => s = n,
                        Err(_) => break,
                    }
                    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                }
            }
        }))
    };
    let start = Instant::now();
    let mut last = 0u64;
    let mut quiet = 0u32;
    let ended_by = loop {
        std::thread::sleep(Duration::from_millis(100));
        if shared.stopping() {
            break "exit";
        }
        let touched = stats.touched().len() as u64;
        let new = touched - last;
        last = touched;
        quiet = if new < opts.quiet_pages { quiet + 1 } else { 0 };
        if quiet >= opts.quiet_samples && start.elapsed() > Duration::from_millis(200) {
            break "quiet";
        }
        if start.elapsed() >= opts.max_window {
            break "cap";
        }
    };
    let window_ms = start.elapsed().as_millis() as u64;
    stop_warmup.store(true, std::sync::atomic::Ordering::Relaxed);
    shared.finish(VmExit::Stopped);
    let _ = runner.join();
    if let Some(w) = warmup {
        let _ = w.join();
    }
    let mut seen = std::collections::HashSet::new();
    let pages: Vec<u32> = stats.touched().into_iter().filter(|p| seen.insert(*p)).collect();
    let info = crate::snapshot::WorkingSetInfo { pages: pages.len() as u64, window_ms, ended_by: ended_by.into() };
    crate::snapshot::write_working_set(&opts.image, &pages, &info)?;
    Ok(info)
}
