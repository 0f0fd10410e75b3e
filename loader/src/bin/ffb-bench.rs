//! `ffb-bench`: what a call through the bridge costs, measured beside the
//! baselines in the same run (an in-process call, and request/response helpers
//! over a unix socket, a pipe and a futex). Run it through `scripts/bench.sh`.
//!
//! Every figure is a median (and p99) of per-call timings taken on the host
//! around each call, so each includes one `Instant::now()` pair; that overhead
//! is measured and reported too. Nothing here is asserted: timings belong in
//! benchmarks, not in tests.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Instant;

use clap::Parser;
use ffb_loader::{Bridge, BridgeMode, CallOutput, Value, WORST_CASE};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "ffb-bench",
    about = "Measure ffb against in-process and IPC baselines"
)]
struct Args {
    /// The fixture library with ffb_nop, ffb_add_i64 and ffb_mix4 (scripts/bench.sh builds it).
    #[arg(long, value_name = "PATH")]
    lib: PathBuf,
    /// Calls per measurement.
    #[arg(long, default_value_t = 100_000)]
    calls: usize,
    /// A short run (about a tenth of the calls).
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Internal: serve as a baseline helper (socket, pipe or futex).
    #[arg(long, hide = true, value_name = "MODE")]
    baseline_child: Option<String>,
}

struct Stat {
    name: String,
    what: String,
    median_ns: f64,
    p99_ns: f64,
    samples: usize,
}

fn stat(name: &str, what: &str, mut samples: Vec<u64>) -> Stat {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64;
    Stat {
        name: name.into(),
        what: what.into(),
        median_ns: at(0.5),
        p99_ns: at(0.99),
        samples: samples.len(),
    }
}

