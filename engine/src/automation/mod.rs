//! Automation: an evaluation at an instant (`cairn tick --at T`) — a pure
//! function of the definitions, the catalog's state and the clock — and
//! recording it with the runs it requests in one catalog transaction.
//!
//! Per automated asset (`[automation]` in its header), conditions compose
//! by OR, and what they request is always only its stale or missing units
//! (a cron tick on a fresh asset requests nothing and says so):
//! - `cron`: an instant of the schedule lies in `(last tick, this tick]`.
//!   Each instant fires once and only once: the last evaluated instant is
//!   part of the tick's transaction, which fails whole when another tick
//!   moved it meanwhile. Instants missed while nothing ticked follow
//!   `catch_up`: `latest` (default) fires once for the newest, `all`
//!   records each, `none` fires only when the newest instant is at most
//!   [`ON_TIME`] old (a late tick still counts as on time), otherwise it is
//!   recorded as skipped.
//! - `on_upstream_change`: a unit is stale because a source or an
//!   upstream committed new data (stateless: an update is never lost
//!   between ticks — it keeps the unit stale until built).
//! - `on_missing`: a partition whose window closed has never been built.
//! - `lag` debounces the two eager conditions: no request sooner than
//!   `lag` after the previous one (the units stay stale and are requested
//!   once it passes). Cron instants are explicit and not debounced.
//!
//! The first tick that sees an asset starts its record: only an instant
//! equal to that tick fires.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use cairn_assets::{Automation, CatchUp};
use cairn_catalog::{
    AutomationEvaluation, AutomationState, Enqueued, NewQueuedRun, NewRun, NewTick, PartitionRef,
    RunId, TickRecorded,
};

use crate::error::EngineError;
use crate::model::units::Unit;
use crate::model::workspace::Workspace;
use crate::queue::request::RunRequest;
use crate::state::status::{AssetState, StaleCause};

/// With `catch_up = "none"`, how old the newest missed instant may be and
/// still fire.
pub const ON_TIME: Duration = Duration::from_secs(15 * 60);

/// At most this many instants are looked at per asset and tick (a
/// minutely schedule after a year of downtime).
const MAX_INSTANTS: usize = 10_000;

/// The principal automation runs are recorded under.
pub const PRINCIPAL: &str = "automation";

/// One condition of one asset at one tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionResult {
    /// The asset.
    pub asset: String,
    /// `cron`, `on_upstream_change` or `on_missing`.
    pub condition: &'static str,
    /// Whether it requested units.
    pub fired: bool,
    /// For `cron`: the schedule's instant that was due at this tick (the
    /// newest, when several were missed), whether or not anything was stale.
    pub due: Option<DateTime<Utc>>,
    /// Why (or why not), readable.
    pub reason: String,
}

/// What a tick evaluated and requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// The instant evaluated.
    pub at: DateTime<Utc>,
    /// Every condition of every automated asset.
    pub conditions: Vec<ConditionResult>,
    /// The units requested, in execution order.
    pub requested: Vec<Unit>,
    /// The run that will build them (queued, or an active run it attached to).
    pub run_id: Option<RunId>,
    /// True when the request attached to an active run.
    pub attached: bool,
    /// True when another tick recorded meanwhile (nothing was done here).
    pub conflict: bool,
}

