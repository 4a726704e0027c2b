//! The `twinkle` command line: argument parsing and calls into the crates,
//! nothing else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// The guest programs built from guests/ by build.rs.
mod guest_apps {
    include!(concat!(env!("OUT_DIR"), "/guest_apps.rs"));
}

/// Autoscaling load-balancer appliance: web apps in KVM VMs started from
/// snapshots in milliseconds when response times grow.
#[derive(Parser, Debug)]
#[command(name = "twinkle", version, propagate_version = true)]
#[command(
    after_help = "Examples:\n  twinkle policy check policies/examples/*.toml\n  twinkle policy explain policies/examples/rubis.toml\n  twinkle policy simulate policies/examples/rubis.toml --trace crowd.csv\n\nLogging: -v (debug), -vv (trace), or RUST_LOG=twinkle=debug,policies=trace."
)]
struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check, explain and simulate policy files (the TOML that drives scaling).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Run one KVM virtual machine (one process per VM).
    #[command(subcommand)]
    Vm(VmCmd),
    /// Benchmarks that compare twinkle with a peer in the same run (JSON results).
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Build and inspect VM images (initialized snapshots).
    #[command(subcommand)]
    Image(ImageCmd),
    /// The image store: serve image directories to other hosts.
    #[command(subcommand)]
    Images(ImagesCmd),
    /// Prepare and inspect this host's resources for VMs.
    #[command(subcommand)]
    Host(HostCmd),
    /// Load generator: emulated users (closed loop) or arrivals at a rate (open loop), flash-crowd profiles, HDR reports.
    #[command(
        after_help = "Examples:\n  twinkle loadgen --target http://127.0.0.1:8080/ --workload get --users 64 --think 0 --duration 30s\n  twinkle loadgen --target http://127.0.0.1:8080/ --rate 2000 --connections 64 --duration 60s --json\n  twinkle loadgen --target http://127.0.0.1:8080/ --users 50 --profile step:base=50,peak=500,at=30s,hold=60s --duration 120s --out results/crowd\n\nProfiles: const:value=N, step:base=,peak=,at=,hold=, ramp:from=,to=,at=,over=, spike:base=,peak=,at=,for=, trace:file=X.csv; join with + (they add up), or give a TOML file of [[shape]] tables."
    )]
    Loadgen(LoadgenArgs),
    /// The HTTP load balancer alone, with a static pool (the engine `twinkle serve` runs).
    #[command(
        after_help = "Examples:\n  twinkle dispatch --listen 127.0.0.1:8080 --upstream 127.0.0.1:8001 --upstream 127.0.0.1:8002\n  twinkle dispatch --policy policies/examples/two-services.toml --upstream rubis=127.0.0.1:8001 --upstream tpcw=127.0.0.1:8002\n  curl -s 127.0.0.1:9090/status; curl -s 127.0.0.1:9090/metrics\n  curl -s -XPOST 127.0.0.1:9090/services/default/upstreams -d '{\"addr\":\"127.0.0.1:8003\"}'\n  curl -s -XDELETE 127.0.0.1:9090/services/default/upstreams/127.0.0.1:8001"
    )]
    Dispatch(DispatchArgs),
    /// The storage tier's data: write an app's data set to Redis.
    #[command(subcommand)]
    Data(DataCmd),
}

#[derive(Subcommand, Debug)]
enum DataCmd {
    /// Write an app's deterministic data set to Redis (deleting the app's keys first, so re-running gives the
    /// same data), pipelined, with a progress bar and a summary.
    #[command(
        after_help = "Examples:\n  twinkle data load --app rubis --redis redis://127.0.0.1:6379\n  twinkle data load --app tpcw --redis 127.0.0.1:6379 --scale 0.1 --seed 7 --json"
    )]
    Load {
        /// The application: rubis or tpcw.
        #[arg(long, value_name = "APP")]
        app: loadgen::data::App,
        /// The Redis server: redis://HOST:PORT.
        #[arg(long, value_name = "URL")]
        redis: String,
        /// Fraction of the benchmark's default data set (RUBiS: 1,000,000 users, 32,667 active and 500,000 old
        /// items, default 0.01; TPC-W: 10,000 items and 288,000 customers, default 0.1). The load generator must
        /// use the same --scale.
        #[arg(long, value_name = "S")]
        scale: Option<f64>,
        /// Seed of the generator: the same seed gives the same data.
        #[arg(long, value_name = "N", default_value_t = 1)]
        seed: u64,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct LoadgenArgs {
    /// The URL to load: http://HOST:PORT/PATH.
    #[arg(long, value_name = "URL")]
    target: String,
    /// What to send: get (the target URL over and over), rubis or tpcw (user sessions; the target's path is ignored).
    #[arg(long, default_value = "get", value_parser = ["get", "rubis", "tpcw"])]
    workload: String,
    /// The session mix: bidding|browsing (rubis, default bidding), browsing|shopping|ordering (tpcw, default shopping).
    #[arg(long, value_name = "MIX")]
    mix: Option<String>,
    /// Data scale, as given to the data loader, so the ids the sessions use exist
    /// (rubis: fraction of 1 M users, default 0.01; tpcw: fraction of 10,000 items, default 0.1).
    #[arg(long, value_name = "S")]
    scale: Option<f64>,
    /// Closed loop: this many emulated users.
    #[arg(long, value_name = "N", conflicts_with = "rate")]
    users: Option<u32>,
    /// Open loop: this many requests per second (500 or 500/s), whatever the server does.
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Think time between a user's requests: mean=7s,max=70s (negative exponential), or 0.
    #[arg(long, value_name = "SPEC", default_value = "mean=7s,max=70s", value_parser = parse_think)]
    think: loadgen::Think,
    /// Users (closed loop) or rate (open loop) over time, instead of a constant.
    #[arg(long, value_name = "SPEC|FILE")]
    profile: Option<String>,
    /// How long to run (30s, 2m).
    #[arg(long, value_name = "D", default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Open loop: connections the arrivals are spread over.
    #[arg(long, value_name = "C", default_value_t = 64)]
    connections: usize,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// A request with no whole response after this long counts as a timeout.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Write summary.json, series.csv, interactions.csv, latency.svg and throughput.svg here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the summary as JSON (otherwise a table).
    #[arg(long)]
    json: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    loadgen::parse_secs(s)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a duration (30s, 500ms, 2m)"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    s.trim()
        .trim_end_matches("/s")
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
        .ok_or_else(|| format!("{s:?} is not a rate (requests per second, e.g. 500 or 500/s)"))
}

fn parse_think(s: &str) -> Result<loadgen::Think, String> {
    if s.trim() == "0" {
        return Ok(loadgen::Think { mean: Duration::ZERO, max: Duration::ZERO });
    }
    let mut t = loadgen::Think { mean: Duration::from_secs(7), max: Duration::from_secs(70) };
    for kv in s.split(',') {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("{kv:?}: write mean=7s,max=70s or 0"))?;
        let d = parse_duration(v)?;
        match k.trim() {
            "mean" => t.mean = d,
            "max" => t.max = d,
            other => return Err(format!("unknown think key {other:?}: write mean=7s,max=70s or 0")),
        }
    }
    Ok(t)
}

