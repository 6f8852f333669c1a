//! Alerts: telling people — once — when something breaks, and when it is
//! fixed (`[[alerts]]` in cairn.toml).
//!
//! **Incidents.** An incident is one `(kind, asset, partition)` while its
//! trouble lasts; at most one is open per key (the catalog enforces it
//! across processes). An alert is sent when an incident opens and a
//! `recovered` when it closes — never for an open incident seen again (the
//! next run failing the same way, the next tick still late), never per
//! retry attempt. The engine decides (the pure state machine in
//! [`incidents`]); the catalog stores incidents and deliveries and applies
//! a change only while it still holds, with its deliveries in the same
//! transaction.
//!
//! | kind               | opens when                                   | closes when |
//! |--------------------|----------------------------------------------|-------------|
//! | `run_failed`       | a unit's build fails — its final outcome, after any retries (a failure to plan or validate a run is the command's error, not an incident) | the unit's next build succeeds (committed, or found unchanged by early cutoff) |
//! | `check_failed`     | an `error` check fails on a unit: a build blocked by it (then not also `run_failed`), or `cairn check` on the committed version; failing `warn` checks never count | the unit is committed (its `error` checks passed) or `cairn check` passes them |
//! | `freshness_missed` | a tick finds the unit past its SLA's `fail_after` ([`observe_freshness`] with the tick's `Workspace::sla_misses`; `warn_after` never alerts) | the unit is committed, or a tick no longer finds it failing |
//!
//! A unit skipped because its upstream failed is not an incident of its
//! own: the upstream's is the one to fix. Without `[[alerts]]` nothing is
//! observed or recorded at all.
//!
//! **Where incidents are observed:** at the end of every materialize run
//! (CLI, server queue, backfill and tick runs alike: `execute/alerting.rs`),
//! after `cairn check`, and at each automation tick for freshness.
//! Observing is one catalog read and, when something changed, one write;
//! its failure is logged and never fails the run.
//!
//! **Who is told what.** Each `[[alerts]]` entry listening to an event
//! (`on`) gets one delivery of it, its body rendered when the incident
//! changes ([`body`]: Slack or JSON). A `recovered` goes only to entries
//! that listen to `recovered` *and* to the incident's kind — a channel
//! never hears of the end of something it was not told of.
//!
//! **Delivery** ([`deliver`]) never blocks a run: the server delivers in a
//! background task; a CLI command delivers after its work, within a short
//! budget, without changing its exit code, leaving the rest pending for
//! the next command or the server. Each delivery is claimed under a lease
//! (one process attempts it), every attempt is recorded, failures are
//! retried with exponential backoff, and after the last attempt the
//! delivery is `undelivered` with its error — visible in `cairn.alerts`
//! and counted by `cairn status`.

pub(crate) mod body;
pub(crate) mod deliver;
pub(crate) mod incidents;

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use cairn_assets::{AlertConfig, AlertEvent};
use cairn_catalog::{
    AlertDeliveryCounts, AlertIncident, Catalog, IncidentChange, IncidentKind, NewAlertDelivery,
    RunId,
};

use crate::error::EngineError;
use crate::model::workspace::Workspace;
use crate::state::freshness::{SlaLevel, SlaMiss};
use body::Message;
use deliver::{DeliveryPolicy, DeliveryReport};
use incidents::{Observation, Step, decide};

/// How far back `cairn status` counts undelivered alerts.
pub(crate) const UNDELIVERED_WINDOW_HOURS: i64 = 24;

/// Records what `observations` change in the incidents and queues their
/// alerts; the number of incidents opened or closed. `run_id`: the run
/// that observed them, if a run did.
pub(crate) fn observe(
    ws: &Workspace,
    run_id: Option<&RunId>,
    observations: &[Observation],
) -> Result<usize, EngineError> {
    let alerts = &ws.project.config.alerts;
    if alerts.is_empty() || observations.is_empty() {
        return Ok(0);
    }
    let open = ws.catalog.open_incidents()?;
    apply(
        ws.catalog.as_ref(),
        alerts,
        &project_name(ws),
        run_id,
        &open,
        observations,
    )
}

/// A tick's freshness verdict: `misses` is the complete list of units at
/// or past a limit of their SLA at the tick (`Workspace::sla_misses`).
/// Opens an incident for each unit past `fail_after` not already open
/// (`warn_after` alone never alerts), and closes the open freshness
/// incidents of units no longer failing. The number of incidents opened or
/// closed.
pub(crate) fn observe_freshness(ws: &Workspace, misses: &[SlaMiss]) -> Result<usize, EngineError> {
    let alerts = &ws.project.config.alerts;
    if alerts.is_empty() {
        return Ok(0);
    }
    let failing: Vec<(&str, &str, String)> = misses
        .iter()
        .filter(|m| m.level == SlaLevel::Failed)
        .map(|m| (m.asset.as_str(), m.partition.as_str(), m.describe()))
        .collect();
    let open = ws.catalog.open_incidents()?;
    let observations = freshness_observations(&open, &failing);
    apply(
        ws.catalog.as_ref(),
        alerts,
        &project_name(ws),
        None,
        &open,
        &observations,
    )
}

