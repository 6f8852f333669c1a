//! Alert delivery from the command line: a command that may open or close
//! incidents (materialize, backfill, check, tick) delivers the pending alerts
//! once its work is done, within [`COMMAND_BUDGET`], never changing its
//! output or exit code; what is still pending then is left for the next
//! command or `cairn serve`. `cairn status` says when alerts were given up.

use std::io::Write;
use std::time::Duration;

use cairn_engine::{DeliveryPolicy, Workspace};

use crate::args::Command;

/// How long a command may spend delivering alerts after its work (and
/// waiting for retries that fall due meanwhile).
pub(crate) const COMMAND_BUDGET: Duration = Duration::from_secs(3);

/// Test hook: the first backoff between delivery attempts in
/// milliseconds (the tests' receivers fail fast; five attempts then fit a
/// command's budget).
pub(crate) const BACKOFF_ENV: &str = "CAIRN_TEST_ALERT_BACKOFF_MS";

/// The delivery policy: the engine's default, or the test hook's backoff.
pub(crate) fn delivery_policy() -> DeliveryPolicy {
    let policy = DeliveryPolicy::default();
    match std::env::var(BACKOFF_ENV)
        .ok()
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        Some(ms) => DeliveryPolicy {
            first_backoff: Duration::from_millis(ms),
            max_backoff: Duration::from_millis(ms.saturating_mul(8)),
            ..policy
        },
        None => policy,
    }
}

/// Delivers pending alerts when a command that observes incidents is done
/// — when this guard drops, so that every way out of the command (an
/// error included) delivers, after its output and without touching its
/// exit code.
pub(crate) struct DeliverAfter<'a> {
    runtime: &'a tokio::runtime::Runtime,
    ws: &'a Workspace,
    active: bool,
}

impl<'a> DeliverAfter<'a> {
    /// A guard for `command` on `ws` (inactive for commands that observe
    /// nothing, and when no `[[alerts]]` are configured).
    pub(crate) fn new(
        runtime: &'a tokio::runtime::Runtime,
        ws: &'a Workspace,
        command: &Command,
    ) -> Self {
        let observes = matches!(
            command,
            Command::Materialize(_) | Command::Backfill(_) | Command::Check(_) | Command::Tick(_)
        );
        DeliverAfter {
            runtime,
            ws,
            active: observes && !ws.project().config.alerts.is_empty(),
        }
    }
}

impl Drop for DeliverAfter<'_> {
    fn drop(&mut self) {
        if self.active && !std::thread::panicking() {
            deliver(self.runtime, self.ws);
        }
    }
}

/// Delivers what is due within [`COMMAND_BUDGET`]; a failure is a note on
/// stderr, never an error.
pub(crate) fn deliver(runtime: &tokio::runtime::Runtime, ws: &Workspace) {
    let report = runtime.block_on(ws.deliver_alerts(&delivery_policy(), COMMAND_BUDGET));
    let mut err = std::io::stderr().lock();
    match report {
        Ok(r) if r.failed_attempts == 0 => {}
        Ok(r) => {
            let error = r.last_error.unwrap_or_default();
            if r.undelivered > 0 {
                let _ = writeln!(
                    err,
                    "cairn: {} alert(s) undelivered after every attempt ({error}); see cairn.alerts",
                    r.undelivered
                );
            }
            if r.pending > 0 {
                let _ = writeln!(
                    err,
                    "cairn: {} alert(s) not delivered yet ({error}); retried by the next command or cairn serve",
                    r.pending
                );
            }
        }
        Err(e) => {
            let _ = writeln!(err, "cairn: alerts not delivered: {e}");
        }
    }
}

/// `cairn status`'s line about alerts given up, if any were lately.
pub(crate) fn undelivered_line(ws: &Workspace, out: &mut impl Write) -> std::io::Result<()> {
    match undelivered_count(ws) {
        Some(Ok(n)) => undelivered_count_line(n, out),
        Some(Err(e)) => writeln!(out, "alerts: cannot read their delivery state: {e}"),
        None => Ok(()),
    }
}

/// How many alerts were not delivered in the last 24 h; `None` when the
/// project has no `[[alerts]]`.
pub(crate) fn undelivered_count(ws: &Workspace) -> Option<Result<u64, cairn_engine::EngineError>> {
    if ws.project().config.alerts.is_empty() {
        return None;
    }
    Some(ws.alert_counts().map(|c| c.undelivered))
}

/// The line `cairn status` ends with when alerts went undelivered (locally
/// or as a server counted them).
pub(crate) fn undelivered_count_line(
    undelivered: u64,
    out: &mut impl Write,
) -> std::io::Result<()> {
    if undelivered == 0 {
        return Ok(());
    }
    writeln!(
        out,
        "{undelivered} alert(s) undelivered in the last 24 h (see cairn.alerts)"
    )
}
