//! The gadgets. Each is one directory, `<category>_<name>/`: its eBPF
//! program (`program.bpf.c`, `program.h`, found by build.rs) beside its Rust
//! (`mod.rs`: its flags as a clap struct, event type, columns and JSON).
//! The registry below names each gadget once; the command line, the
//! dispatch, `ig check`, the bench and the README check all read it.

pub mod advise_networkpolicy;
pub mod advise_seccompprofile;
pub mod audit_seccomp;
#[cfg(test)]
mod golden;
pub mod metrics_counters;
pub mod profile_blockio;
pub mod profile_cpu;
pub mod profile_tcprtt;
pub mod snapshot_process;
pub mod snapshot_socket;
pub mod sock_event;
pub mod top_blockio;
pub mod top_ebpf;
pub mod top_file;
pub mod top_process;
pub mod top_tcp;
pub mod trace_bind;
pub mod trace_capabilities;
pub mod trace_dns;
pub mod trace_exec;
pub mod trace_fsslower;
pub mod trace_mount;
pub mod trace_oomkill;
pub mod trace_open;
pub mod trace_signal;
pub mod trace_sni;
pub mod trace_ssl;
pub mod trace_tcp;
pub mod trace_tcpconnect;
pub mod trace_tcpdrop;
pub mod trace_tcpretrans;
pub mod traceloop;

/// Generates, per category, the clap subcommand enum of its gadgets and
/// the dispatch that hands each parsed gadget to the category's runner.
/// A gadget's help text is its struct's doc comment; its flags are its
/// struct's fields.
macro_rules! registry {
    ($(
        $(#[$meta:meta])*
        $category:ident => $command:ident, $runner:path, $prober:path, flags: $flags:expr, {
            $($variant:ident $(as $cmd:literal)? => $module:ident::$gadget:ident,)+
        }
    )+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, clap::Subcommand)]
            pub enum $command {
                $($(#[command(name = $cmd)])? $variant($module::$gadget),)+
            }

            $(impl Default for $module::$gadget {
                /// Every flag at its default, as on the command line.
                fn default() -> Self {
                    crate::cli::with_defaults()
                }
            }

            impl Named for $module::$gadget {
                fn command_name() -> String {
                    format!("{} {}", stringify!($category), cli_name(stringify!($variant), &[$($cmd)?]))
                }
            })+

            impl $command {
                pub async fn run(self, ctx: crate::run::RunContext<'_>) -> anyhow::Result<()> {
                    match self {
                        $(Self::$variant(g) => $runner(g, ctx).await,)+
                    }
                }

                /// The flags every gadget takes, as parsed.
                pub fn common_mut(&mut self) -> &mut crate::cli::CommonFlags {
                    match self {
                        $(Self::$variant(g) => {
                            let flags: fn(&mut $module::$gadget) -> &mut crate::cli::CommonFlags = $flags;
                            flags(g)
                        })+
                    }
                }
            }
        )+

        /// Loads and attaches `g` with its default flags, then detaches it:
        /// the variant it runs as on this kernel.
        pub fn probe(g: &GadgetName) -> anyhow::Result<&'static str> {
            $($(
                // clap names a one-word variant by its lowercase name.
                if g.category == stringify!($category) && g.name == cli_name(stringify!($variant), &[$($cmd)?]) {
                    return $prober(&<$module::$gadget>::default());
                }
            )+)+
            if g.category.is_empty() && g.name == "traceloop" {
                return crate::run::probe_program(&traceloop::Traceloop::default());
            }
            anyhow::bail!("no gadget {}", g.command())
        }
    };
}

