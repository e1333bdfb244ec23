//! `ig traceloop`: a flight recorder of syscalls per container. Kernel
//! side: program.bpf.c (each container's last calls kept in a ring per CPU;
//! an event when a container's first process exits). Here: the rings read
//! when that process exits non-zero and when the gadget stops, merged into
//! the container's last calls, named and shown (signatures.rs).

pub mod signatures;

use std::collections::HashMap;
use std::mem::{offset_of, size_of};

use anyhow::Context;
use serde::Serialize;

use super::{Column, container_columns};
use crate::cli::CommonFlags;
use crate::event::{Clock, EventCommon, Value};
use crate::output::columns::ColumnsPrinter;
use crate::output::filter::Filters;
use crate::output::{OutputMode, select_columns};
use crate::profile::{ProfileGadget, Report};
use crate::raw::Raw;
use crate::run::RunOptions;
use crate::session::{Attachment, GadgetProgram, KernelHooks, Session, SessionOptions, Variant};
use signatures::Signatures;

crate::bpf_object!(traceloop);

type Ring = bpf::ig_traceloop_ring;
type Slot = bpf::ig_traceloop_call;
type Pending = bpf::ig_traceloop_pending;
type Exit = bpf::ig_traceloop_exit;

const RINGS_MAP: &str = "traceloop_rings";
const PENDING_MAP: &str = "traceloop_pending";
const STRING_ARGS_MAP: &str = "traceloop_string_args";
/// The calls a container's record holds: the last this many.
const KEPT: usize = bpf::IG_TRACELOOP_SLOTS as usize;

/// Record the syscalls of each selected container, its last 64 kept in the
/// kernel, and show them when its first process exits non-zero and when
/// stopped (Ctrl-C, -t).
///
/// A flight recorder: each syscall of a selected container runs two small
/// eBPF programs (`bench traceloop` measures what that costs), and nothing
/// is written until asked. Each call shows its arguments as the kernel
/// names them (strings and the first 64 bytes of written buffers
/// included), its return value and how long it took; calls still in
/// progress when shown are marked unfinished. A container is seen exit
/// when the first process of its own pid namespace does.
#[derive(Clone, Debug, clap::Args)]
pub struct Traceloop {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Dumps shown so far in this run.
    #[arg(skip)]
    shown: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// One recorded syscall.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    #[serde(flatten)]
    pub common: EventCommon,
    /// The CPU it returned on (entered on, for exit, exit_group and calls
    /// in progress).
    pub cpu: u32,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub syscall: String,
    pub parameters: String,
    /// Its return value; null for calls that never returned (exit,
    /// exit_group) or have not yet.
    pub ret: Option<i64>,
    /// ENOENT, ... for a failed call.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Nanoseconds from entry to return (so far, if unfinished); null when
    /// its entry was not seen.
    pub duration: Option<u64>,
    /// Still in progress when shown.
    pub unfinished: bool,
}

crate::impl_has_common!(Call);

const ATTACHMENTS: &[Attachment] = &[
    Attachment::raw("ig_traceloop_enter", "sys_enter"),
    Attachment::raw("ig_traceloop_exit", "sys_exit"),
    Attachment::raw("ig_traceloop_task_exit", "sched_process_exit"),
];
const VARIANTS: &[Variant] = &[Variant::new("raw tracepoint", ATTACHMENTS)];

impl GadgetProgram for Traceloop {
    fn object(&self) -> &'static [u8] {
        &bpf::OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }
}

impl super::Named for Traceloop {
    fn command_name() -> String {
        "traceloop".into()
    }
}

impl Default for Traceloop {
    fn default() -> Self {
        crate::cli::with_defaults()
    }
}

/// Every column of a call, the container ones first.
pub fn columns() -> Vec<Column<Call>> {
    let mut cols = container_columns();
    cols.extend([
        Column::new("cpu", 3, |e: &Call| e.cpu.into()).right(),
        Column::new("pid", 7, |e: &Call| e.pid.into()),
        Column::new("comm", 16, |e: &Call| e.comm.as_str().into()),
        Column::new("syscall", 16, |e: &Call| e.syscall.as_str().into()).max(24),
        Column::new("ret", 14, |e: &Call| Value::Str(ret_text(e).into())).max(24),
        Column::new("duration", 10, |e: &Call| e.duration.map_or(Value::from(""), |d| Value::Int(d as i64)))
            .right(),
        Column::new("tid", 7, |e: &Call| e.tid.into()).hidden(),
        // Last: the rest of the line is its own.
        Column::new("parameters", 40, |e: &Call| e.parameters.as_str().into()).max(0),
    ]);
    cols
}

