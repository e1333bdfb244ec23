//! `ig trace ssl` with real runc containers whose root holds its own copies
//! of openssl, curl and wget and their libraries (libssl, libgnutls: other
//! files than the host's, so only found through the container's root), and
//! a TLS server inside: the plaintext of curl's and openssl s_client's
//! OpenSSL calls and of wget's GnuTLS calls is shown with the container; a
//! second container on the same root (the same library files, so the same
//! probes) that is not selected, and the host doing the same, never are
//! (the kernel's filter); the probes are placed when the container is
//! created and taken off when it is deleted; --host shows the host's own
//! curl, cut at --max-bytes; through gadgetctl the daemon does the same.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{Harness, IgChild, harness, require_root, unique};

/// Where a host file goes in the test root: under its real path, so that
/// the root is merged-/usr like the host (lib -> usr/lib).
fn copy_in(root: &Path, file: &Path) {
    let real = std::fs::canonicalize(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let to = root.join(real.strip_prefix("/").unwrap());
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    // A copy, not a link: the container's libraries are files of its own.
    std::fs::copy(&real, &to).unwrap_or_else(|e| panic!("copying {}: {e}", real.display()));
    // Found by the name it is asked for too (the loader: /lib64/ld-linux-x86-64.so.2).
    let rel = file.strip_prefix("/").unwrap();
    let named = match rel.components().next().and_then(|c| c.as_os_str().to_str()) {
        Some("lib" | "lib64" | "bin" | "sbin") => root.join("usr").join(rel),
        _ => root.join(rel),
    };
    if !named.exists() {
        std::fs::create_dir_all(named.parent().unwrap()).unwrap();
        symlink(&real, &named).unwrap();
    }
}

/// The libraries `program` loads, as ldd lists them (the loader too).
fn libraries_of(program: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(program).output().expect("ldd");
    assert!(out.status.success(), "ldd {}", program.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = l.split("=> ").nth(1).unwrap_or(l);
            let path = path.split(" (").next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn which(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: tests/harness installs openssl, curl and wget")
}

/// A root with busybox, openssl, curl and wget and a certificate, built
/// once per test run.
fn tls_root(h: &Harness) -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = h.dir.join("tls-rootfs");
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["usr/bin", "usr/lib", "usr/lib64", "proc", "dev", "sys", "tmp", "etc", "tls"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for (link, to) in
            [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"), ("sbin", "usr/bin")]
        {
            symlink(to, root.join(link)).unwrap();
        }
        std::fs::copy(h.rootfs.join("bin/busybox"), root.join("usr/bin/busybox")).unwrap();
        for applet in ["sh", "sleep", "cat", "seq", "echo"] {
            symlink("busybox", root.join("usr/bin").join(applet)).unwrap();
        }
        for program in ["openssl", "curl", "wget"] {
            let path = which(program);
            copy_in(&root, &path);
            for lib in libraries_of(&path) {
                copy_in(&root, &lib);
            }
        }
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=igt"])
            .arg("-keyout")
            .arg(root.join("tls/key.pem"))
            .arg("-out")
            .arg(root.join("tls/cert.pem"))
            .output()
            .expect("openssl req");
        assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
        root
    })
}

/// Inside a container: a TLS server, then curl, wget and openssl s_client
/// asking it for /<marker>-curl, -wget, -sclient. curl retries until the
/// server listens (a refused connection makes no TLS call). Full paths:
/// busybox's shell would run its own wget applet.
fn clients_script(marker: &str) -> String {
    let url = "https://127.0.0.1:4433";
    format!(
        "/usr/bin/openssl s_server -accept 4433 -cert /tls/cert.pem -key /tls/key.pem -www -quiet >/dev/null 2>&1 &
         for i in $(seq 100); do /usr/bin/curl -sk -o /dev/null {url}/{marker}-curl && break; sleep 0.1; done
         /usr/bin/wget -q --no-check-certificate -O /dev/null {url}/{marker}-wget
         echo 'GET /{marker}-sclient HTTP/1.0' | /usr/bin/openssl s_client -quiet -connect 127.0.0.1:4433 >/dev/null 2>&1
         sleep 1"
    )
}

/// A TLS server on the host, on a port of its own.
struct HostServer {
    child: Child,
    port: u16,
}

impl HostServer {
    fn start(root: &Path) -> Self {
        for _ in 0..20 {
            // A port free now; if another takes it first, our server dies: again.
            let port = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port();
            let mut child = Command::new("openssl")
                .args(["s_server", "-accept", &port.to_string(), "-www", "-quiet"])
                .arg("-cert")
                .arg(root.join("tls/cert.pem"))
                .arg("-key")
                .arg(root.join("tls/key.pem"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("openssl s_server");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Self { child, port };
                }
                assert!(Instant::now() < deadline, "the host's TLS server never listened on {port}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("openssl s_server could not listen on a free port, 20 times");
    }

    /// The host's own curl asking for /<path>.
    fn curl(&self, path: &str) {
        let out = Command::new("curl")
            .args(["-sk", "-o", "/dev/null", &format!("https://127.0.0.1:{}/{path}", self.port)])
            .output()
            .expect("curl");
        assert!(out.status.success(), "host curl: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for HostServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ig's perf event descriptors: one per probe it has placed.
fn probes_of(ig: &IgChild) -> usize {
    let dir = format!("/proc/{}/fd", ig.child.id());
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}: ig is gone"))
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == "anon_inode:[perf_event]")
        })
        .count()
}

fn wait_probes(ig: &IgChild, want: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = probes_of(ig);
        if n == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: ig holds {n} probes, not {want}; stderr: {}",
            ig.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn data(v: &Value) -> &str {
    v["data"].as_str().unwrap_or("")
}

/// Entry and return probes: SSL_read, SSL_write, SSL_read_ex, SSL_write_ex
/// of libssl, gnutls_record_recv and gnutls_record_send of libgnutls.
const PROBES_PER_ROOT: usize = 2 * (4 + 2);

#[test]
fn a_containers_own_tls_libraries_show_its_plaintext_and_no_one_elses() {
    require_root();
    let h = harness();
    let root = tls_root(&h);
    let id = unique("igt-ssl");
    let other = unique("igt-ssl-other");
    let host = HostServer::start(root);
    let host_marker = format!("{id}-host");
    let ig = IgChild::spawn_ready(&["trace", "ssl", "-c", &id, "-o", "json"], "tracing started");
    assert_eq!(probes_of(&ig), 0, "no container selected yet, no --host: nothing to probe");

    let mine = h.runc_bundle(&id, &["/bin/sh", "-c", &clients_script(&id)], true);
    let theirs = h.runc_bundle(&other, &["/bin/sh", "-c", &clients_script(&other)], true);
    for b in [&mine, &theirs] {
        b.edit_config(|cfg| cfg["root"] = serde_json::json!({"path": root, "readonly": true}));
    }
    mine.create();
    // Placed while the hook waited, before the container's first process.
    assert_eq!(probes_of(&ig), PROBES_PER_ROOT, "{}", ig.stderr_text());
    theirs.create();
    theirs.start();
    mine.start();

    let forbidden = |v: &Value| {
        v["runtime"]["containerName"] != id.as_str()
            || data(v).contains(&other)
            || data(v).contains(&host_marker)
    };
    // Every line read, to look at the calls once all came.
    let calls = std::cell::RefCell::new(Vec::<Value>::new());
    let wanted: [(&str, &str, String); 4] = [
        ("curl", "SSL_write", format!("GET /{id}-curl HTTP/1.1\\r\\n")),
        ("curl", "SSL_read", "HTTP/1.0 200 ok\\r\\n".to_string()),
        ("wget", "gnutls_record_send", format!("GET /{id}-wget HTTP/1.1\\r\\n")),
        ("openssl", "SSL_write", format!("GET /{id}-sclient HTTP/1.0\\n")),
    ];
    let is = |v: &Value, (comm, op, start): &(&str, &str, String)| {
        v["comm"] == *comm && v["operation"] == *op && data(v).starts_with(start.as_str())
    };
    for w in &wanted {
        if calls.borrow().iter().any(|v| is(v, w)) {
            continue;
        }
        ig.wait_json_forbidding(
            Duration::from_secs(60),
            || host.curl(&host_marker),
            |v| {
                calls.borrow_mut().push(v.clone());
                is(v, w)
            },
            forbidden,
            Duration::from_millis(200),
        );
    }
    mine.delete();
    theirs.delete();
    wait_probes(&ig, 0, "the container's probes are taken off when it is deleted");

    let calls = calls.into_inner();
    let one = |w: &(&str, &str, String)| {
        calls.iter().find(|v| is(v, w)).unwrap_or_else(|| panic!("no {w:?}: {calls:#?}")).clone()
    };
    let write = one(&wanted[0]);
    assert_eq!(write["library"], "openssl", "{write}");
    assert_eq!(write["direction"], "write", "{write}");
    assert_eq!(write["truncated"], false, "{write}");
    assert!(data(&write).ends_with("\\r\\n\\r\\n"), "the whole request: {write}");
    // Every byte of the request is in data: \r and \n are two characters each there.
    let escapes = data(&write).matches("\\r").count() + data(&write).matches("\\n").count();
    assert_eq!(write["len"].as_u64(), Some((data(&write).len() - escapes) as u64), "{write}");
    assert!(write["latency"].as_u64().is_some_and(|l| l > 0), "{write}");
    assert!(write["pid"].as_u64().is_some_and(|p| p > 1), "{write}");
    let read = one(&wanted[1]);
    assert_eq!(read["direction"], "read", "{read}");
    // The -www page lists the server's ciphers: far more than 512 bytes.
    assert_eq!(read["truncated"], true, "{read}");
    assert!(read["len"].as_u64().is_some_and(|l| l > 512), "{read}");
    let gnutls = one(&wanted[2]);
    assert_eq!(gnutls["library"], "gnutls", "{gnutls}");
    assert_eq!(gnutls["mountnsid"], write["mountnsid"], "one container: {gnutls}");
}

#[test]
fn host_runs_show_the_hosts_own_calls_cut_at_max_bytes() {
    require_root();
    let h = harness();
    let root = tls_root(&h);
    let host = HostServer::start(root);
    let marker = unique("igt-ssl-host");
    let ig = IgChild::spawn_ready(
        &["trace", "ssl", "--host", "--max-bytes", "16", "-o", "json"],
        "tracing started",
    );
    assert!(probes_of(&ig) >= 2, "the host's libssl is probed: {}", ig.stderr_text());
    let v = ig.wait_json(
        Duration::from_secs(30),
        || host.curl(&marker),
        |v| v["comm"] == "curl" && v["operation"] == "SSL_write" && v["runtime"]["containerName"] == "",
    );
    // The request starts "GET /igt-ssl-host": its first 16 bytes only.
    assert_eq!(data(&v), &format!("GET /{marker}")[..16], "{v}");
    assert_eq!(v["truncated"], true, "{v}");
    assert!(v["len"].as_u64().is_some_and(|l| l > 16 + marker.len() as u64), "{v}");
}

#[test]
fn max_bytes_beyond_what_the_kernel_copies_is_refused() {
    let out =
        Command::new(tests::binary("ig")).args(["trace", "ssl", "--max-bytes", "8193"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-bytes") && err.contains("8192"), "{err}");
}

#[test]
fn through_gadgetctl_the_daemon_places_the_probes_in_the_containers_root() {
    require_root();
    let h = harness();
    let root = tls_root(&h);
    let daemon = tests::Daemon::start(&[]);
    let id = unique("igt-ssl-remote");
    let client = daemon.gadgetctl_ready(&["trace", "ssl", "-c", &id, "-o", "json"]);
    let bundle = h.runc_bundle(&id, &["/bin/sh", "-c", &clients_script(&id)], true);
    bundle.edit_config(|cfg| cfg["root"] = serde_json::json!({"path": root, "readonly": true}));
    bundle.create();
    bundle.start();
    let request = format!("GET /{id}-curl HTTP/1.1\\r\\n");
    let v = client.wait_json_forbidding(
        Duration::from_secs(60),
        || {},
        |v| v["operation"] == "SSL_write" && data(v).starts_with(&request),
        |v| v["runtime"]["containerName"] != id.as_str(),
        Duration::from_millis(200),
    );
    bundle.delete();
    assert_eq!(v["comm"], "curl", "{v}");
}

/// An image's root as podman and containerd mount it: an overlay of
/// read-only layers with an upper directory of the container's own.
struct Overlay {
    merged: PathBuf,
}

impl Overlay {
    fn mount(dir: &Path, lower: &Path) -> Self {
        // A run killed before its drop left the mount: off first.
        let _ = Command::new("umount").arg(dir.join("merged")).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(dir);
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).unwrap();
        }
        let opts =
            format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
        let out = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(&merged)
            .output()
            .unwrap();
        assert!(out.status.success(), "mount overlay: {}", String::from_utf8_lossy(&out.stderr));
        Self { merged }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.merged).status();
    }
}

/// Two containers of one image, each on its own overlay of the same layer:
/// overlayfs shows each its own device, but the libraries are the layer's
/// files, where the kernel places a uprobe; one set of probes serves both
/// (a set per container would run every probe once per container of the
/// image on each call), both containers' calls are seen through it, and it
/// stays until the last of them is deleted.
#[test]
fn containers_of_one_image_on_overlayfs_share_one_set_of_probes() {
    require_root();
    let h = harness();
    let lower = tls_root(&h);
    let (a, b) = (unique("igt-ssl-ovl-a"), unique("igt-ssl-ovl-b"));
    let ig =
        IgChild::spawn_ready(&["trace", "ssl", "-c", &format!("{a},{b}"), "-o", "json"], "tracing started");
    let roots: Vec<Overlay> =
        [&a, &b].iter().map(|id| Overlay::mount(&h.dir.join("overlays").join(id), lower)).collect();
    let bundles: Vec<_> = [&a, &b]
        .iter()
        .zip(&roots)
        .map(|(id, root)| {
            // Running on after its calls, until deleted: an exit would take its probes off.
            let script = format!("{}\n sleep 120", clients_script(id));
            let bundle = h.runc_bundle(id, &["/bin/sh", "-c", &script], true);
            bundle
                .edit_config(|cfg| cfg["root"] = serde_json::json!({"path": root.merged, "readonly": true}));
            bundle
        })
        .collect();
    bundles[0].create();
    assert_eq!(probes_of(&ig), PROBES_PER_ROOT, "{}", ig.stderr_text());
    bundles[1].create();
    assert_eq!(
        probes_of(&ig),
        PROBES_PER_ROOT,
        "the second container's libraries are the same layer files: {}",
        ig.stderr_text()
    );
    for bundle in &bundles {
        bundle.start();
    }
    // Both containers' requests, read in one pass (in either order).
    let seen = std::cell::RefCell::new(Vec::<String>::new());
    ig.wait_json(
        Duration::from_secs(60),
        || {},
        |v| {
            let name = v["runtime"]["containerName"].as_str().unwrap_or_default();
            if v["operation"] == "SSL_write"
                && data(v).starts_with(&format!("GET /{name}-curl HTTP/1.1\\r\\n"))
            {
                seen.borrow_mut().push(name.to_string());
            }
            [&a, &b].iter().all(|id| seen.borrow().contains(*id))
        },
    );
    bundles[0].delete();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        probes_of(&ig),
        PROBES_PER_ROOT,
        "the other container still runs on those files: {}",
        ig.stderr_text()
    );
    bundles[1].delete();
    wait_probes(&ig, 0, "the probes are taken off when the last container of the image is deleted");
}