registry! {
    /// `ig trace <gadget>`: events as they happen.
    trace => TraceCommand, crate::run::run_gadget, crate::run::probe_program, flags: |g| &mut g.common, {
        Bind => trace_bind::TraceBind,
        Capabilities => trace_capabilities::TraceCapabilities,
        Dns => trace_dns::TraceDns,
        Exec => trace_exec::TraceExec,
        Fsslower => trace_fsslower::TraceFsslower,
        Open => trace_open::TraceOpen,
        Signal => trace_signal::TraceSignal,
        Sni => trace_sni::TraceSni,
        Ssl => trace_ssl::TraceSsl,
        Mount => trace_mount::TraceMount,
        Oomkill => trace_oomkill::TraceOomkill,
        Tcp => trace_tcp::TraceTcp,
        Tcpconnect => trace_tcpconnect::TraceTcpconnect,
        Tcpdrop => trace_tcpdrop::TraceTcpdrop,
        Tcpretrans => trace_tcpretrans::TraceTcpretrans,
    }
    /// `ig top <gadget>`: refreshing tables.
    top => TopCommand, crate::top::run_top, crate::top::probe_top, flags: |g| &mut g.top.common, {
        BlockIo as "block-io" => top_blockio::TopBlockio,
        Ebpf => top_ebpf::TopEbpf,
        File => top_file::TopFile,
        Process => top_process::TopProcess,
        Tcp => top_tcp::TopTcp,
    }
    /// `ig profile <gadget>`: distributions, printed when stopped.
    profile => ProfileCommand, crate::profile::run_profile, crate::run::probe_program, flags: |g| &mut g.common, {
        BlockIo as "block-io" => profile_blockio::ProfileBlockio,
        Cpu => profile_cpu::ProfileCpu,
        Tcprtt => profile_tcprtt::ProfileTcprtt,
    }
    /// `ig audit <gadget>`: decisions the kernel's own checks logged.
    audit => AuditCommand, crate::run::run_gadget, crate::run::probe_program, flags: |g| &mut g.common, {
        Seccomp => audit_seccomp::AuditSeccomp,
    }
    /// `ig advise <gadget>`: what a workload needs, written when stopped.
    advise => AdviseCommand, crate::profile::run_profile, crate::run::probe_program, flags: |g| &mut g.common, {
        NetworkPolicy as "network-policy" => advise_networkpolicy::AdviseNetworkPolicy,
        SeccompProfile as "seccomp-profile" => advise_seccompprofile::AdviseSeccompProfile,
    }
    /// `ig snapshot <gadget>`: one-shot tables.
    snapshot => SnapshotCommand, crate::snapshot::run_snapshot, crate::snapshot::probe_snapshot, flags: |g| &mut g.common, {
        Process => snapshot_process::SnapshotProcess,
        Socket => snapshot_socket::SnapshotSocket,
    }
}

/// A gadget's name on the command line: its registry variant in lower
/// case (clap's own rule for one word), or the name the registry gives.
fn cli_name(variant: &str, given: &[&str]) -> String {
    given.first().map_or_else(|| variant.to_lowercase(), |s| s.to_string())
}

/// One gadget as the command line names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GadgetName {
    /// `trace`, `top`, `snapshot`; empty for a gadget that is a command
    /// of its own (`traceloop`).
    pub category: String,
    /// `exec`, `file`, ...
    pub name: String,
    /// Its one-line help.
    pub about: String,
}

impl GadgetName {
    /// `trace exec`.
    pub fn command(&self) -> String {
        self.words().join(" ")
    }

    /// Its words on the command line: `["trace", "exec"]`, `["traceloop"]`.
    pub fn words(&self) -> Vec<&str> {
        [self.category.as_str(), self.name.as_str()].into_iter().filter(|w| !w.is_empty()).collect()
    }
}

/// Gadgets that are a command of their own, after the categories.
pub const STANDALONE: &[&str] = &["traceloop"];

/// The gadget categories, in command-line order.
pub const CATEGORIES: &[&str] = &["trace", "top", "profile", "audit", "advise", "snapshot"];

