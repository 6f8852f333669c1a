import { describe, expect, it } from "vitest";
import { splitLines } from "../src/api";

describe("ndjson", () => {
  it("keeps an incomplete last line for the next chunk", () => {
    expect(splitLines('{"a":1}\n{"b":')).toEqual({ lines: ['{"a":1}'], rest: '{"b":' });
    expect(splitLines('{"b":2}\r\n\n')).toEqual({ lines: ['{"b":2}'], rest: "" });
    expect(splitLines("")).toEqual({ lines: [], rest: "" });
  });
});
