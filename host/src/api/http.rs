//! HTTP transport of the GraphQL API: POST (JSON), GET (GraphiQL or a
//! graphql-transport-ws WebSocket), all on `/graphql`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{BatchRequest, BatchResponse};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::guard::{self, ClientAddr};
use super::{ApiSchema, RequestAuth};
use crate::app::App;
use crate::auth::service::{authenticate, bearer_token};
use crate::documents;
use crate::error::ServiceError;
use crate::tenancy::Access;

/// State of the GraphQL routes.
#[derive(Clone)]
pub struct GraphqlState {
    /// The application.
    pub app: Arc<App>,
    /// The schema.
    pub schema: ApiSchema,
}

/// The verdict on an `Authorization` value (none, valid, or why not).
pub(crate) async fn principal_from(app: &App, auth_header: Option<&str>) -> RequestAuth {
    let verdict = match auth_header {
        None => Ok(None),
        Some(h) => match bearer_token(h) {
            None => Err("Authorization must be `Bearer <token>`".to_owned()),
            Some(t) => authenticate(app, t)
                .await
                .map(Some)
                .map_err(|e| e.to_string()),
        },
    };
    RequestAuth::new(verdict)
}

/// A JSON error answer outside GraphQL execution.
pub(crate) fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    (status, axum::Json(body)).into_response()
}

/// The server's own base URL as the client reached it, for URLs the API
/// returns (exports): `X-Forwarded-Proto` / `X-Forwarded-Host` from a
/// trusted proxy, else the Host header, else the listen address.
#[derive(Debug, Clone)]
pub struct PublicBase(pub String);

/// The first value of a forwarding header, if it is a plain token.
fn header_token(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(',').next().unwrap_or("").trim().to_owned())
        .filter(|s| !s.is_empty() && !s.contains(['/', ' ', '"']))
}

/// The TCP peer of a request (set by the server's accept loop).
pub(crate) fn peer(req_ext: &axum::http::Extensions) -> Option<IpAddr> {
    req_ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

fn trusted(app: &App, ip: IpAddr) -> bool {
    app.trusted_proxies.iter().any(|n| n.contains(&ip))
}

/// Where a request comes from: the peer, or behind trusted proxies the
/// right-most `X-Forwarded-For` hop that is not itself a trusted proxy.
pub(crate) fn client_addr(
    app: &App,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Option<ClientAddr> {
    let peer = peer?;
    if !trusted(app, peer) {
        return Some(ClientAddr(peer));
    }
    let hops: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|h| h.trim().parse().ok())
        .collect();
    // From the right: skip our proxies; the first other hop is the client.
    // A hop we cannot read ends the chain (what is left of it is the
    // client's own say), and the last trusted proxy is then the client.
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if trusted(app, *ip) => client = *ip,
            Some(ip) => return Some(ClientAddr(*ip)),
            None => break,
        }
    }
    Some(ClientAddr(client))
}

fn public_base(headers: &HeaderMap, app: &App, peer: Option<IpAddr>) -> PublicBase {
    let from_proxy = peer.is_some_and(|p| trusted(app, p));
    let forwarded = |name: &str| from_proxy.then(|| header_token(headers, name)).flatten();
    let proto = forwarded("x-forwarded-proto")
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| "http".into());
    let host = forwarded("x-forwarded-host")
        .or_else(|| header_token(headers, "host"))
        .unwrap_or_else(|| app.config.listen.to_string());
    PublicBase(format!("{proto}://{host}"))
}

/// Reads a whole small body, within the size limit and the idle timeout.
async fn read_json_body(app: &App, body: Body) -> Result<bytes::Bytes, Response> {
    let limit = app.config.limits.max_body_bytes;
    let idle = Duration::from_secs(app.config.limits.body_idle_timeout_secs.max(1));
    match tokio::time::timeout(idle, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(_)) => Err(error_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!("request body is larger than {limit} bytes"),
        )),
        Err(_) => Err(error_body(
            StatusCode::REQUEST_TIMEOUT,
            "BAD_USER_INPUT",
            "the request body did not arrive in time",
        )),
    }
}

