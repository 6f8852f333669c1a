//! The page: loads the graph (Graph + Status + WhoAmI in parallel), lays it
//! out, draws it, then follows the hash route (panel, runs) and the global
//! run stream (WatchRuns), which recolours exactly the assets its events
//! name — the page never polls the whole graph.
//!
//! Test hooks live on `window.__cairn` (see README.md): their names are
//! what the Rust end-to-end test and the benchmark call.

import "./style.css";
import { api, ApiError, onSignInNeeded, stream, traffic, type AssetStatus, type RunEvent } from "./api";
import { h, fill } from "./dom";
import {
  DISPLAY, buildView, checkCounts, displayOf, listGroups, worstDisplay,
  type Display, type GraphNodeDef, type GroupBy, type NodeStatus, type ViewGraph,
} from "./graph";
import { layout, type Layout } from "./layout";
import { AssetPanel } from "./panel";
import { GraphCanvas, type NodeLook } from "./render";
import { formatRoute, parseRoute, routeAsset, type Route } from "./route";
import { RunsView } from "./runs";
import { search, type SearchHit } from "./search";

// ---- state -----------------------------------------------------------------

const S = {
  defs: [] as GraphNodeDef[],
  index: new Map<string, number>(),
  upIdx: [] as number[][],
  status: new Map<string, NodeStatus>(),
  /** Units being built per asset, as "run\0partition" (from the run stream). */
  running: new Map<string, Set<string>>(),
  /** Actual check results of assets whose panel was opened (warn checks included). */
  checksSeen: new Map<string, { passed: number; failed: number }>(),
  role: "viewer",
  groupBy: "none" as GroupBy,
  collapsed: new Set<string>(),
  focus: null as { index: number; depth: number } | null,
  view: null as ViewGraph | null,
  layout: null as Layout | null,
  lineage: [] as string[],
  route: { view: "graph" } as Route,
  firstRenderMs: 0,
  bytesAtFirstRender: 0,
};

// ---- DOM -------------------------------------------------------------------

const app = document.getElementById("app")!;
const searchInput = h("input", {
  type: "search", id: "search", placeholder: "Search assets by name, tag, owner  ( / )", autocomplete: "off",
  role: "combobox", "aria-label": "Search assets by name, tag or owner", "aria-expanded": "false", "aria-controls": "search-results", "aria-autocomplete": "list",
});
const searchResults = h("ul", { id: "search-results", role: "listbox", class: "search-results", hidden: true, "aria-label": "Search results" });
const errorBanner = h("div", { class: "error-banner", "data-test": "error", role: "alert", hidden: true });
const whoLabel = h("span", { class: "who" });
const navGraph = h("a", { href: "#/", class: "nav" }, "Graph");
const navRuns = h("a", { href: "#/runs", class: "nav" }, "Runs");
const canvasEl = h("canvas", { class: "graph", tabindex: "0", role: "img", "aria-label": "Asset graph" });
const tooltip = h("div", { class: "tooltip", hidden: true, "aria-hidden": "true" });
const graphStatus = h("div", { class: "graph-status", "aria-live": "polite" }, "Loading the graph…");
const groupSelect = h("select", { id: "group-by", "aria-label": "Group nodes by" },
  h("option", { value: "none" }, "no groups"), h("option", { value: "folder" }, "folder"), h("option", { value: "tag" }, "tag"));
const groupList = h("div", { class: "group-list" });
const focusBox = h("div", { class: "focus-box", hidden: true });
const legend = h("ul", { class: "legend", "aria-label": "Legend" },
  (Object.keys(DISPLAY) as Display[]).filter((d) => d !== "unknown").map((d) =>
    h("li", {}, h("span", { class: "swatch", style: `background:${DISPLAY[d].fill};border-color:${DISPLAY[d].stroke};color:${DISPLAY[d].stroke}` }, DISPLAY[d].icon), DISPLAY[d].label)),
  h("li", {}, h("span", { class: "badge ok" }, "✓3"), h("span", { class: "badge bad" }, "✗1"), " checks"));

