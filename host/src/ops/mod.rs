//! Operations endpoints: liveness, readiness, Prometheus metrics, and the
//! HTTP metrics middleware.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{ConnectionTrait, Statement};

use crate::app::App;
use crate::db;
use crate::jobs::JobState;

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
        })
        .clone()
}

/// GET /livez: the process is up.
pub async fn livez() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
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

/// GET /metrics: Prometheus text. Job counts are read from the database at
/// scrape time, so every node reports the same, current numbers.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    let Some(handle) = metrics_handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response();
    };
    if let Err(e) = record_job_counts(&app).await {
        tracing::warn!(error = %e, "job counts not available for metrics");
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handle.render(),
    )
        .into_response()
}

async fn record_job_counts(app: &App) -> Result<(), sea_orm::DbErr> {
    let backend = app.db.get_database_backend();
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state",
        ))
        .await?;
    let mut counts: std::collections::BTreeMap<String, [i64; 5]> = Default::default();
    let states = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];
    for r in rows {
        let kind: String = r.try_get("", "kind")?;
        let state: String = r.try_get("", "state")?;
        let n: i64 = r.try_get("", "n")?;
        if let Some(i) = states.iter().position(|s| s.as_str() == state) {
            counts.entry(kind).or_default()[i] = n;
        }
    }
    for (kind, ns) in counts {
        for (s, n) in states.iter().zip(ns) {
            metrics::gauge!("evistream_jobs", "kind" => kind.clone(), "state" => s.as_str())
                .set(n as f64);
        }
    }
    Ok(())
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