/// POST /graphql.
pub async fn graphql_post(State(st): State<GraphqlState>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let peer = peer(&parts.extensions);
    let client = client_addr(&st.app, headers, peer);
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let auth_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut batch = if ctype.starts_with("multipart/form-data") {
        if let Some(refusal) = super::multipart::not_preflighted(headers) {
            return refusal;
        }
        // Authenticated before a byte of the body is read, let alone spooled.
        let auth = principal_from(&st.app, auth_header).await;
        if !matches!(auth.principal, Ok(Some(_))) {
            return error_body(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "uploads need a valid Authorization: Bearer <token>",
            );
        }
        match super::multipart::read(&st.app, headers, ctype, body).await {
            Ok(b) => (b, auth),
            Err(resp) => return resp,
        }
    } else if ctype.starts_with("application/json")
        || ctype.starts_with("application/graphql-response+json")
    {
        let bytes = match read_json_body(&st.app, body).await {
            Ok(b) => b,
            Err(resp) => return resp,
        };
        match serde_json::from_slice::<BatchRequest>(&bytes) {
            Ok(b) => (b, principal_from(&st.app, auth_header).await),
            Err(e) => {
                return error_body(
                    StatusCode::BAD_REQUEST,
                    "BAD_USER_INPUT",
                    &format!("malformed GraphQL request body: {e}"),
                );
            }
        }
    } else {
        // JSON (or multipart with a preflighted header): a browser cannot send
        // either cross-site without a CORS preflight.
        return error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "send GraphQL requests as application/json (or multipart/form-data for uploads)",
        );
    };
    if let BatchRequest::Batch(rs) = &batch.0
        && rs.len() > 16
    {
        return error_body(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "at most 16 operations per batch",
        );
    }
    // One credential and one export mutation per HTTP request, however it
    // is batched.
    let stats: Vec<_> = batch
        .0
        .iter_mut()
        // A request that fails its bounds is refused with its own error below.
        .filter_map(|r| guard::check(r, &st.app.config.limits).ok())
        .collect();
    if let Some(e) = guard::one_each(&stats) {
        return error_body(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", &e.message);
    }
    let auth = Arc::new(batch.1);
    let base = public_base(headers, &st.app, peer);
    // One budget for the whole HTTP request, however it is batched.
    let budget = super::request::BudgetRef(super::request::ResponseBudget::new(
        st.app.config.limits.max_response_bytes,
    ));
    let prepare = |r: async_graphql::Request| {
        let r = r
            .data(AuthRef(auth.clone()))
            .data(base.clone())
            .data(budget.clone())
            .data(super::request::TextMemo::default())
            .data(super::layout::LayoutMemo::default());
        match client {
            Some(c) => r.data(c),
            None => r,
        }
    };
    let resp = match batch.0 {
        BatchRequest::Single(r) => BatchResponse::Single(st.schema.execute(prepare(r)).await),
        BatchRequest::Batch(rs) => {
            let mut out = Vec::with_capacity(rs.len());
            for r in rs {
                out.push(st.schema.execute(prepare(r)).await);
            }
            BatchResponse::Batch(out)
        }
    };
    let retry_after = rate_limited(&resp);
    // Serializing a large answer (thousands of review values) is CPU work:
    // a blocking thread, not the async worker other requests wait for.
    let body = tokio::task::spawn_blocking(move || serde_json::to_vec(&resp))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let mut response = match body {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "serializing a GraphQL response failed");
            error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            )
        }
    };
    if let Some(secs) = retry_after {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    response
}

/// A single response refused as RATE_LIMITED: the wait it asks for, so the
/// HTTP answer can be a 429 with Retry-After.
fn rate_limited(resp: &BatchResponse) -> Option<u64> {
    let BatchResponse::Single(r) = resp else {
        return None;
    };
    // Only when nothing else came through: a partial success stays a 200.
    if !matches!(&r.data, async_graphql::Value::Null)
        && !matches!(&r.data, async_graphql::Value::Object(m) if m.values().all(|v| matches!(v, async_graphql::Value::Null)))
    {
        return None;
    }
    r.errors.iter().find_map(|e| {
        let ext = e.extensions.as_ref()?;
        (ext.get("code")? == &async_graphql::Value::from("RATE_LIMITED")).then(|| {
            match ext.get("retryAfterSeconds") {
                Some(async_graphql::Value::Number(n)) => n.as_u64().unwrap_or(1),
                _ => 1,
            }
        })
    })
}

