//! Operations endpoints: liveness, readiness, Prometheus metrics, and the
//! HTTP metrics middleware.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::App;
use crate::db;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls reuse it).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                        300.0,
                    ],
                )
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
                .inspect(|_| describe())
        })
        .clone()
}

/// GET /livez: the process is up and, on a node with workers, its worker
/// loop still turns (a hung one answers 503, so it gets restarted).
pub async fn livez(State(app): State<Arc<App>>) -> Response {
    match app.node.workers_alive() {
        Some(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "error", "workers": "stalled" })),
        )
            .into_response(),
        _ => axum::Json(serde_json::json!({ "status": "ok" })).into_response(),
    }
}

/// GET /readyz: database and blob store answer; 503 with details otherwise.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let database = match db::ping(&app.db).await {
        Ok(()) => serde_json::json!({ "status": "ok" }),
        Err(e) => serde_json::json!({ "status": "error", "error": e.to_string() }),
    };
    let blobs = match app.blobs.check().await {
        Ok(()) => serde_json::json!({ "status": "ok" }),
        Err(e) => serde_json::json!({ "status": "error", "error": e.to_string() }),
    };
    let ok = database["status"] == "ok" && blobs["status"] == "ok";
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "error" },
        "components": { "database": database, "blobs": blobs },
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

/// GET /metrics: Prometheus text: this process's own metrics, plus the
/// queue depth when this node leads (read from the database at scrape
/// time; every other node leaves it out, so sums over nodes are right).
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let Some(handle) = metrics_handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response();
    };
    let mut body = handle.render();
    // Written here, not through the recorder: the recorder is per process,
    // leadership per node (tests run several nodes in one process).
    let _ = write!(
        body,
        "# HELP evistream_leader 1 when this node holds the leader's lease (it reports evistream_queue_jobs and prunes old jobs).\n\
         # TYPE evistream_leader gauge\nevistream_leader {}\n",
        u8::from(app.node.is_leader())
    );
    if app.node.is_leader() {
        match crate::jobs::maintenance::queue_depth(&app.db).await {
            Ok(depth) => body.push_str(&crate::jobs::maintenance::render_depth(&depth)),
            Err(e) => tracing::warn!(error = %e, "queue depth not available for metrics"),
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

/// HELP lines of this process's metrics.
fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        "evistream_http_requests_total",
        "HTTP requests served, by route, method and status."
    );
    describe_histogram!(
        "evistream_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by route and method."
    );
    describe_histogram!(
        "evistream_job_duration_seconds",
        Unit::Seconds,
        "Time of one job attempt on this worker, by kind and outcome (succeeded, retry, failed, cancelled, released)."
    );
    describe_counter!(
        "evistream_job_lease_lost_total",
        "Job attempts on this worker whose lease was lost before they finished; they wrote nothing."
    );
}

/// Counts requests by route and status, and times them.
pub async fn track_http(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("evistream_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("evistream_http_request_duration_seconds", "route" => route, "method" => method)
        .record(start.elapsed().as_secs_f64());
    resp
}