const canvas = new GraphCanvas(canvasEl);
const panel = new AssetPanel({
  role: () => S.role,
  def: (name) => S.defs[S.index.get(name) ?? -1],
  downstreamOf: (name) => S.defs.filter((d) => d.upstream.includes(name)).map((d) => d.name),
  isRunning: (name) => isRunning(name),
  navigate,
  setLineage,
  focusOn: (name) => setFocus(name, S.focus?.depth ?? 2),
  showError,
  close: () => navigate({ view: "graph" }),
  checksRead: (name, passed, failed) => {
    S.checksSeen.set(name, { passed, failed });
    recolour();
  },
});
const runs = new RunsView({ role: () => S.role, navigate, showError });

const controls = h("div", { class: "controls" },
  h("div", { class: "zoom" },
    h("button", { type: "button", "aria-label": "Zoom in (+)", title: "Zoom in (+)", onclick: () => canvas.zoomAt(1.25) }, "+"),
    h("button", { type: "button", "aria-label": "Zoom out (−)", title: "Zoom out (−)", onclick: () => canvas.zoomAt(0.8) }, "−"),
    h("button", { type: "button", "aria-label": "Fit the graph (0)", title: "Fit (0)", onclick: () => canvas.fit() }, "Fit")),
  focusBox, h("label", {}, "Group by ", groupSelect), groupList,
  h("details", { class: "keys" }, h("summary", {}, "Keys"), h("ul", {},
    h("li", {}, h("kbd", {}, "/"), " search, ", h("kbd", {}, "↑"), h("kbd", {}, "↓"), " ", h("kbd", {}, "Enter"), " pick"),
    h("li", {}, h("kbd", {}, "+"), h("kbd", {}, "−"), " zoom, ", h("kbd", {}, "0"), " fit"),
    h("li", {}, "on the graph: arrows move along edges from the selected node (", h("kbd", {}, "Shift"), " pans)"),
    h("li", {}, h("kbd", {}, "Esc"), " closes the panel"))));
const graphArea = h("div", { class: "graph-area" }, canvasEl, tooltip, graphStatus, controls, legend);

fill(app,
  h("header", { class: "top" },
    h("h1", {}, h("span", { "aria-hidden": "true", class: "logo" }, "▲ "), "Cairn"),
    h("nav", { "aria-label": "Views" }, navGraph, navRuns),
    h("div", { class: "search" }, searchInput, searchResults),
    whoLabel),
  errorBanner,
  h("main", { class: "main" }, graphArea, panel.root, runs.root));

// ---- errors and sign-in -----------------------------------------------------

function showError(message: string): void {
  fill(errorBanner, h("span", {}, message), h("button", { type: "button", "aria-label": "Dismiss error", onclick: () => (errorBanner.hidden = true) }, "×"));
  errorBanner.hidden = false;
}

onSignInNeeded((refused) => new Promise<string>((resolve) => {
  const input = h("input", { id: "token", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "sign-in", "aria-label": "Sign in" },
    h("h2", {}, "Sign in"), h("p", {}, "This Cairn server needs a token."),
    refused ? h("p", { class: "bad", role: "alert" }, "The server refused that token. Try another.") : null,
    h("label", { for: "token" }, "Token"), input,
    h("button", { id: "sign-in", type: "submit", class: "primary" }, "Sign in"));
  const overlay = h("div", { class: "overlay", role: "dialog", "aria-modal": "true", "aria-label": "Sign in" }, form);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value === "") return;
    overlay.remove();
    resolve(input.value);
  });
  document.body.append(overlay);
  input.focus();
}));

// ---- graph building -----------------------------------------------------------

function statusOf(a: AssetStatus): NodeStatus {
  const built = a.current !== null || (a.partitions !== null && a.partitions.total > a.partitions.missing);
  return { state: a.state, health: a.health, failingChecks: a.failing_checks.length, warningChecks: (a.warning_checks ?? []).length, built };
}

function nodeDisplay(i: number): Display {
  const d = S.defs[i];
  return displayOf(d.kind, S.status.get(d.name), isRunning(d.name));
}

