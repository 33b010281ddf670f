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

/// A graphql-transport-ws connection that runs any operation (queries and
/// mutations too) and reports how the server closed it.
pub struct WsConn {
    socket: Socket,
    next_id: u64,
}

impl WsConn {
    /// Connects and sends nothing (for tests of the handshake itself).
    pub async fn connect_raw(url: &str) -> anyhow::Result<Self> {
        let mut req = url.into_client_request()?;
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
        let (socket, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(Self { socket, next_id: 0 })
    }

    /// Connects and completes `connection_init` with `token`.
    pub async fn connect(url: &str, token: Option<&str>) -> anyhow::Result<Self> {
        let mut c = Self::connect_raw(url).await?;
        let payload = match token {
            Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
            None => json!({}),
        };
        c.send_json(json!({ "type": "connection_init", "payload": payload }))
            .await?;
        loop {
            match c.recv(Duration::from_secs(10)).await? {
                Some(v) if v["type"] == "connection_ack" => return Ok(c),
                Some(v) if v["type"] == "ping" => {}
                Some(v) => anyhow::bail!("unexpected message before ack: {v}"),
                None => anyhow::bail!("closed before ack"),
            }
        }
    }

    /// Sends one JSON message.
    pub async fn send_json(&mut self, v: Value) -> anyhow::Result<()> {
        self.socket.send(Message::text(v.to_string())).await?;
        Ok(())
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, t: String) -> anyhow::Result<()> {
        self.socket.send(Message::text(t)).await?;
        Ok(())
    }

    /// The next JSON message, `None` once the server closed.
    async fn recv(&mut self, timeout: Duration) -> anyhow::Result<Option<Value>> {
        loop {
            let msg = tokio::time::timeout(timeout, self.socket.next())
                .await
                .map_err(|_| anyhow::anyhow!("no message within {timeout:?}"))?;
            match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(Message::Text(t))) => return Ok(Some(serde_json::from_str(&t)?)),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Starts an operation; returns its id.
    pub async fn start(&mut self, query: &str, variables: Value) -> anyhow::Result<String> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.send_json(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }))
            .await?;
        Ok(id)
    }

    /// The next payload of operation `id` (`{data, errors}`), skipping
    /// other operations' messages; `None` on its `complete`.
    pub async fn next_of(&mut self, id: &str, timeout: Duration) -> anyhow::Result<Option<Value>> {
        loop {
            let v = self
                .recv(timeout)
                .await?
                .ok_or_else(|| anyhow::anyhow!("socket closed"))?;
            if v["type"] == "ping" {
                self.send_json(json!({ "type": "pong" })).await?;
                continue;
            }
            if v["id"] != id {
                continue;
            }
            match v["type"].as_str() {
                Some("next") => return Ok(Some(v["payload"].clone())),
                Some("error") => return Ok(Some(json!({ "errors": v["payload"] }))),
                Some("complete") => return Ok(None),
                _ => {}
            }
        }
    }

    /// Runs a query or mutation and returns its single payload.
    pub async fn run(&mut self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let id = self.start(query, variables).await?;
        let payload = self
            .next_of(&id, Duration::from_secs(10))
            .await?
            .ok_or_else(|| anyhow::anyhow!("completed without a payload"))?;
        Ok(payload)
    }

    /// Waits for a WebSocket ping frame from the server (true), skipping
    /// other messages; false when the socket closes first.
    pub async fn pinged(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = tokio::time::timeout(left, self.socket.next())
                .await
                .map_err(|_| anyhow::anyhow!("no ping within {timeout:?}"))?;
            match msg {
                Some(Ok(Message::Ping(_))) => return Ok(true),
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(false),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Waits until the server closes the socket; returns its close code.
    pub async fn closed(&mut self, timeout: Duration) -> anyhow::Result<Option<u16>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let msg = tokio::time::timeout(left, self.socket.next())
                .await
                .map_err(|_| anyhow::anyhow!("still open after {timeout:?}"))?;
            match msg {
                Some(Ok(Message::Close(frame))) => return Ok(frame.map(|f| u16::from(f.code))),
                None | Some(Err(_)) => return Ok(None),
                Some(Ok(Message::Text(t))) => {
                    if serde_json::from_str::<Value>(&t).is_ok_and(|v| v["type"] == "ping") {
                        let _ = self.send_json(json!({ "type": "pong" })).await;
                    }
                }
                Some(Ok(_)) => {}
            }
        }
    }
}