/// Every gadget, in command-line order, from the registry.
pub fn all() -> Vec<GadgetName> {
    use clap::CommandFactory;
    let cli = crate::cli::Cli::command();
    let mut out = Vec::new();
    let about = |g: &clap::Command| g.get_about().map(|a| a.to_string()).unwrap_or_default();
    for &category in CATEGORIES {
        let cmd = cli.find_subcommand(category).expect("every category is a subcommand");
        for g in cmd.get_subcommands() {
            out.push(GadgetName { category: category.into(), name: g.get_name().into(), about: about(g) });
        }
    }
    for &name in STANDALONE {
        let g = cli.find_subcommand(name).expect("every standalone gadget is a command");
        out.push(GadgetName { category: String::new(), name: name.into(), about: about(g) });
    }
    out
}

use std::sync::Arc;

use serde::Serialize;

use crate::event::{Clock, HasCommon, Value};
use crate::raw::DecodeError;
use crate::session::GadgetProgram;

/// Horizontal alignment of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One column of a gadget's table: also the name filters (`-F`) refer to.
pub struct Column<E> {
    /// Lower camel case, as in JSON (`runtime.containerName`, `pid`).
    pub name: &'static str,
    pub visible: bool,
    /// Starting width; it grows up to `max_width` as longer values come.
    pub width: usize,
    /// 0: no limit (the last column takes the rest of the terminal).
    pub max_width: usize,
    pub align: Align,
    pub get: for<'a> fn(&'a E) -> Value<'a>,
}

impl<E> Column<E> {
    pub const fn new(name: &'static str, width: usize, get: for<'a> fn(&'a E) -> Value<'a>) -> Self {
        Self { name, visible: true, width, max_width: width, align: Align::Left, get }
    }

    pub const fn hidden(mut self) -> Self {
        self.visible = false;
        self
    }

    pub const fn max(mut self, max_width: usize) -> Self {
        self.max_width = max_width;
        self
    }

    pub const fn right(mut self) -> Self {
        self.align = Align::Right;
        self
    }
}

/// A gadget's command, `trace exec` (the registry says it for each).
pub trait Named {
    fn command_name() -> String;
}

/// The userspace half of a gadget.
pub trait Gadget: GadgetProgram {
    type Event: Serialize + HasCommon;

    /// The flags every gadget takes, as given.
    fn common(&self) -> &crate::cli::CommonFlags;

    /// Its ring buffer when `--ring-buffer-size` is not given: sized by the
    /// event rate a busy node makes (the high-rate gadgets keep the default).
    /// Its pages are mapped into ig twice (for wrap-around): RSS shows twice this.
    fn ring_bytes(&self) -> u32 {
        crate::session::DEFAULT_RING_BYTES
    }

    /// Every column, the container ones first, hidden ones included.
    fn columns(&self) -> Vec<Column<Self::Event>>;

    fn decode(&self, raw: &[u8], clock: &Clock) -> Result<Self::Event, DecodeError>;

    /// A userspace check after decoding (e.g. `--prefixes`); true by default.
    fn wants(&self, _event: &Self::Event) -> bool {
        true
    }

    /// For an event whose process the kernel could not tell: the network
    /// namespace it happened in, whose container it then belongs to (see
    /// unowned.rs). None for events of a known process (the default).
    fn unowned_netns(&self, _event: &Self::Event) -> Option<u64> {
        None
    }

    /// Probes placed per container rather than once at load (uprobes on
    /// each container's own libraries): the run tells them of every
    /// selected container as it comes and goes. None by default.
    fn per_container(
        &self,
        _session: &crate::session::Session,
    ) -> Result<Option<Box<dyn PerContainer>>, crate::session::SessionError> {
        Ok(None)
    }

