import { describe, expect, it } from "vitest";
import { search } from "../src/search";

const items = [
  { name: "orders", tags: ["mart", "finance"], owner: "analytics" },
  { name: "stg_orders", tags: ["staging"], owner: "" },
  { name: "monthly_revenue", tags: ["mart", "finance"], owner: "finance" },
  { name: "order_items", tags: [], owner: "platform" },
];
const names = (q: string) => search(items, q).map((h) => items[h.index].name);

describe("search", () => {
  it("ranks exact, prefix, then word substring", () => {
    expect(names("orders")).toEqual(["orders", "stg_orders"]);
    expect(names("order")).toEqual(["orders", "order_items", "stg_orders"]);
  });
  it("matches tags and owners after names", () => {
    expect(names("finance")).toEqual(["orders", "monthly_revenue"]);
    expect(search(items, "platform")[0].reason).toBe("owner: platform");
  });
  it("restricts with tag: and owner:", () => {
    expect(names("tag:staging")).toEqual(["stg_orders"]);
    expect(names("owner:fin")).toEqual(["monthly_revenue"]);
  });
  it("finds nothing for an empty query", () => {
    expect(names("  ")).toEqual([]);
  });
});