fn ret_text(e: &Call) -> String {
    match e.ret {
        None if e.unfinished => "unfinished".into(),
        None => "-".into(),
        Some(r) if !e.error.is_empty() => format!("{r} {}", e.error),
        // Addresses (mmap, brk) read better in hex.
        Some(r) if r > 0xffff_ffff => format!("{r:#x}"),
        Some(r) => r.to_string(),
    }
}

/// The errno name of a failed call's return value (-4095..-1).
fn error_name(ret: i64) -> String {
    match nix::errno::Errno::from_raw(-ret as i32) {
        _ if !(-4095..0).contains(&ret) => String::new(),
        nix::errno::Errno::UnknownErrno => String::new(),
        // The enum's own name: ENOENT.
        e => format!("{e:?}"),
    }
}

/// One call as read from a ring slot (or a call in flight).
struct Recorded {
    /// The CPU whose ring held it; None for a call in flight (from the
    /// per-thread table, not yet in any ring).
    cpu: Option<u32>,
    enter_ns: Option<u64>,
    exit_ns: Option<u64>,
    nr: u32,
    compat: bool,
    args: [u64; 6],
    ret: Option<i64>,
    pid: u32,
    tid: u32,
    comm: String,
    text: Option<(usize, Vec<u8>, bool)>,
}

impl Recorded {
    /// When it ended (or began, for those that do not end): the order in
    /// which rings are written.
    fn written_ns(&self) -> u64 {
        self.exit_ns.or(self.enter_ns).unwrap_or(0)
    }
}

fn args_at(r: &Raw<'_>, off: usize) -> [u64; 6] {
    std::array::from_fn(|i| r.u64(off + 8 * i))
}

/// The kept string argument: (its index, its bytes, whether there was more).
fn kept_text(
    r: &Raw<'_>,
    str_arg: usize,
    len_at: usize,
    str_at: usize,
    args: &[u64; 6],
    len_arg: u32,
) -> Option<(usize, Vec<u8>, bool)> {
    let index = r.u32(str_arg) as usize;
    if index == 0 || index > 6 {
        return None;
    }
    let max = bpf::IG_TRACELOOP_STR as usize;
    let len = (r.u32(len_at) as usize).min(max);
    let cut = match len_arg {
        // A buffer: its length argument says how much there was.
        1..=6 => args[len_arg as usize - 1] > len as u64,
        // A string: the kernel stopped at the end of its room.
        _ => len == max - 1,
    };
    Some((index - 1, r.bytes(str_at, len).to_vec(), cut))
}

fn from_slot(cpu: u32, bytes: &[u8], string_args: &HashMap<u32, u32>) -> Option<Recorded> {
    let r = Raw::new(bytes, size_of::<Slot>()).ok()?;
    let flags = r.u32(offset_of!(Slot, flags));
    if flags == 0 {
        return None;
    }
    let entered = flags & bpf::IG_CALL_ENTERED != 0;
    let returned = flags & bpf::IG_CALL_RETURNED != 0;
    let nr = r.u32(offset_of!(Slot, nr));
    let args = args_at(&r, offset_of!(Slot, args));
    let len_arg = string_args.get(&nr).map_or(0, |spec| (spec >> 4) & 0xf);
    Some(Recorded {
        cpu: Some(cpu),
        enter_ns: entered.then(|| r.u64(offset_of!(Slot, enter_ns))),
        exit_ns: returned.then(|| r.u64(offset_of!(Slot, exit_ns))),
        nr,
        compat: flags & bpf::IG_CALL_COMPAT != 0,
        args,
        ret: returned.then(|| r.i64(offset_of!(Slot, ret))),
        pid: r.u32(offset_of!(Slot, pid)),
        tid: r.u32(offset_of!(Slot, tid)),
        comm: r.cstr(offset_of!(Slot, comm), 16),
        text: kept_text(
            &r,
            offset_of!(Slot, str_arg),
            offset_of!(Slot, str_len),
            offset_of!(Slot, text),
            &args,
            len_arg,
        ),
    })
}

