//! `bench peers`: ig beside libbpf-tools' opensnoop/execsnoop and bpftrace,
//! in one interleaved run, so the ratios are always side by side.
//!
//! Each tracer writes what it shows to a file, as a user redirecting its
//! output would (default buffering); delivered events are the lines of that
//! file that carry the workload's marker. The floor is `ig daemon
//! --metrics-address`, which counts the same events per mount namespace in
//! the kernel and shows nothing: what attaching alone costs.
//! Start-up is measured apart, with line-buffered output, as the time from
//! spawning the tracer to the first of a train of marker events it shows.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::median;
use crate::storm::OPEN_COMM;

const EXEC_ARG: &str = "ig-execloop-arg";
/// Files opened and programs' arguments that tell a tracer is up.
const MARK: &str = "ig-peers-mark";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    Open,
    Exec,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    /// `ig trace open|exec --host -o json`.
    Ig,
    /// libbpf-tools' opensnoop / execsnoop.
    LibbpfTools,
    /// bpftrace printing what opensnoop.bt / execsnoop.bt print.
    Bpftrace,
    /// `ig daemon --metrics-address`: the same events counted in the
    /// kernel (per-CPU, per mount namespace), nothing shown.
    Floor,
}

impl Peer {
    fn name(self, w: Workload) -> String {
        match (self, w) {
            (Peer::Ig, Workload::Open) => "ig trace open --host -o json".into(),
            (Peer::Ig, Workload::Exec) => "ig trace exec --host -o json".into(),
            (Peer::LibbpfTools, Workload::Open) => "libbpf-tools opensnoop".into(),
            (Peer::LibbpfTools, Workload::Exec) => "libbpf-tools execsnoop".into(),
            (Peer::Bpftrace, _) => "bpftrace one-liner".into(),
            (Peer::Floor, _) => "floor: ig's in-kernel count only".into(),
        }
    }

    /// The command; `line_buffered` for the start-up measurement.
    fn command(self, w: Workload, line_buffered: bool) -> Command {
        match self {
            Peer::Ig => {
                let mut c = Command::new(tests::binary("ig"));
                let gadget = if w == Workload::Open { "open" } else { "exec" };
                c.args(["trace", gadget, "--host", "-o", "json", "--auto-mount-filesystems"])
                    .env("IG_LOG", "info");
                c
            }
            Peer::LibbpfTools => {
                let tool = if w == Workload::Open { "opensnoop" } else { "execsnoop" };
                if line_buffered {
                    // C stdio buffers a file or pipe in 4 KiB blocks.
                    let mut c = Command::new("stdbuf");
                    c.args(["-oL", tool]);
                    c
                } else {
                    Command::new(tool)
                }
            }
            Peer::Bpftrace => {
                let prog = match w {
                    Workload::Open => {
                        "tracepoint:syscalls:sys_enter_openat { @f[tid] = args->filename; } \
                         tracepoint:syscalls:sys_exit_openat /@f[tid]/ { \
                         printf(\"%d %s %d %s\\n\", pid, comm, args->ret, str(@f[tid])); delete(@f[tid]); }"
                    }
                    Workload::Exec => {
                        "tracepoint:syscalls:sys_enter_execve { printf(\"%d %s \", pid, comm); join(args->argv); }"
                    }
                };
                let mut c = Command::new("bpftrace");
                c.args(["-B", if line_buffered { "line" } else { "full" }, "-e", prog]);
                c
            }
            Peer::Floor => {
                let dir = std::env::temp_dir().join(format!("ig-bench-floor-{}", std::process::id()));
                let mut c = Command::new(tests::binary("ig"));
                c.args(["daemon", "--auto-mount-filesystems", "--metrics-address", "127.0.0.1:0", "-H"])
                    .arg(format!("unix://{}/ig.sock", dir.display()))
                    .arg("--state-dir")
                    .arg(dir.join("state"))
                    .env("IG_LOG", "info");
                c
            }
        }
    }

    fn available(self) -> bool {
        let probe = match self {
            Peer::Ig => return true,
            Peer::LibbpfTools => Command::new("opensnoop").arg("--usage").output(),
            Peer::Floor => return true,
            Peer::Bpftrace => Command::new("bpftrace").arg("--version").output(),
        };
        probe.is_ok_and(|o| o.status.success())
    }
}

/// One marker event: an open of a file, or an exec, named `MARK-n`.
fn mark(w: Workload, n: usize) -> Result<()> {
    let name = format!("{MARK}-{n}");
    match w {
        Workload::Exec => drop(Command::new("/bin/true").arg(&name).status()?),
        Workload::Open => drop(std::fs::File::open(format!("/tmp/{name}"))),
    }
    Ok(())
}

