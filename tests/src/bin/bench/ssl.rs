//! `bench ssl`: what trace ssl costs a program that writes over TLS as
//! fast as it can: Python's ssl module (the host's libssl) writing N
//! 64-byte records to a local TLS server, traced (`ig trace ssl --host
//! --comm ig-sslstorm`) against not traced, interleaved; and whether every
//! write was delivered.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::median;

const COMM: &str = "ig-sslstorm";

/// Prints the seconds its writes took. The certificate is made once.
const STORM: &str = r#"
import ctypes, os, socket, ssl, subprocess, sys, threading, time
ctypes.CDLL(None).prctl(15, b"ig-sslstorm", 0, 0, 0)
n, d = int(sys.argv[1]), sys.argv[2]
key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
if not os.path.exists(crt):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=bench", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); sctx.load_cert_chain(crt, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); cctx.check_hostname = False; cctx.verify_mode = ssl.CERT_NONE
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
def serve():
    c, _ = ls.accept(); s = sctx.wrap_socket(c, server_side=True)
    while s.recv(65536): pass
t = threading.Thread(target=serve); t.start()
c = cctx.wrap_socket(socket.create_connection(ls.getsockname()))
buf = b"x" * 64
start = time.perf_counter()
for _ in range(n): c.write(buf)
took = time.perf_counter() - start
c.close(); t.join()
print(took)
"#;

fn storm(count: u64, dir: &str) -> Result<f64> {
    let out = Command::new("python3").args(["-c", STORM, &count.to_string(), dir]).output()?;
    if !out.status.success() {
        bail!("the TLS write loop failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().context("the loop's time")
}

/// One storm traced: its time, the writes ig showed, the losses it warned of.
fn traced(count: u64, dir: &str) -> Result<(f64, usize, usize)> {
    let mut ig = Command::new(tests::binary("ig"))
        .args(["trace", "ssl", "--host", "--comm", COMM, "--max-bytes", "64", "-o", "json"])
        .arg("--auto-mount-filesystems")
        .env("IG_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting ig trace ssl")?;
    let mut err = BufReader::new(ig.stderr.take().context("stderr")?);
    let mut line = String::new();
    while !line.contains("tracing started") {
        line.clear();
        if err.read_line(&mut line)? == 0 {
            bail!("ig trace ssl ended before tracing");
        }
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let out = ig.stdout.take().context("stdout")?;
    let lines = std::thread::spawn(move || {
        let (mut writes, mut warnings) = (0, 0);
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if l.contains(r#""direction":"write""#) {
                writes += 1;
            } else if l.contains(r#""type":"warn""#) {
                warnings += 1;
            }
        }
        (writes, warnings)
    });
    let took = storm(count, dir)?;
    std::thread::sleep(Duration::from_millis(300)); // the last events drained
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(ig.id() as i32), nix::sys::signal::SIGINT)?;
    ig.wait()?;
    let (writes, warnings) = lines.join().map_err(|_| anyhow::anyhow!("reader"))?;
    Ok((took, writes, warnings))
}

pub(crate) fn ssl_cost(count: u64, rounds: usize) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("ig-bench-ssl-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let d = dir.to_str().context("temp dir")?;
    storm(1000, d)?; // the certificate, and a warm cache
    let (mut base, mut with, mut delivered, mut warned) = (Vec::new(), Vec::new(), 0, 0);
    for _ in 0..rounds {
        base.push(storm(count, d)?);
        let (t, w, l) = traced(count, d)?;
        with.push(t);
        delivered = w;
        warned += l;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (b, t) = (median(base), median(with));
    println!("== ssl: {count} TLS writes of 64 bytes (Python ssl, the host's libssl), median of {rounds}");
    println!("not traced      {:8.3} s  {:6.0} ns/write", b, b / count as f64 * 1e9);
    println!(
        "traced          {:8.3} s  {:6.0} ns/write  ({:.2}x, +{:.0} ns per write)",
        t,
        t / count as f64 * 1e9,
        t / b,
        (t - b) / count as f64 * 1e9
    );
    println!(
        "delivered       {delivered} of {count} writes in the last round; {warned} loss warnings in all"
    );
    Ok(())
}