/// The misses (asset, partition, detail) as failing observations, and
/// every open freshness incident of a unit not among them as passing.
fn freshness_observations(
    open: &[AlertIncident],
    misses: &[(&str, &str, String)],
) -> Vec<Observation> {
    let missed: HashSet<(&str, &str)> = misses.iter().map(|m| (m.0, m.1)).collect();
    let kind = IncidentKind::FreshnessMissed;
    let cleared = open
        .iter()
        .filter(|i| i.kind == kind && !missed.contains(&(i.asset.as_str(), i.partition.as_str())))
        .map(|i| Observation::passing(kind, &i.asset, &i.partition));
    misses
        .iter()
        .map(|(asset, partition, detail)| {
            Observation::failing(kind, asset, partition, detail.clone())
        })
        .chain(cleared)
        .collect()
}

/// Decides the steps, renders their deliveries and applies them.
fn apply(
    catalog: &dyn Catalog,
    alerts: &[AlertConfig],
    project: &str,
    run_id: Option<&RunId>,
    open: &[AlertIncident],
    observations: &[Observation],
) -> Result<usize, EngineError> {
    let steps = decide(open, observations);
    if steps.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let changes: Vec<IncidentChange> = steps
        .iter()
        .map(|step| change(step, alerts, project, run_id, now))
        .collect();
    let applied = catalog.apply_incident_changes(&changes)?;
    Ok(applied.into_iter().filter(|a| *a).count())
}

/// The catalog change of one step, with a delivery per listening entry.
fn change(
    step: &Step<'_>,
    alerts: &[AlertConfig],
    project: &str,
    run_id: Option<&RunId>,
    now: DateTime<Utc>,
) -> IncidentChange {
    match step {
        Step::Open {
            observation: o,
            detail,
        } => {
            let message = Message {
                recovered: false,
                kind: o.kind,
                asset: &o.asset,
                partition: &o.partition,
                opened_at: now,
                closed_at: None,
                detail,
                run_id,
                project,
            };
            IncidentChange::Open {
                kind: o.kind,
                asset: o.asset.clone(),
                partition: o.partition.clone(),
                at: now,
                detail: (*detail).to_owned(),
                run_id: run_id.cloned(),
                deliveries: deliveries(&message, alerts),
            }
        }
        Step::Close { incident: i } => {
            let message = Message {
                recovered: true,
                kind: i.kind,
                asset: &i.asset,
                partition: &i.partition,
                opened_at: i.opened_at,
                closed_at: Some(now),
                detail: &i.detail,
                run_id,
                project,
            };
            IncidentChange::Close {
                incident: i.id,
                at: now,
                run_id: run_id.cloned(),
                deliveries: deliveries(&message, alerts),
            }
        }
    }
}

/// One delivery of `message` per entry that listens to it.
fn deliveries(message: &Message<'_>, alerts: &[AlertConfig]) -> Vec<NewAlertDelivery> {
    alerts
        .iter()
        .filter(|a| listens(a, message.recovered, message.kind))
        .map(|a| NewAlertDelivery {
            event: message.event().to_owned(),
            url: a.url.clone(),
            format: match a.format {
                cairn_assets::AlertFormat::Slack => "slack",
                cairn_assets::AlertFormat::Json => "json",
            }
            .to_owned(),
            body: message.render(a.format),
        })
        .collect()
}

/// Whether `alert` is told of an incident of `kind` opening, or of its
/// recovery: a recovery only where the opening was told too.
fn listens(alert: &AlertConfig, recovered: bool, kind: IncidentKind) -> bool {
    let event = match kind {
        IncidentKind::RunFailed => AlertEvent::RunFailed,
        IncidentKind::CheckFailed => AlertEvent::CheckFailed,
        IncidentKind::FreshnessMissed => AlertEvent::FreshnessMissed,
    };
    alert.on.contains(&event) && (!recovered || alert.on.contains(&AlertEvent::Recovered))
}

/// The project's name in alerts: its folder's.
fn project_name(ws: &Workspace) -> String {
    ws.project
        .root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ws.project.root.display().to_string())
}

/// Attempts the pending alerts due within `budget` (see [`deliver`]).
pub(crate) async fn deliver_alerts(
    ws: &Workspace,
    policy: &DeliveryPolicy,
    budget: Duration,
) -> Result<DeliveryReport, EngineError> {
    deliver::deliver(ws.catalog.as_ref(), policy, budget).await
}