fn download_error(e: ServiceError) -> Response {
    let status = match e {
        ServiceError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if let ServiceError::Internal(inner) = &e {
        tracing::error!(error = ?inner, "download failed");
    }
    error_body(status, e.code(), &e.to_string())
}

/// The caller of a plain HTTP download, from its Bearer token.
async fn download_access(st: &GraphqlState, headers: &HeaderMap) -> Result<Access, ServiceError> {
    let auth_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match auth_header.map(bearer_token) {
        None => {
            return Err(ServiceError::Unauthenticated(
                "authentication required: send Authorization: Bearer <token>".into(),
            ));
        }
        Some(None) => {
            return Err(ServiceError::Unauthenticated(
                "Authorization must be `Bearer <token>`".into(),
            ));
        }
        Some(Some(t)) => authenticate(&st.app, t).await?,
    };
    Access::load(&st.app.db, principal).await
}

/// GET /exports/{id} and /exports/{id}/codebook.csv: an export, to a member
/// of its organization.
/// With `?expires=…&signature=…` (the payload's `downloadUrl`) it needs
/// no header.
pub async fn download_export(
    State(st): State<GraphqlState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    serve_export(st, id, q, headers, crate::export::Part::Body).await
}

/// GET /exports/{id}/codebook.csv.
pub async fn download_codebook(
    State(st): State<GraphqlState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    serve_export(st, id, q, headers, crate::export::Part::Codebook).await
}

/// GET /exports/{id}/analysis.R: the R script beside a METAFOR_CSV export
/// (the body's signed query works for it too).
pub async fn download_script(
    State(st): State<GraphqlState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    serve_export(st, id, q, headers, crate::export::Part::Script).await
}

async fn serve_export(
    st: GraphqlState,
    id: String,
    query: std::collections::HashMap<String, String>,
    headers: HeaderMap,
    part: crate::export::Part,
) -> Response {
    let opened = if let Some(signature) = query.get("signature") {
        let Some(expires) = query.get("expires").and_then(|v| v.parse::<i64>().ok()) else {
            return download_error(ServiceError::forbidden("this download link is not valid"));
        };
        crate::export::open_signed(&st.app, &id, part, expires, signature).await
    } else {
        match download_access(&st, &headers).await {
            Ok(access) => crate::export::open(&st.app, &access, &id, part).await,
            Err(e) => Err(e),
        }
    };
    match opened {
        Ok((bytes, ctype, name)) => (
            [
                (header::CONTENT_TYPE, ctype.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => download_error(e),
    }
}

/// GET /documents/{id}/pages/{page}.png?width=…&expires=…&signature=…:
/// a page image through a signed URL (no token; 403 when the signature is
/// wrong or expired). A page that would not render answers a placeholder.
pub async fn page_image(
    State(st): State<GraphqlState>,
    axum::extract::Path((id, file)): axum::extract::Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let forbidden = || download_error(ServiceError::forbidden("this page link is not valid"));
    let page = file
        .strip_suffix(".png")
        .and_then(|p| p.parse::<u32>().ok());
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(page), Some(width), Some(expires), Some(signature)) = (
        page,
        num("width").and_then(|w| u32::try_from(w).ok()),
        num("expires"),
        q.get("signature"),
    ) else {
        return forbidden();
    };
    let request = crate::documents::pages::PageRequest {
        document_id: id,
        page,
        width,
        expires,
        signature: signature.clone(),
    };
    match crate::documents::pages::image(&st.app, &request).await {
        Ok((png, placeholder)) => (
            [
                (header::CONTENT_TYPE, "image/png".to_owned()),
                // The URL dies in minutes; the browser may keep the image
                // as long (never a shared cache: it is an organization's).
                (
                    header::CACHE_CONTROL,
                    if placeholder {
                        "no-store".to_owned()
                    } else {
                        format!("private, max-age={}", crate::documents::pages::URL_TTL_SECS)
                    },
                ),
            ],
            png,
        )
            .into_response(),
        Err(e) => download_error(e),
    }
}

/// GET /documents/{id}/original: the uploaded PDF, to a caller who may read it.
pub async fn download_original(
    State(st): State<GraphqlState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let access = match download_access(&st, &headers).await {
        Ok(a) => a,
        Err(e) => return download_error(e),
    };
    let (doc, reader, len) = match documents::open_original(&st.app, &access, &id).await {
        Ok(x) => x,
        Err(e) => return download_error(e),
    };
    let stream = match reader.into_bytes_stream(..).await {
        Ok(s) => s,
        Err(e) => return download_error(ServiceError::Internal(e.into())),
    };
    let ascii: String = doc
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Request data carrying the shared auth of a (batch) request.
pub(crate) struct AuthRef(pub Arc<RequestAuth>);

/// GET /graphql: a WebSocket upgrade for subscriptions, else GraphiQL.
pub async fn graphql_get(State(st): State<GraphqlState>, req: Request<Body>) -> Response {
    let is_ws = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        return super::graphiql::response(host);
    }
    super::ws::upgrade(st, req).await
}
