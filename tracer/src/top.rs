//! Running a `top` gadget: the kernel sums counters in a hash map; every
//! interval the map is read and cleared, the rows are enriched with their
//! container, filtered (`-F`), sorted (`--sort`), cut to `--max-rows` and
//! printed: a fresh table in columns (the screen is cleared on a terminal),
//! one JSON array per interval.

use std::io::{self, BufWriter, Write};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::cli::TopFlags;
use crate::event::{HasCommon, Value};
use crate::gadgets::Column;
use crate::output::columns::ColumnsPrinter;
use crate::output::filter::Filters;
use crate::output::{OutputMode, Structured, select_columns};
use crate::run::{RunContext, follow_containers};
use crate::run_frame::{Ending, Frame};
use crate::session::{FilterMode, GadgetProgram, Session, SessionError, SessionOptions};

pub trait TopGadget {
    type Row: Serialize + HasCommon;

    /// Its eBPF program; None for a gadget that reads /proc instead.
    fn program(&self) -> Option<&dyn GadgetProgram>;

    /// The flags every top gadget takes, as given.
    fn top(&self) -> &TopFlags;

    /// Every column, the container ones first, hidden ones included.
    fn columns(&self) -> Vec<Column<Self::Row>>;

    /// `--sort` when none is given, e.g. `-reads,-writes`.
    fn default_sort(&self) -> &'static str;

    /// Called once before the first interval (e.g. to take the first
    /// sample that the first interval's deltas are measured from).
    fn begin(&self, _source: &mut Source<'_>, _now: u64) {}

    /// Reads and clears the kernel's counters (`source`); `now` is the
    /// rows' timestamp.
    fn collect(&self, source: &mut Source<'_>, now: u64) -> Result<Vec<Self::Row>, SessionError>;
}

/// Where a top gadget's rows come from.
pub enum Source<'a> {
    /// Its loaded program, whose kernel filters selected what it counted.
    Kernel(&'a mut Session),
    /// /proc under `root`: the gadget selects rows itself with `scope`.
    Procfs {
        root: &'a std::path::Path,
        scope: &'a crate::unowned::NetnsScope,
        collection: &'a crate::collection::Collection,
        process: &'a crate::process_filter::ProcessFlags,
    },
}

impl Source<'_> {
    /// The session of a gadget with a program.
    pub fn session(&mut self) -> Result<&mut Session, SessionError> {
        match self {
            Source::Kernel(s) => Ok(s),
            Source::Procfs { .. } => Err(SessionError::NoProgram),
        }
    }
}

/// `ig check` for a top gadget: its program's variant, or `procfs`.
pub fn probe_top(gadget: &dyn TopProbe) -> anyhow::Result<&'static str> {
    match gadget.program() {
        Some(p) => crate::run::probe_program(p),
        None => Ok("procfs"),
    }
}

/// What `ig check` needs of a top gadget.
pub trait TopProbe {
    fn program(&self) -> Option<&dyn GadgetProgram>;
}

impl<G: TopGadget> TopProbe for G {
    fn program(&self) -> Option<&dyn GadgetProgram> {
        TopGadget::program(self)
    }
}

/// Parses `--sort`: column indexes and whether each is descending.
pub fn parse_sort<E>(spec: &str, columns: &[Column<E>]) -> anyhow::Result<Vec<(usize, bool)>> {
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (name, desc) = match s.strip_prefix('-') {
                Some(n) => (n, true),
                None => (s, false),
            };
            let i = columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
                .with_context(|| format!("--sort: no column {name:?}"))?;
            Ok((i, desc))
        })
        .collect()
}

fn compare(a: &Value<'_>, b: &Value<'_>) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        // Decimals shown as text (a percentage) sort as numbers too.
        (Value::Str(x), Value::Str(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => x.cmp(y),
        },
        _ => a.to_text().cmp(&b.to_text()),
    }
}

