//! Outbound HTTP of `llm-adapter` plugins: the host decides every request.
//!
//! A request leaves only when (1) its host is on the call's allow-list (the
//! manifest's requested hosts, as granted by the project binding), (2) every
//! address the host name resolves to is public — unless the operator allows
//! private networks — and the connection goes to exactly one of those vetted
//! addresses (no second lookup for a rebinding answer), (3) the guest set no
//! credential-class header itself. The host then adds the binding's secrets
//! as the manifest declares, so the guest never holds a key. Requests are
//! counted, sized and timed; the time spent waiting on the network is
//! recorded so that it does not count against the plugin's CPU deadline.
//!
//! A refusal is recorded on the call ([`OutboundLog::denied`]) and the whole
//! call then fails as `CAPABILITY_DENIED`, whatever the guest makes of the
//! error it got.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::plugins::policy::{OutboundPolicy, is_public};

/// Headers that carry credentials: only the host sets them.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "ocp-apim-subscription-key",
];
/// What happened on the network during one call.
#[derive(Debug, Default)]
pub struct OutboundLog {
    /// Why a request was refused (the first refusal).
    pub denied: Option<String>,
    /// Requests sent.
    pub requests: u32,
}

/// The hooks of one call: the policy, the call's log, and the clock of time
/// spent waiting on the network (microseconds, shared with the store).
#[derive(Clone)]
pub struct OutboundHooks {
    policy: Arc<OutboundPolicy>,
    log: Arc<Mutex<OutboundLog>>,
    waited_us: Arc<AtomicU64>,
}

