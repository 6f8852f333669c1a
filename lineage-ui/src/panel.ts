//! The asset panel: everything about one asset, opened by a click on its
//! node or a deep link. It loads GetAsset, Explain and Provenance (and the
//! per-partition Status of a partitioned asset) once per asset; a route
//! change within the same asset (a partition, a column) reuses them.

import {
  api, type AssetDetails, type AssetStatus, type CheckResult, type CheckRun, type ColumnNode, type ExplainResponse,
  type ProvenanceNode, type RunAccepted, type UnitStatus, type Version,
} from "./api";
import { DISPLAY, displayOf, type GraphNodeDef } from "./graph";
import { h, fill, fmtInt, fmtTime, fmtBytes, fmtUsd } from "./dom";
import { tokenizeSql } from "./sql";
import { cellLabel, partitionRows } from "./partitions";
import type { Route } from "./route";

export interface PanelHost {
  role(): string;
  def(name: string): GraphNodeDef | undefined;
  /** The sources and assets that read `name`. */
  downstreamOf(name: string): string[];
  isRunning(name: string): boolean;
  navigate(route: Route): void;
  setLineage(items: string[] | null): void;
  focusOn(name: string): void;
  showError(message: string): void;
  close(): void;
  /** The panel read an asset's actual check results (Status counts error checks only). */
  checksRead(name: string, passed: number, failed: number): void;
}

