//! GraphQL over WebSocket (graphql-transport-ws), bounded and re-authorized:
//!
//! - messages and frames are capped at `limits.max_body_bytes`;
//! - a client that does not send `connection_init` within
//!   `limits.ws_init_timeout_secs` is closed (4408);
//! - the credential of `connection_init` is kept, not its verdict: every
//!   operation is authorized as of its start (see [`super::guard`]), and a
//!   watcher closes the socket (4403) once the credential is revoked, its
//!   user deleted or its access token expired;
//! - at most `limits.ws_max_operations` operations run at once;
//! - a ping frame goes out every `limits.ws_keepalive_secs`.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{FromRequestParts, WebSocketUpgrade};
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};

use super::guard::{ClientAddr, WsSession};
use super::http::{GraphqlState, client_addr, peer};
use crate::app::App;
use crate::auth::secrets::API_KEY_PREFIX;
use crate::auth::service::{authenticate, bearer_token};
use crate::error::ServiceError;

/// Upgrades GET /graphql to a WebSocket.
pub async fn upgrade(st: GraphqlState, req: Request<Body>) -> Response {
    let client = client_addr(&st.app, req.headers(), peer(req.extensions()));
    let (mut parts, _) = req.into_parts();
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let max = st.app.config.limits.max_body_bytes;
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            let sockets = st.app.sockets.clone();
            sockets.track_future(serve(st, socket, protocol, client))
        })
}

/// Why the server closes a socket: (close code, reason).
type Verdict = (u16, &'static str);

async fn serve(
    st: GraphqlState,
    socket: WebSocket,
    protocol: GraphQLProtocol,
    client: Option<ClientAddr>,
) {
    let (mut sink, incoming) = socket.split();
    // Outgoing messages go through a channel, so the watcher can still send
    // a close frame after the GraphQL side is dropped.
    let (out, mut queued) = futures::channel::mpsc::channel::<Message>(16);
    // Ping frames keep a quiet subscription alive through proxies with an
    // idle timeout (every client answers them with a pong by RFC 6455).
    let keepalive = st.app.config.limits.ws_keepalive_secs;
    let writer = tokio::spawn(async move {
        let mut ping = (keepalive > 0).then(|| {
            let every = Duration::from_secs(keepalive);
            tokio::time::interval_at(tokio::time::Instant::now() + every, every)
        });
        loop {
            let next = tokio::select! {
                m = queued.next() => m,
                _ = async {
                    match ping.as_mut() {
                        Some(p) => p.tick().await,
                        None => std::future::pending().await,
                    }
                } => Some(Message::Ping(axum::body::Bytes::from_static(b"ka"))),
            };
            let Some(m) = next else { break };
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let (inited, init) = tokio::sync::oneshot::channel::<Option<String>>();
    let graphql =
        GraphQLWebSocket::new_with_pair(out.clone(), incoming, st.schema.clone(), protocol)
            .on_connection_init(move |payload| async move {
                // The token arrives in connection_init, as browsers cannot set
                // headers on a WebSocket.
                let authorization = payload
                    .get("Authorization")
                    .or_else(|| payload.get("authorization"))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                let _ = inited.send(authorization.clone());
                let mut data = Data::default();
                data.insert(WsSession {
                    authorization,
                    client,
                    active: Default::default(),
                });
                Ok(data)
            })
            .serve();
    let verdict = tokio::select! {
        () = graphql => None,
        v = watch(st.app.clone(), init) => Some(v),
        () = st.app.shutdown.cancelled() => Some((1001, "server shutting down")),
    };
    let mut out = out;
    if let Some((code, reason)) = verdict {
        tracing::debug!(code, reason, "closing WebSocket");
        let _ = out
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
    drop(out);
    let _ = writer.await;
}

/// Resolves when the socket must close: no `connection_init` in time, or a
/// credential that stopped being valid. Never resolves for an anonymous
/// socket (it can only run what needs no credential).
async fn watch(app: Arc<App>, init: tokio::sync::oneshot::Receiver<Option<String>>) -> Verdict {
    let limits = &app.config.limits;
    let authorization = match tokio::time::timeout(
        Duration::from_secs(limits.ws_init_timeout_secs.max(1)),
        init,
    )
    .await
    {
        Ok(Ok(a)) => a,
        // The GraphQL side ended first; its branch of the select wins.
        Ok(Err(_)) => std::future::pending().await,
        Err(_) => return (4408, "Connection initialisation timeout"),
    };
    let Some(token) = authorization
        .as_deref()
        .and_then(bearer_token)
        .map(str::to_owned)
    else {
        return std::future::pending().await;
    };
    let recheck = Duration::from_secs(limits.ws_recheck_secs.max(1));
    loop {
        // Only a verdict on the credential closes the socket; a database
        // hiccup is tried again at the next check.
        if let Err(ServiceError::Unauthenticated(_)) = authenticate(&app, &token).await {
            return (4403, "Forbidden: the credential is no longer valid");
        }
        // An access token is also checked right after it expires.
        let wait = if token.starts_with(API_KEY_PREFIX) {
            recheck
        } else {
            app.tokens
                .expires_in(&token)
                .map_or(recheck, |left| recheck.min(left))
        };
        tokio::time::sleep(wait).await;
    }
}