/// The last [`KEPT`] calls of the rings of every CPU: each CPU's ring holds
/// its last ones, so the newest KEPT over all of them are exact.
fn last_calls(per_cpu: &[Vec<u8>], string_args: &HashMap<u32, u32>) -> Vec<Recorded> {
    let mut calls: Vec<Recorded> = per_cpu
        .iter()
        .enumerate()
        .flat_map(|(cpu, ring)| {
            (0..KEPT).filter_map(move |i| {
                let at = offset_of!(Ring, calls) + i * size_of::<Slot>();
                from_slot(cpu as u32, ring.get(at..at + size_of::<Slot>())?, string_args)
            })
        })
        .collect();
    calls.sort_by_key(Recorded::written_ns);
    let skip = calls.len().saturating_sub(KEPT);
    calls.drain(..skip);
    calls
}

/// Calls in progress in mount namespace `mntns`, from the kernel's
/// per-thread table (the pid and comm from /proc).
fn in_flight(
    entries: &[([u8; 4], [u8; size_of::<Pending>()])],
    mntns: u64,
    string_args: &HashMap<u32, u32>,
) -> Vec<Recorded> {
    entries
        .iter()
        .filter_map(|(key, value)| {
            let r = Raw::new(value, size_of::<Pending>()).ok()?;
            if r.u64(offset_of!(Pending, mntns_id)) != mntns {
                return None;
            }
            let tid = u32::from_ne_bytes(*key);
            let nr = r.u32(offset_of!(Pending, nr));
            let args = args_at(&r, offset_of!(Pending, args));
            let len_arg = string_args.get(&nr).map_or(0, |spec| (spec >> 4) & 0xf);
            let status = std::fs::read_to_string(format!("/proc/{tid}/status")).unwrap_or_default();
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            Some(Recorded {
                cpu: None,
                enter_ns: Some(r.u64(offset_of!(Pending, enter_ns))),
                exit_ns: None,
                nr,
                compat: r.u32(offset_of!(Pending, flags)) & bpf::IG_CALL_COMPAT != 0,
                args,
                ret: None,
                pid: field("Tgid:").parse().unwrap_or(tid),
                tid,
                comm: field("Name:"),
                text: kept_text(
                    &r,
                    offset_of!(Pending, str_arg),
                    offset_of!(Pending, str_len),
                    offset_of!(Pending, text),
                    &args,
                    len_arg,
                ),
            })
        })
        .collect()
}

/// How a process's exit status reads.
fn exit_text(status: u32) -> String {
    match status & 0x7f {
        0 => format!("exited with code {}", (status >> 8) & 0xff),
        sig => format!("was killed by {}", super::trace_signal::signal_name(sig as i32)),
    }
}

/// What a traceloop run knows besides its session.
struct Tables {
    signatures: Signatures,
    /// The kernel side's string-argument table, by syscall number.
    string_args: HashMap<u32, u32>,
}

static TABLES: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();

fn tables() -> &'static Tables {
    TABLES.get_or_init(|| {
        let signatures = KernelHooks::probe().events.as_deref().map(Signatures::read).unwrap_or_default();
        let string_args = signatures.string_args().into_iter().collect();
        Tables { signatures, string_args }
    })
}

