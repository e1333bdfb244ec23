//! `ig top file` and `ig top tcp` against real reads, writes and TCP
//! traffic: the counters of one interval or summed over a few.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{IgChild, mntns_of, require_root, unique};
use tracer::gadgets::top_file::TopFile;
use tracer::session::{Session, SessionOptions};
use tracer::top::TopGadget;

fn start(args: &[&str]) -> IgChild {
    require_root();
    let mut all = vec!["top"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--host", "-o", "json", "--interval", "0.5", "--auto-mount-filesystems"]);
    IgChild::spawn_ready(&all, "tracing started")
}

/// Sums `fields` over every row matching `pred`, in the arrays that arrive within `period`.
fn sum_rows(ig: &IgChild, period: Duration, pred: impl Fn(&Value) -> bool, fields: &[&str]) -> Vec<u64> {
    let mut sums = vec![0u64; fields.len()];
    for table in ig.collect_json(period) {
        for row in table.as_array().expect("one JSON array per interval") {
            if pred(row) {
                for (s, f) in sums.iter_mut().zip(fields) {
                    *s += row[*f].as_u64().unwrap_or(0);
                }
            }
        }
    }
    sums
}

#[test]
fn top_file_counts_reads_writes_and_bytes_per_file() {
    let name = unique("igt-topfile");
    // Only this file's rows: on a busy host the writer's row (no reads)
    // would otherwise fall behind --max-rows' 50 busiest under -reads.
    let ig = start(&["file", "-F", &format!("file:{name}")]);
    let path = std::env::temp_dir().join(&name);
    // 5 writes of 4096 bytes, then 5 reads of 4096 and the read that hits EOF.
    let script = format!(
        "dd if=/dev/zero of={p} bs=4096 count=5 2>/dev/null; dd if={p} of=/dev/null bs=4096 2>/dev/null",
        p = path.display()
    );
    let mut child = Command::new("/bin/sh").arg("-c").arg(&script).spawn().unwrap();
    child.wait().unwrap();
    let sums = sum_rows(
        &ig,
        Duration::from_secs(2),
        |r| r["file"] == name.as_str() && r["comm"] == "dd",
        &["writes", "wbytes", "reads", "rbytes"],
    );
    assert_eq!(sums, vec![5, 20480, 6, 20480], "writes, wbytes, reads, rbytes of {name}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn top_tcp_counts_bytes_each_way_per_connection() {
    let ig = start(&["tcp"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1000];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&[7u8; 300]).unwrap();
    });
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(&[1u8; 1000]).unwrap();
    let mut back = [0u8; 300];
    c.read_exact(&mut back).unwrap();
    server.join().unwrap();
    let client_end = c.local_addr().unwrap().to_string();
    let dst = format!("127.0.0.1:{port}");
    let me = std::process::id();
    // Both ends from the same tables: each counted once, each its own way.
    let tables = ig.collect_json(Duration::from_secs(2));
    let sum = |pred: &dyn Fn(&Value) -> bool, field: &str| -> u64 {
        tables
            .iter()
            .flat_map(|t| t.as_array().cloned().unwrap_or_default())
            .filter(|r| pred(r))
            .map(|r| r[field].as_u64().unwrap_or(0))
            .sum()
    };
    let client = |r: &Value| r["pid"] == me && r["src"] == client_end.as_str() && r["dst"] == dst.as_str();
    let server = |r: &Value| r["pid"] == me && r["src"] == dst.as_str() && r["dst"] == client_end.as_str();
    assert_eq!(
        [sum(&client, "sent"), sum(&client, "recv")],
        [1000, 300],
        "the client's side of the connection"
    );
    assert_eq!(
        [sum(&server, "sent"), sum(&server, "recv")],
        [300, 1000],
        "the server's side of the connection"
    );
}

