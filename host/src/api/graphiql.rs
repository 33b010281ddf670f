//! The GraphiQL page of GET /graphql: our own template instead of
//! async-graphql's `GraphiQLSource` (which loads floating versions from a
//! CDN with no Subresource Integrity and sends no Content-Security-Policy).
//!
//! Every `<script>` and `<link>` loads one exact file from one CDN origin
//! with a SHA-384 `integrity`; the CSP allows exactly those files, plus our
//! one inline script and one inline style by their SHA-256 (the tests
//! recompute both, so editing either without its hash fails). Nothing else
//! inline is allowed: GraphiQL 4.1.2 itself inserts a `<style>` element when
//! a dialog locks scrolling (react-remove-scroll-bar) and `style="…"`
//! attributes in CodeMirror's jump-to-line prompt. The CSP blocks both (the
//! browser logs a violation); the first is redundant with our `body
//! { overflow: hidden }`, the second is cosmetic (input width, hint colour).
//!
//! To bump a version: `npm pack <pkg>@<version>`, check the tarball against
//! `npm view <pkg>@<version> dist.integrity`, extract it and take
//! `openssl dgst -sha384 -binary package/<file> | openssl base64 -A`. The CDN
//! serves the tarball's files byte for byte.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

/// One pinned file on the CDN.
struct Asset {
    url: &'static str,
    /// Subresource Integrity of the file, `sha384-…`.
    integrity: &'static str,
}

const REACT: Asset = Asset {
    url: "https://cdn.jsdelivr.net/npm/react@18.3.1/umd/react.production.min.js",
    integrity: "sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z",
};

const REACT_DOM: Asset = Asset {
    url: "https://cdn.jsdelivr.net/npm/react-dom@18.3.1/umd/react-dom.production.min.js",
    integrity: "sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1",
};

const GRAPHIQL_JS: Asset = Asset {
    url: "https://cdn.jsdelivr.net/npm/graphiql@4.1.2/graphiql.min.js",
    integrity: "sha384-9XdHu7ajgGJziD4J1zNBKQ842Q/+zZfDv+ib1eMhZWBH6hPAs806x+Jbcf0yNO6B",
};

const GRAPHIQL_CSS: Asset = Asset {
    url: "https://cdn.jsdelivr.net/npm/graphiql@4.1.2/graphiql.min.css",
    integrity: "sha384-1el1QShFBnnXTx9x/Cprg82hZWKt0ry29OAYIXt05swbi0KcZDFoj0CWguMpopJr",
};

/// Scripts in load order.
const SCRIPTS: [Asset; 3] = [REACT, REACT_DOM, GRAPHIQL_JS];

/// The inline style: the exact bytes between `<style>` and `</style>`.
const STYLE: &str = "
body { height: 100%; margin: 0; width: 100%; overflow: hidden; }
#graphiql { height: 100vh; }
";

/// CSP source of [`STYLE`]: `'sha256-'` + base64 of its SHA-256.
const STYLE_HASH: &str = "'sha256-/SC1jCCYyj4PIEI/w1t90LCqsdRbCWKkTeRL1eEhzgA='";

/// The inline script: the exact bytes between `<script>` and `</script>`.
/// Subscriptions go to ws(s):// of the page's own origin.
const INIT_SCRIPT: &str = "
{
  const url = (path, ws) => {
    const u = new URL(path, window.location.origin);
    if (ws) u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.toString();
  };
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({
        url: url('/graphql'),
        subscriptionUrl: url('/graphql', true),
      }),
      defaultEditorToolsVisibility: true,
    }),
  );
}
";

/// CSP source of [`INIT_SCRIPT`]: `'sha256-'` + base64 of its SHA-256.
const INIT_SCRIPT_HASH: &str = "'sha256-JxqzyKbII24V33/UqhDoJDEgPU7HyPZS8urUZr12jS0='";

/// The page's HTML.
pub fn page() -> &'static str {
    static PAGE: LazyLock<String> = LazyLock::new(|| {
        let tag = |a: &Asset| {
            format!(
                "    <script src=\"{}\" integrity=\"{}\" crossorigin=\"anonymous\"></script>\n",
                a.url, a.integrity
            )
        };
        let scripts: String = SCRIPTS.iter().map(tag).collect();
        format!(
            "<!DOCTYPE html>
<html lang=\"en\">
  <head>
    <meta charset=\"utf-8\">
    <meta name=\"robots\" content=\"noindex\">
    <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
    <title>GraphiQL IDE</title>
    <style>{STYLE}</style>
    <link rel=\"stylesheet\" href=\"{css}\" integrity=\"{css_sri}\" crossorigin=\"anonymous\">
  </head>
  <body>
    <div id=\"graphiql\">Loading...</div>
{scripts}    <script>{INIT_SCRIPT}</script>
  </body>
</html>
",
            css = GRAPHIQL_CSS.url,
            css_sri = GRAPHIQL_CSS.integrity,
        )
    });
    &PAGE
}