impl Traceloop {
    fn call(&self, rec: Recorded, mntns: u64, now_ns: u64, clock: &Clock, r: &Report<'_, '_>) -> Call {
        let t = tables();
        let nr = (!rec.compat).then_some(rec.nr);
        let text = rec.text.as_ref().map(|(i, b, cut)| (*i, b.as_slice(), *cut));
        let unfinished = rec.cpu.is_none();
        let ret = rec.ret;
        Call {
            common: EventCommon {
                container: r.container(mntns),
                timestamp: clock.to_realtime(rec.enter_ns.or(rec.exit_ns).unwrap_or(0)),
                mntns,
                names: None,
            },
            cpu: rec.cpu.unwrap_or(0),
            pid: rec.pid,
            tid: rec.tid,
            comm: rec.comm,
            syscall: if rec.compat {
                format!("ia32:{}", rec.nr)
            } else {
                crate::syscalls::name(rec.nr.into())
            },
            parameters: t.signatures.parameters(nr, &rec.args, text),
            ret,
            error: ret.map_or_else(String::new, error_name),
            duration: match (rec.enter_ns, rec.exit_ns) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a)),
                (Some(a), None) if unfinished => Some(now_ns.saturating_sub(a)),
                _ => None,
            },
            unfinished,
        }
    }

    /// Shows the last calls of mount namespace `mntns`, then forgets
    /// them if `forget`; `why` heads them.
    fn dump(
        &self,
        session: &mut Session,
        mntns: u64,
        why: &str,
        r: &mut Report<'_, '_>,
    ) -> anyhow::Result<usize> {
        let t = tables();
        let rings = session
            .per_cpu_value::<8, { size_of::<Ring>() }>(RINGS_MAP, &mntns.to_ne_bytes())
            .context("reading the recorded calls")?
            .unwrap_or_default();
        let rings: Vec<Vec<u8>> = rings.iter().map(|v| v.to_vec()).collect();
        let pending = session
            .entries::<4, { size_of::<Pending>() }>(PENDING_MAP)
            .context("reading the calls in progress")?;
        let mut recorded = last_calls(&rings, &t.string_args);
        recorded.extend(in_flight(&pending, mntns, &t.string_args));
        recorded.sort_by_key(|c| c.enter_ns.or(c.exit_ns).unwrap_or(0));
        let clock = Clock::now();
        let now_ns = boot_ns();
        let columns = columns();
        let filters = Filters::parse(&r.opts.filters, &columns)?;
        let calls: Vec<Call> = recorded
            .into_iter()
            .map(|c| self.call(c, mntns, now_ns, &clock, r))
            .filter(|c| filters.matches(&columns, c))
            .collect();
        let who = match calls.first().and_then(|c| c.common.container.clone()).or_else(|| r.container(mntns))
        {
            Some(c) => format!("container {}", c.runtime.container_name),
            None => format!("mount namespace {mntns}"),
        };
        writeln!(r.err, "ig: {who}{why}: its last {} syscalls", calls.len())?;
        match r.opts.output.structured() {
            Some(style) => {
                for c in &calls {
                    style.write(&mut r.out, c)?;
                }
            }
            None => {
                let OutputMode::Columns(sel) = &r.opts.output else { unreachable!("checked") };
                let shown = select_columns(&columns, sel.as_ref())?;
                let mut printer = ColumnsPrinter::new(columns, shown, r.terminal_width);
                printer.write_header(&mut r.out)?;
                for c in &calls {
                    printer.write_row(&mut r.out, c)?;
                }
            }
        }
        r.out.flush()?;
        self.shown.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(calls.len())
    }
}