#[derive(Args, Debug)]
struct DispatchArgs {
    /// Client-facing address (port 0: any free port; printed on stdout). Default: the policy's, else 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// An upstream: IP:PORT (the only service), or SERVICE=IP:PORT with a policy of several services.
    #[arg(long, value_name = "[SERVICE=]ADDR")]
    upstream: Vec<String>,
    /// Admin API address (status, metrics, pool changes). Default: the policy's, else 127.0.0.1:9090.
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
    /// Bearer token of the admin API (required when it is not on loopback).
    #[arg(long, value_name = "TOKEN", env = "TWINKLE_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Services, routes, timeouts and limits from a policy file.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Worker threads (default: the policy's, else one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// No active health checks (passive ejection still applies).
    #[arg(long)]
    no_health_checks: bool,
}

#[derive(Subcommand, Debug)]
enum HostCmd {
    /// Size the 2 MiB huge-page pool that restored VMs take their memory from (root), and touch its pages once
    /// so that they are backed by real memory before a VM needs them.
    #[command(
        after_help = "Examples:\n  twinkle host prepare --huge-pages 2048   # 4 GiB of guest memory at resident speed\n  twinkle host prepare                     # only touch the pool's free pages\n  twinkle host prepare --json"
    )]
    Prepare {
        /// Pool size in 2 MiB pages (vm.nr_hugepages); the pool is left as it is when not given.
        #[arg(long, value_name = "N")]
        huge_pages: Option<u64>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ImagesCmd {
    /// Serve a directory of images over HTTP (ranged GETs) for `vm restore --image http://HOST:PORT/NAME`.
    #[command(
        after_help = "Examples:\n  twinkle images serve --dir images --listen 127.0.0.1:7070\n  twinkle images serve --dir images --listen 127.0.0.1:7070 --link bandwidth=1Gbit,rtt=2ms   # emulate a remote store"
    )]
    Serve {
        /// The directory holding image directories.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Address to listen on (port 0: any free port; printed on stdout).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
        listen: String,
        /// Emulated link: bandwidth=RATE,rtt=DURATION (e.g. bandwidth=1Gbit,rtt=2ms).
        #[arg(long, value_name = "SPEC", value_parser = parse_link)]
        link: Option<vmm_lite::snapshot::serve::Link>,
    },
}

fn parse_link(spec: &str) -> Result<vmm_lite::snapshot::serve::Link, String> {
    let mut link = vmm_lite::snapshot::serve::Link::default();
    for kv in spec.split(',') {
        match kv.split_once('=') {
            Some(("bandwidth", v)) => link.bandwidth_bps = policies::units::parse_bandwidth(v)?.bits_per_sec(),
            Some(("rtt", v)) => link.rtt = policies::units::parse_duration(v)?,
            _ => return Err(format!("{kv:?}: expected bandwidth=RATE or rtt=DURATION, e.g. bandwidth=1Gbit,rtt=2ms")),
        }
    }
    Ok(link)
}

#[derive(Subcommand, Debug)]
enum ImageCmd {
    /// Boot an app cold, wait until it reports ready (initialized), and save that state as an image.
    #[command(
        after_help = "Examples:\n  twinkle image build --app hello --out images/hello\n  twinkle image build --app memtouch --arg mib=64 --mem-mib 256 --out images/memtouch\n  twinkle image build --elf ./my-app --connect redis=127.0.0.1:6379 --out images/my-app"
    )]
    Build(ImageBuildArgs),
    /// Find an image's working set: restore it with every page absent, drive a warm-up, record pages in first-touch order.
    #[command(
        after_help = "The window ends when fewer than --quiet-pages new pages arrive per 100 ms, --quiet-samples times in a row, at --max-window, or when the app exits.\n\nExamples:\n  twinkle image track --image images/hello --warmup / --warmup /health\n  twinkle image track --image images/memtouch"
    )]
    Track(ImageTrackArgs),
}

#[derive(Args, Debug)]
struct ImageTrackArgs {
    /// The image directory (the working set is written into it).
    #[arg(long, value_name = "DIR")]
    image: PathBuf,
    /// A path to request again and again during tracking (repeatable; none: the app runs on its own).
    #[arg(long, value_name = "PATH")]
    warmup: Vec<String>,
    /// Where the image's endpoints are now.
    #[arg(long, value_name = "NAME=HOST:PORT")]
    connect: Vec<String>,
    /// Longest tracking window (a lazily restored run is several times slower than a resident one).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration_arg)]
    max_window: Duration,
    /// New pages per 100 ms below which the working set is considered complete.
    #[arg(long, default_value_t = 8)]
    quiet_pages: u64,
    /// Consecutive quiet 100 ms samples that end the window.
    #[arg(long, default_value_t = 5)]
    quiet_samples: u32,
}

