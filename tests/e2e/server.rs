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