fn time_each(n: usize, mut f: impl FnMut()) -> Vec<u64> {
    for _ in 0..(n / 10).max(100) {
        f();
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_nanos() as u64);
    }
    samples
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            if e.use_stderr() {
                let text = e.render().to_string();
                eprintln!(
                    "ffb-bench: {}",
                    text.lines()
                        .next()
                        .unwrap_or("bad usage")
                        .trim_start_matches("error: ")
                );
                return ExitCode::from(2);
            }
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    if let Some(mode) = &args.baseline_child {
        return baseline_child(mode, &args.lib);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ffb-bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let n = if args.quick {
        args.calls / 10
    } else {
        args.calls
    }
    .max(1000);
    let lib = args.lib.to_string_lossy().into_owned();
    let mut results = Vec::new();

    results.push(stat(
        "timer",
        "Instant::now() pair alone",
        time_each(n, || {}),
    ));

    // In-process: the floor any bridge is measured against.
    let inproc = unsafe { libloading::Library::new(&args.lib) }.map_err(|e| e.to_string())?;
    let nop: libloading::Symbol<unsafe extern "C" fn()> =
        unsafe { inproc.get(b"ffb_nop\0") }.map_err(|e| e.to_string())?;
    results.push(stat(
        "in_process_null",
        "void f(void) called directly (libloading)",
        time_each(n, || unsafe { nop() }),
    ));

    // Helper start: cold (fork server exec + fork + load) then warm.
    let build = || {
        Bridge::builder(lib.clone())
            .bridge_mode(BridgeMode::Enabled)
            .declare("ffb_nop() -> void")
            .declare("ffb_add_i64(i64, i64) -> i64")
            .declare("ffb_mix4(i32, f64, i64, f32) -> f64")
            .declare("ffb_nop_bytes(bytes) -> void")
            .arena_size(8 << 20)
    };
    let t = Instant::now();
    let cold = build().load().map_err(|e| e.to_string())?;
    let cold_ns = t.elapsed().as_nanos() as u64;
    drop(cold);
    results.push(stat(
        "spawn_cold",
        "first helper: fork server exec + fork + sandbox + dlopen",
        vec![cold_ns],
    ));
    let starts = if args.quick { 10 } else { 50 };
    let mut spawn = Vec::with_capacity(starts);
    for _ in 0..starts {
        let t = Instant::now();
        let b = build().load().map_err(|e| e.to_string())?;
        spawn.push(t.elapsed().as_nanos() as u64);
        drop(b);
    }
    results.push(stat(
        "spawn_warm",
        "helper from a warm fork server: fork + sandbox + dlopen + resolve",
        spawn,
    ));

    let mut bridge = build().load().map_err(|e| e.to_string())?;
    let f_nop = bridge.function("ffb_nop").expect("declared");
    let f_add = bridge.function("ffb_add_i64").expect("declared");
    let f_mix = bridge.function("ffb_mix4").expect("declared");
    let f_bytes = bridge.function("ffb_nop_bytes").expect("declared");
    let mut out = CallOutput {
        ret: Value::Null,
        out: Vec::new(),
        effects: &WORST_CASE,
    };
    let check = |r: ffb_loader::Result<()>| {
        if let Err(e) = r {
            panic!("bridged call failed during the benchmark: {e}");
        }
    };
    results.push(stat(
        "bridge_null",
        "void f(void) through the bridge (hot helper)",
        time_each(n, || check(bridge.call_into(f_nop, &[], &mut out))),
    ));
    let add_args = [Value::I64(40), Value::I64(2)];
    results.push(stat(
        "bridge_add_i64",
        "i64 add(i64, i64) through the bridge",
        time_each(n, || check(bridge.call_into(f_add, &add_args, &mut out))),
    ));
    let mix_args = [
        Value::I32(1),
        Value::F64(2.0),
        Value::I64(3),
        Value::F32(4.0),
    ];
    results.push(stat(
        "bridge_mix4",
        "f64 mix4(i32, f64, i64, f32) through the bridge",
        time_each(n, || check(bridge.call_into(f_mix, &mix_args, &mut out))),
    ));
    let mib = Value::Bytes(vec![0x5a; 1 << 20]);
    let big_n = (n / 100).max(200);
    let big_args = [mib];
    results.push(stat(
        "bridge_bytes_1MiB",
        "1 MiB bytes argument copied in and back out",
        time_each(big_n, || {
            check(bridge.call_into(f_bytes, &big_args, &mut out))
        }),
    ));
    let src = vec![0x5au8; 1 << 20];
    let mut dst = vec![0u8; 1 << 20];
    results.push(stat(
        "memcpy_2x1MiB",
        "two 1 MiB memcpy (the copy-in/copy-out floor)",
        time_each(big_n, || {
            dst.copy_from_slice(std::hint::black_box(&src));
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&dst);
        }),
    ));
    drop(bridge);

    for (mode, what) in [
        (
            "socket",
            "request/response over a unix socket to a helper process",
        ),
        (
            "pipe",
            "request/response over two pipes to a helper process",
        ),
        (
            "futex",
            "futex wait/wake handoff on shared memory with a helper process",
        ),
    ] {
        let mut baseline = Baseline::start(mode, &args.lib)?;
        results.push(stat(
            &format!("{mode}_null"),
            what,
            time_each(n, || baseline.round_trip()),
        ));
    }

    print_table(&results);
    if let Some(path) = &args.json {
        let doc = json!({
            "command": std::env::args().collect::<Vec<_>>(),
            "machine": machine(),
            "results": results.iter().map(|s| json!({
                "name": s.name, "what": s.what, "median_ns": s.median_ns,
                "p99_ns": s.p99_ns, "samples": s.samples,
            })).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

fn find<'a>(results: &'a [Stat], name: &str) -> Option<&'a Stat> {
    results.iter().find(|s| s.name == name)
}

fn print_table(results: &[Stat]) {
    let inproc = find(results, "in_process_null").map(|s| s.median_ns);
    let socket = find(results, "socket_null").map(|s| s.median_ns);
    println!(
        "{:<20} {:>12} {:>12} {:>12} {:>12}  what",
        "measurement", "median", "p99", "÷in-process", "socket÷this"
    );
    for s in results {
        let ratio = |base: Option<f64>, inverse: bool| match base {
            Some(b) if b > 0.0 && s.median_ns > 0.0 => {
                format!(
                    "{:.1}x",
                    if inverse {
                        b / s.median_ns
                    } else {
                        s.median_ns / b
                    }
                )
            }
            _ => "-".into(),
        };
        println!(
            "{:<20} {:>12} {:>12} {:>12} {:>12}  {}",
            s.name,
            human(s.median_ns),
            human(s.p99_ns),
            ratio(inproc, false),
            ratio(socket, true),
            s.what
        );
    }
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    json!({
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "loadavg": read("/proc/loadavg").trim(),
    })
}

/// A baseline helper: a child process that calls ffb_nop once per request.
struct Baseline {
    child: Child,
    kind: BaselineIo,
}

enum BaselineIo {
    Stream {
        to: std::fs::File,
        from: std::fs::File,
    },
    Futex {
        map: *mut AtomicU32,
    },
}

impl Baseline {
    fn start(mode: &str, lib: &std::path::Path) -> Result<Baseline, String> {
        let io = |e: std::io::Error| e.to_string();
        let exe = std::env::current_exe().map_err(io)?;
        let mut cmd = Command::new(exe);
        cmd.arg("--lib").arg(lib).arg("--baseline-child").arg(mode);
        let mut ours = None;
        let mut futex_map = None;
        match mode {
            "socket" => {
                let (a, b) = std::os::unix::net::UnixStream::pair().map_err(io)?;
                let b2 = b.try_clone().map_err(io)?;
                cmd.stdin(Stdio::from(OwnedFd::from(b)))
                    .stdout(Stdio::from(OwnedFd::from(b2)));
                let a2 = a.try_clone().map_err(io)?;
                ours = Some((OwnedFd::from(a), OwnedFd::from(a2)));
            }
            "pipe" => {
                cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
            }
            "futex" => {
                let fd = unsafe { libc::memfd_create(c"ffb-bench".as_ptr(), libc::MFD_CLOEXEC) };
                if fd < 0 {
                    return Err("memfd_create failed".into());
                }
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                if unsafe { libc::ftruncate(fd.as_raw_fd(), 4096) } != 0 {
                    return Err("ftruncate failed".into());
                }
                let map = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        4096,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_SHARED,
                        fd.as_raw_fd(),
                        0,
                    )
                };
                if map == libc::MAP_FAILED {
                    return Err("mmap failed".into());
                }
                futex_map = Some(map.cast::<AtomicU32>());
                cmd.stdin(Stdio::from(fd));
            }
            other => return Err(format!("unknown baseline {other}")),
        }
        let mut child = cmd.spawn().map_err(io)?;
        let kind = match (ours, futex_map) {
            (Some((to, from)), _) => BaselineIo::Stream {
                to: to.into(),
                from: from.into(),
            },
            (None, Some(map)) => BaselineIo::Futex { map },
            (None, None) => BaselineIo::Stream {
                to: OwnedFd::from(child.stdin.take().expect("piped")).into(),
                from: OwnedFd::from(child.stdout.take().expect("piped")).into(),
            },
        };
        Ok(Baseline { child, kind })
    }

    fn round_trip(&mut self) {
        match &mut self.kind {
            BaselineIo::Stream { to, from } => {
                let mut word = [0u8; 8];
                to.write_all(&word).expect("baseline write");
                from.read_exact(&mut word).expect("baseline read");
            }
            BaselineIo::Futex { map } => unsafe {
                let req = &*(*map);
                let resp = &*(*map).add(16);
                let seq = req.load(SeqCst).wrapping_add(1);
                req.store(seq, SeqCst);
                futex(req, libc::FUTEX_WAKE, 1);
                while resp.load(SeqCst) != seq {
                    futex(resp, libc::FUTEX_WAIT, resp.load(SeqCst));
                }
            },
        }
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn futex(word: &AtomicU32, op: i32, val: u32) {
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            val,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

fn baseline_child(mode: &str, lib: &std::path::Path) -> ExitCode {
    let Ok(lib) = (unsafe { libloading::Library::new(lib) }) else {
        return ExitCode::from(3);
    };
    let Ok(nop) = (unsafe { lib.get::<unsafe extern "C" fn()>(b"ffb_nop\0") }) else {
        return ExitCode::from(3);
    };
    match mode {
        "socket" | "pipe" => {
            let mut input = std::io::stdin().lock();
            let mut output = std::io::stdout().lock();
            let mut word = [0u8; 8];
            while input.read_exact(&mut word).is_ok() {
                unsafe { nop() };
                if output
                    .write_all(&word)
                    .and_then(|_| output.flush())
                    .is_err()
                {
                    break;
                }
            }
        }
        "futex" => unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                0,
                0,
            ) as *mut AtomicU32;
            let req = &*map;
            let resp = &*map.add(16);
            let mut seen = 0;
            loop {
                while req.load(SeqCst) == seen {
                    futex(req, libc::FUTEX_WAIT, seen);
                }
                seen = req.load(SeqCst);
                nop();
                resp.store(seen, SeqCst);
                futex(resp, libc::FUTEX_WAKE, 1);
            }
        },
        _ => return ExitCode::from(2),
    }
    ExitCode::SUCCESS
}