/// Sorts rows by the keys, in order.
pub fn sort_rows<E>(rows: &mut [E], keys: &[(usize, bool)], columns: &[Column<E>]) {
    rows.sort_by(|a, b| {
        for &(i, desc) in keys {
            let get = columns[i].get;
            let o = compare(&get(a), &get(b));
            let o = if desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
}

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Runs a top gadget until stopped (or `-t`).
pub async fn run_top<G: TopGadget>(gadget: G, ctx: RunContext<'_>) -> anyhow::Result<()> {
    let RunContext { collection, io, root, .. } = ctx;
    let top = gadget.top().clone();
    let opts = top.common.run_options();
    Frame::refuse_exports(&opts)?;
    anyhow::ensure!(
        gadget.program().is_some() || opts.process.tid.is_none(),
        "--tid: this gadget has one row per process (--pid selects one)"
    );
    let mut frame = Frame::open(&opts, io)?;
    opts.output.refuse_folded()?;
    let columns = gadget.columns();
    let filters = Filters::parse(&opts.filters, &columns)?;
    let sort = parse_sort(top.sort.as_deref().unwrap_or(gadget.default_sort()), &columns)?;
    anyhow::ensure!(top.interval.is_finite() && top.interval >= 0.1, "--interval must be at least 0.1 s");
    let interval = Duration::from_secs_f64(top.interval);
    let shown = match &opts.output {
        OutputMode::Columns(sel) => Some(select_columns(&columns, sel.as_ref())?),
        _ => None,
    };
    let filter = FilterMode::for_run(opts.host, &opts.selector);
    // No events go through the ring buffer: the smallest one will do.
    let session_opts =
        SessionOptions { filter, process: opts.process.clone(), ring_bytes: 4096, ..Default::default() };
    let mut session = match gadget.program() {
        Some(p) => Some(Session::load(p, &session_opts).context("starting the gadget")?),
        None => None,
    };
    let _subscription =
        session.as_ref().and_then(|s| follow_containers(s, &opts, collection, &mut frame.err));
    let scope = crate::unowned::NetnsScope::new(filter, opts.selector.clone(), root);
    {
        let mut source = match session.as_mut() {
            Some(s) => Source::Kernel(s),
            None => Source::Procfs { root, scope: &scope, collection, process: &opts.process },
        };
        gadget.begin(&mut source, now_ns());
    }
    frame.started();
    let terminal_width = frame.terminal_width;
    let mut out =
        BufWriter::with_capacity(64 * 1024, std::mem::replace(&mut frame.out, Box::new(io::sink())));
    let mut tick = tokio::time::interval(interval);
    tick.tick().await; // the first tick is immediate: nothing counted yet
    let result: io::Result<()> = async {
        loop {
            let last = tokio::select! {
                _ = tick.tick() => false,
                ending = frame.end.reached() => match ending {
                    Ending::TimedOut => true,
                    Ending::Stopped => return Ok(()),
                },
            };
            let mut source = match session.as_mut() {
                Some(s) => Source::Kernel(s),
                None => Source::Procfs { root, scope: &scope, collection, process: &opts.process },
            };
            let mut rows = match gadget.collect(&mut source, now_ns()) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("reading the counters: {}", shared::error_chain(&e));
                    Vec::new()
                }
            };
            for r in &mut rows {
                let mntns = r.common().mntns;
                r.common_mut().container = collection.by_mntns(mntns);
            }
            rows.retain(|r| filters.matches(&columns, r));
            sort_rows(&mut rows, &sort, &columns);
            rows.truncate(top.max_rows);
            match (&opts.output, &shown) {
                (OutputMode::Columns(_), Some(shown)) => {
                    if terminal_width.is_some() {
                        out.write_all(b"\x1b[H\x1b[2J")?;
                    } else {
                        out.write_all(b"\n")?;
                    }
                    let mut p = ColumnsPrinter::new(gadget.columns(), shown.clone(), terminal_width);
                    p.write_header(&mut out)?;
                    for r in &rows {
                        p.write_row(&mut out, r)?;
                    }
                }
                (mode, _) => mode.structured().unwrap_or(Structured::Json).write(&mut out, &rows)?,
            }
            out.flush()?;
            if let Some(f) = frame.file.as_mut()
                && let Some((n, why)) = f.new_drops()
            {
                writeln!(frame.err, "WARN: {}", f.drop_message(n, &why))?;
            }
            if last {
                return Ok(());
            }
        }
    }
    .await;
    tracing::info!("tracing stopped");
    drop(session);
    drop(out); // before the file is finished: it may write into it
    frame.finish(result.map_err(anyhow::Error::from), "writing the table")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row {
        name: &'static str,
        n: i64,
    }

    fn cols() -> Vec<Column<Row>> {
        vec![
            Column::new("name", 8, |r: &Row| Value::from(r.name)),
            Column::new("n", 4, |r: &Row| Value::Int(r.n)),
        ]
    }

    #[test]
    fn sorts_by_keys_in_order_numbers_as_numbers() {
        let c = cols();
        let mut rows = vec![Row { name: "b", n: 9 }, Row { name: "a", n: 10 }, Row { name: "c", n: 10 }];
        sort_rows(&mut rows, &parse_sort("-n,name", &c).unwrap(), &c);
        assert_eq!(rows.iter().map(|r| r.name).collect::<Vec<_>>(), ["a", "c", "b"]);
        sort_rows(&mut rows, &parse_sort("-name", &c).unwrap(), &c);
        let mut pct = vec!["9.5", "10.2", "0.0"];
        pct.sort_by(|a, b| compare(&Value::from(*a), &Value::from(*b)));
        assert_eq!(pct, ["0.0", "9.5", "10.2"], "decimals as numbers");
        assert_eq!(rows.iter().map(|r| r.name).collect::<Vec<_>>(), ["c", "b", "a"]);
        assert!(parse_sort("-nope", &c).is_err());
    }
}
