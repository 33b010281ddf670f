//! HTTP transport of the GraphQL API: POST (JSON), GET (GraphiQL or a
//! graphql-transport-ws WebSocket), all on `/graphql`.

use std::sync::Arc;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql::{BatchRequest, BatchResponse, Data};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Body;
use axum::extract::{FromRequestParts, State, WebSocketUpgrade};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::{ApiSchema, RequestAuth};
use crate::app::App;
use crate::auth::service::{authenticate, bearer_token};

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
    // JSON only: a browser cannot send it cross-site without a CORS preflight.
    if !ctype.starts_with("application/json")
        && !ctype.starts_with("application/graphql-response+json")
    {
        return error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "send GraphQL requests as application/json",
        );
    }
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
    let batch: BatchRequest = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => {
            return error_body(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("malformed GraphQL request body: {e}"),
            );
        }
    };
    let auth_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let auth = Arc::new(principal_from(&st.app, auth_header).await);
    let resp = match batch {
        BatchRequest::Single(r) => {
            BatchResponse::Single(st.schema.execute(r.data(AuthRef(auth.clone()))).await)
        }
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
                out.push(st.schema.execute(r.data(AuthRef(auth.clone()))).await);
            }
            BatchResponse::Batch(out)
        }
    };
    axum::Json(resp).into_response()
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
