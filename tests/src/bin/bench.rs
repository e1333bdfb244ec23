//! `bench open|exec|startup|all`: what tracing costs, measured on this machine.
//!
//! open: an open+close storm (default 1,000,000 pairs) in a child process;
//! exec: an exec storm (default 5,000 fork+exec of /bin/true). Each is run
//! with no tracer, with `ig trace <gadget> --host -o json`, and, when it is
//! installed, with an equivalent bpftrace one-liner, alternating for
//! `--rounds` rounds. Prints the median slowdown, events delivered vs
//! expected, lost events, and each tracer's CPU seconds and peak RSS.
//! startup: time from starting `ig trace exec` until it traces.
//! gadgets: each gadget's start-up (to "tracing started") with 0 and with
//! `--containers` (100) containers in the collection.
//! dns: non-DNS UDP and DNS storms on loopback with and without `ig trace dns`.
//! sizes: the size of each binary.
//! daemon: events/s that `gadgetctl trace open -o json` receives through
//! `ig daemon` vs `ig trace open -o json` locally, on the open storm.
//!
//! Run it as root from a release build:
//! `cargo run --release -p tests --bin bench -- all`

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

#[path = "../bench_dns.rs"]
mod bench_dns;

const OPEN_COMM: &str = "ig-openloop";
const EXEC_COMM: &str = "ig-execloop";
const EXEC_ARG: &str = "ig-execloop-arg";
const READY: &str = "ig-bench-ready";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = flag("--rounds", 5) as usize;
    match args.first().map(String::as_str) {
        // workloads, run as children of the bench
        Some("openloop") => open_loop(flag("--count", 1_000_000)),
        Some("execloop") => exec_loop(flag("--count", 5_000)),
        Some("open") => storm(Storm::Open, flag("--count", 1_000_000), rounds),
        Some("exec") => storm(Storm::Exec, flag("--count", 5_000), rounds),
        Some("startup") => startup(rounds),
        Some("hook") => hook_cost(flag("--count", 50) as usize),
        Some("nri") => nri_cost(flag("--count", 30) as usize),
        Some("daemon") => daemon_throughput(flag("--count", 1_000_000), rounds),
        Some("gadgets") => gadget_startup(flag("--containers", 100) as usize, rounds),
        Some("dns") => bench_dns::run(flag("--count", 1_000_000), rounds),
        Some("all") => {
            storm(Storm::Open, flag("--open-count", 1_000_000), rounds)?;
            storm(Storm::Exec, flag("--exec-count", 5_000), rounds)?;
            startup(rounds)?;
            hook_cost(flag("--hook-count", 50) as usize)?;
            nri_cost(flag("--nri-count", 30) as usize)?;
            daemon_throughput(flag("--open-count", 1_000_000), rounds)?;
            gadget_startup(flag("--containers", 100) as usize, rounds)?;
            bench_dns::run(flag("--udp-count", 1_000_000), rounds)?;
            binary_sizes()
        }
        Some("sizes") => binary_sizes(),
        _ => {
            bail!(
                "usage: bench open|exec|startup|hook|nri|daemon|gadgets|dns|sizes|all [--rounds N] [--count N]"
            )
        }
    }
}

fn set_comm(name: &str) {
    let c = std::ffi::CString::new(name).expect("comm");
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr()) };
}

fn open_loop(count: u64) -> Result<()> {
    set_comm(OPEN_COMM);
    let path = c"/dev/null";
    for _ in 0..count {
        // SAFETY: plain syscalls on a static path.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
            if fd >= 0 {
                libc::close(fd);
            }
        }
    }
    Ok(())
}

