//! The graph model: nodes from the `Graph` RPC, their statuses, how a node
//! is shown (colour, icon, words — never colour alone), and the view graph:
//! the nodes actually laid out once groups are collapsed or focus mode
//! narrows to a neighbourhood. Pure functions; the renderer draws a view.

export interface GraphNodeDef {
  name: string;
  kind: "source" | "asset";
  file: string;
  line: number;
  description: string;
  owner: string;
  tags: string[];
  upstream: string[];
  partitioning: string;
  checks: string[];
  automation: string;
}

/** What Status says about an asset, reduced to what the graph draws. */
export interface NodeStatus {
  state: string;
  health: string;
  failingChecks: number;
  /** Failing `warn` checks (they leave the health alone). */
  warningChecks: number;
  /** Whether a version exists (so declared checks have run). */
  built: boolean;
}

/** How a node is shown: the worst thing about it wins. */
export type Display =
  | "source"
  | "running"
  | "failed"
  | "sla_failed"
  | "failing_check"
  | "sla_warn"
  | "stale"
  | "never"
  | "fresh"
  | "unknown";

export interface DisplayStyle {
  label: string;
  icon: string;
  fill: string;
  stroke: string;
  /** Rank for groups: the lowest among members is the group's. */
  rank: number;
}

export const DISPLAY: Record<Display, DisplayStyle> = {
  running: { label: "running", icon: "▶", fill: "#dbeafe", stroke: "#1d4ed8", rank: 0 },
  failed: { label: "failed", icon: "✗", fill: "#fee2e2", stroke: "#b91c1c", rank: 1 },
  sla_failed: { label: "SLA failed", icon: "⚑", fill: "#fde2e4", stroke: "#9f1239", rank: 2 },
  failing_check: { label: "failing check", icon: "!", fill: "#ffe4e6", stroke: "#be123c", rank: 3 },
  sla_warn: { label: "SLA warn", icon: "⚠", fill: "#ffedd5", stroke: "#c2410c", rank: 4 },
  stale: { label: "stale", icon: "↻", fill: "#fef3c7", stroke: "#a16207", rank: 5 },
  never: { label: "never built", icon: "○", fill: "#f1f5f9", stroke: "#64748b", rank: 6 },
  fresh: { label: "fresh", icon: "✓", fill: "#dcfce7", stroke: "#15803d", rank: 7 },
  unknown: { label: "unknown", icon: "?", fill: "#f8fafc", stroke: "#94a3b8", rank: 8 },
  source: { label: "source", icon: "⛁", fill: "#ede9fe", stroke: "#6d28d9", rank: 9 },
};

export function displayOf(kind: "source" | "asset", status: NodeStatus | undefined, running: boolean): Display {
  if (kind === "source") return "source";
  if (running) return "running";
  if (!status) return "unknown";
  if (status.state === "failed" || status.health === "failed_run") return "failed";
  if (status.health === "sla_failed") return "sla_failed";
  if (status.health === "failing_check" || status.failingChecks > 0) return "failing_check";
  if (status.health === "warn") return "sla_warn";
  if (status.state === "stale") return "stale";
  if (status.state === "never_materialized") return "never";
  if (status.state === "fresh") return "fresh";
  return "unknown";
}

/** The worst of several displays (a collapsed group's). */
export function worstDisplay(displays: Iterable<Display>): Display {
  let worst: Display = "source";
  for (const d of displays) if (DISPLAY[d].rank < DISPLAY[worst].rank) worst = d;
  return worst;
}

/** Check badge counts: failing checks (error and warn), and the rest of the declared ones as passed once built. */
export function checkCounts(def: GraphNodeDef, status: NodeStatus | undefined): { passed: number; failed: number } {
  if (!status || !status.built) return { passed: 0, failed: 0 };
  const failing = status.failingChecks + status.warningChecks;
  const failed = Math.min(failing, Math.max(def.checks.length, failing));
  return { passed: Math.max(0, def.checks.length - failed), failed };
}

/** The directory of an asset's file under `assets/` ("" at its top; sources have none). */
export function folderOf(file: string): string {
  const path = file.replace(/\\/g, "/");
  const rel = path.startsWith("assets/") ? path.slice("assets/".length) : path.includes("/assets/") ? path.slice(path.indexOf("/assets/") + 8) : null;
  if (rel === null) return "";
  const slash = rel.lastIndexOf("/");
  return slash < 0 ? "" : rel.slice(0, slash);
}

