//! Hash routes: the page's deep links. `parseRoute` and `formatRoute` are
//! inverse pure functions, so a link the page writes reads back the same;
//! every name, key and column is one URI-encoded path segment.

export type Route =
  | { view: "graph" }
  | { view: "asset"; asset: string }
  | { view: "partition"; asset: string; partition: string }
  | { view: "column"; asset: string; column: string }
  | { view: "runs" }
  | { view: "run"; runId: string };

function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** Reads `#/...`; anything unknown is the graph. */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "").replace(/^\/+/, "");
  if (path === "") return { view: "graph" };
  const raw = path.split("/");
  const parts = raw.map(decode);
  if (parts.some((p) => p === null)) return { view: "graph" };
  const seg = parts as string[];
  if (seg[0] === "runs" && seg.length === 1) return { view: "runs" };
  if (seg[0] === "run" && seg.length === 2 && seg[1] !== "") return { view: "run", runId: seg[1] };
  if (seg[0] === "asset" && seg.length >= 2 && seg[1] !== "") {
    const asset = seg[1];
    if (seg.length === 2) return { view: "asset", asset };
    if (seg.length === 4 && seg[2] === "partition") return { view: "partition", asset, partition: seg[3] };
    if (seg.length === 4 && seg[2] === "column" && seg[3] !== "") return { view: "column", asset, column: seg[3] };
    return { view: "asset", asset };
  }
  return { view: "graph" };
}

const enc = encodeURIComponent;

/** The hash (with `#`) for a route. */
export function formatRoute(route: Route): string {
  switch (route.view) {
    case "graph":
      return "#/";
    case "asset":
      return `#/asset/${enc(route.asset)}`;
    case "partition":
      return `#/asset/${enc(route.asset)}/partition/${enc(route.partition)}`;
    case "column":
      return `#/asset/${enc(route.asset)}/column/${enc(route.column)}`;
    case "runs":
      return "#/runs";
    case "run":
      return `#/run/${enc(route.runId)}`;
  }
}

/** The asset a route opens the panel for, if any. */
export function routeAsset(route: Route): string | null {
  return route.view === "asset" || route.view === "partition" || route.view === "column" ? route.asset : null;
}
