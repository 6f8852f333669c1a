import { describe, expect, it } from "vitest";
import { tokenizeSql } from "../src/sql";

const kinds = (sql: string) => tokenizeSql(sql).filter((t) => t.kind !== "whitespace").map((t) => `${t.kind}:${t.text}`);

describe("tokenizeSql", () => {
  it("splits keywords, identifiers, numbers, strings and operators", () => {
    expect(kinds("SELECT a, 1.5e3 FROM t WHERE s = 'it''s'")).toEqual([
      "keyword:SELECT", "identifier:a", "operator:,", "number:1.5e3", "keyword:FROM", "identifier:t",
      "keyword:WHERE", "identifier:s", "operator:=", "string:'it''s'",
    ]);
  });
  it("keeps comments whole", () => {
    expect(kinds("-- hi\nselect /* a\nb */ x")).toEqual(["comment:-- hi", "keyword:select", "comment:/* a\nb */", "identifier:x"]);
  });
  it("treats quoted identifiers as identifiers", () => {
    expect(kinds('select "from" from t')).toEqual(["keyword:select", 'identifier:"from"', "keyword:from", "identifier:t"]);
  });
  it("gives back every character, even unterminated", () => {
    for (const sql of ["select 'open", "/* open", 'x "open', "a >= 1 -- c", "ünï.cödé <> 2"]) {
      expect(tokenizeSql(sql).map((t) => t.text).join("")).toBe(sql);
    }
  });
});
