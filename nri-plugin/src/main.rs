//! `ig-nri`: the containerd NRI plugin. Not built yet: it says so and exits
//! non-zero, so nobody mistakes it for a working plugin.

fn main() -> std::process::ExitCode {
    eprintln!("ig-nri: the NRI plugin is not available in this version");
    std::process::ExitCode::from(2)
}
