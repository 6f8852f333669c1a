//! The asset graph: sources and assets as nodes, edges from each upstream
//! to the assets that read it (petgraph). Built once per command.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use petgraph::Direction;
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, Reversed, Walker};

use cairn_assets::checks::CheckKind;
use cairn_assets::{Diagnostic, Project, ProjectError, SqlAsset};

use crate::model::units::FastMap;

/// Whether a node is a source or an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Declared source files.
    Source,
    /// A SQL asset.
    Asset,
}

/// The dependency graph of a project, acyclic by construction.
#[derive(Debug, Clone)]
pub struct AssetGraph {
    graph: DiGraph<(String, NodeKind), ()>,
    index: FastMap<String, NodeIndex>,
    /// Every node in dependency order (upstream first; ties by name).
    order: Vec<NodeIndex>,
    /// Each node's place in `order`, by node index.
    position: Vec<usize>,
    /// Every node sorted by name.
    by_name: Vec<NodeIndex>,
}

/// What lies around one node of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbourhood {
    /// Everything it reads from, transitively (when asked for).
    pub upstream: BTreeSet<String>,
    /// Everything that reads from it, transitively (when asked for).
    pub downstream: BTreeSet<String>,
    /// `(from, to)` edges among those nodes and itself, in node order.
    pub edges: Vec<(String, String)>,
}

/// An asset or source a `relationships` check reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipTarget {
    /// Its name.
    pub name: String,
    /// Asset or source.
    pub kind: NodeKind,
    /// Whether it is also an upstream of the checked asset (already read).
    pub upstream: bool,
    /// Whether it is kept up to date before the check runs: an asset that
    /// is not an upstream and does not read the checked asset.
    pub refresh_first: bool,
}

