//! The schema extension every operation passes through, on every transport:
//! the request bounds of [`super::limits`] before parsing and validation,
//! the caller of a WebSocket operation authorized as of now, a cap on the
//! operations one WebSocket runs at once, and a cap on response size.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest, NextSubscribe,
};
use async_graphql::{Request, Response, ServerError, ServerResult};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::limits::{self, QueryBounds};
use crate::app::App;
use crate::config::LimitsConfig;

/// The bounds of the configured limits.
pub fn bounds(l: &LimitsConfig) -> QueryBounds {
    QueryBounds {
        max_nesting: l.max_nesting,
        max_fragments: l.max_fragments,
        max_selections: l.max_selections,
        max_aliases: l.max_aliases,
    }
}

/// The address a request came from (the peer, or the first untrusted hop
/// of `X-Forwarded-For` behind a trusted proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Connection data of one WebSocket: its credential (re-checked for every
/// operation) and its running operations.
pub struct WsSession {
    /// The `Authorization` value sent in `connection_init`.
    pub authorization: Option<String>,
    /// Where the socket comes from.
    pub client: Option<ClientAddr>,
    /// Operations running now.
    pub active: Arc<AtomicUsize>,
}

/// A refusal with its own `extensions.code`.
pub fn coded_error(code: &str, message: impl Into<String>) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    e.extensions = Some(ext);
    e
}

/// Checks a request's text and document against the bounds, parsing it
/// (once: the parsed document is kept in the request). Returns the number
/// of credential mutations it would run.
pub fn check(request: &mut Request, l: &LimitsConfig) -> ServerResult<limits::QueryStats> {
    let b = bounds(l);
    let refuse = |e: limits::LimitError| coded_error("BAD_USER_INPUT", e.to_string());
    limits::check_text(&request.query, &b).map_err(refuse)?;
    check_upload_markers(request)?;
    let op = request.operation_name.clone();
    let doc = request.parsed_query()?;
    let stats = limits::check_document(doc, op.as_deref(), &b).map_err(refuse)?;
    if document_has_marker(doc) {
        return Err(upload_marker_error());
    }
    Ok(stats)
}

/// The marker async-graphql puts into variables for multipart files.
const UPLOAD_MARKER: &str = "#__graphql_file__:";

/// Only the multipart reader may fill an `Upload`: a marker typed by the
/// client (in the text, or naming a file that was not sent) would make
/// async-graphql index past its uploads or unwrap a bad number.
fn check_upload_markers(request: &Request) -> ServerResult<()> {
    fn ok(v: &async_graphql::Value, files: usize, depth: usize) -> bool {
        use async_graphql::Value;
        if depth > 256 {
            return false;
        }
        match v {
            Value::String(s) => match s.strip_prefix(UPLOAD_MARKER) {
                Some(n) => n.parse::<usize>().is_ok_and(|i| i < files),
                None => true,
            },
            Value::List(items) => items.iter().all(|i| ok(i, files, depth + 1)),
            Value::Object(m) => m.values().all(|i| ok(i, files, depth + 1)),
            _ => true,
        }
    }
    let files = request.uploads.len();
    if request.variables.iter().all(|(_, v)| ok(v, files, 0)) {
        return Ok(());
    }
    Err(upload_marker_error())
}

fn upload_marker_error() -> ServerError {
    coded_error(
        "BAD_USER_INPUT",
        "an Upload variable must be filled by a multipart file part",
    )
}

/// Whether a literal of the document (an argument, a directive argument, a
/// variable's default), after the parser resolved its escapes, spells an
/// upload marker: only the multipart reader sets them, through variables.
fn document_has_marker(doc: &async_graphql::parser::types::ExecutableDocument) -> bool {
    use async_graphql::parser::types::{Selection, SelectionSet};
    use async_graphql_value::{ConstValue, Value};
    fn value(v: &Value) -> bool {
        match v {
            Value::String(s) => s.starts_with(UPLOAD_MARKER),
            Value::List(items) => items.iter().any(value),
            Value::Object(m) => m.values().any(value),
            _ => false,
        }
    }
    fn constant(v: &ConstValue) -> bool {
        match v {
            ConstValue::String(s) => s.starts_with(UPLOAD_MARKER),
            ConstValue::List(items) => items.iter().any(constant),
            ConstValue::Object(m) => m.values().any(constant),
            _ => false,
        }
    }
    fn directives(
        d: &[async_graphql::Positioned<async_graphql::parser::types::Directive>],
    ) -> bool {
        d.iter()
            .any(|d| d.node.arguments.iter().any(|(_, v)| value(&v.node)))
    }
    // Nesting is bounded by the checks that ran before this walk.
    fn set(s: &SelectionSet) -> bool {
        s.items.iter().any(|i| match &i.node {
            Selection::Field(f) => {
                f.node.arguments.iter().any(|(_, v)| value(&v.node))
                    || directives(&f.node.directives)
                    || set(&f.node.selection_set.node)
            }
            Selection::FragmentSpread(f) => directives(&f.node.directives),
            Selection::InlineFragment(f) => {
                directives(&f.node.directives) || set(&f.node.selection_set.node)
            }
        })
    }
    doc.operations.iter().any(|(_, op)| {
        set(&op.node.selection_set.node)
            || directives(&op.node.directives)
            || op.node.variable_definitions.iter().any(|v| {
                v.node
                    .default_value
                    .as_ref()
                    .is_some_and(|d| constant(&d.node))
            })
    }) || doc
        .fragments
        .values()
        .any(|f| set(&f.node.selection_set.node) || directives(&f.node.directives))
}

