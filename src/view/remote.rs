//! Asking another member: one HTTP/1.1 GET to the URL it advertises
//! (`http://host:port` or `https://host:port`), with a deadline. Members
//! only ever ask each other `/subjects/...?local=true` (their own JSON), so
//! a client this small is enough: `Content-Length` or chunked bodies, no
//! redirects. Over `https://` the peer's certificate is checked against
//! `http.tls_ca` (rustls); the request carries the `Authorization` the
//! caller chose (`ops::auth`: the peer token or the caller's own).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0} is not an http:// or https:// URL")]
    Url(String),
    #[error("{0} is an https:// URL, and http.tls_ca is not set: no CA to check its certificate against")]
    NoCa(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not an HTTP response")]
    Malformed,
}

/// How this member reaches others: plain, or TLS trusting `http.tls_ca`.
#[derive(Clone, Default)]
pub struct Client {
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Client {
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>) -> Client {
        Client { tls: tls.map(tokio_rustls::TlsConnector::from) }
    }

    /// `GET {base}{path}` with this `Authorization` (if any): (status, body).
    pub async fn get(
        &self,
        base: &str,
        path: &str,
        timeout: Duration,
        authorization: Option<&str>,
    ) -> Result<(u16, Vec<u8>), RemoteError> {
        let (tls, hostport) = match (base.strip_prefix("http://"), base.strip_prefix("https://")) {
            (Some(h), _) => (false, h),
            (_, Some(h)) => (true, h),
            _ => return Err(RemoteError::Url(base.into())),
        };
        let hostport = hostport.trim_end_matches('/');
        if hostport.is_empty() {
            return Err(RemoteError::Url(base.into()));
        }
        let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nAccept: application/json\r\n{auth}Connection: close\r\n\r\n"
        );
        let connector = match (tls, &self.tls) {
            (false, _) => None,
            (true, Some(c)) => Some(c),
            (true, None) => return Err(RemoteError::NoCa(base.into())),
        };
        let exchange = async {
            let tcp = tokio::net::TcpStream::connect(hostport).await?;
            let Some(connector) = connector else {
                return exchange(tcp, &req).await;
            };
            let host = match hostport.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default(),
                None => hostport.rsplit_once(':').map_or(hostport, |(h, _)| h),
            };
            let name =
                rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| RemoteError::Url(base.into()))?;
            exchange(connector.connect(name, tcp).await?, &req).await
        };
        let raw = tokio::time::timeout(timeout, exchange).await.map_err(|_| RemoteError::Timeout(timeout))??;
        parse(&raw)
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, req: &str) -> Result<Vec<u8>, RemoteError> {
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw).await {
        Ok(_) => Ok(raw),
        // A TLS peer that closes without close_notify after a whole
        // response (Connection: close) is still a whole response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(raw),
        Err(e) => Err(e.into()),
    }
}

fn parse(raw: &[u8]) -> Result<(u16, Vec<u8>), RemoteError> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or(RemoteError::Malformed)?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| RemoteError::Malformed)?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1."))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or(RemoteError::Malformed)?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_ascii_lowercase())
        })
    };
    if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        return Ok((status, dechunk(body)?));
    }
    match header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        Some(n) if n <= body.len() => Ok((status, body[..n].to_vec())),
        Some(_) => Err(RemoteError::Malformed),
        None => Ok((status, body.to_vec())),
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, RemoteError> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n").ok_or(RemoteError::Malformed)?;
        let size = std::str::from_utf8(&body[..eol]).map_err(|_| RemoteError::Malformed)?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| RemoteError::Malformed)?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err(RemoteError::Malformed);
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Percent-encodes a path segment (everything but RFC 3986's unreserved).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let r = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").expect("ok");
        assert_eq!(r, (200, b"{}".to_vec()));
        let r = parse(
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .expect("ok");
        assert_eq!(r, (503, b"abcde".to_vec()));
        assert!(parse(b"garbage").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}").is_err(), "cut short");
    }

    #[test]
    fn encodes_path_segments() {
        assert_eq!(encode_segment("B0-1_x.y~"), "B0-1_x.y~");
        assert_eq!(encode_segment("a/b c#é"), "a%2Fb%20c%23%C3%A9");
    }

    #[tokio::test]
    async fn an_address_nobody_listens_on_is_an_error_not_a_hang() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let c = Client::default();
        let r = c.get(&format!("http://127.0.0.1:{port}"), "/", Duration::from_secs(2), None).await;
        assert!(matches!(r, Err(RemoteError::Io(_))), "{r:?}");
        assert!(matches!(c.get("ftp://x:1", "/", Duration::from_secs(1), None).await, Err(RemoteError::Url(_))));
        assert!(matches!(c.get("https://x:1", "/", Duration::from_secs(1), None).await, Err(RemoteError::NoCa(_))));
    }
}
