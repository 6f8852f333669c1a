import { describe, expect, it } from "vitest";
import { assignLayers, countCrossings, layout } from "../src/layout";
import { buildView, folderOf, neighbourhood, type GraphNodeDef } from "../src/graph";

describe("layout", () => {
  it("puts every node right of its upstreams (longest path)", () => {
    const up = [[], [], [0], [0, 2], [1, 3]];
    expect([...assignLayers(5, up)]).toEqual([0, 0, 1, 2, 3]);
    const l = layout({ count: 5, upstream: up });
    for (let v = 0; v < 5; v++) for (const u of up[v]) expect(l.x[u]).toBeLessThan(l.x[v]);
  });
  it("survives cycles", () => {
    const layers = assignLayers(3, [[2], [0], [1]]);
    expect(layers.length).toBe(3);
    expect(new Set(layers).size).toBe(3);
  });
  it("untangles a crossed pair with barycenter sweeps", () => {
    // 0 -> 3, 1 -> 2: initial order crosses; one sweep fixes it.
    const up = [[], [], [1], [0]];
    const l = layout({ count: 4, upstream: up });
    expect(countCrossings(l, up)).toBe(0);
  });
  it("is deterministic and fast at 10,000 nodes", () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const up: number[][] = [[]];
    for (let i = 1; i < 10_000; i++) {
      const k = 1 + Math.floor(rand() * 3);
      up.push(Array.from({ length: k }, () => Math.floor(rand() * i)));
    }
    const t0 = performance.now();
    const a = layout({ count: up.length, upstream: up });
    const ms = performance.now() - t0;
    const b = layout({ count: up.length, upstream: up });
    expect([...a.y]).toEqual([...b.y]);
    expect(ms).toBeLessThan(1500);
  });
});

const def = (name: string, file: string, upstream: string[], tags: string[] = []): GraphNodeDef => ({
  name, kind: file === "" ? "source" : "asset", file, line: 0, description: "", owner: "", tags, upstream,
  partitioning: "", checks: [], automation: "",
});

describe("view graph", () => {
  const defs = [
    def("src", "", []),
    def("a", "assets/stg/a.sql", ["src"]),
    def("b", "assets/stg/b.sql", ["src"]),
    def("c", "assets/marts/c.sql", ["a", "b"]),
    def("d", "assets/d.sql", ["c"]),
  ];
  const idx = new Map(defs.map((d, i) => [d.name, i]));
  const up = defs.map((d) => d.upstream.map((u) => idx.get(u)!));

  it("knows folders", () => {
    expect(folderOf("assets/g01/x.sql")).toBe("g01");
    expect(folderOf("assets/x.sql")).toBe("");
    expect(folderOf("assets/a/b/x.sql")).toBe("a/b");
  });
  it("collapses a folder into one node with merged edges", () => {
    const v = buildView(defs, up, { groupBy: "folder", collapsed: new Set(["stg"]), focus: null });
    expect(v.nodes.map((n) => n.label)).toEqual(["src", "stg (2)", "c", "d"]);
    expect(v.edgeCount).toBe(3);
    expect(v.viewOf[1]).toBe(v.viewOf[2]);
  });
  it("focuses on a neighbourhood", () => {
    expect([...neighbourhood(up, 3, 1)].sort()).toEqual([1, 2, 3, 4]);
    const v = buildView(defs, up, { groupBy: "none", collapsed: new Set(), focus: { index: 3, depth: 1 } });
    expect(v.nodes.map((n) => n.id)).toEqual(["a", "b", "c", "d"]);
    expect(v.viewOf[0]).toBe(-1);
  });
});
