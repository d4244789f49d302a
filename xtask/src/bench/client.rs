//! Minimal keep-alive HTTP/1.1 client on hyper for the load generator.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// One keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Conn> {
        let tcp = TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender, host: addr.to_string() })
    }

    /// Sends a request and returns the response with its body still streaming.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Response<Incoming>> {
        let mut b = Request::builder().method(method).uri(path).header("host", &self.host);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(body))?;
        self.sender.ready().await.context("connection closed")?;
        Ok(self.sender.send_request(req).await?)
    }

    /// Sends a request and reads the whole body.
    pub async fn call(&mut self, method: Method, path: &str, headers: &[(&str, &str)], body: Bytes) -> Result<Reply> {
        let resp = self.send(method, path, headers, body).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply { status: parts.status, headers: parts.headers, body })
    }

    /// `PUT` a stream with a content type; 200/201 are fine.
    pub async fn create_stream(&mut self, path: &str, content_type: &str) -> Result<Reply> {
        let r = self.call(Method::PUT, path, &[("content-type", content_type)], Bytes::new()).await?;
        if !r.status.is_success() {
            bail!("PUT {path}: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
        Ok(r)
    }

    pub async fn append(&mut self, path: &str, content_type: &str, body: Bytes) -> Result<Reply> {
        self.call(Method::POST, path, &[("content-type", content_type)], body).await
    }
}

/// Percent-encodes a query value (offsets are URL-safe in practice; be safe).
pub fn encode_query(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
