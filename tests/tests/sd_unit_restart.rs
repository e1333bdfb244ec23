//! `--auto-sd-unit-restart` against a test peer standing in for systemd:
//! this machine has no systemd running (pid 1 is not systemd), so a small
//! D-Bus server written here with zbus speaks the real D-Bus protocol on a
//! unix socket (peer-to-peer, as systemd's private socket does) and
//! implements the four Manager methods ig calls (StartTransientUnit with
//! ExecStart, Environment and the passed stdio file descriptors, GetUnit,
//! StopUnit, ResetFailedUnit) and the unit properties it reads
//! (ActiveState, SubState, ExecMainStatus) by really running the command.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tests::{IgChild, binary, require_root, unique};
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

#[derive(Debug)]
struct UnitState {
    active: String,
    sub: String,
    status: i32,
    pid: u32,
}

type Units = Arc<Mutex<HashMap<String, Arc<Mutex<UnitState>>>>>;

/// What the peer was asked to run, for the test to check.
#[derive(Clone, Debug, Default)]
struct Started {
    exec_path: String,
    argv: Vec<String>,
}

struct Manager {
    units: Units,
    started: Arc<Mutex<Vec<Started>>>,
}

fn unit_path(name: &str) -> String {
    let escaped: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("/org/freedesktop/systemd1/unit/{escaped}")
}

fn failed(msg: impl std::fmt::Display) -> zbus::fdo::Error {
    zbus::fdo::Error::Failed(msg.to_string())
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    async fn start_transient_unit(
        &self,
        #[zbus(object_server)] server: &zbus::ObjectServer,
        name: String,
        _mode: String,
        properties: Vec<(String, OwnedValue)>,
        _aux: Vec<(String, Vec<(String, OwnedValue)>)>,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        let mut exec: Option<(String, Vec<String>)> = None;
        let mut env = Vec::new();
        let mut stdio: [Option<std::os::fd::OwnedFd>; 3] = [None, None, None];
        for (key, value) in &properties {
            match (key.as_str(), &**value) {
                ("ExecStart", Value::Array(cmds)) => {
                    let Some(Value::Structure(cmd)) = cmds.iter().next() else {
                        return Err(failed("empty ExecStart"));
                    };
                    let f = cmd.fields();
                    let (Some(Value::Str(path)), Some(Value::Array(args))) = (f.first(), f.get(1)) else {
                        return Err(failed("ExecStart is not a(sasb)"));
                    };
                    let argv = args
                        .iter()
                        .filter_map(|a| if let Value::Str(s) = a { Some(s.to_string()) } else { None });
                    exec = Some((path.to_string(), argv.collect()));
                }
                ("Environment", Value::Array(vars)) => env.extend(
                    vars.iter()
                        .filter_map(|v| if let Value::Str(s) = v { Some(s.to_string()) } else { None }),
                ),
                (k, Value::Fd(fd)) => {
                    let i = match k {
                        "StandardInputFileDescriptor" => 0,
                        "StandardOutputFileDescriptor" => 1,
                        "StandardErrorFileDescriptor" => 2,
                        _ => continue,
                    };
                    stdio[i] = Some(fd.as_fd().try_clone_to_owned().map_err(failed)?);
                }
                _ => {}
            }
        }
        let (path, argv) = exec.ok_or_else(|| failed("no ExecStart"))?;
        self.started.lock().unwrap().push(Started { exec_path: path.clone(), argv: argv.clone() });
        let mut cmd = Command::new(&path);
        cmd.arg0(&argv[0]).args(&argv[1..]).env_clear();
        for kv in &env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
        let [i, o, e] = stdio;
        cmd.stdin(i.map_or(Stdio::null(), Stdio::from));
        cmd.stdout(o.map_or(Stdio::null(), Stdio::from));
        cmd.stderr(e.map_or(Stdio::null(), Stdio::from));
        let mut child = cmd.spawn().map_err(failed)?;
        let state = Arc::new(Mutex::new(UnitState {
            active: "active".into(),
            sub: "running".into(),
            status: 0,
            pid: child.id(),
        }));
        self.units.lock().unwrap().insert(name.clone(), state.clone());
        let path = unit_path(&name);
        server.at(path.as_str(), UnitObject { state: state.clone() }).await?;
        server.at(path.as_str(), ServiceObject { state: state.clone() }).await?;
        std::thread::spawn(move || {
            let status = child.wait().expect("wait");
            use std::os::unix::process::ExitStatusExt;
            let mut s = state.lock().unwrap();
            match status.code() {
                Some(0) => (s.active, s.sub, s.status) = ("active".into(), "exited".into(), 0),
                Some(c) => (s.active, s.sub, s.status) = ("failed".into(), "failed".into(), c),
                None => {
                    (s.active, s.sub, s.status) =
                        ("failed".into(), "failed".into(), status.signal().unwrap_or(0))
                }
            }
        });
        Ok(OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/1").unwrap())
    }

    async fn get_unit(&self, name: String) -> zbus::fdo::Result<OwnedObjectPath> {
        if !self.units.lock().unwrap().contains_key(&name) {
            return Err(zbus::fdo::Error::Failed(format!("Unit {name} not loaded.")));
        }
        OwnedObjectPath::try_from(unit_path(&name)).map_err(failed)
    }

    async fn stop_unit(&self, name: String, _mode: String) -> zbus::fdo::Result<OwnedObjectPath> {
        if let Some(state) = self.units.lock().unwrap().get(&name) {
            let s = state.lock().unwrap();
            if s.sub == "running" {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(s.pid as i32),
                    nix::sys::signal::SIGTERM,
                );
            }
        }
        Ok(OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/2").unwrap())
    }

    async fn reset_failed_unit(&self, _name: String) -> zbus::fdo::Result<()> {
        Ok(())
    }
}

struct UnitObject {
    state: Arc<Mutex<UnitState>>,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl UnitObject {
    #[zbus(property, name = "ActiveState")]
    fn active_state(&self) -> String {
        self.state.lock().unwrap().active.clone()
    }
    #[zbus(property, name = "SubState")]
    fn sub_state(&self) -> String {
        self.state.lock().unwrap().sub.clone()
    }
}

struct ServiceObject {
    state: Arc<Mutex<UnitState>>,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Service")]
impl ServiceObject {
    #[zbus(property, name = "ExecMainStatus")]
    fn exec_main_status(&self) -> i32 {
        self.state.lock().unwrap().status
    }
}

/// The test peer: serves each connection on its socket until the test ends.
struct FakeSystemd {
    socket: PathBuf,
    started: Arc<Mutex<Vec<Started>>>,
    units: Units,
}

impl FakeSystemd {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(unique("fake-systemd"));
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.join("private");
        let started = Arc::new(Mutex::new(Vec::new()));
        let units: Units = Default::default();
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        // nobody must reach it (the real one is root's; the test's ig runs as nobody).
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (s2, u2) = (started.clone(), units.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::UnixListener::from_std(listener).unwrap();
                let mut conns = Vec::new();
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let manager = Manager { units: u2.clone(), started: s2.clone() };
                    let guid = zbus::Guid::generate();
                    let conn = zbus::connection::Builder::unix_stream(stream)
                        .server(guid)
                        .unwrap()
                        .p2p()
                        .serve_at("/org/freedesktop/systemd1", manager)
                        .unwrap()
                        .build()
                        .await;
                    match conn {
                        Ok(c) => conns.push(c),
                        Err(e) => eprintln!("fake systemd: {e}"),
                    }
                }
            });
        });
        FakeSystemd { socket, started, units }
    }

    fn ig_as_nobody(&self, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(binary("ig"))
            .arg("--auto-sd-unit-restart")
            .args(args)
            .env("IG_SYSTEMD_SOCKET", &self.socket)
            .env("IG_LOG", "info")
            .stdin(Stdio::null());
        c
    }
}