impl AssetGraph {
    /// Builds the graph; a cycle is reported with the files and lines that
    /// close it.
    pub fn build(project: &Project) -> Result<AssetGraph, ProjectError> {
        let nodes = project.sources.len() + project.assets.len();
        let edges = project.assets.values().map(|a| a.upstream.len()).sum();
        let mut graph = DiGraph::with_capacity(nodes, edges);
        let mut index = FastMap::with_capacity_and_hasher(nodes, Default::default());
        for name in project.sources.keys() {
            index.insert(
                name.clone(),
                graph.add_node((name.clone(), NodeKind::Source)),
            );
        }
        for name in project.assets.keys() {
            index.insert(
                name.clone(),
                graph.add_node((name.clone(), NodeKind::Asset)),
            );
        }
        for asset in project.assets.values() {
            // Reading its own earlier partitions (validated by the loader)
            // orders partitions in time, not assets: no edge.
            for up in asset.upstream.iter().filter(|u| **u != asset.name) {
                if let (Some(&from), Some(&to)) = (index.get(up), index.get(&asset.name)) {
                    graph.add_edge(from, to, ());
                }
            }
        }
        let mut by_name: Vec<NodeIndex> = graph.node_indices().collect();
        by_name.sort_unstable_by(|a, b| graph[*a].0.cmp(&graph[*b].0));
        let mut rank = vec![0; nodes];
        for (r, n) in by_name.iter().enumerate() {
            rank[n.index()] = r;
        }
        // Deterministic order: Kahn's algorithm taking the smallest name
        // first. Nodes left over lie on a cycle (or after one).
        let mut indegree: Vec<usize> = graph
            .node_indices()
            .map(|n| graph.neighbors_directed(n, Direction::Incoming).count())
            .collect();
        let mut ready: BinaryHeap<Reverse<usize>> = graph
            .node_indices()
            .filter(|n| indegree[n.index()] == 0)
            .map(|n| Reverse(rank[n.index()]))
            .collect();
        let mut order = Vec::with_capacity(nodes);
        let mut position = vec![usize::MAX; nodes];
        while let Some(Reverse(r)) = ready.pop() {
            let n = by_name[r];
            position[n.index()] = order.len();
            order.push(n);
            for next in graph.neighbors_directed(n, Direction::Outgoing) {
                let d = &mut indegree[next.index()];
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(rank[next.index()]));
                }
            }
        }
        if order.len() < nodes {
            return Err(cycle_error(&graph, project));
        }
        Ok(AssetGraph {
            graph,
            index,
            order,
            position,
            by_name,
        })
    }

    /// The place of `name` in [`AssetGraph::order`] (`usize::MAX` when it is
    /// not in the graph).
    pub fn position(&self, name: &str) -> usize {
        self.index
            .get(name)
            .map_or(usize::MAX, |n| self.position[n.index()])
    }

    /// Sorts `items` in execution order: their assets in dependency order
    /// (unknown names last), then by partition key. `unit` gives an item's
    /// asset and key.
    pub fn sort_in_execution_order<T>(
        &self,
        items: &mut Vec<T>,
        unit: impl Fn(&T) -> (&str, &str),
    ) {
        let mut keyed: Vec<(usize, T)> = items
            .drain(..)
            .map(|item| (self.position(unit(&item).0), item))
            .collect();
        keyed.sort_by(|(pa, a), (pb, b)| pa.cmp(pb).then_with(|| unit(a).1.cmp(unit(b).1)));
        items.extend(keyed.into_iter().map(|(_, item)| item));
    }

    /// Every node name in dependency order.
    pub fn order(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|n| self.graph[*n].0.as_str())
    }

    /// Asset names (not sources) in dependency order.
    pub fn assets_in_order(&self) -> impl Iterator<Item = &str> {
        self.order
            .iter()
            .filter(|n| self.graph[**n].1 == NodeKind::Asset)
            .map(|n| self.graph[*n].0.as_str())
    }

    /// Whether the graph has a node called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The kind of `name`.
    pub fn kind(&self, name: &str) -> Option<NodeKind> {
        self.index.get(name).map(|n| self.graph[*n].1)
    }

    /// Every node name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.iter().map(|n| self.graph[*n].0.as_str())
    }

    /// Direct upstreams of `name`, sorted.
    pub fn upstream(&self, name: &str) -> Vec<&str> {
        self.neighbors(name, Direction::Incoming)
    }

    /// Direct downstreams of `name`, sorted.
    pub fn downstream(&self, name: &str) -> Vec<&str> {
        self.neighbors(name, Direction::Outgoing)
    }

    fn neighbors(&self, name: &str, dir: Direction) -> Vec<&str> {
        let Some(&n) = self.index.get(name) else {
            return Vec::new();
        };
        let mut v: Vec<&str> = self
            .graph
            .neighbors_directed(n, dir)
            .map(|m| self.graph[m].0.as_str())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Everything upstream of `name` (transitively), excluding itself.
    pub fn ancestors(&self, name: &str) -> BTreeSet<String> {
        let Some(&n) = self.index.get(name) else {
            return BTreeSet::new();
        };
        Bfs::new(Reversed(&self.graph), n)
            .iter(Reversed(&self.graph))
            .filter(|m| *m != n)
            .map(|m| self.graph[m].0.clone())
            .collect()
    }

    /// Everything downstream of `name` (transitively), excluding itself.
    pub fn descendants(&self, name: &str) -> BTreeSet<String> {
        let Some(&n) = self.index.get(name) else {
            return BTreeSet::new();
        };
        Bfs::new(&self.graph, n)
            .iter(&self.graph)
            .filter(|m| *m != n)
            .map(|m| self.graph[m].0.clone())
            .collect()
    }

    /// The nodes upstream and/or downstream of `name` (transitively) and
    /// the edges among them and `name` itself, for lineage views.
    pub fn neighbourhood(&self, name: &str, upstream: bool, downstream: bool) -> Neighbourhood {
        let up = if upstream {
            self.ancestors(name)
        } else {
            BTreeSet::new()
        };
        let down = if downstream {
            self.descendants(name)
        } else {
            BTreeSet::new()
        };
        let mut nodes: BTreeSet<&str> = up.iter().chain(&down).map(String::as_str).collect();
        nodes.insert(name);
        let mut edges = Vec::new();
        for n in &nodes {
            for d in self.downstream(n) {
                if nodes.contains(d) {
                    edges.push(((*n).to_owned(), d.to_owned()));
                }
            }
        }
        Neighbourhood {
            upstream: up,
            downstream: down,
            edges,
        }
    }

    /// What the `relationships` checks of `asset` read besides its own
    /// output — the one rule every stage follows (planning, snapshot scope,
    /// scheduling, the tables a build registers).
    pub fn relationship_targets(&self, asset: &SqlAsset) -> Vec<RelationshipTarget> {
        let mut descendants: Option<BTreeSet<String>> = None;
        let mut out: Vec<RelationshipTarget> = Vec::new();
        for check in &asset.checks {
            let CheckKind::Relationships { to_asset, .. } = &check.kind else {
                continue;
            };
            if to_asset == &asset.name || out.iter().any(|t| &t.name == to_asset) {
                continue;
            }
            let Some(kind) = self.kind(to_asset) else {
                continue;
            };
            let upstream = asset.upstream.contains(to_asset);
            // A target that reads this asset cannot be refreshed first:
            // it is checked against its current version.
            let reads_this = kind == NodeKind::Asset
                && descendants
                    .get_or_insert_with(|| self.descendants(&asset.name))
                    .contains(to_asset);
            out.push(RelationshipTarget {
                name: to_asset.clone(),
                kind,
                upstream,
                refresh_first: kind == NodeKind::Asset && !upstream && !reads_this,
            });
        }
        out
    }
}

