//! The few W3C WebDriver calls the UI benchmark needs, spoken over plain HTTP/1.1 to
//! `WebKitWebDriver` on loopback (one short connection per command; no async runtime, so xtask
//! stays quick to build).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// How long one WebDriver command may take (a new session starts the app).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// A WebDriver session on an app started by `WebKitWebDriver`.
pub(crate) struct Session {
    port: u16,
    id: String,
}

impl Session {
    /// Starts a session whose "browser" is the Tauri app `binary` (what tauri-driver asks
    /// `WebKitWebDriver` for on Linux; the driver's environment must carry
    /// `TAURI_WEBVIEW_AUTOMATION=true`).
    pub(crate) fn start(port: u16, binary: &Path) -> Result<Self> {
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "webkitgtk:browserOptions": { "binary": binary, "args": [] }
                }
            }
        });
        let value = request(port, "POST", "/session", Some(&caps))?;
        let id = value
            .get("sessionId")
            .and_then(Value::as_str)
            .context("WebDriver: new session without a sessionId")?
            .to_owned();
        Ok(Self { port, id })
    }

    /// Runs `script` (a function body) synchronously in the page; returns its result.
    pub(crate) fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        let body = json!({ "script": script, "args": args });
        request(
            self.port,
            "POST",
            &format!("/session/{}/execute/sync", self.id),
            Some(&body),
        )
    }

    /// Runs `script` asynchronously: it gets a callback as its last argument and the command
    /// returns what the callback is called with (or fails after the session's script timeout).
    pub(crate) fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        let body = json!({ "script": script, "args": args });
        request(
            self.port,
            "POST",
            &format!("/session/{}/execute/async", self.id),
            Some(&body),
        )
    }

    /// Sets the script timeout (for [`Session::execute_async`]).
    pub(crate) fn set_script_timeout(&self, timeout: Duration) -> Result<()> {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        request(
            self.port,
            "POST",
            &format!("/session/{}/timeouts", self.id),
            Some(&json!({ "script": ms })),
        )
        .map(|_| ())
    }

    /// Ends the session, which closes the app.
    pub(crate) fn close(self) -> Result<()> {
        request(self.port, "DELETE", &format!("/session/{}", self.id), None).map(|_| ())
    }
}

/// One WebDriver command; returns the response's `value`, or the WebDriver error as an error.
fn request(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to WebDriver on port {port}"))?;
    stream.set_read_timeout(Some(COMMAND_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("WebDriver {method} {path}: reading the response"))?;
    let (status, payload) = parse_response(&raw)
        .with_context(|| format!("WebDriver {method} {path}: malformed response"))?;
    let json: Value = if payload.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&payload)
            .with_context(|| format!("WebDriver {method} {path}: response is not JSON"))?
    };
    let value = json.get("value").cloned().unwrap_or(Value::Null);
    if status >= 400 {
        let error = value.get("error").and_then(Value::as_str).unwrap_or("?");
        let message = value.get("message").and_then(Value::as_str).unwrap_or("");
        bail!("WebDriver {method} {path} failed ({status} {error}): {message}");
    }
    Ok(value)
}

/// Status code and body of an HTTP/1.1 response (plain or chunked).
fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status code")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Ok((
        status,
        if chunked {
            dechunk(body)?
        } else {
            body.to_vec()
        },
    ))
}

/// Decodes a chunked transfer-encoded body.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).context("truncated chunk")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).context("truncated chunk end")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"value\":null}";
        let (status, body) = parse_response(plain).expect("a plain response parses");
        assert_eq!(status, 200, "the status code is read");
        assert_eq!(body, b"{\"value\":null}", "a plain body is kept as is");

        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"va\r\n6\r\nlue\":1\r\n1\r\n}\r\n0\r\n\r\n";
        let (status, body) = parse_response(chunked).expect("a chunked response parses");
        assert_eq!(status, 404, "the status code is read");
        assert_eq!(body, b"{\"value\":1}", "chunks are joined");
    }
}
