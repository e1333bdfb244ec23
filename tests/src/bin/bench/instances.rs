//! `bench instances`: `ig daemon` with Prometheus metrics, many containers
//! with series, and five headless instances: what it holds in memory and
//! how long a scrape takes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::median;
use crate::startup::FakeContainers;

/// The headless instances: the gadgets a node runs all the time.
const INSTANCES: [&[&str]; 5] =
    [&["trace", "exec"], &["trace", "open"], &["trace", "signal"], &["trace", "oomkill"], &["trace", "tcp"]];

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

/// One `GET /metrics`: the body and how long it took, connect to last byte.
pub(crate) fn scrape(addr: &str) -> Result<(String, Duration)> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    write!(s, "GET /metrics HTTP/1.0\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let took = started.elapsed();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).context("no HTTP body")?;
    Ok((body, took))
}

/// The daemon under measure: stopped (SIGTERM, then waited for) however the
/// bench ends, an error or a panic included, so no daemon is left running.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child, which is not yet waited for.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

pub(crate) fn run(containers: usize, rounds: usize) -> Result<()> {
    tests::require_root();
    let fakes = FakeContainers::start(containers)?;
    let dir = std::env::temp_dir().join(format!("ig-bench-instances-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let address = format!("unix://{}/ig.sock", dir.display());
    let mut daemon = Daemon(
        Command::new(tests::binary("ig"))
            .args(["daemon", "--auto-mount-filesystems", "-H", &address, "--metrics-address", "127.0.0.1:0"])
            .arg("--state-dir")
            .arg(dir.join("state"))
            .env("IG_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("ig daemon")?,
    );
    let pid = daemon.0.id();
    let err = daemon.0.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
            if let Some(i) = line.find("metrics at http://") {
                let rest = &line[i + "metrics at http://".len()..];
                let _ = tx.send(rest.split("/metrics").next().unwrap_or_default().to_string());
            } else if line.contains("daemon ready") {
                let _ = tx.send(String::new());
            }
        }
    });
    let metrics = rx.recv_timeout(Duration::from_secs(60)).context("no metrics address")?;
    rx.recv_timeout(Duration::from_secs(60)).context("the daemon did not start")?;
    std::thread::sleep(Duration::from_millis(500));
    let idle_kb = status_kb(pid, "VmRSS:");

    let gadgetctl = |args: &[&str]| -> Result<String> {
        let out = Command::new(tests::binary("gadgetctl"))
            .args(["--remote-address", &address])
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        ensure!(out.status.success(), "gadgetctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let started = Instant::now();
    for (i, gadget) in INSTANCES.iter().enumerate() {
        let file = dir.join(format!("instance-{i}.json"));
        let mut args = vec!["run", "--detach"];
        args.extend_from_slice(gadget);
        args.extend(["--output-file", file.to_str().unwrap()]);
        gadgetctl(&args)?;
    }
    let start_all = started.elapsed();

    // An exec in each container: each gets its series.
    let mut execs = 0;
    for p in fakes.pids() {
        let status = Command::new("nsenter")
            .arg(format!("--mount=/proc/{p}/ns/mnt"))
            .arg("/bin/true")
            .status()
            .context("nsenter")?;
        ensure!(status.success(), "nsenter into {p}");
        execs += 1;
    }
    // Published once a second.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (body, _) = scrape(&metrics)?;
        let series = body
            .lines()
            .filter(|l| l.starts_with("ig_container_execs_total{") && !l.contains("container=\"\""))
            .count();
        if series >= containers {
            break body;
        }
        if Instant::now() > deadline {
            bail!("only {series} of {containers} containers' series after 30 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let with_instances_kb = status_kb(pid, "VmRSS:");
    let mut times = Vec::new();
    for _ in 0..(rounds * 20).max(50) {
        times.push(scrape(&metrics)?.1.as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let p95 = times[times.len() * 95 / 100];
    let peak_kb = status_kb(pid, "VmHWM:");
    let samples = body.lines().filter(|l| !l.starts_with('#')).count();

    drop(daemon);
    let _ = std::fs::remove_dir_all(&dir);
    drop(fakes);

    println!(
        "== ig daemon, --metrics-address, {containers} containers each with series, 5 headless instances"
    );
    println!(
        "instances {:?} started in {:.0} ms (each answered once tracing)",
        INSTANCES.map(|g| g.join(" ")),
        start_all.as_secs_f64() * 1000.0
    );
    println!("{execs} execs in the containers; a scrape is {} bytes, {samples} samples", body.len());
    println!(
        "scrape: median {:.2} ms, p95 {p95:.2} ms, max {:.2} ms over {} scrapes",
        median(times.clone()),
        times.last().copied().unwrap_or(f64::NAN),
        times.len()
    );
    println!(
        "daemon RSS: idle {:.1} MB, with 5 instances {:.1} MB, peak {:.1} MB",
        idle_kb as f64 / 1024.0,
        with_instances_kb as f64 / 1024.0,
        peak_kb as f64 / 1024.0
    );
    Ok(())
}
