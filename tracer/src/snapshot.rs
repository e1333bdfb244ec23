//! Running a `snapshot` gadget: one table of what exists now, for the
//! selected containers (and the host with --host), enriched, filtered and
//! printed once.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use shared::ContainerRecord;

use crate::cli::CommonFlags;
use crate::collection::Collection;
use crate::event::HasCommon;
use crate::gadgets::Column;
use crate::output::columns::ColumnsPrinter;
use crate::output::filter::Filters;
use crate::output::{OutputMode, Structured, select_columns};
use crate::run::RunContext;
use crate::run_frame::Frame;

/// What a snapshot is taken of.
pub struct Scope<'a> {
    pub root: &'a Path,
    pub collection: &'a Collection,
    /// The containers the flags select (all of them without a selection).
    pub selected: Vec<Arc<ContainerRecord>>,
    /// Only the selected containers' entries; false: host entries too (--host).
    pub containers_only: bool,
    /// Host entries too (`--host`).
    pub host: bool,
    /// With `--host` and a selection: the mount namespaces of the known
    /// containers not selected, whose entries are left out.
    pub unselected_mntns: std::collections::HashSet<u64>,
}

pub trait SnapshotGadget {
    type Entry: Serialize + HasCommon;

    /// The flags every gadget takes, as given.
    fn common(&self) -> &CommonFlags;

    /// Every column, the container ones first, hidden ones included.
    fn columns(&self) -> Vec<Column<Self::Entry>>;

    /// The entries that exist now. An entry whose container the gadget
    /// knows better than by mount namespace comes with it filled in.
    fn entries(&self, scope: &Scope<'_>) -> anyhow::Result<Vec<Self::Entry>>;

    /// Sets up what the gadget reads through (loads its program), without
    /// taking a snapshot; the variant, for `ig check`.
    fn probe(&self) -> anyhow::Result<&'static str>;
}

/// `ig check` for a snapshot gadget.
pub fn probe_snapshot<G: SnapshotGadget>(gadget: &G) -> anyhow::Result<&'static str> {
    gadget.probe()
}

/// Takes the snapshot and prints it.
pub async fn run_snapshot<G: SnapshotGadget>(gadget: G, ctx: RunContext<'_>) -> anyhow::Result<()> {
    let opts = gadget.common().run_options();
    Frame::refuse_exports(&opts)?;
    opts.output.refuse_folded()?;
    let columns = gadget.columns();
    let filters = Filters::parse(&opts.filters, &columns)?;
    let shown = match &opts.output {
        OutputMode::Columns(sel) => Some(select_columns(&columns, sel.as_ref())?),
        _ => None,
    };
    let collection = ctx.collection.as_ref();
    let scope = Scope {
        root: ctx.root,
        collection,
        selected: collection.snapshot().into_iter().filter(|r| opts.selector.matches(r)).collect(),
        containers_only: !opts.host,
        host: opts.host,
        unselected_mntns: match opts.host && !opts.selector.is_empty() {
            true => {
                collection.snapshot().iter().filter(|r| !opts.selector.matches(r)).map(|r| r.mntns).collect()
            }
            false => Default::default(),
        },
    };
    let mut entries = gadget.entries(&scope)?;
    let wants_names = crate::gadgets::wants_names(&opts.filters, shown.as_deref(), &columns);
    let mut names = wants_names.then(|| crate::names::NameCache::new(ctx.root));
    for e in &mut entries {
        if e.common().container.is_none() {
            let mntns = e.common().mntns;
            e.common_mut().container = collection.by_mntns(mntns);
        }
        if let (Some(cache), Some((uid, gid))) = (&mut names, e.ids()) {
            let resolved = cache.names(e.common().container.as_deref(), uid, gid);
            e.common_mut().names = Some(resolved);
        }
    }
    entries.retain(|e| filters.matches(&columns, e));

    let mut frame = Frame::open(&opts, ctx.io)?;
    let terminal_width = frame.terminal_width;
    let mut out = io::BufWriter::new(std::mem::replace(&mut frame.out, Box::new(io::sink())));
    let written = match shown {
        Some(shown) => {
            let mut p = ColumnsPrinter::new(columns, shown, terminal_width);
            p.write_header(&mut out).and_then(|()| entries.iter().try_for_each(|e| p.write_row(&mut out, e)))
        }
        None => opts.output.structured().unwrap_or(Structured::Json).write(&mut out, &entries),
    };
    let written = written.and_then(|()| out.flush());
    drop(out); // before the file is finished: it may write into it
    frame.finish(written.map_err(anyhow::Error::from), "writing the snapshot")
}