function checksOf(i: number): { passed: number; failed: number } {
  const d = S.defs[i];
  return S.checksSeen.get(d.name) ?? checkCounts(d, S.status.get(d.name));
}

function computeLooks(view: ViewGraph): NodeLook[] {
  return view.nodes.map((vn) => {
    if (vn.id.startsWith("group:")) {
      let passed = 0, failed = 0;
      for (const m of vn.members) {
        const c = checksOf(m);
        passed += c.passed;
        failed += c.failed;
      }
      return { display: worstDisplay(vn.members.map(nodeDisplay)), passed, failed, isGroup: true };
    }
    const i = vn.members[0];
    const c = checksOf(i);
    return { display: nodeDisplay(i), passed: c.passed, failed: c.failed, isGroup: false };
  });
}

/** Rebuilds the view (groups, focus), lays it out and draws it. */
function rebuild(fit: boolean): void {
  const view = buildView(S.defs, S.upIdx, { groupBy: S.groupBy, collapsed: S.collapsed, focus: S.focus });
  // Start each layer grouped by folder so a folder's nodes sit together.
  const key = new Float64Array(view.nodes.length);
  const folderRank = new Map<string, number>();
  view.nodes.forEach((vn, i) => {
    const g = vn.group ?? "";
    if (!folderRank.has(g)) folderRank.set(g, folderRank.size);
    key[i] = folderRank.get(g)! * 1e6 + i;
  });
  const l = layout({ count: view.nodes.length, upstream: view.upstream, initialKey: key });
  S.view = view;
  S.layout = l;
  canvas.setGraph(view, l, computeLooks(view));
  applyHighlights();
  if (fit) canvas.fit("readable");
  renderGroupControls();
}

function recolour(): void {
  if (!S.view) return;
  canvas.looks = computeLooks(S.view);
  canvas.requestDraw();
}

function viewIndexOf(name: string): number {
  const i = S.index.get(name);
  if (i === undefined || !S.view) return -1;
  return S.view.viewOf[i];
}

function applyHighlights(): void {
  const set = new Set<number>();
  for (const item of S.lineage) {
    const dot = item.lastIndexOf(".");
    const v = viewIndexOf(dot < 0 ? item : item.slice(0, dot));
    if (v >= 0) set.add(v);
  }
  canvas.highlighted = set;
  const sel = routeAsset(S.route);
  canvas.selected = sel ? viewIndexOf(sel) : -1;
  canvas.requestDraw();
}

function setLineage(items: string[] | null): void {
  S.lineage = items ? [...items].sort() : [];
  applyHighlights();
  // Bring the traced columns' tables into view when they are off screen.
  if (items && items.length > 0) canvas.reveal([...canvas.highlighted]);
}

function renderGroupControls(): void {
  if (S.groupBy === "none") {
    fill(groupList);
    return;
  }
  const groups = listGroups(S.defs, S.groupBy);
  if (groups.length === 0) {
    fill(groupList, h("p", { class: "muted small" }, S.groupBy === "folder" ? "No asset folders under assets/." : "No tags."));
    return;
  }
  const toggle = (all: boolean) => {
    S.collapsed = all ? new Set(groups.map((g) => g.name)) : new Set();
    rebuild(true);
  };
  const open = (groupList.querySelector("details") as HTMLDetailsElement | null)?.open ?? false;
  fill(groupList, h("details", { open }, h("summary", {}, `${groups.length} groups, ${S.collapsed.size} collapsed`),
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => toggle(true) }, "Collapse all"),
      h("button", { type: "button", onclick: () => toggle(false) }, "Expand all")),
    h("ul", {}, groups.map((g) => {
      const box = h("input", { type: "checkbox", checked: S.collapsed.has(g.name), "aria-label": `Collapse ${g.name}` });
      box.addEventListener("change", () => {
        if (box.checked) S.collapsed.add(g.name);
        else S.collapsed.delete(g.name);
        rebuild(false);
      });
      return h("li", {}, h("label", {}, box, ` ${g.name} `, h("span", { class: "muted" }, `(${g.size})`)));
    }))));
}

