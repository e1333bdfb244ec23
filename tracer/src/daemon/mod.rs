//! `ig daemon`: owns the container collection (ig-hook, ig-nri and the
//! fanotify watcher feed it; the spool and the runtime APIs at start-up) and
//! runs gadgets for `gadgetctl` clients, each on a thread of its own, over a
//! unix socket (root:group 0660 in a 0710 directory) and/or TCP with mutual
//! TLS. A client that goes away stops its gadget and frees its eBPF
//! programs and maps; other clients are not touched. Headless instances
//! (instances.rs) run with no client and survive restarts.

pub mod conn;
pub mod dns_counter;
pub mod instances;
pub mod listen;
pub mod nri;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser};
use shared::daemonproto::Address;

use crate::cli::GadgetCommand;
use crate::collection::Collection;
use crate::io::RunIo;
use crate::metrics::Metrics;
use crate::sources::{self, SourceOptions};
use instances::{Instances, Runner};

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Where to listen: unix:///path or tcp://IP:PORT (repeatable).
    #[arg(short = 'H', long = "host", default_value = shared::daemonproto::DEFAULT_ADDRESS)]
    pub hosts: Vec<String>,

    /// Group (name or gid) whose members may use the unix socket.
    #[arg(short = 'G', long = "group", default_value = "0")]
    pub group: String,

    /// Server certificate (PEM) for tcp://.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// Server private key (PEM) for tcp://.
    #[arg(long)]
    pub tls_key_file: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to.
    #[arg(long)]
    pub tls_client_ca_file: Option<PathBuf>,
    /// Allow tcp:// without TLS: anyone who can reach the port can trace this node.
    #[arg(long)]
    pub insecure: bool,

    /// Also run the containerd NRI plugin, on this NRI socket (e.g. /var/run/nri/nri.sock).
    #[arg(long)]
    pub nri_socket: Option<PathBuf>,
    /// Where headless instances are kept, to resume them after a restart.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/ig")]
    pub state_dir: PathBuf,

    /// Serve Prometheus metrics at http://ADDR/metrics: what every gadget
    /// the daemon runs counts, and its own health (e.g. 127.0.0.1:2224).
    #[arg(long, value_name = "ADDR")]
    pub metrics_address: Option<std::net::SocketAddr>,
    /// How long a gone container's metrics stay: 300, 90s, 5m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::cli::parse_duration)]
    pub metrics_expiry: std::time::Duration,
    /// Export the daemon's metrics (those of --metrics-address, which it
    /// does not need) as OTLP metrics over gRPC to this collector, e.g.
    /// http://127.0.0.1:4317. Gadget runs export their events with their own flag.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// How often the metrics go to --otlp-endpoint: 10s, 1m...
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::cli::parse_duration, requires = "otlp_endpoint")]
    pub otlp_metrics_interval: std::time::Duration,

    /// The plugin's NRI index (two digits).
    #[arg(long, default_value = "91", value_parser = parse_nri_idx)]
    pub nri_idx: String,
}

fn parse_nri_idx(s: &str) -> Result<String, String> {
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err("two digits, 00-99".into())
    }
}

/// What a client may ask for: the gadget commands, parsed exactly as `ig`
/// parses them.
#[derive(Debug, Parser)]
#[command(name = "ig", disable_version_flag = true)]
pub struct RemoteCli {
    #[command(subcommand)]
    pub command: GadgetCommand,
}

/// What every connection shares.
pub struct Context {
    pub runner: Runner,
    pub instances: Arc<Instances>,
}

/// Runs `command` on a thread of its own (its own current-thread runtime:
/// a busy gadget never holds up the connections); `done` gets how it ended.
pub fn spawn_command(
    command: GadgetCommand,
    runner: &Runner,
    io: RunIo,
    thread_name: &str,
    done: Box<dyn FnOnce(Result<(), String>) + Send>,
) -> std::io::Result<()> {
    let (root, collection, metrics) =
        (runner.root.clone(), runner.collection.clone(), runner.metrics.clone());
    std::thread::Builder::new().name(thread_name.into()).spawn(move || {
        let result = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => {
                rt.block_on(command.execute(&root, &collection, metrics, io)).map_err(|e| format!("{e:#}"))
            }
            Err(e) => Err(format!("daemon: {e}")),
        };
        done(result);
    })?;
    Ok(())
}

