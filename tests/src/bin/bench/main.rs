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
//! instances: `ig daemon --metrics-address` with `--containers` (100)
//! stand-in containers that each exec, and 5 headless instances: the
//! daemon's RSS idle and with them, and how long a scrape takes.
//! `--storm-containers N` keeps N stand-ins known during open/exec.
//! peers: the open and exec storms under ig, libbpf-tools' opensnoop /
//! execsnoop, bpftrace and an in-kernel-count floor, interleaved, as one
//! table (slowdown, delivered/lost, CPU, peak RSS, start-up).
//! daemon: events/s that `gadgetctl trace open -o json` receives through
//! `ig daemon` vs `ig trace open -o json` locally, on the open storm.
//!
//! Run it as root from a release build:
//! `cargo run --release -p tests --bin bench -- all`

mod daemon;
mod dns;
mod hook;
mod instances;
mod nri;
mod peers;
mod sizes;
mod ssl;
mod startup;
mod storm;
mod traceloop;

use anyhow::{Result, bail};

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
    // Stand-in containers known to ig during the storms.
    let containers = flag("--storm-containers", 0) as usize;
    match args.first().map(String::as_str) {
        // workloads, run as children of the bench
        Some("openloop") => storm::open_loop(flag("--count", 1_000_000)),
        Some("execloop") => storm::exec_loop(flag("--count", 5_000)),
        Some("peers") => peers::run(flag("--open-count", 1_000_000), flag("--exec-count", 5_000), rounds),
        Some("open") => storm::storm(storm::Storm::Open, flag("--count", 1_000_000), rounds, containers),
        Some("exec") => storm::storm(storm::Storm::Exec, flag("--count", 5_000), rounds, containers),
        Some("instances") => instances::run(flag("--containers", 100) as usize, rounds),
        Some("startup") => startup::startup(rounds),
        Some("hook") => hook::hook_cost(flag("--count", 50) as usize),
        Some("nri") => nri::nri_cost(flag("--count", 30) as usize),
        Some("daemon") => daemon::daemon_throughput(flag("--count", 1_000_000), rounds),
        Some("gadgets") => startup::gadget_startup(flag("--containers", 100) as usize, rounds),
        Some("dns") => dns::run(flag("--count", 1_000_000), rounds),
        Some("fakes") => startup::hold_fakes(flag("--containers", 1000) as usize),
        Some("all") => {
            storm::storm(storm::Storm::Open, flag("--open-count", 1_000_000), rounds, containers)?;
            storm::storm(storm::Storm::Exec, flag("--exec-count", 5_000), rounds, containers)?;
            startup::startup(rounds)?;
            hook::hook_cost(flag("--hook-count", 50) as usize)?;
            nri::nri_cost(flag("--nri-count", 30) as usize)?;
            daemon::daemon_throughput(flag("--open-count", 1_000_000), rounds)?;
            startup::gadget_startup(flag("--containers", 100) as usize, rounds)?;
            dns::run(flag("--udp-count", 1_000_000), rounds)?;
            instances::run(flag("--containers", 100) as usize, rounds)?;
            traceloop::traceloop_cost(flag("--open-count", 1_000_000), rounds)?;
            ssl::ssl_cost(flag("--ssl-count", 200_000), rounds)?;
            peers::run(flag("--open-count", 1_000_000), flag("--exec-count", 5_000), rounds)?;
            sizes::binary_sizes()
        }
        Some("sizes") => sizes::binary_sizes(),
        Some("traceloop") => traceloop::traceloop_cost(flag("--count", 1_000_000), rounds),
        Some("ssl") => ssl::ssl_cost(flag("--count", 200_000), rounds),
        _ => {
            bail!(
                "usage: bench open|exec|startup|hook|nri|daemon|gadgets|dns|instances|traceloop|ssl|peers|sizes|fakes|all [--rounds N] [--count N] [--storm-containers N] [--containers N]"
            )
        }
    }
}

/// The middle value (NaN for none).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}
