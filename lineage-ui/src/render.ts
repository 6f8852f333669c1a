//! The canvas renderer: draws a laid-out view graph under a pan/zoom
//! transform, only what lies in the viewport, at one of three levels of
//! detail so 10,000 nodes stay interactive:
//!
//! | zoom      | nodes                        | edges                          |
//! |-----------|------------------------------|--------------------------------|
//! | < 0.22    | plain rects, batched by colour | straight, only if few visible |
//! | < 0.55    | boxes with state stripe, icon  | straight lines                 |
//! | otherwise | boxes, icon, name, check badges | curves                        |
//!
//! Visible nodes are found per layer by binary search on y (layers are
//! columns sorted top to bottom), so a frame costs what is on screen.

import { DISPLAY, type Display, type ViewGraph } from "./graph";
import type { Layout } from "./layout";

export const NODE_W = 196;
export const NODE_H = 40;
const LOD_DOTS = 0.22;
const LOD_TEXT = 0.55;
const FONT_FAMILY = "DejaVu Sans, Liberation Sans, Arial, sans-serif";

export interface NodeLook {
  display: Display;
  passed: number;
  failed: number;
  isGroup: boolean;
}

export interface FrameStats {
  frames: number;
  lastFrameMs: number;
  nodesDrawn: number;
}

export class GraphCanvas {
  readonly canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  view: ViewGraph | null = null;
  layout: Layout | null = null;
  looks: NodeLook[] = [];
  /** View node indices highlighted by column lineage. */
  highlighted = new Set<number>();
  selected = -1;
  k = 1;
  tx = 0;
  ty = 0;
  stats: FrameStats = { frames: 0, lastFrameMs: 0, nodesDrawn: 0 };
  private labels: (string | undefined)[] = [];
  /** World font size of labels: 13 at life size, larger when zoomed out so the screen text stays >= ~10px. */
  private fontPx = 13;
  private pending = 0;
  private width = 0;
  private height = 0;
  private dpr = 1;
  /** Called after each frame is drawn. */
  onFrame: (() => void) | null = null;

  constructor(canvas: HTMLCanvasElement) {
    this.canvas = canvas;
    const ctx = canvas.getContext("2d", { alpha: false });
    if (!ctx) throw new Error("This browser cannot draw on a canvas.");
    this.ctx = ctx;
  }

  setGraph(view: ViewGraph, layout: Layout, looks: NodeLook[]): void {
    this.view = view;
    this.layout = layout;
    this.looks = looks;
    this.labels = [];
    this.highlighted = new Set();
    this.selected = -1;
    this.requestDraw();
  }

  resize(): void {
    const rect = this.canvas.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.width = Math.max(1, rect.width);
    this.height = Math.max(1, rect.height);
    this.canvas.width = Math.round(this.width * this.dpr);
    this.canvas.height = Math.round(this.height * this.dpr);
    this.requestDraw();
  }

  get size(): { width: number; height: number } {
    return { width: this.width, height: this.height };
  }

