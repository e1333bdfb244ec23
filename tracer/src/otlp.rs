//! `--otlp-endpoint URL`: events as OTLP logs and the metrics as OTLP
//! metrics, over gRPC to an OpenTelemetry collector.
//!
//! One log record per event shown (after `-F`): the event's fields as
//! attributes, its JSON as the body, the gadget as the event name, and its
//! container as the resource (`container.*`, `k8s.*`, OpenTelemetry's own
//! attribute names). The metrics of `--metrics-address` go every
//! `--otlp-metrics-interval` as cumulative sums, gauges and histograms.
//!
//! The gadget never waits for the collector: events go into a bounded
//! queue that a task of its own drains in batches. A failed export is
//! retried with back-off (0.5 s doubling to 30 s) while the queue fills;
//! what does not fit is dropped, counted, and reported like lost events.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

use crate::collection::Collection;
use crate::metrics::{FamilyKind, Metrics, Value};

/// Events waiting for the exporter; beyond this they are dropped (counted).
const QUEUE: usize = 8192;
/// Records per export request.
const BATCH: usize = 512;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(30);
/// How long a stopping run waits for what is queued to go out.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(3);
/// OpenTelemetry's INFO.
const SEVERITY_INFO: i32 = 9;

#[derive(Clone, Debug, clap::Args)]
pub struct OtlpFlags {
    /// Export events as OTLP logs (and the metrics as OTLP metrics) over
    /// gRPC to this collector, e.g. http://127.0.0.1:4317.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// How often the metrics go to --otlp-endpoint: 10s, 1m...
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::cli::parse_duration, requires = "otlp_endpoint")]
    pub otlp_metrics_interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("--otlp-endpoint {0:?}: expected http://HOST:PORT or https://HOST:PORT")]
    Endpoint(String),
}

/// One event on its way out.
struct Record {
    container: Option<Arc<shared::ContainerRecord>>,
    log: LogRecord,
}

/// What the exporter did, for the run's reports.
#[derive(Default)]
struct Stats {
    dropped: AtomicU64,
    failed_exports: AtomicU64,
    last_error: Mutex<String>,
}

/// The run's handle on its exporter.
pub struct Exporter {
    tx: Option<mpsc::Sender<Record>>,
    stats: Arc<Stats>,
    task: Option<tokio::task::JoinHandle<()>>,
    gadget: String,
    reported_dropped: u64,
    reported_failures: u64,
}