/// Evaluates every automated asset at `at` and records the tick with the
/// run it requests (queued, for a run queue to execute). `ws` judges time
/// at `at` (its clock should be fixed there).
pub fn tick(ws: &Workspace, at: DateTime<Utc>) -> Result<TickReport, EngineError> {
    let automated: Vec<(&str, &Automation)> = ws
        .project
        .assets
        .values()
        .filter_map(|a| a.automation.as_ref().map(|x| (a.name.as_str(), x)))
        .collect();
    let mut report = TickReport {
        at,
        conditions: Vec::new(),
        requested: Vec::new(),
        run_id: None,
        attached: false,
        conflict: false,
    };
    if automated.is_empty() {
        return Ok(report);
    }
    let states: HashMap<String, AutomationState> = ws
        .catalog
        .automation_state()?
        .into_iter()
        .map(|s| (s.asset.clone(), s))
        .collect();

    // The stale units of the automated assets, with their causes: one pass
    // over the snapshot's assessment (no plan: nothing is run here).
    let snapshot = crate::state::snapshot::snapshot(ws)?;
    let mut stale: BTreeMap<&str, Vec<(String, Vec<StaleCause>)>> = BTreeMap::new();
    let names: HashSet<&str> = automated.iter().map(|(n, _)| *n).collect();
    for status in &snapshot.statuses {
        if !names.contains(status.name.as_str()) {
            continue;
        }
        let units = stale.entry(status.name.as_str()).or_default();
        match &status.partitions {
            None if status.state != AssetState::Fresh => {
                units.push((String::new(), status.causes.clone()));
            }
            None => {}
            Some(p) => units.extend(
                p.list
                    .iter()
                    .filter(|u| u.state != AssetState::Fresh)
                    .map(|u| (u.key.clone(), u.causes.clone())),
            ),
        }
    }

    let mut new_states = Vec::new();
    let mut wanted: BTreeSet<Unit> = BTreeSet::new();
    let mut fired_assets: Vec<&str> = Vec::new();
    for (name, automation) in &automated {
        let state = states.get(*name);
        if let Some(s) = state
            && s.last_tick_at >= at
        {
            report.conditions.push(ConditionResult {
                asset: (*name).to_owned(),
                condition: "tick",
                fired: false,
                due: None,
                reason: format!(
                    "already evaluated at {} (not again)",
                    s.last_tick_at.to_rfc3339()
                ),
            });
            continue;
        }
        let units = stale.get(name).map(Vec::as_slice).unwrap_or_default();
        let decision = decide(automation, state, units, at);
        let mut requested_now = false;
        for (condition, picked, due, reason) in decision {
            let fired = !picked.is_empty();
            if fired {
                requested_now = true;
                wanted.extend(picked.into_iter().map(|p| ((*name).to_owned(), p)));
            }
            report.conditions.push(ConditionResult {
                asset: (*name).to_owned(),
                condition,
                fired,
                due,
                reason,
            });
        }
        if requested_now {
            fired_assets.push(name);
        }
        new_states.push((
            AutomationState {
                asset: (*name).to_owned(),
                last_tick_at: at,
                last_requested_at: if requested_now {
                    Some(at)
                } else {
                    state.and_then(|s| s.last_requested_at)
                },
            },
            state.map(|s| s.last_tick_at),
        ));
    }

    // One run for everything requested, in execution order.
    let mut requested: Vec<Unit> = wanted.into_iter().collect();
    ws.graph
        .sort_in_execution_order(&mut requested, |(a, k)| (a.as_str(), k.as_str()));
    let mut runs = Vec::new();
    let run_id = (!requested.is_empty()).then(|| RunId(uuid::Uuid::now_v7().to_string()));
    if let Some(id) = &run_id {
        let reason = format!(
            "automation tick {}: {}",
            at.to_rfc3339(),
            fired_assets.join(", ")
        );
        let request = RunRequest::Units {
            units: requested.clone(),
            reason: reason.clone(),
            jobs: 1,
        };
        runs.push(NewQueuedRun {
            run: NewRun {
                id: id.clone(),
                user: PRINCIPAL.to_owned(),
                host: crate::model::whoami::host(),
                pid: std::process::id(),
                command: reason,
                trigger: "automation".to_owned(),
                started_at: Utc::now(),
                backfill_id: None,
            },
            request: serde_json::to_string(&request)
                .map_err(|e| EngineError::Internal(format!("encoding a run request: {e}")))?,
            claims: requested
                .iter()
                .map(|(a, p)| PartitionRef {
                    asset: a.clone(),
                    partition: p.clone(),
                })
                .collect(),
            attach: true,
        });
    }
    let evaluations = report
        .conditions
        .iter()
        .filter(|c| c.condition != "tick")
        .map(|c| AutomationEvaluation {
            tick_at: at,
            asset: c.asset.clone(),
            condition: c.condition.to_owned(),
            fired: c.fired,
            reason: c.reason.clone(),
            run_id: if c.fired { run_id.clone() } else { None },
        })
        .collect();
    let recorded = ws.catalog.record_tick(&NewTick {
        at,
        states: new_states,
        evaluations,
        runs,
    })?;
    match recorded {
        TickRecorded::Conflict => {
            report.conflict = true;
            report.conditions.clear();
        }
        TickRecorded::Recorded(enqueued) => {
            // Freshness incidents: opened for units past `fail_after`,
            // recovered for those no longer listed (no-op without alerts).
            crate::alerts::observe_freshness(
                ws,
                &crate::state::snapshot::misses(&snapshot.statuses),
            )?;
            report.requested = requested;
            report.run_id = run_id;
            if let Some(Enqueued::Attached(existing)) = enqueued.into_iter().next() {
                report.run_id = Some(existing);
                report.attached = true;
            }
        }
    }
    Ok(report)
}