groupSelect.addEventListener("change", () => {
  S.groupBy = groupSelect.value as GroupBy;
  S.collapsed = new Set();
  rebuild(false);
});

function setFocus(name: string | null, depth: number): void {
  const i = name === null ? undefined : S.index.get(name);
  S.focus = i === undefined ? null : { index: i, depth: Math.max(0, Math.min(50, depth)) };
  rebuild(true);
  if (S.focus) {
    const depthInput = h("input", { type: "number", min: "0", max: "50", value: String(S.focus.depth), id: "focus-depth", "aria-label": "Levels up and down" });
    depthInput.addEventListener("change", () => setFocus(name, Number(depthInput.value) || 0));
    fill(focusBox, h("strong", {}, "Focus: "), h("span", { class: "mono" }, name ?? ""), " ",
      h("label", {}, "levels ", depthInput), " ",
      h("button", { type: "button", onclick: () => setFocus(null, 0) }, "Show all"));
    focusBox.hidden = false;
    const v = viewIndexOf(name!);
    if (v >= 0 && canvas.k < 0.5) canvas.centerOn(v, 0.5);
  } else {
    focusBox.hidden = true;
    fill(focusBox);
  }
}

// ---- interaction -------------------------------------------------------------

function navigate(route: Route): void {
  const hash = formatRoute(route);
  if (location.hash === hash) void applyRoute();
  else location.hash = hash;
}

function openNode(v: number): void {
  const vn = S.view?.nodes[v];
  if (!vn) return;
  if (vn.id.startsWith("group:") && vn.group) {
    S.collapsed.delete(vn.group);
    rebuild(false);
    return;
  }
  navigate({ view: "asset", asset: vn.id });
}

let drag: { x: number; y: number; moved: boolean } | null = null;
canvasEl.addEventListener("pointerdown", (e) => {
  drag = { x: e.clientX, y: e.clientY, moved: false };
  canvasEl.setPointerCapture(e.pointerId);
});
canvasEl.addEventListener("pointermove", (e) => {
  if (drag) {
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (drag.moved || Math.abs(dx) + Math.abs(dy) > 3) {
      drag.moved = true;
      canvas.panBy(dx, dy);
      drag.x = e.clientX;
      drag.y = e.clientY;
      tooltip.hidden = true;
    }
    return;
  }
  const r = canvasEl.getBoundingClientRect();
  const v = canvas.hit(e.clientX - r.left, e.clientY - r.top);
  canvasEl.style.cursor = v >= 0 ? "pointer" : "grab";
  if (v >= 0 && S.view) {
    const vn = S.view.nodes[v];
    const look = canvas.looks[v];
    fill(tooltip, h("strong", {}, vn.label), h("br"), `${DISPLAY[look.display].icon} ${DISPLAY[look.display].label}`,
      look.passed + look.failed > 0 ? ` · checks ✓${look.passed} ✗${look.failed}` : "");
    tooltip.style.left = `${e.clientX - r.left + 14}px`;
    tooltip.style.top = `${e.clientY - r.top + 14}px`;
    tooltip.hidden = false;
  } else tooltip.hidden = true;
});
canvasEl.addEventListener("pointerup", (e) => {
  const d = drag;
  drag = null;
  if (!d || d.moved) return;
  const r = canvasEl.getBoundingClientRect();
  const v = canvas.hit(e.clientX - r.left, e.clientY - r.top);
  if (v >= 0) openNode(v);
});
canvasEl.addEventListener("pointerleave", () => (tooltip.hidden = true));
canvasEl.addEventListener("wheel", (e) => {
  e.preventDefault();
  const r = canvasEl.getBoundingClientRect();
  canvas.zoomAt(Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015)), e.clientX - r.left, e.clientY - r.top);
}, { passive: false });
/** The view node an arrow key moves to from `v`: up/downstream, or the neighbour in its layer. */
function stepFrom(v: number, key: string): number {
  const view = S.view, l = S.layout;
  if (!view || !l) return -1;
  const nearestByY = (cands: number[]) => cands.reduce((best, c) => (best < 0 || Math.abs(l.y[c] - l.y[v]) < Math.abs(l.y[best] - l.y[v]) ? c : best), -1);
  if (key === "ArrowLeft") return nearestByY(view.upstream[v]);
  if (key === "ArrowRight") return nearestByY(view.upstream.flatMap((ups, w) => (ups.includes(v) ? [w] : [])));
  const column = l.layers[l.layerOf[v]];
  const at = column.indexOf(v);
  const next = column[at + (key === "ArrowDown" ? 1 : -1)];
  return next ?? -1;
}

