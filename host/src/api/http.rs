//! HTTP transport of the GraphQL API: POST (JSON), GET (GraphiQL or a
//! graphql-transport-ws WebSocket), all on `/graphql`.

use std::sync::Arc;

use async_graphql::http::MultipartOptions;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql::{BatchRequest, BatchResponse, Data, ParseRequestError};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Body;
use axum::extract::{FromRequestParts, State, WebSocketUpgrade};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};

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

async fn principal_from(app: &App, auth_header: Option<&str>) -> RequestAuth {
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

fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    (status, axum::Json(body)).into_response()
}

/// The server's own base URL as the client reached it, for URLs the API
/// returns (exports): `X-Forwarded-Proto` / `X-Forwarded-Host` from a proxy,
/// else the Host header, else the listen address.
#[derive(Debug, Clone)]
pub struct PublicBase(pub String);

fn public_base(headers: &HeaderMap, st: &GraphqlState) -> PublicBase {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(',').next().unwrap_or("").trim().to_owned())
            .filter(|s| !s.is_empty() && !s.contains(['/', ' ', '"']))
    };
    let proto = h("x-forwarded-proto")
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| "http".into());
    let host = h("x-forwarded-host")
        .or_else(|| h("host"))
        .unwrap_or_else(|| st.app.config.listen.to_string());
    PublicBase(format!("{proto}://{host}"))
}

/// POST /graphql.
pub async fn graphql_post(
    State(st): State<GraphqlState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let batch = if ctype.starts_with("multipart/form-data") {
        match read_multipart(&st, &headers, ctype, body).await {
            Ok(b) => b,
            Err(resp) => return resp,
        }
    } else if ctype.starts_with("application/json")
        || ctype.starts_with("application/graphql-response+json")
    {
        let limit = st.app.config.limits.max_body_bytes;
        let bytes = match axum::body::to_bytes(body, limit).await {
            Ok(b) => b,
            Err(_) => {
                return error_body(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    &format!("request body is larger than {limit} bytes"),
                );
            }
        };
        match serde_json::from_slice::<BatchRequest>(&bytes) {
            Ok(b) => b,
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
    let auth_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let auth = Arc::new(principal_from(&st.app, auth_header).await);
    let base = public_base(&headers, &st);
    let resp = match batch {
        BatchRequest::Single(r) => BatchResponse::Single(
            st.schema
                .execute(r.data(AuthRef(auth.clone())).data(base.clone()))
                .await,
        ),
        BatchRequest::Batch(rs) => {
            if rs.len() > 16 {
                return error_body(
                    StatusCode::BAD_REQUEST,
                    "BAD_USER_INPUT",
                    "at most 16 operations per batch",
                );
            }
            let mut out = Vec::with_capacity(rs.len());
            for r in rs {
                out.push(
                    st.schema
                        .execute(r.data(AuthRef(auth.clone())).data(base.clone()))
                        .await,
                );
            }
            BatchResponse::Batch(out)
        }
    };
    axum::Json(resp).into_response()
}

/// How much of an oversized upload is read before the 413, and for how long.
const DRAIN_MAX: u64 = 64 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Marks the upload body as over its limit inside the byte stream.
#[derive(Debug)]
struct BodyTooLarge;

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body too large")
    }
}

impl std::error::Error for BodyTooLarge {}

/// Reads a GraphQL multipart request (uploads go to temp files, not memory)
/// within the upload limits. Multipart is a "simple" content type a browser
/// may send cross-site, so a header that forces a CORS preflight is required.
async fn read_multipart(
    st: &GraphqlState,
    headers: &HeaderMap,
    ctype: &str,
    body: Body,
) -> Result<BatchRequest, Response> {
    let preflighted = headers.contains_key(header::AUTHORIZATION)
        || headers.contains_key("apollo-require-preflight")
        || headers.contains_key("x-evistream-csrf");
    if !preflighted {
        return Err(error_body(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "multipart requests need an Authorization or apollo-require-preflight header",
        ));
    }
    let max_file = st.app.config.limits.max_upload_bytes;
    // The file plus the operations and map parts.
    let max_body = max_file.saturating_add(st.app.config.limits.max_body_bytes as u64);
    let too_large = || {
        error_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!("the upload is larger than the limit of {max_file} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > max_body) {
        // Read (and discard) a moderately oversized body before answering, so
        // an ordinary client sees the 413 instead of a broken pipe; a huge or
        // slow one is cut off.
        if len <= max_body.saturating_add(DRAIN_MAX) {
            let mut rest = body.into_data_stream();
            let _ = tokio::time::timeout(DRAIN_TIME, async {
                while let Some(Ok(_)) = rest.next().await {}
            })
            .await;
        }
        return Err(too_large());
    }
    let mut seen: u64 = 0;
    let stream = body.into_data_stream().map(move |chunk| {
        let b = chunk.map_err(std::io::Error::other)?;
        seen += b.len() as u64;
        if seen > max_body {
            return Err(std::io::Error::other(BodyTooLarge));
        }
        Ok(b)
    });
    let opts = MultipartOptions::default()
        .max_file_size(usize::try_from(max_file).unwrap_or(usize::MAX))
        .max_num_files(1);
    match async_graphql::http::receive_batch_body(Some(ctype), stream.into_async_read(), opts).await
    {
        Ok(b) => Ok(b),
        Err(ParseRequestError::PayloadTooLarge) => Err(too_large()),
        Err(ParseRequestError::Io(e))
            if e.get_ref().is_some_and(|inner| inner.is::<BodyTooLarge>()) =>
        {
            Err(too_large())
        }
        Err(e) => Err(error_body(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            &format!("malformed multipart request: {e}"),
        )),
    }
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
pub async fn download_export(
    State(st): State<GraphqlState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    serve_export(st, id, headers, false).await
}

/// GET /exports/{id}/codebook.csv.
pub async fn download_codebook(
    State(st): State<GraphqlState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    serve_export(st, id, headers, true).await
}

async fn serve_export(
    st: GraphqlState,
    id: String,
    headers: HeaderMap,
    codebook: bool,
) -> Response {
    let access = match download_access(&st, &headers).await {
        Ok(a) => a,
        Err(e) => return download_error(e),
    };
    match crate::export::open(&st.app, &access, &id, codebook).await {
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
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql")
                .finish(),
        )
        .into_response();
    }
    let (mut parts, _) = req.into_parts();
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let app = st.app.clone();
    let schema = st.schema.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    // The token arrives in connection_init, as browsers cannot
                    // set headers on a WebSocket.
                    let header = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(|v| v.as_str())
                        .map(str::to_owned);
                    let auth = principal_from(&app, header.as_deref()).await;
                    let mut data = Data::default();
                    data.insert(AuthRef(Arc::new(auth)));
                    Ok(data)
                })
                .serve()
                .await;
        })
}
