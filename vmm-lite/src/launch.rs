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
    /// The image directory.
    pub image: PathBuf,
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
    })?;
    let mem_mib = (vm.memory().size() >> 20) as u32;
    let info = VmInfo { mem: None, pager: None, app: opts.image.display().to_string(), mem_mib, listen };
    run_created(vm, &opts.control, info, &mut on_event)
}
