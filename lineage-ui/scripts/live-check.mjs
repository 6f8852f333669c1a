// Walks the page like the end-to-end test will, against a running server
// with the warehouse example (through `vite preview` or `cairn serve`):
//   node scripts/live-check.mjs http://127.0.0.1:4173/
// Clicks a node, reads the panel's test hooks, traces a column, runs a
// forced materialization from the page and watches the node turn
// "running" and back through the global run stream, then the back button
// and Escape. Exits non-zero on the first thing that is not as expected.
import { chromium } from "playwright-core";

const url = process.argv[2] ?? "http://127.0.0.1:4173/";
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
page.on("pageerror", (e) => console.log(`[pageerror] ${e.message}`));
const calls = [];
page.on("request", (r) => r.url().includes("/api/v1/") && calls.push(r.url().split("/api/v1/")[1]));
const ok = (cond, what) => {
  if (!cond) {
    console.log(`FAIL: ${what}`);
    process.exitCode = 1;
  } else console.log(`ok: ${what}`);
};

await page.goto(url);
await page.waitForFunction(() => window.__cairn?.ready);
const g = await page.evaluate(() => window.__cairn.graph());
ok(g.nodes.length === 10 && g.edges === 10, `10 nodes and 10 edges (got ${g.nodes.length}, ${g.edges})`);
ok(g.nodes.find((n) => n.name === "raw_orders")?.state === "source", "sources are 'source'");
ok(g.nodes.filter((n) => n.kind === "asset").every((n) => n.state === "fresh"), "assets fresh");

await page.evaluate(() => window.__cairn.centerOn("orders"));
const n = await page.evaluate(() => window.__cairn.graph().nodes.find((x) => x.name === "orders"));
await page.mouse.click(n.x, n.y);
await page.waitForSelector("[data-test=panel][data-asset=orders] [data-test=row-count]");
ok((await page.getAttribute("[data-test=row-count]", "data-value")) === "616", "row count 616");
ok(await page.isVisible('[data-test=check][data-name="unique(order_id)"][data-passed=true][data-failing-rows="0"]'), "check hook");
ok(page.url().endsWith("#/asset/orders"), `route #/asset/orders (${page.url()})`);

await page.click("[data-test=column][data-column=amount]");
await page.waitForFunction(() => window.__cairn.highlighted().length > 1);
const hl = await page.evaluate(() => window.__cairn.highlighted());
ok(hl.includes("orders.amount") && hl.includes("raw_payments.amount_cents"), `lineage ${hl.join(" ")}`);
ok((await page.evaluate(() => window.__cairn.graph().nodes.filter((x) => x.highlighted).map((x) => x.name))).includes("stg_payments"), "lineage nodes highlighted");

// Watch states every frame while a run goes.
await page.evaluate(() => {
  window.__seen = new Set();
  const tick = () => {
    for (const x of window.__cairn.graph().nodes) window.__seen.add(`${x.name}:${x.state}`);
    requestAnimationFrame(tick);
  };
  tick();
});
const before = calls.length;
await page.check("#force");
await page.click("[data-test=materialize]");
await page.waitForSelector("[data-test=panel] .notice a", { timeout: 30_000 });
await page.waitForFunction(() => window.__seen.has("orders:running") && window.__cairn.graph().nodes.find((x) => x.name === "orders").state === "fresh", null, { timeout: 60_000 });
await page.waitForTimeout(500);
await page.click("[data-test=panel] .notice a");
await page.waitForSelector('.run-meta[data-status=succeeded]', { timeout: 60_000 });
ok(page.url().includes("#/run/"), "the queued run's link opens it");
const seen = await page.evaluate(() => [...window.__seen]);
ok(seen.includes("orders:running"), "orders shown running during the run");
const after = calls.slice(before);
ok(!after.includes("Graph") && after.filter((c) => c === "Status").length <= 8, `no whole-graph re-poll (${after.join(",")})`);
const states = await page.evaluate(() => window.__cairn.graph().nodes.map((x) => x.state));
ok(!states.includes("running"), "no node left running");

await page.goBack();
await page.waitForFunction(() => location.hash.includes("/column/amount"));
await page.waitForSelector("[data-test=panel][data-asset=orders]");
ok(true, "back returns to the column link");
await page.goto(url.replace(/#.*$/, "") + "#/runs");
await page.waitForSelector("[data-test=run][data-status=succeeded]");
ok(true, "runs list");
await page.goto(url.replace(/#.*$/, "") + "#/asset/customers/column/customer_id");
await page.waitForFunction(() => window.__cairn.ready && window.__cairn.highlighted().includes("customers.customer_id"));
ok(await page.isVisible("[data-test=panel][data-asset=customers]"), "deep link opens the panel");
await page.keyboard.press("Escape");
await page.waitForFunction(() => location.hash === "#/");
ok(await page.waitForSelector("[data-test=panel]", { state: "hidden", timeout: 5000 }).then(() => true, () => false), "Escape closes the panel");
await page.keyboard.press("/");
await page.keyboard.type("stg_pay");
await page.keyboard.press("ArrowDown");
await page.keyboard.press("ArrowUp");
await page.keyboard.press("Enter");
await page.waitForSelector("[data-test=panel][data-asset=stg_payments]");
ok(true, "search: / type arrows Enter");
await page.evaluate(() => document.querySelector("canvas").focus());
await page.keyboard.press("ArrowRight");
await page.waitForSelector("[data-test=panel][data-asset=int_order_payments]");
ok(true, "arrow keys walk downstream from the selected node");
await browser.close();
