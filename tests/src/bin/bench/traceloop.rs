//! `bench traceloop`: what the flight recorder costs a process that makes
//! syscalls as fast as it can (the open storm: open + close of /dev/null),
//! recorded (ig traceloop selecting it) against not traced, interleaved;
//! and how long the dump of its rings takes when stopped.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::median;
use crate::storm::OPEN_COMM;

fn storm(count: u64) -> Result<f64> {
    let t = Instant::now();
    let status =
        Command::new(std::env::current_exe()?).args(["openloop", "--count", &count.to_string()]).status()?;
    if !status.success() {
        bail!("the open loop failed");
    }
    Ok(t.elapsed().as_secs_f64())
}

/// One storm under `ig traceloop --host --comm ig-openloop`: its time, and
/// the time from SIGINT to ig's exit (the dump of every ring it kept).
fn recorded(count: u64) -> Result<(f64, f64, usize)> {
    let mut ig = Command::new(tests::binary("ig"))
        .args(["traceloop", "--host", "--comm", OPEN_COMM, "-o", "json", "--auto-mount-filesystems"])
        .env("IG_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting ig traceloop")?;
    let mut err = BufReader::new(ig.stderr.take().context("stderr")?);
    let mut line = String::new();
    while !line.contains("tracing started") {
        line.clear();
        if err.read_line(&mut line)? == 0 {
            bail!("ig traceloop ended before tracing");
        }
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let out = ig.stdout.take().context("stdout")?;
    let lines = std::thread::spawn(move || BufReader::new(out).lines().count());
    let took = storm(count)?;
    let stop = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(ig.id() as i32), nix::sys::signal::SIGINT)?;
    ig.wait()?;
    let dump = stop.elapsed().as_secs_f64();
    let calls = lines.join().map_err(|_| anyhow::anyhow!("reader"))?;
    Ok((took, dump, calls))
}

pub(crate) fn traceloop_cost(count: u64, rounds: usize) -> Result<()> {
    let (mut base, mut traced, mut dumps, mut shown) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..rounds {
        base.push(storm(count)?);
        let (t, d, n) = recorded(count)?;
        traced.push(t);
        dumps.push(d);
        shown = n;
        std::thread::sleep(Duration::from_millis(200));
    }
    let (b, t) = (median(base), median(traced));
    let syscalls = 2.0 * count as f64;
    println!("== traceloop: {count} open+close ({syscalls:.0} syscalls), median of {rounds}");
    println!("not traced      {:8.3} s  {:6.0} ns/syscall", b, b / syscalls * 1e9);
    println!(
        "recorded        {:8.3} s  {:6.0} ns/syscall  ({:.2}x, +{:.0} ns per syscall)",
        t,
        t / syscalls * 1e9,
        t / b,
        (t - b) / syscalls * 1e9
    );
    println!("stop and dump   {:8.0} ms  ({shown} calls shown)", median(dumps) * 1e3);
    Ok(())
}
