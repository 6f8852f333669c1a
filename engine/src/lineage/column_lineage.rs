//! Column-level lineage: for every output column of a query, the base-table
//! columns it is computed from and how. Pure functions over DataFusion's
//! [`LogicalPlan`]; nothing is executed and no SQL text is inspected.
//!
//! Plan the SQL against schemas only (as [`crate::compile`] does: sources
//! and upstream assets registered as `EmptyTable`s) and pass the DataFrame's
//! `logical_plan()` to [`column_lineage`].
//!
//! # Semantics
//!
//! A *source* is a `(table, column)` pair read by a `TableScan`; `table` is
//! the bare table name of the scan (never a table alias, CTE name or
//! subquery alias, which are resolved through). Each output column lists
//! each source at most once, with one [`LineageKind`]:
//!
//! * [`LineageKind::Direct`]: the output *is* the base column, possibly
//!   renamed (`AS`), through table aliases, CTEs, subqueries in `FROM`,
//!   `DISTINCT`, `ORDER BY`/`LIMIT`, joins and (positionally) `UNION`.
//! * [`LineageKind::Expression`]: computed by a scalar expression: CASE,
//!   arithmetic, functions, `COALESCE`, comparisons and also a bare `CAST`
//!   (a cast changes the values' type, so it is not a pure copy).
//! * [`LineageKind::Aggregate`]: an argument of an aggregate function (also
//!   its `ORDER BY` within the call, e.g. `array_agg(x ORDER BY y)`).
//!   `count(*)` reads no column, so it has no value sources (only the
//!   row-influencing ones below).
//! * [`LineageKind::Window`]: an argument of a window function, and also its
//!   `PARTITION BY` / `ORDER BY` columns, since they determine the value
//!   (`row_number() OVER (PARTITION BY a ORDER BY b)` has sources `a`, `b`).
//!   An aggregate used as a window function (`sum(x) OVER ()`) is `Window`.
//! * [`LineageKind::FilterOrJoinKey`]: columns that only influence *which
//!   rows* appear: `WHERE`/`HAVING` predicates (including every column
//!   referenced inside `IN`/`EXISTS`/scalar subqueries there, and correlated
//!   outer columns), `JOIN` keys and non-equi join conditions, `GROUP BY`
//!   keys that do not reach the output, `DISTINCT ON` keys, an aggregate's or
//!   window's `FILTER (WHERE …)`, and `ORDER BY` keys when a `LIMIT`/`OFFSET`
//!   picks rows by that order (`ORDER BY` alone changes no row).
//!   Such columns are listed for **every** output column of the query, also
//!   of an enclosing query: a filter inside a CTE or a subquery in `FROM`
//!   restricts the rows of everything built on it, and a `UNION` branch's
//!   filter restricts the union's rows. A scalar subquery in the select list
//!   contributes its own filters only to the column it computes.
//!   A `GROUP BY` key that reaches the output (as itself or inside an
//!   expression) is *not* repeated as a `FilterOrJoinKey` of the other
//!   columns; one that does not reach the output (`SELECT sum(x) … GROUP BY
//!   k`, or a subquery's key dropped by the outer query) is.
//!
//! When a source reaches an output column along several paths, the
//! strongest kind wins: `Aggregate > Window > Expression > Direct >
//! FilterOrJoinKey`, so `FilterOrJoinKey` appears only for columns that do
//! not reach the output column's value in any other way. Along one path,
//! kinds only get stronger (`sum(x + 1)` is `Aggregate`, an alias of a
//! `CAST` is `Expression`), except that a filter-only column stays
//! `FilterOrJoinKey`.
//!
//! Columns produced by `VALUES`, literals or an empty relation have no
//! sources. An `UNNEST`ed column is an `Expression` of the array column.
//! Join keys count for every column, also on the preserved side of an outer
//! join (they decide how often its rows repeat). A recursive CTE's work table resolves to the sources of its
//! static and recursive terms. `Extension` nodes and non-query plans (DDL,
//! DML, `EXPLAIN`, …) are errors.
//!
//! Prefer the unoptimized plan (`DataFrame::logical_plan()` straight from
//! `SessionContext::sql`): it mirrors the SQL. Optimized plans work too, but
//! the optimizer may add casts (turning `Direct` into `Expression`) and
//! rewrites correlated subqueries into joins, whose keys then count as
//! `FilterOrJoinKey` for every output column instead of only the column the
//! subquery computed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, DFSchemaRef, internal_err, not_impl_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::utils::grouping_set_to_exprlist;
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan, SortExpr, Subquery};
use serde::Serialize;

use crate::model::workspace::Workspace;

/// How an output column is derived from one base-table column. See the
/// [module documentation](self) for the exact rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineageKind {
    /// The output is the column itself, possibly renamed.
    Direct,
    /// The output is computed from the column by a scalar expression
    /// (including `CAST`).
    Expression,
    /// The column is an argument of an aggregate function.
    Aggregate,
    /// The column is an argument, partition or order key of a window
    /// function.
    Window,
    /// The column only influences which rows appear (filter, join key,
    /// group key not in the output, `ORDER BY` under a `LIMIT`).
    FilterOrJoinKey,
}

impl LineageKind {
    /// Rank for "the strongest transformation wins".
    fn strength(self) -> u8 {
        match self {
            LineageKind::FilterOrJoinKey => 0,
            LineageKind::Direct => 1,
            LineageKind::Expression => 2,
            LineageKind::Window => 3,
            LineageKind::Aggregate => 4,
        }
    }

    /// The stronger of two kinds.
    fn stronger(self, other: LineageKind) -> LineageKind {
        if other.strength() > self.strength() {
            other
        } else {
            self
        }
    }

    /// The kind after a transformation `t` is applied to a value of kind
    /// `self`: filter-only columns stay filter-only.
    fn through(self, t: LineageKind) -> LineageKind {
        if self == LineageKind::FilterOrJoinKey {
            self
        } else {
            self.stronger(t)
        }
    }
}

/// One base-table column an output column depends on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ColumnSource {
    /// Bare name of the scanned table (not an alias).
    pub table: String,
    /// Column name in that table.
    pub column: String,
    /// How the output column is derived from it.
    pub kind: LineageKind,
}

/// The lineage of one output column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnLineage {
    /// Output column name (unqualified, as in the plan's schema).
    pub column: String,
    /// Its sources, sorted by table and column, each `(table, column)` once.
    pub sources: Vec<ColumnSource>,
}

