//! The `ig` command line: clap definitions only; each subcommand's behaviour
//! lives in its own module.

pub mod check;
pub mod docs;
pub mod list_containers;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::collection::Collection;
use crate::io::RunIo;
use crate::output::OutputMode;
use crate::run::{RunContext, RunOptions};

/// Trace what the containers on this node do, with eBPF.
#[derive(Debug, Parser)]
#[command(name = "ig", version, propagate_version = true)]
pub struct Cli {
    /// Debug logging.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// The configuration file, instead of /etc/ig/config.yaml and ~/.config/ig/config.yaml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Mount bpffs, tracefs and debugfs when they are missing.
    #[arg(long, global = true)]
    pub auto_mount_filesystems: bool,

    /// Without the privileges to trace, run again as a transient systemd
    /// unit on the host (through $HOST_ROOT/run/systemd/private), showing
    /// its output here.
    #[arg(long, global = true)]
    pub auto_sd_unit_restart: bool,

    #[command(flatten)]
    pub runtimes: crate::sources::runtimes::RuntimeOptions,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Gadget(GadgetCommand),
    /// Serve gadget runs to gadgetctl over a unix socket or mutual TLS.
    Daemon(crate::daemon::DaemonArgs),
    /// Print the version.
    Version,
    /// Show, for this kernel, how each gadget runs, or why it cannot.
    Check(check::CheckArgs),
    Completion(docs::CompletionArgs),
    Man(docs::ManArgs),
    /// Show the configuration: a commented starting file, or what is set now.
    Config {
        #[command(subcommand)]
        what: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a configuration file with every flag commented out at its default.
    Default,
    /// Print what the configuration files and IG_* variables set, merged.
    View,
}

/// What `ig` runs locally and `ig daemon` runs for `gadgetctl`: the same
/// parser on both sides, so flags and output are the same.
#[derive(Debug, Subcommand)]
pub enum GadgetCommand {
    /// Trace events as they happen.
    Trace {
        #[command(subcommand)]
        gadget: crate::gadgets::TraceCommand,
    },
    /// Take a one-shot table of what runs now.
    Snapshot {
        #[command(subcommand)]
        gadget: crate::gadgets::SnapshotCommand,
    },
    /// Show refreshing tables of the busiest files or connections.
    Top {
        #[command(subcommand)]
        gadget: crate::gadgets::TopCommand,
    },
    /// Measure a distribution (e.g. I/O latency), shown when stopped.
    Profile {
        #[command(subcommand)]
        gadget: crate::gadgets::ProfileCommand,
    },
    /// Audit what the kernel's checks decided (seccomp filters).
    Audit {
        #[command(subcommand)]
        gadget: crate::gadgets::AuditCommand,
    },
    /// Advise what a workload needs (a seccomp profile), from what it did.
    Advise {
        #[command(subcommand)]
        gadget: crate::gadgets::AdviseCommand,
    },
    /// Record each container's last syscalls; show them when it fails and when stopped.
    Traceloop(crate::gadgets::traceloop::Traceloop),
    /// List the containers of this node.
    ListContainers(list_containers::ListContainersArgs),
}

impl GadgetCommand {
    /// Whether it loads eBPF or reads other processes (privileges, tracefs).
    pub fn needs_kernel(&self) -> bool {
        !matches!(self, GadgetCommand::ListContainers(_))
    }

    /// Whether it follows containers as they come and go (so the container
    /// sources must run), rather than taking what runs now.
    pub fn follows_containers(&self) -> bool {
        match self {
            GadgetCommand::Trace { .. }
            | GadgetCommand::Top { .. }
            | GadgetCommand::Profile { .. }
            | GadgetCommand::Audit { .. }
            | GadgetCommand::Advise { .. }
            | GadgetCommand::Traceloop(_) => true,
            GadgetCommand::Snapshot { .. } => false,
            GadgetCommand::ListContainers(a) => a.watch,
        }
    }