interface Loaded {
  name: string;
  details: AssetDetails | null;
  partitions: UnitStatus[];
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class AssetPanel {
  readonly root: HTMLElement;
  private body: HTMLElement;
  private title: HTMLElement;
  private loaded: Loaded | null = null;
  private loading: Promise<void> | null = null;
  private partitionBox: HTMLElement | null = null;
  private lineageBox: HTMLElement | null = null;
  private generation = 0;
  current: string | null = null;
  /** The run last started from this panel, shown again after a refresh. */
  private lastRun: { name: string; run: RunAccepted } | null = null;

  constructor(private host: PanelHost) {
    this.title = h("h2", { id: "panel-title" });
    this.body = h("div", { class: "panel-body" });
    this.root = h(
      "section",
      { class: "panel", "data-test": "panel", "aria-labelledby": "panel-title", hidden: true, tabindex: "-1" },
      h("div", { class: "panel-head" }, this.title, h("button", { class: "close", "aria-label": "Close panel (Escape)", title: "Close (Escape)", onclick: () => host.close() }, "×")),
      this.body,
    );
  }

  get isOpen(): boolean {
    return !this.root.hidden;
  }

  hide(): void {
    this.root.hidden = true;
    this.root.removeAttribute("data-asset");
    this.current = null;
    this.loaded = null;
    this.generation++;
  }

  /** Opens (or keeps) the panel on `name`, then shows the route's partition or column. */
  async show(name: string, route: Route, reload = false): Promise<void> {
    const fresh = reload || this.current !== name || !this.loaded;
    this.root.hidden = false;
    this.root.setAttribute("data-asset", name);
    this.current = name;
    if (fresh) {
      const gen = ++this.generation;
      fill(this.title, name);
      fill(this.body, h("p", { class: "muted" }, "Loading…"));
      this.loading = this.load(name).then((loaded) => {
        if (gen !== this.generation) return;
        this.loaded = loaded;
        this.render();
      });
    }
    await this.loading;
    if (this.current !== name) return;
    if (route.view === "partition") await this.showPartition(route.partition);
    else if (this.partitionBox) fill(this.partitionBox);
    if (route.view === "column") await this.showColumn(route.column);
    else {
      if (this.lineageBox) fill(this.lineageBox);
      this.markColumn(null);
      this.host.setLineage(null);
    }
  }

  /** Re-reads the open asset (after a run changed it), keeping the route's detail. */
  refresh(route: Route): void {
    if (this.current) void this.show(this.current, route, true);
  }

  private async load(name: string): Promise<Loaded> {
    const def = this.host.def(name);
    const out: Loaded = { name, details: null, partitions: [] };
    if (def?.kind === "source") return out;
    try {
      const [details, partitions] = await Promise.all([
        api.asset(name),
        def && def.partitioning !== "" ? api.status([name], true).catch(() => null) : Promise.resolve(null),
      ]);
      out.details = details;
      out.partitions = partitions?.assets[0]?.partitions?.list ?? [];
    } catch (e) {
      this.host.showError(message(e));
    }
    return out;
  }

  private render(): void {
    const loaded = this.loaded!;
    const def = this.host.def(loaded.name);
    const d = loaded.details;
    const sections: HTMLElement[] = [];
    if (def?.kind === "source" || !d) {
      const kind = def?.kind ?? "asset";
      sections.push(
        h("p", { class: "state-line" }, stateChip(kind === "source" ? DISPLAY.source : DISPLAY.unknown)),
        about(def?.description ?? "", def?.owner ?? "", def?.tags ?? [], def ? `${def.file}${def.line ? `:${def.line}` : ""}` : "", def?.upstream ?? [], this.host.downstreamOf(loaded.name)),
        this.actions(loaded.name, def, null),
      );
      fill(this.body, sections);
      return;
    }
    const status = d.status;
    const current = d.checks.length > 0 || d.partitioning === "" ? d.checks : latestPerPartition(d.check_history ?? []);
    if (current.length > 0) this.host.checksRead(loaded.name, current.filter((c) => c.passed).length, current.filter((c) => !c.passed).length);
    sections.push(
      this.stateSection(loaded.name, status),
      this.actions(loaded.name, def, status),
      about(d.description, d.owner, d.tags, d.file, d.upstream, d.downstream),
      this.rowsSection(d, status),
    );
    if (d.partitioning !== "") sections.push(this.partitionsSection(d, loaded.partitions));
    sections.push(
      this.checksSection(current, d.partitioning !== ""),
      this.schemaSection(d),
      this.explainSection(loaded.name),
      this.provenanceSection(loaded.name, d),
      this.timeTravelSection(loaded.name, d.current ?? status?.current ?? null, d.history),
      this.sqlSection(d.sql),
    );
    fill(this.body, sections);
  }

  private stateSection(name: string, status: AssetStatus | null): HTMLElement {
    const def = this.host.def(name);
    const display = displayOf(def?.kind ?? "asset", status ? { state: status.state, health: status.health, failingChecks: status.failing_checks.length, warningChecks: (status.warning_checks ?? []).length, built: true } : undefined, this.host.isRunning(name));
    // The asset's causes and its partitions' (a partitioned asset tells
    // the same cause in both), each once.
    const causes = [...new Set([
      ...(status?.causes ?? []).map((c) => c.text || c.cause),
      ...(status?.partitions?.stale_causes ?? []),
    ])];
    return h(
      "section",
      { "aria-label": "State" },
      h("p", { class: "state-line" }, stateChip(DISPLAY[display]), status ? h("span", { class: "muted" }, ` state ${status.state}, health ${status.health}`) : null),
      causes.length > 0 ? h("ul", { class: "causes" }, causes.map((c) => h("li", {}, c))) : null,
      status?.sla ? h("p", {}, `SLA ${status.sla.level}: ${status.sla.basis}${status.sla.since ? ` since ${fmtTime(status.sla.since)}` : ""}`) : null,
      status?.failing_checks.length ? h("p", { class: "bad" }, `Failing checks: ${status.failing_checks.join(", ")}`) : null,
      status?.warning_checks?.length ? h("p", {}, `⚠ Checks warning: ${status.warning_checks.join(", ")}`) : null,
      status?.last_failure ? h("details", { class: "failure", open: true },
        h("summary", {}, `Last failure ${fmtTime(status.last_failure.at)}, run `, h("a", { href: `#/run/${encodeURIComponent(status.last_failure.run_id)}` }, status.last_failure.run_id.slice(0, 8))),
        h("pre", {}, status.last_failure.error),
        status.last_failure.failed_checks ? h("p", { class: "bad" }, `Failed checks: ${status.last_failure.failed_checks}`) : null) : null,
    );
  }

  private actions(name: string, def: GraphNodeDef | undefined, status: AssetStatus | null): HTMLElement {
    const box = h("div", { class: "actions" });
    box.append(h("button", { type: "button", onclick: () => this.host.focusOn(name), title: "Show only this asset's neighbourhood" }, "Focus"));
    if (def?.kind !== "asset" || this.host.role() !== "operator") return box;
    const force = h("input", { type: "checkbox", id: "force" });
    // The run stays in view here: its node turns running, then its new state.
    const notice = h("p", { class: "notice", role: "status", hidden: true });
    box.append(
      h("button", {
        type: "button", "data-test": "materialize", class: "primary",
        onclick: async () => {
          try {
            this.lastRun = { name, run: await api.materialize(name, force.checked) };
            runQueued(notice, this.lastRun.run);
          } catch (e) {
            this.host.showError(message(e));
          }
        },
      }, "Materialize"),
      h("label", { class: "inline" }, force, " force"),
    );
    box.append(notice);
    if (this.lastRun?.name === name) runQueued(notice, this.lastRun.run);
    if (def.partitioning !== "" || status?.partitions) {
      const from = h("input", { type: "text", id: "backfill-from", placeholder: "from (e.g. 2024-01-01)", "aria-label": "Backfill from partition", size: 14 });
      const to = h("input", { type: "text", id: "backfill-to", placeholder: "to", "aria-label": "Backfill to partition", size: 14 });
      box.append(
        h("div", { class: "backfill" }, from, to,
          h("button", {
            type: "button", "data-test": "backfill",
            onclick: async () => {
              try {
                this.lastRun = { name, run: await api.backfill(name, from.value.trim(), to.value.trim()) };
                runQueued(notice, this.lastRun.run);
              } catch (e) {
                this.host.showError(message(e));
              }
            },
          }, "Backfill")),
      );
    }
    return box;
  }

  private rowsSection(d: AssetDetails, status: AssetStatus | null): HTMLElement {
    const rows = d.partitioning !== "" ? status?.partitions?.rows ?? 0 : d.current?.row_count ?? status?.current?.row_count ?? 0;
    const history = d.partitioning !== "" ? [] : d.history.filter((v) => v.partition === "");
    const m = d.metrics;
    return h(
      "section",
      { "aria-label": "Rows" },
      h("h3", {}, "Rows"),
      h("p", {}, h("strong", { "data-test": "row-count", "data-value": String(rows) }, fmtInt(rows)), " rows",
        m && (m.rows_added !== null || m.rows_removed !== null) ? h("span", { class: "muted" }, `  (+${fmtInt(m.rows_added)} / −${fmtInt(m.rows_removed)} in the current version)`) : null,
        m && m.cost_usd > 0 ? h("span", { class: "muted" }, `  cost ${fmtUsd(m.cost_usd)}`) : null),
      history.length > 0 ? rowChart(history) : null,
      history.length > 0 ? versionTable(history.slice(-10).reverse()) : null,
    );
  }

  private partitionsSection(d: AssetDetails, list: UnitStatus[]): HTMLElement {
    const byKey = new Map(list.map((u) => [u.partition, u]));
    const strip = h("div", { class: "calendar", role: "list", "aria-label": "Partitions" });
    for (const row of partitionRows(list.map((u) => u.partition))) {
      const cells = h("div", { class: "strip" });
      for (const key of row.keys) {
        const u = byKey.get(key)!;
        const disp = displayOf("asset", { state: u.state, health: u.health, failingChecks: 0, warningChecks: 0, built: u.current !== null }, false);
        const st = DISPLAY[disp];
        const title = `${u.partition}: ${st.label}${u.current ? `, ${fmtInt(u.current.row_count)} rows` : ""}`;
        const day = cellLabel(key);
        cells.append(h("button", {
          type: "button", class: "cell", role: "listitem", title, "aria-label": title, "data-test": "partition", "data-partition": u.partition, "data-state": u.state,
          style: `background:${st.fill};border-color:${st.stroke};color:${st.stroke}`,
          onclick: () => this.host.navigate({ view: "partition", asset: d.status?.name ?? this.current ?? "", partition: u.partition }),
        }, h("span", { class: "cell-icon", "aria-hidden": "true" }, st.icon), day ? h("span", { class: "cell-day", "aria-hidden": "true" }, day) : null));
      }
      strip.append(h("div", { class: "calendar-row" }, row.label ? h("span", { class: "calendar-label mono" }, row.label) : null, cells));
    }
    this.partitionBox = h("div", { class: "partition-detail" });
    const s = d.status?.partitions;
    return h("section", { "aria-label": "Partitions" }, h("h3", {}, `Partitions (${d.partitioning})`),
      s ? h("p", { class: "muted" }, `${s.total} total: ${s.fresh} fresh, ${s.stale} stale, ${s.missing} missing, ${s.failed} failed`) : null,
      list.length > 0 ? strip : h("p", { class: "muted" }, "No partitions yet."), this.partitionBox);
  }

  private async showPartition(key: string): Promise<void> {
    const box = this.partitionBox;
    const d = this.loaded?.details;
    if (!box || !d) return;
    for (const c of this.root.querySelectorAll(".cell")) c.classList.toggle("chosen", c.getAttribute("data-partition") === key);
    const versions = d.history.filter((v) => v.partition === key);
    fill(box, h("h4", {}, `Partition ${key}`), h("p", { class: "muted" }, "Loading provenance…"));
    const prov = await api.provenance(d.status?.name ?? this.current ?? "", key).catch(() => null);
    if (this.partitionBox !== box) return;
    box.setAttribute("data-test", "partition-detail");
    box.setAttribute("data-partition", key);
    box.setAttribute("data-versions", String(versions.length));
    fill(box, h("h4", {}, `Partition ${key}`),
      versions.length > 0 ? rowChart(versions) : null,
      versions.length > 0 ? versionTable([...versions].reverse()) : h("p", { class: "muted" }, "No versions of this partition in the history."),
      prov ? h("div", {}, h("h4", {}, "Provenance"), provenanceTree(prov, { left: 400 })) : null);
  }

  private checksSection(checks: CheckResult[], partitioned: boolean): HTMLElement {
    if (checks.length === 0) return h("section", { "aria-label": "Checks" }, h("h3", {}, "Checks"), h("p", { class: "muted" }, "No check results for the current version."));
    return h("section", { "aria-label": "Checks" }, h("h3", {}, "Checks of the current version"),
      partitioned ? h("p", { class: "muted small" }, "Each check's latest result in every partition, added up.") : null,
      h("ul", { class: "checks" }, checks.map((c) =>
        h("li", { "data-test": "check", "data-name": c.name, "data-passed": String(c.passed), "data-failing-rows": String(c.failing_rows), class: c.passed ? "ok" : c.severity === "warn" ? "warn" : "bad" },
          h("span", { class: "check-icon", "aria-hidden": "true" }, c.passed ? "✓" : "✗"),
          h("strong", {}, c.name), " ", h("span", { class: "muted" }, `${c.severity}, ${c.passed ? "passed" : `failed: ${fmtInt(c.failing_rows)} failing rows`}`),
          c.error ? h("pre", {}, c.error) : null,
          !c.passed ? sampleTable(c.sample_json) : null))));
  }

  private schemaSection(d: AssetDetails): HTMLElement {
    let columns: { name: string; type: string; nullable: boolean }[] = [];
    try {
      const parsed = JSON.parse(d.schema_json || "[]");
      if (Array.isArray(parsed)) columns = parsed;
    } catch {
      columns = [];
    }
    const stats = new Map((d.metrics?.columns ?? []).map((c) => [c.name, c]));
    this.lineageBox = h("div", { class: "lineage", "aria-live": "polite" });
    if (columns.length === 0) return h("section", { "aria-label": "Schema" }, h("h3", {}, "Schema"), h("p", { class: "muted" }, d.partitioning !== "" ? "No schema recorded for the asset as a whole." : "No schema yet (never built)."), this.lineageBox);
    const name = this.current ?? "";
    return h("section", { "aria-label": "Schema" }, h("h3", {}, "Schema"),
      h("p", { class: "muted small" }, "Click a column for its lineage."),
      h("table", { class: "schema" },
        h("thead", {}, h("tr", {}, h("th", {}, "column"), h("th", {}, "type"), h("th", {}, "nulls"), h("th", {}, "min"), h("th", {}, "max"))),
        h("tbody", {}, columns.map((c) => {
          const s = stats.get(c.name);
          return h("tr", {},
            h("td", {}, h("button", { type: "button", class: "link", "data-test": "column", "data-column": c.name, "aria-label": `Lineage of column ${c.name}`, onclick: () => this.host.navigate({ view: "column", asset: name, column: c.name }) }, c.name)),
            h("td", { class: "mono type" }, `${c.type}${c.nullable ? "" : " not null"}`),
            h("td", { class: "num" }, s?.null_count != null ? fmtInt(s.null_count) : "—"),
            h("td", { class: "mono" }, s?.min ?? "—"),
            h("td", { class: "mono" }, s?.max ?? "—"));
        }))),
      this.lineageBox);
  }

  private markColumn(column: string | null): void {
    for (const b of this.root.querySelectorAll("[data-test=column]")) {
      const on = b.getAttribute("data-column") === column;
      b.classList.toggle("chosen", on);
      if (on) b.setAttribute("aria-pressed", "true");
      else b.removeAttribute("aria-pressed");
    }
  }

  private async showColumn(column: string): Promise<void> {
    const box = this.lineageBox;
    const name = this.current;
    if (!box || !name) return;
    this.markColumn(column);
    fill(box, h("p", { class: "muted" }, `Tracing ${name}.${column}…`));
    try {
      const tree = await api.columnLineage(name, column);
      if (this.lineageBox !== box) return;
      const items = flattenLineage(tree);
      this.host.setLineage(items);
      fill(box, h("h4", {}, `Lineage of ${name}.${column}`), h("p", { class: "muted small" }, `${items.length} columns in ${new Set(items.map((i) => i.slice(0, i.lastIndexOf(".")))).size} tables, highlighted in the graph`), lineageView(tree, items));
      box.scrollIntoView({ block: "nearest" });
    } catch (e) {
      fill(box, h("p", { class: "bad" }, message(e)));
      this.host.setLineage([`${name}.${column}`]);
    }
  }

  /** Explain plans the whole selection: it comes after the rest of the panel. */
  private explainSection(name: string): HTMLElement {
    const s = h("section", { "aria-label": "Explain" }, h("h3", {}, "If materialized now (explain)"), h("p", { class: "muted" }, "Planning…"));
    const gen = this.generation;
    api.explain(name).then(
      (ex) => {
        if (gen === this.generation) fill(s, h("h3", {}, "If materialized now (explain)"), explainBody(ex));
      },
      (e) => {
        if (gen === this.generation) fill(s, h("h3", {}, "If materialized now (explain)"), h("p", { class: "bad" }, message(e)));
      },
    );
    return s;
  }

  /** The inputs read come with GetAsset; the full tree (Provenance RPC) on demand, as it can be large. */
  private provenanceSection(name: string, d: AssetDetails): HTMLElement {
    const box = h("div", {});
    const s = h("section", { "aria-label": "Provenance" }, h("h3", {}, "Provenance of the current version"));
    if (!d.current && d.inputs.length === 0) return (s.append(h("p", { class: "muted" }, "No committed version.")), s);
    if (d.inputs.length > 0)
      s.append(h("p", { class: "muted small" }, "Exact upstream versions it read:"), h("ul", { class: "tree" }, d.inputs.map((i) => h("li", {},
        h("a", { href: `#/asset/${encodeURIComponent(i.name)}` }, i.name), i.partition ? ` [${i.partition}]` : "",
        h("span", { class: "mono muted" }, i.kind === "source" ? ` source data ${i.data_version.slice(0, 12)}` : ` version #${i.materialization_id}, data ${i.data_version.slice(0, 12)}`)))));
    const button = h("button", { type: "button", onclick: async () => {
      button.disabled = true;
      fill(box, h("p", { class: "muted" }, "Loading the provenance tree…"));
      try {
        const p = await api.provenance(name, "");
        fill(box, provenanceTree(p, { left: 400 }));
      } catch (e) {
        fill(box, h("p", { class: "bad" }, message(e)));
      }
      button.disabled = false;
    } }, "Show the whole provenance tree");
    s.append(button, box);
    return s;
  }

  private timeTravelSection(name: string, current: Version | null, history: Version[]): HTMLElement {
    const at = current?.committed_at || history[history.length - 1]?.committed_at || "";
    if (!at) return h("section", { "aria-label": "Time travel" });
    const text = `cairn query --as-of '${at}' 'SELECT * FROM ${name}'`;
    const code = h("code", { class: "copyable", "data-test": "time-travel" }, text);
    return h("section", { "aria-label": "Time travel" }, h("h3", {}, "Query this version later"),
      h("div", { class: "copy-row" }, code, h("button", {
        type: "button", "aria-label": "Copy the time-travel query",
        onclick: async (e: MouseEvent) => {
          const b = e.currentTarget as HTMLButtonElement;
          try {
            await navigator.clipboard.writeText(text);
            b.textContent = "Copied";
          } catch {
            const range = document.createRange();
            range.selectNodeContents(code);
            getSelection()?.removeAllRanges();
            getSelection()?.addRange(range);
            b.textContent = "Selected: press Ctrl+C";
          }
        },
      }, "Copy")));
  }

  private sqlSection(sql: string): HTMLElement {
    const pre = h("pre", { class: "sql", "aria-label": "SQL" });
    for (const t of tokenizeSql(sql)) pre.append(t.kind === "whitespace" || t.kind === "operator" ? document.createTextNode(t.text) : h("span", { class: `t-${t.kind}` }, t.text));
    return h("section", { "aria-label": "SQL" }, h("h3", {}, "SQL"), pre);
  }
}

function runQueued(notice: HTMLElement, r: RunAccepted): void {
  fill(notice, r.attached ? "Already queued or running in run " : "Queued as run ",
    h("a", { href: `#/run/${encodeURIComponent(r.run_id)}` }, r.run_id.slice(0, 8)), ": follow it there, or watch the graph.");
  notice.hidden = false;
}

function stateChip(st: { icon: string; label: string; fill: string; stroke: string }): HTMLElement {
  return h("span", { class: "chip", style: `background:${st.fill};color:${st.stroke};border-color:${st.stroke}` }, h("span", { "aria-hidden": "true" }, st.icon), ` ${st.label}`);
}

function links(names: string[]): (HTMLElement | string)[] | string {
  if (names.length === 0) return "—";
  return names.flatMap((n, i) => [i > 0 ? ", " : "", h("a", { href: `#/asset/${encodeURIComponent(n)}`, class: "mono" }, n)]);
}

function about(description: string, owner: string, tags: string[], file: string, upstream: string[], downstream: string[]): HTMLElement {
  return h("section", { "aria-label": "About" },
    description ? h("p", {}, description) : h("p", { class: "muted" }, "No description."),
    h("dl", { class: "facts" },
      h("dt", {}, "Owner"), h("dd", {}, owner || "—"),
      h("dt", {}, "Tags"), h("dd", {}, tags.length > 0 ? tags.map((t) => h("span", { class: "tag" }, t)) : "—"),
      file ? [h("dt", {}, "File"), h("dd", { class: "mono" }, file)] : null,
      h("dt", {}, "Reads"), h("dd", {}, links(upstream)),
      h("dt", {}, "Read by"), h("dd", {}, links(downstream))));
}

/** Every (table, column) in a lineage tree as "table.column", sorted and unique. */
export function flattenLineage(root: ColumnNode): string[] {
  const out = new Set<string>();
  const walk = (n: ColumnNode) => {
    out.add(`${n.table}.${n.column}`);
    n.upstream.forEach(walk);
  };
  walk(root);
  return [...out].sort();
}

/** The traced columns grouped by table (the tree repeats shared upstreams), then the tree itself, bounded. */
function lineageView(tree: ColumnNode, items: string[]): HTMLElement {
  const byTable = new Map<string, string[]>();
  for (const item of items) {
    const dot = item.lastIndexOf(".");
    const table = item.slice(0, dot), column = item.slice(dot + 1);
    const cols = byTable.get(table) ?? [];
    cols.push(column);
    byTable.set(table, cols);
  }
  return h("div", {},
    h("ul", { class: "lineage-list" }, [...byTable].map(([table, cols]) => h("li", {},
      h("a", { href: `#/asset/${encodeURIComponent(table)}` }, table), ": ", h("span", { class: "mono" }, cols.join(", "))))),
    h("details", {}, h("summary", {}, "As a tree"), lineageTree(tree, { left: 300 })));
}

function lineageTree(n: ColumnNode, budget: { left: number }): HTMLElement {
  budget.left--;
  const children: HTMLElement[] = [];
  for (const u of n.upstream) {
    if (budget.left <= 0) {
      children.push(h("ul", { class: "tree" }, h("li", { class: "muted" }, `… ${n.upstream.length - children.length} more not shown`)));
      break;
    }
    children.push(lineageTree(u, budget));
  }
  return h("ul", { class: "tree" }, h("li", {},
    h("span", { class: "mono" }, `${n.table}.${n.column}`), n.kind ? h("span", { class: "muted" }, ` ${n.kind.replace(/_/g, " ")}`) : null, n.is_source ? h("span", { class: "tag" }, "source") : null,
    children));
}

/** A provenance tree, at most `budget.left` entries (a deep graph repeats shared upstreams). */
function provenanceTree(p: ProvenanceNode, budget: { left: number }, depth = 0): HTMLElement {
  budget.left--;
  const label = p.kind === "source"
    ? `${p.name} (source) data ${p.data_version.slice(0, 12)}`
    : `${p.name}${p.partition ? ` [${p.partition}]` : ""} #${p.materialization_id} run ${p.run_id.slice(0, 8)}, ${fmtInt(p.rows)} rows, ${fmtTime(p.committed_at)}${p.run_user ? ` by ${p.run_user}` : ""}`;
  const children: HTMLElement[] = [];
  for (const i of p.inputs) {
    if (budget.left <= 0 || depth >= 12) {
      children.push(h("ul", { class: "tree" }, h("li", { class: "muted" }, `… ${p.inputs.length - children.length} more inputs not shown`)));
      break;
    }
    children.push(provenanceTree(i, budget, depth + 1));
  }
  return h("ul", { class: "tree" }, h("li", {}, h("span", { class: "mono" }, label), p.expired ? h("span", { class: "tag" }, "expired") : null, children));
}

function sampleTable(json: string): HTMLElement | null {
  let rows: Record<string, unknown>[] = [];
  try {
    const parsed = JSON.parse(json || "[]");
    if (Array.isArray(parsed)) rows = parsed.filter((r) => r && typeof r === "object");
  } catch {
    return null;
  }
  return rows.length > 0 ? rowsTable(rows) : null;
}

/** Rows of objects as a table: one column per key in first-seen order. */
export function rowsTable(rows: Record<string, unknown>[]): HTMLElement {
  const keys: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  return h("div", { class: "scroll-x" }, h("table", { class: "sample" },
    h("caption", {}, "Sample failing rows"),
    h("thead", {}, h("tr", {}, keys.map((k) => h("th", {}, k)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, keys.map((k) => h("td", { class: "mono" }, r[k] === null || r[k] === undefined ? "null" : String(typeof r[k] === "object" ? JSON.stringify(r[k]) : r[k]))))))));
}

function versionTable(versions: Version[]): HTMLElement {
  const hasAdded = versions.some((v) => v.rows_added != null || v.rows_removed != null);
  const hasCost = versions.some((v) => v.cost_usd != null);
  return h("div", { class: "scroll-x" }, h("table", { class: "versions" },
    h("thead", {}, h("tr", {}, h("th", {}, "committed"), h("th", {}, "rows"), hasAdded ? h("th", {}, "+/−") : null, hasCost ? h("th", {}, "cost") : null, h("th", {}, "size"), h("th", {}, "run"))),
    h("tbody", {}, versions.map((v) => h("tr", {},
      h("td", {}, fmtTime(v.committed_at)), h("td", { class: "num" }, fmtInt(v.row_count)),
      hasAdded ? h("td", { class: "num" }, v.rows_added != null || v.rows_removed != null ? `+${fmtInt(v.rows_added)} / −${fmtInt(v.rows_removed)}` : "—") : null,
      hasCost ? h("td", { class: "num" }, v.cost_usd != null ? fmtUsd(v.cost_usd) : "—") : null,
      h("td", { class: "num" }, fmtBytes(v.bytes_written)), h("td", { class: "mono", title: v.run_id }, h("a", { href: `#/run/${encodeURIComponent(v.run_id)}` }, v.run_id.slice(0, 8))))))));
}

/** Row count over versions as a small inline SVG line with dots (oldest left). */
function rowChart(versions: Version[]): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const w = 420, hgt = 90, pad = 22;
  const vs = [...versions].sort((a, b) => (a.committed_at < b.committed_at ? -1 : a.committed_at > b.committed_at ? 1 : a.materialization_id - b.materialization_id)).slice(-60);
  const max = Math.max(1, ...vs.map((v) => v.row_count));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Row count of the last ${vs.length} versions, from ${fmtInt(vs[0].row_count)} to ${fmtInt(vs[vs.length - 1].row_count)}`);
  const xOf = (i: number) => pad + (vs.length === 1 ? (w - 2 * pad) / 2 : (i * (w - 2 * pad)) / (vs.length - 1));
  const yOf = (r: number) => hgt - pad + 8 - (r / max) * (hgt - pad - 8);
  const el = (tag: string, attrs: Record<string, string | number>, text?: string) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  el("line", { x1: pad, y1: hgt - pad + 8, x2: w - pad, y2: hgt - pad + 8, stroke: "#cbd5e1" });
  el("text", { x: 2, y: 12, class: "axis" }, fmtInt(max));
  el("text", { x: 2, y: hgt - 2, class: "axis" }, "0");
  if (vs.length > 1) el("polyline", { points: vs.map((v, i) => `${xOf(i)},${yOf(v.row_count)}`).join(" "), fill: "none", stroke: "#2563eb", "stroke-width": 2 });
  vs.forEach((v, i) => {
    const c = el("circle", { cx: xOf(i), cy: yOf(v.row_count), r: 3.5, fill: "#2563eb" });
    const t = document.createElementNS(ns, "title");
    t.textContent = `${fmtTime(v.committed_at)}: ${fmtInt(v.row_count)} rows`;
    c.append(t);
  });
  return svg;
}

function explainBody(ex: ExplainResponse): HTMLElement {
  const units = ex.units.slice(0, 40);
  return h("div", {},
    h("p", { class: "muted" }, `${ex.build} build, ${ex.build_unless_upstream_unchanged} build unless upstream unchanged, ${ex.forced} forced, ${ex.fresh} fresh`),
    h("ul", { class: "explain" }, units.map((u) => h("li", {},
      h("strong", {}, u.asset), u.partition ? ` [${u.partition}]` : "", `: ${u.decision.replace(/_/g, " ")}`,
      u.causes.length > 0 ? h("span", { class: "muted" }, ` — ${u.causes.map((c) => c.text || c.cause).join("; ")}`) : null,
      u.last_failure ? h("span", { class: "bad" }, ` (last failure: ${u.last_failure})`) : null))),
    ex.units.length > units.length ? h("p", { class: "muted" }, `… and ${ex.units.length - units.length} more units`) : null);
}

/**
 * A partitioned asset's current checks: per check, its latest result in
 * each partition, added up — failed if any partition's latest failed, the
 * failing rows summed, the samples of the failing ones joined.
 */
export function latestPerPartition(history: CheckRun[]): CheckResult[] {
  const latest = new Map<string, CheckRun>();
  for (const run of history) {
    if (!run.result) continue;
    const key = `${run.result.name}\u0000${run.partition}`;
    const seen = latest.get(key);
    if (!seen || run.at > seen.at) latest.set(key, run);
  }
  const byName = new Map<string, CheckResult>();
  const samples = new Map<string, unknown[]>();
  for (const run of latest.values()) {
    const r = run.result!;
    const acc = byName.get(r.name) ?? { name: r.name, severity: r.severity, passed: true, failing_rows: 0, sample_json: "[]", error: "" };
    acc.passed &&= r.passed;
    acc.failing_rows += r.failing_rows;
    if (r.error && !acc.error) acc.error = `${run.partition}: ${r.error}`;
    if (!r.passed) {
      try {
        const rows = JSON.parse(r.sample_json || "[]");
        if (Array.isArray(rows)) samples.set(r.name, [...(samples.get(r.name) ?? []), ...rows].slice(0, 10));
      } catch {
        // No sample for this one.
      }
    }
    byName.set(r.name, acc);
  }
  for (const [name, rows] of samples) byName.get(name)!.sample_json = JSON.stringify(rows);
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}
