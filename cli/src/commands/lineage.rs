//! `cairn lineage`: the asset graph around one asset (what it reads, what
//! reads it) as trees or JSON edges; with `--column`, the lineage of one
//! output column down to the source columns.

use std::collections::BTreeSet;
use std::io::Write;

use serde::Serialize;

use cairn_engine::{ColumnNode, EngineError, LineageKind, Neighbourhood, NodeKind, Workspace};

use crate::Failure;
use crate::args::{Format, LineageArgs};
use crate::commands::print_json;

/// Runs `cairn lineage ASSET`.
pub(crate) fn run(ws: &Workspace, args: LineageArgs) -> Result<u8, Failure> {
    let around = around(ws, &args.asset, args.upstream, args.downstream)?;
    print(&around, args.format)
}

/// Prints the graph around an asset (`cairn lineage`, locally or through
/// a server).
pub(crate) fn print(around: &Around, format: Format) -> Result<u8, Failure> {
    let mut out = crate::output::stdout();
    match format {
        Format::Json => render_json(around, &mut out)?,
        Format::Text => render_text(around, &mut out)?,
    }
    out.flush()?;
    Ok(0)
}

/// Runs `cairn lineage ASSET --column COLUMN`.
pub(crate) async fn run_columns(ws: &Workspace, args: LineageArgs) -> Result<u8, Failure> {
    let column = args.column.unwrap_or_default();
    let tree = ws.column_lineage(&args.asset, &column, args.depth).await?;
    print_columns(&tree, args.format)
}

/// Prints a column's lineage (`cairn lineage --column`, locally or
/// through a server).
pub(crate) fn print_columns(tree: &ColumnNode, format: Format) -> Result<u8, Failure> {
    let mut out = crate::output::stdout();
    match format {
        Format::Json => render_columns_json(tree, &mut out)?,
        Format::Text => render_columns_text(tree, &mut out)?,
    }
    out.flush()?;
    Ok(0)
}

/// What `cairn lineage ASSET` shows: the graph around one node, taken
/// out of the asset graph (so that a server can send it as it is).
pub(crate) struct Around {
    /// The asset or source asked about.
    pub asset: String,
    /// Whether to show what it reads from.
    pub upstream: bool,
    /// Whether to show what reads from it.
    pub downstream: bool,
    /// When the asset reads its own earlier partitions: how many periods
    /// back, nearest and farthest.
    pub own_window: Option<(i64, i64)>,
    /// The nodes upstream and downstream of it (as asked for) and the
    /// edges among them and the asset.
    pub nodes: Neighbourhood,
    /// Which of those nodes (the asset included) are sources.
    pub sources: BTreeSet<String>,
}

