//! `bench startup` and `bench gadgets`: how long until a gadget traces.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::median;

/// Time from spawning `ig trace exec` to the first exec it reports.
pub(crate) fn startup(rounds: usize) -> Result<()> {
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

/// Stand-ins for running containers: processes in mount namespaces of their
/// own, recorded in the spool as ig-hook records them, so every ig learns
/// them at start-up. Removed on drop.
pub(crate) struct FakeContainers {
    children: Vec<Child>,
    pub(crate) ids: Vec<String>,
}

impl FakeContainers {
    pub(crate) fn start(n: usize) -> Result<Self> {
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

impl FakeContainers {
    /// The process of each, to run something in its mount namespace.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
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

/// `bench fakes --containers N`: N stand-in containers in the spool until
/// stdin closes, for profiling a tracer's start-up by hand (perf, strace).
pub(crate) fn hold_fakes(n: usize) -> Result<()> {
    let fakes = FakeContainers::start(n)?;
    println!("{} fake containers in the spool; close stdin (Ctrl-D) to remove them", fakes.ids.len());
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest);
    drop(fakes);
    Ok(())
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

pub(crate) fn gadget_startup(containers: usize, rounds: usize) -> Result<()> {
    tests::require_root();
    // Every gadget of the registry; a snapshot is timed until it has printed its table.
    // Those this kernel cannot run (as `ig check` says) are named, with
    // the reason, not timed.
    let check = Command::new(tests::binary("ig"))
        .args(["check", "-o", "json", "--auto-mount-filesystems"])
        .output()?;
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).context("ig check's report")?;
    let cannot = |g: &tracer::gadgets::GadgetName| {
        report["gadgets"].as_array().into_iter().flatten().find_map(|r| {
            (r["gadget"] == g.command().as_str() && r["ok"] != true)
                .then(|| r["error"].as_str().unwrap_or_default().to_string())
        })
    };
    let (missing, gadgets): (Vec<_>, Vec<_>) =
        tracer::gadgets::all().into_iter().partition(|g| cannot(g).is_some());
    for g in &missing {
        println!("{:<24} not on this kernel: {}", g.command(), cannot(g).unwrap_or_default());
    }
    let mut results: Vec<[f64; 2]> = vec![[0.0; 2]; gadgets.len()];
    for (slot, n) in [0, containers].into_iter().enumerate() {
        let fakes = FakeContainers::start(n)?;
        for (i, g) in gadgets.iter().enumerate() {
            let mut times = Vec::new();
            for _ in 0..rounds {
                let args = g.words();
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