impl OutboundHooks {
    /// Hooks enforcing `policy`.
    pub fn new(policy: OutboundPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
            log: Arc::new(Mutex::new(OutboundLog::default())),
            waited_us: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The refusal, if a request was refused.
    pub fn denied(&self) -> Option<String> {
        self.log.lock().ok().and_then(|l| l.denied.clone())
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u32 {
        self.log.lock().map(|l| l.requests).unwrap_or(0)
    }

    /// Time spent waiting on the network so far.
    pub fn waited(&self) -> Duration {
        Duration::from_micros(self.waited_us.load(Ordering::Relaxed))
    }

    /// The network clock, for the store's deadline.
    pub fn wait_clock(&self) -> Arc<AtomicU64> {
        self.waited_us.clone()
    }

    fn deny(&self, why: String) -> HttpError {
        tracing::warn!(reason = %why, "plugin outbound request refused");
        if let Ok(mut l) = self.log.lock()
            && l.denied.is_none()
        {
            l.denied = Some(why);
        }
        HttpError::HttpRequestDenied
    }

    /// Checks a request against the policy and counts it. Returns the host
    /// name and port to connect to.
    fn admit(&self, req: &http::Request<WasiBody>) -> Result<(String, u16, bool), HttpError> {
        let uri = req.uri();
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => {
                return Err(self.deny(format!(
                    "scheme {} is not allowed (http and https only)",
                    other.unwrap_or("(none)")
                )));
            }
        };
        let Some(host) = uri
            .host()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
        else {
            return Err(self.deny("request without a host".into()));
        };
        if !self.policy.allows_host(&host) {
            return Err(self.deny(format!(
                "host `{host}` is not on this plugin's allow-list ({})",
                if self.policy.allowed_hosts.is_empty() {
                    "empty".to_owned()
                } else {
                    self.policy.allowed_hosts.join(", ")
                }
            )));
        }
        for name in req.headers().keys() {
            if CREDENTIAL_HEADERS.contains(&name.as_str())
                || self.policy.inject.iter().any(|(h, _)| h == name)
            {
                return Err(self.deny(format!(
                    "the plugin set the credential header `{name}` itself; only the host sets credentials"
                )));
            }
        }
        {
            let mut l = self
                .log
                .lock()
                .map_err(|_| HttpError::InternalError(Some("outbound log poisoned".into())))?;
            if l.requests >= self.policy.max_requests {
                drop(l);
                return Err(self.deny(format!(
                    "more than {} outbound requests in one call",
                    self.policy.max_requests
                )));
            }
            l.requests += 1;
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok((host, port, tls))
    }

    /// Resolves `host` and returns its addresses if every one may be reached.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, HttpError> {
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| HttpError::DnsError {
                    rcode: Some(e.to_string()),
                    info_code: None,
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(HttpError::DestinationNotFound);
        }
        if !self.policy.allow_private
            && let Some(a) = addrs.iter().find(|a| !is_public(a.ip()))
        {
            // The address itself stays in the log: telling a tenant how
            // internal names resolve would map the operator's network.
            tracing::info!(host, address = %a.ip(), "outbound request to a non-public address refused");
            return Err(self.deny(format!(
                "`{host}` resolves to a non-public address; the operator has not allowed private networks (plugins.allow_private_networks)"
            )));
        }
        Ok(addrs)
    }

    async fn send(
        self,
        mut req: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let (host, port, tls) = self.admit(&req)?;
        let started = Instant::now();
        let addrs = self.resolve(&host, port).await?;
        let target = format!("{}://{host}:{port}", if tls { "https" } else { "http" });
        if self
            .policy
            .credential_hosts
            .iter()
            .any(|c| *c == host || *c == target)
        {
            for (name, value) in &self.policy.inject {
                req.headers_mut().insert(name.clone(), value.clone());
            }
        }
        let max_req = self.policy.max_request_bytes;
        let req = req.map(|b| {
            http_body_util::Limited::new(b, max_req as usize)
                .map_err(|_| HttpError::HttpRequestBodySize(None))
                .boxed_unsync()
        });
        let timeout = self.policy.request_timeout;
        let result = tokio::time::timeout(timeout, connect_and_send(req, &host, &addrs, tls)).await;
        self.add_wait(started.elapsed());
        let res = match result {
            Ok(r) => r?,
            Err(_) => return Err(HttpError::ConnectionReadTimeout),
        };
        let deadline = tokio::time::Instant::from_std(started + timeout);
        let limit = self.policy.max_response_bytes;
        let clock = self.waited_us.clone();
        Ok(res.map(move |incoming| {
            MeteredBody {
                inner: incoming,
                limit,
                read: 0,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                pending_since: None,
                clock,
            }
            .boxed_unsync()
        }))
    }

    fn add_wait(&self, d: Duration) {
        self.waited_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        drop(fut);
        let hooks = self.clone();
        Box::new(async move {
            let res = hooks.send(request).await?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((res, io))
        })
    }
}

/// Connects to the first reachable vetted address, speaks TLS to `host`
/// when asked, and sends the request over HTTP/1.1.
async fn connect_and_send(
    mut req: http::Request<WasiBody>,
    host: &str,
    addrs: &[SocketAddr],
    tls: bool,
) -> Result<http::Response<hyper::body::Incoming>, HttpError> {
    let mut last = None;
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(stream) = stream else {
        return Err(last
            .map(HttpError::Connect)
            .unwrap_or(HttpError::ConnectionRefused));
    };
    // The wire carries only path and query; the Host header names the host.
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    *req.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    if tls {
        let stream = tls_connector()
            .connect(server_name(host)?, stream)
            .await
            .map_err(HttpError::Tls)?;
        send_over(req, stream).await
    } else {
        send_over(req, stream).await
    }
}

async fn send_over<S>(
    req: http::Request<WasiBody>,
    stream: S,
) -> Result<http::Response<hyper::body::Incoming>, HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "plugin outbound connection ended");
        }
    });
    Ok(sender.send_request(req).await?)
}

fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, HttpError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(rustls::pki_types::ServerName::from(ip)),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(HttpError::InvalidDnsNameError),
    }
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        // An explicit provider: other crates in the graph may enable a second one.
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
        Arc::new(builder.with_root_certificates(roots).with_no_client_auth())
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// A response body with a size cap and a deadline, that records the time
/// the guest spent waiting for bytes.
struct MeteredBody {
    inner: hyper::body::Incoming,
    limit: u64,
    read: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    pending_since: Option<Instant>,
    clock: Arc<AtomicU64>,
}

impl MeteredBody {
    fn settle(&mut self) {
        if let Some(t) = self.pending_since.take() {
            self.clock
                .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    this.settle();
                    return Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)));
                }
                this.pending_since.get_or_insert_with(Instant::now);
                Poll::Pending
            }
            Poll::Ready(None) => {
                this.settle();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.settle();
                Poll::Ready(Some(Err(HttpError::from(e))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                this.settle();
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if this.read > this.limit {
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                            this.limit,
                        )))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}
