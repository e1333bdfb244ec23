//! `ig-hook`: reads the OCI state from stdin within the deadline, runs, exits
//! 0 (or 1 only when told to fail closed). See the library for what it does.

use std::io::Read;
use std::sync::mpsc::channel;
use std::time::Instant;

use ig_hook::log::Log;
use ig_hook::{USAGE, parse_args, run};
use shared::oci::MAX_INPUT;

fn main() -> std::process::ExitCode {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return std::process::ExitCode::SUCCESS;
    }
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            // A misconfigured hook must still not break containers.
            eprintln!("ig-hook: {e}\n{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
    };
    let stage = args.iter().find(|a| !a.starts_with('-')).cloned().unwrap_or_else(|| "hook".into());
    let mut log = Log::new(&opts.log, &stage);

    // stdin is read on a thread so that a runtime which never closes it
    // cannot hold the hook past its deadline.
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let r =
            std::io::stdin().take(MAX_INPUT).read_to_end(&mut buf).map(|_| buf).map_err(|e| e.to_string());
        let _ = tx.send(r);
    });
    let input = rx
        .recv_timeout(opts.timeout.saturating_sub(started.elapsed()))
        .unwrap_or_else(|_| Err("stdin was not closed before the deadline".into()));

    if run(&opts, input, started, &mut log) {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
