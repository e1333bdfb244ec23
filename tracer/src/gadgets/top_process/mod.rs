//! `ig top process`: CPU, memory and threads per process, every interval,
//! from /proc (no eBPF: the kernel keeps these counts for every process
//! already). Each process is placed in its container by its mount
//! namespace; the selection and the process filters apply here.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use super::{Column, container_columns};
use crate::cli::TopFlags;
use crate::event::{EventCommon, Value};
use crate::session::{GadgetProgram, SessionError};
use crate::top::{Source, TopGadget};

pub mod stat;

/// Show processes by CPU and memory use, refreshed every --interval.
///
/// CPU% is the share of one CPU the process used in the interval (all its
/// threads: above 100 when it runs on several); MEM% its resident memory
/// against the node's. Read from /proc: every process of the node is
/// looked at each interval, and the selection applies to their mount
/// namespaces. --tid does not apply (one row per process).
#[derive(Clone, Debug, clap::Args)]
pub struct TopProcess {
    #[command(flatten)]
    pub top: TopFlags,

    /// CPU time seen per process at the last interval, for the next one's deltas.
    #[arg(skip)]
    last: std::sync::Arc<Mutex<Last>>,
}

#[derive(Debug, Default)]
struct Last {
    /// pid -> (start time in ticks, CPU ticks): a reused pid starts afresh.
    cpu: HashMap<u32, (u64, u64)>,
    /// When those were read (ns), 0 before the first interval.
    at: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProcessRow {
    #[serde(flatten)]
    pub common: EventCommon,
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    /// Percent of one CPU over the interval.
    pub cpu: f64,
    /// Percent of the node's memory, resident.
    pub mem: f64,
    /// Resident bytes.
    pub rss: u64,
    /// Virtual bytes.
    pub vsize: u64,
    pub threads: u32,
    /// R, S, D, Z, T... as the kernel says.
    pub state: String,
    pub uid: u32,
    pub gid: u32,
}

crate::impl_has_common!(ProcessRow);

fn percent(v: f64) -> Value<'static> {
    Value::Str(format!("{v:.1}").into())
}

impl TopGadget for TopProcess {
    type Row = ProcessRow;

    fn program(&self) -> Option<&dyn GadgetProgram> {
        None
    }

    fn top(&self) -> &TopFlags {
        &self.top
    }

    fn columns(&self) -> Vec<Column<ProcessRow>> {
        let mut cols = container_columns();
        cols.extend([
            Column::new("pid", 7, |r: &ProcessRow| r.pid.into()),
            Column::new("ppid", 7, |r: &ProcessRow| r.ppid.into()),
            Column::new("comm", 16, |r: &ProcessRow| r.comm.as_str().into()),
            // One decimal; sorted as numbers all the same (top.rs).
            Column::new("cpu", 6, |r: &ProcessRow| percent(r.cpu)).right(),
            Column::new("mem", 5, |r: &ProcessRow| percent(r.mem)).right(),
            Column::new("rss", 10, |r: &ProcessRow| r.rss.into()).max(16).right(),
            Column::new("vsize", 10, |r: &ProcessRow| r.vsize.into()).max(16).right().hidden(),
            Column::new("threads", 7, |r: &ProcessRow| r.threads.into()).right(),
            Column::new("state", 5, |r: &ProcessRow| r.state.as_str().into()),
            Column::new("uid", 7, |r: &ProcessRow| r.uid.into()).hidden().max(10),
            Column::new("gid", 7, |r: &ProcessRow| r.gid.into()).hidden().max(10),
        ]);
        cols
    }

    fn default_sort(&self) -> &'static str {
        "-cpu,-rss"
    }

    fn begin(&self, source: &mut Source<'_>, now: u64) {
        // The CPU time each process had when the run began: its stat line
        // alone (a row needs more of each process: 50 ms with 1,000 more).
        let Source::Procfs { root, .. } = source else { return };
        let proc_dir = root.join("proc");
        let cpu = stat::pids(&proc_dir)
            .into_iter()
            .filter_map(|pid| {
                stat::read_times(&proc_dir, pid).map(|st| (pid, (st.starttime, st.utime + st.stime)))
            })
            .collect();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.cpu = cpu;
        last.at = now;
    }

    fn collect(&self, source: &mut Source<'_>, now: u64) -> Result<Vec<ProcessRow>, SessionError> {
        let Source::Procfs { root, scope, collection, process } = source else {
            return Err(SessionError::NoProgram);
        };
        let proc_dir = root.join("proc");
        let clock = stat::ticks_per_second();
        let page = stat::page_size();
        let mem_total = stat::mem_total(&proc_dir).unwrap_or(0);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed_ns = now.saturating_sub(last.at);
        let first = last.at == 0;
        let mut seen = HashMap::new();
        let mut rows = Vec::new();
        for pid in stat::pids(&proc_dir) {
            let Some(st) = stat::read(&proc_dir, pid) else { continue }; // it exited
            let cpu_ticks = st.utime + st.stime;
            let before = last.cpu.get(&pid).filter(|(start, _)| *start == st.starttime).map(|(_, t)| *t);
            seen.insert(pid, (st.starttime, cpu_ticks));
            let Some(mntns) = stat::mntns(&proc_dir, pid) else { continue };
            let container = collection.by_mntns(mntns);
            if !scope.shows(container.as_deref()) || !process.admits(pid, st.uid, st.gid, &st.comm) {
                continue;
            }
            // A process new in this interval used its whole CPU time in it.
            let used = cpu_ticks - before.unwrap_or(0).min(cpu_ticks);
            let cpu = match (first, elapsed_ns) {
                (true, _) | (_, 0) => 0.0,
                _ => used as f64 / clock as f64 * 1e9 / elapsed_ns as f64 * 100.0,
            };
            let rss = st.rss_pages * page;
            rows.push(ProcessRow {
                common: EventCommon { container, timestamp: now, mntns, names: None },
                pid,
                ppid: st.ppid,
                comm: st.comm,
                cpu,
                mem: if mem_total > 0 { rss as f64 / mem_total as f64 * 100.0 } else { 0.0 },
                rss,
                vsize: st.vsize,
                threads: st.threads,
                state: st.state.to_string(),
                uid: st.uid,
                gid: st.gid,
            });
        }
        last.cpu = seen;
        last.at = now;
        Ok(rows)
    }
}
