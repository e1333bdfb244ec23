//! `ig advise network-policy`: the Kubernetes NetworkPolicy each selected
//! pod needs, from the connections it opens and accepts while the gadget
//! runs. Kernel side: program.bpf.c (the first packet of each connection
//! in a selected pod's network namespace). Here: each connection named
//! (which pod, which peer: addresses.rs), kept, optionally logged as it
//! comes (connection.rs), and written as policies when stopped (policy.rs).

pub mod addresses;
pub mod connection;
mod pods;
pub mod policy;

use std::io::Write;
use std::mem::offset_of;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;

use self::addresses::PodAddresses;
use self::bpf::{IG_NETPOL_EGRESS, ig_netpol_event as E};
use self::connection::{Connection, ConnectionEvent, HOST, OUTGOING, PodRef, REMOTE_OTHER};
use self::policy::NetworkPolicy;
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon};
use crate::event_process::Process;
use crate::output::{OutputMode, Structured};
use crate::profile::{ProfileGadget, Report};
use crate::raw::{Raw, ip_string};
use crate::run::RunOptions;
use crate::session::{Attachment, GadgetProgram, Session, SessionError, SessionOptions, Variant};

crate::bpf_object!(advise_networkpolicy);

/// Record the connections the selected pods open and accept and, when
/// stopped, write a Kubernetes NetworkPolicy for each that allows exactly
/// those (YAML; -o json for JSON).
///
/// Connections are TCP (by their SYN) and UDP (by a flow's first packet),
/// seen as packets in each pod's own network namespace. A peer that is a
/// pod on this node is named by its namespace and labels; any other peer
/// (a pod on another node, a Service's cluster IP, an outside address) by
/// its address (an ipBlock of one address): ig asks no Kubernetes API.
/// Run it on each node and merge, or edit those rules. Pods on the host's
/// network are not covered (no NetworkPolicy applies to them). Run the
/// gadget before the workload and exercise it fully: a connection not
/// seen is not allowed.
#[derive(Debug, clap::Args)]
pub struct AdviseNetworkPolicy {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Also write every connection, as it is seen, to FILE: one JSON
    /// object per line (the original's network-policy monitor log, which
    /// --input reads back).
    #[arg(long, value_name = "FILE")]
    pub connections: Option<PathBuf>,

    /// Write the policies of a connection log (from --connections, or the
    /// original's monitor) instead of tracing; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Write each pod's policy to DIR/<namespace>_<pod>.yaml (.json with
    /// -o json) instead of standard output.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    #[arg(skip)]
    // Boxed: the run's state is large and every gadget struct sits in one enum.
    recorder: Box<Mutex<Recorder>>,
}

/// What a run has seen so far.
#[derive(Default)]
struct Recorder {
    connections: Vec<Connection>,
    addresses: PodAddresses,
    /// --connections, once opened.
    log: Option<std::io::BufWriter<std::fs::File>>,
    clock: Option<Clock>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("connections", &self.connections.len()).finish_non_exhaustive()
    }
}

const ATTACHMENTS: &[Attachment] = &[
    Attachment::raw("ig_netpol_egress", "net_dev_queue"),
    Attachment::raw("ig_netpol_ingress", "netif_receive_skb"),
];
const VARIANTS: &[Variant] = &[Variant::new("raw tracepoint", ATTACHMENTS)];

/// The kernel's map of selected pods' network namespaces.
const POD_NETNS_MAP: &str = "pod_netns";

impl GadgetProgram for AdviseNetworkPolicy {
    fn object(&self) -> &'static [u8] {
        &bpf::OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

/// The pod a record's container belongs to; None outside Kubernetes.
fn pod_of(record: &shared::ContainerRecord) -> Option<PodRef> {
    let k = &record.k8s;
    (!k.pod_name.is_empty() && !k.namespace.is_empty()).then(|| PodRef {
        namespace: k.namespace.clone(),
        name: k.pod_name.clone(),
        labels: k.pod_labels.clone(),
    })
}

fn proto_name(proto: u8) -> &'static str {
    match proto {
        6 => "tcp",
        17 => "udp",
        _ => "?",
    }
}