fn exec_loop(count: u64) -> Result<()> {
    set_comm(EXEC_COMM);
    for _ in 0..count {
        let status = Command::new("/bin/true").arg(EXEC_ARG).status()?;
        if !status.success() {
            bail!("/bin/true failed");
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Storm {
    Open,
    Exec,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Variant {
    Baseline,
    Ig,
    Bpftrace,
}

/// A tracer child whose stdout is counted by a thread.
struct Tracer {
    child: Child,
    counted: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
    ready: std::sync::mpsc::Receiver<()>,
    reader: JoinHandle<()>,
}

struct Usage {
    cpu_s: f64,
    max_rss_kb: i64,
}

impl Tracer {
    fn start(variant: Variant, storm: Storm) -> Result<Self> {
        let mut cmd = match variant {
            Variant::Ig => {
                // As users run it: JSON to /dev/null. What it received is
                // read from its own stop log line (IG_LOG=info).
                let mut c = Command::new(tests::binary("ig"));
                let gadget = if storm == Storm::Open { "open" } else { "exec" };
                c.args(["trace", gadget, "--host", "-o", "json", "--auto-mount-filesystems"])
                    .env("IG_LOG", "info");
                c
            }
            Variant::Bpftrace => {
                let prog = match storm {
                    Storm::Open => {
                        "tracepoint:syscalls:sys_enter_openat { printf(\"%s %s\\n\", comm, str(args->filename)); }"
                    }
                    Storm::Exec => {
                        "tracepoint:syscalls:sys_enter_execve { printf(\"%s \", comm); join(args->argv); }"
                    }
                };
                let mut c = Command::new("bpftrace");
                c.args(["-B", "line", "-e", prog]);
                c
            }
            Variant::Baseline => bail!("no tracer for the baseline"),
        };
        let mut child = if variant == Variant::Ig {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()
        }
        .context("starting tracer")?;
        let stdout: Box<dyn std::io::Read + Send> = match variant {
            Variant::Ig => Box::new(child.stderr.take().expect("stderr")),
            _ => Box::new(child.stdout.take().expect("stdout")),
        };
        let counted = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let needle = if storm == Storm::Open { OPEN_COMM } else { EXEC_ARG };
        let (c, l) = (counted.clone(), lost.clone());
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(1 << 20, stdout);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if line.contains("tracing started") {
                    let _ = ready_tx.send(());
                } else if line.contains("tracing stopped") {
                    // ig's own totals: received=N lost=N
                    for (key, counter) in [("received=", &c), ("lost=", &l)] {
                        if let Some(v) = line.split(key).nth(1).and_then(|v| v.split_whitespace().next()) {
                            counter.store(v.parse().unwrap_or(0), Ordering::Relaxed);
                        }
                    }
                } else if line.contains(needle) {
                    c.fetch_add(1, Ordering::Relaxed);
                } else if line.contains(READY) {
                    let _ = ready_tx.send(());
                } else if line.contains("\"lostEvents\"") {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    l.fetch_add(v["lostEvents"].as_u64().unwrap_or(0), Ordering::Relaxed);
                } else if line.contains("Lost") || line.contains("lost") {
                    // bpftrace: "Lost N events"
                    let n = line.split_whitespace().find_map(|w| w.parse::<u64>().ok()).unwrap_or(0);
                    l.fetch_add(n, Ordering::Relaxed);
                }
                line.clear();
            }
        });
        let t = Self { child, counted, lost, ready, reader };
        t.wait_ready(storm)?;
        Ok(t)
    }

    /// Triggers marker events until the tracer shows one (ig says so itself).
    fn wait_ready(&self, storm: Storm) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match storm {
                Storm::Open => drop(std::fs::File::open(format!("/tmp/{READY}"))),
                Storm::Exec => drop(Command::new("/bin/true").arg(READY).status()),
            }
            if self.ready.recv_timeout(Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("tracer not ready after 60 s");
            }
        }
    }

    /// Resident set now (VmRSS), in KiB.
    fn rss_now_kb(&self) -> i64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Stops with SIGINT and returns its resource usage.
    fn stop(self) -> Result<(u64, u64, Usage)> {
        let pid = self.child.id() as i32;
        // SAFETY: signalling and reaping our own child.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let mut status = 0;
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::wait4(pid, &mut status, 0, &mut ru) } != pid {
            bail!("wait4 on the tracer failed");
        }
        let _ = self.reader.join();
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let usage = Usage { cpu_s: tv(ru.ru_utime) + tv(ru.ru_stime), max_rss_kb: ru.ru_maxrss };
        Ok((self.counted.load(Ordering::Relaxed), self.lost.load(Ordering::Relaxed), usage))
    }
}

struct Sample {
    secs: f64,
    delivered: u64,
    lost: u64,
    cpu_s: f64,
    rss_kb: i64,
    /// VmRSS at the end of the storm, before stopping.
    steady_rss_kb: i64,
}

