//! `ig daemon` and `gadgetctl`: who may connect (unix socket group, mutual
//! TLS), many clients at once, a client's end freeing its gadget in the
//! kernel, bad requests, and a daemon restart.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use shared::daemonproto::{self as proto, Exit, Kind};
use tests::{Daemon, GROUP, IgChild, binary, harness, has_arg, require_root, unique};

/// gadgetctl as `nobody`, with or without the daemon's group.
fn gadgetctl_as_nobody(in_group: bool, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", "65534", "--regid", "65534"]);
    if in_group {
        c.arg(format!("--groups={GROUP}"));
    } else {
        c.arg("--clear-groups");
    }
    c.arg(binary("gadgetctl")).args(args);
    c
}

fn spawn_client(mut cmd: Command) -> IgChild {
    let child =
        cmd.env("IG_LOG", "info").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("gadgetctl");
    let client = IgChild::from_child(child);
    assert!(
        client.wait_stderr("tracing started", Duration::from_secs(30)),
        "gadgetctl: {}",
        client.stderr_text()
    );
    client
}

#[test]
fn a_group_member_traces_through_the_daemon_and_others_are_refused() {
    require_root();
    let d = Daemon::start(&[]);
    // binary() lives under /work or target/: nobody must be able to run it.
    let addr = d.address();
    let client = spawn_client(gadgetctl_as_nobody(
        true,
        &["--remote-address", &addr, "trace", "exec", "--host", "-o", "json"],
    ));
    let marker = unique("via-daemon");
    let ev = client.wait_json(
        Duration::from_secs(20),
        || {
            let _ = Command::new("/bin/true").arg(&marker).status();
        },
        |v| has_arg(v, &marker),
    );
    assert_eq!(ev["comm"], "true");
    assert!(d.ig.wait_stderr("uid=65534", Duration::from_secs(5)), "the daemon logs the peer's credentials");

    let out = gadgetctl_as_nobody(false, &["--remote-address", &addr, "list-containers"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Permission denied"), "{err}");
}

/// Certificates made for one test: a CA, a server certificate for
/// 127.0.0.1, a client certificate from the CA, and one from another CA.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        };
        let dir = std::env::temp_dir().join(unique("ig-pki"));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(rcgen::DnType::CommonName, name);
            CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
        };
        let leaf =
            |san: &str, usage: ExtendedKeyUsagePurpose, issuer: &CertifiedIssuer<'_, KeyPair>, name: &str| {
                let mut p = CertificateParams::new(vec![san.to_string()]).unwrap();
                p.extended_key_usages = vec![usage];
                let key = KeyPair::generate().unwrap();
                let cert = p.signed_by(&key, issuer).unwrap();
                std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
                std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
            };
        let good = ca("ig test CA");
        let other = ca("another CA");
        std::fs::write(dir.join("ca.pem"), good.pem()).unwrap();
        leaf("127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth, &good, "server");
        leaf("client", ExtendedKeyUsagePurpose::ClientAuth, &good, "client");
        leaf("client", ExtendedKeyUsagePurpose::ClientAuth, &other, "stranger");
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn gadgetctl(args: &[&str]) -> std::process::Output {
    Command::new(binary("gadgetctl")).args(args).stdin(Stdio::null()).output().expect("gadgetctl")
}

#[test]
fn tcp_needs_a_client_certificate_from_the_ca_unless_insecure_is_asked_for() {
    require_root();
    let pki = Pki::new();
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");

    // No certificates and no --insecure: the daemon refuses to start.
    let refused = Command::new(binary("ig")).args(["daemon", "-H", &tcp]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--insecure"));

    let (cert, key, ca) = (pki.path("server.pem"), pki.path("server.key"), pki.path("ca.pem"));
    let _d = Daemon::start(&[
        "-H",
        &tcp,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-client-ca-file",
        &ca,
    ]);
    let with = |cert: Option<&str>| {
        let mut args = vec!["--remote-address".to_string(), tcp.clone(), "--tls-ca-file".into(), ca.clone()];
        if let Some(name) = cert {
            args.extend([
                "--tls-cert-file".into(),
                pki.path(&format!("{name}.pem")),
                "--tls-key-file".into(),
                pki.path(&format!("{name}.key")),
            ]);
        }
        args.extend(["list-containers".into(), "-o".into(), "json".into()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        gadgetctl(&refs)
    };
    let ok = with(Some("client"));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    serde_json::from_slice::<Value>(&ok.stdout).expect("a JSON list");
    for (who, out) in [("no certificate", with(None)), ("another CA", with(Some("stranger")))] {
        assert!(!out.status.success(), "{who} was let in");
        assert!(out.stdout.is_empty(), "{who} got output");
    }
    // Plain TCP to a TLS daemon gets nothing either.
    let plain = gadgetctl(&["--remote-address", &tcp, "--insecure", "list-containers"]);
    assert!(!plain.status.success());

    let port2 = free_port();
    let tcp2 = format!("tcp://127.0.0.1:{port2}");
    let insecure = Daemon::start(&["-H", &tcp2, "--insecure"]);
    assert!(
        insecure.ig.wait_stderr("--insecure", Duration::from_secs(5)),
        "the daemon warns about plain TCP"
    );
    let out = gadgetctl(&["--remote-address", &tcp2, "--insecure", "list-containers", "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Distinct BPF programs the daemon holds, from the kernel's view of its fds.
fn bpf_programs_of(pid: u32) -> usize {
    let mut ids = std::collections::HashSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap().flatten() {
        if let Ok(text) = std::fs::read_to_string(entry.path()) {
            for line in text.lines() {
                if let Some(id) = line.strip_prefix("prog_id:") {
                    ids.insert(id.trim().to_string());
                }
            }
        }
    }
    ids.len()
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

#[test]
fn ten_clients_at_once_and_killing_one_frees_only_its_gadget() {
    require_root();
    let d = Daemon::start(&[]);
    let addr = d.address();
    assert_eq!(bpf_programs_of(d.pid()), 0, "an idle daemon holds no programs");
    let gadgets: [&[&str]; 10] = [
        &["trace", "exec"],
        &["trace", "open"],
        &["trace", "signal"],
        &["trace", "mount"],
        &["trace", "tcp"],
        &["trace", "tcpconnect"],
        &["trace", "bind"],
        &["trace", "oomkill"],
        &["trace", "exec", "--cwd"],
        &["list-containers", "-w"],
    ];
    let mut clients: Vec<(String, IgChild)> = Vec::new();
    for g in gadgets {
        let mut cmd = Command::new(binary("gadgetctl"));
        cmd.arg("--remote-address").arg(&addr).args(g).args(["-o", "json"]);
        if g[0] == "trace" {
            cmd.arg("--host");
        }
        clients.push((g.join(" "), spawn_client(cmd)));
    }
    let all = bpf_programs_of(d.pid());
    assert!(all >= 9, "nine gadgets hold programs: {all}");

    // Kill the first `trace exec` client the hard way: its connection drops.
    let (_, mut exec_client) = clients.remove(0);
    exec_client.child.kill().unwrap();
    let _ = exec_client.child.wait();
    assert!(
        wait_until(Duration::from_secs(10), || bpf_programs_of(d.pid()) < all),
        "the killed client's programs were not freed ({all} before)"
    );
    let after = bpf_programs_of(d.pid());
    assert!(after > 0, "the other gadgets keep theirs");

    // The other exec client (with --cwd) still gets events.
    let (_, cwd_client) = clients.iter().find(|(n, _)| n == "trace exec --cwd").unwrap();
    let marker = unique("still-served");
    cwd_client.wait_json(
        Duration::from_secs(20),
        || {
            let _ = Command::new("/bin/true").arg(&marker).status();
        },
        |v| has_arg(v, &marker),
    );
    // The open client too.
    let (_, open_client) = clients.iter().find(|(n, _)| n == "trace open").unwrap();
    let path = format!("/tmp/{}", unique("still-open"));
    open_client.wait_json(
        Duration::from_secs(20),
        || {
            let _ = std::fs::File::open(&path);
        },
        |v| v["path"] == path.as_str(),
    );

    drop(clients);
    assert!(
        wait_until(Duration::from_secs(10), || bpf_programs_of(d.pid()) == 0),
        "programs left after every client ended: {}",
        bpf_programs_of(d.pid())
    );
}

/// Sends raw bytes, returns the Exit frame the daemon answered with (if any).
fn send_raw(socket: &Path, bytes: &[u8]) -> Option<Exit> {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // The daemon may answer and close before all is written.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let mut r = &reply[..];
    while let Ok(Some((kind, payload))) = proto::read_frame(&mut r, proto::MAX_RESPONSE) {
        if kind == Kind::Exit {
            return Some(proto::parse_json(kind, &payload).unwrap());
        }
    }
    None
}

#[test]
fn garbage_and_a_100_mb_request_get_errors_and_the_daemon_keeps_serving() {
    require_root();
    let d = Daemon::start(&[]);
    let socket = d.dir.join("ig.sock");
    let garbage = send_raw(&socket, b"\x00\x00\x00\x09\x01not json!").expect("an answer to garbage");
    assert_eq!(garbage.code, 2);
    assert!(garbage.error.unwrap().contains("bad request"));

    let mut huge = proto::frame(Kind::Request, &[]);
    huge[..4].copy_from_slice(&(100u32 << 20).to_be_bytes());
    huge.resize(100 << 20, b'x');
    let too_big = send_raw(&socket, &huge).expect("an answer to 100 MB");
    assert_eq!(too_big.code, 2);
    assert!(too_big.error.unwrap().contains("larger than"));

    let unknown = send_raw(
        &socket,
        &proto::json_frame(Kind::Request, &serde_json::json!({"version": 1, "args": ["trace", "nope"]})),
    )
    .expect("an answer to an unknown gadget");
    assert_eq!(unknown.code, 2);

    let out = gadgetctl(&["--remote-address", &d.address(), "list-containers", "-o", "json"]);
    assert!(out.status.success(), "still serving: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_restarted_daemon_relearns_running_containers() {
    let h = harness();
    require_root();
    let d = Daemon::start(&[]);
    let addr = d.address();
    let id = unique("igt-daemon");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    bundle.run_detached();
    let listed = |addr: &str| {
        let out = gadgetctl(&["--remote-address", addr, "list-containers", "-o", "json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        list.iter().any(|r| r["runtime"]["containerId"] == id.as_str())
    };
    assert!(
        wait_until(Duration::from_secs(10), || listed(&addr)),
        "the daemon learnt the container from its hook"
    );
    let mut d = d;
    d.stop();
    let d2 = Daemon::start(&[]);
    assert!(listed(&d2.address()), "the restarted daemon relearnt it from the spool");
    bundle.delete();
}

#[test]
fn the_shipped_systemd_unit_runs_a_valid_daemon_command() {
    let unit = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../install/ig.service"))
        .expect("install/ig.service");
    let line = |key: &str| {
        unit.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("no {key}="))
    };
    assert_eq!(line("User"), "root");
    assert_eq!(line("Restart"), "on-failure");
    let argv: Vec<&str> = line("ExecStart").split_whitespace().collect();
    assert_eq!(argv[0], "/usr/local/bin/ig");
    use clap::Parser;
    let cli =
        tracer::cli::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("ExecStart does not parse: {e}"));
    let tracer::cli::Command::Daemon(args) = cli.command else { panic!("ExecStart is not `ig daemon`") };
    assert_eq!(args.group, "ig");
    assert_eq!(args.hosts, vec!["unix:///var/run/ig/ig.socket"]);
}

#[test]
fn gadgetctl_selects_containers_and_processes_as_ig_does() {
    let h = harness();
    require_root();
    let d = Daemon::start(&[]);
    let addr = d.address();
    let (a, b) = (unique("igt-dsel-a"), unique("igt-dsel-b"));
    let name = |v: &Value| v["runtime"]["containerName"].as_str().unwrap_or("").to_string();
    // Every container but b, and only processes called `true`.
    let client = spawn_client({
        let mut c = Command::new(binary("gadgetctl"));
        c.args([
            "--remote-address",
            &addr,
            "trace",
            "exec",
            "-o",
            "json",
            "-c",
            &format!("!{b}"),
            "--comm",
            "true",
        ]);
        c
    });
    h.runc_bundle(&b, &["/bin/true", "from-b"], true).run();
    h.runc_bundle(&a, &["/bin/echo", "from-a-echo"], true).run();
    h.runc_bundle(&a, &["/bin/true", "from-a"], true).run();
    let ev = client.wait_json_forbidding(
        Duration::from_secs(20),
        || {},
        |v| name(v) == a && v["args"][1] == "from-a",
        |v| name(v) == b || v["comm"] != "true",
        Duration::from_millis(500),
    );
    assert_eq!(ev["comm"], "true");
}