/// The lineage of every output column of `plan`, in output order.
///
/// Errors for plans that are not queries (DDL, DML, `EXPLAIN`, extension
/// nodes) and for plans whose expressions do not resolve against their
/// inputs' schemas.
pub fn column_lineage(plan: &LogicalPlan) -> Result<Vec<ColumnLineage>> {
    let node = Walker::default().plan(plan)?;
    let schema = plan.schema();
    Ok(schema
        .fields()
        .iter()
        .zip(node.fields)
        .map(|(field, lineage)| {
            let mut sources = lineage.sources;
            for key in &node.influencers {
                sources
                    .entry(key.clone())
                    .or_insert(LineageKind::FilterOrJoinKey);
            }
            ColumnLineage {
                column: field.name().clone(),
                sources: sources
                    .into_iter()
                    .map(|((table, column), kind)| ColumnSource {
                        table,
                        column,
                        kind,
                    })
                    .collect(),
            }
        })
        .collect())
}

/// `(table, column)` of a base column.
type Key = (String, String);

/// What one field of a plan node (or one expression) is derived from.
#[derive(Debug, Default, Clone, PartialEq)]
struct Field {
    /// Base columns and how they reach this field's value.
    sources: BTreeMap<Key, LineageKind>,
    /// Group keys (base columns) carried by this field: when no output field
    /// of a node carries a key any more, it becomes a row influencer.
    keys: BTreeSet<Key>,
}

impl Field {
    fn add(&mut self, key: Key, kind: LineageKind) {
        self.sources
            .entry(key)
            .and_modify(|k| *k = k.stronger(kind))
            .or_insert(kind);
    }

    fn merge(&mut self, other: Field) {
        for (key, kind) in other.sources {
            self.add(key, kind);
        }
        self.keys.extend(other.keys);
    }

    /// This field after transformation `t`.
    fn through(mut self, t: LineageKind) -> Field {
        for kind in self.sources.values_mut() {
            *kind = kind.through(t);
        }
        self
    }

    /// This field used only to select rows.
    fn into_filter(self) -> Field {
        Field {
            sources: self
                .sources
                .into_keys()
                .map(|k| (k, LineageKind::FilterOrJoinKey))
                .collect(),
            keys: BTreeSet::new(),
        }
    }

    fn add_filters<'a>(&mut self, keys: impl IntoIterator<Item = &'a Key>) {
        for key in keys {
            self.add(key.clone(), LineageKind::FilterOrJoinKey);
        }
    }
}

/// Lineage of a plan node's output.
#[derive(Debug, Default, Clone, PartialEq)]
struct Node {
    /// One entry per field of the node's schema.
    fields: Vec<Field>,
    /// Base columns that influence which rows the node produces.
    influencers: BTreeSet<Key>,
    /// Sort keys of a `Sort` not yet consumed by a `Limit`.
    order: BTreeSet<Key>,
}

impl Node {
    /// A node producing `fields` from `inputs`: keeps the inputs' row
    /// influencers and turns group keys that no longer reach any field into
    /// influencers.
    fn derived(inputs: &[&Node], fields: Vec<Field>) -> Node {
        let mut influencers = BTreeSet::new();
        let mut in_keys = BTreeSet::new();
        for n in inputs {
            influencers.extend(n.influencers.iter().cloned());
            for f in &n.fields {
                in_keys.extend(f.keys.iter().cloned());
            }
        }
        let out_keys: BTreeSet<&Key> = fields.iter().flat_map(|f| f.keys.iter()).collect();
        influencers.extend(in_keys.into_iter().filter(|k| !out_keys.contains(k)));
        Node {
            fields,
            influencers,
            order: BTreeSet::new(),
        }
    }

    /// The same rows and fields as `input` (order kept).
    fn same_as(input: &Node) -> Node {
        input.clone()
    }

    /// Every source of every field and every influencer, as filter-only.
    fn everything_into_filter(&self) -> Field {
        let mut out = Field::default();
        for f in &self.fields {
            out.merge(f.clone().into_filter());
        }
        out.add_filters(&self.influencers);
        out
    }
}

/// A schema and the lineage of its fields, to resolve columns against.
struct Scope<'a> {
    schema: &'a DFSchema,
    fields: &'a [Field],
}

impl Scope<'_> {
    fn lookup(&self, col: &Column) -> Option<Field> {
        let index = self.schema.maybe_index_of_column(col)?;
        self.fields.get(index).cloned()
    }
}

#[derive(Default)]
struct Walker {
    /// Scopes of the queries enclosing the subquery being walked, innermost
    /// last, to resolve outer (correlated) references.
    outer: Vec<(DFSchemaRef, Vec<Field>)>,
    /// Field lineage of recursive CTEs' work tables, by name.
    work_tables: HashMap<String, Vec<Field>>,
}

impl Walker {
    fn plan(&mut self, plan: &LogicalPlan) -> Result<Node> {
        let node = self.plan_inner(plan)?;
        let expected = plan.schema().fields().len();
        if node.fields.len() != expected {
            return internal_err!(
                "column lineage: {} fields computed for a {} node with {expected}",
                node.fields.len(),
                plan.display()
            );
        }
        Ok(node)
    }