export type GroupBy = "none" | "folder" | "tag";

/** The group a node belongs to, or null (sources, top-level files, untagged). */
export function groupOf(def: GraphNodeDef, by: GroupBy): string | null {
  if (def.kind !== "asset" || by === "none") return null;
  if (by === "folder") {
    const f = folderOf(def.file);
    return f === "" ? null : f;
  }
  return def.tags.length > 0 ? def.tags[0] : null;
}

/** Every group with its size, sorted by name. */
export function listGroups(defs: readonly GraphNodeDef[], by: GroupBy): { name: string; size: number }[] {
  const sizes = new Map<string, number>();
  for (const d of defs) {
    const g = groupOf(d, by);
    if (g !== null) sizes.set(g, (sizes.get(g) ?? 0) + 1);
  }
  return [...sizes].map(([name, size]) => ({ name, size })).sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** A node of the laid-out view: one graph node, or a collapsed group. */
export interface ViewNode {
  /** The graph node's name, or `group:<name>`. */
  id: string;
  label: string;
  /** Graph node indices it stands for (one unless a group). */
  members: number[];
  group: string | null;
}

export interface ViewGraph {
  nodes: ViewNode[];
  /** Graph node index → view node index, -1 when hidden (outside focus). */
  viewOf: Int32Array;
  upstream: number[][];
  edgeCount: number;
}

export interface ViewOptions {
  groupBy: GroupBy;
  collapsed: ReadonlySet<string>;
  /** Focus mode: only nodes within `depth` levels up or down of `index`. */
  focus: { index: number; depth: number } | null;
}

/** Nodes within `depth` edges upstream or downstream of `start` (each direction walked separately). */
export function neighbourhood(upIdx: readonly (readonly number[])[], start: number, depth: number): Set<number> {
  const downIdx: number[][] = upIdx.map(() => []);
  upIdx.forEach((ups, v) => ups.forEach((u) => downIdx[u].push(v)));
  const keep = new Set<number>([start]);
  for (const adj of [upIdx, downIdx]) {
    let frontier = [start];
    const seen = new Set<number>([start]);
    for (let d = 0; d < depth && frontier.length > 0; d++) {
      const next: number[] = [];
      for (const v of frontier)
        for (const w of adj[v])
          if (!seen.has(w)) {
            seen.add(w);
            keep.add(w);
            next.push(w);
          }
      frontier = next;
    }
  }
  return keep;
}

export function buildView(defs: readonly GraphNodeDef[], upIdx: readonly (readonly number[])[], opts: ViewOptions): ViewGraph {
  const n = defs.length;
  const viewOf = new Int32Array(n).fill(-1);
  const nodes: ViewNode[] = [];
  const visible = opts.focus ? neighbourhood(upIdx, opts.focus.index, Math.max(0, opts.focus.depth)) : null;
  const groupIndex = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    if (visible && !visible.has(i)) continue;
    // Focus mode shows the neighbourhood itself: groups stay open there.
    const g = visible ? null : groupOf(defs[i], opts.groupBy);
    if (g !== null && opts.collapsed.has(g)) {
      let vi = groupIndex.get(g);
      if (vi === undefined) {
        vi = nodes.length;
        groupIndex.set(g, vi);
        nodes.push({ id: `group:${g}`, label: g, members: [], group: g });
      }
      nodes[vi].members.push(i);
      viewOf[i] = vi;
    } else {
      viewOf[i] = nodes.length;
      nodes.push({ id: defs[i].name, label: defs[i].name, members: [i], group: g });
    }
  }
  const upstream: number[][] = nodes.map(() => []);
  const seen = new Set<number>();
  let edgeCount = 0;
  for (let i = 0; i < n; i++) {
    const v = viewOf[i];
    if (v < 0) continue;
    for (const u0 of upIdx[i]) {
      const u = viewOf[u0];
      if (u < 0 || u === v) continue;
      const k = u * nodes.length + v;
      if (seen.has(k)) continue;
      seen.add(k);
      upstream[v].push(u);
      edgeCount++;
    }
  }
  for (const g of nodes) if (g.members.length > 1 || g.id.startsWith("group:")) g.label = `${g.group} (${g.members.length})`;
  return { nodes, viewOf, upstream, edgeCount };
}
