//! `--auto-sd-unit-restart`: when ig lacks the privileges to trace (e.g. in
//! a `kubectl debug node` pod, which gets the host's / at /host but no
//! capabilities), it runs itself again as a transient systemd service on the
//! host, through systemd's private D-Bus socket. The service gets ig's own
//! stdin, stdout and stderr (passed as file descriptors), so its output
//! appears here as if ig had run itself; its exit status becomes ig's, and
//! Ctrl-C stops the service.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use zbus::zvariant::{Fd, OwnedObjectPath, OwnedValue, Value};

/// Test seam and override: the socket to use instead of `$HOST_ROOT/run/systemd/private`.
pub const SOCKET_ENV: &str = "IG_SYSTEMD_SOCKET";

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const POLL: Duration = Duration::from_millis(100);

pub fn private_socket(root: &Path) -> PathBuf {
    std::env::var_os(SOCKET_ENV).map(PathBuf::from).unwrap_or_else(|| root.join("run/systemd/private"))
}

/// A name no other run uses.
fn unit_name() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("ig-{}-{nanos}.service", std::process::id())
}

/// The ExecStart, environment and stdio of the transient service.
fn properties(exe: &str, args: &[String]) -> anyhow::Result<Vec<(&'static str, Value<'static>)>> {
    let argv: Vec<String> = std::iter::once(exe.to_string()).chain(args.iter().cloned()).collect();
    let mut env = Vec::new();
    if let Ok(level) = std::env::var("IG_LOG") {
        env.push(format!("IG_LOG={level}"));
    }
    let fd = |f: std::os::fd::BorrowedFd<'_>| -> anyhow::Result<Value<'static>> {
        Ok(Value::from(Fd::from(f.try_clone_to_owned().context("duplicating a standard stream")?)))
    };
    Ok(vec![
        ("Description", Value::from("ig, run again with privileges (--auto-sd-unit-restart)")),
        ("ExecStart", Value::from(vec![(exe.to_string(), argv, false)])),
        ("Environment", Value::from(env)),
        ("RemainAfterExit", Value::from(true)),
        ("StandardInputFileDescriptor", fd(std::io::stdin().as_fd())?),
        ("StandardOutputFileDescriptor", fd(std::io::stdout().as_fd())?),
        ("StandardErrorFileDescriptor", fd(std::io::stderr().as_fd())?),
    ])
}

/// Runs `args` (ig's command line without the flag) as a transient unit and
/// returns its exit status.
pub async fn run_as_unit(root: &Path, args: Vec<String>) -> anyhow::Result<i32> {
    let socket = private_socket(root);
    let stream = tokio::net::UnixStream::connect(&socket)
        .await
        .with_context(|| format!("connecting to systemd at {}", socket.display()))?;
    let conn = zbus::connection::Builder::unix_stream(stream)
        .p2p()
        .build()
        .await
        .with_context(|| format!("D-Bus handshake with systemd at {}", socket.display()))?;
    // The host sees this process's executable at /proc/<pid>/exe (the pod
    // shares the host's pid namespace).
    let exe = format!("/proc/{}/exe", std::process::id());
    let name = unit_name();
    let aux: Vec<(&str, Vec<(&str, Value<'_>)>)> = Vec::new();
    conn.call_method(
        Some(DEST),
        PATH,
        Some(MANAGER),
        "StartTransientUnit",
        &(&name, "fail", properties(&exe, &args)?, aux),
    )
    .await
    .context("StartTransientUnit")?;
    tracing::info!(unit = name, "running with privileges as a transient systemd unit");
    let unit: OwnedObjectPath = conn
        .call_method(Some(DEST), PATH, Some(MANAGER), "GetUnit", &(&name,))
        .await?
        .body()
        .deserialize()?;

    let mut stop = crate::io::stop_on_signals();
    let mut stopping = false;
    loop {
        let active = get_string(&conn, &unit, "org.freedesktop.systemd1.Unit", "ActiveState").await?;
        let sub = get_string(&conn, &unit, "org.freedesktop.systemd1.Unit", "SubState").await?;
        if active == "failed" || active == "inactive" || sub == "exited" {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut stop, if !stopping => {
                stopping = true;
                stop_unit(&conn, &name).await;
            }
        }
    }
    let status: i32 =
        get(&conn, &unit, "org.freedesktop.systemd1.Service", "ExecMainStatus").await?.try_into()?;
    stop_unit(&conn, &name).await;
    let _ = conn.call_method(Some(DEST), PATH, Some(MANAGER), "ResetFailedUnit", &(&name,)).await;
    Ok(status)
}

async fn stop_unit(conn: &zbus::Connection, name: &str) {
    if let Err(e) = conn.call_method(Some(DEST), PATH, Some(MANAGER), "StopUnit", &(name, "replace")).await {
        tracing::debug!(unit = name, "StopUnit: {e}");
    }
}

async fn get(
    conn: &zbus::Connection,
    unit: &OwnedObjectPath,
    iface: &str,
    prop: &str,
) -> anyhow::Result<OwnedValue> {
    let reply = conn
        .call_method(
            Some(DEST),
            unit.as_str(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(iface, prop),
        )
        .await
        .with_context(|| format!("reading {prop} of the unit"))?;
    Ok(reply.body().deserialize::<OwnedValue>()?)
}

async fn get_string(
    conn: &zbus::Connection,
    unit: &OwnedObjectPath,
    iface: &str,
    prop: &str,
) -> anyhow::Result<String> {
    Ok(get(conn, unit, iface, prop).await?.try_into()?)
}
