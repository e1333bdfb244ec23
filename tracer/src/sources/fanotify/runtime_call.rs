//! What an exec of an OCI runtime binary (runc, crun) is about to do, from
//! its arguments. Only `create` and `start` matter: between them the
//! container's init process waits for `start`, so holding `start` until the
//! record is in the filter maps means its first exec is traced.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeCall {
    /// `create [--bundle B] [--pid-file P] ID`; relative paths are taken
    /// against the caller's working directory, as the runtime does.
    Create { id: String, bundle: PathBuf, pid_file: Option<PathBuf> },
    /// `start ID`.
    Start { id: String },
    /// Anything else (`init`, `delete`, `state`, `run`, `exec`, ...).
    Other,
}

/// Global flags of runc and crun that take a value.
const GLOBAL_WITH_VALUE: &[&str] =
    &["--root", "--log", "--log-format", "--criu", "--rootless", "--cgroup-manager"];
/// `create` flags that take a value (the others are switches).
const CREATE_WITH_VALUE: &[&str] =
    &["--bundle", "-b", "--pid-file", "--console-socket", "--preserve-fds", "--pidfd-socket"];

/// Parses `argv` (argv[0] included) of a runtime exec; `cwd` is the caller's.
pub fn parse(argv: &[String], cwd: &Path) -> RuntimeCall {
    let mut it = argv.iter().skip(1).peekable();
    let mut command = None;
    while let Some(a) = it.next() {
        if a.starts_with('-') {
            if GLOBAL_WITH_VALUE.contains(&a.as_str()) {
                it.next();
            }
            continue;
        }
        command = Some(a.as_str());
        break;
    }
    let rest: Vec<&String> = it.collect();
    match command {
        Some("create") => parse_create(&rest, cwd),
        Some("start") => match positionals(&rest, &[]).last() {
            Some(id) => RuntimeCall::Start { id: id.to_string() },
            None => RuntimeCall::Other,
        },
        _ => RuntimeCall::Other,
    }
}

fn parse_create(args: &[&String], cwd: &Path) -> RuntimeCall {
    let mut bundle = None;
    let mut pid_file = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with('-') => (n, Some(v.to_string())),
            _ => (a, None),
        };
        if CREATE_WITH_VALUE.contains(&name) {
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    match args.get(i) {
                        Some(v) => v.to_string(),
                        None => break,
                    }
                }
            };
            match name {
                "--bundle" | "-b" => bundle = Some(value),
                "--pid-file" => pid_file = Some(value),
                _ => {}
            }
        }
        i += 1;
    }
    let Some(id) = positionals(args, CREATE_WITH_VALUE).last().map(|s| s.to_string()) else {
        return RuntimeCall::Other;
    };
    let bundle = bundle.map(|b| cwd.join(b)).unwrap_or_else(|| cwd.to_path_buf());
    RuntimeCall::Create { id, bundle, pid_file: pid_file.map(|p| cwd.join(p)) }
}

/// The arguments that are neither flags nor flag values. An empty one is
/// no container id (runc and crun refuse it), so it is never taken as one.
fn positionals<'a>(args: &[&'a String], with_value: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a.starts_with('-') {
            if !a.contains('=') && with_value.contains(&a) {
                i += 1;
            }
        } else if !a.is_empty() {
            out.push(a);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn containerd_shim_create() {
        let a = args(
            "runc --root /run/containerd/runc/moby --log /b/log.json --log-format json --systemd-cgroup \
             create --bundle /b --pid-file /b/init.pid --console-socket /tmp/s --no-pivot abc123",
        );
        assert_eq!(
            parse(&a, Path::new("/")),
            RuntimeCall::Create {
                id: "abc123".into(),
                bundle: "/b".into(),
                pid_file: Some("/b/init.pid".into())
            }
        );
    }

    #[test]
    fn conmon_create_with_short_and_inline_flags() {
        let a =
            args("/usr/bin/runc --log-format=json --log /u/oci-log create -b /u --pid-file=/u/pidfile cid");
        assert_eq!(
            parse(&a, Path::new("/")),
            RuntimeCall::Create {
                id: "cid".into(),
                bundle: "/u".into(),
                pid_file: Some("/u/pidfile".into())
            }
        );
    }

    #[test]
    fn relative_paths_and_the_default_bundle_follow_the_cwd() {
        assert_eq!(
            parse(&args("runc create --pid-file p.pid x"), Path::new("/work")),
            RuntimeCall::Create {
                id: "x".into(),
                bundle: "/work".into(),
                pid_file: Some("/work/p.pid".into())
            }
        );
    }

    #[test]
    fn start_and_the_rest() {
        assert_eq!(
            parse(&args("runc --root /r start abc"), Path::new("/")),
            RuntimeCall::Start { id: "abc".into() }
        );
        for other in
            ["runc init", "runc --root /r delete abc", "runc run --bundle /b x", "runc", "runc create"]
        {
            assert_eq!(parse(&args(other), Path::new("/")), RuntimeCall::Other, "{other}");
        }
    }

    /// Found by fuzz/targets/runtime_call.rs: `start ""` (the empty argument a
    /// cmdline's trailing NUL also gives) was a start of container "".
    #[test]
    fn an_empty_argument_is_no_container_id() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for a in [
            argv(&["runc", "--root", "/rc", "start", "root", "/run/c1", ""]),
            argv(&["runc", "start", ""]),
            argv(&["runc", "create", "--bundle", "/b", ""]),
        ] {
            let call = parse(&a, Path::new("/"));
            assert!(
                !matches!(&call, RuntimeCall::Start { id } | RuntimeCall::Create { id, .. } if id.is_empty()),
                "{a:?} gave {call:?}"
            );
        }
        assert_eq!(
            parse(&argv(&["runc", "start", "c1", ""]), Path::new("/")),
            RuntimeCall::Start { id: "c1".into() }
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(argv in proptest::collection::vec("[-a-z=/.]{0,12}", 0..12)) {
            let _ = parse(&argv, Path::new("/"));
        }
    }
}
