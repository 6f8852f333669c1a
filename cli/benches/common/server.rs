//! A `cairn serve` child process for the benchmarks that talk to one
//! (`serve.rs`, `web.rs`), included by `#[path]` beside `common`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::common::BoxResult;

/// Names a server for the CLI to send commands to: cleared, so that a
/// `cairn` command started by a benchmark measures the local command.
pub const SERVER_ENV: &str = "CAIRN_SERVER";

/// A `cairn serve` child process on a free loopback port.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Everything it writes to stderr after its listening line.
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// Starts it on the project in `root`; its address from its
    /// "listening on" line.
    pub fn start(root: &Path) -> BoxResult<Server> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("--project")
            .arg(root)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove(SERVER_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stderr = BufReader::new(child.stderr.take().ok_or("cairn serve: no stderr")?);
        // Log lines may come before the listening line.
        let mut seen = String::new();
        let addr = loop {
            let mut line = String::new();
            if stderr.read_line(&mut line)? == 0 {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("cairn serve exited before listening:\n{seen}").into());
            }
            seen.push_str(&line);
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        };
        // Keep reading, so that the pipe never fills and blocks the server.
        let rest = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            rest
        });
        Ok(Server {
            child,
            addr,
            stderr: Some(rest),
        })
    }

    /// SIGTERM; it must exit 0 (its queue is empty by now).
    pub fn stop(mut self) -> BoxResult<()> {
        let pid = self.child.id().to_string();
        if !Command::new("kill")
            .args(["-TERM", &pid])
            .status()?
            .success()
        {
            return Err(format!("kill -TERM {pid} failed").into());
        }
        let exit = self.child.wait()?;
        let log = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if !exit.success() {
            return Err(format!("cairn serve exited with {exit}:\n{log}").into());
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