impl Around {
    /// The direct upstreams or downstreams of `node` among the edges,
    /// sorted as the graph sorts them.
    fn next(&self, node: &str, upstream: bool) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .nodes
            .edges
            .iter()
            .filter_map(|(from, to)| {
                if upstream {
                    (to == node).then_some(from.as_str())
                } else {
                    (from == node).then_some(to.as_str())
                }
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Which directions `--upstream` and `--downstream` show: both unless
/// exactly one is asked for.
pub(crate) fn directions(upstream: bool, downstream: bool) -> (bool, bool) {
    match (upstream, downstream) {
        (true, false) => (true, false),
        (false, true) => (false, true),
        _ => (true, true),
    }
}

/// The graph around `asset`, which must be in it; both directions unless
/// exactly one of `upstream` and `downstream` is asked for.
pub(crate) fn around(
    ws: &Workspace,
    asset: &str,
    upstream: bool,
    downstream: bool,
) -> Result<Around, EngineError> {
    let graph = ws.graph();
    if !graph.contains(asset) {
        let hint = cairn_assets::closest_name(asset, graph.names())
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        return Err(EngineError::Usage(format!("unknown asset `{asset}`{hint}")));
    }
    let (upstream, downstream) = directions(upstream, downstream);
    let own_window = match ws.project().assets.get(asset) {
        Some(a) if a.reads_itself() => match a.mapping(&a.name) {
            cairn_assets::partitions::PartitionMapping::Window { offset, lag } => {
                Some((-offset, -offset + i64::from(lag)))
            }
            _ => None,
        },
        _ => None,
    };
    let nodes = graph.neighbourhood(asset, upstream, downstream);
    let sources = std::iter::once(asset)
        .chain(nodes.upstream.iter().map(String::as_str))
        .chain(nodes.downstream.iter().map(String::as_str))
        .filter(|n| graph.kind(n) == Some(NodeKind::Source))
        .map(str::to_owned)
        .collect();
    Ok(Around {
        asset: asset.to_owned(),
        upstream,
        downstream,
        own_window,
        nodes,
        sources,
    })
}

/// The graph around the asset as JSON: the nodes upstream and downstream
/// of it and the edges between all of them.
pub(crate) fn render_json(around: &Around, out: &mut impl Write) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Edge {
        from: String,
        to: String,
    }
    #[derive(Serialize)]
    struct Out {
        asset: String,
        upstream: Vec<String>,
        downstream: Vec<String>,
        edges: Vec<Edge>,
    }
    let nodes = &around.nodes;
    let edges = nodes
        .edges
        .iter()
        .map(|(from, to)| Edge {
            from: from.clone(),
            to: to.clone(),
        })
        .collect();
    print_json(
        &Out {
            asset: around.asset.clone(),
            upstream: nodes.upstream.iter().cloned().collect(),
            downstream: nodes.downstream.iter().cloned().collect(),
            edges,
        },
        out,
    )
}

/// The graph around the asset as text: the asset, how it reads itself,
/// then the trees of what it reads from and of what reads it.
pub(crate) fn render_text(around: &Around, out: &mut impl Write) -> std::io::Result<()> {
    let label = |n: &str| {
        if around.sources.contains(n) {
            format!("{n} (source)")
        } else {
            n.to_owned()
        }
    };
    writeln!(out, "{}", label(&around.asset))?;
    if let Some((last, first)) = around.own_window {
        let periods = if first == last {
            format!("{last}")
        } else {
            format!("{last} to {first}")
        };
        writeln!(
            out,
            "reads its own earlier partitions ({periods} period(s) back)"
        )?;
    }
    if around.upstream {
        writeln!(out, "upstream (reads from):")?;
        tree(out, &around.asset, &|n| around.next(n, true), &label, "  ")?;
    }
    if around.downstream {
        writeln!(out, "downstream (read by):")?;
        tree(out, &around.asset, &|n| around.next(n, false), &label, "  ")?;
    }
    Ok(())
}

fn tree<'g>(
    out: &mut impl Write,
    node: &str,
    next: &dyn Fn(&str) -> Vec<&'g str>,
    label: &dyn Fn(&str) -> String,
    indent: &str,
) -> std::io::Result<()> {
    let children = next(node);
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        writeln!(
            out,
            "{indent}{}{}",
            if last { "└── " } else { "├── " },
            label(child)
        )?;
        let deeper = format!("{indent}{}", if last { "    " } else { "│   " });
        tree(out, child, next, label, &deeper)?;
    }
    Ok(())
}

/// The column lineage as JSON: the CLI's [`Column`] tree, built from the
/// engine's [`ColumnNode`] tree.
pub(crate) fn render_columns_json(tree: &ColumnNode, out: &mut impl Write) -> Result<(), Failure> {
    print_json(&Column::from(tree), out)
}

/// One column in the JSON of `cairn lineage --column`, with the columns it
/// is computed from.
#[derive(Serialize)]
struct Column<'a> {
    table: &'a str,
    column: &'a str,
    /// How the column below uses it (`null` for the column asked about).
    kind: Option<Kind>,
    is_source: bool,
    is_dimension: bool,
    earlier_partitions: bool,
    upstream: Vec<Column<'a>>,
    /// Its upstream is where this column first appears in the tree.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    shown_above: bool,
}