    fn plan_inner(&mut self, plan: &LogicalPlan) -> Result<Node> {
        match plan {
            LogicalPlan::Projection(p) => {
                let input = self.plan(&p.input)?;
                let scope = Scope {
                    schema: p.input.schema(),
                    fields: &input.fields,
                };
                let fields = p
                    .expr
                    .iter()
                    .map(|e| self.expr(e, &scope))
                    .collect::<Result<Vec<_>>>()?;
                let mut node = Node::derived(&[&input], fields);
                node.order = input.order;
                Ok(node)
            }
            LogicalPlan::Filter(f) => {
                let input = self.plan(&f.input)?;
                let scope = Scope {
                    schema: f.input.schema(),
                    fields: &input.fields,
                };
                let predicate = self.expr(&f.predicate, &scope)?;
                let mut node = Node::same_as(&input);
                node.influencers.extend(predicate.sources.into_keys());
                Ok(node)
            }
            LogicalPlan::Window(w) => {
                let input = self.plan(&w.input)?;
                let scope = Scope {
                    schema: w.input.schema(),
                    fields: &input.fields,
                };
                let mut fields = input.fields.clone();
                for e in &w.window_expr {
                    fields.push(self.expr(e, &scope)?);
                }
                Ok(Node::derived(&[&input], fields))
            }
            LogicalPlan::Aggregate(a) => {
                let input = self.plan(&a.input)?;
                let scope = Scope {
                    schema: a.input.schema(),
                    fields: &input.fields,
                };
                let mut fields = Vec::new();
                for e in grouping_set_to_exprlist(&a.group_expr)? {
                    let mut f = self.expr(e, &scope)?;
                    let keys: Vec<Key> = f
                        .sources
                        .iter()
                        .filter(|(_, kind)| **kind != LineageKind::FilterOrJoinKey)
                        .map(|(key, _)| key.clone())
                        .collect();
                    f.keys.extend(keys);
                    fields.push(f);
                }
                if matches!(a.group_expr.first(), Some(Expr::GroupingSet(_))) {
                    // The internal grouping id column.
                    fields.push(Field::default());
                }
                for e in &a.aggr_expr {
                    fields.push(self.expr(e, &scope)?);
                }
                Ok(Node::derived(&[&input], fields))
            }
            LogicalPlan::Sort(s) => {
                let input = self.plan(&s.input)?;
                let scope = Scope {
                    schema: s.input.schema(),
                    fields: &input.fields,
                };
                let keys = self.sort_keys(&s.expr, &scope)?;
                let mut node = Node::same_as(&input);
                if s.fetch.is_some() {
                    node.influencers.extend(keys.iter().cloned());
                }
                node.order = keys;
                Ok(node)
            }
            LogicalPlan::Limit(l) => {
                let input = self.plan(&l.input)?;
                let mut node = Node::same_as(&input);
                if l.skip.is_some() || l.fetch.is_some() {
                    node.influencers.extend(input.order.iter().cloned());
                }
                Ok(node)
            }
            LogicalPlan::Join(j) => {
                let left = self.plan(&j.left)?;
                let right = self.plan(&j.right)?;
                let schema = j.left.schema().join(j.right.schema())?;
                let all: Vec<Field> = left.fields.iter().chain(&right.fields).cloned().collect();
                let scope = Scope {
                    schema: &schema,
                    fields: &all,
                };
                let mut conditions = Field::default();
                for (l, r) in &j.on {
                    conditions.merge(self.expr(l, &scope)?);
                    conditions.merge(self.expr(r, &scope)?);
                }
                if let Some(filter) = &j.filter {
                    conditions.merge(self.expr(filter, &scope)?);
                }
                let fields = match j.join_type {
                    JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => all,
                    JoinType::LeftSemi | JoinType::LeftAnti => left.fields.clone(),
                    JoinType::RightSemi | JoinType::RightAnti => right.fields.clone(),
                    JoinType::LeftMark => {
                        let mut f = left.fields.clone();
                        f.push(Field::default());
                        f
                    }
                    JoinType::RightMark => {
                        let mut f = right.fields.clone();
                        f.push(Field::default());
                        f
                    }
                };
                let mut node = Node::derived(&[&left, &right], fields);
                node.influencers.extend(conditions.sources.into_keys());
                Ok(node)
            }
            LogicalPlan::Union(u) => {
                let inputs = u
                    .inputs
                    .iter()
                    .map(|i| self.plan(i))
                    .collect::<Result<Vec<_>>>()?;
                let width = plan.schema().fields().len();
                let mut fields = vec![Field::default(); width];
                for input in &inputs {
                    if input.fields.len() != width {
                        return plan_err!(
                            "column lineage: a UNION input has {} columns, the union {width}",
                            input.fields.len()
                        );
                    }
                    for (out, f) in fields.iter_mut().zip(&input.fields) {
                        out.merge(f.clone());
                    }
                }
                let refs: Vec<&Node> = inputs.iter().collect();
                Ok(Node::derived(&refs, fields))
            }
            LogicalPlan::SubqueryAlias(s) => self.plan(&s.input),
            LogicalPlan::Subquery(s) => self.plan(&s.subquery),
            LogicalPlan::Repartition(r) => self.plan(&r.input),
            LogicalPlan::TableScan(scan) => {
                let table = scan.table_name.table().to_owned();
                let source_schema = scan.source.schema();
                let mut node = Node::default();
                if let Some(work) = self.work_tables.get(&table) {
                    let indices: Vec<usize> = match &scan.projection {
                        Some(p) => p.clone(),
                        None => (0..source_schema.fields().len()).collect(),
                    };
                    for i in indices {
                        node.fields.push(work.get(i).cloned().unwrap_or_default());
                    }
                    for filter in &scan.filters {
                        for c in filter.column_refs() {
                            if let Ok(i) = source_schema.index_of(&c.name)
                                && let Some(f) = work.get(i)
                            {
                                node.influencers.extend(f.sources.keys().cloned());
                            }
                        }
                    }
                } else {
                    for field in scan.projected_schema.fields() {
                        let mut f = Field::default();
                        f.add((table.clone(), field.name().clone()), LineageKind::Direct);
                        node.fields.push(f);
                    }
                    for filter in &scan.filters {
                        for c in filter.column_refs() {
                            node.influencers.insert((table.clone(), c.name.clone()));
                        }
                    }
                }
                Ok(node)
            }
            LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => Ok(Node {
                fields: vec![Field::default(); plan.schema().fields().len()],
                ..Node::default()
            }),
            LogicalPlan::Distinct(Distinct::All(input)) => {
                let input = self.plan(input)?;
                Ok(Node::derived(&[&input], input.fields.clone()))
            }
            LogicalPlan::Distinct(Distinct::On(d)) => {
                let input = self.plan(&d.input)?;
                let scope = Scope {
                    schema: d.input.schema(),
                    fields: &input.fields,
                };
                let fields = d
                    .select_expr
                    .iter()
                    .map(|e| self.expr(e, &scope))
                    .collect::<Result<Vec<_>>>()?;
                let mut conditions = Field::default();
                for e in &d.on_expr {
                    conditions.merge(self.expr(e, &scope)?);
                }
                if let Some(sort) = &d.sort_expr {
                    conditions.sources.extend(
                        self.sort_keys(sort, &scope)?
                            .into_iter()
                            .map(|k| (k, LineageKind::FilterOrJoinKey)),
                    );
                }
                let mut node = Node::derived(&[&input], fields);
                node.influencers.extend(conditions.sources.into_keys());
                Ok(node)
            }
            LogicalPlan::Unnest(u) => {
                let input = self.plan(&u.input)?;
                let unnested: BTreeSet<usize> = u
                    .list_type_columns
                    .iter()
                    .map(|(i, _)| *i)
                    .chain(u.struct_type_columns.iter().copied())
                    .collect();
                let mut fields = Vec::with_capacity(u.dependency_indices.len());
                for &i in &u.dependency_indices {
                    let Some(f) = input.fields.get(i) else {
                        return internal_err!("column lineage: unnest input {i} out of range");
                    };
                    fields.push(if unnested.contains(&i) {
                        f.clone().through(LineageKind::Expression)
                    } else {
                        f.clone()
                    });
                }
                Ok(Node::derived(&[&input], fields))
            }
            LogicalPlan::RecursiveQuery(r) => {
                let start = self.plan(&r.static_term)?;
                let previous = self.work_tables.remove(&r.name);
                let mut current = start.fields.clone();
                let mut recursive = Node::default();
                // The work table's lineage grows monotonically; a few rounds
                // reach the fixpoint for any realistic query.
                for _ in 0..16 {
                    self.work_tables.insert(r.name.clone(), current.clone());
                    recursive = self.plan(&r.recursive_term)?;
                    let mut next = start.fields.clone();
                    for (out, f) in next.iter_mut().zip(&recursive.fields) {
                        out.merge(f.clone());
                    }
                    if next == current {
                        break;
                    }
                    current = next;
                }
                self.work_tables.remove(&r.name);
                if let Some(p) = previous {
                    self.work_tables.insert(r.name.clone(), p);
                }
                Ok(Node::derived(&[&start, &recursive], current))
            }
            LogicalPlan::Extension(e) => {
                not_impl_err!(
                    "column lineage through the extension node {}",
                    e.node.name()
                )
            }
            LogicalPlan::Statement(_)
            | LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::DescribeTable(_) => {
                plan_err!("column lineage needs a query, not {}", plan.display())
            }
        }
    }

