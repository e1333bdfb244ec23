//! `gadgetctl`: the unprivileged client of `ig daemon`.

use clap::Parser;
use tracer::client::{GadgetctlCli, forwarded_args, run};

fn main() -> std::process::ExitCode {
    let cli = GadgetctlCli::parse();
    tracer::logging::init(cli.verbose);
    let args = forwarded_args(&std::env::args().skip(1).collect::<Vec<_>>());
    match run(&cli, args) {
        Ok(code) => std::process::ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("gadgetctl: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
