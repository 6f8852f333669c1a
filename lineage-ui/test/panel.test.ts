import { describe, expect, it } from "vitest";
import { flattenLineage, latestPerPartition } from "../src/panel";
import { checkCounts, displayOf, worstDisplay, type GraphNodeDef } from "../src/graph";

describe("column lineage", () => {
  it("flattens a tree to sorted unique table.column, root included", () => {
    const leaf = (table: string, column: string) => ({ table, column, kind: "direct", is_source: true, upstream: [] });
    const tree = {
      table: "orders", column: "amount", kind: "", is_source: false,
      upstream: [
        { table: "stg_payments", column: "amount", kind: "aggregate", is_source: false, upstream: [leaf("raw_payments", "amount_cents")] },
        { table: "stg_orders", column: "order_id", kind: "filter_or_join_key", is_source: false, upstream: [leaf("raw_payments", "amount_cents")] },
      ],
    };
    expect(flattenLineage(tree)).toEqual(["orders.amount", "raw_payments.amount_cents", "stg_orders.order_id", "stg_payments.amount"]);
  });
});

describe("a partitioned asset's checks", () => {
  const run = (partition: string, at: string, name: string, passed: boolean, failing = 0, sample = "[]") => ({
    run_id: "r", partition, materialization_id: 1, at,
    result: { name, severity: "error", passed, failing_rows: failing, sample_json: sample, error: "" },
  });
  it("keeps the latest result per partition and adds them up", () => {
    const checks = latestPerPartition([
      run("2024-01-02", "2024-01-03T00:00:00Z", "not_null(day)", true),
      run("2024-01-01", "2024-01-03T00:00:00Z", "not_null(day)", false, 2, '[{"day":null}]'),
      run("2024-01-01", "2024-01-02T00:00:00Z", "not_null(day)", true),
      run("2024-01-02", "2024-01-01T00:00:00Z", "not_null(day)", false, 5),
      run("2024-01-01", "2024-01-02T00:00:00Z", "unique(day)", true),
    ]);
    expect(checks.map((c) => [c.name, c.passed, c.failing_rows])).toEqual([["not_null(day)", false, 2], ["unique(day)", true, 0]]);
    expect(JSON.parse(checks[0].sample_json)).toEqual([{ day: null }]);
  });
});

describe("node display", () => {
  const def: GraphNodeDef = { name: "a", kind: "asset", file: "assets/a.sql", line: 0, description: "", owner: "", tags: [], upstream: [], partitioning: "", checks: ["x", "y", "z"], automation: "" };
  it("puts the worst first: running, failed, SLA, checks, stale", () => {
    const st = (state: string, health: string, failingChecks = 0) => ({ state, health, failingChecks, warningChecks: 0, built: true });
    expect(displayOf("asset", st("fresh", "ok"), true)).toBe("running");
    expect(displayOf("asset", st("failed", "failed_run"), false)).toBe("failed");
    expect(displayOf("asset", st("stale", "sla_failed"), false)).toBe("sla_failed");
    expect(displayOf("asset", st("fresh", "failing_check", 1), false)).toBe("failing_check");
    expect(displayOf("asset", st("stale", "warn"), false)).toBe("sla_warn");
    expect(displayOf("asset", st("stale", "ok"), false)).toBe("stale");
    expect(displayOf("asset", st("never_materialized", "ok"), false)).toBe("never");
    expect(displayOf("source", undefined, false)).toBe("source");
    expect(worstDisplay(["fresh", "stale", "source"])).toBe("stale");
  });
  it("counts check badges once built", () => {
    expect(checkCounts(def, { state: "fresh", health: "failing_check", failingChecks: 1, warningChecks: 0, built: true })).toEqual({ passed: 2, failed: 1 });
    expect(checkCounts(def, { state: "fresh", health: "ok", failingChecks: 1, warningChecks: 1, built: true })).toEqual({ passed: 1, failed: 2 });
    expect(checkCounts(def, { state: "never_materialized", health: "ok", failingChecks: 0, warningChecks: 0, built: false })).toEqual({ passed: 0, failed: 0 });
  });
});