#[derive(Args, Debug)]
struct ImageBuildArgs {
    /// An embedded guest program (hello, crash, memtouch, workload, rubis, tpcw).
    #[arg(long, value_name = "NAME", conflicts_with = "elf", required_unless_present = "elf")]
    app: Option<String>,
    /// A guest ELF file.
    #[arg(long, value_name = "PATH")]
    elf: Option<PathBuf>,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    mem_mib: u32,
    /// An outbound endpoint the app may use while initializing (names are kept in the image).
    #[arg(long, value_name = "NAME=HOST:PORT")]
    connect: Vec<String>,
    /// An argument for the guest program (repeatable).
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    args: Vec<String>,
    /// The image directory to write.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Subcommand, Debug)]
enum BenchCmd {
    /// Cold boot of a VM to its first HTTP response (VM creation and ELF load broken out), and one VM's HTTP req/s vs the same app run natively.
    #[command(
        after_help = "Examples:\n  twinkle bench boot --json\n  twinkle bench boot --runs 100 --http-secs 10 --json > boot.json"
    )]
    Boot(BenchBootArgs),
    /// Start-up of the six memory workloads under every strategy (cold, resume, lazy, mmap, twinkle) and the 8 technique combinations.
    #[command(
        after_help = "Examples:\n  twinkle bench startup --json\n  twinkle bench startup --mem-mib 1024 --data-mib 256 --out results/startup"
    )]
    Startup(BenchStartupArgs),
    /// The dispatcher against nginx and HAProxy as reverse proxies (same client, same upstream, one core each).
    #[command(
        after_help = "Examples:\n  twinkle bench proxy --json\n  twinkle bench proxy --upstreams 4 --connections 256 --json"
    )]
    Proxy(BenchProxyArgs),
    /// The load generator against wrk (same connections, one thread each, nginx serving a small response).
    #[command(
        after_help = "Examples:\n  twinkle bench loadgen --json\n  twinkle bench loadgen --connections 128 --secs 10 --json"
    )]
    Loadgen {
        /// Connections of each client.
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 5)]
        secs: u32,
        /// Rounds (alternating the clients); medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sweep of demand prediction's segment size N and threshold P (prediction alone: no working set, no background).
    #[command(
        after_help = "Examples:\n  twinkle bench prediction --json\n  twinkle bench prediction --workloads mcf,omnetpp --segments 32,64,128 --thresholds 1,2,4"
    )]
    Prediction(BenchPredictionArgs),
    /// A guest app with its storage tier: data load time, init time (cold boot + load from Redis), memory
    /// footprint, and req/s of one VM against the same app built natively, same data, same load.
    #[command(
        after_help = "Examples:\n  twinkle bench app --app rubis\n  twinkle bench app --app tpcw\n  twinkle bench app --app rubis --users 64 --secs 20 --rounds 3 --json"
    )]
    App {
        /// The app: rubis (bidding mix) or tpcw (shopping mix).
        #[arg(long, default_value = "rubis")]
        app: String,
        /// Data scale (default: the app's, as `data load`).
        #[arg(long, value_name = "S")]
        scale: Option<f64>,
        /// Guest memory of the VM.
        #[arg(long, value_name = "MIB", default_value_t = 256)]
        mem_mib: u32,
        /// Emulated users of the load runs (no think time).
        #[arg(long, value_name = "N", default_value_t = 32)]
        users: usize,
        /// Seconds of load per run.
        #[arg(long, value_name = "S", default_value_t = 15)]
        secs: u64,
        /// Rounds (each: fresh data and a VM run, fresh data and a native run).
        #[arg(long, value_name = "N", default_value_t = 3)]
        rounds: u32,
        /// Start-up rounds: image the app at its ready point, track its working set, then start it cold and
        /// restored (resume, lazy, twinkle) this many times each; 0 skips it.
        #[arg(long, value_name = "N", default_value_t = 3)]
        startup_rounds: u32,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Draw the SVG plot of a saved `bench startup` JSON report.
    #[command(after_help = "Examples:\n  twinkle bench plot --startup results/startup.json --out results/startup.svg")]
    Plot {
        /// A JSON report of `bench startup --json` (or its startup.json).
        #[arg(long, value_name = "FILE")]
        startup: PathBuf,
        /// The SVG to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Args, Debug)]
struct BenchPredictionArgs {
    /// Guest memory, MiB.
    #[arg(long, default_value_t = 128)]
    mem_mib: u32,
    /// Workload data size, MiB.
    #[arg(long, default_value_t = 32)]
    data_mib: u32,
    /// Work rounds per run.
    #[arg(long, default_value_t = 2)]
    iters: u32,
    /// Workloads to sweep.
    #[arg(long, value_delimiter = ',', default_value = "astar,mcf,omnetpp,perlbench,xalancbmk")]
    workloads: Vec<String>,
    /// Segment sizes N (pages).
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    segments: Vec<u32>,
    /// Thresholds P (faults in a segment before the rest is fetched).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    thresholds: Vec<u32>,
    /// Print JSON (otherwise a table).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchStartupArgs {
    /// Guest memory, MiB.
    #[arg(long, default_value_t = 256)]
    mem_mib: u32,
    /// Workload data size, MiB.
    #[arg(long, default_value_t = 64)]
    data_mib: u32,
    /// Work rounds per run.
    #[arg(long, default_value_t = 3)]
    iters: u32,
    /// Runs of every row and of the resident reference, interleaved; medians are reported.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Rows `twinkle` and `resume-huge` with guest memory from the huge-page pool: auto (when the pool has room
    /// for one guest), on, or off. See `twinkle host prepare`.
    #[arg(long, value_name = "auto|on|off", default_value = "auto", value_parser = vmm_lite::vm::HugePages::parse)]
    huge_pages: vmm_lite::vm::HugePages,
    /// Also write startup.csv, startup.json, startup.md and startup.svg (plot) into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the JSON report (otherwise the markdown table).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchProxyArgs {
    /// Client connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    secs: u32,
    /// Rounds; each measures every target once, and medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Upstream addresses behind each proxy.
    #[arg(long, default_value_t = 1)]
    upstreams: u32,
    /// Pin each proxy to CPU 1, the client and the upstream to CPU 0 (taskset).
    #[arg(long)]
    pin: bool,
    /// Print the JSON report (otherwise a markdown table).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchBootArgs {
    /// Measured boots (after 3 warm-up boots).
    #[arg(long, default_value_t = 30)]
    runs: usize,
    /// Guest memory per VM, MiB.
    #[arg(long, default_value_t = 256)]
    mem_mib: u32,
    /// Seconds of HTTP load per target.
    #[arg(long, default_value_t = 5)]
    http_secs: u32,
    /// Concurrent connections of the HTTP load.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// HTTP rounds per target, alternating VM and native; medians are compared.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Print the JSON report (otherwise a summary).
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum VmCmd {
    /// Boot a guest program in a new VM and run it until it exits; its HTTP service is served on --listen.
    #[command(
        after_help = "Embedded apps: hello (HTTP server), crash (fails on purpose: --arg MODE), memtouch (touches memory: --arg mib=N --arg pattern=seq|random|stride).\n\nExit status: the guest's exit code; 101 guest panic; 134 guest fault; 70 VMM error; 143 stopped.\n\nExamples:\n  twinkle vm run --app hello --listen 127.0.0.1:8080\n  twinkle vm run --app crash --arg null\n  twinkle vm run --elf ./my-guest --mem-mib 64 --connect redis=127.0.0.1:6379"
    )]
    Run(VmRunArgs),
    /// Start a VM from an image (see `image build`) with a start strategy.
    #[command(
        after_help = "Strategies: cold (boot and initialize again), resume (read the whole image, then run); lazy, mmap and twinkle are in progress.\n\nExamples:\n  twinkle vm restore --image images/hello --strategy resume --listen 127.0.0.1:8080\n  twinkle vm restore --image images/rubis --connect redis=127.0.0.1:6379 --listen 127.0.0.1:0"
    )]
    Restore(VmRestoreArgs),
    /// Send one request to a running VM's control socket and print the JSON answer.
    #[command(
        after_help = "Examples:\n  twinkle vm control --socket /tmp/vm.sock status\n  twinkle vm control --socket /tmp/vm.sock pause"
    )]
    Control {
        /// The VM's control socket (`vm run --control PATH`).
        #[arg(long, value_name = "PATH")]
        socket: PathBuf,
        /// status, pause, resume or stop.
        #[arg(value_parser = ["status", "pause", "resume", "stop"])]
        op: String,
    },
}