  requestDraw(): void {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.draw();
    });
  }

  /**
   * Fits the view. `all`: the whole graph, never zoomed in past 1 (small
   * graphs stay life-size). `readable` (the start): the same unless that
   * would leave a thin strip of specks — a long chain or a deep graph —
   * then it fits the graph's height instead, within readable zooms, and
   * starts at the sources on the left.
   */
  fit(mode: "all" | "readable" = "all"): void {
    const l = this.layout;
    if (!l || l.x.length === 0) return;
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (let i = 0; i < l.x.length; i++) {
      minX = Math.min(minX, l.x[i]);
      maxX = Math.max(maxX, l.x[i]);
      minY = Math.min(minY, l.y[i]);
      maxY = Math.max(maxY, l.y[i]);
    }
    const pad = 40;
    const w = maxX - minX + NODE_W;
    const h = maxY - minY + NODE_H;
    const all = Math.min(1, (this.width - 2 * pad) / w, (this.height - 2 * pad) / h);
    const strip = all < LOD_TEXT && h * all < 0.3 * this.height;
    if (mode === "all" || !strip) {
      this.k = Math.max(all, 0.002);
      this.tx = this.width / 2 - ((minX + maxX) / 2) * this.k;
    } else {
      this.k = Math.min(0.8, Math.max(0.06, (this.height - 2 * pad) / h));
      this.tx = pad + (NODE_W / 2) * this.k - minX * this.k;
    }
    this.ty = this.height / 2 - ((minY + maxY) / 2) * this.k;
    this.requestDraw();
  }

  /** Brings view nodes into sight: zooms out (never in) until they all fit. */
  reveal(nodes: number[]): void {
    const l = this.layout;
    if (!l || nodes.length === 0) return;
    const pad = 60;
    const inside = (v: number) => {
      const x = l.x[v] * this.k + this.tx, y = l.y[v] * this.k + this.ty;
      return x > pad && y > pad && x < this.width - pad && y < this.height - pad;
    };
    if (nodes.every(inside)) return;
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (const v of nodes) {
      minX = Math.min(minX, l.x[v]);
      maxX = Math.max(maxX, l.x[v]);
      minY = Math.min(minY, l.y[v]);
      maxY = Math.max(maxY, l.y[v]);
    }
    const w = maxX - minX + NODE_W, h = maxY - minY + NODE_H;
    this.k = Math.max(0.002, Math.min(this.k, (this.width - 2 * pad) / w, (this.height - 2 * pad) / h));
    this.tx = this.width / 2 - ((minX + maxX) / 2) * this.k;
    this.ty = this.height / 2 - ((minY + maxY) / 2) * this.k;
    this.requestDraw();
  }

  /** Centres view node `v`, zooming in to a readable scale if far out. */
  centerOn(v: number, minZoom = 0.8): void {
    const l = this.layout;
    if (!l || v < 0 || v >= l.x.length) return;
    if (this.k < minZoom) this.k = minZoom;
    this.tx = this.width / 2 - l.x[v] * this.k;
    this.ty = this.height / 2 - l.y[v] * this.k;
    this.requestDraw();
  }

  panBy(dx: number, dy: number): void {
    this.tx += dx;
    this.ty += dy;
    this.requestDraw();
  }

  zoomAt(factor: number, sx = this.width / 2, sy = this.height / 2): void {
    const k = Math.min(4, Math.max(0.002, this.k * factor));
    const f = k / this.k;
    this.tx = sx - (sx - this.tx) * f;
    this.ty = sy - (sy - this.ty) * f;
    this.k = k;
    this.requestDraw();
  }

  /** Screen (canvas CSS px) position of view node `v`'s centre. */
  toScreen(v: number): { x: number; y: number } {
    const l = this.layout!;
    return { x: l.x[v] * this.k + this.tx, y: l.y[v] * this.k + this.ty };
  }

  /** The view node under a canvas point, or -1. */
  hit(sx: number, sy: number): number {
    const l = this.layout;
    if (!l) return -1;
    const wx = (sx - this.tx) / this.k;
    const wy = (sy - this.ty) / this.k;
    // Small on screen: accept a few pixels around the box.
    const slackX = Math.max(0, 4 / this.k - NODE_W / 2) + NODE_W / 2;
    const slackY = Math.max(0, 4 / this.k - NODE_H / 2) + NODE_H / 2;
    for (const nodes of l.layers) {
      if (nodes.length === 0 || Math.abs(l.x[nodes[0]] - wx) > slackX) continue;
      const i = lowerBound(nodes, l.y, wy - slackY);
      for (let j = i; j < nodes.length && l.y[nodes[j]] <= wy + slackY; j++) return nodes[j];
    }
    return -1;
  }

  private label(v: number): string {
    let s = this.labels[v];
    if (s === undefined) {
      const ctx = this.ctx;
      ctx.font = `${this.fontPx}px ${FONT_FAMILY}`;
      const full = this.view!.nodes[v].label;
      const room = NODE_W - 20 - this.fontPx - this.badgeWidth(v);
      s = full;
      if (ctx.measureText(s).width > room) {
        let lo = 0, hi = full.length;
        while (lo < hi) {
          const mid = (lo + hi + 1) >> 1;
          if (ctx.measureText(full.slice(0, mid) + "…").width <= room) lo = mid;
          else hi = mid - 1;
        }
        s = full.slice(0, lo) + "…";
      }
      this.labels[v] = s;
    }
    return s;
  }

  private badgeText(v: number): string {
    const look = this.looks[v];
    const parts: string[] = [];
    if (look.passed > 0) parts.push(`✓${look.passed}`);
    if (look.failed > 0) parts.push(`✗${look.failed}`);
    return parts.join(" ");
  }

  private badgeFont(): string {
    return `bold ${this.fontPx - 2}px ${FONT_FAMILY}`;
  }

  private badgeWidth(v: number): number {
    const t = this.badgeText(v);
    if (t === "") return 0;
    this.ctx.font = this.badgeFont();
    return this.ctx.measureText(t).width + 12;
  }

  draw(): void {
    const t0 = performance.now();
    const { ctx, width, height, dpr } = this;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#f8fafc";
    ctx.fillRect(0, 0, width, height);
    const l = this.layout;
    const view = this.view;
    let drawn = 0;
    if (l && view) {
      const { k, tx, ty } = this;
      // Visible world rectangle, with a node's margin.
      const x0 = -tx / k - NODE_W, x1 = (width - tx) / k + NODE_W;
      const y0 = -ty / k - NODE_H, y1 = (height - ty) / k + NODE_H;
      const visible: number[] = [];
      for (const nodes of l.layers) {
        if (nodes.length === 0) continue;
        const x = l.x[nodes[0]];
        if (x < x0 || x > x1) continue;
        for (let j = lowerBound(nodes, l.y, y0); j < nodes.length && l.y[nodes[j]] <= y1; j++) visible.push(nodes[j]);
      }
      this.drawEdges(x0, x1, y0, y1);
      ctx.setTransform(dpr * k, 0, 0, dpr * k, dpr * tx, dpr * ty);
      const fontPx = Math.round(Math.min(18, Math.max(13, 10.5 / k)));
      if (fontPx !== this.fontPx) {
        this.fontPx = fontPx;
        this.labels = [];
      }
      if (k < LOD_DOTS) this.drawDots(visible);
      else this.drawBoxes(visible, k >= LOD_TEXT);
      drawn = visible.length;
    }
    this.stats.frames++;
    this.stats.nodesDrawn = drawn;
    this.stats.lastFrameMs = performance.now() - t0;
    this.onFrame?.();
  }

  private drawEdges(x0: number, x1: number, y0: number, y1: number): void {
    const l = this.layout!;
    const view = this.view!;
    const { ctx, k, tx, ty, dpr } = this;
    const curves = k >= LOD_TEXT;
    ctx.setTransform(dpr * k, 0, 0, dpr * k, dpr * tx, dpr * ty);
    const hw = NODE_W / 2;
    const strong: [number, number][] = [];
    let count = 0;
    // Three strengths: short edges with an end in view; long edges (many
    // layers) fainter; edges just passing through the view faintest — a
    // wall of far-reaching lines would hide the nodes.
    const near = new Path2D(), far = new Path2D(), passing = new Path2D();
    let passingCount = 0;
    const vx0 = x0 + NODE_W, vx1 = x1 - NODE_W, vy0 = y0 + NODE_H, vy1 = y1 - NODE_H;
    const inView = (x: number, y: number) => x >= vx0 - hw && x <= vx1 + hw && y >= vy0 && y <= vy1;
    const longSpan = 3 * (l.layers.length > 1 ? Math.abs(l.x[l.layers[1][0]] - l.x[l.layers[0][0]]) : NODE_W * 2);
    for (let v = 0; v < view.upstream.length; v++) {
      const vx = l.x[v] - hw, vy = l.y[v];
      for (const u of view.upstream[v]) {
        const ux = l.x[u] + hw, uy = l.y[u];
        if (Math.max(ux, vx) < x0 || Math.min(ux, vx) > x1 || Math.max(uy, vy) < y0 || Math.min(uy, vy) > y1) continue;
        if (v === this.selected || u === this.selected || (this.highlighted.has(u) && this.highlighted.has(v))) {
          strong.push([u, v]);
          continue;
        }
        count++;
        const through = !inView(ux, uy) && !inView(vx, vy);
        if (through) passingCount++;
        const path = through ? passing : Math.abs(vx - ux) > longSpan ? far : near;
        path.moveTo(ux, uy);
        if (curves) {
          const mx = (ux + vx) / 2;
          path.bezierCurveTo(mx, uy, mx, vy, vx, vy);
        } else path.lineTo(vx, vy);
      }
    }
    // At the lowest detail a hairball of thousands of lines says nothing.
    if (k >= LOD_DOTS || count < 4000) {
      ctx.lineWidth = Math.max(1 / k, 1.2);
      // A few lines passing through say where to go; hundreds are a fog.
      if (passingCount <= 150) {
        ctx.strokeStyle = "rgba(100,116,139,0.15)";
        ctx.stroke(passing);
      }
      ctx.strokeStyle = "rgba(100,116,139,0.28)";
      ctx.stroke(far);
      ctx.strokeStyle = k < LOD_DOTS ? "rgba(100,116,139,0.3)" : "#94a3b8";
      ctx.stroke(near);
    }
    if (strong.length > 0) {
      const p = new Path2D();
      for (const [u, v] of strong) {
        const ux = l.x[u] + hw, uy = l.y[u], vx = l.x[v] - hw, vy = l.y[v];
        p.moveTo(ux, uy);
        const mx = (ux + vx) / 2;
        p.bezierCurveTo(mx, uy, mx, vy, vx, vy);
      }
      ctx.strokeStyle = "#1d4ed8";
      ctx.lineWidth = Math.max(2.5 / k, 2.5);
      ctx.stroke(p);
    }
    if (curves) {
      // Arrowheads on the near edges only.
      ctx.fillStyle = "#94a3b8";
      for (let v = 0; v < view.upstream.length; v++) {
        if (view.upstream[v].length === 0) continue;
        const vx = l.x[v] - hw, vy = l.y[v];
        if (vx < x0 || vx > x1 || vy < y0 || vy > y1) continue;
        ctx.beginPath();
        ctx.moveTo(vx, vy);
        ctx.lineTo(vx - 8, vy - 4.5);
        ctx.lineTo(vx - 8, vy + 4.5);
        ctx.closePath();
        ctx.fill();
      }
    }
  }

  private drawDots(visible: number[]): void {
    const l = this.layout!;
    const { ctx, k } = this;
    // Never thinner than ~1.5 screen pixels, batched by colour.
    const w = Math.max(NODE_W, 2 / k), h = Math.max(NODE_H, 2 / k);
    const byColour = new Map<string, number[]>();
    for (const v of visible) {
      const c = DISPLAY[this.looks[v].display].stroke;
      let list = byColour.get(c);
      if (!list) byColour.set(c, (list = []));
      list.push(v);
    }
    for (const [colour, list] of byColour) {
      ctx.fillStyle = colour;
      ctx.beginPath();
      for (const v of list) ctx.rect(l.x[v] - w / 2, l.y[v] - h / 2, w, h);
      ctx.fill();
    }
    this.drawMarks(visible, w, h);
  }

  /** Selection and lineage highlights, which must show at any zoom. */
  private drawMarks(visible: number[], w: number, h: number): void {
    const l = this.layout!;
    const { ctx, k } = this;
    for (const v of visible) {
      const hl = this.highlighted.has(v);
      if (!hl && v !== this.selected) continue;
      const pad = Math.max(4, 4 / k);
      ctx.strokeStyle = v === this.selected ? "#1d4ed8" : "#d97706";
      ctx.lineWidth = Math.max(3, 3 / k);
      ctx.strokeRect(l.x[v] - w / 2 - pad, l.y[v] - h / 2 - pad, w + 2 * pad, h + 2 * pad);
    }
  }

  /** Boxes without text, batched by state: a few fills for thousands of nodes. */
  private drawPlainBoxes(visible: number[]): void {
    const l = this.layout!;
    const { ctx } = this;
    const hw = NODE_W / 2, hh = NODE_H / 2;
    const byDisplay = new Map<Display, number[]>();
    for (const v of visible) {
      const d = this.looks[v].display;
      let list = byDisplay.get(d);
      if (!list) byDisplay.set(d, (list = []));
      list.push(v);
    }
    ctx.lineWidth = 1.2;
    for (const [d, list] of byDisplay) {
      const style = DISPLAY[d];
      const box = new Path2D(), stripe = new Path2D();
      for (const v of list) {
        box.rect(l.x[v] - hw, l.y[v] - hh, NODE_W, NODE_H);
        stripe.rect(l.x[v] - hw, l.y[v] - hh + 3, 5, NODE_H - 6);
      }
      ctx.fillStyle = style.fill;
      ctx.fill(box);
      ctx.strokeStyle = style.stroke;
      ctx.stroke(box);
      ctx.fillStyle = style.stroke;
      ctx.fill(stripe);
    }
    this.drawMarks(visible, NODE_W, NODE_H);
  }

  private drawBoxes(visible: number[], text: boolean): void {
    if (!text && visible.length > 300) return this.drawPlainBoxes(visible);
    const l = this.layout!;
    const { ctx } = this;
    const hw = NODE_W / 2, hh = NODE_H / 2;
    for (const v of visible) {
      const look = this.looks[v];
      const style = DISPLAY[look.display];
      const x = l.x[v] - hw, y = l.y[v] - hh;
      if (look.isGroup) {
        ctx.fillStyle = "#e2e8f0";
        ctx.fillRect(x + 5, y + 5, NODE_W, NODE_H);
      }
      ctx.fillStyle = style.fill;
      ctx.strokeStyle = style.stroke;
      ctx.lineWidth = 1.2;
      ctx.beginPath();
      ctx.roundRect(x, y, NODE_W, NODE_H, 6);
      ctx.fill();
      ctx.stroke();
      ctx.fillStyle = style.stroke;
      ctx.fillRect(x, y + 3, 5, NODE_H - 6);
      if (!text) continue;
      // label() measures with its own fonts: call it before setting ours.
      const label = this.label(v);
      ctx.font = `${this.fontPx}px ${FONT_FAMILY}`;
      ctx.textBaseline = "middle";
      ctx.fillStyle = style.stroke;
      ctx.fillText(style.icon, x + 11, l.y[v] + 1);
      ctx.fillStyle = "#0f172a";
      ctx.fillText(label, x + 16 + this.fontPx, l.y[v] + 1);
      const badge = this.badgeText(v);
      if (badge !== "") {
        ctx.font = this.badgeFont();
        const bw = ctx.measureText(badge).width + 8;
        const bx = x + NODE_W - bw - 5;
        ctx.fillStyle = look.failed > 0 ? "#b91c1c" : "#15803d";
        ctx.beginPath();
        const bh = this.fontPx + 5;
        ctx.roundRect(bx, l.y[v] - bh / 2, bw, bh, bh / 2);
        ctx.fill();
        ctx.fillStyle = "#ffffff";
        ctx.fillText(badge, bx + 4, l.y[v] + 1);
      }
    }
    this.drawMarks(visible, NODE_W, NODE_H);
  }
}

/** First index in `nodes` (sorted by `ys`) whose y is >= `y`. */
function lowerBound(nodes: readonly number[], ys: Float64Array, y: number): number {
  let lo = 0, hi = nodes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ys[nodes[mid]] < y) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
