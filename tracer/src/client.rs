//! `gadgetctl`: runs a gadget on `ig daemon` and shows its output as `ig`
//! would. The command line is checked here with the same parser the daemon
//! uses, then sent without the client's own flags. Ctrl-C stops the gadget
//! on the daemon and still shows what it prints when stopped (a profile's
//! report); closing the connection (`| head`) stops it too.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use rustls_pki_types::ServerName;
use shared::daemonproto::{self as proto, Action, Address, Exit, Kind, MAX_RESPONSE, Request};

use crate::cli::GadgetCommand;
use crate::output::columns::stdout_terminal_width;
use crate::pem as tls;

/// Run gadgets on `ig daemon`: locally through its unix socket, or over
/// the network with mutual TLS.
#[derive(Debug, Parser)]
#[command(name = "gadgetctl", version)]
pub struct GadgetctlCli {
    /// The daemon: unix:///path or tcp://HOST:PORT.
    #[arg(
        long = "remote-address",
        global = true,
        default_value = shared::daemonproto::DEFAULT_ADDRESS,
        env = "IG_REMOTE_ADDRESS"
    )]
    pub remote_address: String,
    /// Client certificate (PEM) for tcp://.
    #[arg(long, global = true)]
    pub tls_cert_file: Option<PathBuf>,
    /// Client private key (PEM) for tcp://.
    #[arg(long, global = true)]
    pub tls_key_file: Option<PathBuf>,
    /// CA (PEM) that the daemon's certificate must chain to.
    #[arg(long, global = true)]
    pub tls_ca_file: Option<PathBuf>,
    /// Name to check the daemon's certificate against (default: the address's host).
    #[arg(long, global = true)]
    pub tls_server_name: Option<String>,
    /// Plain TCP, for a daemon started with --insecure.
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Debug logging.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: GadgetctlCommand,
}

