//! `cairn cost`: what assets cost (measured), of their current versions or
//! over a window, optionally rolled up along lineage, in the order asked.

use std::io::Write;

use cairn_engine::{AssetCost, Workspace};

use crate::Failure;
use crate::args::{CostArgs, CostSort, Format};
use crate::commands::{print_json, since};
use crate::output::bytes;

/// Runs `cairn cost`.
pub(crate) fn run(ws: &Workspace, args: CostArgs) -> Result<u8, Failure> {
    let since = since(args.since.as_deref())?;
    let mut costs = ws.cost(&args.selection, since, args.rollup)?;
    sort(&mut costs, args.sort);
    let mut out = crate::output::stdout();
    match args.format {
        Format::Json => render_json(&costs, &mut out)?,
        Format::Text => render_text(&costs, args.rollup, &mut out)?,
    }
    out.flush()?;
    Ok(0)
}

/// Puts `costs` (in dependency order) in the order asked for: the largest
/// first, of the roll-up when there is one.
fn sort(costs: &mut [AssetCost], by: CostSort) {
    let key = |c: &AssetCost| {
        let f = c.rollup.as_ref().unwrap_or(&c.own);
        match by {
            CostSort::Name => 0.0,
            CostSort::Cost => f.cost_usd,
            CostSort::Cpu => f.cpu_seconds,
            CostSort::Read => f.bytes_read as f64,
        }
    };
    if by != CostSort::Name {
        costs.sort_by(|a, b| key(b).total_cmp(&key(a)));
    }
}

/// The costs as JSON: an array of the CLI's [`json::AssetCost`], built
/// from the engine's [`AssetCost`]s.
pub(crate) fn render_json(costs: &[AssetCost], out: &mut impl Write) -> Result<(), Failure> {
    let costs: Vec<json::AssetCost<'_>> = costs.iter().map(json::AssetCost::from).collect();
    print_json(&costs, out)
}

/// The wire shape of `cairn cost --format json`.
mod json {
    use serde::Serialize;

    /// The cost of one asset: its own, and with `--rollup` that of it and
    /// everything upstream.
    #[derive(Serialize)]
    pub(super) struct AssetCost<'a> {
        asset: &'a str,
        own: Figures,
        rollup: Option<Figures>,
        rollup_assets: &'a [String],
    }

    impl<'a> From<&'a cairn_engine::AssetCost> for AssetCost<'a> {
        fn from(c: &'a cairn_engine::AssetCost) -> Self {
            AssetCost {
                asset: &c.asset,
                own: (&c.own).into(),
                rollup: c.rollup.as_ref().map(Figures::from),
                rollup_assets: &c.rollup_assets,
            }
        }
    }

    /// Measured usage and money over a set of materializations.
    #[derive(Serialize)]
    struct Figures {
        materializations: u64,
        wall_seconds: f64,
        cpu_seconds: f64,
        bytes_read: u64,
        bytes_written: u64,
        requests: u64,
        peak_memory_bytes: u64,
        cost_usd: f64,
    }

    impl From<&cairn_engine::CostFigures> for Figures {
        fn from(f: &cairn_engine::CostFigures) -> Self {
            Figures {
                materializations: f.materializations,
                wall_seconds: f.wall_seconds,
                cpu_seconds: f.cpu_seconds,
                bytes_read: f.bytes_read,
                bytes_written: f.bytes_written,
                requests: f.requests,
                peak_memory_bytes: f.peak_memory_bytes,
                cost_usd: f.cost_usd,
            }
        }
    }
}