fn run_once(variant: Variant, storm: Storm, count: u64) -> Result<Sample> {
    let tracer = if variant == Variant::Baseline { None } else { Some(Tracer::start(variant, storm)?) };
    let sub = if storm == Storm::Open { "openloop" } else { "execloop" };
    let start = Instant::now();
    let status =
        Command::new(std::env::current_exe()?).args([sub, "--count", &count.to_string()]).status()?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("workload failed");
    }
    let Some(tracer) = tracer else {
        return Ok(Sample { secs, delivered: 0, lost: 0, cpu_s: 0.0, rss_kb: 0, steady_rss_kb: 0 });
    };
    // Let the tracer drain what is still in flight before stopping it.
    std::thread::sleep(Duration::from_millis(500));
    let steady_rss_kb = tracer.rss_now_kb();
    let (delivered, lost, usage) = tracer.stop()?;
    Ok(Sample { secs, delivered, lost, cpu_s: usage.cpu_s, rss_kb: usage.max_rss_kb, steady_rss_kb })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

fn storm(storm: Storm, count: u64, rounds: usize) -> Result<()> {
    tests::require_root();
    let mut variants = vec![Variant::Baseline, Variant::Ig];
    let has_bpftrace = Command::new("bpftrace").arg("--version").output().is_ok_and(|o| o.status.success());
    if has_bpftrace {
        variants.push(Variant::Bpftrace);
    }
    let what = if storm == Storm::Open { "open+close pairs" } else { "fork+exec of /bin/true" };
    println!("== {what}: {count} per run, {rounds} rounds, variants {variants:?}");
    let mut samples: Vec<Vec<Sample>> = variants.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (i, v) in variants.iter().enumerate() {
            let s = run_once(*v, storm, count)?;
            println!(
                "round {round} {v:?}: {:.2} s, delivered {}, lost {}, cpu {:.2} s, peak rss {} KiB, rss at end {} KiB",
                s.secs, s.delivered, s.lost, s.cpu_s, s.rss_kb, s.steady_rss_kb
            );
            samples[i].push(s);
        }
    }
    let base = median(samples[0].iter().map(|s| s.secs).collect());
    println!("baseline: median {base:.2} s");
    let mut ratios = Vec::new();
    for (i, v) in variants.iter().enumerate().skip(1) {
        let s = &samples[i];
        let t = median(s.iter().map(|x| x.secs).collect());
        let ratio = t / base;
        ratios.push((*v, ratio));
        let delivered: u64 = s.iter().map(|x| x.delivered).sum();
        let lost: u64 = s.iter().map(|x| x.lost).sum();
        println!(
            "{v:?}: median {t:.2} s, slowdown {ratio:.2}x, delivered {delivered} of {} expected ({:.2}%{}), \
             lost reported {lost}, cpu median {:.2} s, peak rss max {} KiB, rss at end max {} KiB",
            count * rounds as u64,
            100.0 * delivered as f64 / (count * rounds as u64) as f64,
            if *v == Variant::Ig { ", ig counts every event it received, host noise included" } else { "" },
            median(s.iter().map(|x| x.cpu_s).collect()),
            s.iter().map(|x| x.rss_kb).max().unwrap_or(0),
            s.iter().map(|x| x.steady_rss_kb).max().unwrap_or(0)
        );
    }
    if let (Some((_, ig)), Some((_, bt))) =
        (ratios.iter().find(|r| r.0 == Variant::Ig), ratios.iter().find(|r| r.0 == Variant::Bpftrace))
    {
        println!("ig/bpftrace slowdown ratio: {:.2}", ig / bt);
    }
    Ok(())
}

/// Time from spawning `ig trace exec` to the first exec it reports.
fn startup(rounds: usize) -> Result<()> {
    tests::require_root();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let spawned = Instant::now();
        let mut child = Command::new(tests::binary("ig"))
            .args(["trace", "exec", "--host", "-o", "json", "--auto-mount-filesystems"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<usize>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(pos) = line.find("ig-start-") {
                    let n: String = line[pos + 9..].chars().take_while(char::is_ascii_digit).collect();
                    if let Ok(n) = n.parse() {
                        let _ = tx.send(n);
                        return;
                    }
                }
            }
        });
        let mut started = Vec::new();
        let first = loop {
            started.push(spawned.elapsed());
            Command::new("/bin/true").arg(format!("ig-start-{}", started.len() - 1)).status()?;
            if let Ok(n) = rx.try_recv() {
                break n;
            }
            if spawned.elapsed() > Duration::from_secs(30) {
                bail!("ig did not start tracing within 30 s");
            }
        };
        times.push(started[first].as_secs_f64() * 1000.0);
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "== startup of ig trace exec: ready to trace after median {:.0} ms ({times:.0?})",
        median(times.clone())
    );
    Ok(())
}

