//! `ig top ebpf`: the eBPF programs loaded on the node, with the time they
//! ran and how often in each interval (the kernel's BPF statistics, turned
//! on while the gadget runs), their maps' memory, and the process holding
//! each (placed in its container by its mount namespace). Read through the
//! bpf() syscall and /proc: no program of its own.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use aya::maps::MapInfo;
use aya::programs::{ProgramInfo, loaded_programs};
use serde::Serialize;

use super::{Column, container_columns};
use crate::cli::TopFlags;
use crate::event::EventCommon;
use crate::session::{GadgetProgram, SessionError};
use crate::top::{Source, TopGadget};

/// Show the eBPF programs loaded on the node: run time and run count in
/// each interval, map memory, the process holding each.
///
/// The kernel's run-time statistics are turned on while the gadget runs
/// (BPF_ENABLE_STATS) and off when it stops. A program no process holds
/// (kept by a pin or a link only) has PID 0 and counts as the host's, so
/// it shows with --host.
#[derive(Clone, Debug, clap::Args)]
pub struct TopEbpf {
    #[command(flatten)]
    pub top: TopFlags,

    #[arg(skip)]
    state: std::sync::Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// Keeps the statistics on while open.
    stats: Option<std::os::fd::OwnedFd>,
    /// Program id -> (run time ns, run count) at the last interval.
    last: HashMap<u32, (u64, u64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EbpfRow {
    #[serde(flatten)]
    pub common: EventCommon,
    // Named apart from the container's `runtime` and the event's `type`.
    #[serde(rename = "progId")]
    pub progid: u32,
    #[serde(rename = "progType")]
    pub kind: String,
    pub name: String,
    pub pid: u32,
    pub comm: String,
    /// Nanoseconds it ran in the interval.
    #[serde(rename = "runTime")]
    pub runtime: u64,
    /// Times it ran in the interval.
    #[serde(rename = "runCount")]
    pub runcount: u64,
    /// Bytes the kernel accounts to its maps.
    #[serde(rename = "mapMemory")]
    pub mapmemory: u64,
    #[serde(rename = "mapCount")]
    pub mapcount: u32,
}

crate::impl_has_common!(EbpfRow);

impl TopGadget for TopEbpf {
    type Row = EbpfRow;

    fn program(&self) -> Option<&dyn GadgetProgram> {
        None
    }

    fn top(&self) -> &TopFlags {
        &self.top
    }

    fn columns(&self) -> Vec<Column<EbpfRow>> {
        let mut cols = container_columns();
        cols.extend([
            Column::new("progId", 6, |r: &EbpfRow| r.progid.into()).right(),
            Column::new("progType", 12, |r: &EbpfRow| r.kind.as_str().into()).max(24),
            Column::new("name", 16, |r: &EbpfRow| r.name.as_str().into()),
            Column::new("pid", 7, |r: &EbpfRow| r.pid.into()),
            Column::new("comm", 16, |r: &EbpfRow| r.comm.as_str().into()),
            Column::new("runTime", 10, |r: &EbpfRow| r.runtime.into()).max(16).right(),
            Column::new("runCount", 9, |r: &EbpfRow| r.runcount.into()).max(16).right(),
            Column::new("mapMemory", 10, |r: &EbpfRow| r.mapmemory.into()).max(16).right(),
            Column::new("mapCount", 8, |r: &EbpfRow| r.mapcount.into()).right(),
        ]);
        cols
    }

    fn default_sort(&self) -> &'static str {
        "-runTime,-runCount"
    }

    fn begin(&self, _source: &mut Source<'_>, _now: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
            Ok(fd) => state.stats = Some(fd),
            Err(e) => tracing::warn!("turning on the kernel's BPF run-time statistics: {e}"),
        }
        // The first interval's run time and count are counted from here:
        // only the counters, not who holds each program (a walk of every
        // process's descriptors, 15 ms with 1,000 more processes).
        state.last = loaded_programs()
            .filter_map(Result::ok)
            .map(|info| (info.id(), (info.run_time().as_nanos() as u64, info.run_count())))
            .collect();
    }