#[derive(Args, Debug)]
struct VmRestoreArgs {
    /// The image: a directory, or http://HOST:PORT/PATH on an image server.
    #[arg(long, value_name = "DIR|URL")]
    image: String,
    /// How the VM gets its memory: cold, resume, lazy, mmap, twinkle.
    #[arg(long, default_value = "resume", value_parser = parse_strategy)]
    strategy: vmm_lite::vm::Strategy,
    /// Accept TCP connections here (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Where the image's endpoints are now.
    #[arg(long, value_name = "NAME=HOST:PORT")]
    connect: Vec<String>,
    /// Most connections open at once.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    max_conns: usize,
    /// Serve the control protocol on this Unix socket.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Refuse the image unless it is of this app.
    #[arg(long, value_name = "NAME")]
    expect_app: Option<String>,
    /// twinkle strategy: do not preload the working set.
    #[arg(long)]
    no_working_set: bool,
    /// twinkle strategy: no demand prediction.
    #[arg(long)]
    no_prediction: bool,
    /// lazy/twinkle: fetch pages that were free at the snapshot instead of zeroing them.
    #[arg(long)]
    no_free_pages: bool,
    /// twinkle strategy: no background fetch.
    #[arg(long)]
    no_background: bool,
    /// Demand prediction: segment size in pages (the default comes from `bench prediction`, docs/results.md).
    #[arg(long, value_name = "N", default_value_t = 128)]
    segment_pages: u32,
    /// Demand prediction: faults in a segment after which the rest is fetched.
    #[arg(long, value_name = "P", default_value_t = 2)]
    predict_after: u32,
    /// Guest memory from the host's 2 MiB huge-page pool: auto (twinkle and resume, when the pool has room),
    /// on, or off. See `twinkle host prepare`.
    #[arg(long, value_name = "auto|on|off", default_value = "auto", value_parser = vmm_lite::vm::HugePages::parse)]
    huge_pages: vmm_lite::vm::HugePages,
}

fn parse_strategy(s: &str) -> Result<vmm_lite::vm::Strategy, String> {
    vmm_lite::vm::Strategy::parse(s)
}

