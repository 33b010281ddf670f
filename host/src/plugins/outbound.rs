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
use http::header::{HeaderName, HeaderValue};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

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

/// What one adapter call may do on the network.
#[derive(Debug, Clone)]
pub struct OutboundPolicy {
    /// Host names (lower case) or `*.suffix` patterns the call may reach.
    pub allowed_hosts: Vec<String>,
    /// Reach private, loopback and link-local addresses.
    pub allow_private: bool,
    /// Headers the host adds to requests toward `credential_hosts` (secret values).
    pub inject: Vec<(HeaderName, HeaderValue)>,
    /// Where the secrets were entered for, the only targets that receive
    /// `inject`: `scheme://host:port` (exact), or a bare host name (any
    /// scheme and port), lower case.
    pub credential_hosts: Vec<String>,
    /// Deadline of one request, connect to last body byte.
    pub request_timeout: Duration,
    /// Requests one call may make.
    pub max_requests: u32,
    /// Largest request body.
    pub max_request_bytes: u64,
    /// Largest response body.
    pub max_response_bytes: u64,
}

impl OutboundPolicy {
    /// A policy that refuses every request (converters, extractors).
    pub fn deny_all() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allow_private: false,
            inject: Vec::new(),
            credential_hosts: Vec::new(),
            request_timeout: Duration::from_secs(30),
            max_requests: 0,
            max_request_bytes: 0,
            max_response_bytes: 0,
        }
    }

    /// Whether `host` (lower case, no port) is on the allow-list.
    pub fn allows_host(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|pattern| host_matches(pattern, host))
    }
}

/// Whether `host` matches `pattern`: equal, or `*.example.com` for any
/// subdomain of example.com, or `*` for any host.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
        None => pattern == host,
    }
}

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

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                // Carrier-grade NAT 100.64/10 and benchmarking 198.18/15.
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // Addresses that carry an IPv4 address inside: judge that one.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            // IPv4-translated ::ffff:0:0/96 (SIIT) carries one in its last 32 bits.
            if s[..4].iter().all(|&x| x == 0) && s[4] == 0xffff && s[5] == 0 {
                let v4 = std::net::Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                );
                return is_public(IpAddr::V4(v4));
            }
            // 6to4 2002::/16 routes to the IPv4 address in bits 16..48.
            if s[0] == 0x2002 {
                let v4 = std::net::Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                );
                return is_public(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // IPv4-compatible ::/96 (deprecated; `::127.0.0.1` reaches loopback on some stacks).
                || s[..6].iter().all(|&x| x == 0)
                // Unique local fc00::/7, link-local fe80::/10, site-local fec0::/10,
                // documentation 2001:db8::/32, discard 100::/64.
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0100 && s[1..4].iter().all(|&x| x == 0))
                // Teredo 2001::/32 tunnels to an IPv4 address it hides.
                || (s[0] == 0x2001 && s[1] == 0)
                // NAT64 64:ff9b::/96 and local-use 64:ff9b:1::/48 can reach
                // any IPv4 address, private ones too.
                || (s[0] == 0x64 && s[1] == 0xff9b))
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        assert!(host_matches("api.openai.com", "API.openai.com"));
        assert!(!host_matches("api.openai.com", "evil-api.openai.com"));
        assert!(host_matches("*.openai.azure.com", "x.openai.azure.com"));
        assert!(!host_matches("*.openai.azure.com", "openai.azure.com"));
        assert!(!host_matches("*.openai.azure.com", "xopenai.azure.com"));
        assert!(host_matches("*", "anything.example"));
    }

    #[test]
    fn public_and_private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
            "::a00:1",
            "2002:7f00:1::",
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "2002:a00:1::1",
            "2001:0:4136:e378::1",
            "fec0::1",
            "100::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "2002:808:808::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
