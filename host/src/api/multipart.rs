//! GraphQL multipart requests (uploads): `operations` and `map` parts held
//! to `limits.max_body_bytes` like a JSON body, one file part held to
//! `limits.max_upload_bytes` and spooled to a temporary file, every piece of
//! the body within `limits.body_idle_timeout_secs` of the last.
//!
//! The caller authenticates before calling this: nothing is spooled for an
//! anonymous client.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::{BatchRequest, UploadValue};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::http::error_body;
use crate::app::App;

/// How much of an oversized upload is read before the 413, and for how long.
const DRAIN_MAX: u64 = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Why the body stream stopped early.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("request body too large")]
    TooLarge,
    #[error("the request body stalled")]
    Stalled,
    #[error("{0}")]
    Read(String),
}

fn too_large(what: &str, limit: u64) -> Response {
    error_body(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        &format!("{what} is larger than the limit of {limit} bytes"),
    )
}

fn bad(msg: impl std::fmt::Display) -> Response {
    error_body(
        StatusCode::BAD_REQUEST,
        "BAD_USER_INPUT",
        &format!("malformed multipart request: {msg}"),
    )
}

/// The refusal of a multipart request without a header that forces a CORS
/// preflight (multipart is a "simple" content type a browser may send
/// cross-site).
pub fn not_preflighted(headers: &HeaderMap) -> Option<Response> {
    let preflighted = headers.contains_key(header::AUTHORIZATION)
        || headers.contains_key("apollo-require-preflight")
        || headers.contains_key("x-evistream-csrf");
    (!preflighted)
        .then(|| bad("multipart requests need an Authorization or apollo-require-preflight header"))
}

/// Reads a multipart GraphQL request within the limits (after
/// [`not_preflighted`] and authentication).
pub async fn read(
    app: &App,
    headers: &HeaderMap,
    ctype: &str,
    body: Body,
) -> Result<BatchRequest, Response> {
    let limits = &app.config.limits;
    let max_file = limits.max_upload_bytes;
    let max_part = limits.max_body_bytes as u64;
    // The file plus the operations and map parts.
    let max_body = max_file.saturating_add(max_part.saturating_mul(2));
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
        return Err(too_large("the upload", max_file));
    }
    let boundary = multer::parse_boundary(ctype).map_err(bad)?;
    let idle = Duration::from_secs(limits.body_idle_timeout_secs.max(1));
    let mut chunks = body.into_data_stream();
    let stream = async_stream::stream! {
        let mut seen: u64 = 0;
        loop {
            match tokio::time::timeout(idle, chunks.next()).await {
                Ok(Some(Ok(b))) => {
                    seen += b.len() as u64;
                    if seen > max_body {
                        yield Err(BodyError::TooLarge);
                        break;
                    }
                    yield Ok(b);
                }
                Ok(Some(Err(e))) => {
                    yield Err(BodyError::Read(e.to_string()));
                    break;
                }
                Ok(None) => break,
                Err(_) => {
                    yield Err(BodyError::Stalled);
                    break;
                }
            }
        }
    };
    let mut multipart = multer::Multipart::new(stream, boundary);
    let stopped = |e: multer::Error| -> Response {
        match &e {
            multer::Error::StreamReadFailed(inner) => match inner.downcast_ref::<BodyError>() {
                Some(BodyError::TooLarge) => too_large("the upload", max_file),
                Some(BodyError::Stalled) => error_body(
                    StatusCode::REQUEST_TIMEOUT,
                    "BAD_USER_INPUT",
                    "the request body stalled",
                ),
                _ => bad(&e),
            },
            _ => bad(&e),
        }
    };
    let mut operations: Option<BatchRequest> = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut files: Vec<(String, UploadValue)> = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(stopped)? {
        let name = field.name().unwrap_or_default().to_owned();
        let Some(filename) = field.file_name().map(str::to_owned) else {
            // A non-file part: bounded like a JSON body.
            let mut buf = Vec::new();
            while let Some(c) = field.chunk().await.map_err(stopped)? {
                if (buf.len() + c.len()) as u64 > max_part {
                    return Err(too_large(&format!("the `{name}` part"), max_part));
                }
                buf.extend_from_slice(&c);
            }
            match name.as_str() {
                "operations" => {
                    operations = Some(serde_json::from_slice(&buf).map_err(|e| {
                        bad(format_args!("`operations` is not a GraphQL request: {e}"))
                    })?)
                }
                "map" => {
                    map = Some(
                        serde_json::from_slice(&buf)
                            .map_err(|e| bad(format_args!("`map` is not a JSON map: {e}")))?,
                    )
                }
                _ => {}
            }
            continue;
        };
        if !files.is_empty() {
            return Err(bad("at most one file per request"));
        }
        // The spec orders operations and map first: a file before them
        // would be spooled for a request that may not even parse.
        if operations.is_none() || map.is_none() {
            return Err(bad(
                "the operations and map parts must come before the file",
            ));
        }
        let content_type = field.content_type().map(ToString::to_string);
        let spool = tempfile::tempfile().map_err(|e| bad(format_args!("no spool file: {e}")))?;
        let mut out = tokio::fs::File::from_std(spool);
        let mut written: u64 = 0;
        while let Some(c) = field.chunk().await.map_err(stopped)? {
            written += c.len() as u64;
            if written > max_file {
                // Read the rest of a moderately oversized file (within the
                // body cap) so an ordinary client sees the 413, not a reset.
                let _ = tokio::time::timeout(DRAIN_TIME, async {
                    while let Ok(Some(_)) = field.chunk().await {}
                    while let Ok(Some(mut rest)) = multipart.next_field().await {
                        while let Ok(Some(_)) = rest.chunk().await {}
                    }
                })
                .await;
                return Err(too_large("the upload", max_file));
            }
            out.write_all(&c)
                .await
                .map_err(|e| bad(format_args!("spooling the upload failed: {e}")))?;
        }
        out.flush()
            .await
            .map_err(|e| bad(format_args!("spooling the upload failed: {e}")))?;
        let mut content = out.into_std().await;
        std::io::Seek::rewind(&mut content)
            .map_err(|e| bad(format_args!("spooling the upload failed: {e}")))?;
        files.push((
            name,
            UploadValue {
                filename,
                content_type,
                content,
            },
        ));
    }
    let mut request = operations.ok_or_else(|| bad("the `operations` part is missing"))?;
    let mut map = map.ok_or_else(|| bad("the `map` part is missing"))?;
    for (name, upload) in files {
        let Some(paths) = map.remove(&name) else {
            continue;
        };
        for path in paths {
            let copy = upload
                .try_clone()
                .map_err(|e| bad(format_args!("upload unreadable: {e}")))?;
            match &mut request {
                BatchRequest::Single(r) => r.set_upload(&path, copy),
                BatchRequest::Batch(rs) => {
                    let (idx, rest) = path.split_once('.').unwrap_or((&path, ""));
                    if let Some(r) = idx.parse::<usize>().ok().and_then(|i| rs.get_mut(i)) {
                        r.set_upload(rest, copy);
                    }
                }
            }
        }
    }
    if !map.is_empty() {
        return Err(bad("`map` names files that were not sent"));
    }
    Ok(request)
}