#[derive(Args, Debug)]
struct VmRunArgs {
    /// An embedded guest program (hello, crash, memtouch, workload, rubis, tpcw).
    #[arg(long, value_name = "NAME", conflicts_with = "elf", required_unless_present = "elf")]
    app: Option<String>,
    /// A guest ELF file (static, non-PIE, built for the twinkle guest ABI).
    #[arg(long, value_name = "PATH")]
    elf: Option<PathBuf>,
    /// Guest memory in MiB (even, at least 8).
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    mem_mib: u32,
    /// Accept TCP connections here and hand them to the guest (port 0: any free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// An outbound endpoint the guest may connect to by name.
    #[arg(long, value_name = "NAME=HOST:PORT")]
    connect: Vec<String>,
    /// An argument for the guest program (repeatable).
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    args: Vec<String>,
    /// Most connections open at once.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    max_conns: usize,
    /// Serve the control protocol (status, pause, resume, stop: JSON lines) on this Unix socket.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum PolicyCmd {
    /// Validate policy files; prints every problem with file:line:col and exits non-zero if any.
    #[command(
        after_help = "Exit status: 0 when every file is valid, 1 when any is not, 2 for a usage error.\n\nExamples:\n  twinkle policy check rubis.toml\n  twinkle policy check policies/examples/*.toml"
    )]
    Check {
        /// Policy files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the effective policy with every default filled in.
    #[command(
        after_help = "Examples:\n  twinkle policy explain rubis.toml\n  twinkle policy explain rubis.toml --json | jq '.service[0].scale_up'"
    )]
    Explain {
        /// The policy file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
    /// Replay a per-second CSV trace of latency/load through the scaling rules and print the decisions.
    #[command(
        after_help = "Trace columns (header required; all but t optional):\n  t, p50_ms, p90_ms, p95_ms, p99_ms, mean_ms, latency_ms, rps, inflight, queued, instances, kill\n\nExamples:\n  twinkle policy simulate rubis.toml --trace crowd.csv\n  twinkle policy simulate two-services.toml --trace t.csv --service tpcw --start-time 10s --all\n  twinkle policy simulate rubis.toml --trace crowd.csv --json > decisions.json"
    )]
    Simulate(SimulateArgs),
}

