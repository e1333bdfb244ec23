//! `ig snapshot <gadget>`: one-shot tables.

use std::path::Path;

use crate::collection::Collection;
use crate::io::RunIo;
use std::io::{self, Write};

use clap::{Args, Subcommand};

use super::CommonFlags;
use crate::event::HasCommon;
use crate::gadgets::Column;
use crate::gadgets::snapshot_process::SnapshotProcess;
use crate::gadgets::snapshot_socket::{self, Protocols};
use crate::output::columns::ColumnsPrinter;
use crate::output::filter::Filters;
use crate::output::{OutputMode, select_columns, write_json};
use serde::Serialize;

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// List the processes running now.
    Process(ProcessArgs),
    /// List the TCP and UDP sockets that exist now.
    Socket(SocketArgs),
}

#[derive(Debug, Args)]
pub struct SocketArgs {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Which sockets: all, tcp or udp.
    #[arg(long, default_value = "all")]
    pub proto: Protocols,
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
    /// Takes the table, with the containers of `collection`, and prints it.
    pub fn run(self, root: &Path, collection: &Collection, io: RunIo) -> anyhow::Result<()> {
        match self {
            SnapshotCommand::Process(a) => process(a, collection, io),
            SnapshotCommand::Socket(a) => socket(a, root, collection, io),
        }
    }
}

fn socket(a: SocketArgs, root: &Path, collection: &Collection, io: RunIo) -> anyhow::Result<()> {
    let opts = a.common.run_options();
    let columns = snapshot_socket::columns();
    let filters = Filters::parse(&opts.filters, &columns)?;
    // One process per network namespace: each selected container's init,
    // and ig itself for the host's namespace.
    let mut namespaces: Vec<(String, u64)> = Vec::new();
    for r in collection.snapshot().iter().filter(|r| opts.selector.matches(r)) {
        if !namespaces.iter().any(|(_, n)| *n == r.netns) {
            namespaces.push((r.pid.to_string(), r.netns));
        }
    }
    if opts.host && opts.selector.name.is_none() {
        let host = shared::procfs::ns_inode(root, std::process::id(), "net")?;
        if !namespaces.iter().any(|(_, n)| *n == host) {
            namespaces.push(("self".into(), host));
        }
    }
    let mut entries = Vec::new();
    for (pid, netns) in &namespaces {
        for mut e in snapshot_socket::sockets_of(root, pid, *netns, a.proto)? {
            e.common.container = collection.by_netns(*netns).into_iter().next();
            entries.push(e);
        }
    }
    entries.retain(|e| filters.matches(&columns, e));
    print_table(&opts.output, columns, &entries, io)
}

fn print_table<E: Serialize>(
    output: &OutputMode,
    columns: Vec<Column<E>>,
    entries: &[E],
    run_io: RunIo,
) -> anyhow::Result<()> {
    let mut out = io::BufWriter::new(run_io.out);
    match output {
        OutputMode::Columns(sel) => {
            let shown = select_columns(&columns, sel.as_ref())?;
            let mut p = ColumnsPrinter::new(columns, shown, run_io.terminal_width);
            p.write_header(&mut out)?;
            for e in entries {
                p.write_row(&mut out, e)?;
            }
        }
        OutputMode::Json | OutputMode::JsonPretty => {
            write_json(&mut out, &entries, *output == OutputMode::JsonPretty)?
        }
    }
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn process(a: ProcessArgs, collection: &Collection, io: RunIo) -> anyhow::Result<()> {
    let opts = a.common.run_options();
    let gadget = SnapshotProcess { threads: a.threads };
    let columns = gadget.columns();
    let filters = Filters::parse(&opts.filters, &columns)?;
    let selected: Vec<u64> =
        collection.snapshot().iter().filter(|r| opts.selector.matches(r)).map(|r| r.mntns).collect();
    let filter_by_mntns = !opts.host || opts.selector.name.is_some();
    let mut entries = gadget.take(filter_by_mntns.then_some(selected.as_slice()))?;
    for e in &mut entries {
        let mntns = e.common.mntns;
        e.common_mut().container = collection.by_mntns(mntns);
    }
    entries.retain(|e| filters.matches(&columns, e));
    print_table(&opts.output, gadget.columns(), &entries, io)
}
