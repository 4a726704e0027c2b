//! Images: `twinkle image build` then `twinkle vm restore`, with real VMs.
//! A restored VM must compute exactly what an uninterrupted one computes, and
//! a damaged, truncated, foreign or mismatched image must be refused with a
//! message naming the file, the section and the problem.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{require_huge_pages, require_kvm};

fn twinkle(args: &[&str]) -> (i32, String, String) {
    require_kvm();
    let out = Command::new(env!("CARGO_BIN_EXE_twinkle")).args(args).output().expect("run twinkle");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("twinkle-snap-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

fn build(app: &str, args: &[&str], out: &Path) {
    let mut cmd = vec!["image", "build", "--app", app, "--mem-mib", "64", "--out"];
    let out_s = out.display().to_string();
    cmd.push(&out_s);
    for a in args {
        cmd.push("--arg");
        cmd.push(a);
    }
    let (code, _, err) = twinkle(&cmd);
    assert_eq!(code, 0, "image build failed: {err}");
    assert!(err.contains("image written to"), "{err}");
}

/// Every way of restoring an image, as `vm restore` flags: each strategy, and
/// the page-served ones also with memory from the huge-page pool (2 MiB units).
const RESTORES: [&[&str]; 7] = [
    &["--strategy", "resume"],
    &["--strategy", "resume", "--huge-pages", "on"],
    &["--strategy", "lazy"],
    &["--strategy", "lazy", "--huge-pages", "on"],
    &["--strategy", "mmap"],
    &["--strategy", "twinkle", "--huge-pages", "off"],
    &["--strategy", "twinkle", "--huge-pages", "on"],
];

/// Restores `img` in every way of [`RESTORES`]; each must print `reference`.
fn restore_every_way(img: &str, reference: &str, what: &str) {
    require_huge_pages(32);
    for way in RESTORES {
        let mut args = vec!["vm", "restore", "--image", img];
        args.extend_from_slice(way);
        let (code, _, err) = twinkle(&args);
        let how = way.join(" ");
        assert_eq!(code, 0, "{what} {how}: {err}");
        assert_eq!(checksum(&err), reference, "{what} restored with {how} computed something else");
    }
}

fn checksum(stderr: &str) -> String {
    let at = stderr.find("checksum=").unwrap_or_else(|| panic!("no checksum in {stderr}"));
    stderr[at + 9..at + 25].to_string()
}

#[test]
fn restored_memtouch_computes_what_an_uninterrupted_run_computes() {
    let dir = tmpdir("memtouch");
    let img = dir.join("img");
    let args = ["mib=24", "pattern=random", "passes=2"];
    let (code, _, err) = twinkle(&[
        "vm",
        "run",
        "--app",
        "memtouch",
        "--mem-mib",
        "64",
        "--arg",
        args[0],
        "--arg",
        args[1],
        "--arg",
        args[2],
    ]);
    assert_eq!(code, 0, "{err}");
    let reference = checksum(&err);
    build("memtouch", &args, &img);
    let img_s = img.display().to_string();
    for strategy in ["resume", "cold", "lazy", "mmap"] {
        let (code, out, err) = twinkle(&["vm", "restore", "--image", &img_s, "--strategy", strategy]);
        assert_eq!(code, 0, "{strategy}: {err}");
        assert_eq!(checksum(&err), reference, "{strategy} computed something else: {err}");
        if strategy == "lazy" {
            // Every page the run touched came through the page server.
            let paged =
                out.lines().find_map(|l| l.strip_prefix("paged ")).unwrap_or_else(|| panic!("no paged line: {out}"));
            let faults: u64 = paged
                .split("\"demand_faults\":")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .expect("demand_faults");
            assert!(faults > 24 * 256 / 2, "only {faults} demand faults for 24 MiB touched");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restored_hello_serves_at_once_and_keeps_its_clock() {
    let dir = tmpdir("hello");
    let img = dir.join("img");
    build("hello", &[], &img);
    // Free pages are holes: the memory file stores far less than 64 MiB.
    let stored = std::fs::metadata(img.join("memory.bin")).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.blocks() * 512
    });
    assert!(stored.expect("memory.bin") < 32 << 20, "free pages were stored");
    for strategy in ["resume", "lazy", "mmap"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_twinkle"))
            .args([
                "vm",
                "restore",
                "--image",
                &img.display().to_string(),
                "--listen",
                "127.0.0.1:0",
                "--strategy",
                strategy,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("restore");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
        let addr = line.trim().strip_prefix("listening ").expect("listening").to_string();
        let mut body = String::new();
        for _ in 0..200 {
            if let Ok(mut s) = TcpStream::connect(&addr) {
                s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
                s.write_all(b"GET /time HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").expect("write");
                s.read_to_string(&mut body).expect("read");
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(body.starts_with("HTTP/1.1 200"), "{strategy}: {body}");
        let mono: u64 = body
            .rsplit("\r\n\r\n")
            .next()
            .and_then(|b| b.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("mono");
        assert!(mono > 0, "the monotonic clock continues from the snapshot");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn expect_refused(img: &Path, extra: &[&str], want: &[&str]) {
    let img_s = img.display().to_string();
    let mut args = vec!["vm", "restore", "--image", &img_s];
    args.extend_from_slice(extra);
    let (code, _, err) = twinkle(&args);
    assert_eq!(code, 1, "a bad image was not refused: {err}");
    for w in want {
        assert!(err.contains(w), "expected {w:?} in: {err}");
    }
}

#[test]
fn bad_images_are_refused_with_file_section_and_problem() {
    let dir = tmpdir("bad");
    let good = dir.join("good");
    build("hello", &[], &good);
    let copy = |name: &str| -> PathBuf {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("dir");
        for f in ["state.twnk", "memory.bin"] {
            std::fs::copy(good.join(f), d.join(f)).expect("copy");
        }
        d
    };
    let edit = |d: &Path, file: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let p = d.join(file);
        let mut b = std::fs::read(&p).expect("read");
        f(&mut b);
        std::fs::write(&p, b).expect("write");
    };

    let d = copy("magic");
    edit(&d, "state.twnk", &|b| b[0] = b'X');
    expect_refused(&d, &[], &["state.twnk", "section header", "not a twinkle snapshot"]);

    let d = copy("version");
    edit(&d, "state.twnk", &|b| b[8] = 7);
    expect_refused(&d, &[], &["snapshot format version 7", "rebuild the image"]);

    let d = copy("flipped");
    edit(&d, "state.twnk", &|b| {
        let n = b.len();
        b[n - 100] ^= 0x40;
    });
    expect_refused(&d, &[], &["state.twnk: section page-crc: checksum mismatch"]);

    let d = copy("truncated-state");
    edit(&d, "state.twnk", &|b| b.truncate(b.len() / 2));
    expect_refused(&d, &[], &["state.twnk: section", "run past the end of the file"]);

    let d = copy("truncated-memory");
    let f = std::fs::OpenOptions::new().write(true).open(d.join("memory.bin")).expect("open");
    f.set_len(1 << 20).expect("truncate");
    expect_refused(&d, &[], &["memory.bin: section memory", "truncated or from another image"]);

    let d = copy("memory-bits");
    // A byte of every page of the guest program (the ELF lives at 2 MiB;
    // hello's code, constants and data take under 64 KiB): whichever of its
    // pages the restored vCPU touches first fails, wherever the linker put
    // the code it resumes in.
    let f = std::fs::OpenOptions::new().read(true).write(true).open(d.join("memory.bin")).expect("open");
    use std::os::unix::fs::FileExt;
    for page in (0x200000u64..0x210000).step_by(4096) {
        let mut byte = [0u8; 1];
        f.read_exact_at(&mut byte, page + 0x10).expect("read");
        byte[0] ^= 0xff;
        f.write_all_at(&byte, page + 0x10).expect("write");
    }
    expect_refused(&d, &[], &["memory.bin: section memory: chunk 1", "fails its checksum"]);

    // Page-at-a-time restores check each page as it arrives, and end the VM.
    let (code, _, err) = twinkle(&["vm", "restore", "--image", &d.display().to_string(), "--strategy", "lazy"]);
    assert_eq!(code, 70, "{err}");
    assert!(err.contains("memory.bin: section memory: page 5") && err.contains("fails its checksum"), "{err}");
    // Also when the page server copies whole 2 MiB pages into the huge-page pool.
    require_huge_pages(32);
    let (code, _, err) =
        twinkle(&["vm", "restore", "--image", &d.display().to_string(), "--strategy", "lazy", "--huge-pages", "on"]);
    assert_eq!(code, 70, "{err}");
    assert!(err.contains("memory.bin: section memory: page 512 (offset 0x200000) fails its checksum"), "{err}");

    let d = copy("missing");
    std::fs::remove_file(d.join("state.twnk")).expect("rm");
    expect_refused(&d, &[], &["state.twnk", "No such file"]);

    // A damaged working-set file is refused too (it decides what is loaded).
    let d = copy("working-set");
    let (code, _, err) = twinkle(&["image", "track", "--image", &d.display().to_string(), "--max-window", "1s"]);
    assert_eq!(code, 0, "{err}");
    edit(&d, "working-set.bin", &|b| {
        let n = b.len();
        b[n - 1] ^= 0x20;
    });
    expect_refused(&d, &["--strategy", "twinkle"], &["working-set.bin: section working-set: checksum mismatch"]);
    edit(&d, "working-set.bin", &|b| b.truncate(20));
    expect_refused(&d, &["--strategy", "twinkle"], &["working-set.bin: section working-set: not a working-set file"]);

    expect_refused(&good, &["--expect-app", "rubis"], &["the image is of app \"hello\", not \"rubis\""]);
    expect_refused(&good, &["--connect", "redis=127.0.0.1:6379"], &["endpoint \"redis\" is not one the guest knows"]);
    let (code, _, err) = twinkle(&["vm", "restore", "--image", &good.display().to_string(), "--strategy", "warp"]);
    assert_eq!(code, 2, "usage error");
    assert!(err.contains("unknown strategy \"warp\"; strategies: cold, resume, lazy, mmap, twinkle"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_six_memory_workloads_give_the_same_checksum_under_every_strategy() {
    let dir = tmpdir("workloads");
    for kind in ["astar", "libquantum", "mcf", "omnetpp", "perlbench", "xalancbmk"] {
        let args = [format!("kind={kind}"), "mib=6".to_string(), "iters=2".to_string()];
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = twinkle(&[
            "vm",
            "run",
            "--app",
            "workload",
            "--mem-mib",
            "64",
            "--arg",
            &args[0],
            "--arg",
            &args[1],
            "--arg",
            &args[2],
        ]);
        assert_eq!(code, 0, "{kind}: {err}");
        let reference = checksum(&err);
        let img = dir.join(kind);
        build("workload", &arg_refs, &img);
        let img_s = img.display().to_string();
        let (code, _, err) = twinkle(&["image", "track", "--image", &img_s]);
        assert_eq!(code, 0, "{kind} track: {err}");
        restore_every_way(&img_s, &reference, kind);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_startup_benchmark_prints_rows_for_every_workload_and_strategy() {
    require_huge_pages(16);
    let (code, out, err) = twinkle(&[
        "bench",
        "startup",
        "--mem-mib",
        "32",
        "--data-mib",
        "2",
        "--iters",
        "1",
        "--huge-pages",
        "on",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let rows = out.matches("\"strategy\":").count();
    assert_eq!(rows, 42, "6 workloads x 7 rows (5 strategies, resume-huge, twinkle-4k): {out}");
    assert_eq!(out.matches("\"huge_pages\": true").count(), 13, "twinkle and resume-huge rows, and the report: {out}");
    assert_eq!(out.matches("\"prediction\":").count(), 48, "8 combinations x 6 workloads");
    for key in
        ["\"startup_ms\"", "\"exec_overhead_pct\"", "\"invalid_exec_ratio\"", "\"remote_faults\"", "\"bytes_fetched\""]
    {
        assert!(out.contains(key), "missing {key}");
    }
}

#[test]
fn images_restore_from_an_image_server() {
    let dir = tmpdir("store");
    let args = ["mib=4", "pattern=random"];
    let (code, _, err) =
        twinkle(&["vm", "run", "--app", "memtouch", "--mem-mib", "32", "--arg", args[0], "--arg", args[1]]);
    assert_eq!(code, 0, "{err}");
    let reference = checksum(&err);
    let img = dir.join("mt");
    let img_s = img.display().to_string();
    let (code, _, err) = twinkle(&[
        "image",
        "build",
        "--app",
        "memtouch",
        "--mem-mib",
        "32",
        "--arg",
        args[0],
        "--arg",
        args[1],
        "--out",
        &img_s,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = twinkle(&["image", "track", "--image", &img_s]);
    assert_eq!(code, 0, "{err}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_twinkle"))
        .args(["images", "serve", "--dir", &dir.display().to_string(), "--listen", "127.0.0.1:0", "--link", "rtt=0ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("images serve");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
    let addr = line.trim().strip_prefix("listening ").expect("listening").to_string();
    let url = format!("http://{addr}/mt");
    for strategy in ["resume", "lazy", "twinkle", "cold"] {
        let (code, _, err) = twinkle(&["vm", "restore", "--image", &url, "--strategy", strategy]);
        assert_eq!(code, 0, "{strategy} over HTTP: {err}");
        assert_eq!(checksum(&err), reference, "{strategy} over HTTP computed something else");
    }
    let (code, _, err) = twinkle(&["vm", "restore", "--image", &url, "--strategy", "mmap"]);
    assert_eq!(code, 1);
    assert!(err.contains("the mmap strategy maps a local file"), "{err}");
    let (code, _, err) = twinkle(&["vm", "restore", "--image", &format!("http://{addr}/nope")]);
    assert_eq!(code, 1);
    assert!(err.contains("nope/state.twnk"), "{err}");
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Snapshots taken at random points of a run: whatever the point, every
/// strategy must finish the run exactly as the uninterrupted VM does.
#[test]
fn snapshots_at_random_points_resume_exactly() {
    let dir = tmpdir("random");
    // A small xorshift, seeded from the clock: each run tries other points.
    let mut seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64) | 1;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let kinds = ["astar", "libquantum", "mcf", "omnetpp", "perlbench", "xalancbmk"];
    for round in 0..3 {
        let kind = kinds[next(kinds.len() as u64) as usize];
        let iters = 4;
        let at = next(iters);
        let args = [format!("kind={kind}"), "mib=4".to_string(), format!("iters={iters}"), format!("ready_at={at}")];
        let mut run =
            vec!["vm".to_string(), "run".into(), "--app".into(), "workload".into(), "--mem-mib".into(), "32".into()];
        for a in &args {
            run.push("--arg".into());
            run.push(a.clone());
        }
        let run_refs: Vec<&str> = run.iter().map(String::as_str).collect();
        let (code, _, err) = twinkle(&run_refs);
        assert_eq!(code, 0, "{err}");
        let reference = checksum(&err);
        let img = dir.join(format!("r{round}"));
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = vec!["image", "build", "--app", "workload", "--mem-mib", "32", "--out"];
        let img_s = img.display().to_string();
        cmd.push(&img_s);
        for a in &arg_refs {
            cmd.push("--arg");
            cmd.push(a);
        }
        let (code, _, err) = twinkle(&cmd);
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = twinkle(&["image", "track", "--image", &img_s]);
        assert_eq!(code, 0, "{err}");
        restore_every_way(&img_s, &reference, &format!("{kind} snapshot after round {at}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