impl<'a> From<&'a ColumnNode> for Column<'a> {
    fn from(n: &'a ColumnNode) -> Self {
        Column {
            table: &n.table,
            column: &n.column,
            kind: n.kind.map(Kind::from),
            is_source: n.is_source,
            is_dimension: n.is_dimension,
            earlier_partitions: n.earlier_partitions,
            upstream: n.upstream.iter().map(Column::from).collect(),
            shown_above: n.shown_above,
        }
    }
}

/// How a column is derived from one it reads.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Direct,
    Expression,
    Aggregate,
    Window,
    FilterOrJoinKey,
}

impl From<LineageKind> for Kind {
    fn from(k: LineageKind) -> Self {
        match k {
            LineageKind::Direct => Kind::Direct,
            LineageKind::Expression => Kind::Expression,
            LineageKind::Aggregate => Kind::Aggregate,
            LineageKind::Window => Kind::Window,
            LineageKind::FilterOrJoinKey => Kind::FilterOrJoinKey,
        }
    }
}

impl Kind {
    /// The name the JSON gives it, which the text shows too.
    fn as_str(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Expression => "expression",
            Kind::Aggregate => "aggregate",
            Kind::Window => "window",
            Kind::FilterOrJoinKey => "filter_or_join_key",
        }
    }
}

/// The column lineage as an indented tree: `table.column`, whether it is
/// a source, a partition dimension or the asset's own earlier partitions,
/// and how the column below uses it.
pub(crate) fn render_columns_text(tree: &ColumnNode, out: &mut impl Write) -> std::io::Result<()> {
    column_node(tree, "", out)
}