/// The Content-Security-Policy of [`page`]. `host` is the request's `Host`:
/// when it is a plain `name[:port]`, ws:// and wss:// of it are allowed
/// explicitly, as `'self'` covers WebSockets only in browsers that follow
/// CSP 3; otherwise (absent, IPv6, or anything odd) only `'self'`.
pub fn content_security_policy(host: Option<&str>) -> String {
    let scripts: Vec<&str> = SCRIPTS.iter().map(|a| a.url).collect();
    let ws = match host.filter(|h| is_plain_host(h)) {
        Some(h) => format!(" ws://{h} wss://{h}"),
        None => String::new(),
    };
    format!(
        "default-src 'none'; script-src {} {INIT_SCRIPT_HASH}; style-src {} {STYLE_HASH}; \
         font-src data:; img-src 'self' data:; connect-src 'self'{ws}; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        scripts.join(" "),
        GRAPHIQL_CSS.url,
    )
}

/// `name[:port]` with DNS labels of letters, digits and `-` only, so it can
/// go into the CSP as it is.
fn is_plain_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let label = |l: &str| {
        (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    name.len() <= 253
        && name.split('.').all(label)
        && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The page with its security headers.
pub fn response(host: Option<&str>) -> Response {
    (
        [
            (
                header::CONTENT_SECURITY_POLICY,
                content_security_policy(host),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
        Html(page()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use sha2::{Digest, Sha256};

    use super::*;

    fn csp_hash(inline: &str) -> String {
        format!(
            "'sha256-{}'",
            STANDARD.encode(Sha256::digest(inline.as_bytes()))
        )
    }

    /// The directive `name` of `csp`, without its name.
    fn directive<'a>(csp: &'a str, name: &str) -> &'a str {
        csp.split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {name} in {csp}"))
    }

    #[test]
    fn graphiql_inline_script_hash_is_in_the_csp() {
        assert_eq!(
            csp_hash(INIT_SCRIPT),
            INIT_SCRIPT_HASH,
            "update INIT_SCRIPT_HASH"
        );
        let csp = content_security_policy(None);
        let scripts = directive(&csp, "script-src");
        assert!(
            scripts.split(' ').any(|s| s == csp_hash(INIT_SCRIPT)),
            "{scripts}"
        );
        // The hashed bytes are the served bytes.
        assert!(page().contains(&format!("<script>{INIT_SCRIPT}</script>")));
    }

    #[test]
    fn graphiql_inline_style_hash_is_in_the_csp() {
        assert_eq!(csp_hash(STYLE), STYLE_HASH, "update STYLE_HASH");
        let csp = content_security_policy(None);
        let styles = directive(&csp, "style-src");
        assert!(styles.split(' ').any(|s| s == csp_hash(STYLE)), "{styles}");
        assert!(page().contains(&format!("<style>{STYLE}</style>")));
    }

    #[test]
    fn graphiql_every_external_resource_is_pinned_and_allowed() {
        let html = page();
        let csp = content_security_policy(None);
        let mut external = 0;
        for tag in html.split('<').skip(1) {
            let tag = &tag[..tag.find('>').expect("closed tag")];
            let Some(url) = tag
                .split_once(" src=\"")
                .or_else(|| tag.split_once(" href=\""))
                .map(|(_, rest)| &rest[..rest.find('"').unwrap()])
            else {
                assert!(!tag.starts_with("link"), "{tag}");
                continue;
            };
            external += 1;
            assert!(url.starts_with("https://cdn.jsdelivr.net/npm/"), "{url}");
            assert!(url.contains('@'), "unpinned: {url}");
            assert!(tag.contains(" integrity=\"sha384-"), "{tag}");
            assert!(tag.contains(" crossorigin=\"anonymous\""), "{tag}");
            let kind = if tag.starts_with("script") {
                "script-src"
            } else {
                "style-src"
            };
            assert!(directive_has(&csp, kind, url), "{url} not in {kind}");
        }
        assert_eq!(external, 4);
    }

    fn directive_has(csp: &str, name: &str, source: &str) -> bool {
        directive(csp, name).split(' ').any(|s| s == source)
    }

    #[test]
    fn graphiql_csp_is_strict() {
        let csp = content_security_policy(Some("example.org:8080"));
        assert!(!csp.contains("unsafe-"), "{csp}");
        for (name, value) in [
            ("default-src", "'none'"),
            ("img-src", "'self' data:"),
            ("font-src", "data:"),
            (
                "connect-src",
                "'self' ws://example.org:8080 wss://example.org:8080",
            ),
            ("frame-ancestors", "'none'"),
            ("base-uri", "'none'"),
            ("form-action", "'none'"),
        ] {
            assert_eq!(directive(&csp, name), value, "{name}");
        }
    }

    #[test]
    fn graphiql_odd_hosts_get_only_self() {
        for host in [
            None,
            Some(""),
            Some("evil; script-src *"),
            Some("a b"),
            Some("[::1]:8080"),
            Some("host:"),
            Some("host:123456"),
            Some("a..b"),
        ] {
            let csp = content_security_policy(host);
            assert_eq!(directive(&csp, "connect-src"), "'self'", "{host:?}");
        }
        assert!(is_plain_host("localhost:8080"));
        assert!(is_plain_host("127.0.0.1"));
    }

    #[test]
    fn graphiql_response_sends_the_security_headers() {
        let resp = response(Some("localhost:8080"));
        let h = resp.headers();
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            content_security_policy(Some("localhost:8080")).as_str()
        );
        assert!(
            h[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}
