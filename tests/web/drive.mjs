// Drives the lineage web page of a running `cairn serve` in headless
// Chromium (Debian's /usr/bin/chromium, through npm playwright-core from
// lineage-ui/node_modules; nothing is downloaded) and prints what it saw as
// one JSON object on stdout, for the Rust tests in tests/e2e/web_page.rs to
// compare with the CLI. Usage:
//
//   node tests/web/drive.mjs SCENARIO BASE_URL SHOTS_DIR [ARGS...]
//
// CAIRN_WEB_TOKEN, when set, is typed into the page's sign-in form.
// Scenarios:
//   graph                      the rendered graph and render statistics
//   asset NAME COLUMN          click the node, read the panel, click a column
//   materialize NAME           click Materialize, wait for the node to turn fresh
//   viewer NAME                which run buttons show, and a direct API call
//   partition NAME KEY         a partition's deep link: the calendar, its versions
//   pan                        frame times while panning and zooming
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "../../lineage-ui/package.json"));
const { chromium } = require("playwright-core");

const [scenario, base, shots, ...args] = process.argv.slice(2);
if (!scenario || !base || !shots) {
  console.error("usage: drive.mjs SCENARIO BASE_URL SHOTS_DIR [ARGS...]");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const token = process.env.CAIRN_WEB_TOKEN ?? "";
const executablePath = process.env.CAIRN_CHROMIUM ?? "/usr/bin/chromium";

/** Opens the page at `hash`, signs in when asked, waits for the graph. */
async function open(page, hash = "") {
  await page.goto(`${base}/${hash}`);
  const signIn = page.locator("#token");
  const ready = page.waitForFunction(() => window.__cairn?.ready === true, null, {
    timeout: 60_000,
  });
  if (token) {
    await Promise.race([signIn.waitFor({ timeout: 60_000 }), ready]);
    if (await signIn.isVisible()) {
      await signIn.fill(token);
      await page.locator("#sign-in").click();
    }
  }
  await ready;
}

function node(page, name) {
  return page.evaluate((n) => window.__cairn.graph().nodes.find((x) => x.name === n), name);
}

/** Clicks a node where the page draws it. */
async function clickNode(page, name) {
  await page.evaluate((n) => window.__cairn.centerOn(n), name);
  // Let the pan's frame be drawn.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const at = await node(page, name);
  if (!at) throw new Error(`no node ${name} in the graph`);
  await page.mouse.click(at.x, at.y);
}

const scenarios = {
  async graph(page) {
    await open(page);
    const graph = await page.evaluate(() => window.__cairn.graph());
    const stats = await page.evaluate(() => window.__cairn.stats());
    // Bytes on the wire for the API replies (compressed, with headers).
    stats.wireBytes = await page.evaluate(() =>
      performance
        .getEntriesByType("resource")
        .filter((e) => e.name.includes("/api/v1/"))
        .reduce((sum, e) => sum + e.transferSize, 0),
    );
    const shot = join(shots, "graph.png");
    await page.screenshot({ path: shot });
    return { graph, stats, screenshot: shot };
  },

  async asset(page, [name, column]) {
    await open(page);
    await clickNode(page, name);
    const panel = page.locator(`[data-test=panel][data-asset="${name}"]`);
    await panel.waitFor({ timeout: 30_000 });
    const rowCount = panel.locator("[data-test=row-count]");
    await rowCount.waitFor({ timeout: 30_000 });
    const rows = Number(await rowCount.getAttribute("data-value"));
    const checks = await panel.locator("[data-test=check]").evaluateAll((els) =>
      els.map((e) => ({
        name: e.getAttribute("data-name"),
        passed: e.getAttribute("data-passed") === "true",
        failing_rows: Number(e.getAttribute("data-failing-rows")),
      })),
    );
    const hashAfterClick = await page.evaluate(() => location.hash);
    await page.screenshot({ path: join(shots, "panel.png") });
    const button = panel.locator(`[data-test=column][data-column="${column}"]`);
    await button.waitFor({ timeout: 30_000 });
    await button.click();
    await page.waitForFunction(() => window.__cairn.highlighted().length > 0, null, {
      timeout: 30_000,
    });
    const highlighted = await page.evaluate(() => window.__cairn.highlighted());
    const highlightedNodes = await page.evaluate(() =>
      window.__cairn
        .graph()
        .nodes.filter((n) => n.highlighted)
        .map((n) => n.name)
        .sort(),
    );
    const hashAfterColumn = await page.evaluate(() => location.hash);
    await page.screenshot({ path: join(shots, "column.png") });
    await page.goBack();
    await page.waitForFunction((h) => location.hash === h, hashAfterClick, { timeout: 10_000 });
    const panelAfterBack = await page
      .locator(`[data-test=panel][data-asset="${name}"]`)
      .isVisible();
    return {
      rows,
      checks,
      highlighted,
      highlightedNodes,
      hashAfterClick,
      hashAfterColumn,
      hashAfterBack: await page.evaluate(() => location.hash),
      panelAfterBack,
    };
  },

  async materialize(page, [name]) {
    await open(page, `#/asset/${name}`);
    const before = (await node(page, name)).state;
    const panel = page.locator(`[data-test=panel][data-asset="${name}"]`);
    await panel.waitFor({ timeout: 30_000 });
    // Watch the node's state from now on, every frame.
    await page.evaluate((n) => {
      window.__seen = [];
      const look = () => {
        const s = window.__cairn.graph().nodes.find((x) => x.name === n)?.state;
        if (s !== window.__seen[window.__seen.length - 1]) window.__seen.push(s);
        requestAnimationFrame(look);
      };
      look();
    }, name);
    await panel.locator("[data-test=materialize]").click();
    await page.waitForFunction(
      (n) => window.__cairn.graph().nodes.find((x) => x.name === n)?.state === "fresh",
      name,
      { timeout: 60_000 },
    );
    await page.screenshot({ path: join(shots, "materialized.png") });
    const seen = await page.evaluate(() => window.__seen);
    return { before, seen, after: (await node(page, name)).state };
  },

  async viewer(page, [name]) {
    await open(page, `#/asset/${name}`);
    const panel = page.locator(`[data-test=panel][data-asset="${name}"]`);
    await panel.waitFor({ timeout: 30_000 });
    await panel.locator("[data-test=row-count]").waitFor({ timeout: 30_000 });
    const buttons = await page
      .locator("[data-test=materialize], [data-test=backfill], [data-test=cancel]")
      .count();
    // The same call the button would make, straight to the API.
    expected.add("/api/v1/Materialize 403");
    const direct = await page.evaluate(
      async ([n, t]) => {
        const r = await fetch("/api/v1/Materialize", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${t}` },
          body: JSON.stringify({ selection: [n] }),
        });
        return { status: r.status, body: await r.json() };
      },
      [name, token],
    );
    await page.screenshot({ path: join(shots, "viewer.png") });
    return { buttons, direct };
  },

  async partition(page, [name, key]) {
    await open(page, `#/asset/${name}/partition/${key}`);
    const detail = page.locator(`[data-test=partition-detail][data-partition="${key}"]`);
    await detail.waitFor({ timeout: 30_000 });
    const cells = await page.locator("[data-test=partition]").evaluateAll((els) =>
      els.map((e) => ({ key: e.getAttribute("data-partition"), state: e.getAttribute("data-state") })),
    );
    const versions = Number(await detail.getAttribute("data-versions"));
    await page.screenshot({ path: join(shots, "partition.png") });
    return { cells, versions, hash: await page.evaluate(() => location.hash) };
  },

  async pan(page) {
    await open(page);
    const frames = [];
    const box = { x: 800, y: 500 };
    await page.mouse.move(box.x, box.y);
    await page.mouse.down();
    for (let i = 0; i < 30; i++) {
      await page.mouse.move(box.x - i * 15, box.y - i * 5);
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(r)));
      frames.push(await page.evaluate(() => window.__cairn.stats().lastFrameMs));
    }
    await page.mouse.up();
    for (let i = 0; i < 10; i++) {
      await page.mouse.wheel(0, i < 5 ? -200 : 200);
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(r)));
      frames.push(await page.evaluate(() => window.__cairn.stats().lastFrameMs));
    }
    const stats = await page.evaluate(() => window.__cairn.stats());
    await page.screenshot({ path: join(shots, "panned.png") });
    return { frames, stats };
  },
};

const browser = await chromium.launch({
  executablePath,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const errors = [];
const expected = new Set();
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // Failed requests are told below, with their method and message.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      errors.push(`console: ${m.text()}`);
    }
  });
  // Every refused API call, except the 401 that asks for the sign-in and
  // what a scenario provokes on purpose (`expected`).
  page.on("response", async (r) => {
    if (r.status() < 400 || r.status() === 401) return;
    const path = new URL(r.url()).pathname;
    if (expected.has(`${path} ${r.status()}`)) return;
    errors.push(`${r.request().method()} ${path} -> ${r.status()}: ${await r.text().catch(() => "")}`);
  });
  const out = await scenarios[scenario](page, args);
  out.errors = errors;
  console.log(JSON.stringify(out));
} catch (e) {
  console.log(JSON.stringify({ failed: String(e?.stack ?? e), errors }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