/// The newest instant any tick evaluated (for benchmarks that tick a
/// kept project again).
pub fn last_tick_at(ws: &Workspace) -> Result<Option<DateTime<Utc>>, EngineError> {
    Ok(ws
        .catalog
        .automation_state()?
        .into_iter()
        .map(|s| s.last_tick_at)
        .max())
}

/// One condition's verdict: `(condition, partitions picked, the cron
/// instant due, reason)`.
type Verdict = (&'static str, Vec<String>, Option<DateTime<Utc>>, String);

/// The conditions of one asset.
fn decide(
    automation: &Automation,
    state: Option<&AutomationState>,
    stale: &[(String, Vec<StaleCause>)],
    at: DateTime<Utc>,
) -> Vec<Verdict> {
    let mut out = Vec::new();
    let all: Vec<String> = stale.iter().map(|(p, _)| p.clone()).collect();
    let describe = |n: usize| match n {
        0 => "nothing stale, nothing requested".to_owned(),
        1 => "1 stale unit requested".to_owned(),
        n => format!("{n} stale units requested"),
    };
    if let Some(cron) = &automation.cron {
        let instants = match state {
            Some(s) => cron.instants(s.last_tick_at, at, MAX_INSTANTS),
            // The first tick: only an instant equal to it.
            None => cron
                .instants(
                    at - chrono::TimeDelta::try_seconds(1).unwrap_or_default(),
                    at,
                    1,
                )
                .into_iter()
                .filter(|t| *t == at)
                .collect(),
        };
        let schedule = format!("cron `{}` ({})", cron.pattern, cron.timezone);
        match instants.last() {
            None => out.push((
                "cron",
                Vec::new(),
                None,
                format!("{schedule}: no instant due"),
            )),
            Some(newest) => {
                let local = newest.with_timezone(&cron.timezone).to_rfc3339();
                let on_time = at - *newest
                    <= chrono::TimeDelta::from_std(ON_TIME).unwrap_or(chrono::TimeDelta::MAX);
                let missed = instants.len() - 1;
                match automation.catch_up {
                    CatchUp::None if !on_time => out.push((
                        "cron",
                        Vec::new(),
                        None,
                        format!("{schedule}: {local} missed (catch_up = \"none\"), skipped"),
                    )),
                    _ => {
                        let extra = match (automation.catch_up, missed) {
                            (_, 0) => String::new(),
                            (CatchUp::All, n) => {
                                format!(" (and {n} missed instant(s), caught up in this run)")
                            }
                            (_, n) => format!(" ({n} earlier missed instant(s) folded into it)"),
                        };
                        out.push((
                            "cron",
                            all.clone(),
                            Some(*newest),
                            format!("{schedule} at {local}{extra}: {}", describe(all.len())),
                        ));
                    }
                }
            }
        }
    }
    let debounced = |what: &str, picked: Vec<String>| -> (Vec<String>, String) {
        if picked.is_empty() {
            return (picked, format!("{what}: nothing to do"));
        }
        if let Some(last) = state.and_then(|s| s.last_requested_at)
            && !automation.lag.is_zero()
        {
            let lag = chrono::TimeDelta::from_std(automation.lag).unwrap_or(chrono::TimeDelta::MAX);
            if at < last + lag {
                return (
                    Vec::new(),
                    format!(
                        "{what}: {} unit(s) waiting — debounced (lag {}s, last request at {}, next at {})",
                        picked.len(),
                        automation.lag.as_secs(),
                        last.to_rfc3339(),
                        (last + lag).to_rfc3339()
                    ),
                );
            }
        }
        let reason = format!("{what}: {}", describe(picked.len()));
        (picked, reason)
    };
    if automation.on_upstream_change {
        let picked: Vec<String> = stale
            .iter()
            .filter(|(_, causes)| causes.iter().any(is_upstream_change))
            .map(|(p, _)| p.clone())
            .collect();
        let (picked, reason) = debounced("an upstream or source changed", picked);
        out.push(("on_upstream_change", picked, None, reason));
    }
    if automation.on_missing {
        let picked: Vec<String> = stale
            .iter()
            .filter(|(_, causes)| causes.contains(&StaleCause::NeverMaterialized))
            .map(|(p, _)| p.clone())
            .collect();
        let (picked, reason) = debounced("partitions never built", picked);
        out.push(("on_missing", picked, None, reason));
    }
    out
}

impl crate::queue::RunQueue {
    /// One automation tick at `at`: evaluates every automated asset,
    /// records the tick with the run it requests in one transaction, and
    /// wakes the dispatcher. Runs isolated from materializations: it waits
    /// for no run.
    pub async fn tick(&self, at: DateTime<Utc>) -> Result<TickReport, EngineError> {
        // Time is judged at the tick's instant (partitions, SLAs).
        let ws = self
            .open_workspace(Some(PRINCIPAL.to_owned()))
            .await?
            .with_clock(crate::model::workspace::Clock::Fixed(at));
        let report = tokio::task::spawn_blocking(move || tick(&ws, at))
            .await
            .map_err(|e| EngineError::Internal(format!("automation tick: {e}")))??;
        if report.run_id.is_some() {
            tracing::info!(
                run = ?report.run_id,
                units = report.requested.len(),
                attached = report.attached,
                "tick {}: requested",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            self.wake();
        }
        Ok(report)
    }
}

/// Causes that mean new data arrived upstream.
fn is_upstream_change(cause: &StaleCause) -> bool {
    matches!(
        cause,
        StaleCause::SourceChanged { .. }
            | StaleCause::UpstreamChanged { .. }
            | StaleCause::InputsChanged
            | StaleCause::EarlierPartitionChanged
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use cairn_assets::CronSchedule;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn automation(cron: Option<&str>, catch_up: CatchUp, lag_secs: u64) -> Automation {
        Automation {
            cron: cron.map(|c| CronSchedule::new(c, chrono_tz::Tz::UTC).unwrap()),
            on_upstream_change: true,
            on_missing: true,
            lag: Duration::from_secs(lag_secs),
            catch_up,
        }
    }

    fn state(last_tick: &str, last_requested: Option<&str>) -> AutomationState {
        AutomationState {
            asset: "a".to_owned(),
            last_tick_at: utc(last_tick),
            last_requested_at: last_requested.map(utc),
        }
    }

    /// `(condition, fired units, reason)` lines, for reading.
    fn check(
        a: &Automation,
        s: Option<&AutomationState>,
        stale: &[(&str, StaleCause)],
        at: &str,
    ) -> Vec<String> {
        let stale: Vec<(String, Vec<StaleCause>)> = stale
            .iter()
            .map(|(p, c)| ((*p).to_owned(), vec![c.clone()]))
            .collect();
        decide(a, s, &stale, utc(at))
            .into_iter()
            .map(|(c, picked, _, reason)| format!("{c} {picked:?} {reason}"))
            .collect()
    }

    #[test]
    fn cron_fires_only_stale_units_and_catches_up_by_policy() {
        let daily = automation(Some("0 6 * * *"), CatchUp::Latest, 0);
        let changed = StaleCause::InputsChanged;
        // Due, fresh: nothing requested, and said so.
        let lines = check(
            &daily,
            Some(&state("2026-01-01T05:00:00Z", None)),
            &[],
            "2026-01-01T06:00:00Z",
        );
        assert!(
            lines[0].starts_with(
                "cron [] cron `0 6 * * *` (UTC) at 2026-01-01T06:00:00+00:00: nothing stale"
            ),
            "{lines:?}"
        );
        // Three days of downtime: latest folds them into one.
        let lines = check(
            &daily,
            Some(&state("2026-01-01T07:00:00Z", None)),
            &[("", changed.clone())],
            "2026-01-04T07:00:00Z",
        );
        assert!(
            lines[0].contains(
                "at 2026-01-04T06:00:00+00:00 (2 earlier missed instant(s) folded into it)"
            ),
            "{lines:?}"
        );
        assert!(lines[0].starts_with("cron [\"\"]"), "{lines:?}");
        // none: an hour late is missed.
        let none = automation(Some("0 6 * * *"), CatchUp::None, 0);
        let lines = check(
            &none,
            Some(&state("2026-01-01T07:00:00Z", None)),
            &[("", changed.clone())],
            "2026-01-04T07:00:00Z",
        );
        assert!(
            lines[0].starts_with("cron [] ") && lines[0].contains("missed"),
            "{lines:?}"
        );
        // ... ten minutes late is on time.
        let lines = check(
            &none,
            Some(&state("2026-01-04T05:55:00Z", None)),
            &[("", changed)],
            "2026-01-04T06:10:00Z",
        );
        assert!(lines[0].starts_with("cron [\"\"]"), "{lines:?}");
        // The first tick fires only an instant equal to it.
        let lines = check(&daily, None, &[], "2026-01-04T06:10:00Z");
        assert!(lines[0].contains("no instant due"), "{lines:?}");
    }

    #[test]
    fn eager_conditions_pick_their_causes_and_respect_lag() {
        let eager = automation(None, CatchUp::Latest, 3600);
        let stale = [
            ("2026-01-01", StaleCause::InputsChanged),
            ("2026-01-02", StaleCause::NeverMaterialized),
            ("2026-01-03", StaleCause::CodeChanged),
        ];
        let lines = check(
            &eager,
            Some(&state("2026-01-05T00:00:00Z", None)),
            &stale,
            "2026-01-05T01:00:00Z",
        );
        assert_eq!(
            lines,
            [
                "on_upstream_change [\"2026-01-01\"] an upstream or source changed: 1 stale unit requested",
                "on_missing [\"2026-01-02\"] partitions never built: 1 stale unit requested",
            ]
        );
        // Requested 10 minutes ago: debounced until the hour passes.
        let recent = state("2026-01-05T00:50:00Z", Some("2026-01-05T00:50:00Z"));
        let lines = check(&eager, Some(&recent), &stale, "2026-01-05T01:00:00Z");
        assert!(
            lines[0].starts_with("on_upstream_change [] ") && lines[0].contains("debounced"),
            "{lines:?}"
        );
        let lines = check(&eager, Some(&recent), &stale, "2026-01-05T01:51:00Z");
        assert!(
            lines[0].starts_with("on_upstream_change [\"2026-01-01\"]"),
            "{lines:?}"
        );
    }
}
