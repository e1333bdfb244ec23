//! `-F column:rule` filter expressions (=, !=, <, <=, >, >=, ~regex, !~regex)
//! against trace exec's columns, then matched against an event.
#![no_main]

use std::sync::OnceLock;

use clap::Parser as _;
use tracer::cli::{Cli, Command, GadgetCommand};
use tracer::event::EventCommon;
use tracer::event_process::Process;
use tracer::gadgets::Gadget;
use tracer::gadgets::trace_exec::ExecEvent;
use tracer::gadgets::{Column, TraceCommand};
use tracer::output::filter::Filters;

fn columns() -> &'static Vec<Column<ExecEvent>> {
    static COLUMNS: OnceLock<Vec<Column<ExecEvent>>> = OnceLock::new();
    COLUMNS.get_or_init(|| {
        let cli = Cli::try_parse_from(["ig", "trace", "exec"]).expect("trace exec parses");
        match cli.command {
            Command::Gadget(GadgetCommand::Trace { gadget: TraceCommand::Exec(exec) }) => exec.columns(),
            _ => unreachable!("trace exec is trace exec"),
        }
    })
}

/// An event with a value in every column kind: numbers, text, a list.
fn event() -> ExecEvent {
    ExecEvent {
        common: EventCommon { timestamp: 1_700_000_000_000_000_000, mntns: 4026531840, ..Default::default() },
        process: Process { pid: 4242, tid: 4242, ppid: Some(1), comm: "sh".into(), uid: 0, gid: 0 },
        loginuid: u32::MAX,
        sessionid: u32::MAX,
        ret: -2,
        args: vec!["/bin/sh".into(), "-c".into(), "echo ü".into()],
        args_truncated: false,
        upperlayer: true,
        cwd: "/".into(),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let specs: Vec<String> = text.split('\n').map(str::to_string).collect();
    if let Ok(filters) = Filters::parse(&specs, columns()) {
        let _ = filters.matches(columns(), &event());
    }
});