/// The error for more than one credential mutation.
pub fn one_credential_error() -> ServerError {
    coded_error(
        "BAD_USER_INPUT",
        "at most one of login, register and refresh per request (and per batch)",
    )
}

/// The error for more than one export mutation.
pub fn one_export_error() -> ServerError {
    coded_error(
        "BAD_USER_INPUT",
        "at most one exportResults per request (and per batch)",
    )
}

/// The refusal of a request (or batch) whose operations together hold
/// more than one credential or export mutation.
pub fn one_each(stats: &[limits::QueryStats]) -> Option<ServerError> {
    let sum = |f: fn(&limits::QueryStats) -> u64| stats.iter().map(f).fold(0, u64::saturating_add);
    if sum(|s| s.credential_fields) > 1 {
        Some(one_credential_error())
    } else if sum(|s| s.export_fields) > 1 {
        Some(one_export_error())
    } else {
        None
    }
}

/// The schema extension.
pub struct Guard;

impl ExtensionFactory for Guard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Guard)
    }
}

struct Active(Arc<AtomicUsize>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts the bytes a value serializes to, giving up past `max`.
struct Counter {
    n: usize,
    max: usize,
}

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.n += buf.len();
        if self.n > self.max {
            return Err(std::io::Error::other("over"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The response, or an error in its place when it serializes to more than `max` bytes.
fn capped(r: Response, max: usize) -> Response {
    let mut c = Counter { n: 0, max };
    if serde_json::to_writer(&mut c, &r).is_ok() {
        return r;
    }
    Response::from_errors(vec![coded_error(
        "RESPONSE_TOO_LARGE",
        format!(
            "the response would be larger than {max} bytes; ask for less (fewer fields, smaller pages)"
        ),
    )])
}

fn app<'a>(ctx: &ExtensionContext<'a>) -> &'a App {
    // The schema is always built with `App` data (see `api::schema`).
    ctx.data_unchecked::<Arc<App>>()
}

#[async_trait::async_trait]
impl Extension for Guard {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let max = app(ctx).config.limits.max_response_bytes;
        let r = next.run(ctx).await;
        // Measuring a large answer is CPU work: not on the async worker.
        match tokio::task::spawn_blocking(move || capped(r, max)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "measuring a response failed");
                Response::from_errors(vec![coded_error("INTERNAL", "internal error")])
            }
        }
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let limits = &app(ctx).config.limits;
        let max_bytes = limits.max_response_bytes;
        let Some(ws) = ctx.data_opt::<WsSession>() else {
            return next
                .run(ctx, stream)
                .map(move |r| capped(r, max_bytes))
                .boxed();
        };
        let max_ops = limits.ws_max_operations;
        if ws.active.fetch_add(1, Ordering::AcqRel) >= max_ops {
            ws.active.fetch_sub(1, Ordering::AcqRel);
            return futures::stream::once(async move {
                Response::from_errors(vec![coded_error(
                    "BAD_USER_INPUT",
                    format!("at most {max_ops} operations run at once on one WebSocket"),
                )])
            })
            .boxed();
        }
        let active = Active(ws.active.clone());
        next.run(ctx, stream)
            .map(move |r| {
                let _held = &active;
                capped(r, max_bytes)
            })
            .boxed()
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let app = app(ctx);
        if let Some(e) = one_each(&[check(&mut request, &app.config.limits)?]) {
            return Err(e);
        }
        // A WebSocket operation acts as the credential is now: revoked keys,
        // changed roles and expired tokens count from this operation on.
        if let Some(ws) = ctx.data_opt::<WsSession>() {
            let auth = super::http::principal_from(app, ws.authorization.as_deref()).await;
            request.data.insert(super::http::AuthRef(Arc::new(auth)));
            if let Some(c) = ws.client {
                request.data.insert(c);
            }
        }
        next.run(ctx, request).await
    }
}