#[test]
fn an_unprivileged_ig_runs_again_as_a_transient_unit_through_a_dbus_test_peer() {
    require_root();
    let sd = FakeSystemd::start();
    let out = sd.ig_as_nobody(&["snapshot", "process", "--host", "-o", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let procs: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("the unit's JSON, relayed");
    assert!(procs.iter().any(|p| p["comm"] == "setpriv" || p["comm"] == "ig"), "it saw the host's processes");
    let started = sd.started.lock().unwrap()[0].clone();
    assert!(started.exec_path.starts_with("/proc/") && started.exec_path.ends_with("/exe"), "{started:?}");
    assert_eq!(
        started.argv[1..],
        ["snapshot", "process", "--host", "-o", "json"],
        "the flag is not passed on"
    );

    // A failing command's status and message come back too.
    let bad = sd.ig_as_nobody(&["snapshot", "process", "-o", "columns=nosuchcolumn"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nosuchcolumn"));
}

#[test]
fn ctrl_c_stops_the_transient_unit() {
    require_root();
    let sd = FakeSystemd::start();
    let child = sd
        .ig_as_nobody(&["trace", "exec", "--host", "-o", "json", "--auto-mount-filesystems"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ig = IgChild::from_child(child);
    assert!(ig.wait_stderr("tracing started", Duration::from_secs(30)), "{}", ig.stderr_text());
    let marker = unique("through-the-unit");
    ig.wait_json(
        Duration::from_secs(20),
        || {
            let _ = Command::new("/bin/true").arg(&marker).status();
        },
        |v| tests::has_arg(v, &marker),
    );
    let unit_pid = sd.units.lock().unwrap().values().next().unwrap().lock().unwrap().pid;
    let stopped = Instant::now();
    let status = ig.interrupt();
    assert!(status.success(), "ig relays the unit's clean exit: {status:?}");
    assert!(stopped.elapsed() < Duration::from_secs(10));
    let gone = !std::path::Path::new(&format!("/proc/{unit_pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{unit_pid}/status")).is_ok_and(|s| s.contains("zombie"));
    assert!(gone, "the unit's ig ({unit_pid}) was stopped");
}

#[test]
fn a_peer_that_hangs_up_is_a_clear_error_not_a_hang() {
    require_root();
    let dir = std::env::temp_dir().join(unique("closing-systemd"));
    std::fs::create_dir_all(&dir).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.join("private");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    // Reads the authentication line, then closes without answering.
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 64];
            let _ = std::io::Read::read(&mut conn, &mut buf);
        }
    });
    let sd = FakeSystemd { socket, started: Default::default(), units: Default::default() };
    let started = Instant::now();
    let out = sd.ig_as_nobody(&["snapshot", "process", "--host"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("connecting to systemd at") && err.contains("the connection closed"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "no wait for a timeout");
    let _ = std::fs::remove_dir_all(&dir);
}
