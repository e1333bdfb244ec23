//! `bench daemon`: events/s through `ig daemon` against a local run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::median;

use crate::storm::{OPEN_COMM, READY};

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
pub(crate) fn daemon_throughput(count: u64, rounds: usize) -> Result<()> {
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