#[test]
fn max_rows_and_sort_shape_each_table() {
    let ig = start(&["file", "-m", "2", "--sort", "-rbytes"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut tables = 0;
    while Instant::now() < deadline && tables < 3 {
        // Some reading so the tables are not empty.
        let _ = std::fs::read("/proc/self/status");
        let _ = std::fs::read("/etc/passwd");
        for t in ig.collect_json(Duration::from_millis(600)) {
            let rows = t.as_array().unwrap();
            assert!(rows.len() <= 2, "-m 2: {}", rows.len());
            let bytes: Vec<u64> = rows.iter().map(|r| r["rbytes"].as_u64().unwrap()).collect();
            assert!(bytes.windows(2).all(|w| w[0] >= w[1]), "sorted by -rbytes: {bytes:?}");
            tables += 1;
        }
    }
    assert!(tables >= 3, "a table every interval");
    let bad = Command::new(tests::binary("ig")).args(["top", "file", "--sort", "nosuch"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nosuch"));
}

#[tokio::test(flavor = "current_thread")]
async fn only_allowed_mount_namespaces_are_counted() {
    require_root();
    tracer::kernel::check_host(true).expect("host ready for eBPF");
    let gadget = TopFile::default();
    let mut session = Session::load(&gadget, &SessionOptions { ring_bytes: 4096, ..Default::default() })
        .expect("load top file");
    let filter = session.filter();
    let name = unique("igt-topns");
    let path = std::env::temp_dir().join(&name);
    std::fs::write(&path, vec![0u8; 8192]).unwrap();
    // A "container": a shell in its own mount namespace that reads the file.
    let mut sh = Command::new("/bin/sh");
    sh.arg("-c").arg(format!("read a; cat {} > /dev/null; read b", path.display())).stdin(Stdio::piped());
    tests::in_own_mntns(&mut sh);
    let mut child = sh.spawn().unwrap();
    let mntns = mntns_of(child.id());
    filter.add(mntns).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\n").unwrap();
    let _ = std::fs::read(&path); // on the host: not counted
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = gadget.collect(&mut tracer::top::Source::Kernel(&mut session), 0).unwrap();
    let inside: u64 = rows.iter().filter(|r| r.file == name).map(|r| r.rbytes).sum();
    assert_eq!(inside, 8192, "the container's read: {rows:?}");
    assert!(rows.iter().all(|r| r.common.mntns == mntns), "nothing from the host");
    stdin.write_all(b"\n").unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn top_process_shows_a_containers_busy_and_idle_processes_from_proc() {
    require_root();
    let h = tests::harness();
    let id = unique("igt-topproc");
    let bundle = h.runc_bundle(&id, &["/bin/sh", "-c", "sleep 60 & while :; do :; done"], true);
    let pid = bundle.run_detached();
    let mntns = mntns_of(pid);
    let host_mntns = mntns_of(std::process::id());
    let all = IgChild::spawn_ready(
        &["top", "process", "-c", &id, "-o", "json", "--interval", "0.5", "--auto-mount-filesystems"],
        "tracing started",
    );
    let sleepers = IgChild::spawn_ready(
        &[
            "top",
            "process",
            "-c",
            &id,
            "--comm",
            "sleep",
            "-o",
            "json",
            "--interval",
            "0.5",
            "--auto-mount-filesystems",
        ],
        "tracing started",
    );
    // The second table on: its interval is a whole one.
    let tables: Vec<Value> = all.collect_json(Duration::from_millis(1800));
    let last = tables.last().and_then(Value::as_array).expect("tables").clone();
    assert!(last.iter().all(|r| r["mountnsid"] != host_mntns), "a host process: {last:?}");
    let busy = last.iter().find(|r| r["pid"] == pid).unwrap_or_else(|| panic!("no row of {pid}: {last:?}"));
    let idle = last.iter().find(|r| r["comm"] == "sleep").unwrap_or_else(|| panic!("no sleep: {last:?}"));
    for r in [busy, idle] {
        assert_eq!(r["runtime"]["containerName"], id.as_str(), "{r}");
        assert_eq!(r["mountnsid"], mntns, "{r}");
    }
    assert_eq!((busy["comm"].as_str(), busy["state"].as_str()), (Some("sh"), Some("R")), "{busy}");
    assert_eq!(idle["ppid"], pid, "{idle}");
    // The busy loop against the sleeper of the same interval.
    let (b, i) = (busy["cpu"].as_f64().unwrap(), idle["cpu"].as_f64().unwrap());
    assert!(b > 5.0 && b > 10.0 * i.max(0.1), "busy {b}% against idle {i}%");
    // The first table too: its interval is measured from the CPU times
    // read when the run began.
    let first = tables.first().and_then(Value::as_array).expect("tables");
    let busy_first =
        first.iter().find(|r| r["pid"] == pid).unwrap_or_else(|| panic!("no row of {pid}: {first:?}"));
    assert!(busy_first["cpu"].as_f64().unwrap() > 5.0, "the first interval: {busy_first}");
    // The kernel's truth for what does not move: threads and the parent.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads: u64 =
        status.lines().find_map(|l| l.strip_prefix("Threads:")).unwrap().trim().parse().unwrap();
    assert_eq!(busy["threads"].as_u64(), Some(threads));
    assert!(busy["rss"].as_u64().unwrap() > 0 && busy["mem"].as_f64().unwrap() > 0.0, "{busy}");
    // --comm: the sleeper alone.
    let tables = sleepers.collect_json(Duration::from_millis(1200));
    let rows: Vec<&Value> = tables.iter().filter_map(Value::as_array).flatten().collect();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["comm"] == "sleep"), "{rows:?}");
    bundle.delete();
}

#[test]
fn top_ebpf_counts_the_runs_of_another_tracers_programs() {
    require_root();
    // A tracer holding programs: ig trace open, its exit program runs per open.
    let tracer = IgChild::spawn_ready(
        &["trace", "open", "--host", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let holder = tracer.child.id();
    let top = start(&["ebpf"]);
    let nobody = IgChild::spawn_ready(
        &["top", "ebpf", "-c", "igt-nobody", "-o", "json", "--interval", "0.5", "--auto-mount-filesystems"],
        "tracing started",
    );
    let marker = std::env::temp_dir().join(unique("igt-topebpf"));
    let opens = 3000u64;
    for _ in 0..opens {
        let _ = std::fs::File::open(&marker);
    }
    let mine = |r: &Value| r["pid"] == holder && r["name"] == "ig_openat_exit";
    let sums = sum_rows(&top, Duration::from_secs(2), mine, &["runCount", "runTime"]);
    // Every open of this test ran it, and the node's other opens too.
    assert!(sums[0] >= opens, "ran {} times for {opens} opens", sums[0]);
    assert!(sums[1] > 0, "no run time");
    let row =
        top.wait_json(Duration::from_secs(5), || {}, |t| t.as_array().is_some_and(|a| a.iter().any(mine)));
    let row = row.as_array().unwrap().iter().find(|r| mine(r)).unwrap().clone();
    assert_eq!((row["progType"].as_str(), row["comm"].as_str()), (Some("tracepoint"), Some("ig")), "{row}");
    assert!(row["mapMemory"].as_u64().unwrap() > 0 && row["mapCount"].as_u64().unwrap() > 0, "{row}");
    assert!(row["runtime"].is_object(), "the container's fields stay: {row}");
    // Only host processes hold programs here: a container selection shows none.
    let tables = nobody.collect_json(Duration::from_millis(800));
    assert!(
        !tables.is_empty() && tables.iter().all(|t| t.as_array().is_some_and(Vec::is_empty)),
        "{tables:?}"
    );
}

#[test]
fn the_procfs_top_gadgets_refuse_tid() {
    require_root();
    for gadget in ["process", "ebpf"] {
        let out = Command::new(tests::binary("ig"))
            .args(["top", gadget, "--tid", "1", "--auto-mount-filesystems"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("--tid: this gadget has one row per process"),
            "{gadget}: {err}"
        );
    }
}
