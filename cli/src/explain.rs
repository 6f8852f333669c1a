//! `cairn materialize --explain`: the plan, unit by unit, as text or JSON.
//! Rendering only; the decisions come from [`cairn_engine::plan`].

use std::io::{self, Write};

use serde::Serialize;

use cairn_engine::{Decision, PlannedUnit, StaleCause};

/// The plan as text: a summary line, then one line per unit in execution
/// order ("orders [2024-05-01]  build — code changed"); fresh partitions of
/// one asset are folded into one line.
pub fn render_text(units: &[PlannedUnit], out: &mut impl Write) -> io::Result<()> {
    let count = |d: Decision| units.iter().filter(|u| u.decision == d).count();
    let mut parts = vec![format!("{} to build", count(Decision::Build))];
    let unless = count(Decision::BuildUnlessUpstreamUnchanged);
    if unless > 0 {
        parts.push(format!(
            "{unless} to build unless their upstream comes out unchanged"
        ));
    }
    let forced = count(Decision::Forced);
    if forced > 0 {
        parts.push(format!("{forced} forced"));
    }
    parts.push(format!("{} fresh", count(Decision::Fresh)));
    writeln!(
        out,
        "plan: {} (nothing was run or written)",
        parts.join(", ")
    )?;
    let label = |u: &PlannedUnit| {
        if u.partition.is_empty() {
            u.asset.clone()
        } else {
            format!("{} [{}]", u.asset, u.partition)
        }
    };
    let width = units
        .iter()
        .filter(|u| u.decision != Decision::Fresh)
        .map(|u| label(u).len())
        .chain(units.iter().map(|u| u.asset.len()))
        .max()
        .unwrap_or(0);
    let mut i = 0;
    while i < units.len() {
        let u = &units[i];
        if u.decision == Decision::Fresh {
            // Fold a run of fresh units of one asset.
            let run = units[i..]
                .iter()
                .take_while(|v| v.asset == u.asset && v.decision == Decision::Fresh)
                .count();
            let what = match (run, u.partition.is_empty()) {
                (1, true) => u.asset.clone(),
                (1, false) => label(u),
                (n, _) => format!("{} ({n} partitions)", u.asset),
            };
            writeln!(out, "  {what:<width$}  fresh")?;
            i += run;
            continue;
        }
        let mut why: Vec<String> = Vec::new();
        if let Some(error) = &u.last_failure {
            why.push(format!("retry: the last attempt failed: {error}"));
        }
        why.extend(u.causes.iter().map(ToString::to_string));
        let decision = match u.decision {
            Decision::BuildUnlessUpstreamUnchanged => {
                "build unless its upstream comes out unchanged"
            }
            d => d.as_str(),
        };
        if why.is_empty() {
            writeln!(out, "  {:<width$}  {decision}", label(u))?;
        } else {
            writeln!(
                out,
                "  {:<width$}  {decision} — {}",
                label(u),
                why.join("; ")
            )?;
        }
        i += 1;
    }
    Ok(())
}

/// The plan as JSON (the CLI's wire format: stable field names).
pub fn render_json(units: &[PlannedUnit], out: &mut impl Write) -> io::Result<()> {
    #[derive(Serialize)]
    struct Unit<'a> {
        asset: &'a str,
        partition: &'a str,
        decision: Decision,
        causes: &'a [StaleCause],
        #[serde(skip_serializing_if = "Option::is_none")]
        last_failure: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct Plan<'a> {
        build: usize,
        build_unless_upstream_unchanged: usize,
        forced: usize,
        fresh: usize,
        units: Vec<Unit<'a>>,
    }
    let count = |d: Decision| units.iter().filter(|u| u.decision == d).count();
    let plan = Plan {
        build: count(Decision::Build),
        build_unless_upstream_unchanged: count(Decision::BuildUnlessUpstreamUnchanged),
        forced: count(Decision::Forced),
        fresh: count(Decision::Fresh),
        units: units
            .iter()
            .map(|u| Unit {
                asset: &u.asset,
                partition: &u.partition,
                decision: u.decision,
                causes: &u.causes,
                last_failure: u.last_failure.as_deref(),
            })
            .collect(),
    };
    // Serialized first, so that a closed pipe stays a BrokenPipe error.
    let text = serde_json::to_string_pretty(&plan).map_err(io::Error::other)?;
    writeln!(out, "{text}")
}