/// What gadgetctl runs: a gadget on the daemon, headless instances, or its
/// own completions and man pages.
// Parsed once per process: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, clap::Subcommand)]
pub enum GadgetctlCommand {
    #[command(flatten)]
    Gadget(GadgetCommand),
    /// Run a gadget; with --detach, as a headless instance that keeps
    /// running on the daemon (and after its restarts) until deleted.
    Run(RunArgs),
    /// List the daemon's headless instances.
    List(ListArgs),
    /// Show an instance's output from now on; Ctrl-C leaves it running.
    Attach {
        /// The instance.
        name: String,
    },
    /// Stop headless instances and forget them.
    Delete {
        /// The instances.
        #[arg(required = true)]
        names: Vec<String>,
    },
    Completion(crate::cli::docs::CompletionArgs),
    Man(crate::cli::docs::ManArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Start it on the daemon and return: it writes to its --output-file and
    /// its metrics, and `gadgetctl attach NAME` shows it. JSON lines.
    #[arg(long)]
    pub detach: bool,
    /// The instance's name (default: the gadget's and a random suffix).
    #[arg(long, requires = "detach")]
    pub name: Option<String>,
    #[command(subcommand)]
    pub gadget: GadgetCommand,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output: columns or json.
    #[arg(short = 'o', long = "output", default_value = "columns", value_parser = ["columns", "json"])]
    pub output: String,
}

impl GadgetctlCommand {
    /// What to ask the daemon, each request with the arguments it carries
    /// (`args`: the command line without gadgetctl's own flags). None for
    /// what gadgetctl does alone.
    pub fn requests(&self, args: &[String]) -> Option<Vec<(Action, Vec<String>)>> {
        Some(match self {
            GadgetctlCommand::Gadget(_) => vec![(Action::Run, args.to_vec())],
            GadgetctlCommand::Run(run) => {
                let gadget = without_run_flags(args);
                let action = if run.detach { Action::Detach { name: run.name.clone() } } else { Action::Run };
                vec![(action, gadget)]
            }
            GadgetctlCommand::List(l) => vec![(Action::List { json: l.output == "json" }, vec![])],
            GadgetctlCommand::Attach { name } => vec![(Action::Attach { name: name.clone() }, vec![])],
            GadgetctlCommand::Delete { names } => {
                names.iter().map(|n| (Action::Delete { name: n.clone() }, vec![])).collect()
            }
            GadgetctlCommand::Completion(_) | GadgetctlCommand::Man(_) => return None,
        })
    }
}

/// `run --detach --name N trace exec ...` → `trace exec ...`: run's own
/// flags all come before the gadget (clap gives what follows to it).
fn without_run_flags(args: &[String]) -> Vec<String> {
    let mut it = args.iter().skip_while(|a| *a != "run").skip(1).peekable();
    while let Some(a) = it.peek() {
        match a.as_str() {
            "--name" => {
                it.next();
                it.next();
            }
            "--detach" => {
                it.next();
            }
            s if s.starts_with("--name=") => {
                it.next();
            }
            _ => break,
        }
    }
    it.cloned().collect()
}

/// Flags that belong to gadgetctl itself, with whether they take a value.
const CLIENT_FLAGS: &[(&str, bool)] = &[
    ("--remote-address", true),
    ("--tls-cert-file", true),
    ("--tls-key-file", true),
    ("--tls-ca-file", true),
    ("--tls-server-name", true),
    ("--insecure", false),
    ("--verbose", false),
    ("-v", false),
];

/// The arguments to send: the command line without gadgetctl's own flags.
pub fn forwarded_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
        match CLIENT_FLAGS.iter().find(|(f, _)| *f == name) {
            Some((_, true)) if !a.contains('=') => {
                it.next();
            }
            Some(_) => {}
            None => out.push(a.clone()),
        }
    }
    out
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// The connection's socket, for the Ctrl-C handler (-1: none yet).
static STOP_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Ctrl-C: stop the gadget, not gadgetctl. Shutting the socket's sending
/// half is "stop" to the daemon (the end of the request stream), and the
/// gadget's last output (a profile's report) still comes back; a second
/// Ctrl-C ends gadgetctl at once. Only async-signal-safe calls here.
extern "C" fn stop_on_interrupt(_: libc::c_int) {
    let fd = STOP_FD.load(std::sync::atomic::Ordering::SeqCst);
    // SAFETY: shutdown(2) and signal(2) are async-signal-safe; fd is the
    // connection's socket, open for as long as the handler is installed.
    unsafe {
        if fd >= 0 {
            libc::shutdown(fd, libc::SHUT_WR);
        }
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

fn stop_on_ctrl_c(fd: std::os::fd::RawFd) {
    STOP_FD.store(fd, std::sync::atomic::Ordering::SeqCst);
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(stop_on_interrupt),
        // Reads go on where they were: the daemon's answer is still wanted.
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only makes async-signal-safe calls.
    if let Err(e) = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGINT, &action) } {
        tracing::debug!("Ctrl-C will end gadgetctl without the gadget's last output: {e}");
    }
}

fn connect(cli: &GadgetctlCli) -> anyhow::Result<Box<dyn Stream>> {
    let address = Address::parse(&cli.remote_address).map_err(|e| anyhow::anyhow!("--remote-address {e}"))?;
    match &address {
        Address::Unix(path) => {
            let s = UnixStream::connect(path).with_context(|| {
                format!(
                    "connecting to {} (is `ig daemon` running, and are you in its group?)",
                    path.display()
                )
            })?;
            stop_on_ctrl_c(std::os::fd::AsRawFd::as_raw_fd(&s));
            Ok(Box::new(s))
        }
        Address::Tcp(hostport) => {
            let tcp = TcpStream::connect(hostport).with_context(|| format!("connecting to {hostport}"))?;
            tcp.set_nodelay(true)?;
            stop_on_ctrl_c(std::os::fd::AsRawFd::as_raw_fd(&tcp));
            if cli.insecure {
                return Ok(Box::new(tcp));
            }
            let ca = cli.tls_ca_file.as_ref().context("tcp:// needs --tls-ca-file (or --insecure)")?;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(tls::roots(ca)?);
            let config = match (&cli.tls_cert_file, &cli.tls_key_file) {
                (Some(cert), Some(key)) => builder
                    .with_client_auth_cert(tls::certificates(cert)?, tls::private_key(key)?)
                    .context("the client certificate and key")?,
                _ => builder.with_no_client_auth(),
            };
            let host = cli
                .tls_server_name
                .clone()
                .or_else(|| address.tcp_host().map(String::from))
                .unwrap_or_default();
            let name = ServerName::try_from(host.clone()).with_context(|| format!("server name {host:?}"))?;
            let conn = rustls::ClientConnection::new(Arc::new(config), name)?;
            Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
        }
    }
}

