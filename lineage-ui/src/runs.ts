//! The runs view: recent runs (ListRuns), one run's units (GetRun) with
//! readable errors and failed checks' sample rows, and a running run's
//! progress live (WatchRun). Operators get Cancel on queued/running runs.

import { api, stream, type CheckResult, type Run, type RunEvent, type UnitResult } from "./api";
import { h, fill, fmtTime, fmtInt } from "./dom";
import { rowsTable } from "./panel";
import type { Route } from "./route";

export interface RunsHost {
  role(): string;
  navigate(route: Route): void;
  showError(message: string): void;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
const STATUS_ICON: Record<string, string> = { queued: "…", running: "▶", succeeded: "✓", failed: "✗", cancelled: "⊘", crashed: "✗" };
const OUTCOME_ICON: Record<string, string> = { materialized: "✓", fresh: "=", failed: "✗", skipped: "↷", running: "▶" };

export class RunsView {
  readonly root: HTMLElement;
  private mode: "list" | "run" | null = null;
  private runId = "";
  private watch: AbortController | null = null;
  private refreshTimer = 0;
  private live: HTMLElement | null = null;
  private results = new Map<string, UnitResult>();
  /** The watched run's events so far: a re-render of the run keeps them. */
  private events: RunEvent[] = [];
  /** Units the run planned (its `planned` event), and those ended so far. */
  private planned = 0;
  private ended = new Map<string, string>();
  private progress: HTMLElement | null = null;

  constructor(private host: RunsHost) {
    this.root = h("section", { class: "runs", hidden: true, "aria-label": "Runs" });
  }

  hide(): void {
    this.root.hidden = true;
    this.mode = null;
    this.stopWatch();
  }

  private stopWatch(): void {
    this.watch?.abort();
    this.watch = null;
  }

  async showList(): Promise<void> {
    this.stopWatch();
    this.mode = "list";
    this.root.hidden = false;
    if (!this.root.querySelector(".run-list")) fill(this.root, h("h2", {}, "Runs"), h("p", { class: "muted" }, "Loading…"));
    try {
      const { runs } = await api.listRuns(100);
      if (this.mode !== "list") return;
      fill(this.root, h("h2", {}, "Runs"),
        runs.length === 0 ? h("p", { class: "muted" }, "No runs yet.") :
          h("table", { class: "run-list" },
            h("thead", {}, h("tr", {}, h("th", {}, "status"), h("th", {}, "run"), h("th", {}, "command"), h("th", {}, "trigger"), h("th", {}, "user"), h("th", {}, "started"), h("th", {}, "finished"), h("th", {}, "units"))),
            h("tbody", {}, runs.map((r) => h("tr", { "data-test": "run", "data-run-id": r.run_id, "data-status": r.status },
              h("td", {}, statusChip(r.status)),
              h("td", {}, h("a", { href: `#/run/${encodeURIComponent(r.run_id)}`, class: "mono" }, r.run_id)),
              h("td", { class: "mono" }, r.command), h("td", {}, r.trigger), h("td", {}, r.user),
              h("td", {}, fmtTime(r.started_at || r.queued_at)), h("td", {}, fmtTime(r.finished_at)),
              h("td", { class: "num" }, String(r.units.length)))))));
    } catch (e) {
      this.host.showError(message(e));
    }
  }

  async showRun(runId: string): Promise<void> {
    this.stopWatch();
    this.mode = "run";
    this.runId = runId;
    this.results = new Map();
    this.events = [];
    this.planned = 0;
    this.ended = new Map();
    this.root.hidden = false;
    fill(this.root, h("p", {}, h("a", { href: "#/runs" }, "← All runs")), h("h2", {}, `Run ${runId}`), h("p", { class: "muted" }, "Loading…"));
    let run: Run;
    try {
      run = await api.getRun(runId);
    } catch (e) {
      this.host.showError(message(e));
      return;
    }
    if (this.mode !== "run" || this.runId !== runId) return;
    this.renderRun(run);
    // Events so far, then live ones; the report (when this server ran it)
    // carries the failed checks' sample rows.
    const ctrl = new AbortController();
    this.watch = ctrl;
    stream("WatchRun", { run_id: runId, reports: true }, (e) => this.onRunEvent(e), ctrl.signal)
      .then(() => {
        if (this.watch === ctrl && this.runId === runId) void this.reloadRun();
      })
      .catch(() => undefined);
  }

  private async reloadRun(): Promise<void> {
    try {
      const run = await api.getRun(this.runId);
      if (this.mode === "run" && run.run_id === this.runId) this.renderRun(run);
    } catch (e) {
      this.host.showError(message(e));
    }
  }

