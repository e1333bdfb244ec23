//! containerd with NRI and real CRI pods, 1.7 and 2.x side by side: ig-nri
//! learns containers with their Kubernetes names, at start, from
//! Synchronize, and after containerd restarts. Each test runs against both;
//! tests on one containerd run one at a time.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tests::cri::{Containerd, Pod, V1_7, V2, env_value, start_plugin};
use tests::{IgChild, binary, harness, list_containers, mntns_of, require_root, unique};

fn listed(pod: &Pod) -> Option<Value> {
    list_containers().into_iter().find(|r| r["runtime"]["containerId"] == pod.ctr_id.as_str())
}

fn assert_k8s(rec: &Value, pod: &Pod) {
    assert_eq!(rec["runtime"]["runtimeName"], "containerd", "{rec}");
    assert_eq!(rec["runtime"]["containerName"], pod.ctr.as_str());
    assert_eq!(rec["k8s"]["namespace"], pod.ns.as_str());
    assert_eq!(rec["k8s"]["podName"], pod.name.as_str());
    assert_eq!(rec["k8s"]["containerName"], pod.ctr.as_str());
    assert_eq!(rec["k8s"]["podUID"], pod.uid.as_str());
}

/// Each test once per containerd: `mod v1_7` and `mod v2`.
macro_rules! on_each_containerd {
    ($($name:ident),* $(,)?) => {
        mod v1_7 { $( #[test] fn $name() { super::$name(&super::V1_7) } )* }
        mod v2 { $( #[test] fn $name() { super::$name(&super::V2) } )* }
    };
}

on_each_containerd!(
    a_cri_container_is_traced_from_its_first_exec_with_kubernetes_names,
    pods_are_selected_by_labels_namespace_and_image_as_they_start,
    containers_running_before_the_plugin_come_from_synchronize,
    the_plugin_reconnects_after_containerd_restarts,
    cri_containers_running_before_ig_are_listed_from_the_cri_api,
    the_daemons_own_nri_plugin_names_cri_containers_for_gadgetctl,
);

fn a_cri_container_is_traced_from_its_first_exec_with_kubernetes_names(runtime: &'static Containerd) {
    let _one = runtime.lock();
    require_root();
    let _plugin = start_plugin(runtime);
    let ig =
        IgChild::spawn_ready(&["trace", "exec", "-o", "json", "--auto-mount-filesystems"], "tracing started");
    let pod = Pod::run(runtime, &["/bin/sleep", "61"]);
    let ev = ig.wait_json(Duration::from_secs(20), || {}, |v| v["k8s"]["podName"] == pod.name.as_str());
    assert_eq!(ev["args"], json!(["/bin/sleep", "61"]), "the entrypoint is the first exec");
    assert_k8s(&ev, &pod);
    assert_eq!(ev["runtime"]["containerImageName"], harness().image.as_str());
    let rec = listed(&pod).expect("listed");
    assert_k8s(&rec, &pod);
    assert_eq!(rec["k8s"]["podLabels"]["app"], "ig-test");
    assert_eq!(rec["mntns"], mntns_of(pod.pid()));
    // The pause container is not a container.
    assert!(list_containers().iter().all(|r| r["runtime"]["containerId"] != pod.pod_id.as_str()));
}

fn pods_are_selected_by_labels_namespace_and_image_as_they_start(runtime: &'static Containerd) {
    let _one = runtime.lock();
    require_root();
    let _plugin = start_plugin(runtime);
    let tier = unique("tier");
    // The image by its last path component: "ig-busybox" for localhost/ig-busybox:latest.
    let image = harness().image.rsplit('/').next().unwrap().split(':').next().unwrap().to_string();
    let selector = format!("app=ig-test,tier={tier},!canary");
    let ig = IgChild::spawn_ready(
        &[
            "trace",
            "exec",
            "-o",
            "json",
            "--auto-mount-filesystems",
            "--k8s-selector",
            &selector,
            "--k8s-namespace",
            "!ig-test-other",
            "--runtime-containerimage",
            &image,
        ],
        "tracing started",
    );
    // Each started after ig, in this order: only the last one is selected.
    let other_tier = Pod::run_with(
        runtime,
        &["/bin/true", "other-tier"],
        "ig-test-ns",
        json!({"app": "ig-test", "tier": "x"}),
    );
    let canary = Pod::run_with(
        runtime,
        &["/bin/true", "canary"],
        "ig-test-ns",
        json!({"app": "ig-test", "tier": tier, "canary": "yes"}),
    );
    let other_ns = Pod::run_with(
        runtime,
        &["/bin/true", "other-ns"],
        "ig-test-other",
        json!({"app": "ig-test", "tier": tier}),
    );
    let wanted = Pod::run_with(
        runtime,
        &["/bin/true", "wanted"],
        "ig-test-ns",
        json!({"app": "ig-test", "tier": tier}),
    );
    let unwanted = [other_tier.name.as_str(), canary.name.as_str(), other_ns.name.as_str()];
    let ev = ig.wait_json_forbidding(
        Duration::from_secs(20),
        || {},
        |v| v["k8s"]["podName"] == wanted.name.as_str(),
        |v| unwanted.iter().any(|n| v["k8s"]["podName"] == *n),
        Duration::from_millis(500),
    );
    assert_eq!(ev["args"], json!(["/bin/true", "wanted"]));
    // The pod's own labels, on the NRI path too (containerd adds io.cri-containerd.kind).
    assert_eq!(ev["k8s"]["podLabels"], json!({"app": "ig-test", "tier": tier}));
}

fn containers_running_before_the_plugin_come_from_synchronize(runtime: &'static Containerd) {
    let _one = runtime.lock();
    require_root();
    let pod = Pod::run(runtime, &["/bin/sleep", "62"]);
    assert!(listed(&pod).is_none(), "nothing knew the container before the plugin");
    let _plugin = start_plugin(runtime);
    assert_k8s(&listed(&pod).expect("learnt from Synchronize"), &pod);
}

fn the_plugin_reconnects_after_containerd_restarts(runtime: &'static Containerd) {
    let _one = runtime.lock();
    require_root();
    let plugin = start_plugin(runtime);
    runtime.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while plugin.stderr_text().matches("registered with the runtime").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "no re-registration: {}", plugin.stderr_text());
        plugin.wait_stderr("\u{0}", Duration::from_millis(200));
    }
    let pod = Pod::run(runtime, &["/bin/sleep", "63"]);
    assert_k8s(&listed(&pod).expect("seen after the restart"), &pod);
}

fn cri_containers_running_before_ig_are_listed_from_the_cri_api(runtime: &'static Containerd) {
    let _one = runtime.lock();
    require_root();
    // No plugin and no hook: only containerd's CRI service knows this container.
    let pod = Pod::run(runtime, &["/bin/sleep", "63"]);
    assert!(listed(&pod).is_none(), "nothing else knew the container");
    let sock = env_value(runtime.sock_var);
    let out = Command::new(binary("ig"))
        .args(["list-containers", "-o", "json", "--containerd-socketpath", &sock])
        .output()
        .expect("ig list-containers");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    let rec = list
        .iter()
        .find(|r| r["runtime"]["containerId"] == pod.ctr_id.as_str())
        .unwrap_or_else(|| panic!("not listed from CRI: {list:?}"));
    assert_k8s(rec, &pod);
    assert_eq!(rec["runtime"]["containerImageName"], harness().image.as_str());
    assert_eq!(rec["k8s"]["podLabels"]["app"], "ig-test");
    assert_eq!(rec["mntns"], mntns_of(pod.pid()));
    assert!(list.iter().all(|r| r["runtime"]["containerId"] != pod.pod_id.as_str()), "no pause container");
}

fn the_daemons_own_nri_plugin_names_cri_containers_for_gadgetctl(runtime: &'static Containerd) {
    let _one = runtime.lock();
    require_root();
    let nri = runtime.nri_socket();
    let d = tests::Daemon::start(&["--nri-socket", &nri]);
    assert!(d.ig.wait_stderr("synchronized", Duration::from_secs(20)), "daemon: {}", d.ig.stderr_text());
    let client = d.gadgetctl_ready(&["trace", "exec", "-o", "json"]);
    let pod = Pod::run(runtime, &["/bin/sleep", "64"]);
    let ev = client.wait_json(Duration::from_secs(20), || {}, |v| v["k8s"]["podName"] == pod.name.as_str());
    assert_eq!(ev["args"], json!(["/bin/sleep", "64"]), "the entrypoint is the first exec");
    assert_k8s(&ev, &pod);
    assert_eq!(ev["k8s"]["podLabels"]["app"], "ig-test");
}
