//! `--auto-sd-unit-restart`: when ig lacks the privileges to trace (e.g. in
//! a `kubectl debug node` pod, which gets the host's / at /host but no
//! capabilities), it runs itself again as a transient systemd service on the
//! host, through systemd's private D-Bus socket. The service gets ig's own
//! stdin, stdout and stderr (passed as file descriptors), so its output
//! appears here as if ig had run itself; its exit status becomes ig's, and
//! Ctrl-C stops the service.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::dbus::{Connection, Target, Value};

/// Test seam and override: the socket to use instead of `$HOST_ROOT/run/systemd/private`.
pub const SOCKET_ENV: &str = "IG_SYSTEMD_SOCKET";

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const POLL: Duration = Duration::from_millis(100);
/// How long one call may wait for systemd before it is an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const MANAGER_AT: Target<'static> = Target { destination: Some(DEST), path: PATH, interface: Some(MANAGER) };

pub fn private_socket(root: &Path) -> PathBuf {
    std::env::var_os(SOCKET_ENV).map(PathBuf::from).unwrap_or_else(|| root.join("run/systemd/private"))
}

/// A name no other run uses.
fn unit_name() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("ig-{}-{nanos}.service", std::process::id())
}

/// The ExecStart, environment and stdio of the transient service, as
/// StartTransientUnit's `a(sv)`; the stdio values index the passed
/// descriptors (stdin, stdout, stderr).
fn properties(exe: &str, args: &[String]) -> Value {
    let argv: Vec<Value> =
        std::iter::once(exe).chain(args.iter().map(String::as_str)).map(Value::str).collect();
    let mut env = Vec::new();
    if let Ok(level) = std::env::var("IG_LOG") {
        env.push(Value::str(format!("IG_LOG={level}")));
    }
    let exec = Value::Struct(vec![Value::str(exe), Value::Array("s".into(), argv), Value::Bool(false)]);
    let props = [
        ("Description", Value::str("ig, run again with privileges (--auto-sd-unit-restart)")),
        ("ExecStart", Value::Array("(sasb)".into(), vec![exec])),
        ("Environment", Value::Array("s".into(), env)),
        ("RemainAfterExit", Value::Bool(true)),
        ("StandardInputFileDescriptor", Value::Fd(0)),
        ("StandardOutputFileDescriptor", Value::Fd(1)),
        ("StandardErrorFileDescriptor", Value::Fd(2)),
    ];
    let props = props.into_iter().map(|(k, v)| Value::Struct(vec![Value::str(k), Value::variant(v)]));
    Value::Array("(sv)".into(), props.collect())
}

/// Runs `args` (ig's command line without the flag) as a transient unit and
/// returns its exit status.
pub async fn run_as_unit(root: &Path, args: Vec<String>) -> anyhow::Result<i32> {
    let socket = private_socket(root);
    let mut conn = Connection::connect(&socket, CALL_TIMEOUT)
        .with_context(|| format!("connecting to systemd at {}", socket.display()))?;
    // The host sees this process's executable at /proc/<pid>/exe (the pod
    // shares the host's pid namespace).
    let exe = format!("/proc/{}/exe", std::process::id());
    let name = unit_name();
    let aux = Value::Array("(sa(sv))".into(), Vec::new());
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio: [BorrowedFd<'_>; 3] = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    let body = [Value::str(&name), Value::str("fail"), properties(&exe, &args), aux];
    conn.call(MANAGER_AT, "StartTransientUnit", &body, &stdio).context("StartTransientUnit")?;
    tracing::info!(unit = name, "running with privileges as a transient systemd unit");
    let reply = conn.call(MANAGER_AT, "GetUnit", &[Value::str(&name)], &[]).context("GetUnit")?;
    let unit = match reply.first() {
        Some(Value::Path(p)) => p.clone(),
        _ => anyhow::bail!("GetUnit returned {reply:?}, not an object path"),
    };

    let mut stop = crate::io::stop_on_signals();
    let mut stopping = false;
    loop {
        let active = get(&mut conn, &unit, "org.freedesktop.systemd1.Unit", "ActiveState")?;
        let sub = get(&mut conn, &unit, "org.freedesktop.systemd1.Unit", "SubState")?;
        let (active, sub) = (active.as_str().unwrap_or_default(), sub.as_str().unwrap_or_default());
        if active == "failed" || active == "inactive" || sub == "exited" {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut stop, if !stopping => {
                stopping = true;
                stop_unit(&mut conn, &name);
            }
        }
    }
    let status = get(&mut conn, &unit, "org.freedesktop.systemd1.Service", "ExecMainStatus")?;
    let status = status
        .as_i64()
        .and_then(|n| i32::try_from(n).ok())
        .with_context(|| format!("ExecMainStatus is {status:?}, not an integer"))?;
    stop_unit(&mut conn, &name);
    let _ = conn.call(MANAGER_AT, "ResetFailedUnit", &[Value::str(&name)], &[]);
    Ok(status)
}

fn stop_unit(conn: &mut Connection, name: &str) {
    if let Err(e) = conn.call(MANAGER_AT, "StopUnit", &[Value::str(name), Value::str("replace")], &[]) {
        tracing::debug!(unit = name, "StopUnit: {e}");
    }
}

/// A property of the unit (a variant).
fn get(conn: &mut Connection, unit: &str, iface: &str, prop: &str) -> anyhow::Result<Value> {
    let at =
        Target { destination: Some(DEST), path: unit, interface: Some("org.freedesktop.DBus.Properties") };
    let reply = conn
        .call(at, "Get", &[Value::str(iface), Value::str(prop)], &[])
        .with_context(|| format!("reading {prop} of the unit"))?;
    reply.into_iter().next().with_context(|| format!("{prop}: an empty reply"))
}