    /// Base columns of sort expressions.
    fn sort_keys(&mut self, sort: &[SortExpr], scope: &Scope<'_>) -> Result<BTreeSet<Key>> {
        let mut keys = BTreeSet::new();
        for s in sort {
            keys.extend(self.expr(&s.expr, scope)?.sources.into_keys());
        }
        Ok(keys)
    }

    /// Lineage of a subquery's plan, with `scope` as its innermost outer
    /// scope.
    fn subquery(&mut self, sub: &Subquery, scope: &Scope<'_>) -> Result<Node> {
        self.outer
            .push((Arc::new(scope.schema.clone()), scope.fields.to_vec()));
        let node = self.plan(&sub.subquery);
        self.outer.pop();
        node
    }

    fn outer_column(&self, col: &Column) -> Result<Field> {
        for (schema, fields) in self.outer.iter().rev() {
            let scope = Scope { schema, fields };
            if let Some(f) = scope.lookup(col) {
                return Ok(f);
            }
        }
        plan_err!("column lineage: outer reference {col} not found")
    }

    /// Lineage of an expression evaluated against `scope`.
    fn expr(&mut self, e: &Expr, scope: &Scope<'_>) -> Result<Field> {
        match e {
            Expr::Column(c) => match scope.lookup(c) {
                Some(f) => Ok(f),
                None => plan_err!("column lineage: column {c} not found in its input"),
            },
            Expr::Alias(a) => self.expr(&a.expr, scope),
            Expr::OuterReferenceColumn(_, c) => self.outer_column(c),
            Expr::ScalarSubquery(sub) => {
                let node = self.subquery(sub, scope)?;
                let mut f = node.fields.first().cloned().unwrap_or_default();
                f.add_filters(&node.influencers);
                Ok(f)
            }
            Expr::Exists(ex) => Ok(self.subquery(&ex.subquery, scope)?.everything_into_filter()),
            Expr::InSubquery(i) => {
                let mut f = self.expr(&i.expr, scope)?;
                let node = self.subquery(&i.subquery, scope)?;
                f.merge(node.fields.first().cloned().unwrap_or_default());
                f.add_filters(&node.influencers);
                Ok(f.through(LineageKind::Expression))
            }
            Expr::SetComparison(s) => {
                let mut f = self.expr(&s.expr, scope)?;
                let node = self.subquery(&s.subquery, scope)?;
                f.merge(node.fields.first().cloned().unwrap_or_default());
                f.add_filters(&node.influencers);
                Ok(f.through(LineageKind::Expression))
            }
            Expr::AggregateFunction(af) => {
                let mut f = Field::default();
                for arg in &af.params.args {
                    f.merge(self.expr(arg, scope)?);
                }
                for s in &af.params.order_by {
                    f.merge(self.expr(&s.expr, scope)?);
                }
                let mut f = f.through(LineageKind::Aggregate);
                if let Some(filter) = &af.params.filter {
                    f.merge(self.expr(filter, scope)?.into_filter());
                }
                Ok(f)
            }
            Expr::WindowFunction(wf) => {
                let mut f = Field::default();
                for arg in wf.params.args.iter().chain(&wf.params.partition_by) {
                    f.merge(self.expr(arg, scope)?);
                }
                for s in &wf.params.order_by {
                    f.merge(self.expr(&s.expr, scope)?);
                }
                let mut f = f.through(LineageKind::Window);
                if let Some(filter) = &wf.params.filter {
                    f.merge(self.expr(filter, scope)?.into_filter());
                }
                Ok(f)
            }
            _ => {
                let mut f = Field::default();
                e.apply_children(|child| {
                    f.merge(self.expr(child, scope)?);
                    Ok(TreeNodeRecursion::Continue)
                })?;
                Ok(f.through(LineageKind::Expression))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::empty::EmptyTable;
    use datafusion::prelude::SessionContext;

    use super::LineageKind::{Aggregate, Direct, Expression, FilterOrJoinKey, Window};
    use super::*;

    /// `(table, column, kind)` of one expected source.
    type Src<'a> = (&'a str, &'a str, LineageKind);
    type Expected<'a> = &'a [(&'a str, &'a [Src<'a>])];

    fn session() -> SessionContext {
        let ctx = SessionContext::new();
        let table = |fields: &[(&str, DataType)]| {
            let schema = Schema::new(
                fields
                    .iter()
                    .map(|(n, t)| Field::new(*n, t.clone(), true))
                    .collect::<Vec<_>>(),
            );
            Arc::new(EmptyTable::new(Arc::new(schema)))
        };
        ctx.register_table(
            "orders",
            table(&[
                ("order_id", DataType::Int32),
                ("customer_id", DataType::Int32),
                ("amount", DataType::Float64),
                ("status", DataType::Utf8),
                ("order_date", DataType::Date32),
            ]),
        )
        .unwrap();
        ctx.register_table(
            "customers",
            table(&[
                ("customer_id", DataType::Int32),
                ("name", DataType::Utf8),
                ("country", DataType::Utf8),
            ]),
        )
        .unwrap();
        ctx.register_table(
            "payments",
            table(&[
                ("payment_id", DataType::Int32),
                ("order_id", DataType::Int32),
                ("amount", DataType::Float64),
                ("method", DataType::Utf8),
            ]),
        )
        .unwrap();
        ctx
    }

    fn lineage(sql: &str) -> Vec<ColumnLineage> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ctx = session();
        let df = rt
            .block_on(ctx.sql(sql))
            .unwrap_or_else(|e| panic!("planning {sql}: {e}"));
        column_lineage(df.logical_plan())
            .unwrap_or_else(|e| panic!("lineage of {sql}: {e}\n{}", df.logical_plan()))
    }

    fn check(sql: &str, expected: Expected<'_>) {
        let actual = lineage(sql);
        let expected: Vec<ColumnLineage> = expected
            .iter()
            .map(|(column, sources)| {
                let mut sources: Vec<ColumnSource> = sources
                    .iter()
                    .map(|(table, column, kind)| ColumnSource {
                        table: (*table).to_owned(),
                        column: (*column).to_owned(),
                        kind: *kind,
                    })
                    .collect();
                sources.sort();
                ColumnLineage {
                    column: (*column).to_owned(),
                    sources,
                }
            })
            .collect();
        assert_eq!(actual, expected, "lineage of {sql}");
    }

    #[test]
    fn plain_select() {
        check(
            "SELECT order_id, amount FROM orders",
            &[
                ("order_id", &[("orders", "order_id", Direct)]),
                ("amount", &[("orders", "amount", Direct)]),
            ],
        );
    }

    #[test]
    fn select_star() {
        check(
            "SELECT * FROM customers",
            &[
                ("customer_id", &[("customers", "customer_id", Direct)]),
                ("name", &[("customers", "name", Direct)]),
                ("country", &[("customers", "country", Direct)]),
            ],
        );
    }

    #[test]
    fn column_aliases_stay_direct() {
        check(
            "SELECT o.order_id AS id, o.amount total FROM orders AS o",
            &[
                ("id", &[("orders", "order_id", Direct)]),
                ("total", &[("orders", "amount", Direct)]),
            ],
        );
    }

    #[test]
    fn inner_join_with_table_aliases() {
        let key: [Src<'_>; 2] = [
            ("orders", "customer_id", FilterOrJoinKey),
            ("customers", "customer_id", FilterOrJoinKey),
        ];
        check(
            "SELECT o.order_id, c.name FROM orders o JOIN customers c \
             ON o.customer_id = c.customer_id",
            &[
                (
                    "order_id",
                    &[("orders", "order_id", Direct), key[0], key[1]],
                ),
                ("name", &[("customers", "name", Direct), key[0], key[1]]),
            ],
        );
    }

    #[test]
    fn join_key_in_output_is_direct() {
        check(
            "SELECT c.customer_id, o.amount FROM customers c \
             LEFT JOIN orders o ON o.customer_id = c.customer_id",
            &[
                (
                    "customer_id",
                    &[
                        ("customers", "customer_id", Direct),
                        ("orders", "customer_id", FilterOrJoinKey),
                    ],
                ),
                (
                    "amount",
                    &[
                        ("orders", "amount", Direct),
                        ("orders", "customer_id", FilterOrJoinKey),
                        ("customers", "customer_id", FilterOrJoinKey),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn three_way_join_with_non_equi_condition() {
        let fk: &[Src<'_>] = &[
            ("orders", "order_id", FilterOrJoinKey),
            ("orders", "customer_id", FilterOrJoinKey),
            ("orders", "amount", FilterOrJoinKey),
            ("customers", "customer_id", FilterOrJoinKey),
            ("payments", "order_id", FilterOrJoinKey),
            ("payments", "amount", FilterOrJoinKey),
        ];
        let with = |extra: (&'static str, &'static str, LineageKind)| {
            let mut v: Vec<Src<'_>> = fk
                .iter()
                .copied()
                .filter(|s| (s.0, s.1) != (extra.0, extra.1))
                .collect();
            v.push(extra);
            v
        };
        let name = with(("customers", "name", Direct));
        let method = with(("payments", "method", Direct));
        check(
            "SELECT c.name, p.method FROM orders o \
             JOIN customers c ON o.customer_id = c.customer_id \
             LEFT JOIN payments p ON p.order_id = o.order_id AND p.amount >= o.amount",
            &[("name", &name), ("method", &method)],
        );
    }

    #[test]
    fn where_filter() {
        check(
            "SELECT order_id FROM orders WHERE status = 'paid' AND amount > 10",
            &[(
                "order_id",
                &[
                    ("orders", "order_id", Direct),
                    ("orders", "status", FilterOrJoinKey),
                    ("orders", "amount", FilterOrJoinKey),
                ],
            )],
        );
    }

    #[test]
    fn filtered_column_in_output_is_direct() {
        check(
            "SELECT status, amount FROM orders WHERE status <> 'void'",
            &[
                ("status", &[("orders", "status", Direct)]),
                (
                    "amount",
                    &[
                        ("orders", "amount", Direct),
                        ("orders", "status", FilterOrJoinKey),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn group_by_with_aggregates() {
        check(
            "SELECT customer_id, sum(amount) AS total, count(order_id) AS n, \
             count(*) AS c, avg(amount) AS mean FROM orders GROUP BY customer_id",
            &[
                ("customer_id", &[("orders", "customer_id", Direct)]),
                ("total", &[("orders", "amount", Aggregate)]),
                ("n", &[("orders", "order_id", Aggregate)]),
                ("c", &[]),
                ("mean", &[("orders", "amount", Aggregate)]),
            ],
        );
    }

    #[test]
    fn group_key_not_in_output_is_a_row_influence() {
        check(
            "SELECT sum(amount) AS total, count(*) AS n FROM orders GROUP BY status",
            &[
                (
                    "total",
                    &[
                        ("orders", "amount", Aggregate),
                        ("orders", "status", FilterOrJoinKey),
                    ],
                ),
                ("n", &[("orders", "status", FilterOrJoinKey)]),
            ],
        );
    }

    #[test]
    fn having() {
        check(
            "SELECT customer_id, max(order_date) AS last FROM orders \
             GROUP BY customer_id HAVING sum(amount) > 100",
            &[
                (
                    "customer_id",
                    &[
                        ("orders", "customer_id", Direct),
                        ("orders", "amount", FilterOrJoinKey),
                    ],
                ),
                (
                    "last",
                    &[
                        ("orders", "order_date", Aggregate),
                        ("orders", "amount", FilterOrJoinKey),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn case_expression() {
        check(
            "SELECT order_id, CASE WHEN status = 'paid' THEN amount ELSE 0 END AS paid \
             FROM orders",
            &[
                ("order_id", &[("orders", "order_id", Direct)]),
                (
                    "paid",
                    &[
                        ("orders", "status", Expression),
                        ("orders", "amount", Expression),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn arithmetic_over_two_tables() {
        let key: &[Src<'_>] = &[
            ("orders", "order_id", FilterOrJoinKey),
            ("payments", "order_id", FilterOrJoinKey),
        ];
        let mut expected = vec![
            ("orders", "amount", Expression),
            ("payments", "amount", Expression),
        ];
        expected.extend_from_slice(key);
        check(
            "SELECT o.amount - p.amount AS outstanding FROM orders o \
             JOIN payments p ON o.order_id = p.order_id",
            &[("outstanding", &expected)],
        );
    }

    #[test]
    fn cte() {
        check(
            "WITH paid AS (SELECT order_id, amount FROM orders WHERE status = 'paid') \
             SELECT order_id, amount * 2 AS double FROM paid",
            &[
                (
                    "order_id",
                    &[
                        ("orders", "order_id", Direct),
                        ("orders", "status", FilterOrJoinKey),
                    ],
                ),
                (
                    "double",
                    &[
                        ("orders", "amount", Expression),
                        ("orders", "status", FilterOrJoinKey),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn nested_ctes_strongest_kind_wins() {
        check(
            "WITH per_customer AS ( \
                 SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id \
             ), named AS ( \
                 SELECT c.name, p.total, p.total + 1 AS bumped FROM per_customer p \
                 JOIN customers c ON c.customer_id = p.customer_id \
             ) \
             SELECT name AS customer, total, bumped FROM named",
            &[
                (
                    "customer",
                    &[
                        ("customers", "name", Direct),
                        ("customers", "customer_id", FilterOrJoinKey),
                        ("orders", "customer_id", FilterOrJoinKey),
                    ],
                ),
                (
                    "total",
                    &[
                        ("orders", "amount", Aggregate),
                        ("customers", "customer_id", FilterOrJoinKey),
                        ("orders", "customer_id", FilterOrJoinKey),
                    ],
                ),
                (
                    "bumped",
                    &[
                        ("orders", "amount", Aggregate),
                        ("customers", "customer_id", FilterOrJoinKey),
                        ("orders", "customer_id", FilterOrJoinKey),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn subquery_in_from() {
        check(
            "SELECT t.id, t.big FROM \
             (SELECT order_id AS id, amount > 100 AS big FROM orders) AS t",
            &[
                ("id", &[("orders", "order_id", Direct)]),
                ("big", &[("orders", "amount", Expression)]),
            ],
        );
    }

    #[test]
    fn dropped_group_key_of_a_subquery() {
        check(
            "SELECT total FROM \
             (SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id) s",
            &[(
                "total",
                &[
                    ("orders", "amount", Aggregate),
                    ("orders", "customer_id", FilterOrJoinKey),
                ],
            )],
        );
    }

    #[test]
    fn scalar_subquery_in_where() {
        check(
            "SELECT order_id FROM orders WHERE amount > (SELECT avg(amount) FROM payments)",
            &[(
                "order_id",
                &[
                    ("orders", "order_id", Direct),
                    ("orders", "amount", FilterOrJoinKey),
                    ("payments", "amount", FilterOrJoinKey),
                ],
            )],
        );
    }

    #[test]
    fn correlated_scalar_subquery_in_select() {
        check(
            "SELECT c.name, \
             (SELECT sum(o.amount) FROM orders o WHERE o.customer_id = c.customer_id) AS spent \
             FROM customers c",
            &[
                ("name", &[("customers", "name", Direct)]),
                (
                    "spent",
                    &[
                        ("orders", "amount", Aggregate),
                        ("orders", "customer_id", FilterOrJoinKey),
                        ("customers", "customer_id", FilterOrJoinKey),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn in_subquery() {
        check(
            "SELECT name FROM customers WHERE customer_id IN \
             (SELECT customer_id FROM orders WHERE status = 'paid')",
            &[(
                "name",
                &[
                    ("customers", "name", Direct),
                    ("customers", "customer_id", FilterOrJoinKey),
                    ("orders", "customer_id", FilterOrJoinKey),
                    ("orders", "status", FilterOrJoinKey),
                ],
            )],
        );
    }

    #[test]
    fn correlated_exists() {
        check(
            "SELECT o.order_id FROM orders o WHERE NOT EXISTS \
             (SELECT 1 FROM payments p WHERE p.order_id = o.order_id)",
            &[(
                "order_id",
                &[
                    ("orders", "order_id", Direct),
                    ("payments", "order_id", FilterOrJoinKey),
                ],
            )],
        );
    }

    #[test]
    fn union_all_is_positional() {
        check(
            "SELECT order_id AS id, amount FROM orders \
             UNION ALL SELECT payment_id, amount * -1 FROM payments WHERE method = 'refund'",
            &[
                (
                    "id",
                    &[
                        ("orders", "order_id", Direct),
                        ("payments", "payment_id", Direct),
                        ("payments", "method", FilterOrJoinKey),
                    ],
                ),
                (
                    "amount",
                    &[
                        ("orders", "amount", Direct),
                        ("payments", "amount", Expression),
                        ("payments", "method", FilterOrJoinKey),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn union_distinct() {
        check(
            "SELECT customer_id FROM orders UNION SELECT customer_id FROM customers",
            &[(
                "customer_id",
                &[
                    ("orders", "customer_id", Direct),
                    ("customers", "customer_id", Direct),
                ],
            )],
        );
    }

    #[test]
    fn row_number_window() {
        check(
            "SELECT order_id, row_number() OVER \
             (PARTITION BY customer_id ORDER BY order_date DESC) AS rn FROM orders",
            &[
                ("order_id", &[("orders", "order_id", Direct)]),
                (
                    "rn",
                    &[
                        ("orders", "customer_id", Window),
                        ("orders", "order_date", Window),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn aggregate_over_empty_window() {
        check(
            "SELECT order_id, amount / sum(amount) OVER () AS share FROM orders",
            &[
                ("order_id", &[("orders", "order_id", Direct)]),
                ("share", &[("orders", "amount", Window)]),
            ],
        );
    }

    #[test]
    fn window_over_aggregate_keeps_aggregate() {
        check(
            "SELECT customer_id, rank() OVER (ORDER BY sum(amount) DESC) AS r \
             FROM orders GROUP BY customer_id",
            &[
                ("customer_id", &[("orders", "customer_id", Direct)]),
                ("r", &[("orders", "amount", Aggregate)]),
            ],
        );
    }

    #[test]
    fn distinct() {
        check(
            "SELECT DISTINCT country FROM customers",
            &[("country", &[("customers", "country", Direct)])],
        );
    }

    #[test]
    fn order_by_with_limit_picks_rows() {
        check(
            "SELECT order_id FROM orders ORDER BY amount DESC LIMIT 10",
            &[(
                "order_id",
                &[
                    ("orders", "order_id", Direct),
                    ("orders", "amount", FilterOrJoinKey),
                ],
            )],
        );
    }

    #[test]
    fn order_by_without_limit_changes_no_row() {
        check(
            "SELECT order_id FROM orders ORDER BY amount",
            &[("order_id", &[("orders", "order_id", Direct)])],
        );
    }

    #[test]
    fn cast_is_an_expression() {
        check(
            "SELECT CAST(order_id AS BIGINT) AS id, amount::int AS whole FROM orders",
            &[
                ("id", &[("orders", "order_id", Expression)]),
                ("whole", &[("orders", "amount", Expression)]),
            ],
        );
    }

    #[test]
    fn coalesce_over_left_join() {
        check(
            "SELECT o.order_id, coalesce(p.method, 'unpaid') AS method FROM orders o \
             LEFT JOIN payments p USING (order_id)",
            &[
                (
                    "order_id",
                    &[
                        ("orders", "order_id", Direct),
                        ("payments", "order_id", FilterOrJoinKey),
                    ],
                ),
                (
                    "method",
                    &[
                        ("payments", "method", Expression),
                        ("orders", "order_id", FilterOrJoinKey),
                        ("payments", "order_id", FilterOrJoinKey),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn string_functions() {
        check(
            "SELECT upper(name) || ' (' || lower(country) || ')' AS label, \
             length(trim(name)) AS len FROM customers",
            &[
                (
                    "label",
                    &[
                        ("customers", "name", Expression),
                        ("customers", "country", Expression),
                    ],
                ),
                ("len", &[("customers", "name", Expression)]),
            ],
        );
    }

    #[test]
    fn literal_columns_have_no_sources() {
        check(
            "SELECT 1 AS one, 'x' AS tag, now() AS at, order_id FROM orders",
            &[
                ("one", &[]),
                ("tag", &[]),
                ("at", &[]),
                ("order_id", &[("orders", "order_id", Direct)]),
            ],
        );
    }

    #[test]
    fn literal_column_in_a_filtered_query() {
        check(
            "SELECT 1 AS one FROM orders WHERE status = 'paid'",
            &[("one", &[("orders", "status", FilterOrJoinKey)])],
        );
    }

    #[test]
    fn self_join_with_two_aliases() {
        check(
            "SELECT a.order_id AS first, b.order_id AS second FROM orders a \
             JOIN orders b ON a.customer_id = b.customer_id AND a.order_id < b.order_id",
            &[
                (
                    "first",
                    &[
                        ("orders", "order_id", Direct),
                        ("orders", "customer_id", FilterOrJoinKey),
                    ],
                ),
                (
                    "second",
                    &[
                        ("orders", "order_id", Direct),
                        ("orders", "customer_id", FilterOrJoinKey),
                    ],
                ),
            ],
        );
    }

    #[test]
    fn self_join_mixing_kinds_keeps_the_strongest() {
        check(
            "SELECT a.amount + b.amount AS pair, a.amount FROM orders a \
             CROSS JOIN orders b",
            &[
                ("pair", &[("orders", "amount", Expression)]),
                ("amount", &[("orders", "amount", Direct)]),
            ],
        );
    }

    #[test]
    fn group_by_expression() {
        check(
            "SELECT date_trunc('month', order_date) AS month, count(*) AS n \
             FROM orders GROUP BY date_trunc('month', order_date)",
            &[
                ("month", &[("orders", "order_date", Expression)]),
                ("n", &[]),
            ],
        );
    }

    #[test]
    fn group_by_expression_not_in_output() {
        check(
            "SELECT sum(amount) AS total FROM orders GROUP BY extract(year FROM order_date)",
            &[(
                "total",
                &[
                    ("orders", "amount", Aggregate),
                    ("orders", "order_date", FilterOrJoinKey),
                ],
            )],
        );
    }

    #[test]
    fn select_star_from_cte() {
        check(
            "WITH big AS (SELECT order_id, amount AS value FROM orders WHERE amount > 100) \
             SELECT * FROM big",
            &[
                (
                    "order_id",
                    &[
                        ("orders", "order_id", Direct),
                        ("orders", "amount", FilterOrJoinKey),
                    ],
                ),
                ("value", &[("orders", "amount", Direct)]),
            ],
        );
    }

    #[test]
    fn star_over_join() {
        let key: &[Src<'_>] = &[
            ("orders", "order_id", FilterOrJoinKey),
            ("payments", "order_id", FilterOrJoinKey),
        ];
        let direct = |t: &'static str, c: &'static str| {
            let mut v: Vec<Src<'_>> = key
                .iter()
                .copied()
                .filter(|k| (k.0, k.1) != (t, c))
                .collect();
            v.push((t, c, Direct));
            v
        };
        let cols = [
            ("payment_id", direct("payments", "payment_id")),
            ("order_id", direct("payments", "order_id")),
            ("amount", direct("payments", "amount")),
            ("method", direct("payments", "method")),
            ("status", direct("orders", "status")),
        ];
        let expected: Vec<(&str, &[Src<'_>])> =
            cols.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        check(
            "SELECT p.*, o.status FROM payments p JOIN orders o ON o.order_id = p.order_id",
            &expected,
        );
    }

    #[test]
    fn aggregate_filter_clause() {
        check(
            "SELECT count(order_id) FILTER (WHERE status = 'paid') AS paid FROM orders",
            &[(
                "paid",
                &[
                    ("orders", "order_id", Aggregate),
                    ("orders", "status", FilterOrJoinKey),
                ],
            )],
        );
    }

    #[test]
    fn values_have_no_sources() {
        check(
            "SELECT column1 AS n, column2 AS s FROM (VALUES (1, 'a'), (2, 'b'))",
            &[("n", &[]), ("s", &[])],
        );
    }

    #[test]
    fn recursive_cte() {
        check(
            "WITH RECURSIVE chain(id, depth) AS ( \
                 SELECT order_id, 0 FROM orders \
                 UNION ALL SELECT id + 1, depth + 1 FROM chain WHERE depth < 3 \
             ) SELECT id, depth FROM chain",
            &[
                ("id", &[("orders", "order_id", Expression)]),
                ("depth", &[]),
            ],
        );
    }

    #[test]
    fn kinds_serialize_in_snake_case() {
        let json = serde_json::to_string(&ColumnSource {
            table: "orders".into(),
            column: "status".into(),
            kind: FilterOrJoinKey,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"table":"orders","column":"status","kind":"filter_or_join_key"}"#
        );
    }

    #[test]
    fn non_queries_are_errors() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ctx = session();
        let df = rt.block_on(ctx.sql("EXPLAIN SELECT 1")).unwrap();
        assert!(column_lineage(df.logical_plan()).is_err());
    }
}

/// One column in a lineage walk, with the columns it is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnNode {
    /// Asset or source name.
    pub table: String,
    /// Column name.
    pub column: String,
    /// How the downstream column uses it (`None` for the column asked about).
    pub kind: Option<LineageKind>,
    /// Whether `table` is a source (the walk ends there).
    pub is_source: bool,
    /// Whether the column is a partition dimension of `table` (its value
    /// comes from the partition's hive folder, not from a query).
    pub is_dimension: bool,
    /// Whether this is the downstream asset's own column, read from its
    /// earlier partitions (the walk does not repeat a column already on
    /// its path).
    pub earlier_partitions: bool,
    /// Upstream columns, when `table` is an asset and the depth allows.
    pub upstream: Vec<ColumnNode>,
    /// Its upstream is told where this column first appears in the tree
    /// (shared upstreams are walked once: a tree that repeated them would
    /// grow exponentially with the graph's diamonds).
    pub shown_above: bool,
}

/// Walks the column lineage of `asset.column` upstream through the
/// graph, at most `depth` assets deep (to the sources by default).
pub(crate) async fn asset_column_lineage(
    ws: &Workspace,
    asset: &str,
    column: &str,
    depth: Option<usize>,
) -> Result<ColumnNode, crate::error::EngineError> {
    use crate::error::EngineError;
    ws.require_asset(asset)?;
    let wanted: std::collections::BTreeSet<String> = std::iter::once(asset.to_owned()).collect();
    let plans = crate::compile::logical_plans(ws, &wanted).await?;
    let mut lineages: std::collections::HashMap<String, Vec<ColumnLineage>> =
        std::collections::HashMap::new();
    for (name, plan) in &plans {
        lineages.insert(
            name.clone(),
            column_lineage(plan).map_err(|e| EngineError::Internal(e.strip_backtrace()))?,
        );
    }
    let columns: Vec<&str> = lineages
        .get(asset)
        .map(|l| l.iter().map(|c| c.column.as_str()).collect())
        .unwrap_or_default();
    if !columns.contains(&column) {
        let hint = cairn_assets::closest_name(column, columns.iter().copied())
            .map(|c| format!("did you mean `{c}`? "))
            .unwrap_or_default();
        return Err(EngineError::Usage(format!(
            "`{asset}` has no column `{column}`; {hint}its columns are: {}",
            columns.join(", ")
        )));
    }
    let mut walk = Walk {
        ws,
        lineages: &lineages,
        path: Vec::new(),
        expanded: std::collections::HashMap::new(),
    };
    Ok(walk.column((asset, column), None, false, depth.unwrap_or(usize::MAX)))
}

/// The state of one column-lineage walk.
struct Walk<'a> {
    ws: &'a Workspace,
    lineages: &'a std::collections::HashMap<String, Vec<ColumnLineage>>,
    /// The columns above the current node, so a column an asset computes
    /// from its own earlier partitions is shown once, not followed
    /// forever.
    path: Vec<(String, String)>,
    /// Columns whose upstream was told, with the depth left then: told
    /// again only where more depth is left.
    expanded: std::collections::HashMap<(String, String), usize>,
}

impl Walk<'_> {
    /// One node of the walk.
    fn column(
        &mut self,
        (table, column): (&str, &str),
        kind: Option<LineageKind>,
        earlier_partitions: bool,
        depth: usize,
    ) -> ColumnNode {
        let ws = self.ws;
        let is_source = ws.project.sources.contains_key(table);
        let mut upstream = Vec::new();
        let key = (table.to_owned(), column.to_owned());
        let on_path = self.path.contains(&key);
        // (A column on the path is an asset reading its own earlier
        // partitions: said by `earlier_partitions`.)
        let shown_above = !on_path && self.expanded.get(&key).is_some_and(|&d| d >= depth);
        if !is_source
            && !on_path
            && !shown_above
            && depth > 0
            && let Some(col) = self
                .lineages
                .get(table)
                .and_then(|l| l.iter().find(|c| c.column == column))
        {
            self.expanded.insert(key.clone(), depth);
            self.path.push(key);
            for s in &col.sources {
                upstream.push(self.column(
                    (&s.table, &s.column),
                    Some(s.kind),
                    s.table == table,
                    depth - 1,
                ));
            }
            self.path.pop();
        }
        ColumnNode {
            table: table.to_owned(),
            column: column.to_owned(),
            kind,
            is_source,
            is_dimension: crate::model::partition_index::dimension_names(&ws.project, table)
                .iter()
                .any(|d| d == column),
            earlier_partitions,
            upstream,
            shown_above,
        }
    }
}
