//! `bench open` and `bench exec`: the storms, with no tracer, with ig and with bpftrace, interleaved.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::median;

pub(crate) const OPEN_COMM: &str = "ig-openloop";
const EXEC_COMM: &str = "ig-execloop";
const EXEC_ARG: &str = "ig-execloop-arg";
pub(crate) const READY: &str = "ig-bench-ready";

fn set_comm(name: &str) {
    let c = std::ffi::CString::new(name).expect("comm");
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr()) };
}

pub(crate) fn open_loop(count: u64) -> Result<()> {
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

pub(crate) fn exec_loop(count: u64) -> Result<()> {
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
pub(crate) enum Storm {
    Open,
    Exec,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Variant {
    Baseline,
    Ig,
    /// ig with `--metrics-address`: what counting per container costs.
    IgMetrics,
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

pub(crate) struct Usage {
    pub(crate) cpu_s: f64,
    pub(crate) max_rss_kb: i64,
}

impl Tracer {
    fn start(variant: Variant, storm: Storm) -> Result<Self> {
        let mut cmd = match variant {
            Variant::Ig | Variant::IgMetrics => {
                // As users run it: JSON to /dev/null. What it received is
                // read from its own stop log line (IG_LOG=info).
                let mut c = Command::new(tests::binary("ig"));
                let gadget = if storm == Storm::Open { "open" } else { "exec" };
                c.args(["trace", gadget, "--host", "-o", "json", "--auto-mount-filesystems"])
                    .env("IG_LOG", "info");
                if variant == Variant::IgMetrics {
                    c.args(["--metrics-address", "127.0.0.1:0"]);
                }
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
        let mut child = if matches!(variant, Variant::Ig | Variant::IgMetrics) {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()
        }
        .context("starting tracer")?;
        let stdout: Box<dyn std::io::Read + Send> = match variant {
            Variant::Ig | Variant::IgMetrics => Box::new(child.stderr.take().expect("stderr")),
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
        let usage = interrupt_and_reap(&self.child)?;
        let _ = self.reader.join();
        Ok((self.counted.load(Ordering::Relaxed), self.lost.load(Ordering::Relaxed), usage))
    }
}

/// Stops a tracer child with SIGINT and reaps it: its CPU time and peak RSS.
pub(crate) fn interrupt_and_reap(child: &Child) -> Result<Usage> {
    let pid = child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by wait4.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: reaping our own child into our own buffers.
    if unsafe { libc::wait4(pid, &mut status, 0, &mut ru) } != pid {
        bail!("wait4 on the tracer failed");
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Usage { cpu_s: tv(ru.ru_utime) + tv(ru.ru_stime), max_rss_kb: ru.ru_maxrss })
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
/// `containers`: stand-in containers known to every ig meanwhile (the
/// metrics variant then labels and keeps series for them).
pub(crate) fn storm(storm: Storm, count: u64, rounds: usize, containers: usize) -> Result<()> {
    tests::require_root();
    let _fakes = crate::startup::FakeContainers::start(containers)?;
    let mut variants = vec![Variant::Baseline, Variant::Ig, Variant::IgMetrics];
    let has_bpftrace = Command::new("bpftrace").arg("--version").output().is_ok_and(|o| o.status.success());
    if has_bpftrace {
        variants.push(Variant::Bpftrace);
    }
    let what = if storm == Storm::Open { "open+close pairs" } else { "fork+exec of /bin/true" };
    println!(
        "== {what}: {count} per run, {rounds} rounds, {containers} containers known, variants {variants:?}"
    );
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
            if *v != Variant::Bpftrace {
                ", ig counts every event it received, host noise included"
            } else {
                ""
            },
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
    if let (Some((_, ig)), Some((_, with))) =
        (ratios.iter().find(|r| r.0 == Variant::Ig), ratios.iter().find(|r| r.0 == Variant::IgMetrics))
    {
        println!("metrics on / off slowdown ratio: {:.3}", with / ig);
    }
    Ok(())
}
