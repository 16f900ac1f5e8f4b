//! A minimal HTTP/1.1 POST for the OIDC token endpoint: one request per connection
//! (`Connection: close`), `Content-Length` or chunked answers, bounded in size and time.
//! TLS (https) goes through `ferrokafka-tls`, so no other HTTP stack is linked.

use std::time::Duration;

use ferrokafka_tls::TlsConnector;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest answer read (a token response is a few KiB).
const MAX_RESPONSE: usize = 1 << 20;

/// A parsed `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
}

impl Url {
    pub(crate) fn parse(url: &str) -> Result<Url, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("the token endpoint URL must start with https:// or http://".into());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err("credentials in the token endpoint URL are not supported".into());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || p.parse::<u16>().is_ok() => {
                (h, p.parse::<u16>().map_err(|_| format!("bad port {p:?} in the token endpoint URL"))?)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err("no host in the token endpoint URL".into());
        }
        Ok(Url { tls, host: host.to_owned(), port, path: path.to_owned() })
    }
}

/// POSTs `body` (a form) with `headers`; returns (status, body).
pub(crate) async fn post_form(
    url: &Url,
    tls: Option<&TlsConnector>,
    headers: &[(&str, String)],
    body: &str,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let host = url.host.trim_start_matches('[').trim_end_matches(']');
    let mut request = format!("POST {} HTTP/1.1\r\nHost: {}\r\n", url.path, url.host);
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!(
        "Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    let exchange = async {
        let tcp = TcpStream::connect((host, url.port)).await.map_err(|e| format!("cannot connect: {e}"))?;
        match (url.tls, tls) {
            (true, Some(connector)) => {
                let stream = connector.connect(host, tcp).await.map_err(|e| format!("TLS: {e}"))?;
                round_trip(stream, request.as_bytes()).await
            }
            (true, None) => Err("https needs TLS settings".to_owned()),
            (false, _) => round_trip(tcp, request.as_bytes()).await,
        }
    };
    let raw = tokio::time::timeout(timeout, exchange).await.map_err(|_| format!("no answer within {timeout:?}"))??;
    parse_response(&raw)
}

async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, request: &[u8]) -> Result<Vec<u8>, String> {
    s.write_all(request).await.map_err(|e| format!("write: {e}"))?;
    s.flush().await.map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_RESPONSE {
                    return Err(format!("the answer is larger than {MAX_RESPONSE} bytes"));
                }
            }
            // A TLS peer that closes without close_notify: what arrived is the answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(out)
}

/// Status and body of an HTTP/1.x response (Content-Length, chunked, or until close).
pub(crate) fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no HTTP header in the answer")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "the HTTP header is not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {:?}", status_line.chars().take(40).collect::<String>()))?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = Some(v.parse::<usize>().map_err(|_| "bad Content-Length")?);
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let body = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        body.get(..n).ok_or("the answer is shorter than its Content-Length")?.to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk")?;
        let size_text = std::str::from_utf8(&body[..line_end]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if size > MAX_RESPONSE || body.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// `application/x-www-form-urlencoded` escaping.
pub(crate) fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_answers() {
        let u = Url::parse("https://idp.example.com/oauth2/token").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port, u.path.as_str()), (true, "idp.example.com", 443, "/oauth2/token"));
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 8080, "/"));
        assert!(
            Url::parse("ftp://x").is_err() && Url::parse("http://u:p@x/").is_err() && Url::parse("http://:1/").is_err()
        );
        let (s, b) = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing").unwrap();
        assert_eq!((s, b.as_slice()), (200, &b"{}"[..]));
        let (s, b) =
            parse_response(b"HTTP/1.1 401 No\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!((s, b.as_slice()), (401, &b"abcde"[..]));
        for bad in [
            &b"garbage"[..],
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(parse_response(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(form_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