fn column_node(n: &ColumnNode, indent: &str, out: &mut impl Write) -> std::io::Result<()> {
    let kind = n
        .kind
        .map(|k| format!("  ({})", Kind::from(k).as_str()))
        .unwrap_or_default();
    let source = if n.is_source {
        " [source]"
    } else if n.is_dimension {
        " [partition dimension]"
    } else if n.earlier_partitions {
        " [earlier partitions]"
    } else {
        ""
    };
    let above = if n.shown_above {
        "  (its upstream: above)"
    } else {
        ""
    };
    writeln!(out, "{indent}{}.{}{source}{kind}{above}", n.table, n.column)?;
    for u in &n.upstream {
        column_node(u, &format!("{indent}  "), out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use cairn_engine::LineageKind;

    use super::{Kind, around, render_columns_json, render_columns_text, render_json, render_text};
    use crate::args::{Format, LineageArgs};
    use crate::commands::testing::{json, open, rendered, runtime, shop};

    /// `cairn lineage ASSET [--upstream | --downstream]` on the shop, as
    /// text or JSON.
    fn lineage_as(asset: &str, upstream: bool, downstream: bool, format: Format) -> String {
        let dir = shop();
        let ws = open(dir.path());
        let args = LineageArgs {
            asset: asset.to_owned(),
            upstream,
            downstream,
            column: None,
            depth: None,
            format,
        };
        let around = around(&ws, &args.asset, args.upstream, args.downstream)
            .unwrap_or_else(|_| panic!("no lineage of {asset}"));
        match format {
            Format::Text => rendered(|out| render_text(&around, out)),
            Format::Json => json(|out| render_json(&around, out)),
        }
    }

    fn lineage(asset: &str, upstream: bool, downstream: bool) -> String {
        lineage_as(asset, upstream, downstream, Format::Text)
    }

    /// Both directions, around an asset in the middle.
    #[test]
    fn both_ways() {
        expect![[r#"
            regions
            upstream (reads from):
              └── sales (source)
            downstream (read by):
              ├── big_regions
              ├── top
              └── total
        "#]]
        .assert_eq(&lineage("regions", false, false));
    }

    /// An asset reading its own earlier partitions says so.
    #[test]
    fn reading_its_own_earlier_partitions() {
        expect![[r#"
            running
            reads its own earlier partitions (1 period(s) back)
            upstream (reads from):
              └── daily
                  └── sales (source)
        "#]]
        .assert_eq(&lineage("running", true, false));
    }

    /// Everything reading a source, as a tree.
    #[test]
    fn downstream_of_a_source() {
        expect![[r#"
            sales (source)
            downstream (read by):
              ├── daily
              │   └── running
              └── regions
                  ├── big_regions
                  ├── top
                  └── total
        "#]]
        .assert_eq(&lineage("sales", false, true));
    }

    /// A column walked to the source columns, through the asset's own
    /// earlier partitions.
    #[test]
    fn a_column() {
        let dir = shop();
        let ws = open(dir.path());
        let tree = runtime()
            .block_on(ws.column_lineage("running", "total", None))
            .unwrap_or_else(|e| panic!("{e}"));
        expect![[r#"
            running.total
              daily.amount  (expression)
                sales.amount [source]  (aggregate)
              running.total [earlier partitions]  (aggregate)
        "#]]
        .assert_eq(&rendered(|out| render_columns_text(&tree, out)));
    }

    /// The JSON of the graph around an asset: the nodes up- and downstream
    /// of it and the edges between them all.
    #[test]
    fn json_both_ways() {
        expect![[r#"
            {
              "asset": "regions",
              "upstream": [
                "sales"
              ],
              "downstream": [
                "big_regions",
                "top",
                "total"
              ],
              "edges": [
                {
                  "from": "regions",
                  "to": "big_regions"
                },
                {
                  "from": "regions",
                  "to": "top"
                },
                {
                  "from": "regions",
                  "to": "total"
                },
                {
                  "from": "sales",
                  "to": "regions"
                }
              ]
            }
        "#]]
        .assert_eq(&lineage_as("regions", false, false, Format::Json));
    }

    /// The JSON of one direction only.
    #[test]
    fn json_upstream_only() {
        expect![[r#"
            {
              "asset": "running",
              "upstream": [
                "daily",
                "sales"
              ],
              "downstream": [],
              "edges": [
                {
                  "from": "daily",
                  "to": "running"
                },
                {
                  "from": "sales",
                  "to": "daily"
                }
              ]
            }
        "#]]
        .assert_eq(&lineage_as("running", true, false, Format::Json));
    }

    /// The JSON of a column's lineage: each column with how the one below
    /// uses it (`null` at the top) and what it is read from.
    #[test]
    fn json_of_a_column() {
        let dir = shop();
        let ws = open(dir.path());
        let tree = runtime()
            .block_on(ws.column_lineage("running", "total", None))
            .unwrap_or_else(|e| panic!("{e}"));
        expect![[r#"
            {
              "table": "running",
              "column": "total",
              "kind": null,
              "is_source": false,
              "is_dimension": false,
              "earlier_partitions": false,
              "upstream": [
                {
                  "table": "daily",
                  "column": "amount",
                  "kind": "expression",
                  "is_source": false,
                  "is_dimension": false,
                  "earlier_partitions": false,
                  "upstream": [
                    {
                      "table": "sales",
                      "column": "amount",
                      "kind": "aggregate",
                      "is_source": true,
                      "is_dimension": false,
                      "earlier_partitions": false,
                      "upstream": []
                    }
                  ]
                },
                {
                  "table": "running",
                  "column": "total",
                  "kind": "aggregate",
                  "is_source": false,
                  "is_dimension": false,
                  "earlier_partitions": true,
                  "upstream": []
                }
              ]
            }
        "#]]
        .assert_eq(&json(|out| render_columns_json(&tree, out)));
    }

    /// Every kind's JSON name, which the text shows too.
    #[test]
    fn kind_names_are_the_json_names() {
        let kinds = [
            LineageKind::Direct,
            LineageKind::Expression,
            LineageKind::Aggregate,
            LineageKind::Window,
            LineageKind::FilterOrJoinKey,
        ]
        .map(Kind::from);
        for kind in kinds {
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::Value::from(kind.as_str()))
            );
        }
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        expect![[r#"
            direct
            expression
            aggregate
            window
            filter_or_join_key"#]]
        .assert_eq(&names.join("\n"));
    }
}
