// Screenshots and measurements of the page in headless Chromium (Debian's,
// at /usr/bin/chromium; playwright-core drives it, nothing is downloaded).
//   node scripts/shoot.mjs URL OUT_PREFIX [steps...]
// Steps: "asset:NAME" opens a deep link, "pan" drags the graph and reports
// frame times, "zoom" zooms in at the centre, "runs" opens the runs view,
// "column:ASSET:COL" opens a column lineage, "click:NAME" centres on a node
// and clicks it like a person would. Prints the page's stats() as JSON.
import { chromium } from "playwright-core";

const [url, out, ...steps] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
page.on("console", (m) => console.log(`[console.${m.type()}] ${m.text()}`));
page.on("pageerror", (e) => console.log(`[pageerror] ${e.message}`));
await page.goto(url);
await page.waitForFunction(() => window.__cairn && window.__cairn.ready, null, { timeout: 120_000 });
const report = { stats: await page.evaluate(() => window.__cairn.stats()) };
let shot = 0;
const snap = async (name) => {
  await page.waitForTimeout(300);
  const file = `${out}-${String(shot++).padStart(2, "0")}-${name}.png`;
  await page.screenshot({ path: file });
  console.log(`saved ${file}`);
};
await snap("start");
for (const step of steps) {
  const [kind, a, b] = step.split(":");
  if (kind === "asset") {
    await page.evaluate((n) => (location.hash = `#/asset/${encodeURIComponent(n)}`), a);
    await page.waitForSelector(`[data-test=panel][data-asset="${a}"] .panel-body section`, { timeout: 30_000 });
    await snap(`asset-${a}`);
  } else if (kind === "column") {
    await page.evaluate(([n, c]) => (location.hash = `#/asset/${encodeURIComponent(n)}/column/${encodeURIComponent(c)}`), [a, b]);
    await page.waitForFunction(() => window.__cairn.highlighted().length > 0, null, { timeout: 30_000 });
    report.highlighted = await page.evaluate(() => window.__cairn.highlighted());
    await snap(`column-${a}-${b}`);
  } else if (kind === "click") {
    await page.evaluate((n) => window.__cairn.centerOn(n), a);
    const node = await page.evaluate((n) => window.__cairn.graph().nodes.find((x) => x.name === n), a);
    await page.mouse.click(node.x, node.y);
    await page.waitForSelector(`[data-test=panel][data-asset="${a}"]`, { timeout: 30_000 });
    await snap(`click-${a}`);
  } else if (kind === "zoom") {
    const n = Number(a ?? 5);
    for (let i = 0; i < Math.abs(n); i++) await page.keyboard.press(n > 0 ? "+" : "-");
    await snap(`zoom${n}`);
  } else if (kind === "fit") {
    await page.keyboard.press("0");
    await snap("fit");
  } else if (kind === "pan") {
    const times = [];
    await page.mouse.move(700, 450);
    await page.mouse.down();
    for (let i = 0; i < 40; i++) {
      await page.mouse.move(700 - i * 12, 450 - i * 2);
      await page.evaluate(() => new Promise(requestAnimationFrame));
      times.push(await page.evaluate(() => window.__cairn.stats().lastFrameMs));
    }
    await page.mouse.up();
    times.sort((x, y) => x - y);
    const after = await page.evaluate(() => window.__cairn.stats());
    (report.pans ??= []).push({ frames: times.length, medianMs: times[times.length >> 1], p95Ms: times[Math.floor(times.length * 0.95)], maxMs: times[times.length - 1], nodesDrawn: after.nodesDrawn });
    await snap("pan");
  } else if (kind === "runs") {
    await page.evaluate(() => (location.hash = "#/runs"));
    await page.waitForSelector("[data-test=run], .runs p", { timeout: 30_000 });
    await snap("runs");
  } else if (kind === "run") {
    const id = await page.evaluate(() => document.querySelector("[data-test=run]")?.getAttribute("data-run-id"));
    await page.evaluate((r) => (location.hash = `#/run/${r}`), id);
    await page.waitForSelector(".run-meta", { timeout: 30_000 });
    await snap("run");
  } else if (kind === "key") {
    await page.keyboard.press(a);
    await snap(`key-${a}`);
  } else if (kind === "type") {
    await page.keyboard.type(a);
    await snap(`type-${a}`);
  } else if (kind === "groups") {
    await page.selectOption("#group-by", a);
    if (b === "collapse") {
      await page.click(".group-list summary");
      await page.click("text=Collapse all");
    }
    await page.waitForTimeout(200);
    await snap(`groups-${a}-${b ?? ""}`);
  } else if (kind === "focus") {
    await page.evaluate((n) => (location.hash = `#/asset/${encodeURIComponent(n)}`), a);
    await page.waitForSelector(`[data-test=panel][data-asset="${a}"] .actions button`);
    await page.click(`[data-test=panel] .actions button:text("Focus")`);
    if (b) {
      await page.fill("#focus-depth", b);
      await page.press("#focus-depth", "Enter");
    }
    await snap(`focus-${a}-${b ?? ""}`);
  } else if (kind === "search") {
    await page.keyboard.press("/");
    await page.keyboard.type(a);
    await page.keyboard.press("ArrowDown");
    await snap(`search-${a}`);
    await page.keyboard.press("Escape");
  } else if (kind === "graph") {
    report.graph = await page.evaluate(() => { const g = window.__cairn.graph(); return { edges: g.edges, nodes: g.nodes.slice(0, 12) }; });
  }
}
console.log(JSON.stringify(report, null, 1));
await browser.close();
