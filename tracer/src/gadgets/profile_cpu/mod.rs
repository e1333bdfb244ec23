//! `ig profile cpu`: where the selected containers spend CPU time, by
//! sampling every CPU at a fixed frequency and counting the stacks seen.
//! Kernel side: program.bpf.c (a perf cpu-clock event per CPU, stacks in a
//! stack-trace map). Here: the counts read once when stopped, stacks
//! symbolized (symbols.rs), written as rows with their stacks, as folded
//! stacks (`-o folded`), and as an SVG flame graph (`--flamegraph`,
//! flamegraph.rs).

pub mod flamegraph;
pub mod symbols;

use std::io::Write;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::{Column, container_columns};
use crate::cli::CommonFlags;
use crate::event::EventCommon;
use crate::output::columns::ColumnsPrinter;
use crate::output::filter::Filters;
use crate::output::{OutputMode, select_columns};
use crate::profile::{ProfileGadget, Report};
use crate::raw::Raw;
use crate::run::RunOptions;
use crate::session::{Attachment, GadgetProgram, Global, Session, SessionOptions, Variant};
use symbols::Symbols;

crate::bpf_object!(profile_cpu);

type K = bpf::ig_cpu_key;

/// Sample what the selected containers run on the CPUs, with their user
/// and kernel stacks, and print the stacks by how often they were seen
/// when stopped.
///
/// Every CPU is sampled --frequency times a second (a perf cpu-clock
/// event); a sample of a selected container's task counts its stacks.
/// User stacks are walked by frame pointers: code built without them
/// shows its innermost frame only. Symbols come from each process's own
/// binaries (through /proc/PID/map_files, inside its container) and from
/// /proc/kallsyms; a process that exits before the end shows `[unknown]`.
/// -o folded writes one `frame;frame;... count` line per stack, for
/// flame graph tools (-F stays the row filter of every gadget).
#[derive(Clone, Debug, clap::Args)]
pub struct ProfileCpu {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Only user stacks (no kernel frames).
    #[arg(short = 'U', long = "user-stacks-only", conflicts_with = "kernel_only")]
    pub user_only: bool,

    /// Only kernel stacks (no user frames).
    #[arg(short = 'K', long = "kernel-stacks-only")]
    pub kernel_only: bool,

    /// Samples per second on each CPU.
    #[arg(long, value_name = "HZ", default_value_t = crate::session::DEFAULT_SAMPLE_HZ,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub frequency: u64,

    /// Also write the stacks as an SVG flame graph to FILE.
    #[arg(long, value_name = "FILE")]
    pub flamegraph: Option<PathBuf>,
}

const ATTACHMENTS: &[Attachment] = &[Attachment::cpu_clock("ig_cpu_sample")];
const VARIANTS: &[Variant] = &[Variant::new("perf-event", ATTACHMENTS)];

/// The stack-trace map (program.bpf.c).
const STACKS_MAP: &str = "gadget_stacks";
/// What the kernel says of a stack it was not asked for (-U, -K).
const NOT_ASKED: i32 = -1;
/// bpf_get_stackid's error when there is no such stack (no user stack:
/// a kernel thread, or a sample taken in user mode for the kernel stack).
const NO_STACK: i32 = -libc::EFAULT;

impl GadgetProgram for ProfileCpu {
    fn object(&self) -> &'static [u8] {
        &bpf::OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        vec![
            ("gadget_user_stacks", Global::Bool(!self.kernel_only)),
            ("gadget_kernel_stacks", Global::Bool(!self.user_only)),
        ]
    }
}

/// One stack pair of one process and how often it was sampled.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuRow {
    #[serde(flatten)]
    pub common: EventCommon,
    pub comm: String,
    pub pid: u32,
    pub count: u64,
    /// Innermost frame first.
    pub user_stack: Vec<String>,
    /// Innermost frame first.
    pub kernel_stack: Vec<String>,
}