/// CLOCK_BOOTTIME now, as the kernel side's timestamps.
fn boot_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl ProfileGadget for Traceloop {
    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn check(&self, opts: &RunOptions) -> anyhow::Result<()> {
        opts.output.refuse_folded()?;
        let columns = columns();
        Filters::parse(&opts.filters, &columns)?;
        if let OutputMode::Columns(sel) = &opts.output {
            select_columns(&columns, sel.as_ref())?;
        }
        Ok(())
    }

    fn session_options(&self, opts: SessionOptions) -> SessionOptions {
        // A container's exit is shown as soon as it comes.
        SessionOptions { wakeup_bytes: 0, ..opts }
    }

    fn prepare(&self, session: &mut Session) -> anyhow::Result<()> {
        let t = tables();
        if t.signatures.is_empty() {
            tracing::warn!(
                "no syscall formats in tracefs (CONFIG_FTRACE_SYSCALLS): arguments shown as raw registers"
            );
        }
        let values: Vec<(u32, [u8; 4])> =
            t.string_args.iter().map(|(&nr, &spec)| (nr, spec.to_ne_bytes())).collect();
        session.set_array(STRING_ARGS_MAP, &values).context("filling the string-argument table")?;
        Ok(())
    }

    fn event(&self, session: &mut Session, raw: &[u8], mut r: Report<'_, '_>) -> anyhow::Result<()> {
        let e = Raw::new(raw, size_of::<Exit>())?;
        let mntns = e.u64(offset_of!(Exit, mntns_id));
        let status = e.u32(offset_of!(Exit, exit_code));
        if status == 0 {
            return Ok(());
        }
        let pid = e.u32(offset_of!(Exit, pid));
        let why = format!(" (its first process, pid {pid}, {})", exit_text(status));
        self.dump(session, mntns, &why, &mut r)?;
        Ok(())
    }

    fn container_gone(&self, session: &mut Session, mntns: u64) {
        let _ = session.remove_keys::<8, { size_of::<Ring>() }>(RINGS_MAP, &[mntns.to_ne_bytes()]);
    }

    fn report(&self, session: &mut Session, mut r: Report<'_, '_>) -> anyhow::Result<()> {
        let lost = session.lost();
        let mut namespaces: Vec<u64> = session
            .per_cpu_keys::<8, { size_of::<Ring>() }>(RINGS_MAP)
            .context("reading the recorded calls")?
            .into_iter()
            .map(u64::from_ne_bytes)
            .collect();
        namespaces.sort_unstable();
        tracing::info!(containers = namespaces.len(), "tracing stopped");
        if lost > 0 {
            writeln!(
                r.err,
                "WARN: {lost} syscalls were not recorded: more mount namespaces than the kernel's {} rings",
                bpf::IG_TRACELOOP_RINGS
            )?;
        }
        if namespaces.is_empty() && self.shown.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            writeln!(r.err, "ig: no syscalls recorded: no selected container ran while recording")?;
        }
        for mntns in namespaces {
            self.dump(session, mntns, "", &mut r)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_errors_and_exit_statuses() {
        assert_eq!(error_name(-2), "ENOENT");
        assert_eq!(error_name(-13), "EACCES");
        assert_eq!(error_name(0), "");
        assert_eq!(error_name(-5000), "");
        assert_eq!(exit_text(1 << 8), "exited with code 1");
        assert_eq!(exit_text(9), "was killed by SIGKILL");
    }

    fn slot(nr: u32, enter: u64, exit: u64) -> Vec<u8> {
        let mut b = vec![0u8; size_of::<Slot>()];
        b[offset_of!(Slot, enter_ns)..][..8].copy_from_slice(&enter.to_ne_bytes());
        b[offset_of!(Slot, exit_ns)..][..8].copy_from_slice(&exit.to_ne_bytes());
        b[offset_of!(Slot, nr)..][..4].copy_from_slice(&nr.to_ne_bytes());
        let flags = bpf::IG_CALL_ENTERED | bpf::IG_CALL_RETURNED;
        b[offset_of!(Slot, flags)..][..4].copy_from_slice(&flags.to_ne_bytes());
        b
    }

    #[test]
    fn the_newest_calls_over_all_cpus_are_kept_in_order() {
        // CPU 0 made the calls at even times, CPU 1 at odd ones, more than
        // a ring holds in all: the newest KEPT are kept, oldest first.
        let mut rings = vec![vec![0u8; size_of::<Ring>()]; 2];
        for (cpu, ring) in rings.iter_mut().enumerate() {
            for i in 0..KEPT {
                let t = (2 * i + cpu) as u64 + 100;
                let at = offset_of!(Ring, calls) + i * size_of::<Slot>();
                ring[at..at + size_of::<Slot>()].copy_from_slice(&slot(i as u32, t, t));
            }
        }
        let calls = last_calls(&rings, &HashMap::new());
        assert_eq!(calls.len(), KEPT);
        let times: Vec<u64> = calls.iter().map(|c| c.exit_ns.unwrap()).collect();
        let expected: Vec<u64> = (0..KEPT as u64).map(|i| 100 + KEPT as u64 + i).collect();
        assert_eq!(times, expected);
        // An empty slot is no call.
        assert!(last_calls(&[vec![0u8; size_of::<Ring>()]], &HashMap::new()).is_empty());
    }
}
