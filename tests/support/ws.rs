//! A minimal graphql-transport-ws client for subscription tests.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One subscription over its own connection.
pub struct Subscription {
    socket: Socket,
}

impl Subscription {
    /// Connects, sends `connection_init` with the token, waits for the ack,
    /// then subscribes to `query` with `variables`.
    pub async fn start(
        url: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Self> {
        let mut req = url.into_client_request()?;
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
        let (mut socket, _) = tokio_tungstenite::connect_async(req).await?;
        let payload = match token {
            Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
            None => json!({}),
        };
        socket
            .send(Message::text(
                json!({ "type": "connection_init", "payload": payload }).to_string(),
            ))
            .await?;
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("closed before ack"))??;
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t)?;
                if v["type"] == "connection_ack" {
                    break;
                }
                anyhow::bail!("unexpected message before ack: {v}");
            }
        }
        socket
            .send(Message::text(
                json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } })
                    .to_string(),
            ))
            .await?;
        Ok(Self { socket })
    }

    /// The next message for the subscription: `Some(payload)` for `next`
    /// (the whole `{data, errors}` object), `None` on `complete`.
    pub async fn next(&mut self, timeout: Duration) -> anyhow::Result<Option<Value>> {
        loop {
            let msg = tokio::time::timeout(timeout, self.socket.next())
                .await
                .map_err(|_| anyhow::anyhow!("no subscription message within {timeout:?}"))?
                .ok_or_else(|| anyhow::anyhow!("socket closed"))??;
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t)?;
                    match v["type"].as_str() {
                        Some("next") => return Ok(Some(v["payload"].clone())),
                        Some("complete") => return Ok(None),
                        Some("error") => return Ok(Some(json!({ "errors": v["payload"] }))),
                        Some("ping") => {
                            self.socket
                                .send(Message::text(json!({ "type": "pong" }).to_string()))
                                .await?;
                        }
                        _ => {}
                    }
                }
                Message::Close(_) => anyhow::bail!("socket closed"),
                _ => {}
            }
        }
    }

    /// Collects every message until `complete`.
    pub async fn collect(&mut self, timeout: Duration) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        while let Some(v) = self.next(timeout).await? {
            out.push(v);
        }
        Ok(out)
    }
}
