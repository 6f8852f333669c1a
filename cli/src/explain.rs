//! `cairn materialize --explain`: the plan, unit by unit, as text or JSON.
//! Rendering only; the decisions come from [`cairn_engine::plan`].

use std::io::{self, Write};

use serde::Serialize;

use cairn_engine::{Decision, PlannedUnit};

use crate::commands::wire;

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

/// The plan as JSON (the CLI's wire format: stable field names; decisions
/// and causes as [`wire::Decision`] and [`wire::StaleCause`]).
pub fn render_json(units: &[PlannedUnit], out: &mut impl Write) -> io::Result<()> {
    #[derive(Serialize)]
    struct Unit<'a> {
        asset: &'a str,
        partition: &'a str,
        decision: wire::Decision,
        causes: Vec<wire::StaleCause<'a>>,
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
                decision: u.decision.into(),
                causes: wire::causes(&u.causes),
                last_failure: u.last_failure.as_deref(),
            })
            .collect(),
    };
    // Serialized first, so that a closed pipe stays a BrokenPipe error.
    let text = serde_json::to_string_pretty(&plan).map_err(io::Error::other)?;
    writeln!(out, "{text}")
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use cairn_engine::{MaterializeOptions, PartitionFilter};

    use super::render_json;
    use crate::commands::testing::{open, rendered, shop};

    /// The JSON of the shop's plan: the counts, then each unit with its
    /// decision, causes (tagged by `cause`) and last failure when there is
    /// one.
    #[test]
    fn json_of_the_shop_plan() {
        let dir = shop();
        let ws = open(dir.path());
        let options = MaterializeOptions {
            selection: Vec::new(),
            force: false,
            jobs: 1,
            command: "cairn materialize --explain".to_owned(),
            partitions: PartitionFilter::All,
            backfill: None,
        };
        let units = ws.explain(&options).unwrap_or_else(|e| panic!("{e}"));
        expect![[r#"
            {
              "build": 6,
              "build_unless_upstream_unchanged": 2,
              "forced": 0,
              "fresh": 3,
              "units": [
                {
                  "asset": "named",
                  "partition": "",
                  "decision": "fresh",
                  "causes": []
                },
                {
                  "asset": "daily",
                  "partition": "2024-01-01",
                  "decision": "fresh",
                  "causes": []
                },
                {
                  "asset": "daily",
                  "partition": "2024-01-02",
                  "decision": "build",
                  "causes": [
                    {
                      "cause": "source_changed",
                      "name": "sales"
                    }
                  ]
                },
                {
                  "asset": "daily",
                  "partition": "2024-01-03",
                  "decision": "build",
                  "causes": [
                    {
                      "cause": "never_materialized"
                    }
                  ]
                },
                {
                  "asset": "regions",
                  "partition": "",
                  "decision": "build",
                  "causes": [
                    {
                      "cause": "code_changed"
                    },
                    {
                      "cause": "source_changed",
                      "name": "sales"
                    }
                  ]
                },
                {
                  "asset": "big_regions",
                  "partition": "",
                  "decision": "build",
                  "causes": [
                    {
                      "cause": "never_materialized"
                    },
                    {
                      "cause": "upstream_stale",
                      "name": "regions"
                    }
                  ],
                  "last_failure": "assets/big_regions.sql: checks failed, output not committed: expression(amount < 100) (2 failing rows)"
                },
                {
                  "asset": "running",
                  "partition": "2024-01-01",
                  "decision": "fresh",
                  "causes": []
                },
                {
                  "asset": "running",
                  "partition": "2024-01-02",
                  "decision": "build_unless_upstream_unchanged",
                  "causes": [
                    {
                      "cause": "upstream_stale",
                      "name": "daily"
                    }
                  ]
                },
                {
                  "asset": "running",
                  "partition": "2024-01-03",
                  "decision": "build",
                  "causes": [
                    {
                      "cause": "never_materialized"
                    },
                    {
                      "cause": "upstream_never_materialized",
                      "name": "daily"
                    },
                    {
                      "cause": "earlier_partition_stale"
                    }
                  ]
                },
                {
                  "asset": "top",
                  "partition": "",
                  "decision": "build",
                  "causes": [
                    {
                      "cause": "never_materialized"
                    },
                    {
                      "cause": "upstream_stale",
                      "name": "regions"
                    }
                  ]
                },
                {
                  "asset": "total",
                  "partition": "",
                  "decision": "build_unless_upstream_unchanged",
                  "causes": [
                    {
                      "cause": "upstream_stale",
                      "name": "regions"
                    }
                  ]
                }
              ]
            }
        "#]]
        .assert_eq(&rendered(|out| render_json(&units, out)));
    }
}