impl Exporter {
    /// Starts the export task; `metrics` are sent every `interval`.
    pub fn start(
        flags: &OtlpFlags,
        gadget: &str,
        metrics: Option<(Arc<Metrics>, Arc<Collection>)>,
    ) -> Result<Option<Self>, OtlpError> {
        let Some(url) = &flags.otlp_endpoint else { return Ok(None) };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(OtlpError::Endpoint(url.clone()));
        }
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|_| OtlpError::Endpoint(url.clone()))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10));
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(export_loop(
            endpoint.connect_lazy(),
            rx,
            stats.clone(),
            metrics,
            flags.otlp_metrics_interval,
            host_resource(),
        ));
        Ok(Some(Self {
            tx: Some(tx),
            stats,
            task: Some(task),
            gadget: gadget.to_string(),
            reported_dropped: 0,
            reported_failures: 0,
        }))
    }

    /// Queues one event (its JSON); never waits.
    pub fn send(&self, container: Option<Arc<shared::ContainerRecord>>, event: &impl serde::Serialize) {
        let Some(tx) = &self.tx else { return };
        let Ok(value) = serde_json::to_value(event) else { return };
        let log = log_record(&self.gadget, &value);
        if tx.try_send(Record { container, log }).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped and exports failed since the last call, with why.
    pub fn new_trouble(&mut self) -> Option<(u64, u64, String)> {
        let dropped = self.stats.dropped.load(Ordering::Relaxed);
        let failures = self.stats.failed_exports.load(Ordering::Relaxed);
        if dropped == self.reported_dropped && failures == self.reported_failures {
            return None;
        }
        let out = (dropped - self.reported_dropped, failures - self.reported_failures);
        (self.reported_dropped, self.reported_failures) = (dropped, failures);
        let why = self.stats.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Some((out.0, out.1, why))
    }

    /// Sends what is queued (bounded by [`FLUSH_TIMEOUT`]) and stops.
    pub async fn finish(&mut self) {
        self.tx = None;
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(FLUSH_TIMEOUT, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// The task: batches of log records, and the metrics on their tick, each
/// export retried with back-off until it goes (or the run stops).
async fn export_loop(
    channel: Channel,
    mut rx: mpsc::Receiver<Record>,
    stats: Arc<Stats>,
    metrics: Option<(Arc<Metrics>, Arc<Collection>)>,
    interval: Duration,
    host: Vec<KeyValue>,
) {
    let mut logs = LogsServiceClient::new(channel.clone());
    let mut metrics_client = MetricsServiceClient::new(channel);
    let mut tick = tokio::time::interval(interval.max(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let started_ns = now_ns();
    let mut open = true;
    while open {
        let mut batch = Vec::new();
        tokio::select! {
            r = rx.recv() => match r {
                Some(rec) => batch.push(rec),
                None => open = false,
            },
            _ = tick.tick(), if metrics.is_some() => {
                if let Some((m, c)) = &metrics {
                    let request = metrics_request(m, c, &host, started_ns);
                    if let Err(e) = metrics_client.export(request).await {
                        failed(&stats, format!("exporting metrics: {}", e.message()));
                    }
                }
                continue;
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(rec) => batch.push(rec),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let request = logs_request(batch, &host);
        let mut wait = FIRST_RETRY;
        loop {
            match logs.export(request.clone()).await {
                Ok(_) => break,
                Err(e) => {
                    failed(&stats, format!("exporting logs: {}", e.message()));
                    if !open {
                        break; // stopping: the flush has its own bound
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(LAST_RETRY);
                }
            }
        }
    }
}

fn failed(stats: &Stats, why: String) {
    tracing::debug!("OTLP: {why}");
    stats.failed_exports.fetch_add(1, Ordering::Relaxed);
    *stats.last_error.lock().unwrap_or_else(|e| e.into_inner()) = why;
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

fn text(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.to_string()))
}

/// A JSON value as an OTLP one: numbers stay numbers, objects key lists.
fn any(v: &serde_json::Value) -> any_value::Value {
    use serde_json::Value as J;
    match v {
        J::Null => any_value::Value::StringValue(String::new()),
        J::Bool(b) => any_value::Value::BoolValue(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => any_value::Value::IntValue(i),
            // Above i64: OTLP ints are signed.
            (None, Some(u), _) => any_value::Value::StringValue(u.to_string()),
            (_, _, Some(f)) => any_value::Value::DoubleValue(f),
            _ => any_value::Value::StringValue(n.to_string()),
        },
        J::String(s) => any_value::Value::StringValue(s.clone()),
        J::Array(a) => any_value::Value::ArrayValue(ArrayValue {
            values: a.iter().map(|v| AnyValue { value: Some(any(v)) }).collect(),
        }),
        J::Object(o) => any_value::Value::KvlistValue(KeyValueList {
            values: o.iter().map(|(k, v)| kv(k, any(v))).collect(),
        }),
    }
}

/// One event: its own fields as attributes (the container's go to the
/// resource), its JSON as the body.
fn log_record(gadget: &str, event: &serde_json::Value) -> LogRecord {
    let time = event["timestamp"].as_u64().unwrap_or(0);
    let attributes = match event {
        serde_json::Value::Object(o) => o
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "runtime" | "k8s" | "timestamp"))
            .map(|(k, v)| kv(k, any(v)))
            .collect(),
        _ => Vec::new(),
    };
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: now_ns(),
        severity_number: SEVERITY_INFO,
        severity_text: "INFO".into(),
        body: Some(AnyValue { value: Some(any_value::Value::StringValue(event.to_string())) }),
        attributes,
        event_name: gadget.to_string(),
        ..Default::default()
    }
}

/// This node: every resource has it.
fn host_resource() -> Vec<KeyValue> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    vec![text("service.name", "ig"), text("host.name", &host)]
}

/// A container as an OpenTelemetry resource (the host's attributes only
/// for host processes).
fn container_resource(host: &[KeyValue], c: Option<&shared::ContainerRecord>) -> Resource {
    let mut attributes = host.to_vec();
    if let Some(c) = c {
        let r = &c.runtime;
        for (k, v) in [
            ("container.id", &r.container_id),
            ("container.name", &r.container_name),
            ("container.runtime", &r.runtime_name),
            ("container.image.name", &r.container_image_name),
            ("k8s.namespace.name", &c.k8s.namespace),
            ("k8s.pod.name", &c.k8s.pod_name),
            ("k8s.pod.uid", &c.k8s.pod_uid),
            ("k8s.container.name", &c.k8s.container_name),
        ] {
            if !v.is_empty() {
                attributes.push(text(k, v));
            }
        }
    }
    Resource { attributes, ..Default::default() }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "ig".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

/// A batch, grouped by container.
fn logs_request(batch: Vec<Record>, host: &[KeyValue]) -> ExportLogsServiceRequest {
    let mut by_container: BTreeMap<String, (Option<Arc<shared::ContainerRecord>>, Vec<LogRecord>)> =
        BTreeMap::new();
    for r in batch {
        let id = r.container.as_ref().map(|c| c.runtime.container_id.clone()).unwrap_or_default();
        let entry = by_container.entry(id).or_insert_with(|| (r.container.clone(), Vec::new()));
        entry.1.push(r.log);
    }
    ExportLogsServiceRequest {
        resource_logs: by_container
            .into_values()
            .map(|(c, log_records)| ResourceLogs {
                resource: Some(container_resource(host, c.as_deref())),
                scope_logs: vec![ScopeLogs { scope: Some(scope()), log_records, ..Default::default() }],
                ..Default::default()
            })
            .collect(),
    }
}

/// The metrics now, cumulative since the run started.
fn metrics_request(
    metrics: &Metrics,
    collection: &Collection,
    host: &[KeyValue],
    started_ns: u64,
) -> ExportMetricsServiceRequest {
    let now = now_ns();
    let cumulative = AggregationTemporality::Cumulative as i32;
    let out: Vec<Metric> = metrics
        .families(collection)
        .into_iter()
        .map(|f| {
            let attributes =
                |p: &crate::metrics::Point| p.labels.iter().map(|(k, v)| text(k, v)).collect::<Vec<_>>();
            let numbers = || {
                f.points
                    .iter()
                    .filter_map(|p| match p.value {
                        Value::Number(n) => Some(NumberDataPoint {
                            attributes: attributes(p),
                            start_time_unix_nano: started_ns,
                            time_unix_nano: now,
                            value: Some(number_data_point::Value::AsInt(n as i64)),
                            ..Default::default()
                        }),
                        Value::Histogram { .. } => None,
                    })
                    .collect::<Vec<_>>()
            };
            let data = match f.kind {
                FamilyKind::Counter => metric::Data::Sum(Sum {
                    data_points: numbers(),
                    aggregation_temporality: cumulative,
                    is_monotonic: true,
                }),
                FamilyKind::Gauge => metric::Data::Gauge(Gauge { data_points: numbers() }),
                FamilyKind::Histogram => metric::Data::Histogram(Histogram {
                    data_points: f
                        .points
                        .iter()
                        .filter_map(|p| match &p.value {
                            Value::Histogram { bounds, cumulative, count, sum } => Some(HistogramDataPoint {
                                attributes: attributes(p),
                                start_time_unix_nano: started_ns,
                                time_unix_nano: now,
                                count: *count,
                                sum: Some(*sum),
                                bucket_counts: per_bucket(cumulative, *count),
                                explicit_bounds: bounds.to_vec(),
                                ..Default::default()
                            }),
                            Value::Number(_) => None,
                        })
                        .collect(),
                    aggregation_temporality: cumulative,
                }),
            };
            Metric {
                // OTLP's names carry no _total: a Prometheus back-end adds it.
                name: f.name.strip_suffix("_total").unwrap_or(f.name).to_string(),
                description: f.help.to_string(),
                unit: if f.name.ends_with("_seconds") { "s".into() } else { String::new() },
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: host.to_vec(), ..Default::default() }),
            scope_metrics: vec![ScopeMetrics { scope: Some(scope()), metrics: out, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// Prometheus' cumulative bucket counts as OTLP's per-bucket ones (one
/// more, for +Inf).
fn per_bucket(cumulative: &[u64], count: u64) -> Vec<u64> {
    let mut out = Vec::with_capacity(cumulative.len() + 1);
    let mut below = 0;
    for &n in cumulative.iter().chain(std::iter::once(&count)) {
        out.push(n.saturating_sub(below));
        below = n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_a_log_record_with_its_fields_as_attributes() {
        let event = serde_json::json!({
            "runtime": {"containerName": "web"}, "k8s": {}, "timestamp": 1_700_000_000_000_000_000u64,
            "pid": 42, "comm": "cat", "args": ["/bin/cat", "x"], "big": u64::MAX, "ok": true,
        });
        let log = log_record("trace exec", &event);
        assert_eq!(log.time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(log.event_name, "trace exec");
        let attr = |k: &str| log.attributes.iter().find(|a| a.key == k).and_then(|a| a.value.clone()?.value);
        assert_eq!(attr("pid"), Some(any_value::Value::IntValue(42)));
        assert_eq!(attr("comm"), Some(any_value::Value::StringValue("cat".into())));
        assert_eq!(attr("big"), Some(any_value::Value::StringValue(u64::MAX.to_string())));
        assert_eq!(attr("ok"), Some(any_value::Value::BoolValue(true)));
        assert!(matches!(attr("args"), Some(any_value::Value::ArrayValue(a)) if a.values.len() == 2));
        assert!(attr("runtime").is_none() && attr("timestamp").is_none(), "the container is the resource");
    }

    #[test]
    fn a_batch_is_grouped_by_container_with_its_resource() {
        let mut c = shared::ContainerRecord::default();
        c.runtime.container_id = "abc".into();
        c.runtime.container_name = "web".into();
        c.k8s.namespace = "prod".into();
        let c = Arc::new(c);
        let rec =
            |container: Option<Arc<shared::ContainerRecord>>| Record { container, log: LogRecord::default() };
        let req = logs_request(vec![rec(Some(c.clone())), rec(None), rec(Some(c))], &host_resource());
        assert_eq!(req.resource_logs.len(), 2);
        let web = req
            .resource_logs
            .iter()
            .find(|r| r.scope_logs[0].log_records.len() == 2)
            .expect("the container's two records together");
        let keys: Vec<&str> =
            web.resource.as_ref().unwrap().attributes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            keys,
            ["service.name", "host.name", "container.id", "container.name", "k8s.namespace.name"]
        );
    }

    #[test]
    fn cumulative_buckets_become_per_bucket_counts() {
        assert_eq!(per_bucket(&[0, 1, 1, 3], 4), [0, 1, 0, 2, 1]);
        assert_eq!(per_bucket(&[], 0), [0]);
    }

    #[test]
    fn endpoints_need_a_scheme() {
        let flags = |u: &str| OtlpFlags {
            otlp_endpoint: Some(u.into()),
            otlp_metrics_interval: Duration::from_secs(1),
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            assert!(matches!(
                Exporter::start(&flags("127.0.0.1:4317"), "g", None),
                Err(OtlpError::Endpoint(_))
            ));
            assert!(Exporter::start(&flags("http://127.0.0.1:4317"), "g", None).unwrap().is_some());
        });
    }
}
