//! `ig snapshot <gadget>`: one-shot tables.

use std::io::{self, Write};
use std::path::Path;

use clap::{Args, Subcommand};

use super::CommonFlags;
use crate::collection::Collection;
use crate::event::HasCommon;
use crate::gadgets::snapshot_process::SnapshotProcess;
use crate::output::columns::{ColumnsPrinter, stdout_terminal_width};
use crate::output::filter::Filters;
use crate::output::{OutputMode, select_columns, write_json};

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// List the processes running now.
    Process(ProcessArgs),
}

#[derive(Debug, Args)]
pub struct ProcessArgs {
    #[command(flatten)]
    pub common: CommonFlags,

    /// List every thread (adds the TID and PPID columns).
    #[arg(long)]
    pub threads: bool,
}

impl SnapshotCommand {
    pub fn run(self, root: &Path) -> anyhow::Result<()> {
        let SnapshotCommand::Process(a) = self;
        let opts = a.common.run_options();
        let gadget = SnapshotProcess { threads: a.threads };
        let columns = gadget.columns();
        let filters = Filters::parse(&opts.filters, &columns)?;
        // The containers running now: those the hooks and plugins recorded.
        let collection = Collection::new();
        crate::sources::spool::load(root, &collection);
        let selected: Vec<u64> =
            collection.snapshot().iter().filter(|r| opts.selector.matches(r)).map(|r| r.mntns).collect();
        let filter_by_mntns = !opts.host || opts.selector.name.is_some();
        let mut entries = gadget.take(filter_by_mntns.then_some(selected.as_slice()))?;
        for e in &mut entries {
            let mntns = e.common.mntns;
            e.common_mut().container = collection.by_mntns(mntns);
        }
        entries.retain(|e| filters.matches(&columns, e));

        let mut out = io::BufWriter::new(io::stdout());
        match &opts.output {
            OutputMode::Columns(sel) => {
                let shown = select_columns(&columns, sel.as_ref())?;
                let mut p = ColumnsPrinter::new(gadget.columns(), shown, stdout_terminal_width());
                p.write_header(&mut out)?;
                for e in &entries {
                    p.write_row(&mut out, e)?;
                }
            }
            OutputMode::Json | OutputMode::JsonPretty => {
                write_json(&mut out, &entries, opts.output == OutputMode::JsonPretty)?;
            }
        }
        match out.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => Ok(other?),
        }
    }
}
