//! `ig-hook`: reads the OCI state from stdin within the deadline, runs, exits
//! 0 (or 1 only when told to fail closed). See the library for what it does.
//!
//! Nothing here may end the process with another status: a panic (exit 101,
//! or SIGABRT in release builds, which abort on panic) fails the container
//! start, so every write to stdout/stderr ignores its error (a closed pipe)
//! and a panic, on any thread, is logged and ends the process at once with
//! the status the options ask for, from the panic hook: that runs before
//! unwinding or aborting, so the status is the same with either strategy.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use ig_hook::input::read_stdin;
use ig_hook::log::Log;
use ig_hook::{Options, USAGE, parse_args, run};
use shared::oci::MAX_INPUT;

fn main() -> ExitCode {
    let started = Instant::now();
    let args: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        let _ = writeln!(std::io::stdout(), "{USAGE}");
        return ExitCode::SUCCESS;
    }
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            // A misconfigured hook must still not break containers.
            let _ = writeln!(std::io::stderr(), "ig-hook: {e}\n{USAGE}");
            return ExitCode::SUCCESS;
        }
    };
    let stage = args.iter().find(|a| !a.starts_with('-')).cloned().unwrap_or_else(|| "hook".into());
    let log = Log::new(&opts.log, &stage);
    // The default panic message goes to stderr, which a runtime may not
    // read; the log file is where an operator looks.
    let panic_log = Log::new(&opts.log, &stage);
    let panic_status = i32::from(opts.fail_closed);
    std::panic::set_hook(Box::new(move |info| {
        panic_log.line(&format!("internal error (panic): {info}"));
        std::process::exit(panic_status);
    }));

    if hook_run(&opts, started, log) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Test seam: makes the hook panic after reading its input, so a test can
/// show what a panic does to the exit status.
const TEST_PANIC_ENV: &str = "IG_HOOK_TEST_PANIC";

fn hook_run(opts: &Options, started: Instant, mut log: Log) -> bool {
    let input = read_stdin(MAX_INPUT, started + opts.timeout).map_err(|e| e.to_string());
    if std::env::var_os(TEST_PANIC_ENV).is_some() {
        panic!("{TEST_PANIC_ENV} is set");
    }
    run(opts, input, started, &mut log)
}