/// Container start time (`runc run` of /bin/true) without the hook, with the
/// hook and no tracer, and with the hook and `ig trace exec` running;
/// alternating, `count` runs each.
fn hook_cost(count: usize) -> Result<()> {
    tests::require_root();
    let h = tests::harness();
    let plain = h.runc_bundle("ig-bench-plain", &["/bin/true"], false);
    let hooked = h.runc_bundle("ig-bench-hooked", &["/bin/true"], true);
    let time_run = |b: &tests::RuncBundle| {
        let t = Instant::now();
        b.run();
        t.elapsed().as_secs_f64() * 1000.0
    };
    let (mut none, mut alone) = (Vec::new(), Vec::new());
    for _ in 0..count {
        none.push(time_run(&plain));
        alone.push(time_run(&hooked));
    }
    let ig = tests::IgChild::spawn_ready(
        &["trace", "exec", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let (mut none2, mut traced) = (Vec::new(), Vec::new());
    for _ in 0..count {
        none2.push(time_run(&plain));
        traced.push(time_run(&hooked));
    }
    drop(ig);
    let (m0, m1, m2, m3) = (median(none), median(alone), median(none2), median(traced));
    println!("== container start (runc run /bin/true), {count} alternating runs each, medians:");
    println!("no hook {m0:.1} ms; hook, no tracer {m1:.1} ms: ratio {:.3}, added {:.1} ms", m1 / m0, m1 - m0);
    println!(
        "no hook {m2:.1} ms; hook, ig trace exec running {m3:.1} ms: ratio {:.3}, added {:.1} ms",
        m3 / m2,
        m3 - m2
    );
    Ok(())
}

/// CRI CreateContainer+StartContainer time on the harness containerd with
/// ig-nri connected vs not, alternating run by run, `count` runs each;
/// `ig trace exec` runs throughout, so the plugin's records reach a tracer.
fn nri_cost(count: usize) -> Result<()> {
    tests::require_root();
    let h = tests::harness();
    let env = std::fs::read_to_string(h.dir.join("env.sh"))?;
    let get = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {key}=")))
            .map(|v| v.trim_matches('"').to_string())
            .with_context(|| format!("{key} not in env.sh: set up the harness with containerd"))
    };
    let (cri, nri_sock) = (get("IG_HARNESS_CRI")?, get("IG_HARNESS_NRI_SOCK")?);
    let dir = std::env::temp_dir().join("ig-bench-nri");
    std::fs::create_dir_all(&dir)?;
    let pod = serde_json::json!({
        "metadata": {"name": "ig-bench", "namespace": "bench", "uid": "ig-bench-uid", "attempt": 0},
        "logDirectory": dir.join("logs"),
        "linux": {"securityContext": {"namespaceOptions": {"network": "NODE"}}}
    });
    let ctr = serde_json::json!({"metadata": {"name": "c"}, "image": {"image": h.image}, "command": ["/bin/sleep", "60"]});
    std::fs::write(dir.join("pod.json"), pod.to_string())?;
    std::fs::write(dir.join("ctr.json"), ctr.to_string())?;
    let block = |n: usize| -> Result<Vec<f64>> {
        let mut parts = cri.split_whitespace();
        let out = Command::new(parts.next().context("cri command")?)
            .args(parts)
            .arg("bench")
            .arg(dir.join("pod.json"))
            .arg(dir.join("ctr.json"))
            .arg(n.to_string())
            .output()?;
        if !out.status.success() {
            bail!("cri.py bench: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect())
    };
    let _tracer = tests::IgChild::spawn_ready(
        &["trace", "exec", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let (mut without, mut with) = (Vec::new(), Vec::new());
    while without.len() < count {
        without.extend(block(1)?);
        let plugin = Command::new(tests::binary("ig-nri"))
            .args(["--socket", &nri_sock])
            .env("IG_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let plugin = tests::IgChild::from_child(plugin);
        if !plugin.wait_stderr("synchronized", Duration::from_secs(20)) {
            bail!("ig-nri did not connect: {}", plugin.stderr_text());
        }
        with.extend(block(1)?);
        drop(plugin);
    }
    let (m0, m1) = (median(without), median(with));
    println!("== CRI create+start, {count} runs each, alternating, medians:");
    println!(
        "without ig-nri {m0:.1} ms; with ig-nri {m1:.1} ms: added {:.1} ms (ratio {:.3})",
        m1 - m0,
        m1 / m0
    );
    Ok(())
}

/// A trace client whose stdout JSON lines are counted as they arrive.
struct CountingClient {
    child: Child,
    counted: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
    last_event: Arc<std::sync::Mutex<Option<Instant>>>,
    readers: Vec<JoinHandle<()>>,
}

impl CountingClient {
    fn start(mut cmd: Command) -> Result<Self> {
        let mut child = cmd
            .env("IG_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("client")?;
        let (out, err) = (child.stdout.take().expect("stdout"), child.stderr.take().expect("stderr"));
        let counted = Arc::new(AtomicU64::new(0));
        let lost = Arc::new(AtomicU64::new(0));
        let last_event = Arc::new(std::sync::Mutex::new(None));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let (c, l, last) = (counted.clone(), lost.clone(), last_event.clone());
        let ready_tx2 = ready_tx.clone();
        let out_reader = std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(1 << 20, out);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if line.contains(OPEN_COMM) {
                    c.fetch_add(1, Ordering::Relaxed);
                    *last.lock().unwrap() = Some(Instant::now());
                } else if line.contains(READY) {
                    let _ = ready_tx2.send(());
                } else if line.contains("\"lostEvents\"") {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    l.fetch_add(v["lostEvents"].as_u64().unwrap_or(0), Ordering::Relaxed);
                }
                line.clear();
            }
        });
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
                if line.contains("tracing started") {
                    let _ = ready_tx.send(());
                }
            }
        });
        // "tracing started", then a marker open seen on stdout.
        ready.recv_timeout(Duration::from_secs(60)).context("client not started")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            drop(std::fs::File::open(format!("/tmp/{READY}")));
            if ready.recv_timeout(Duration::from_millis(100)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!("client never showed a marker open");
            }
        }
        Ok(Self { child, counted, lost, last_event, readers: vec![out_reader, err_reader] })
    }

    fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

/// Events/s through the daemon vs locally, on the open storm.
fn daemon_throughput(count: u64, rounds: usize) -> Result<()> {
    tests::require_root();
    let dir = std::env::temp_dir().join(format!("ig-bench-daemon-{}", std::process::id()));
    let address = format!("unix://{}/ig.sock", dir.display());
    let mut daemon = Command::new(tests::binary("ig"))
        .args(["daemon", "--auto-mount-filesystems", "-H", &address])
        .env("IG_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("ig daemon")?;
    let err = daemon.stderr.take().expect("stderr");
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
            if line.contains("daemon ready") {
                let _ = ready_tx.send(());
            }
        }
    });
    ready.recv_timeout(Duration::from_secs(60)).context("the daemon did not start")?;
    println!(
        "== daemon: {count} open+close pairs per run, {rounds} rounds, local ig vs gadgetctl through ig daemon"
    );
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut lost_total = [0u64; 2];
    let mut delivered_total = [0u64; 2];
    for round in 0..rounds {
        for (i, name) in ["local", "daemon"].iter().enumerate() {
            let mut cmd = if i == 0 {
                let mut c = Command::new(tests::binary("ig"));
                c.args(["trace", "open", "--host", "-o", "json", "--auto-mount-filesystems"]);
                c
            } else {
                let mut c = Command::new(tests::binary("gadgetctl"));
                c.args(["--remote-address", &address, "trace", "open", "--host", "-o", "json"]);
                c
            };
            cmd.stdin(Stdio::null());
            let client = CountingClient::start(cmd)?;
            let base = client.counted.load(Ordering::Relaxed);
            let start = Instant::now();
            let status = Command::new(std::env::current_exe()?)
                .args(["openloop", "--count", &count.to_string()])
                .status()?;
            if !status.success() {
                bail!("workload failed");
            }
            // Wait until the stream has caught up (no new event for 1 s).
            let mut prev = u64::MAX;
            loop {
                std::thread::sleep(Duration::from_millis(1000));
                let now = client.counted.load(Ordering::Relaxed);
                if now == prev {
                    break;
                }
                prev = now;
            }
            let got = client.counted.load(Ordering::Relaxed) - base;
            let last = client.last_event.lock().unwrap().unwrap_or_else(Instant::now);
            let secs = last.duration_since(start).as_secs_f64().max(1e-3);
            let lost = client.lost.load(Ordering::Relaxed);
            client.stop();
            let rate = got as f64 / secs;
            println!(
                "round {round} {name}: {got} events in {secs:.2} s = {rate:.0} events/s, lost reported {lost}"
            );
            rates[i].push(rate);
            lost_total[i] += lost;
            delivered_total[i] += got;
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let (local, remote) = (median(rates[0].clone()), median(rates[1].clone()));
    println!(
        "daemon: local median {local:.0} events/s (delivered {} of {}, lost {}), through the daemon {remote:.0} events/s \
         (delivered {} of {}, lost {}); ratio daemon/local {:.2}",
        delivered_total[0],
        count * rounds as u64,
        lost_total[0],
        delivered_total[1],
        count * rounds as u64,
        lost_total[1],
        remote / local
    );
    Ok(())
}

/// Stand-ins for running containers: processes in mount namespaces of their
/// own, recorded in the spool as ig-hook records them, so every ig learns
/// them at start-up. Removed on drop.
struct FakeContainers {
    children: Vec<Child>,
    ids: Vec<String>,
}

impl FakeContainers {
    fn start(n: usize) -> Result<Self> {
        let root = std::path::Path::new("/");
        let mut me = Self { children: Vec::new(), ids: Vec::new() };
        for i in 0..n {
            let child = Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sleep", "600"])
                .spawn()?;
            let pid = child.id();
            me.children.push(child);
            // Wait until unshare has exec'd sleep in its new namespace.
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim() != "sleep" {
                if Instant::now() > deadline {
                    bail!("fake container {i} did not start");
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let info = shared::procfs::process_info(root, pid)?;
            let id = format!("ig-bench-fake-{}-{i}", std::process::id());
            let runtime = shared::RuntimeMetadata {
                runtime_name: "runc".into(),
                container_id: id.clone(),
                container_name: id.clone(),
                container_image_name: String::new(),
            };
            let record = shared::ContainerRecord::new(runtime, Default::default(), pid, info);
            shared::spool::write(root, &record)?;
            me.ids.push(id);
        }
        Ok(me)
    }
}

impl Drop for FakeContainers {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = shared::spool::remove(std::path::Path::new("/"), id);
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Milliseconds from spawning `ig <args>` until it logs "tracing started".
fn time_to_started(args: &[&str]) -> Result<f64> {
    let spawned = Instant::now();
    let mut child = Command::new(tests::binary("ig"))
        .args(args)
        .arg("--auto-mount-filesystems")
        .env("IG_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let err = child.stderr.take().expect("stderr");
    let mut took = None;
    for line in BufReader::new(err).lines().map_while(Result::ok) {
        if line.contains("tracing started") {
            took = Some(spawned.elapsed().as_secs_f64() * 1000.0);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    took.context("ig never logged \"tracing started\"")
}

/// Milliseconds from spawning `ig <args> --host` until it has exited.
fn time_to_exit(args: &[&str]) -> Result<f64> {
    let spawned = Instant::now();
    let status = Command::new(tests::binary("ig"))
        .args(args)
        .args(["--host", "--auto-mount-filesystems"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "ig {} failed: {status}", args.join(" "));
    Ok(spawned.elapsed().as_secs_f64() * 1000.0)
}

fn gadget_startup(containers: usize, rounds: usize) -> Result<()> {
    tests::require_root();
    // Every gadget of the registry; a snapshot is timed until it has printed its table.
    let gadgets: Vec<tracer::gadgets::GadgetName> = tracer::gadgets::all();
    let mut results: Vec<[f64; 2]> = vec![[0.0; 2]; gadgets.len()];
    for (slot, n) in [0, containers].into_iter().enumerate() {
        let fakes = FakeContainers::start(n)?;
        for (i, g) in gadgets.iter().enumerate() {
            let mut times = Vec::new();
            for _ in 0..rounds {
                let args = [g.category.as_str(), g.name.as_str()];
                times.push(if g.category == "snapshot" {
                    time_to_exit(&args)?
                } else {
                    time_to_started(&args)?
                });
            }
            results[i][slot] = median(times);
        }
        drop(fakes);
    }
    println!(
        "== gadget start-up to \"tracing started\", median of {rounds}: with 0 / {containers} containers"
    );
    for (g, [zero, many]) in gadgets.iter().zip(&results) {
        println!("{:<24} {zero:6.0} ms  {many:6.0} ms", g.command());
    }
    Ok(())
}

/// The binaries' sizes (static, release if built so).
fn binary_sizes() -> Result<()> {
    println!("== binary sizes ({})", tests::target_dir().display());
    for name in ["ig", "gadgetctl", "ig-hook", "ig-nri"] {
        let len = std::fs::metadata(tests::binary(name))?.len();
        println!("{name:<10} {:6.1} MiB", len as f64 / (1 << 20) as f64);
    }
    Ok(())
}