impl AdviseNetworkPolicy {
    fn lock(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `policies` where the flags say.
    fn write_policies(
        &self,
        policies: &[NetworkPolicy],
        output: &OutputMode,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let style = output.structured().unwrap_or(Structured::Yaml);
        for p in policies {
            let who = format!("{}/{}", p.metadata.namespace, p.metadata.name);
            let rules = p.spec.ingress.len() + p.spec.egress.len();
            match &self.output_dir {
                Some(dir) => {
                    let path = write_file(dir, p, style)?;
                    writeln!(err, "ig: {who}: {rules} rules, written to {}", path.display())?;
                }
                None => {
                    let mut buf = Vec::new();
                    style.write(&mut buf, p)?;
                    out.write_all(&buf)?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// DIR/<namespace>_<policy name>.yaml; the names are Kubernetes names
/// (no '/'), but a log may say anything: what a path cannot hold is replaced.
fn write_file(dir: &Path, p: &NetworkPolicy, style: Structured) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let safe =
        |s: &str| -> String { s.chars().map(|c| if c == '/' || c.is_control() { '_' } else { c }).collect() };
    let ext = if style == Structured::Yaml { "yaml" } else { "json" };
    let name = format!("{}_{}.{ext}", safe(&p.metadata.namespace), safe(&p.metadata.name));
    let path = dir.join(name.trim_start_matches('.'));
    let mut text = Vec::new();
    style.write(&mut text, p)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

impl ProfileGadget for AdviseNetworkPolicy {
    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn check(&self, opts: &RunOptions) -> anyhow::Result<()> {
        anyhow::ensure!(opts.filters.is_empty(), "-F: a network policy has no rows to filter");
        anyhow::ensure!(!opts.host, "--host: the host is not a pod (a NetworkPolicy applies to pods only)");
        opts.output.refuse_folded()?;
        if let OutputMode::Columns(Some(_)) = &opts.output {
            anyhow::bail!("-o columns=...: a network policy has no columns (try -o json)");
        }
        anyhow::ensure!(
            self.input.is_none() || self.connections.is_none(),
            "--input and --connections: a log is read or written, not both"
        );
        if let Some(path) = &self.connections {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("--connections: opening {}", path.display()))?;
            self.lock().log = Some(std::io::BufWriter::new(file));
        }
        Ok(())
    }

    fn session_options(&self, opts: SessionOptions) -> SessionOptions {
        // One event per connection, each read as it comes (a rate far
        // below what batching wake-ups is for); bursts of new ones fit,
        // unless --ring-buffer-size says otherwise.
        let ring_bytes = self.common.run_options().ring_bytes.unwrap_or(256 * 1024);
        SessionOptions { ring_bytes, wakeup_bytes: 0, ..opts }
    }

    fn without_kernel(&self, out: &mut dyn Write, err: &mut dyn Write) -> Option<anyhow::Result<()>> {
        let path = self.input.as_ref()?;
        let mut run = || -> anyhow::Result<()> {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("--input: reading standard input")?
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("--input: reading {}", path.display()))?
            };
            let log = connection::read_log(&text).with_context(|| format!("--input {}", path.display()))?;
            let (policies, notes) = policy::policies(&log);
            for n in &notes {
                writeln!(err, "WARN: {n}")?;
            }
            if policies.is_empty() {
                writeln!(err, "ig: the log holds no connection")?;
            }
            self.write_policies(&policies, &self.common.run_options().output, out, err)
        };
        Some(run())
    }

    fn per_container(
        &self,
        session: &Session,
    ) -> Result<Option<Box<dyn crate::gadgets::PerContainer>>, SessionError> {
        let map = session.hash_map::<u64, u8>(POD_NETNS_MAP)?;
        Ok(Some(Box::new(pods::PodNetns::new(map))))
    }

    fn event(&self, _session: &mut Session, raw: &[u8], r: Report<'_, '_>) -> anyhow::Result<()> {
        let e = Raw::new(raw, std::mem::size_of::<E>())?;
        let netns = e.u64(offset_of!(E, netns_id));
        // A pod's containers share its network namespace and its fields.
        let Some(container) = r.collection.by_netns(netns).into_iter().find(|c| !c.host_network) else {
            tracing::debug!(netns, "a connection in a network namespace no container owns now");
            return Ok(());
        };
        let Some(pod) = pod_of(&container) else {
            tracing::debug!(container = %container.runtime.container_name, "not a Kubernetes pod: no policy");
            return Ok(());
        };
        let v6 = e.u8(offset_of!(E, ipversion)) == 6;
        let local = ip_string(e.bytes(offset_of!(E, local_addr), 16), v6);
        let remote = ip_string(e.bytes(offset_of!(E, remote_addr), 16), v6);
        let (local_port, remote_port) = (e.u16(offset_of!(E, local_port)), e.u16(offset_of!(E, remote_port)));
        let egress = u32::from(e.u8(offset_of!(E, direction))) == IG_NETPOL_EGRESS;
        let mut rec = self.lock();
        let rec = &mut *rec;
        if let Ok(addr) = local.parse::<IpAddr>() {
            rec.addresses.learn(addr, &pod);
        }
        let remote_ip: Option<IpAddr> = remote.parse().ok();
        if remote_ip.is_some_and(|a| rec.addresses.pod_of(&a).is_none()) {
            // Perhaps a pod not read yet: read those that are new.
            for c in r.collection.snapshot() {
                if let (false, Some(p)) = (c.host_network, pod_of(&c)) {
                    rec.addresses.read_netns(r.root, c.netns, c.pid, &p);
                }
            }
        }
        let mut connection = Connection {
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            pod_labels: pod.labels.clone(),
            pkt_type: if egress { OUTGOING } else { HOST }.into(),
            proto: proto_name(e.u8(offset_of!(E, proto))).into(),
            port: if egress { remote_port } else { local_port },
            remote_kind: REMOTE_OTHER.into(),
            remote_addr: remote,
            local_addr: local,
            local_port,
            remote_port,
            ..Default::default()
        };
        connection.set_remote(remote_ip.and_then(|a| rec.addresses.pod_of(&a)));
        if let Some(log) = &mut rec.log {
            let clock = rec.clock.get_or_insert_with(Clock::now);
            let mntns = Process::mntns(&e, offset_of!(E, process));
            let sender = Process::decode(&e, offset_of!(E, process));
            let event = ConnectionEvent {
                common: EventCommon {
                    container: Some(container.clone()),
                    timestamp: clock.to_realtime(e.u64(offset_of!(E, timestamp_ns))),
                    mntns: if mntns != 0 { mntns } else { container.mntns },
                    names: None,
                },
                netnsid: netns,
                pid: sender.pid,
                comm: sender.comm,
                connection: connection.clone(),
            };
            serde_json::to_writer(&mut *log, &event)?;
            log.write_all(b"\n")?;
            log.flush().context("--connections: writing")?;
        }
        rec.connections.push(connection);
        Ok(())
    }

    fn report(&self, session: &mut Session, r: Report<'_, '_>) -> anyhow::Result<()> {
        let lost = session.lost();
        let mut rec = self.lock();
        let rec = &mut *rec;
        // Peers whose pod was learnt after their connection was seen.
        for c in rec.connections.iter_mut().filter(|c| c.remote_kind == REMOTE_OTHER) {
            if let Some(pod) = c.remote_addr.parse().ok().and_then(|a: IpAddr| rec.addresses.pod_of(&a)) {
                c.set_remote(Some(pod));
            }
        }
        let (policies, notes) = policy::policies(&rec.connections);
        tracing::info!(pods = policies.len(), connections = rec.connections.len(), "tracing stopped");
        for n in &notes {
            writeln!(r.err, "WARN: {n}")?;
        }
        if lost > 0 {
            writeln!(
                r.err,
                "WARN: {lost} connections were lost (the ring buffer was full): the policies may miss them; run again with a larger --ring-buffer-size"
            )?;
        }
        if policies.is_empty() {
            writeln!(
                r.err,
                "ig: no connection recorded: no selected pod opened or accepted one while measuring"
            )?;
        }
        self.write_policies(&policies, &r.opts.output, r.out, r.err)
    }
}