// Arrows: with a node selected, move the selection along edges (left:
// upstream, right: downstream) and within its column (up/down); with none,
// or with Shift, pan. Enter opens the node under the centre when none is.
canvasEl.addEventListener("keydown", (e) => {
  const step = 60;
  const moves: Record<string, [number, number]> = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
  const m = moves[e.key];
  if (m) {
    e.preventDefault();
    if (canvas.selected >= 0 && !e.shiftKey) {
      const next = stepFrom(canvas.selected, e.key);
      if (next >= 0) openNode(next);
      return;
    }
    canvas.panBy(m[0], m[1]);
  } else if (e.key === "Enter" && canvas.selected < 0) {
    const { width, height } = canvas.size;
    const v = canvas.hit(width / 2, height / 2);
    if (v >= 0) openNode(v);
  }
});

const typing = (t: EventTarget | null) => t instanceof HTMLElement && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "Escape") {
    if (document.activeElement === searchInput) return;
    if (panel.isOpen) {
      e.preventDefault();
      navigate({ view: "graph" });
      canvasEl.focus();
    }
    return;
  }
  if (typing(e.target)) return;
  if (e.key === "/") {
    e.preventDefault();
    searchInput.focus();
    searchInput.select();
  } else if (e.key === "+" || e.key === "=") canvas.zoomAt(1.25);
  else if (e.key === "-" || e.key === "_") canvas.zoomAt(0.8);
  else if (e.key === "0") canvas.fit();
});

// Search: arrows move through results, Enter opens one.
let hits: SearchHit[] = [];
let active = -1;
function renderHits(): void {
  searchResults.replaceChildren();
  hits.forEach((hit, i) => {
    const d = S.defs[hit.index];
    const disp = DISPLAY[nodeDisplay(hit.index)];
    const li = h("li", { id: `hit-${i}`, role: "option", "aria-selected": String(i === active), class: i === active ? "active" : "" },
      h("span", { class: "swatch", style: `background:${disp.fill};border-color:${disp.stroke};color:${disp.stroke}`, title: disp.label }, disp.icon),
      h("span", { class: "name" }, d.name), h("span", { class: "muted small" }, ` ${hit.reason}`));
    li.addEventListener("mousedown", (e) => {
      e.preventDefault();
      pick(i);
    });
    searchResults.append(li);
  });
  const open = hits.length > 0;
  searchResults.hidden = !open;
  searchInput.setAttribute("aria-expanded", String(open));
  if (active >= 0) searchInput.setAttribute("aria-activedescendant", `hit-${active}`);
  else searchInput.removeAttribute("aria-activedescendant");
}
function pick(i: number): void {
  const hit = hits[i];
  if (!hit) return;
  const name = S.defs[hit.index].name;
  hits = [];
  renderHits();
  searchInput.value = name;
  navigate({ view: "asset", asset: name });
  // Keyboard users continue in the panel (Tab reaches its buttons).
  panel.root.focus();
}
searchInput.addEventListener("input", () => {
  hits = search(S.defs, searchInput.value, 12);
  active = hits.length > 0 ? 0 : -1;
  renderHits();
});
searchInput.addEventListener("keydown", (e) => {
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    if (hits.length === 0) return;
    active = (active + (e.key === "ArrowDown" ? 1 : hits.length - 1)) % hits.length;
    renderHits();
  } else if (e.key === "Enter") {
    e.preventDefault();
    pick(active >= 0 ? active : 0);
  } else if (e.key === "Escape") {
    e.preventDefault();
    hits = [];
    renderHits();
    searchInput.blur();
  }
});
searchInput.addEventListener("blur", () => setTimeout(() => {
  hits = [];
  renderHits();
}, 150));