  private renderRun(run: Run): void {
    const active = run.status === "queued" || run.status === "running";
    this.live = h("ol", { class: "events", "aria-live": "polite" });
    const canCancel = active && this.host.role() === "operator";
    fill(this.root,
      h("p", {}, h("a", { href: "#/runs" }, "← All runs")),
      h("h2", {}, `Run `, h("span", { class: "mono" }, run.run_id), " ", statusChip(run.status)),
      h("div", { class: "run-meta", "data-test": "run", "data-run-id": run.run_id, "data-status": run.status },
        h("dl", { class: "facts" },
          h("dt", {}, "Command"), h("dd", { class: "mono" }, run.command || "—"),
          h("dt", {}, "Trigger"), h("dd", {}, run.trigger || "—"),
          h("dt", {}, "User"), h("dd", {}, `${run.user || "—"}${run.host ? ` on ${run.host}` : ""}`),
          h("dt", {}, "Queued"), h("dd", {}, fmtTime(run.queued_at)),
          h("dt", {}, "Started"), h("dd", {}, fmtTime(run.started_at)),
          h("dt", {}, "Finished"), h("dd", {}, fmtTime(run.finished_at)))),
      canCancel ? h("div", { class: "actions" }, h("button", {
        type: "button", "data-test": "cancel", class: "danger",
        onclick: async (ev: MouseEvent) => {
          const b = ev.currentTarget as HTMLButtonElement;
          b.disabled = true;
          b.textContent = "Cancelling…";
          try {
            this.renderRun(await api.cancelRun(run.run_id));
          } catch (e) {
            this.host.showError(message(e));
          }
        },
      }, "Cancel run")) : null,
      run.error ? h("pre", { class: "error-text" }, run.error) : null,
      (this.progress = h("div", { class: "progress", "aria-live": "polite" })),
      h("h3", {}, `Units (${run.units.length})`),
      run.units.length === 0 ? h("p", { class: "muted" }, active ? "Nothing finished yet." : "No units.") :
        h("table", { class: "units" },
          h("thead", {}, h("tr", {}, h("th", {}, "outcome"), h("th", {}, "asset"), h("th", {}, "partition"), h("th", {}, "details"))),
          h("tbody", {}, run.units.map((u) => {
            const r = this.results.get(`${u.asset}\u0000${u.partition}`);
            return h("tr", { class: `outcome-${u.outcome}` },
              h("td", {}, h("span", { "aria-hidden": "true" }, OUTCOME_ICON[u.outcome] ?? "·"), ` ${u.outcome}`),
              h("td", {}, h("a", { href: `#/asset/${encodeURIComponent(u.asset)}` }, u.asset)),
              h("td", { class: "mono" }, u.partition || "—"),
              h("td", {}, u.error ? errorBlock(u.error) : null, r ? failedChecks(r.checks) : null));
          }))),
      h("h3", { hidden: this.events.length === 0, class: "events-title" }, active ? "Live events" : "Events"), this.live);
    for (const e of this.events) this.live.append(eventItem(e));
    this.renderProgress();
  }

  private renderProgress(): void {
    if (!this.progress) return;
    if (this.planned === 0) {
      fill(this.progress);
      return;
    }
    const done = this.ended.size;
    const failed = [...this.ended.values()].filter((o) => o === "failed").length;
    fill(this.progress, h("progress", { max: String(this.planned), value: String(done), "aria-label": "Units done" }),
      ` ${done} of ${this.planned} units done${failed > 0 ? `, ${failed} failed` : ""}`);
  }

  private onRunEvent(e: RunEvent): void {
    if (e.event === "report" && e.report) {
      for (const r of e.report.results) this.results.set(`${r.asset}\u0000${r.partition}`, r);
      return;
    }
    if (e.event === "planned") {
      this.planned = e.planned?.length ?? 0;
      this.renderProgress();
      return;
    }
    if (["built", "early_cutoff", "fresh", "failed", "skipped"].includes(e.event)) {
      this.ended.set(`${e.asset}\u0000${e.partition}`, e.event);
      this.renderProgress();
    }
    this.events.push(e);
    if (this.live) {
      this.root.querySelector(".events-title")?.removeAttribute("hidden");
      this.live.append(eventItem(e));
    }
    if (e.event === "finished") void this.reloadRun();
  }

  /** Every run event (from the global stream): keep the list current. */
  onGlobalEvent(e: RunEvent): void {
    if (this.mode !== "list") return;
    if (!["queued", "started", "finished"].includes(e.event)) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = window.setTimeout(() => void this.showList(), 300);
  }
}

function eventItem(e: RunEvent): HTMLElement {
  if (e.event === "finished") {
    return h("li", { class: e.status === "succeeded" ? "" : "bad" }, h("span", { class: "muted" }, `${fmtTime(e.at)} `), `finished: ${e.status}${e.error ? ` — ${e.error}` : ""}`);
  }
  const what = [e.event.replace(/_/g, " "), e.asset, e.partition ? `[${e.partition}]` : "", e.event === "built" ? `${fmtInt(e.rows)} rows in ${e.wall_ms} ms${e.data_unchanged ? " (data unchanged)" : ""}` : "", e.status, e.error]
    .filter((s) => s !== "")
    .join(" ");
  return h("li", { class: e.event === "failed" ? "bad" : "" }, h("span", { class: "muted" }, `${fmtTime(e.at)} `), what);
}

function statusChip(status: string): HTMLElement {
  return h("span", { class: `chip run-${status}` }, h("span", { "aria-hidden": "true" }, STATUS_ICON[status] ?? "·"), ` ${status}`);
}

/** An error as readable text; a JSON array of rows inside it becomes a table. */
function errorBlock(error: string): HTMLElement {
  const box = h("div", {}, h("pre", { class: "error-text" }, error));
  const start = error.indexOf("[{");
  const end = error.lastIndexOf("}]");
  if (start >= 0 && end > start) {
    try {
      const rows = JSON.parse(error.slice(start, end + 2));
      if (Array.isArray(rows) && rows.length > 0) box.append(rowsTable(rows));
    } catch {
      // Not JSON after all: the text says it.
    }
  }
  return box;
}

function failedChecks(checks: CheckResult[]): HTMLElement | null {
  const failed = checks.filter((c) => !c.passed);
  if (failed.length === 0) return null;
  return h("div", {}, failed.map((c) => {
    let rows: Record<string, unknown>[] = [];
    try {
      const parsed = JSON.parse(c.sample_json || "[]");
      if (Array.isArray(parsed)) rows = parsed;
    } catch {
      rows = [];
    }
    return h("div", { class: "failed-check" }, h("strong", {}, `✗ ${c.name}`), ` ${c.severity}, ${fmtInt(c.failing_rows)} failing rows`, c.error ? h("pre", {}, c.error) : null, rows.length > 0 ? rowsTable(rows) : null);
  }));
}
