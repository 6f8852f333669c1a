import { describe, expect, it } from "vitest";
import { formatRoute, parseRoute, type Route } from "../src/route";

describe("routes", () => {
  const cases: [string, Route][] = [
    ["#/", { view: "graph" }],
    ["#/asset/orders", { view: "asset", asset: "orders" }],
    ["#/asset/orders/partition/2024-01-05", { view: "partition", asset: "orders", partition: "2024-01-05" }],
    ["#/asset/orders/column/order_id", { view: "column", asset: "orders", column: "order_id" }],
    ["#/runs", { view: "runs" }],
    ["#/run/r-123", { view: "run", runId: "r-123" }],
    ["#/asset/a%2Fb/partition/us%7C2024", { view: "partition", asset: "a/b", partition: "us|2024" }],
  ];
  it.each(cases)("%s reads and writes back", (hash, route) => {
    expect(parseRoute(hash)).toEqual(route);
    expect(formatRoute(route)).toBe(hash);
  });
  it("reads unknown or broken links as the graph", () => {
    expect(parseRoute("")).toEqual({ view: "graph" });
    expect(parseRoute("#/nowhere")).toEqual({ view: "graph" });
    expect(parseRoute("#/asset/%E0%A4%A")).toEqual({ view: "graph" });
    expect(parseRoute("#/asset/x/extra")).toEqual({ view: "asset", asset: "x" });
  });
});
