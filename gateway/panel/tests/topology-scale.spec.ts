// The topology and nodes pages with 5,000 simulated nodes (fogctl sim against
// an --insecure-dev coordinator). Timings are printed, not asserted tightly:
// this runs on a shared two-core machine. What is asserted is that every node
// is drawn without a DOM element each, and that the page answers an
// interaction within a generous deadline.

import { clients } from "./support/api.js";
import { expect, go, screenshot, signIn, test } from "./support/fixtures.js";
import { log } from "./support/processes.js";

test("the topology page stays responsive with 5,000 simulated nodes", async ({ page, simFleet }) => {
  test.setTimeout(300_000);
  await signIn(page, simFleet.url);
  await go(page, "topology");
  const canvas = page.getByTestId("topology-canvas");
  const started = Date.now();
  await expect(page.getByTestId("topology-status")).toContainText(`${simFleet.nodes} nodes`, { timeout: 180_000 });
  await expect.poll(async () => Number(await canvas.getAttribute("data-nodes")), { timeout: 30_000 }).toBe(simFleet.nodes);
  log(`all ${simFleet.nodes} nodes drawn ${Date.now() - started} ms after opening the page (includes the simulator's ramp-up)`);

  // One canvas, not a DOM element per node.
  const elements = await page.evaluate(() => document.querySelectorAll("*").length);
  log(`DOM elements on the page: ${elements}`);
  expect(elements).toBeLessThan(2_000);

  // Frames while live updates flow: a 3 s rAF loop in the page.
  const frames = await page.evaluate(
    () =>
      new Promise<{ frames: number; maxMs: number; p95Ms: number }>((done) => {
        const gaps: number[] = [];
        let last = performance.now();
        const end = last + 3_000;
        const step = (t: number) => {
          gaps.push(t - last);
          last = t;
          if (t < end) requestAnimationFrame(step);
          else {
            gaps.sort((a, b) => a - b);
            done({ frames: gaps.length, maxMs: gaps[gaps.length - 1]!, p95Ms: gaps[Math.floor(gaps.length * 0.95)]! });
          }
        };
        requestAnimationFrame(step);
      }),
  );
  log(`frames in 3 s: ${frames.frames}, p95 frame gap ${frames.p95Ms.toFixed(1)} ms, worst ${frames.maxMs.toFixed(1)} ms`);
  log(`last full canvas draw took ${await canvas.getAttribute("data-render-ms")} ms`);

  // Interaction: focus one region and back; time from click to the redrawn frame.
  const region = page.locator(`button[data-testid^="region-"]`).first();
  const name = (await region.getAttribute("data-testid"))!;
  for (const [what, target, regions] of [
    ["focus a region", region, "1"],
    ["back to all regions", page.getByTestId("topology-show-all"), null],
  ] as const) {
    const t0 = Date.now();
    await target.click();
    if (regions) await expect(canvas).toHaveAttribute("data-regions", regions, { timeout: 10_000 });
    else await expect(canvas).not.toHaveAttribute("data-regions", "1", { timeout: 10_000 });
    const ms = Date.now() - t0;
    log(`${what} (${name}): redrawn ${ms} ms after the click, draw ${await canvas.getAttribute("data-render-ms")} ms`);
    expect(ms).toBeLessThan(10_000);
  }

  // Live changes reach the canvas: drain and maintain a few nodes through the
  // API, and put 300 sleep tasks on the fleet, then watch the counts move.
  const { accessToken } = await page.evaluate(() => JSON.parse(sessionStorage.getItem("fog.session.v1")!));
  const api = clients(simFleet.url, accessToken);
  for (let i = 0; i < 8; i++) await api.fleet.drainNode({ nodeId: `sim-${String(i * 5).padStart(5, "0")}` });
  for (let i = 0; i < 12; i++) await api.fleet.setMaintenance({ nodeId: `sim-${String(1000 + i * 5).padStart(5, "0")}`, maintenance: true });
  const submitted = await simFleet.coord.fogctl(["tasks", "submit", "--name", "load", "--sleep-ms", "120000", "--count", "300", "--strategy", "round-robin"]);
  expect(submitted.code, submitted.stderr).toBe(0);
  const column = (status: string) =>
    page.locator(`[data-testid="region-table"] td[data-status="${status}"]`).evaluateAll((tds) => tds.reduce((n, td) => n + Number(td.textContent), 0));
  await expect.poll(() => column("maintenance"), { timeout: 30_000 }).toBe(12);
  await expect.poll(() => column("active"), { timeout: 60_000 }).toBeGreaterThanOrEqual(100);
  log(`after the changes: ${await column("active")} active, ${await column("maintenance")} in maintenance, canvas revision ${await canvas.getAttribute("data-revision")}`);

  // Hover a node cell: the tooltip names it.
  const box = (await canvas.boundingBox())!;
  await page.mouse.move(box.x + 14, box.y + 52);
  await expect(page.getByTestId("topology-tip")).toContainText(/sim-\d{5}/, { timeout: 10_000 });
  await page.mouse.move(box.x + box.width + 50, box.y - 50);
  await screenshot(page, "topology");

  // The nodes page with the same fleet: a virtualised list.
  const t1 = Date.now();
  await go(page, "nodes");
  await expect(page.getByTestId("total-nodes-card").locator(".stat-value")).toHaveText(String(simFleet.nodes), { timeout: 60_000 });
  log(`nodes page shows ${simFleet.nodes} nodes ${Date.now() - t1} ms after navigation`);
  const rows = await page.locator('[data-testid^="node-card-"]').count();
  log(`node rows in the DOM: ${rows} of ${simFleet.nodes}`);
  expect(rows).toBeLessThan(60);
  const list = page.getByTestId("node-list");
  const t2 = Date.now();
  await list.evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
  await expect(page.locator('[data-testid="node-card-sim-02500"], [data-testid="node-card-sim-02499"], [data-testid="node-card-sim-02501"]').first()).toBeVisible({ timeout: 10_000 });
  log(`scrolled to the middle of the list: row visible ${Date.now() - t2} ms after the scroll`);
  await page.getByTestId("filter-search").fill("sim-04999");
  await expect(page.getByTestId("node-card-sim-04999")).toBeVisible({ timeout: 10_000 });
  // Its name comes from ListNodes, not the watch: every page of the directory was read.
  await expect(page.getByTestId("node-name-sim-04999")).not.toHaveText("sim-04999", { timeout: 60_000 });
  log(`directory (ListNodes, ${simFleet.nodes / 1000} pages) complete ${Date.now() - t1} ms after navigation`);
  await expect(page.getByTestId("total-resources-card").locator(".stat-value")).not.toHaveText("0 cores");
  await page.getByTestId("filter-search").fill("");
  await screenshot(page, "nodes-5000");
});