    /// What the event counts as in the per-container metrics
    /// (`--metrics-address`); nothing by default.
    fn count(&self, _event: &Self::Event, _add: &mut dyn FnMut(crate::metrics::Sample)) {}
}

/// A gadget's probes in the roots of the containers a run selects (see
/// [`Gadget::per_container`]).
pub trait PerContainer: Send {
    /// `container`: its record, None for the host; `root` finds its root
    /// filesystem, as a path here (a few reads: only for who needs it).
    fn added(&mut self, container: Option<&shared::ContainerRecord>, root: &dyn Fn() -> std::path::PathBuf);
    /// `key`: the container's id, as in its record.
    fn removed(&mut self, key: &str);
}

/// The container columns every gadget starts with.
pub fn container_columns<E: HasCommon>() -> Vec<Column<E>> {
    fn s(v: &str) -> Value<'_> {
        Value::from(v)
    }
    let mut cols = vec![
        Column::new("runtime.containerName", 20, |e: &E| s(&e.common().runtime().container_name)).max(40),
        Column::new("runtime.runtimeName", 10, |e: &E| s(&e.common().runtime().runtime_name)).hidden(),
        Column::new("runtime.containerId", 13, |e: &E| s(&e.common().runtime().container_id))
            .hidden()
            .max(64),
        Column::new("runtime.containerImageName", 30, |e: &E| s(&e.common().runtime().container_image_name))
            .hidden()
            .max(80),
        Column::new("k8s.namespace", 16, |e: &E| k8s_field(e, |k| &k.namespace)).hidden().max(40),
        Column::new("k8s.podName", 16, |e: &E| k8s_field(e, |k| &k.pod_name)).hidden().max(60),
        Column::new("k8s.containerName", 16, |e: &E| k8s_field(e, |k| &k.container_name)).hidden().max(40),
        Column::new("k8s.podUID", 36, |e: &E| k8s_field(e, |k| &k.pod_uid)).hidden(),
        Column::new("timestamp", 19, |e: &E| Value::from(e.common().timestamp)).hidden(),
        Column::new("mntns", 10, |e: &E| Value::from(e.common().mntns)).hidden(),
    ];
    if E::HAS_IDS {
        cols.extend([
            Column::new(USER_COLUMN, 12, |e: &E| name_field(e, |n| &n.0)).hidden().max(32),
            Column::new(GROUP_COLUMN, 12, |e: &E| name_field(e, |n| &n.1)).hidden().max(32),
        ]);
    }
    cols
}

/// The columns that name the process's uid and gid (see names.rs).
pub const USER_COLUMN: &str = "user";
pub const GROUP_COLUMN: &str = "group";

/// Whether the `user` and `group` columns are shown or filtered on: they
/// are read from the process's root's files, so only then.
pub fn wants_names<E>(filters: &[String], shown: Option<&[usize]>, columns: &[Column<E>]) -> bool {
    let named = |n: &str| n.eq_ignore_ascii_case(USER_COLUMN) || n.eq_ignore_ascii_case(GROUP_COLUMN);
    filters.iter().any(|f| named(f.split(':').next().unwrap_or("")))
        || shown.is_some_and(|s| s.iter().any(|&i| named(columns[i].name)))
}

fn name_field<E: HasCommon>(e: &E, f: fn(&crate::event::ProcessNames) -> &Arc<str>) -> Value<'_> {
    Value::from(e.common().names.as_ref().map_or("", |n| f(n).as_ref()))
}

fn k8s_field<E: HasCommon>(e: &E, f: fn(&shared::K8sMetadata) -> &String) -> Value<'_> {
    match &e.common().container {
        Some(c) => Value::from(f(&c.k8s).as_str()),
        None => Value::from(""),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_registry_names_every_gadget_and_the_readme_shows_each() {
        let all = super::all();
        assert_eq!(all.len(), 29, "{all:?}");
        assert!(all.iter().all(|g| !g.about.is_empty()), "every gadget has a help line");
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        for g in &all {
            assert!(
                readme.contains(&format!("ig {} ", g.command())),
                "README.md does not show `ig {}`",
                g.command()
            );
        }
    }
}