// ---- routes --------------------------------------------------------------------

async function applyRoute(): Promise<void> {
  const route = parseRoute(location.hash);
  S.route = route;
  navGraph.classList.toggle("current", route.view !== "runs" && route.view !== "run");
  navRuns.classList.toggle("current", route.view === "runs" || route.view === "run");
  if (route.view === "runs" || route.view === "run") {
    panel.hide();
    graphArea.hidden = true;
    if (route.view === "runs") await runs.showList();
    else await runs.showRun(route.runId);
    return;
  }
  runs.hide();
  const wasHidden = graphArea.hidden;
  graphArea.hidden = false;
  if (wasHidden) canvas.resize();
  const asset = routeAsset(route);
  if (!asset) {
    panel.hide();
    S.lineage = [];
    applyHighlights();
    requestAnimationFrame(() => canvas.resize());
    return;
  }
  if (!S.index.has(asset)) {
    showError(`No asset or source named "${asset}".`);
    panel.hide();
    return;
  }
  const wasOpen = panel.isOpen;
  const opening = panel.show(asset, route);
  if (!wasOpen) canvas.resize();
  applyHighlights();
  let v = viewIndexOf(asset);
  if (v < 0 && S.focus) {
    setFocus(null, 0);
    v = viewIndexOf(asset);
  }
  if (v >= 0) {
    const p = canvas.toScreen(v);
    const { width, height } = canvas.size;
    if (p.x < 40 || p.y < 40 || p.x > width - 40 || p.y > height - 40 || canvas.k < 0.55) canvas.centerOn(v, Math.max(canvas.k, 0.8));
  }
  await opening;
}

window.addEventListener("hashchange", () => void applyRoute());
window.addEventListener("resize", () => canvas.resize());

// ---- live updates --------------------------------------------------------------

const TERMINAL = new Set(["built", "early_cutoff", "fresh", "failed", "skipped"]);
const refetching = new Set<string>();
/** Assets whose state changed again while their Status call was out. */
const refetchAgain = new Set<string>();

async function refreshAsset(name: string): Promise<void> {
  if (refetching.has(name)) {
    refetchAgain.add(name);
    return;
  }
  refetching.add(name);
  try {
    const res = await api.status([name]);
    for (const a of res.assets) {
      S.status.set(a.name, statusOf(a));
      S.checksSeen.delete(a.name);
    }
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) showError(e instanceof Error ? e.message : String(e));
  } finally {
    refetching.delete(name);
  }
  recolour();
  if (refetchAgain.delete(name)) {
    void refreshAsset(name);
    return;
  }
  if (panel.current === name) panel.refresh(S.route);
}

function isRunning(name: string): boolean {
  return (S.running.get(name)?.size ?? 0) > 0;
}

function onRunEvent(e: RunEvent): void {
  runs.onGlobalEvent(e);
  if (e.event === "finished") {
    // Units whose end the stream missed (a reconnect) end with their run.
    for (const [asset, units] of S.running) {
      let changed = false;
      for (const u of units) if (u.startsWith(`${e.run_id}\u0000`)) changed = units.delete(u);
      if (changed) {
        if (units.size === 0) S.running.delete(asset);
        void refreshAsset(asset);
      }
    }
    return;
  }
  if (!e.asset) return;
  const unit = `${e.run_id}\u0000${e.partition}`;
  if (e.event === "unit_started") {
    const units = S.running.get(e.asset) ?? new Set<string>();
    units.add(unit);
    S.running.set(e.asset, units);
    recolour();
  } else if (TERMINAL.has(e.event)) {
    const units = S.running.get(e.asset);
    units?.delete(unit);
    if (units && units.size === 0) S.running.delete(e.asset);
    void refreshAsset(e.asset);
  }
}

async function watchRuns(): Promise<void> {
  let delay = 1000;
  for (;;) {
    const started = performance.now();
    try {
      await stream("WatchRuns", {}, onRunEvent);
    } catch {
      // Reconnect below; a server restart or a proxy timeout ends streams.
    }
    if (performance.now() - started > 30_000) delay = 1000;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 30_000);
  }
}