/// A tracer whose output goes to a file and whose stderr is read for its
/// lost-event reports.
struct Running {
    child: Child,
    out: PathBuf,
    lost: Arc<AtomicU64>,
    /// The floor's metrics address, once its daemon is ready.
    ready: std::sync::mpsc::Receiver<String>,
    metrics: std::cell::OnceCell<String>,
    stderr_reader: JoinHandle<()>,
}

impl Running {
    fn spawn(peer: Peer, w: Workload, line_buffered: bool, out: &Path) -> Result<Self> {
        let file = std::fs::File::create(out)?;
        let mut child = peer
            .command(w, line_buffered)
            .stdout(file)
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", peer.name(w)))?;
        let err = child.stderr.take().context("stderr")?;
        let lost = Arc::new(AtomicU64::new(0));
        let l = lost.clone();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let stderr_reader = std::thread::spawn(move || {
            let mut metrics = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(i) = line.find("metrics at http://") {
                    let rest = &line[i + "metrics at http://".len()..];
                    metrics = rest.split("/metrics").next().unwrap_or_default().to_string();
                } else if line.contains("daemon ready") {
                    let _ = ready_tx.send(metrics.clone());
                }
                // ig: "tracing stopped ... lost=N"; libbpf-tools: "Lost N events on CPU #c!";
                // bpftrace: "Lost N events".
                if let Some(v) = line.split("lost=").nth(1).and_then(|v| v.split_whitespace().next()) {
                    l.fetch_add(v.parse().unwrap_or(0), Ordering::Relaxed);
                } else if line.contains("Lost ") {
                    let n = line.split_whitespace().find_map(|w| w.parse::<u64>().ok()).unwrap_or(0);
                    l.fetch_add(n, Ordering::Relaxed);
                }
            }
        });
        Ok(Self { child, out: out.to_path_buf(), lost, ready, metrics: Default::default(), stderr_reader })
    }

    /// The first marker number in the output so far.
    fn first_mark(&self) -> Option<usize> {
        let text = std::fs::read_to_string(&self.out).ok()?;
        let pos = text.find(&format!("{MARK}-"))?;
        let digits: String = text[pos + MARK.len() + 1..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    /// Fires markers until one shows; returns the time since `since` at
    /// which the marker that showed was fired.
    fn wait_shown(&self, w: Workload, peer: Peer, since: Instant, every: Duration) -> Result<Duration> {
        if peer == Peer::Floor {
            // It shows nothing: ready is when the daemon says it counts.
            let addr = self
                .ready
                .recv_timeout(Duration::from_secs(60))
                .context("the floor's daemon never got ready")?;
            let _ = self.metrics.set(addr);
            return Ok(since.elapsed());
        }
        let mut fired = Vec::new();
        loop {
            fired.push(since.elapsed());
            mark(w, fired.len() - 1)?;
            if let Some(n) = self.first_mark() {
                return fired.get(n).copied().context("a marker that was never fired");
            }
            if since.elapsed() > Duration::from_secs(60) {
                bail!("{} showed no marker within 60 s", peer.name(w));
            }
            std::thread::sleep(every);
        }
    }

    /// Stops with SIGINT; delivered (lines with `needle`), lost, CPU s, peak RSS KiB.
    fn stop(self, needle: &str) -> Result<(u64, u64, f64, i64)> {
        let usage = crate::storm::interrupt_and_reap(&self.child)?;
        let _ = self.stderr_reader.join();
        let mut delivered = 0;
        let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(&self.out)?);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line)? > 0 {
            if line.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                delivered += 1;
            }
            line.clear();
        }
        Ok((delivered, self.lost.load(Ordering::Relaxed), usage.cpu_s, usage.max_rss_kb))
    }
}