crate::impl_has_common!(CpuRow);

/// A frame of a stack the kernel could not keep (its stack map full, or
/// two stacks of the same hash): the sample still counts.
const LOST_STACK: &str = "[stack lost: stack map full]";

impl ProfileCpu {
    pub fn columns(&self) -> Vec<Column<CpuRow>> {
        let mut cols = container_columns();
        cols.extend([
            Column::new("comm", 16, |r: &CpuRow| r.comm.as_str().into()),
            Column::new("pid", 7, |r: &CpuRow| r.pid.into()),
            Column::new("count", 7, |r: &CpuRow| r.count.into()).right(),
        ]);
        cols
    }

    /// The samples, their stacks named, most sampled first.
    fn rows(&self, session: &mut Session, now: u64) -> anyhow::Result<(Vec<CpuRow>, u64)> {
        let entries = session.take_entries::<{ size_of::<K>() }, 8>("cpu_samples")?;
        let keys: Vec<(Raw<'_>, u64)> = entries
            .iter()
            .filter_map(|(k, v)| Some((Raw::new(k, size_of::<K>()).ok()?, u64::from_ne_bytes(*v))))
            .collect();
        let ids = keys
            .iter()
            .flat_map(|(k, _)| [k.i32(offset_of!(K, user_stack_id)), k.i32(offset_of!(K, kernel_stack_id))])
            .filter_map(|id| u32::try_from(id).ok());
        let frames = session.stack_frames(STACKS_MAP, ids).context("reading the stacks")?;
        let mut symbols = Symbols::default();
        let mut lost = 0;
        let rows: Vec<CpuRow> = keys
            .iter()
            .map(|(k, count)| {
                let pid = k.u32(offset_of!(K, pid));
                let mut stack = |id: i32, user: bool| -> Vec<String> {
                    match u32::try_from(id) {
                        Ok(id) => match frames.get(&id) {
                            Some(ips) if user => symbols.user(pid, &symbols::call_sites(ips)),
                            Some(ips) => symbols.kernel(&symbols::call_sites(ips)),
                            None => vec![symbols::UNKNOWN.to_string()],
                        },
                        Err(_) if id == NOT_ASKED || id == NO_STACK => Vec::new(),
                        Err(_) => {
                            lost += count;
                            vec![LOST_STACK.to_string()]
                        }
                    }
                };
                let user_stack = stack(k.i32(offset_of!(K, user_stack_id)), true);
                let kernel_stack = stack(k.i32(offset_of!(K, kernel_stack_id)), false);
                CpuRow {
                    common: EventCommon {
                        container: None,
                        timestamp: now,
                        mntns: k.u64(offset_of!(K, mntns_id)),
                        names: None,
                    },
                    comm: k.cstr(offset_of!(K, comm), 16),
                    pid,
                    count: *count,
                    user_stack,
                    kernel_stack,
                }
            })
            .collect();
        Ok((merge_same_names(rows), lost))
    }
}

/// What makes two rows one: mntns, pid, comm, user and kernel frames.
type SameNames = (u64, u32, String, Vec<String>, Vec<String>);

/// Rows whose stacks read the same once named (samples at different
/// instructions of one function) become one; most sampled first.
fn merge_same_names(rows: Vec<CpuRow>) -> Vec<CpuRow> {
    let mut merged: Vec<CpuRow> = Vec::with_capacity(rows.len());
    let mut index: std::collections::HashMap<SameNames, usize> = std::collections::HashMap::new();
    for row in rows {
        let key =
            (row.common.mntns, row.pid, row.comm.clone(), row.user_stack.clone(), row.kernel_stack.clone());
        match index.get(&key) {
            Some(&i) => merged[i].count += row.count,
            None => {
                index.insert(key, merged.len());
                merged.push(row);
            }
        }
    }
    merged.sort_by(|a, b| b.count.cmp(&a.count).then(a.pid.cmp(&b.pid)));
    merged
}

/// A row's stack root first, as flame graphs draw it: the container (when
/// there is one), the command, the user frames, then the kernel's (`_[k]`).
pub fn folded(row: &CpuRow) -> flamegraph::Folded {
    let mut frames = Vec::with_capacity(2 + row.user_stack.len() + row.kernel_stack.len());
    let container = &row.common.runtime().container_name;
    if !container.is_empty() {
        frames.push(container.clone());
    }
    frames.push(row.comm.clone());
    frames.extend(row.user_stack.iter().rev().cloned());
    frames.extend(row.kernel_stack.iter().rev().map(|f| format!("{f}_[k]")));
    (frames, row.count)
}

/// The table: each row, then its frames, innermost first (kernel, then user).
fn write_table(
    out: &mut dyn Write,
    rows: &[CpuRow],
    columns: Vec<Column<CpuRow>>,
    shown: Vec<usize>,
    terminal_width: Option<usize>,
) -> std::io::Result<()> {
    let mut p = ColumnsPrinter::new(columns, shown, terminal_width);
    let mut out = out;
    p.write_header(&mut out)?;
    for r in rows {
        p.write_row(&mut out, r)?;
        for f in &r.kernel_stack {
            writeln!(out, "    {f} [k]")?;
        }
        for f in &r.user_stack {
            writeln!(out, "    {f}")?;
        }
    }
    Ok(())
}

impl ProfileGadget for ProfileCpu {
    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn check(&self, opts: &RunOptions) -> anyhow::Result<()> {
        let columns = self.columns();
        Filters::parse(&opts.filters, &columns)?;
        if let OutputMode::Columns(sel) = &opts.output {
            select_columns(&columns, sel.as_ref())?;
        }
        Ok(())
    }

