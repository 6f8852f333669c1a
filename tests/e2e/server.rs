//! A `cairn serve` process on a free loopback port for the server tests,
//! and a real client for it (`tests/grpc/client.py`, Python grpcio).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::util::Project;

/// A running `cairn serve` on a free loopback port.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(p: &Project) -> Server {
        Server::start_with(p, &[])
    }

    /// Starts it with extra environment variables (token secrets, test
    /// hooks); what it writes to stderr is read and dropped.
    pub fn start_with(p: &Project, env: &[(&str, &str)]) -> Server {
        Server::start_collecting_stderr(p, env).0
    }

    /// Starts it and closes its stderr once it is listening: a server whose
    /// terminal went away must keep serving.
    pub fn start_with_stderr_closed(p: &Project) -> Server {
        let mut child = p
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        drop(stderr);
        Server { child, addr }
    }

    /// Like [`Server::start_with`], also collecting everything the server
    /// writes to stderr (its listening line included): the handle returns it
    /// once the server has exited.
    pub fn start_collecting_stderr(
        p: &Project,
        env: &[(&str, &str)],
    ) -> (Server, std::thread::JoinHandle<String>) {
        let mut command = p.command(&["serve", "--listen", "127.0.0.1:0"]);
        command.envs(env.iter().copied());
        let mut child = command
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        // Log lines (CAIRN_LOG) may come before the listening line.
        let mut seen = String::new();
        let addr = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).unwrap() == 0 {
                panic!("no address in {seen:?}");
            }
            seen.push_str(&line);
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        let rest = std::thread::spawn(move || {
            let _ = stderr.read_to_string(&mut seen);
            seen
        });
        (Server { child, addr }, rest)
    }

    /// One call through the Python client: its JSON reply.
    pub fn call(&self, method: &str, request: &str) -> Value {
        self.call_as(None, method, request)
    }

    /// One call through the Python client sending `authorization: Bearer
    /// TOKEN` when a token is given: its JSON reply (`{code, details}` for
    /// an error status).
    pub fn call_as(&self, token: Option<&str>, method: &str, request: &str) -> Value {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/grpc/client.py");
        let mut command = Command::new("python3");
        command.args([script, &self.addr, method, request]);
        if let Some(token) = token {
            command.env("CAIRN_GRPC_TOKEN", token);
        }
        let out = command
            .output()
            .expect("python3 with grpcio must be installed (tests/run.sh does it)");
        assert!(
            out.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{method}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// A call whose client prints one JSON value per line (WatchRun,
    /// MaterializeAndWatch): the values.
    pub fn call_lines(&self, method: &str, request: &str) -> Vec<Value> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/grpc/client.py");
        let out = Command::new("python3")
            .args([script, &self.addr, method, request])
            .output()
            .expect("python3 with grpcio must be installed (tests/run.sh does it)");
        assert!(
            out.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{method}: {e}: {l}")))
            .collect()
    }

    /// Kills it with SIGKILL: no shutdown of any kind.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Stops it with SIGTERM; it must exit 0.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert_eq!(exit.code(), Some(0), "graceful stop");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// `http_get` sending extra request headers (`name`, `value`).
pub fn http_get_with(addr: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// An HTTP reply: status code, headers (lower-case names) and body.
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// An HTTP/1.1 request over a fresh connection; the whole reply (the
/// server's bodies here have a length or end with the connection).
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

/// A raw HTTP/1.1 reply, de-chunked.
fn parse_reply(raw: &[u8]) -> HttpReply {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut body = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            body.push_str(&after[..size]);
            rest = after[size..].trim_start_matches("\r\n");
        }
        body
    } else {
        rest.to_owned()
    };
    HttpReply {
        status,
        headers,
        body,
    }
}

/// `POST /api/v1/METHOD` with a JSON body, as the web page calls it.
pub fn api_call(addr: &str, token: Option<&str>, method: &str, body: &str) -> HttpReply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    http_request(addr, "POST", &format!("/api/v1/{method}"), &headers, body)
}

/// `POST /api/v1/METHOD` answering JSON lines: the lines read until
/// `until` says stop (the stream itself may never end).
pub fn api_stream(
    addr: &str,
    method: &str,
    body: &str,
    mut until: impl FnMut(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        s,
        "POST /api/v1/{method} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut seen = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            return seen;
        }
        // Chunk sizes, the head and blank lines are not JSON objects.
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(line.trim())
            && value.is_object()
        {
            let stop = until(&value);
            seen.push(value);
            if stop {
                return seen;
            }
        }
    }
}
