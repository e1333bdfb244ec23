//! `ig daemon`: owns the container collection (ig-hook, ig-nri and the
//! fanotify watcher feed it; the spool and the runtime APIs at start-up) and
//! runs gadgets for `gadgetctl` clients, each on a thread of its own, over a
//! unix socket (root:group 0660 in a 0710 directory) and/or TCP with mutual
//! TLS. A client that goes away stops its gadget and frees its eBPF
//! programs and maps; other clients are not touched.

pub mod conn;
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
use crate::sources::{self, SourceOptions};

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
    pub root: PathBuf,
    pub collection: Arc<Collection>,
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
    let ctx = Arc::new(Context { root: opts.root.clone(), collection });
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
    tracing::info!(containers = ctx.collection.len(), "daemon ready");
    crate::io::stop_on_signals().await;
    for path in sockets {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("daemon stopped");
    Ok(())
}
