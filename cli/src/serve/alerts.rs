//! The server's alert delivery: a background task of its own that, every
//! [`INTERVAL`], attempts the pending alerts that are due — those the
//! server's runs and ticks queued, and any a CLI command left pending —
//! with the backoff of `commands::alerts::delivery_policy`. Runs never
//! wait on it.

use std::time::Duration;

use super::Api;

/// How often due alerts are looked for.
const INTERVAL: Duration = Duration::from_secs(1);

/// Starts the delivery task; it ends with the server's runtime.
pub(super) fn start(api: Api) {
    tokio::spawn(async move {
        let policy = crate::commands::alerts::delivery_policy();
        let mut timer = tokio::time::interval(INTERVAL);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            timer.tick().await;
            // A project broken on disk is reported by every call; skip.
            let Ok(ws) = api.workspace().await else {
                continue;
            };
            if ws.project().config.alerts.is_empty() {
                continue;
            }
            if let Err(e) = ws.deliver_alerts(&policy, Duration::ZERO).await {
                tracing::warn!("alert delivery: {e}");
            }
        }
    });
}