/// The floor's count so far: the sum of one family over every series.
fn floor_count(metrics: &str, family: &str) -> Result<u64> {
    let (text, _) = crate::instances::scrape(metrics)?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

#[derive(Default)]
struct Row {
    secs: Vec<f64>,
    delivered: u64,
    lost: u64,
    cpu: Vec<f64>,
    rss_kb: i64,
    startup_ms: Vec<f64>,
}

fn workload_run(w: Workload, count: u64) -> Result<f64> {
    let sub = if w == Workload::Open { "openloop" } else { "execloop" };
    let start = Instant::now();
    let status =
        Command::new(std::env::current_exe()?).args([sub, "--count", &count.to_string()]).status()?;
    anyhow::ensure!(status.success(), "the {sub} workload failed");
    Ok(start.elapsed().as_secs_f64())
}

fn compare(w: Workload, count: u64, rounds: usize, peers: &[Peer]) -> Result<()> {
    let out = std::env::temp_dir().join(format!("ig-bench-peers-{}", std::process::id()));
    let needle = if w == Workload::Open { OPEN_COMM } else { EXEC_ARG };
    let mut base = Vec::new();
    let mut rows: Vec<Row> = peers.iter().map(|_| Row::default()).collect();
    for round in 0..rounds {
        base.push(workload_run(w, count)?);
        for (i, peer) in peers.iter().enumerate() {
            let t = Running::spawn(*peer, w, false, &out)?;
            t.wait_shown(w, *peer, Instant::now(), Duration::from_millis(100))?;
            let family = if w == Workload::Open {
                "ig_container_file_opens_total"
            } else {
                "ig_container_execs_total"
            };
            let before = if *peer == Peer::Floor {
                floor_count(t.metrics.get().context("no metrics address")?, family)?
            } else {
                0
            };
            let secs = workload_run(w, count)?;
            // Let the tracer drain what is still in flight.
            std::thread::sleep(Duration::from_millis(500));
            let counted = if *peer == Peer::Floor {
                floor_count(t.metrics.get().context("no metrics address")?, family)? - before
            } else {
                0
            };
            let (mut delivered, lost, cpu, rss) = t.stop(needle)?;
            if *peer == Peer::Floor {
                // Counted in the kernel, not shown (host noise included).
                delivered = counted;
            }
            let _ = std::fs::remove_file(&out);
            println!(
                "round {round} {}: {secs:.2} s (baseline {:.2} s), delivered {delivered}, lost {lost}, cpu {cpu:.2} s, peak rss {rss} KiB",
                peer.name(w),
                base[round]
            );
            let r = &mut rows[i];
            r.secs.push(secs);
            r.delivered += delivered;
            r.lost += lost;
            r.cpu.push(cpu);
            r.rss_kb = r.rss_kb.max(rss);
        }
    }
    for (i, peer) in peers.iter().enumerate() {
        for _ in 0..rounds {
            let spawned = Instant::now();
            let t = Running::spawn(*peer, w, true, &out)?;
            let took = t.wait_shown(w, *peer, spawned, Duration::from_millis(1))?;
            t.stop(needle)?;
            rows[i].startup_ms.push(took.as_secs_f64() * 1000.0);
        }
    }
    let base = median(base);
    let what = if w == Workload::Open { "open storm" } else { "exec storm" };
    println!(
        "\n== {what}: {count} per run, {rounds} interleaved rounds, output to a file; baseline median {base:.2} s"
    );
    println!(
        "| tracer | {what} slowdown | delivered / lost | tracer CPU | peak RSS | start-up |\n|---|---|---|---|---|---|"
    );
    let expected = count * rounds as u64;
    for (peer, r) in peers.iter().zip(&rows) {
        let slow: Vec<f64> = r.secs.iter().map(|s| s / base).collect();
        let lo = slow.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = slow.iter().copied().fold(0.0, f64::max);
        let delivered = if *peer == Peer::Floor {
            format!("{:.2}% counted, not shown", 100.0 * r.delivered as f64 / expected as f64)
        } else {
            format!("{:.2}% / {}", 100.0 * r.delivered as f64 / expected as f64, r.lost)
        };
        println!(
            "| {} | {:.2}x ({lo:.2}–{hi:.2}) | {delivered} | {:.2} s | {:.1} MiB | {:.0} ms |",
            peer.name(w),
            median(slow.clone()),
            median(r.cpu.clone()),
            r.rss_kb as f64 / 1024.0,
            median(r.startup_ms.clone())
        );
    }
    Ok(())
}

/// `bench peers`: the open storm and the exec storm under each tracer.
pub(crate) fn run(open_count: u64, exec_count: u64, rounds: usize) -> Result<()> {
    tests::require_root();
    let mut peers = Vec::new();
    for p in [Peer::Ig, Peer::LibbpfTools, Peer::Bpftrace, Peer::Floor] {
        if p.available() {
            peers.push(p);
        } else {
            println!(
                "{}: not installed (Debian's libbpf-tools / bpftrace packages), left out",
                p.name(Workload::Open)
            );
        }
    }
    compare(Workload::Open, open_count, rounds, &peers)?;
    compare(Workload::Exec, exec_count, rounds, &peers)?;
    Ok(())
}