/// Names one concrete cycle (a -> b -> a) and where each edge is written.
fn cycle_error(graph: &DiGraph<(String, NodeKind), ()>, project: &Project) -> ProjectError {
    let mut diagnostics = Vec::new();
    let mut components = kosaraju_scc(graph);
    components.sort_by_key(|c| c.iter().map(|n| graph[*n].0.clone()).min());
    for component in components {
        let is_cycle = component.len() > 1
            || component
                .first()
                .is_some_and(|n| graph.contains_edge(*n, *n));
        if !is_cycle {
            continue;
        }
        let members: BTreeSet<NodeIndex> = component.iter().copied().collect();
        let Some(&start) = component.iter().min_by_key(|n| graph[**n].0.clone()) else {
            continue;
        };
        // Walk downstream inside the component until we are back at start.
        let mut path = vec![start];
        let mut current = start;
        for _ in 0..=members.len() {
            let mut next: Vec<NodeIndex> = graph
                .neighbors_directed(current, Direction::Outgoing)
                .filter(|m| members.contains(m))
                .collect();
            next.sort_by_key(|m| (*m != start, graph[*m].0.clone()));
            let Some(&step) = next.iter().find(|m| **m == start || !path.contains(m)) else {
                break;
            };
            if step == start {
                break;
            }
            path.push(step);
            current = step;
        }
        let names: Vec<&str> = path.iter().map(|n| graph[*n].0.as_str()).collect();
        // Report at the file of the first asset, at its reference to the last.
        let first = names.first().copied().unwrap_or_default();
        let last = names.last().copied().unwrap_or_default();
        let (file, line) = match project.assets.get(first) {
            Some(a) => (a.file.clone(), a.reference_lines.get(last).copied()),
            None => (std::path::PathBuf::from("assets"), None),
        };
        let mut chain = names.join(" -> ");
        chain.push_str(" -> ");
        chain.push_str(first);
        diagnostics.push(
            Diagnostic::new(file, line, format!("dependency cycle: {chain}")).with_hint(format!(
                "an asset cannot read itself, directly or through others; remove the reference to `{last}` here or break the chain elsewhere"
            )),
        );
    }
    if diagnostics.is_empty() {
        diagnostics.push(Diagnostic::new(
            "assets",
            None,
            "dependency cycle between assets",
        ));
    }
    ProjectError { diagnostics }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    /// The graph of a project of `assets` (name, SQL) reading source `s`.
    fn graph_of(assets: &[(&str, &str)]) -> AssetGraph {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cairn.toml"),
            "[sources.s]\npath = \"s.csv\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("s.csv"), "x\n1\n").unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        for (name, sql) in assets {
            std::fs::write(dir.path().join(format!("assets/{name}.sql")), sql).unwrap();
        }
        let project = Project::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        AssetGraph::build(&project).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn order_is_upstream_first_then_by_name_and_units_sort_by_it() {
        let graph = graph_of(&[
            ("a", "select x from c"),
            ("b", "select x from s"),
            ("c", "select x from s"),
            ("d", "select a.x from a join b on a.x = b.x"),
        ]);
        assert_eq!(graph.names().collect::<Vec<_>>(), ["a", "b", "c", "d", "s"]);
        assert_eq!(graph.order().collect::<Vec<_>>(), ["s", "b", "c", "a", "d"]);
        assert_eq!(graph.position("c"), 2);
        assert_eq!(graph.position("nowhere"), usize::MAX);
        let mut units = vec![
            ("nowhere", "k"),
            ("d", ""),
            ("c", "2"),
            ("a", ""),
            ("c", "1"),
        ];
        graph.sort_in_execution_order(&mut units, |&(a, k)| (a, k));
        assert_eq!(
            units,
            [
                ("c", "1"),
                ("c", "2"),
                ("a", ""),
                ("d", ""),
                ("nowhere", "k")
            ]
        );
    }

    #[test]
    fn a_cycle_names_its_members() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cairn.toml"), "").unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("assets/a.sql"), "select x from b").unwrap();
        std::fs::write(dir.path().join("assets/b.sql"), "select x from a").unwrap();
        std::fs::write(dir.path().join("assets/c.sql"), "select x from a").unwrap();
        let project = Project::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let err = AssetGraph::build(&project).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("dependency cycle: a -> b -> a")),
            "{err:?}"
        );
    }
}