#[derive(Args, Debug)]
struct SimulateArgs {
    /// The policy file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// CSV of per-second measurements.
    #[arg(long, value_name = "CSV")]
    trace: PathBuf,
    /// Which service to simulate (default: the first).
    #[arg(long, value_name = "NAME")]
    service: Option<String>,
    /// Time an instance takes to become ready, e.g. "100ms", "10s" (default: by start strategy).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    start_time: Option<Duration>,
    /// Time a stopped instance takes to drain.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration_arg)]
    drain_time: Duration,
    /// Print every second, not only those with decisions.
    #[arg(long)]
    all: bool,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    policies::units::parse_duration(s)
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,guest=info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Policy(p) => policy(p),
        Command::Vm(VmCmd::Run(a)) => vm_run(a),
        Command::Vm(VmCmd::Restore(a)) => vm_restore(a),
        Command::Image(ImageCmd::Build(a)) => image_build(a),
        Command::Host(HostCmd::Prepare { huge_pages, json }) => host_prepare(huge_pages, json),
        Command::Dispatch(a) => dispatch(a),
        Command::Loadgen(a) => loadgen_cmd(a),
        Command::Data(DataCmd::Load { app, redis, scale, seed, json }) => {
            let scale = scale.unwrap_or_else(|| app.default_scale());
            let summary = loadgen::data::load(app, &redis, scale, seed, !json)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", summary.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Images(ImagesCmd::Serve { dir, listen, link }) => {
            if !dir.is_dir() {
                anyhow::bail!("--dir {}: not a directory", dir.display());
            }
            let (listener, addr) =
                vmm_lite::snapshot::serve::bind(&listen).with_context(|| format!("cannot listen on {listen}"))?;
            print_event(vmm_lite::launch::LaunchEvent::Listening(addr));
            vmm_lite::snapshot::serve::serve(dir, listener, link.unwrap_or_default())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Image(ImageCmd::Track(a)) => {
            let image = a.image.display().to_string();
            let info = vmm_lite::launch::track(vmm_lite::launch::TrackOptions {
                image: a.image,
                warmup: a.warmup,
                connect: a.connect,
                max_window: a.max_window,
                quiet_pages: a.quiet_pages,
                quiet_samples: a.quiet_samples.max(1),
            })
            .with_context(|| format!("cannot track the working set of {image}"))?;
            println!("{}", serde_json::to_string(&info)?);
            eprintln!(
                "working set of {image}: {} pages ({:.1} MiB), window {} ms, ended by {}",
                info.pages,
                info.pages as f64 / 256.0,
                info.window_ms,
                info.ended_by
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Vm(VmCmd::Control { socket, op }) => {
            let reply = vmm_lite::control_socket::request(&socket, &op)
                .with_context(|| format!("cannot talk to the VM control socket {}", socket.display()))?;
            println!("{}", serde_json::to_string_pretty(&reply)?);
            Ok(if reply["ok"] == true { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Bench(BenchCmd::Boot(a)) => bench_boot(a),
        Command::Bench(BenchCmd::App { app, scale, mem_mib, users, secs, rounds, startup_rounds, json }) => {
            let data_app: loadgen::data::App = app.parse().map_err(|e: String| anyhow::anyhow!("--app: {e}"))?;
            let r = bench::apps::run(&bench::apps::AppBenchOptions {
                twinkle: std::env::current_exe().context("cannot find the twinkle binary")?,
                native: guest_apps::NATIVE_APPS.iter().find(|(n, _)| *n == app).map(|(_, b)| *b),
                scale: scale.unwrap_or_else(|| data_app.default_scale()),
                app,
                mem_mib,
                users: users.max(1),
                secs: secs.max(1),
                rounds: rounds.max(1),
                startup_rounds,
                progress: !json,
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", r.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCmd::Loadgen { connections, secs, rounds, json }) => {
            let work = std::env::temp_dir().join(format!("twinkle-bench-loadgen-{}", std::process::id()));
            let r = bench::loadgen::run_bench(&bench::loadgen::LoadgenBenchOptions {
                twinkle: std::env::current_exe().context("cannot find the twinkle binary")?,
                connections: connections.max(1),
                secs: secs.max(1),
                rounds: rounds.max(1),
                work_dir: work.clone(),
            });
            let _ = std::fs::remove_dir_all(&work);
            let r = r?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                for x in &r.results {
                    println!("{:<16} {:>9.0} req/s  p99 {:.3} ms  rounds {:?}", x.name, x.rps, x.p99_ms, x.rounds_rps);
                }
                println!("twinkle-loadgen / wrk: {:.2}x", r.loadgen_vs_wrk);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCmd::Proxy(a)) => {
            let work = std::env::temp_dir().join(format!("twinkle-proxy-{}", std::process::id()));
            let r = bench::proxy::run_bench(&bench::proxy::ProxyOptions {
                twinkle: std::env::current_exe().context("cannot find the twinkle binary")?,
                connections: a.connections.max(1),
                secs: a.secs.max(1),
                rounds: a.rounds.max(1),
                upstreams: a.upstreams.max(1),
                work_dir: work.clone(),
                progress: !a.json,
                pin: a.pin,
            });
            let _ = std::fs::remove_dir_all(&work);
            let r = r?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", r.markdown());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCmd::Plot { startup, out }) => {
            let text =
                std::fs::read_to_string(&startup).with_context(|| format!("cannot read {}", startup.display()))?;
            let report: bench::startup::StartupReport = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a `bench startup` JSON report", startup.display()))?;
            std::fs::write(&out, bench::plot::startup_svg(&report)?)
                .with_context(|| format!("cannot write {}", out.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCmd::Prediction(a)) => {
            let work = std::env::temp_dir().join(format!("twinkle-prediction-{}", std::process::id()));
            let rows = bench::prediction::run_sweep(&bench::prediction::SweepOptions {
                twinkle: std::env::current_exe().context("cannot find the twinkle binary")?,
                mem_mib: a.mem_mib,
                data_mib: a.data_mib,
                iters: a.iters.max(1),
                workloads: a.workloads,
                segments: a.segments,
                thresholds: a.thresholds,
                work_dir: work.clone(),
                progress: true,
            });
            let _ = std::fs::remove_dir_all(&work);
            let rows = rows?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("| workload | N | P | demand faults | predicted pages | exec ms |\n| --- | --- | --- | --- | --- | --- |");
                for r in rows {
                    println!(
                        "| {} | {} | {} | {} | {} | {:.1} |",
                        r.workload, r.segment_pages, r.predict_after, r.demand_faults, r.predicted_pages, r.exec_ms
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(BenchCmd::Startup(a)) => {
            let work = std::env::temp_dir().join(format!("twinkle-startup-{}", std::process::id()));
            let r = bench::startup::run_bench(&bench::startup::StartupOptions {
                twinkle: std::env::current_exe().context("cannot find the twinkle binary")?,
                mem_mib: a.mem_mib,
                data_mib: a.data_mib,
                iters: a.iters.max(1),
                work_dir: work.clone(),
                progress: true,
                repeat: a.repeat.max(1),
                huge_pages: bench_huge_pages(a.huge_pages, a.mem_mib)?,
            });
            let _ = std::fs::remove_dir_all(&work);
            let r = r?;
            if let Some(dir) = &a.out {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                std::fs::write(dir.join("startup.csv"), r.csv())?;
                std::fs::write(dir.join("startup.json"), serde_json::to_string_pretty(&r)?)?;
                std::fs::write(dir.join("startup.md"), r.markdown())?;
                std::fs::write(dir.join("startup.svg"), bench::plot::startup_svg(&r)?)?;
            }
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", r.markdown());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn bench_boot(a: BenchBootArgs) -> Result<ExitCode> {
    let opts = bench::boot::BootOptions {
        twinkle: std::env::current_exe().context("cannot find the twinkle binary")?,
        runs: a.runs.max(1),
        mem_mib: a.mem_mib,
        http_secs: a.http_secs.max(1),
        connections: a.connections.max(1),
        rounds: a.rounds.max(1),
        native_hello: guest_apps::NATIVE_APPS.iter().find(|(n, _)| *n == "hello").map(|(_, b)| *b),
        progress: true,
    };
    let r = bench::boot::run(&opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        let c = &r.cold_boot_to_first_response_ms;
        println!(
            "cold boot to first response: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms ({} runs)",
            c.p50, c.p90, c.p99, r.runs
        );
        println!(
            "  of which: process to listening {:.2} ms, VM create {:.2} ms, ELF load {:.2} ms, vCPU setup {:.2} ms (p50)",
            r.process_to_listening_ms.p50, r.vm_create_ms.p50, r.elf_load_ms.p50, r.vcpu_setup_ms.p50
        );
        println!(
            "HTTP ({} client, {} connections): VM {:.0} req/s, p99 {:.2} ms",
            r.http.vm.client, r.http.connections, r.http.vm.rps, r.http.vm.p99_ms
        );
        if let (Some(n), Some(ratio)) = (&r.http.native, r.http.vm_over_native) {
            println!("  native {:.0} req/s, p99 {:.2} ms; VM/native = {:.2}", n.rps, n.p99_ms, ratio);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The guest program named by --app or --elf.
fn guest_program(app: &Option<String>, elf: &Option<PathBuf>) -> Result<(Vec<u8>, String)> {
    Ok(match (app, elf) {
        (Some(app), _) => {
            let Some((_, bytes)) = guest_apps::APPS.iter().find(|(n, _)| n == app) else {
                let known: Vec<&str> = guest_apps::APPS.iter().map(|(n, _)| *n).collect();
                anyhow::bail!("no embedded app named {app:?}; embedded apps: {}", known.join(", "));
            };
            (bytes.to_vec(), app.clone())
        }
        (None, Some(path)) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read guest ELF {}", path.display()))?;
            (bytes, path.display().to_string())
        }
        (None, None) => anyhow::bail!("give --app NAME or --elf PATH"),
    })
}

/// Prints launch milestones on stdout for a parent process; a parent that
/// stopped reading must not kill the VM, so write errors are ignored.
fn print_event(event: vmm_lite::launch::LaunchEvent) {
    use std::io::Write;
    let line = match event {
        vmm_lite::launch::LaunchEvent::Listening(addr) => format!("listening {addr}"),
        vmm_lite::launch::LaunchEvent::Created(t) => {
            format!("created {}", serde_json::to_string(&t).unwrap_or_default())
        }
        vmm_lite::launch::LaunchEvent::Paged(p) => format!("paged {}", serde_json::to_string(&p).unwrap_or_default()),
        vmm_lite::launch::LaunchEvent::Ended(m) => format!("ended {}", serde_json::to_string(&m).unwrap_or_default()),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn report_exit(name: &str, exit: vmm_lite::VmExit) -> ExitCode {
    match &exit {
        vmm_lite::VmExit::Exited(0) => tracing::info!("{name}: {exit}"),
        vmm_lite::VmExit::Snapshotted { .. } => eprintln!("{exit}"),
        _ => eprintln!("{name}: {exit}"),
    }
    ExitCode::from(exit.code())
}

fn vm_run(a: VmRunArgs) -> Result<ExitCode> {
    let (elf, name) = guest_program(&a.app, &a.elf)?;
    let opts = vmm_lite::launch::RunOptions {
        elf,
        name: name.clone(),
        mem_mib: a.mem_mib,
        listen: a.listen,
        connect: a.connect,
        args: a.args,
        max_conns: a.max_conns,
        control: a.control,
        snapshot: None,
    };
    let exit = vmm_lite::launch::run(opts, print_event).with_context(|| format!("cannot start VM for {name}"))?;
    Ok(report_exit(&name, exit))
}

fn vm_restore(a: VmRestoreArgs) -> Result<ExitCode> {
    let name = a.image.clone();
    let opts = vmm_lite::launch::RestoreOptions {
        image: a.image,
        strategy: a.strategy,
        listen: a.listen,
        connect: a.connect,
        max_conns: a.max_conns,
        control: a.control,
        expect_app: a.expect_app,
        techniques: {
            let base = match a.strategy {
                vmm_lite::vm::Strategy::Twinkle => vmm_lite::pager::Techniques::twinkle(),
                _ => vmm_lite::pager::Techniques::lazy(),
            };
            Some(vmm_lite::pager::Techniques {
                working_set: base.working_set && !a.no_working_set,
                prediction: base.prediction && !a.no_prediction,
                free_pages: base.free_pages && !a.no_free_pages,
                background: base.background && !a.no_background,
                segment_pages: a.segment_pages.max(1),
                predict_after: a.predict_after,
            })
        },
        huge_pages: a.huge_pages,
    };
    let exit = vmm_lite::launch::restore(opts, print_event).with_context(|| format!("cannot restore {name}"))?;
    Ok(report_exit(&name, exit))
}

fn loadgen_cmd(a: LoadgenArgs) -> Result<ExitCode> {
    let target = loadgen::Target::parse(&a.target)?;
    let workload: std::sync::Arc<dyn loadgen::Workload> = match a.workload.as_str() {
        "rubis" => std::sync::Arc::new(
            loadgen::Rubis::new(
                &target.host,
                a.mix.as_deref().unwrap_or("bidding"),
                a.scale.unwrap_or(appspec::rubis::DEFAULT_SCALE),
            )
            .map_err(|e| anyhow::anyhow!("--mix: {e}"))?,
        ),
        "tpcw" => std::sync::Arc::new(
            loadgen::Tpcw::new(
                &target.host,
                a.mix.as_deref().unwrap_or("shopping"),
                a.scale.unwrap_or(appspec::tpcw::DEFAULT_SCALE),
            )
            .map_err(|e| anyhow::anyhow!("--mix: {e}"))?,
        ),
        _ => {
            if a.mix.is_some() {
                anyhow::bail!("--mix applies to --workload rubis or tpcw");
            }
            std::sync::Arc::new(loadgen::Get::new(&target.host, &target.path))
        }
    };
    let shape = match &a.profile {
        Some(p) => Some(loadgen::Profile::parse(p)?),
        None => None,
    };
    let mode = match (a.users, a.rate) {
        (_, Some(r)) => loadgen::Mode::Open {
            rate: shape.unwrap_or_else(|| loadgen::Profile::constant(r)),
            connections: a.connections.max(1),
        },
        (Some(n), None) => loadgen::Mode::Closed {
            users: shape.unwrap_or_else(|| loadgen::Profile::constant(f64::from(n))),
            think: a.think,
        },
        (None, None) => match shape {
            Some(users) => loadgen::Mode::Closed { users, think: a.think },
            None => anyhow::bail!(
                "say how much load: --users N (closed loop), --rate R (open loop), or --profile SPEC (users over time)"
            ),
        },
    };
    let plan = loadgen::Plan {
        addr: target.addr,
        workload,
        mode,
        duration: a.duration,
        threads: a.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1),
        timeout: a.timeout,
    };
    let report = loadgen::run(&plan, !a.json)?;
    if let Some(dir) = &a.out {
        report.write(dir).with_context(|| format!("cannot write the report into {}", dir.display()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}

fn dispatch(a: DispatchArgs) -> Result<ExitCode> {
    let mut cfg = match &a.policy {
        Some(f) => {
            let p = policies::load_policy_file(f).map_err(|e| anyhow::anyhow!("{e}"))?;
            dispatcher::DispatchConfig::from_policy(&p)
        }
        None => dispatcher::DispatchConfig::single_service(Vec::new()),
    };
    for u in &a.upstream {
        let (service, addr) = match u.split_once('=') {
            Some((s, addr)) => (s.to_string(), addr),
            None if cfg.services.len() == 1 => (cfg.services[0].name.clone(), u.as_str()),
            None => anyhow::bail!(
                "--upstream {u}: the policy has {} services; say which one takes it: --upstream SERVICE={u}",
                cfg.services.len()
            ),
        };
        let addr = dispatcher::parse_addr("--upstream", addr)?;
        cfg.service_mut(&service)?.upstreams.push(addr);
    }
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(ad) = a.admin {
        cfg.admin_listen = Some(ad);
    }
    if a.admin_token.is_some() {
        cfg.admin_token = a.admin_token;
    }
    if let Some(t) = a.threads {
        cfg.threads = t.max(1);
    }
    cfg.active_health = !a.no_health_checks;
    let d = dispatcher::Dispatcher::start(cfg).context("cannot start the dispatcher")?;
    println!("listening on {}", d.local_addr());
    if let Some(ad) = d.admin_addr() {
        println!("admin on {ad}");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    d.run_until_signal()?;
    Ok(ExitCode::SUCCESS)
}

/// Whether `bench startup` may give guests memory from the huge-page pool.
fn bench_huge_pages(setting: vmm_lite::vm::HugePages, mem_mib: u32) -> Result<bool> {
    use vmm_lite::vm::HugePages;
    let pool = vmm_lite::memory::HugePool::read();
    let needed = u64::from(mem_mib).div_ceil(2);
    let fits = pool.available() >= needed;
    match setting {
        HugePages::Off => Ok(false),
        HugePages::On if !fits => anyhow::bail!(
            "--huge-pages on: a {mem_mib} MiB guest needs {needed} free 2 MiB huge pages, the pool has {}; \
             run `twinkle host prepare --huge-pages {needed}` as root",
            pool.available()
        ),
        HugePages::On => Ok(true),
        HugePages::Auto => {
            if !fits {
                eprintln!(
                    "note: the huge-page pool has {} free pages, a guest needs {needed}: rows twinkle-4k and \
                     resume-huge are left out and twinkle uses ordinary memory (`twinkle host prepare --huge-pages \
                     {needed}` as root adds them)",
                    pool.available()
                );
            }
            Ok(fits)
        }
    }
}

fn host_prepare(pages: Option<u64>, json: bool) -> Result<ExitCode> {
    use vmm_lite::memory::HugePool;
    let before = HugePool::read();
    let after = match pages {
        Some(n) => HugePool::resize(n).with_context(|| {
            format!(
                "cannot set the huge-page pool to {n} pages (writing /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages \
                 needs root; or `sysctl vm.nr_hugepages={n}`)"
            )
        })?,
        None => before,
    };
    if let Some(n) = pages {
        if after.total < n {
            eprintln!(
                "warning: asked for {n} huge pages, the kernel granted {} (memory is fragmented or short; \
                 reserve them early after boot)",
                after.total
            );
        }
    }
    let t0 = std::time::Instant::now();
    let warmed = HugePool::warm().context("cannot touch the huge-page pool")?;
    let warm_ms = t0.elapsed().as_secs_f64() * 1e3;
    if json {
        println!(
            "{}",
            serde_json::json!({"before": before, "after": after, "warmed_pages": warmed, "warm_ms": warm_ms})
        );
    } else {
        println!(
            "huge-page pool: {} pages ({} MiB), {} free; was {} pages",
            after.total,
            after.total * 2,
            after.free,
            before.total
        );
        println!("touched {warmed} free pages in {warm_ms:.1} ms");
    }
    Ok(ExitCode::SUCCESS)
}

fn image_build(a: ImageBuildArgs) -> Result<ExitCode> {
    let (elf, name) = guest_program(&a.app, &a.elf)?;
    let opts = vmm_lite::launch::RunOptions {
        elf,
        name: name.clone(),
        mem_mib: a.mem_mib,
        listen: None,
        connect: a.connect,
        args: a.args,
        max_conns: 4096,
        control: None,
        snapshot: Some(a.out),
    };
    let exit = vmm_lite::launch::run(opts, |_| {}).with_context(|| format!("cannot build an image of {name}"))?;
    if !matches!(exit, vmm_lite::VmExit::Snapshotted { .. }) {
        eprintln!("{name}: the app ended before reporting ready, so no image was written: {exit}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(report_exit(&name, exit))
}

fn policy(cmd: PolicyCmd) -> Result<ExitCode> {
    match cmd {
        PolicyCmd::Check { files } => {
            let mut bad = 0;
            for f in &files {
                match policies::load_policy_file(f) {
                    Ok(p) => {
                        tracing::debug!(file = %f.display(), services = p.services.len(), "policy valid");
                        println!(
                            "{}: ok ({} service{})",
                            f.display(),
                            p.services.len(),
                            if p.services.len() == 1 { "" } else { "s" }
                        );
                    }
                    Err(e) => {
                        bad += 1;
                        eprintln!("{e}");
                        eprintln!();
                    }
                }
            }
            if bad > 0 {
                eprintln!("{bad} of {} policy file(s) invalid", files.len());
                Ok(ExitCode::FAILURE)
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }
        PolicyCmd::Explain { file, json } => {
            let p = policies::load_policy_file(&file)?;
            if json {
                println!("{}", policies::explain::explain_json(&p));
            } else {
                print!("{}", policies::explain::explain_toml(&p));
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCmd::Simulate(a) => {
            let p = policies::load_policy_file(&a.file)?;
            let service = match &a.service {
                Some(name) => p.service(name).ok_or_else(|| policies::PolicyError::UnknownService {
                    name: name.clone(),
                    known: p.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "),
                })?,
                None => p.services.first().context("the policy has no service")?,
            };
            let name = a.trace.display().to_string();
            let text = std::fs::read_to_string(&a.trace).with_context(|| format!("cannot read trace {name}"))?;
            let trace = policies::simulate::parse_trace(&name, &text)?;
            let opts = policies::simulate::SimOptions {
                start_time: a
                    .start_time
                    .unwrap_or_else(|| policies::simulate::SimOptions::assumed_start_time(service.start)),
                drain_time: a.drain_time,
            };
            let report = policies::simulate::simulate(service, &trace, &opts, &name)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render(a.all));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