    /// The flags every gadget takes; None for list-containers.
    pub fn common_mut(&mut self) -> Option<&mut CommonFlags> {
        match self {
            GadgetCommand::Trace { gadget } => Some(gadget.common_mut()),
            GadgetCommand::Snapshot { gadget } => Some(gadget.common_mut()),
            GadgetCommand::Top { gadget } => Some(gadget.common_mut()),
            GadgetCommand::Profile { gadget } => Some(gadget.common_mut()),
            GadgetCommand::Audit { gadget } => Some(gadget.common_mut()),
            GadgetCommand::Advise { gadget } => Some(gadget.common_mut()),
            GadgetCommand::Traceloop(gadget) => Some(&mut gadget.common),
            GadgetCommand::ListContainers(_) => None,
        }
    }

    /// Runs it with the containers of `collection`, writing to `io`; in
    /// the daemon, counting into its `metrics`.
    pub async fn execute(
        self,
        root: &Path,
        collection: &Arc<Collection>,
        metrics: Option<Arc<crate::metrics::Metrics>>,
        io: RunIo,
    ) -> anyhow::Result<()> {
        let ctx = RunContext { root, collection, io, metrics };
        match self {
            GadgetCommand::Trace { gadget } => gadget.run(ctx).await,
            GadgetCommand::Snapshot { gadget } => gadget.run(ctx).await,
            GadgetCommand::Top { gadget } => gadget.run(ctx).await,
            GadgetCommand::Profile { gadget } => gadget.run(ctx).await,
            GadgetCommand::Audit { gadget } => gadget.run(ctx).await,
            GadgetCommand::Advise { gadget } => gadget.run(ctx).await,
            GadgetCommand::Traceloop(gadget) => crate::profile::run_profile(gadget, ctx).await,
            GadgetCommand::ListContainers(args) => args.run(collection, ctx.io).await,
        }
    }
}

/// Flags every gadget takes.
#[derive(Clone, Debug, Args)]
pub struct CommonFlags {
    /// Output: columns, columns=a,b (or =+a,-b), json, jsonpretty, yaml.
    #[arg(short = 'o', long = "output", default_value = "columns", value_parser = OutputMode::parse)]
    pub output: OutputMode,

    /// The columns to show: a,b (exactly these) or +a,-b (added to or taken
    /// from the defaults); the same as -o columns=...
    #[arg(long, value_parser = crate::output::ColumnSelection::parse, conflicts_with = "output")]
    pub fields: Option<crate::output::ColumnSelection>,

    #[command(flatten)]
    pub selection: crate::selector::SelectorFlags,

    #[command(flatten)]
    pub process: crate::process_filter::ProcessFlags,

    /// Also show events of host processes (container fields empty).
    #[arg(long)]
    pub host: bool,

    /// Filter events: col:value, col:!value, col:>=v, col:>v, col:<=v, col:<v, col:~regex.
    #[arg(short = 'F', long = "filter")]
    pub filter: Vec<String>,

    /// Seconds to run; 0 runs until Ctrl-C.
    #[arg(short = 't', long, default_value_t = 0)]
    pub timeout: u64,

    #[command(flatten)]
    pub file: crate::output::file::FileFlags,

    /// Serve Prometheus metrics (per-container counts, ig's health) at
    /// http://ADDR/metrics while the gadget runs, e.g. 127.0.0.1:2224.
    #[arg(long, value_name = "ADDR")]
    pub metrics_address: Option<std::net::SocketAddr>,

    /// How long a gone container's metrics stay: 300, 90s, 5m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub metrics_expiry: Duration,

    #[command(flatten)]
    pub otlp: crate::otlp::OtlpFlags,

