//! `gadgetctl`: the unprivileged client of `ig daemon`.

use clap::{CommandFactory, Parser};
use tracer::client::{GadgetctlCli, GadgetctlCommand, forwarded_args, run};

fn main() -> std::process::ExitCode {
    let cli = GadgetctlCli::parse();
    tracer::logging::init(cli.verbose);
    match &cli.command {
        GadgetctlCommand::Completion(args) => {
            if let Err(e) = args.write(GadgetctlCli::command(), &mut std::io::stdout()) {
                eprintln!("gadgetctl: writing the completion script: {e}");
                return std::process::ExitCode::FAILURE;
            }
            return std::process::ExitCode::SUCCESS;
        }
        GadgetctlCommand::Man(args) => {
            return match args.write(GadgetctlCli::command()) {
                Ok(n) => {
                    eprintln!("gadgetctl: {n} man pages in {}", args.dir.display());
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("gadgetctl: writing the man pages: {e}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let args = forwarded_args(&std::env::args().skip(1).collect::<Vec<_>>());
    let mut worst = 0;
    for (action, args) in cli.command.requests(&args).unwrap_or_default() {
        match run(&cli, args, action) {
            Ok(code) => worst = worst.max(code),
            Err(e) => {
                eprintln!("gadgetctl: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    std::process::ExitCode::from(worst.clamp(0, 255) as u8)
}
