//! `gadgetctl`: the unprivileged client of `ig daemon`. The daemon protocol
//! is not built yet, so it says so and exits non-zero instead of pretending.

fn main() -> std::process::ExitCode {
    eprintln!("gadgetctl: `ig daemon` is not available in this version, so there is nothing to connect to");
    std::process::ExitCode::from(2)
}