// ---- test hooks -----------------------------------------------------------------

interface CairnHooks {
  ready: boolean;
  graph(): { nodes: { name: string; kind: string; state: string; health: string; checks: { passed: number; failed: number }; highlighted: boolean; x: number; y: number }[]; edges: number };
  centerOn(name: string): void;
  highlighted(): string[];
  stats(): { firstRenderMs: number; bytesLoaded: number; frames: number; lastFrameMs: number; nodesDrawn: number };
}

const hooks: CairnHooks = {
  ready: false,
  graph() {
    const rect = canvasEl.getBoundingClientRect();
    return {
      nodes: S.defs.map((d, i) => {
        const st = S.status.get(d.name);
        const v = S.view ? S.view.viewOf[i] : -1;
        const p = v >= 0 && S.layout ? canvas.toScreen(v) : { x: NaN, y: NaN };
        const running = isRunning(d.name);
        return {
          name: d.name,
          kind: d.kind,
          state: d.kind === "source" ? "source" : running ? "running" : st?.state ?? "unknown",
          health: d.kind === "source" ? "ok" : st?.health ?? "",
          checks: checksOf(i),
          highlighted: v >= 0 && canvas.highlighted.has(v),
          x: rect.left + p.x,
          y: rect.top + p.y,
        };
      }),
      edges: S.view?.edgeCount ?? 0,
    };
  },
  centerOn(name) {
    let v = viewIndexOf(name);
    if (v < 0 && S.index.has(name)) {
      if (S.focus) setFocus(null, 0);
      const i = S.index.get(name)!;
      const g = S.view ? S.view.nodes[S.view.viewOf[i]]?.group : null;
      if (g) {
        S.collapsed.delete(g);
        rebuild(false);
      }
      v = viewIndexOf(name);
    }
    if (v >= 0) {
      canvas.centerOn(v, Math.max(canvas.k, 0.8));
      canvas.draw();
    }
  },
  highlighted: () => [...S.lineage],
  stats: () => ({
    firstRenderMs: S.firstRenderMs,
    bytesLoaded: S.bytesAtFirstRender,
    frames: canvas.stats.frames,
    lastFrameMs: canvas.stats.lastFrameMs,
    nodesDrawn: canvas.stats.nodesDrawn,
  }),
};
(window as unknown as { __cairn: CairnHooks }).__cairn = hooks;

// ---- start ------------------------------------------------------------------------

async function start(): Promise<void> {
  canvas.resize();
  // The three calls go out together; the layout is computed while Status
  // (the largest reply) is still on its way.
  const statusP = api.status([]);
  const whoP = api.whoami();
  statusP.catch(() => undefined);
  whoP.catch(() => undefined);
  try {
    const graph = await api.graph();
    S.defs = graph.nodes;
    S.defs.forEach((d, i) => S.index.set(d.name, i));
    S.upIdx = S.defs.map((d) => d.upstream.map((u) => S.index.get(u)).filter((u): u is number => u !== undefined));
    rebuild(true);
    const [status, who] = await Promise.all([statusP, whoP]);
    S.role = who.role;
    whoLabel.textContent = `${who.name || "anonymous"} · ${who.role}`;
    for (const a of status.assets) S.status.set(a.name, statusOf(a));
  } catch (e) {
    graphStatus.textContent = "The graph could not be loaded.";
    showError(e instanceof Error ? e.message : String(e));
    return;
  }
  const assets = S.defs.filter((d) => d.kind === "asset").length;
  canvasEl.setAttribute("aria-label", `Asset graph: ${assets} assets and ${S.defs.length - assets} sources. Use the search box ( / ) to pick one.`);
  graphStatus.textContent = S.defs.length === 0 ? "This project has no assets yet." : "";
  graphStatus.hidden = S.defs.length > 0;
  recolour();
  canvas.draw();
  S.firstRenderMs = performance.now();
  S.bytesAtFirstRender = traffic.bytes;
  hooks.ready = true;
  void watchRuns();
  await applyRoute();
}

void start();
