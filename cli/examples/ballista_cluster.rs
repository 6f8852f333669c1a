//! A Ballista cluster on this machine for trying `[engine] url` and for the
//! benchmarks: a scheduler and N executors hosted in one process on
//! loopback, configured as the `ballista-scheduler` and `ballista-executor`
//! binaries are (the same code the e2e tests run).
//!
//! ```text
//! cargo run -p cairn-cli --example ballista_cluster -- [--executors N] [--vcores V]
//! ```
//!
//! It prints the `df://` URL to put in `[engine] url` and serves until
//! interrupted (Ctrl-C). Executors read s3:// storage with the `AWS_*`
//! variables of this process's environment.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a developer tool that fails loudly"
)]

#[path = "../../tests/support/ballista_host.rs"]
mod ballista_host;

fn main() -> Result<(), String> {
    let (mut executors, mut vcores) = (2usize, 2usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|&v| v > 0)
                .ok_or_else(|| format!("{name} needs a positive number"))
        };
        match arg.as_str() {
            "--executors" => executors = value("--executors")?,
            "--vcores" => vcores = value("--vcores")?,
            other => {
                return Err(format!(
                    "unknown argument `{other}`; use --executors N --vcores V"
                ));
            }
        }
    }
    let host = ballista_host::BallistaHost::start(executors, vcores, None);
    println!("{}", host.url());
    eprintln!(
        "Ballista scheduler and {executors} executor(s) of {vcores} slots ready; [engine] url = \"{}\" (Ctrl-C stops them)",
        host.url()
    );
    loop {
        std::thread::park();
    }
}