    fn collect(&self, source: &mut Source<'_>, now: u64) -> Result<Vec<EbpfRow>, SessionError> {
        let Source::Procfs { root, scope, collection, process } = source else {
            return Err(SessionError::NoProgram);
        };
        let holders = holders(&root.join("proc"));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashMap::new();
        let mut rows = Vec::new();
        for info in loaded_programs().filter_map(Result::ok) {
            let id = info.id();
            let (time, count) = (info.run_time().as_nanos() as u64, info.run_count());
            let (t0, c0) = state.last.get(&id).copied().unwrap_or((time, count));
            seen.insert(id, (time, count));
            let (pid, comm, mntns) = holders.get(&id).cloned().unwrap_or_default();
            let container = if pid == 0 { None } else { collection.by_mntns(mntns) };
            if !scope.shows(container.as_deref()) {
                continue;
            }
            if !process.is_empty() && !process_admits(process, root, pid, &comm) {
                continue;
            }
            let maps = info.map_ids().ok().flatten().unwrap_or_default();
            rows.push(EbpfRow {
                common: EventCommon { container, timestamp: now, mntns, names: None },
                progid: id,
                kind: type_name(&info),
                name: info.name_as_str().unwrap_or_default().to_string(),
                pid,
                comm,
                runtime: time.saturating_sub(t0),
                runcount: count.saturating_sub(c0),
                mapmemory: maps.iter().filter_map(|&m| map_memory(m)).sum(),
                mapcount: maps.len() as u32,
            });
        }
        state.last = seen;
        Ok(rows)
    }
}

fn process_admits(process: &crate::process_filter::ProcessFlags, root: &Path, pid: u32, comm: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(root.join(format!("proc/{pid}"))) else { return false };
    pid != 0 && process.admits(pid, meta.uid(), meta.gid(), comm)
}

/// `BPF_PROG_TYPE_TRACEPOINT` as `tracepoint`.
fn type_name(info: &ProgramInfo) -> String {
    let raw = format!("{:?}", info.program_type());
    raw.trim_start_matches("BPF_PROG_TYPE_").to_ascii_lowercase()
}

/// The bytes the kernel accounts to map `id` (its fdinfo's memlock).
fn map_memory(id: u32) -> Option<u64> {
    use std::os::fd::{AsFd, AsRawFd};
    let info = MapInfo::from_id(id).ok()?;
    let fd = info.fd().ok()?;
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_fd().as_raw_fd())).ok()?;
    fdinfo_value(&text, "memlock")
}

fn fdinfo_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.trim().parse().ok())
}

/// Program id -> (pid, comm, mount namespace) of the first process holding
/// a descriptor for it: each process's fds that are `anon_inode:bpf-prog`,
/// whose fdinfo names the program.
fn holders(proc_dir: &Path) -> HashMap<u32, (u32, String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(proc_dir) else { return out };
    let me = std::process::id();
    let mut pids: Vec<u32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    for pid in pids.into_iter().filter(|&p| p != me) {
        let Ok(fds) = std::fs::read_dir(proc_dir.join(format!("{pid}/fd"))) else { continue };
        for fd in fds.filter_map(Result::ok) {
            let is_prog = std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf-prog");
            if !is_prog {
                continue;
            }
            let info = proc_dir.join(format!("{pid}/fdinfo/{}", fd.file_name().to_string_lossy()));
            let Some(id) = std::fs::read_to_string(info).ok().and_then(|t| fdinfo_value(&t, "prog_id"))
            else {
                continue;
            };
            out.entry(id as u32).or_insert_with(|| {
                let comm = std::fs::read_to_string(proc_dir.join(format!("{pid}/comm"))).unwrap_or_default();
                let mntns = super::top_process::stat::mntns(proc_dir, pid).unwrap_or(0);
                (pid, comm.trim_end().to_string(), mntns)
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn fdinfo_lines_are_read_by_key() {
        let text = "pos:\t0\nflags:\t02000002\nprog_type:\t5\nprog_id:\t42\nmemlock:\t4096\n";
        assert_eq!(super::fdinfo_value(text, "prog_id"), Some(42));
        assert_eq!(super::fdinfo_value(text, "memlock"), Some(4096));
        assert_eq!(super::fdinfo_value(text, "map_id"), None);
    }
}
