//! Starting and stopping a node: the HTTP API, in-process workers, or both.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::api::{self, http::GraphqlState};
use crate::app::{self, App};
use crate::config::Config;
use crate::jobs::{JobRegistry, worker};
use crate::ops;

/// A running node.
pub struct Running {
    /// The application (database, bus, …), e.g. for tests to enqueue jobs.
    pub app: Arc<App>,
    /// Where the API listens, when it serves one.
    pub addr: Option<std::net::SocketAddr>,
    /// Where a worker node serves `/livez`, `/readyz` and `/metrics`.
    pub ops_addr: Option<std::net::SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests and jobs finish (jobs within
    /// the grace period, then their leases are released), and waits.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        // WebSockets were told to close (1001); let their close frames out.
        self.app.sockets.close();
        if tokio::time::timeout(Duration::from_secs(2), self.app.sockets.wait())
            .await
            .is_err()
        {
            tracing::warn!("WebSockets still open at shutdown; dropping them");
        }
    }

    /// Ends the node abruptly, as a crash would: tasks are aborted, leases
    /// stay held until they expire. For tests of crash recovery.
    pub fn kill(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.shutdown.cancel();
    }

    /// The token that stops this node.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// The HTTP router for `app`.
pub fn router(app: Arc<App>) -> Router {
    let schema = api::schema(app.clone());
    let gql = Router::new()
        .route(
            "/graphql",
            get(api::http::graphql_get).post(api::http::graphql_post),
        )
        .route(
            "/documents/{id}/original",
            get(api::http::download_original),
        )
        .route("/documents/{id}/pages/{file}", get(api::http::page_image))
        .route("/exports/{id}", get(api::http::download_export))
        .route(
            "/exports/{id}/codebook.csv",
            get(api::http::download_codebook),
        )
        .route("/exports/{id}/analysis.R", get(api::http::download_script))
        .with_state(GraphqlState {
            app: app.clone(),
            schema,
        });
    let ops = ops_routes(app);
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    gql.merge(ops)
        .merge(api::ui::router())
        .layer(axum::middleware::from_fn(ops::track_http))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

fn ops_routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/livez", get(ops::livez))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .with_state(app)
}

/// The router of a worker node's operations port.
pub fn ops_router(app: Arc<App>) -> Router {
    ops_routes(app).layer(axum::middleware::from_fn(ops::track_http))
}

/// What a node runs.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    /// Serve the HTTP API.
    pub api: bool,
    /// Run job workers.
    pub workers: bool,
}

/// Starts a node on `listener` (when it serves the API). Returns once it is
/// accepting; [`Running::shutdown`] stops it.
pub async fn launch(
    config: Config,
    jobs: JobRegistry,
    listener: Option<TcpListener>,
    roles: Roles,
) -> anyhow::Result<Running> {
    ops::metrics_handle();
    let mut jobs = jobs;
    // Built-in job kinds; a caller's registry may add its own.
    jobs.register(
        crate::documents::CONVERT_JOB,
        crate::documents::convert::ConvertHandler,
    );
    jobs.register(
        crate::extraction::UNIT_JOB,
        crate::extraction::unit::UnitHandler,
    );
    let shutdown = CancellationToken::new();
    let jobs = Arc::new(jobs);
    let app = app::build(config, shutdown.clone()).await?;
    let mut tasks = Vec::new();
    let mut addr = None;
    let mut ops_addr = None;
    if roles.api {
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(app.config.listen).await?,
        };
        addr = Some(listener.local_addr()?);
        let router = router(app.clone());
        let limits = app.config.limits.clone();
        tasks.push(tokio::spawn(serve_http(
            listener,
            router,
            limits,
            shutdown.clone(),
        )));
    }
    if roles.workers {
        // A worker node has no API; it serves the operations endpoints on
        // their own port, so it can be probed, scraped and restarted.
        if !roles.api && !app.config.ops_listen.trim().is_empty() {
            let at = app.config.ops_listen.trim();
            let listener = TcpListener::bind(at)
                .await
                .map_err(|e| anyhow::anyhow!("ops_listen {at}: {e}"))?;
            ops_addr = Some(listener.local_addr()?);
            let limits = app.config.limits.clone();
            tasks.push(tokio::spawn(serve_http(
                listener,
                ops_router(app.clone()),
                limits,
                shutdown.clone(),
            )));
        }
        app.node.worker_turned();
        tasks.push(tokio::spawn(worker::run(
            app.clone(),
            jobs.clone(),
            app.node.id.clone(),
            shutdown.clone(),
        )));
    }
    tasks.push(tokio::spawn(crate::jobs::maintenance::run(
        app.clone(),
        shutdown.clone(),
    )));
    Ok(Running {
        app,
        addr,
        ops_addr,
        shutdown,
        tasks,
    })
}

/// How long shutdown waits for open connections to finish their requests.
const DRAIN: Duration = Duration::from_secs(10);

/// Accepts connections until shutdown. Our own loop rather than
/// `axum::serve`: a client must send its headers within
/// `limits.header_read_timeout_secs` (a stalled one no longer holds a
/// connection open), and every request carries its peer address
/// (`ConnectInfo`) for login backoff and trusted-proxy checks.
async fn serve_http(
    listener: TcpListener,
    router: Router,
    limits: crate::config::LimitsConfig,
    stop: CancellationToken,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use tower::ServiceExt;

    // HTTP/1 only: detecting HTTP/2 would first read the connection
    // preface with no timeout at all (a client sending nothing would hold
    // the socket), and h2c is not needed behind TLS-terminating proxies.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        // hyper's header timeout starts with the first byte: a client that
        // connects and sends nothing is cut off here instead.
        let started = Arc::new(AtomicBool::new(false));
        let seen = started.clone();
        let service = hyper::service::service_fn(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                seen.store(true, Ordering::Relaxed);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            },
        );
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        let first_request = Duration::from_secs(limits.header_read_timeout_secs.max(1));
        tokio::spawn(async move {
            let silent = async {
                tokio::time::sleep(first_request).await;
                if started.load(Ordering::Relaxed) {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                }
                () = silent => tracing::debug!(%peer, "closed a connection that sent no request"),
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown drain; closing them");
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    // Give the log line a moment before the runtime winds down.
    tokio::time::sleep(Duration::from_millis(10)).await;
}