/// Runs the command on the daemon; returns the exit code to leave with.
pub fn run(cli: &GadgetctlCli, args: Vec<String>, action: Action) -> anyhow::Result<i32> {
    let mut stream = connect(cli)?;
    let request = Request::new(args, stdout_terminal_width().map(|w| w as u16), action);
    stream.write_all(&proto::json_frame(Kind::Request, &request)).context("sending the request")?;
    stream.flush().context("sending the request")?;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    loop {
        let frame = proto::read_frame(&mut stream, MAX_RESPONSE).context("reading from the daemon")?;
        let Some((kind, payload)) = frame else {
            anyhow::bail!("the daemon closed the connection");
        };
        match kind {
            Kind::Stdout => match stdout.write_all(&payload).and_then(|_| stdout.flush()) {
                // `gadgetctl ... | head`: a normal way to stop.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
                other => other?,
            },
            Kind::Stderr => {
                stderr.write_all(&payload)?;
                stderr.flush()?;
            }
            Kind::Started => tracing::info!("tracing started"),
            Kind::Exit => {
                let exit: Exit = proto::parse_json(kind, &payload)?;
                if let Some(e) = exit.error {
                    eprintln!("gadgetctl: {}", e.trim_end());
                }
                return Ok(exit.code);
            }
            Kind::Request | Kind::Stop => anyhow::bail!("the daemon sent a {kind:?} frame"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn drops_the_clients_own_flags() {
        let args = v(
            "--remote-address tcp://h:1 trace exec -o json --tls-ca-file=/ca -v --host --insecure -F comm:x",
        );
        assert_eq!(forwarded_args(&args), v("trace exec -o json --host -F comm:x"));
    }

    #[test]
    fn run_sends_the_gadget_without_its_own_flags() {
        let requests = |line: &str| {
            let args = v(line);
            let cli =
                GadgetctlCli::try_parse_from(std::iter::once("gadgetctl".to_string()).chain(args.clone()))
                    .unwrap();
            cli.command.requests(&forwarded_args(&args)).unwrap()
        };
        assert_eq!(
            requests("run --detach --name web trace exec -o json --comm=--name"),
            [(Action::Detach { name: Some("web".into()) }, v("trace exec -o json --comm=--name"))]
        );
        assert_eq!(
            requests("-v run --name=w --detach trace exec --host"),
            [(Action::Detach { name: Some("w".into()) }, v("trace exec --host"))]
        );
        assert_eq!(requests("run trace exec --host"), [(Action::Run, v("trace exec --host"))]);
        assert_eq!(requests("trace exec --host"), [(Action::Run, v("trace exec --host"))]);
        assert_eq!(requests("list -o json"), [(Action::List { json: true }, vec![])]);
        assert_eq!(
            requests("delete a b"),
            [(Action::Delete { name: "a".into() }, vec![]), (Action::Delete { name: "b".into() }, vec![])]
        );
        assert!(
            GadgetctlCli::try_parse_from(v("gadgetctl run --name x trace exec")).is_err(),
            "--name needs --detach"
        );
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        GadgetctlCli::command().debug_assert();
    }
}