    fn session_options(&self, opts: SessionOptions) -> SessionOptions {
        SessionOptions { sample_hz: self.frequency, ..opts }
    }

    fn report(&self, session: &mut Session, r: Report<'_, '_>) -> anyhow::Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let (mut rows, lost_stacks) = self.rows(session, now)?;
        let lost_samples = session.lost();
        let columns = self.columns();
        let filters = Filters::parse(&r.opts.filters, &columns)?;
        for row in &mut rows {
            row.common.container = r.container(row.common.mntns);
        }
        rows.retain(|row| filters.matches(&columns, row));
        let samples: u64 = rows.iter().map(|row| row.count).sum();
        tracing::info!(samples, rows = rows.len(), "tracing stopped");
        if lost_samples > 0 {
            writeln!(r.err, "WARN: {lost_samples} samples lost: the kernel's count map was full")?;
        }
        if lost_stacks > 0 {
            writeln!(r.err, "WARN: {lost_stacks} samples kept without their stack: the stack map was full")?;
        }
        if let Some(path) = &self.flamegraph {
            let stacks = flamegraph::merge(rows.iter().map(folded));
            let title = format!("ig profile cpu: {samples} samples at {} Hz", self.frequency);
            std::fs::write(path, flamegraph::svg(&title, &stacks))
                .with_context(|| format!("writing the flame graph {}", path.display()))?;
            writeln!(r.err, "ig: flame graph written to {}", path.display())?;
        }
        let mut out = r.out;
        match &r.opts.output {
            OutputMode::Folded => {
                for line in flamegraph::merge(rows.iter().map(folded)) {
                    writeln!(out, "{}", flamegraph::folded_line(&line))?;
                }
            }
            OutputMode::Columns(sel) => {
                let shown = select_columns(&columns, sel.as_ref())?;
                write_table(&mut *out, &rows, columns, shown, r.terminal_width)?;
            }
            mode => {
                let style = mode.structured().expect("json, jsonpretty or yaml");
                for row in &rows {
                    style.write(&mut out, row)?;
                }
            }
        }
        out.flush()?;
        Ok(())
    }
}
