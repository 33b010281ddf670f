//! `evistream health`: a container health check that needs no shell or
//! curl in the image. One HTTP/1.1 GET over plain TCP (nodes speak plain
//! HTTP behind their proxy); success is a 200 status line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use evistream::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `/livez` of this node's own address: `listen`, or `ops_listen` for a worker.
pub fn default_url(config: &Config, worker: bool) -> anyhow::Result<String> {
    let addr: SocketAddr = if worker {
        let at = config.ops_listen.trim();
        if at.is_empty() {
            bail!("ops_listen is empty: this worker serves no health endpoint");
        }
        at.parse()
            .with_context(|| format!("ops_listen `{at}` is not an address"))?
    } else {
        config.listen
    };
    // A node bound to every address answers on loopback.
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(format!("http://{}/livez", SocketAddr::new(ip, addr.port())))
}

/// GETs `url`; `Ok` on HTTP 200, an error naming what it got otherwise.
pub async fn check(url: &str, timeout: Duration) -> anyhow::Result<()> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("`{url}` is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("`{url}`: only http:// URLs are checked (nodes serve plain HTTP)");
    }
    let host = uri.host().context("the URL has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: evistream-health\r\nConnection: close\r\n\r\n"
    );
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let exchange = async move {
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        stream.write_all(request.as_bytes()).await?;
        // The status line is all we need; read at most a little.
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(head)
    };
    let head = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("{url}: no answer within {}s", timeout.as_secs()))?
        .with_context(|| format!("{url}: unreachable"))?;
    let line = String::from_utf8_lossy(&head);
    let status = line.lines().next().unwrap_or_default();
    match status.split_whitespace().nth(1) {
        Some("200") => {
            println!("ok: {url}");
            Ok(())
        }
        Some(code) => bail!("{url} answered {code}"),
        None => bail!("{url}: not an HTTP answer"),
    }
}
