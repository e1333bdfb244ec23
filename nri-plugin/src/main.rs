//! `ig-nri [--socket PATH] [--name NAME] [--idx NN]`: connects to containerd's
//! NRI socket and serves until killed, reconnecting with back-off whenever
//! containerd goes away (it re-creates the socket when it restarts).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use ig_nri::plugin::{PluginConfig, serve_forever};
use ig_nri::records::SpoolAndTracers;

const USAGE: &str = "usage: ig-nri [--socket /var/run/nri/nri.sock] [--name ig] [--idx 90] [-v]";

fn main() -> anyhow::Result<()> {
    let mut cfg = PluginConfig {
        socket: PathBuf::from("/var/run/nri/nri.sock"),
        name: "ig".into(),
        idx: "90".into(),
        root: shared::hookproto::host_root(),
    };
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--socket" => cfg.socket = PathBuf::from(args.next().context("--socket needs a path")?),
            "--name" => cfg.name = args.next().context("--name needs a value")?,
            "--idx" => cfg.idx = args.next().context("--idx needs a value")?,
            "-v" | "--verbose" => verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if cfg.idx.len() != 2 || !cfg.idx.bytes().all(|b| b.is_ascii_digit()) {
        bail!("--idx must be two digits, 00-99");
    }
    let level = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();

    let mut sink = SpoolAndTracers { root: cfg.root.clone(), deadline: Duration::from_millis(500) };
    serve_forever(&cfg, &mut sink)
}