/// Keeps the daemon's OTLP exporter: says when exports fail (nobody else
/// would: there is no gadget run to report it) and flushes it on stop.
fn otlp_watch(
    mut exporter: crate::otlp::Exporter,
    interval: std::time::Duration,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval.max(std::time::Duration::from_secs(1)));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Some((_, failures, why)) = exporter.new_trouble() {
                        tracing::warn!(failures, "OTLP metrics exports failed, retrying: {why}");
                    }
                }
                _ = &mut stop_rx => break,
            }
        }
        exporter.finish().await;
    });
    (stop_tx, task)
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn serve(args: DaemonArgs, opts: SourceOptions) -> anyhow::Result<()> {
    let collection = Collection::new();
    let _sources = sources::start(&opts, &collection).context("starting the container sources")?;
    if let Some(socket) = &args.nri_socket {
        nri::start(socket.clone(), args.nri_idx.clone(), opts.root.clone(), collection.clone())
            .context("starting the NRI plugin")?;
        tracing::info!(socket = %socket.display(), "NRI plugin started");
    }
    let otlp_flags = crate::otlp::OtlpFlags {
        otlp_endpoint: args.otlp_endpoint.clone(),
        otlp_metrics_interval: args.otlp_metrics_interval,
    };
    let metrics = (args.metrics_address.is_some() || args.otlp_endpoint.is_some()).then(|| {
        let metrics = Arc::new(Metrics::new(args.metrics_expiry));
        // Counted for every process, gadget or not; where the kernel
        // refuses, gadget runs count what they see instead.
        match metrics.count_in_kernel(&collection) {
            Ok(counting) => tracing::info!("{}", counting.describe()),
            Err(e) => tracing::warn!(
                "in-kernel counters not loaded ({}): metrics come from the gadgets that run",
                shared::error_chain(&e)
            ),
        }
        metrics
    });
    if let (Some(addr), Some(metrics)) = (args.metrics_address, &metrics) {
        let bound = crate::metrics::serve(addr, metrics.clone(), collection.clone())
            .await
            .with_context(|| format!("serving metrics on {addr}"))?;
        tracing::info!(address = %bound, "metrics at http://{bound}/metrics");
    }
    // The daemon's own exporter: metrics only, every interval, until it stops.
    let otlp = crate::otlp::Exporter::start(
        &otlp_flags,
        "daemon",
        metrics.clone().map(|m| (m, collection.clone())),
    )?
    .map(|exporter| {
        tracing::info!(endpoint = ?args.otlp_endpoint, interval = ?args.otlp_metrics_interval, "exporting metrics over OTLP");
        otlp_watch(exporter, args.otlp_metrics_interval)
    });
    let runner = Runner { root: opts.root.clone(), collection: collection.clone(), metrics: metrics.clone() };
    let _dns_counter = match &metrics {
        Some(m) => dns_counter::start(&runner, m.clone()).await,
        None => None,
    };
    let instances = Instances::resume(&args.state_dir, runner.clone())
        .await
        .with_context(|| format!("the instances in {}", args.state_dir.display()))?;
    let ctx = Arc::new(Context { runner, instances: instances.clone() });
    let mut sockets = Vec::new();
    for host in &args.hosts {
        match Address::parse(host).map_err(|e| anyhow::anyhow!("-H {e}"))? {
            Address::Unix(path) => {
                let gid = listen::resolve_group(&args.group)?;
                let listener = listen::bind_unix(&path, gid)?;
                tracing::info!(socket = %path.display(), gid, "listening");
                tokio::spawn(listen::accept_unix(listener, ctx.clone()));
                sockets.push(path);
            }
            Address::Tcp(addr) => {
                let acceptor = tls::acceptor(&args)?;
                let listener =
                    tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
                match &acceptor {
                    Some(_) => tracing::info!(address = addr, "listening (mutual TLS)"),
                    None => tracing::warn!(
                        address = addr,
                        "listening on plain TCP (--insecure): anyone who reaches this port can trace this node"
                    ),
                }
                tokio::spawn(listen::accept_tcp(listener, acceptor, ctx.clone()));
            }
        }
    }
    // Ready means every container already running is known.
    ctx.runner.collection.wait_initial_load();
    tracing::info!(
        containers = ctx.runner.collection.len(),
        instances = instances.list().len(),
        "daemon ready"
    );
    crate::io::stop_on_signals().await;
    instances.stop_all().await;
    if let Some((stop, task)) = otlp {
        let _ = stop.send(());
        let _ = task.await;
    }
    for path in sockets {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("daemon stopped");
    Ok(())
}
