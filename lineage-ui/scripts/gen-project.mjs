// Writes a throwaway Cairn project of N assets for trying the page at scale:
//   node scripts/gen-project.mjs /tmp/ui-1k 1000
// One small CSV source; assets/gNN/a_i.sql each joining 1-3 earlier assets
// (or the source), so the graph is a DAG of realistic width and depth.
// Deterministic (a fixed-seed generator). Never commit what it writes.
import { mkdirSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const [dir, nArg, perFolderArg] = process.argv.slice(2);
if (!dir || !nArg) {
  console.error("usage: node scripts/gen-project.mjs DIR N [assets per folder, default 50]");
  process.exit(2);
}
const n = Number(nArg);
const perFolder = Number(perFolderArg ?? 50);
let seed = 7;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;

rmSync(dir, { recursive: true, force: true });
mkdirSync(join(dir, "data"), { recursive: true });
writeFileSync(join(dir, "cairn.toml"), `[storage]
url = "file://./warehouse"

[catalog]
url = "sqlite://.cairn/catalog.db"

[sources.raw_events]
path = "data/raw_events.csv"
description = "Generated events."
owner = "platform"
`);
writeFileSync(join(dir, "data", "raw_events.csv"), "id,v\n" + Array.from({ length: 10 }, (_, i) => `${i},${i * 3}`).join("\n") + "\n");
const owners = ["analytics", "finance", "platform", "growth"];
for (let i = 0; i < n; i++) {
  const folder = `g${String(Math.floor(i / perFolder)).padStart(2, "0")}`;
  mkdirSync(join(dir, "assets", folder), { recursive: true });
  let sql;
  if (i < 5) sql = `select id, v + ${i} as v from raw_events`;
  else {
    // Mostly recent upstreams, sometimes far back: long edges exist too.
    const k = 1 + Math.floor(rand() * 3);
    const ups = new Set();
    while (ups.size < k) {
      const back = rand() < 0.8 ? 1 + Math.floor(rand() * Math.min(i, 60)) : 1 + Math.floor(rand() * i);
      ups.add(i - back);
    }
    const list = [...ups];
    sql = `select t0.id, ${list.map((_, j) => `t${j}.v`).join(" + ")} as v\nfrom a_${list[0]} as t0` +
      list.slice(1).map((u, j) => `\njoin a_${u} as t${j + 1} on t0.id = t${j + 1}.id`).join("");
  }
  const header = [
    `--- description = "Generated asset ${i}."`,
    `--- owner = "${owners[i % owners.length]}"`,
    `--- tags = ["t${i % 7}"]`,
    i % 10 === 0 ? `--- checks = ["not_null(id)", "unique(id)"]` : null,
  ].filter(Boolean).join("\n");
  writeFileSync(join(dir, "assets", folder, `a_${i}.sql`), `${header}\n\n${sql}\n`);
}
console.log(`wrote ${n} assets to ${dir}`);