/// The costs as a table, one row per asset; with `rollup`, a last column
/// with the cost including everything upstream.
pub(crate) fn render_text(
    costs: &[AssetCost],
    rollup: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let width = costs
        .iter()
        .map(|c| c.asset.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:<width$}  {:>5}  {:>9}  {:>9}  {:>10}  {:>10}  {:>8}  {:>12}{}",
        "ASSET",
        "MATS",
        "WALL",
        "CPU",
        "READ",
        "WRITTEN",
        "REQUESTS",
        "COST USD",
        if rollup { "  ROLLUP USD" } else { "" }
    )?;
    for c in costs {
        let f = &c.own;
        let rollup = c
            .rollup
            .as_ref()
            .map(|r| format!("  {:>10.6}", r.cost_usd))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<width$}  {:>5}  {:>8.2}s  {:>8.3}s  {:>10}  {:>10}  {:>8}  {:>12.6}{rollup}",
            c.asset,
            f.materializations,
            f.wall_seconds,
            f.cpu_seconds,
            bytes(f.bytes_read),
            bytes(f.bytes_written),
            f.requests,
            f.cost_usd
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use cairn_engine::{AssetCost, CostFigures};

    use super::{render_json, render_text, sort};
    use crate::args::CostSort;
    use crate::commands::testing::{json, rendered};

    fn figures(
        materializations: u64,
        wall_seconds: f64,
        cpu_seconds: f64,
        bytes_read: u64,
        bytes_written: u64,
        requests: u64,
        cost_usd: f64,
    ) -> CostFigures {
        CostFigures {
            materializations,
            wall_seconds,
            cpu_seconds,
            bytes_read,
            bytes_written,
            requests,
            peak_memory_bytes: 11_223_040,
            cost_usd,
        }
    }

    /// The warehouse's shape: two staging assets, a mart reading both;
    /// with `rollup`, each with everything upstream of it.
    fn costs(rollup: bool) -> Vec<AssetCost> {
        let stg_orders = figures(3, 0.094, 0.0121, 90_828, 7_577, 8, 0.000_004_2);
        let stg_payments = figures(3, 0.061, 0.0093, 120_211, 6_034, 9, 0.000_003_9);
        let orders = figures(1, 1.25, 0.9876, 13_611, 9_807, 25, 0.000_131);
        let orders_rollup = CostFigures {
            materializations: 7,
            wall_seconds: 1.405,
            cpu_seconds: 1.009,
            bytes_read: 224_650,
            bytes_written: 23_418,
            requests: 42,
            peak_memory_bytes: 11_223_040,
            cost_usd: 0.000_139_1,
        };
        let cost =
            |asset: &str, own: &CostFigures, up: Option<CostFigures>, of: &[&str]| AssetCost {
                asset: asset.to_owned(),
                own: own.clone(),
                rollup: if rollup { up } else { None },
                rollup_assets: if rollup {
                    of.iter().map(|a| (*a).to_owned()).collect()
                } else {
                    Vec::new()
                },
            };
        vec![
            cost("stg_orders", &stg_orders, Some(stg_orders.clone()), &[]),
            cost(
                "stg_payments",
                &stg_payments,
                Some(stg_payments.clone()),
                &[],
            ),
            cost(
                "orders",
                &orders,
                Some(orders_rollup),
                &["stg_orders", "stg_payments"],
            ),
        ]
    }

    #[test]
    fn in_dependency_order() {
        expect![[r#"
            ASSET          MATS       WALL        CPU        READ     WRITTEN  REQUESTS      COST USD
            stg_orders        3      0.09s     0.012s    88.7 KiB     7.4 KiB         8      0.000004
            stg_payments      3      0.06s     0.009s   117.4 KiB     5.9 KiB         9      0.000004
            orders            1      1.25s     0.988s    13.3 KiB     9.6 KiB        25      0.000131
        "#]]
        .assert_eq(&rendered(|out| render_text(&costs(false), false, out)));
    }

    /// With `--rollup --sort cost`: the most expensive roll-up first.
    #[test]
    fn rolled_up_most_expensive_first() {
        let mut costs = costs(true);
        sort(&mut costs, CostSort::Cost);
        expect![[r#"
            ASSET          MATS       WALL        CPU        READ     WRITTEN  REQUESTS      COST USD  ROLLUP USD
            orders            1      1.25s     0.988s    13.3 KiB     9.6 KiB        25      0.000131    0.000139
            stg_orders        3      0.09s     0.012s    88.7 KiB     7.4 KiB         8      0.000004    0.000004
            stg_payments      3      0.06s     0.009s   117.4 KiB     5.9 KiB         9      0.000004    0.000004
        "#]]
        .assert_eq(&rendered(|out| render_text(&costs, true, out)));
    }

    #[test]
    fn nothing_selected() {
        expect![[r#"
            ASSET   MATS       WALL        CPU        READ     WRITTEN  REQUESTS      COST USD  ROLLUP USD
        "#]]
        .assert_eq(&rendered(|out| render_text(&[], true, out)));
    }

    /// The JSON: each asset's own figures, `rollup: null` and no roll-up
    /// assets without `--rollup`.
    #[test]
    fn json_in_dependency_order() {
        expect![[r#"
            [
              {
                "asset": "stg_orders",
                "own": {
                  "materializations": 3,
                  "wall_seconds": 0.094,
                  "cpu_seconds": 0.0121,
                  "bytes_read": 90828,
                  "bytes_written": 7577,
                  "requests": 8,
                  "peak_memory_bytes": 11223040,
                  "cost_usd": 4.2e-6
                },
                "rollup": null,
                "rollup_assets": []
              },
              {
                "asset": "stg_payments",
                "own": {
                  "materializations": 3,
                  "wall_seconds": 0.061,
                  "cpu_seconds": 0.0093,
                  "bytes_read": 120211,
                  "bytes_written": 6034,
                  "requests": 9,
                  "peak_memory_bytes": 11223040,
                  "cost_usd": 3.9e-6
                },
                "rollup": null,
                "rollup_assets": []
              },
              {
                "asset": "orders",
                "own": {
                  "materializations": 1,
                  "wall_seconds": 1.25,
                  "cpu_seconds": 0.9876,
                  "bytes_read": 13611,
                  "bytes_written": 9807,
                  "requests": 25,
                  "peak_memory_bytes": 11223040,
                  "cost_usd": 0.000131
                },
                "rollup": null,
                "rollup_assets": []
              }
            ]
        "#]]
        .assert_eq(&json(|out| render_json(&costs(false), out)));
    }

    /// The JSON with `--rollup --sort cost`.
    #[test]
    fn json_rolled_up() {
        let mut costs = costs(true);
        sort(&mut costs, CostSort::Cost);
        expect![[r#"
            [
              {
                "asset": "orders",
                "own": {
                  "materializations": 1,
                  "wall_seconds": 1.25,
                  "cpu_seconds": 0.9876,
                  "bytes_read": 13611,
                  "bytes_written": 9807,
                  "requests": 25,
                  "peak_memory_bytes": 11223040,
                  "cost_usd": 0.000131
                },
                "rollup": {
                  "materializations": 7,
                  "wall_seconds": 1.405,
                  "cpu_seconds": 1.009,
                  "bytes_read": 224650,
                  "bytes_written": 23418,
                  "requests": 42,
                  "peak_memory_bytes": 11223040,
                  "cost_usd": 0.0001391
                },
                "rollup_assets": [
                  "stg_orders",
                  "stg_payments"
                ]
              },
              {
                "asset": "stg_orders",
                "own": {
                  "materializations": 3,
                  "wall_seconds": 0.094,
                  "cpu_seconds": 0.0121,
                  "bytes_read": 90828,
                  "bytes_written": 7577,
                  "requests": 8,
                  "peak_memory_bytes": 11223040,
                  "cost_usd": 4.2e-6
                },
                "rollup": {
                  "materializations": 3,
                  "wall_seconds": 0.094,
                  "cpu_seconds": 0.0121,
                  "bytes_read": 90828,
                  "bytes_written": 7577,
                  "requests": 8,
                  "peak_memory_bytes": 11223040,
                  "cost_usd": 4.2e-6
                },
                "rollup_assets": []
              },
              {
                "asset": "stg_payments",
                "own": {
                  "materializations": 3,
                  "wall_seconds": 0.061,
                  "cpu_seconds": 0.0093,
                  "bytes_read": 120211,
                  "bytes_written": 6034,
                  "requests": 9,
                  "peak_memory_bytes": 11223040,
                  "cost_usd": 3.9e-6
                },
                "rollup": {
                  "materializations": 3,
                  "wall_seconds": 0.061,
                  "cpu_seconds": 0.0093,
                  "bytes_read": 120211,
                  "bytes_written": 6034,
                  "requests": 9,
                  "peak_memory_bytes": 11223040,
                  "cost_usd": 3.9e-6
                },
                "rollup_assets": []
              }
            ]
        "#]]
        .assert_eq(&json(|out| render_json(&costs, out)));
        expect![[r#"
            []
        "#]]
        .assert_eq(&json(|out| render_json(&[], out)));
    }
}
