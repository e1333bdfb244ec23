//! `bench dns`: what `ig trace dns --host` costs the packets of the node.
//! Two workloads on loopback, in a private network namespace, with and
//! without the tracer, alternating: a UDP storm that is not DNS (what every
//! other packet pays: the tracepoints run on all of them) and a DNS storm
//! (queries answered by the tests' DNS server; each exchange is 4 events on
//! loopback: query and answer, each leaving and arriving).

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tests::dns_server::{self, DnsServer};

use crate::median;

const NAME: &str = "bench.dns.test";

/// Sends `count` datagrams to a socket of our own and reads each back.
fn udp_storm(netns: &std::path::Path, count: u64) -> Result<f64> {
    let netns = netns.to_path_buf();
    std::thread::spawn(move || -> Result<f64> {
        tests::join_netns(&netns);
        let rx = UdpSocket::bind("127.0.0.1:0")?;
        let tx = UdpSocket::bind("127.0.0.1:0")?;
        tx.connect(rx.local_addr()?)?;
        let (payload, mut buf) = ([7u8; 64], [0u8; 128]);
        let start = Instant::now();
        for _ in 0..count {
            tx.send(&payload)?;
            rx.recv(&mut buf)?;
        }
        Ok(start.elapsed().as_secs_f64())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("UDP storm thread panicked"))?
}

/// `count` queries to the server, one at a time.
fn dns_storm(netns: &std::path::Path, count: u64) -> Result<f64> {
    let netns = netns.to_path_buf();
    std::thread::spawn(move || -> Result<f64> {
        tests::join_netns(&netns);
        let s = UdpSocket::bind("127.0.0.1:0")?;
        s.connect("127.0.0.1:53")?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut buf = [0u8; 512];
        let start = Instant::now();
        for i in 0..count {
            s.send(&dns_server::query(i as u16, NAME, 1))?;
            s.recv(&mut buf).context("an answer")?;
        }
        Ok(start.elapsed().as_secs_f64())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("DNS storm thread panicked"))?
}

/// `ig trace dns --host -o json` counting the events of the storm.
struct Tracer {
    child: std::process::Child,
    events: Arc<AtomicU64>,
    lost: Arc<AtomicU64>,
}

impl Tracer {
    fn start() -> Result<Self> {
        let mut child = Command::new(tests::binary("ig"))
            .args(["trace", "dns", "--host", "-o", "json", "--auto-mount-filesystems"])
            .env("IG_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting ig")?;
        let (events, lost) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (e, l) = (events.clone(), lost.clone());
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::with_capacity(1 << 20, stdout).lines().map_while(Result::ok) {
                if line.contains(NAME) {
                    e.fetch_add(1, Ordering::Relaxed);
                } else if line.contains("\"lostEvents\"") {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    l.fetch_add(v["lostEvents"].as_u64().unwrap_or(0), Ordering::Relaxed);
                }
            }
        });
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        while stderr.read_line(&mut line)? > 0 {
            if line.contains("tracing started") {
                // Keep draining its log so that it never blocks on stderr.
                std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
                return Ok(Self { child, events, lost });
            }
            line.clear();
        }
        bail!("ig trace dns ended before tracing")
    }

    /// Lets it drain, stops it; events and losses it reported.
    fn stop(mut self) -> (u64, u64) {
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        (self.events.load(Ordering::Relaxed), self.lost.load(Ordering::Relaxed))
    }
}

pub fn run(count: u64, rounds: usize) -> Result<()> {
    tests::require_root();
    let server = DnsServer::start(None, "127.0.0.1");
    let queries = count / 10;
    println!(
        "== trace dns: {count} non-DNS UDP datagrams and {queries} DNS exchanges per run, {rounds} rounds"
    );
    let (mut udp, mut dns) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let (mut events, mut lost) = (0, 0);
    for round in 0..rounds {
        for traced in [false, true] {
            let tracer = if traced { Some(Tracer::start()?) } else { None };
            let u = udp_storm(&server.netns, count)?;
            let d = dns_storm(&server.netns, queries)?;
            if let Some(t) = tracer {
                let (e, l) = t.stop();
                events += e;
                lost += l;
            }
            println!("round {round} {}: UDP {u:.2} s, DNS {d:.2} s", if traced { "ig" } else { "baseline" });
            udp[usize::from(traced)].push(u);
            dns[usize::from(traced)].push(d);
        }
    }
    let (u0, u1) = (median(udp[0].clone()), median(udp[1].clone()));
    let (d0, d1) = (median(dns[0].clone()), median(dns[1].clone()));
    let expected = 4 * queries * rounds as u64;
    println!("non-DNS UDP: slowdown {:.2}x ({u0:.2} s -> {u1:.2} s)", u1 / u0);
    println!(
        "DNS: slowdown {:.2}x ({d0:.2} s -> {d1:.2} s), events {events} of {expected} expected ({:.2}%), lost reported {lost}",
        d1 / d0,
        100.0 * events as f64 / expected as f64
    );
    Ok(())
}
