import { describe, expect, it } from "vitest";
import { cellLabel, partitionRows } from "../src/partitions";

describe("partition calendar", () => {
  it("puts daily keys in month rows", () => {
    expect(partitionRows(["2024-01-30", "2024-01-31", "2024-02-01"])).toEqual([
      { label: "2024-01", keys: ["2024-01-30", "2024-01-31"] },
      { label: "2024-02", keys: ["2024-02-01"] },
    ]);
    expect(cellLabel("2024-01-05")).toBe("05");
  });
  it("splits further dimensions into rows", () => {
    expect(partitionRows(["2024-01-01|eu", "2024-01-01|us", "2024-01-02|eu"]).map((r) => [r.label, r.keys.length])).toEqual([
      ["2024-01 · eu", 2],
      ["2024-01 · us", 1],
    ]);
  });
  it("keeps other keys in one row", () => {
    expect(partitionRows(["a", "b"])).toEqual([{ label: "", keys: ["a", "b"] }]);
    expect(cellLabel("a")).toBe("");
  });
});
