//! `ig list-containers [-o ...] [-c NAME] [-w]`: the containers this node
//! runs, as the hooks recorded them; with `-w`, then every creation and
//! deletion as it happens.

use std::io::{self, Write};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use shared::ContainerRecord;

use crate::collection::{Change, Collection};
use crate::event::Value;
use crate::gadgets::Column;
use crate::io::RunIo;
use crate::output::columns::ColumnsPrinter;
use crate::output::{OutputMode, Structured, select_columns};

#[derive(Debug, Args)]
pub struct ListContainersArgs {
    /// Output: columns, columns=a,b (or =+a,-b), json, jsonpretty, yaml.
    #[arg(short = 'o', long = "output", default_value = "columns", value_parser = OutputMode::parse)]
    pub output: OutputMode,

    #[command(flatten)]
    pub selection: crate::selector::SelectorFlags,

    /// After listing, show containers as they are created and deleted.
    #[arg(short = 'w', long)]
    pub watch: bool,
}

/// One line of the listing: a container, and in watch mode what happened to it.
pub struct Row {
    pub event: &'static str,
    pub record: Arc<ContainerRecord>,
}

#[derive(Serialize)]
struct WatchEvent<'a> {
    event: &'a str,
    container: &'a ContainerRecord,
}

fn columns(watch: bool) -> Vec<Column<Row>> {
    let mut cols = vec![
        Column::new("event", 7, |r: &Row| Value::from(r.event)),
        Column::new("runtime.runtimeName", 10, |r: &Row| Value::from(r.record.runtime.runtime_name.as_str()))
            .max(12),
        Column::new("runtime.containerId", 13, |r: &Row| Value::from(r.record.runtime.container_id.as_str()))
            .max(64),
        Column::new("runtime.containerName", 20, |r: &Row| {
            Value::from(r.record.runtime.container_name.as_str())
        })
        .max(0),
        Column::new("runtime.containerImageName", 30, |r: &Row| {
            Value::from(r.record.runtime.container_image_name.as_str())
        })
        .hidden()
        .max(80),
        Column::new("k8s.namespace", 16, |r: &Row| Value::from(r.record.k8s.namespace.as_str()))
            .hidden()
            .max(40),
        Column::new("k8s.podName", 20, |r: &Row| Value::from(r.record.k8s.pod_name.as_str()))
            .hidden()
            .max(60),
        Column::new("k8s.containerName", 16, |r: &Row| Value::from(r.record.k8s.container_name.as_str()))
            .hidden()
            .max(40),
        Column::new("k8s.podUID", 36, |r: &Row| Value::from(r.record.k8s.pod_uid.as_str())).hidden(),
        Column::new("pid", 7, |r: &Row| Value::from(r.record.pid)).hidden(),
        Column::new("mntns", 10, |r: &Row| Value::from(r.record.mntns)).hidden(),
        Column::new("netns", 10, |r: &Row| Value::from(r.record.netns)).hidden(),
        Column::new("cgroupPath", 30, |r: &Row| Value::from(r.record.cgroup_path.as_str())).hidden().max(0),
    ];
    cols[0].visible = watch;
    cols
}

impl ListContainersArgs {
    /// Lists the containers of `collection`; with `-w`, then follows its
    /// changes until stopped. The caller feeds the collection (`ig` starts
    /// the sources, the daemon has its own).
    pub async fn run(self, collection: &Arc<Collection>, io: RunIo) -> anyhow::Result<()> {
        self.output.refuse_folded()?;
        let selector = self.selection.selector();
        let RunIo { out, terminal_width, stop, started, .. } = io;
        let mut out = io::BufWriter::new(out);
        if !self.watch {
            let rows: Vec<Row> = collection
                .snapshot()
                .into_iter()
                .filter(|r| selector.matches(r))
                .map(|record| Row { event: "", record })
                .collect();
            return print_list(&self.output, rows, terminal_width, &mut out);
        }

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let _subscription = collection.subscribe(move |change| {
            let _ = tx.send(change.clone());
        });
        tracing::info!("watching containers");
        if let Some(started) = started {
            started();
        }
        let mut printer = match &self.output {
            OutputMode::Columns(sel) => {
                let cols = columns(true);
                let shown = select_columns(&cols, sel.as_ref())?;
                let p = ColumnsPrinter::new(cols, shown, terminal_width);
                p.write_header(&mut out)?;
                out.flush()?;
                Some(p)
            }
            _ => None,
        };
        let style = self.output.structured().unwrap_or(Structured::Json);
        let mut stop = stop;
        let result: io::Result<()> = async {
            loop {
                let change = tokio::select! {
                    c = rx.recv() => match c { Some(c) => c, None => break },
                    _ = &mut stop => break,
                };
                let (event, record) = match change {
                    Change::Added(r) => ("CREATED", r),
                    Change::Removed(r) => ("DELETED", r),
                };
                if !selector.matches(&record) {
                    continue;
                }
                match &mut printer {
                    Some(p) => p.write_row(&mut out, &Row { event, record })?,
                    None => style.write(&mut out, &WatchEvent { event, container: &record })?,
                }
                out.flush()?;
            }
            Ok(())
        }
        .await;
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other.context("writing containers"),
        }
    }
}

fn print_list(
    mode: &OutputMode,
    rows: Vec<Row>,
    terminal_width: Option<usize>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match mode {
        OutputMode::Columns(sel) => {
            let cols = columns(false);
            let shown = select_columns(&cols, sel.as_ref())?;
            let mut p = ColumnsPrinter::new(cols, shown, terminal_width);
            p.write_header(out)?;
            for row in &rows {
                p.write_row(out, row)?;
            }
        }
        OutputMode::Folded => return Err(crate::output::OutputError::NotFoldable.into()),
        OutputMode::Json | OutputMode::JsonPretty | OutputMode::Yaml => {
            let records: Vec<&ContainerRecord> = rows.iter().map(|r| r.record.as_ref()).collect();
            mode.structured().unwrap_or(Structured::Json).write(out, &records)?;
        }
    }
    out.flush()?;
    Ok(())
}
