//! A small blocking HTTP client over `wasi:http/outgoing-handler@0.2.12`.
//! The host decides every request (allow-list, address checks,
//! credentials); this only speaks the protocol.
//!
//! The `llm-adapter` world's `wasi:http` imports are mapped onto these
//! bindings (wit-bindgen's `with`; see [`bindings`]), so a component
//! carries one copy of the imports. On the native target [`send`] compiles
//! but panics when called (the imports are stubs there).

/// The `wasi:http`, `wasi:io` and `wasi:clocks` bindings this client uses.
pub mod bindings {
    wit_bindgen::generate!({
        inline: "
            package evistream:http-client;
            world client {
                import wasi:http/outgoing-handler@0.2.12;
            }
        ",
        path: "wit",
        world: "evistream:http-client/client",
        generate_all,
        // See `anchor`: wit-bindgen's helpers would pull this module's
        // component-type section into components that never send.
        disable_custom_section_link_helpers: true,
    });

    static ANCHOR: u8 = 0;

    /// Links this module's object file, and with it the component-type
    /// section that describes the `wasi:http` imports, into a component:
    /// called by [`send`](super::send) only, so a component that never
    /// sends a request (a converter or extractor built in a workspace that
    /// also builds adapters, where cargo turns every SDK feature on)
    /// carries neither the section nor the imports.
    #[doc(hidden)]
    #[inline(never)]
    pub fn anchor() {
        // A volatile read is never optimised away, so neither is the call.
        // SAFETY: reads a valid, initialised static.
        unsafe { core::ptr::read_volatile(&ANCHOR) };
    }
}

use bindings::wasi::http::types::Scheme;

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request failed before an HTTP status came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The URL is not `http(s)://host[:port]/path`.
    BadUrl(String),
    /// The host refused the request (allow-list, address, credentials).
    Denied(String),
    /// A header could not be set.
    Header(String),
    /// The network failed (DNS, connect, TLS, timeout, reset).
    Network(String),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadUrl(m) => write!(f, "bad URL: {m}"),
            Self::Denied(m) => write!(f, "request refused by the host: {m}"),
            Self::Header(m) => write!(f, "bad header: {m}"),
            Self::Network(m) => write!(f, "network error: {m}"),
        }
    }
}

/// Splits `url` into scheme, authority and path-with-query.
pub fn split_url(url: &str) -> Result<(Scheme, String, String), Error> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else {
        return Err(Error::BadUrl(format!(
            "{url} (http:// or https:// expected)"
        )));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(Error::BadUrl(format!("{url} (no host, or user info)")));
    }
    Ok((scheme, authority.to_owned(), path))
}

/// [`send`], alone in its module (so in an object file of its own when the
/// SDK is built with a codegen unit per module): nothing but a call to it
/// links [`bindings::anchor`]. No closure of it is handed to a generic
/// function, which could be instantiated in an object file shared with
/// other worlds' code.
mod request {
    use super::bindings::wasi::http::outgoing_handler;
    use super::bindings::wasi::http::types::{
        ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions,
    };
    use super::bindings::wasi::io::streams::StreamError;
    use super::{Error, Response, split_url};

    fn network(e: ErrorCode) -> Error {
        match e {
            ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => {
                Error::Denied(format!("{e:?}"))
            }
            other => Error::Network(format!("{other:?}")),
        }
    }

    fn set(ok: Result<(), ()>, what: &str) -> Result<(), Error> {
        ok.map_err(|()| Error::BadUrl(what.to_owned()))
    }

    fn unavailable(what: &str) -> Error {
        Error::Network(format!("{what} unavailable"))
    }

    /// Sends one request and reads the whole response (at most `max_body`
    /// bytes).
    pub fn send(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        max_body: usize,
    ) -> Result<Response, Error> {
        super::bindings::anchor();
        let (scheme, authority, path) = split_url(url)?;
        let fields = Fields::new();
        for (k, v) in headers {
            if let Err(e) = fields.append(k, v.as_bytes()) {
                return Err(Error::Header(format!("{k}: {e:?}")));
            }
        }
        let req = OutgoingRequest::new(fields);
        let method = match method {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            other => Method::Other(other.to_owned()),
        };
        set(req.set_method(&method), "method")?;
        set(req.set_scheme(Some(&scheme)), "scheme")?;
        set(req.set_authority(Some(&authority)), "authority")?;
        set(req.set_path_with_query(Some(&path)), "path")?;
        let Ok(out_body) = req.body() else {
            return Err(unavailable("request body"));
        };
        let options = RequestOptions::new();
        // The host bounds every request anyway; this asks for nothing more.
        let future = match outgoing_handler::handle(req, Some(options)) {
            Ok(f) => f,
            Err(e) => return Err(network(e)),
        };
        {
            // Write after `handle`: the host consumes the body as it streams.
            let Ok(stream) = out_body.write() else {
                return Err(unavailable("request body stream"));
            };
            for chunk in body.chunks(4096) {
                if let Err(e) = stream.blocking_write_and_flush(chunk) {
                    return Err(Error::Network(format!("writing the request body: {e:?}")));
                }
            }
        }
        if let Err(e) = OutgoingBody::finish(out_body, None) {
            return Err(network(e));
        }
        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(e))) => return Err(network(e)),
            Some(Err(())) | None => return Err(Error::Network("response lost".into())),
        };
        let status = response.status();
        let mut headers = Vec::new();
        for (k, v) in response.headers().entries() {
            headers.push((
                k.to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        let Ok(incoming) = response.consume() else {
            return Err(unavailable("response body"));
        };
        let Ok(stream) = incoming.stream() else {
            return Err(unavailable("response body stream"));
        };
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > max_body {
                        return Err(Error::Network(format!(
                            "response body larger than {max_body} bytes"
                        )));
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(Error::Network(format!(
                        "reading the response: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }
}

pub use request::send;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let (s, a, p) = split_url("https://api.openai.com/v1/chat/completions").unwrap();
        assert!(matches!(s, Scheme::Https));
        assert_eq!(
            (a.as_str(), p.as_str()),
            ("api.openai.com", "/v1/chat/completions")
        );
        let (s, a, p) = split_url("http://127.0.0.1:11434?x=1").unwrap();
        assert!(matches!(s, Scheme::Http));
        assert_eq!((a.as_str(), p.as_str()), ("127.0.0.1:11434", "/?x=1"));
        assert_eq!(split_url("http://h").unwrap().2, "/");
        assert!(split_url("ftp://h/").is_err());
        assert!(
            split_url("https://user@h/").is_err(),
            "user info is refused"
        );
        assert!(split_url("https:///path").is_err());
    }
}
