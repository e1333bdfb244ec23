//! `ig`: parse, set up logging, check the host, dispatch.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use tracer::cli::{Cli, Command, ConfigCommand};
use tracer::collection::Collection;
use tracer::config::{self, Settings};
use tracer::io::RunIo;
use tracer::{kernel, sources};

fn main() -> std::process::ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    // What the configuration files and IG_* variables set is added to the
    // command line where it does not say otherwise (config.rs).
    // Nothing to add (no file, no IG_ variable): no second parse, no command tree built for it.
    let any_env =
        std::env::vars_os().any(|(k, _)| k.to_str().is_some_and(|k| k.starts_with(config::ENV_PREFIX)));
    let completed = Settings::load(config_flag(&args).as_deref(), home.as_deref()).and_then(|settings| {
        if settings.is_empty() && !any_env {
            return Ok((settings, args));
        }
        let args = config::complete_args(&Cli::command(), args, &settings, &|k| std::env::var(k).ok())?;
        Ok((settings, args))
    });
    let (settings, args) = match completed {
        Ok(x) => x,
        Err(e) => {
            eprintln!("ig: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(args);
    tracer::logging::init(cli.verbose);
    match run(cli, &settings) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ig: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--config FILE` or `--config=FILE`, read before clap parses the rest.
fn config_flag(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(path) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            return Some(PathBuf::from(path));
        }
    }
    None
}

fn run(cli: Cli, settings: &Settings) -> anyhow::Result<()> {
    let root = shared::hookproto::host_root();
    let source_opts = sources::SourceOptions::new(&root, cli.runtimes.clone());
    let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build();
    // Every command but these reads other processes or loads eBPF.
    let needs_privileges = !matches!(
        cli.command,
        Command::Version | Command::Completion(_) | Command::Man(_) | Command::Config { .. }
    );
    if cli.auto_sd_unit_restart && needs_privileges && !kernel::has_privileges() {
        let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--auto-sd-unit-restart").collect();
        let code = runtime()?.block_on(tracer::sdunit::run_as_unit(&root, args))?;
        std::process::exit(code);
    }
    match cli.command {
        Command::Version => {
            println!("ig {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Config { what } => {
            let text = match what {
                ConfigCommand::Default => config::default_file(&Cli::command()),
                ConfigCommand::View => config::view(settings, &Cli::command(), &|k| std::env::var(k).ok()),
            };
            print!("{text}");
            Ok(())
        }
        Command::Completion(args) => {
            args.write(Cli::command(), &mut std::io::stdout()).context("writing the completion script")
        }
        Command::Man(args) => {
            let n = args.write(Cli::command()).context("writing the man pages")?;
            eprintln!("ig: {n} man pages in {}", args.dir.display());
            Ok(())
        }
        Command::Check(args) => {
            kernel::check_host(cli.auto_mount_filesystems)?;
            // A session registers its ring buffer with the runtime.
            runtime()?.block_on(async { args.run() })
        }
        Command::Daemon(args) => {
            kernel::check_host(cli.auto_mount_filesystems)?;
            runtime()?.block_on(tracer::daemon::serve(args, source_opts))
        }
        Command::Gadget(cmd) => {
            if cmd.needs_kernel() {
                kernel::check_host(cli.auto_mount_filesystems)?;
            }
            // Sources start before a gadget loads: a container created in
            // between is in the collection, so the gadget's filter gets it.
            let (collection, _sources) = if cmd.follows_containers() {
                let collection = Collection::new();
                let s =
                    sources::start(&source_opts, &collection).context("starting the container sources")?;
                (collection, Some(s))
            } else {
                (sources::running_now(&source_opts), None)
            };
            runtime()?.block_on(cmd.execute(&root, &collection, None, RunIo::local()))
        }
    }
}