    /// Ring buffer bytes (a power of two, at least 4096); each gadget has a
    /// default for its event rate. Raise it when ig reports lost events.
    #[arg(long, value_name = "BYTES", value_parser = parse_ring_bytes)]
    pub ring_buffer_size: Option<u32>,
}

impl CommonFlags {
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            output: match (&self.fields, &self.output) {
                (Some(sel), _) => OutputMode::Columns(Some(sel.clone())),
                // An output file holds JSON lines: no -o means json there.
                (None, OutputMode::Columns(None)) if self.file.output_file.is_some() => OutputMode::Json,
                (None, output) => output.clone(),
            },
            output_file: self.file.clone(),
            metrics_address: self.metrics_address,
            metrics_expiry: self.metrics_expiry,
            otlp: self.otlp.clone(),
            host: self.host,
            selector: self.selection.selector(),
            process: self.process.clone(),
            filters: self.filter.clone(),
            timeout: (self.timeout > 0).then(|| Duration::from_secs(self.timeout)),
            ring_bytes: self.ring_buffer_size,
        }
    }
}

/// A duration in whole seconds, minutes or hours: `300`, `90s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, ""), |i| s.split_at(i));
    let n: u64 = digits.parse().map_err(|_| format!("{s:?}: expected e.g. 300, 90s, 5m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("{s:?}: the unit is s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

/// Flags every `top` gadget takes.
#[derive(Clone, Debug, Args)]
pub struct TopFlags {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Seconds between tables.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,

    /// At most this many rows per table.
    #[arg(short = 'm', long = "max-rows", default_value_t = 50)]
    pub max_rows: usize,

    /// Sort by these columns, `-` for descending (default: the gadget's).
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
}

/// A gadget with every flag at its default, as `ig <category> <name>` alone
/// would make it (what `ig check` and the tests start from).
pub fn with_defaults<T: clap::FromArgMatches + Args>() -> T {
    let cmd = T::augment_args(clap::Command::new("gadget").no_binary_name(true));
    let matches =
        cmd.try_get_matches_from(std::iter::empty::<&str>()).expect("every gadget flag has a default");
    T::from_arg_matches(&matches).expect("defaults match the gadget's own flags")
}

fn parse_ring_bytes(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if n < 4096 || !n.is_power_of_two() {
        return Err(format!("{n} is not a power of two of at least 4096"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_in_seconds_minutes_or_hours() {
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "m", "5d", "1.5m", "-3", "5 m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_a_trace_command() {
        let cli =
            Cli::try_parse_from(["ig", "trace", "exec", "--host", "-o", "json", "-F", "comm:cat", "-t", "3"])
                .unwrap();
        let Command::Gadget(GadgetCommand::Trace { gadget: crate::gadgets::TraceCommand::Exec(exec) }) =
            cli.command
        else {
            panic!("not trace exec");
        };
        let run = exec.common.run_options();
        assert!(run.host);
        assert_eq!(run.output, OutputMode::Json);
        assert_eq!(run.filters, vec!["comm:cat"]);
        assert_eq!(run.timeout, Some(Duration::from_secs(3)));
        assert!(Cli::try_parse_from(["ig", "trace", "open", "--ring-buffer-size", "5000"]).is_err());
    }

    #[test]
    fn fields_is_columns_output_by_another_name() {
        let options = |args: &[&str]| {
            let cli = Cli::try_parse_from(args)?;
            let Command::Gadget(GadgetCommand::Trace { gadget: crate::gadgets::TraceCommand::Open(open) }) =
                cli.command
            else {
                panic!("not trace open");
            };
            Ok::<_, clap::Error>(open.common.run_options().output)
        };
        let relative = options(&["ig", "trace", "open", "--fields", "+uid,-err"]).unwrap();
        assert_eq!(relative, OutputMode::parse("columns=+uid,-err").unwrap());
        assert_eq!(
            options(&["ig", "trace", "open", "--fields", "pid,path"]).unwrap(),
            OutputMode::parse("columns=pid,path").unwrap()
        );
        assert!(
            options(&["ig", "trace", "open", "--fields", "pid", "-o", "json"]).is_err(),
            "one or the other"
        );
        assert_eq!(options(&["ig", "trace", "open", "-o", "yaml"]).unwrap(), OutputMode::Yaml);
    }
}