/// Pending deliveries, and the undelivered ones of the last
/// [`UNDELIVERED_WINDOW_HOURS`] hours.
pub(crate) fn alert_counts(ws: &Workspace) -> Result<AlertDeliveryCounts, EngineError> {
    let since =
        Utc::now() - TimeDelta::try_hours(UNDELIVERED_WINDOW_HOURS).unwrap_or(TimeDelta::zero());
    Ok(ws.catalog.alert_delivery_counts(since)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use cairn_assets::{AlertConfig, AlertEvent, AlertFormat};
    use cairn_catalog::{Catalog, IncidentKind, RunId, SqlCatalog};

    use super::incidents::Observation;
    use super::{apply, freshness_observations};

    fn alert(format: AlertFormat, on: &[AlertEvent]) -> AlertConfig {
        AlertConfig {
            url: format!("http://127.0.0.1:9/{format:?}"),
            format,
            on: on.to_vec(),
        }
    }

    /// Each incident's kind with the events and formats queued for it.
    fn log(c: &SqlCatalog) -> Vec<String> {
        c.alert_log(100)
            .unwrap()
            .into_iter()
            .rev()
            .map(|(i, d)| {
                let sent: Vec<String> = d
                    .iter()
                    .map(|d| format!("{}/{}", d.event, d.format))
                    .collect();
                format!("{} {}: {}", i.kind.as_str(), i.asset, sent.join(" "))
            })
            .collect()
    }

    fn run(c: &SqlCatalog, alerts: &[AlertConfig], observations: &[Observation]) -> usize {
        let open = c.open_incidents().unwrap();
        let run = RunId("r".to_owned());
        apply(c, alerts, "shop", Some(&run), &open, observations).unwrap()
    }

    #[test]
    fn one_alert_per_incident_and_one_recovery() {
        let c = SqlCatalog::open_in_memory().unwrap();
        let alerts = [alert(AlertFormat::Slack, &AlertEvent::all())];
        let failed =
            || Observation::failing(IncidentKind::RunFailed, "orders", "", "boom".to_owned());
        // Three runs fail: one incident, one alert.
        for _ in 0..3 {
            run(&c, &alerts, &[failed()]);
        }
        let passed = Observation::passing(IncidentKind::RunFailed, "orders", "");
        assert_eq!(run(&c, &alerts, std::slice::from_ref(&passed)), 1);
        assert_eq!(run(&c, &alerts, &[passed]), 0);
        assert_eq!(
            log(&c),
            ["run_failed orders: run_failed/slack recovered/slack"]
        );
        // The next failure is a new incident.
        run(&c, &alerts, &[failed()]);
        assert_eq!(log(&c).len(), 2);
    }

    #[test]
    fn each_entry_hears_only_what_it_listens_to() {
        let c = SqlCatalog::open_in_memory().unwrap();
        let alerts = [
            alert(AlertFormat::Slack, &[AlertEvent::RunFailed]),
            alert(
                AlertFormat::Json,
                &[AlertEvent::CheckFailed, AlertEvent::Recovered],
            ),
        ];
        run(
            &c,
            &alerts,
            &[
                Observation::failing(IncidentKind::RunFailed, "orders", "", "x".to_owned()),
                Observation::failing(IncidentKind::CheckFailed, "customers", "", "y".to_owned()),
            ],
        );
        run(
            &c,
            &alerts,
            &[
                Observation::passing(IncidentKind::RunFailed, "orders", ""),
                Observation::passing(IncidentKind::CheckFailed, "customers", ""),
            ],
        );
        // The json entry listens to `recovered` but was never told the run
        // failed: it is not told it recovered either.
        assert_eq!(
            log(&c),
            [
                "run_failed orders: run_failed/slack",
                "check_failed customers: check_failed/json recovered/json",
            ]
        );
    }

    #[test]
    fn a_tick_lists_every_miss_and_what_it_no_longer_lists_recovers() {
        let c = SqlCatalog::open_in_memory().unwrap();
        let alerts = [alert(AlertFormat::Json, &AlertEvent::all())];
        let miss = |partition: &'static str| ("daily", partition, format!("{partition} late"));
        let tick = |misses: &[(&str, &str, String)]| {
            let open = c.open_incidents().unwrap();
            let observations = freshness_observations(&open, misses);
            apply(&c, &alerts, "shop", None, &open, &observations).unwrap()
        };
        assert_eq!(tick(&[miss("01"), miss("02")]), 2);
        assert_eq!(tick(&[miss("01"), miss("02")]), 0, "still late: nothing");
        assert_eq!(tick(&[miss("02")]), 1, "01 recovered");
        assert_eq!(tick(&[]), 1, "02 recovered");
        let events: Vec<(String, usize)> = c
            .alert_log(10)
            .unwrap()
            .into_iter()
            .map(|(i, d)| (i.partition, d.len()))
            .collect();
        assert_eq!(events, [("02".to_owned(), 2), ("01".to_owned(), 2)]);
    }
}
