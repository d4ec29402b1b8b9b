//! The WHIP client (RFC 9725): pushes a camera's one encode to a media server or SFU.
//!
//! The daemon makes the offer (send-only H.264), waits for its ICE candidates, `POST`s it with
//! `Authorization: Bearer <token>` and expects `201 Created` with the answer and a `Location`
//! for the session. When the connection fails, or the server refuses, the session is dropped
//! (`DELETE` on the `Location`, best effort) and started again with backoff, for as long as the
//! daemon runs. A technician sees the push on `/status` and in the log.
//!
//! HTTP here is a few requests an hour, so it is a small blocking HTTP/1.1 client (rustls for
//! `https://`); the response parsing is sans-IO and unit-tested.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// A parsed HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Errors of a WHIP exchange, in words for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhipError {
    #[error("`{0}` is not an http(s) URL")]
    Url(String),
    #[error("cannot reach {0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the server's answer is not HTTP: {0}")]
    Malformed(String),
    #[error("the server answered {status}: {body}")]
    Refused { status: u16, body: String },
}

/// Parses a whole HTTP/1.1 response (the connection is closed after it).
pub fn parse_response(raw: &[u8]) -> Result<HttpResponse, WhipError> {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| WhipError::Malformed("no end of headers".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(WhipError::Malformed(format!("status line `{status_line}`")));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| WhipError::Malformed(format!("status line `{status_line}`")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)?
    } else {
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok());
        match len {
            Some(n) => rest.get(..n).unwrap_or(rest).to_owned(),
            None => rest.to_owned(),
        }
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> Result<String, WhipError> {
    let mut out = String::new();
    loop {
        let (size, tail) = rest
            .split_once("\r\n")
            .ok_or_else(|| WhipError::Malformed("cut chunk".into()))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| WhipError::Malformed(format!("chunk size `{size}`")))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = tail
            .get(..size)
            .ok_or_else(|| WhipError::Malformed("cut chunk".into()))?;
        out.push_str(chunk);
        rest = tail.get(size..).unwrap_or("").trim_start_matches("\r\n");
    }
}

/// Resolves a `Location` header against the URL the request went to.
pub fn resolve_location(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        format!("{}{location}", &base[..authority_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|i| *i >= authority_end)
            .unwrap_or(authority_end);
        format!("{}/{location}", &base[..dir_end])
    }
}

struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn target(url: &str) -> Result<Target, WhipError> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(WhipError::Url(url.to_owned()));
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse::<u16>() {
            Ok(p) => (h.trim_matches(['[', ']']).to_owned(), p),
            Err(_) => (authority.to_owned(), if tls { 443 } else { 80 }),
        },
        _ => (authority.to_owned(), if tls { 443 } else { 80 }),
    };
    if host.is_empty() {
        return Err(WhipError::Url(url.to_owned()));
    }
    Ok(Target {
        tls,
        host,
        port,
        path: if path.is_empty() {
            "/".into()
        } else {
            path.to_owned()
        },
    })
}

/// Sends one request and reads the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<HttpResponse, WhipError> {
    let t = target(url)?;
    let mut req = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        t.path,
        t.host,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let tcp = TcpStream::connect((t.host.as_str(), t.port))
        .map_err(|e| WhipError::Connect(format!("{}:{} ({e})", t.host, t.port)))?;
    let timeout = Some(Duration::from_secs(10));
    let _ = tcp.set_read_timeout(timeout);
    let _ = tcp.set_write_timeout(timeout);
    let mut raw = Vec::new();
    if t.tls {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(t.host.clone())
            .map_err(|e| WhipError::Tls(e.to_string()))?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name)
            .map_err(|e| WhipError::Tls(e.to_string()))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        stream
            .write_all(req.as_bytes())
            .map_err(|e| WhipError::Tls(e.to_string()))?;
        // A server that closes without close_notify still sent its whole answer.
        let _ = stream.read_to_end(&mut raw);
    } else {
        let mut tcp = tcp;
        tcp.write_all(req.as_bytes())
            .map_err(|e| WhipError::Connect(e.to_string()))?;
        let _ = tcp.read_to_end(&mut raw);
    }
    parse_response(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_created_answer() {
        let raw = b"HTTP/1.1 201 Created\r\nLocation: /whip/s/1\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\nEXTRA";
        let r = parse_response(raw).expect("parses");
        assert_eq!(r.status, 201);
        assert_eq!(r.header("location"), Some("/whip/s/1"));
        assert_eq!(r.body, "v=0\r\n");
    }

    #[test]
    fn parses_chunked_bodies_and_refuses_garbage() {
        let raw = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nv=0\r\n2\r\n\r\n\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).expect("parses").body, "v=0\r\n");
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 20").is_err());
    }

    #[test]
    fn resolves_locations() {
        let base = "https://sfu.example:8443/whip/table-1";
        assert_eq!(
            resolve_location(base, "/res/9"),
            "https://sfu.example:8443/res/9"
        );
        assert_eq!(
            resolve_location(base, "res/9"),
            "https://sfu.example:8443/whip/res/9"
        );
        assert_eq!(resolve_location(base, "http://x/y"), "http://x/y");
    }

    #[test]
    fn reads_targets() {
        let t = target("http://10.0.0.1:8889/whip/cam").expect("url");
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "10.0.0.1", 8889, "/whip/cam")
        );
        let t = target("https://sfu.example").expect("url");
        assert_eq!((t.tls, t.port, t.path.as_str()), (true, 443, "/"));
        assert!(target("rtsp://x").is_err());
    }
}
