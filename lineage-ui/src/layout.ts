//! The layered left-to-right layout, fast enough for 10,000 nodes.
//!
//! 1. Layering: longest path from the sources (a node sits one layer right
//!    of its furthest upstream), in one pass over a topological order
//!    (Kahn). Collapsing groups can make cycles; an edge that closes one is
//!    ignored for layering, never fatal.
//! 2. Ordering within each layer: a few barycenter sweeps, alternately
//!    downward (by the mean position of a node's upstreams) and upward (of
//!    its downstreams). Long edges get no dummy nodes: a neighbour's
//!    position counts wherever its layer is. Each sweep is a sort per layer,
//!    O(V log V + E).
//! 3. Coordinates: x by layer, y by rank, each layer centred on y = 0.
//!
//! Pure: same input, same output, no DOM.

export interface LayoutInput {
  /** Node count; nodes are 0..count-1. */
  count: number;
  /** For each node, the nodes it reads from (its incoming edges). */
  upstream: readonly (readonly number[])[];
  /** Optional initial order key per node (lower first); default: index. */
  initialKey?: ArrayLike<number>;
}

export interface LayoutOptions {
  sweeps: number;
  layerGap: number;
  rowGap: number;
}

export interface Layout {
  layerOf: Int32Array;
  /** Node indices per layer, top to bottom. */
  layers: number[][];
  x: Float64Array;
  y: Float64Array;
}

export const DEFAULT_LAYOUT: LayoutOptions = { sweeps: 4, layerGap: 260, rowGap: 52 };

/** Longest-path layering that tolerates cycles (their closing edges are ignored). */
export function assignLayers(count: number, upstream: readonly (readonly number[])[]): Int32Array {
  const downstream: number[][] = Array.from({ length: count }, () => []);
  const indegree = new Int32Array(count);
  for (let v = 0; v < count; v++) {
    for (const u of upstream[v]) {
      if (u === v || u < 0 || u >= count) continue;
      downstream[u].push(v);
      indegree[v]++;
    }
  }
  const layer = new Int32Array(count);
  const done = new Uint8Array(count);
  const queue: number[] = [];
  for (let v = 0; v < count; v++) if (indegree[v] === 0) queue.push(v);
  let head = 0;
  let processed = 0;
  let nextUnprocessed = 0;
  while (processed < count) {
    if (head === queue.length) {
      // A cycle: start from the lowest-index node left, ignoring its
      // remaining incoming edges.
      while (done[nextUnprocessed]) nextUnprocessed++;
      queue.push(nextUnprocessed);
      indegree[nextUnprocessed] = 0;
    }
    const v = queue[head++];
    if (done[v]) continue;
    done[v] = 1;
    processed++;
    for (const w of downstream[v]) {
      if (done[w]) continue;
      if (layer[v] + 1 > layer[w]) layer[w] = layer[v] + 1;
      if (--indegree[w] === 0) queue.push(w);
    }
  }
  return layer;
}

export function layout(input: LayoutInput, options: LayoutOptions = DEFAULT_LAYOUT): Layout {
  const { count, upstream } = input;
  const layerOf = assignLayers(count, upstream);
  const downstream: number[][] = Array.from({ length: count }, () => []);
  for (let v = 0; v < count; v++) for (const u of upstream[v]) if (u !== v && u >= 0 && u < count) downstream[u].push(v);

  let layerCount = 0;
  for (let v = 0; v < count; v++) if (layerOf[v] + 1 > layerCount) layerCount = layerOf[v] + 1;
  const layers: number[][] = Array.from({ length: layerCount }, () => []);
  const key = input.initialKey;
  const initial: number[] = Array.from({ length: count }, (_, i) => i);
  if (key) initial.sort((a, b) => key[a] - key[b] || a - b);
  for (const v of initial) layers[layerOf[v]].push(v);

  // Position: rank centred within its layer, so layers of different sizes
  // compare.
  const pos = new Float64Array(count);
  const place = (l: number) => {
    const nodes = layers[l];
    const mid = (nodes.length - 1) / 2;
    for (let r = 0; r < nodes.length; r++) pos[nodes[r]] = r - mid;
  };
  for (let l = 0; l < layerCount; l++) place(l);

  const bary = new Float64Array(count);
  const sweepLayer = (l: number, neighbours: readonly (readonly number[])[]) => {
    const nodes = layers[l];
    for (const v of nodes) {
      const ns = neighbours[v];
      if (ns.length === 0) {
        bary[v] = pos[v];
        continue;
      }
      let sum = 0;
      let k = 0;
      for (const u of ns) {
        if (u === v || u < 0 || u >= count) continue;
        sum += pos[u];
        k++;
      }
      bary[v] = k === 0 ? pos[v] : sum / k;
    }
    // Ties keep the current order: stable and deterministic.
    nodes.sort((a, b) => bary[a] - bary[b] || pos[a] - pos[b]);
    place(l);
  };
  for (let s = 0; s < options.sweeps; s++) {
    if (s % 2 === 0) for (let l = 1; l < layerCount; l++) sweepLayer(l, upstream);
    else for (let l = layerCount - 2; l >= 0; l--) sweepLayer(l, downstream);
  }

  const x = new Float64Array(count);
  const y = new Float64Array(count);
  for (let v = 0; v < count; v++) {
    x[v] = layerOf[v] * options.layerGap;
    y[v] = pos[v] * options.rowGap;
  }
  return { layerOf, layers, x, y };
}

/** Edge crossings between adjacent layers (for tests and tuning; O(E^2) per layer pair). */
export function countCrossings(l: Layout, upstream: readonly (readonly number[])[]): number {
  const edges: [number, number][][] = l.layers.map(() => []);
  for (let v = 0; v < upstream.length; v++)
    for (const u of upstream[v]) if (l.layerOf[v] === l.layerOf[u] + 1) edges[l.layerOf[u]].push([l.y[u], l.y[v]]);
  let crossings = 0;
  for (const es of edges)
    for (let i = 0; i < es.length; i++)
      for (let j = i + 1; j < es.length; j++)
        if ((es[i][0] - es[j][0]) * (es[i][1] - es[j][1]) < 0) crossings++;
  return crossings;
}
