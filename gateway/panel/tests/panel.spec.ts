// The control panel against a real coordinator (mTLS), real fog-agent
// processes and fog-gateway, in headless Chromium.

import { Code, ConnectError } from "@connectrpc/connect";
import type { Page } from "@playwright/test";
import { clients, codeOf } from "./support/api.js";
import { ensureAgents, expect, go, screenshot, session, SESSION_KEY, signIn, submitFromForm, test } from "./support/fixtures.js";
import { ADMIN, figure, log, VIEWER } from "./support/processes.js";

test("sign in, see the control panel, refresh the session, and go back to sign-in when refresh fails", async ({ page, fleet }) => {
  // The panel runs under the gateway's strict CSP (the guard fixture fails
  // the test on any violation the browser reports).
  const res = await page.goto(`${fleet.url}/control-panel`);
  expect(res?.headers()["content-security-policy"]).toContain("script-src 'self'");
  await expect(page).toHaveURL(/\/login\?next=%2Fcontrol-panel$/);
  await expect(page.getByTestId("login-form")).toBeVisible();
  // (Initial-load figures, cold and warm, are measured in session.spec.ts.)
  await screenshot(page, "login");

  await page.getByTestId("login-username").fill(ADMIN.username);
  await page.getByTestId("login-password").fill("not-the-password");
  await page.getByTestId("login-submit").click();
  await expect(page.getByTestId("login-error")).toContainText("unauthenticated");

  await page.getByTestId("login-password").fill(ADMIN.password);
  const t0 = Date.now();
  await page.getByTestId("login-submit").click();
  await expect(page).toHaveURL(/\/control-panel$/);
  await expect(page.getByTestId("system-status-card")).toBeVisible();
  figure(`sign-in click to a rendered control panel: ${Date.now() - t0} ms`);
  await expect(page.getByTestId("user-role")).toHaveText("admin");
  await expect(page.getByTestId("system-status-card")).toBeVisible();
  await expect(page.getByTestId("system-status-card")).toContainText("Version");
  // Components grouped by category, each with a status badge and details.
  const services = page.locator('[data-testid^="service-status-"]');
  await expect.poll(() => services.count()).toBeGreaterThan(3);
  await expect(page.locator('[data-testid^="category-"]').first()).toBeVisible();
  await expect(page.getByTestId("service-status-gateway")).toContainText("healthy");
  const first = (await services.first().getAttribute("data-testid"))!.replace("service-status-", "");
  await page.getByTestId(`view-details-${first}`).click();
  await expect(page.getByTestId(`view-details-${first}`)).toHaveAttribute("aria-expanded", "true");
  await expect(page.getByTestId("quick-actions-panel")).toBeVisible();
  // An admin sees the mutating quick actions (the viewer test asserts the opposite).
  await expect(page.getByTestId("quick-action-create-join-token")).toBeVisible();
  await expect.poll(() => page.locator("[data-mutating]").count()).toBeGreaterThan(0);

  // Quick action: create a join token, for real.
  await page.getByTestId("quick-action-create-join-token").click();
  await page.getByTestId("join-token-submit").click();
  await expect(page.getByTestId("join-token-value")).toHaveValue(/^FOG1/);
  await page.getByTestId("refresh-button").click();
  await expect(page.getByTestId("refresh-button")).toBeEnabled();

  // Refresh before expiry: pretend the access token expires in 5 s; the
  // reloaded page must rotate the refresh token and keep working.
  const before = await session(page);
  await page.evaluate(
    ([k]) => {
      const s = JSON.parse(sessionStorage.getItem(k!)!);
      s.accessExpiresAt = Date.now() + 5_000;
      sessionStorage.setItem(k!, JSON.stringify(s));
    },
    [SESSION_KEY],
  );
  await page.reload();
  await expect.poll(async () => (await session(page))?.refreshToken, { timeout: 15_000 }).not.toBe(before.refreshToken);
  const after = await session(page);
  expect(after.accessToken).not.toBe(before.accessToken);
  expect(after.accessExpiresAt).toBeGreaterThan(Date.now() + 60_000);
  await expect(page.getByTestId("system-status-card")).toBeVisible();
  await go(page, "nodes");
  await expect(page.getByTestId("nodes-page")).toBeVisible();

  // A refresh that fails (revoked/garbage tokens) ends on the sign-in page.
  await page.evaluate(
    ([k]) => {
      const s = JSON.parse(sessionStorage.getItem(k!)!);
      s.accessToken = "garbage";
      s.refreshToken = "garbage";
      sessionStorage.setItem(k!, JSON.stringify(s));
    },
    [SESSION_KEY],
  );
  await page.reload();
  await expect(page).toHaveURL(/\/login/, { timeout: 15_000 });
  expect(await session(page)).toBeNull();
});

test("nodes appear live as agents join", async ({ page, fleet }) => {
  await signIn(page, fleet.url);
  await go(page, "nodes");
  // A fresh fleet has no nodes yet: the page says so.
  if (fleet.agents.size === 0) await expect(page.getByTestId("empty-state")).toBeVisible();

  // Joined while the page is open: they must appear without a reload.
  await ensureAgents(fleet, ["agent-1", "agent-2"]);
  for (const id of ["agent-1", "agent-2"]) {
    await expect(page.getByTestId(`node-card-${id}`)).toBeVisible({ timeout: 30_000 });
    await expect(page.getByTestId(`node-status-${id}`)).toHaveText(/idle|active|busy/, { timeout: 30_000 });
  }
  const value = async (testId: string) => Number(await page.getByTestId(testId).locator(".stat-value").textContent());
  await expect.poll(() => value("total-nodes-card")).toBeGreaterThanOrEqual(2);
  await expect.poll(() => value("active-nodes-card")).toBeGreaterThanOrEqual(2);

  // Filters: by region, and by label search.
  await page.getByTestId("filter-region").selectOption("us-east");
  await expect(page.getByTestId("node-card-agent-2")).toBeVisible();
  await expect(page.getByTestId("node-card-agent-1")).toHaveCount(0);
  await page.getByTestId("filter-region").selectOption("");
  await page.getByTestId("filter-search").fill("no-such-label=xyz");
  await expect(page.getByTestId("empty-state")).toBeVisible();
  await page.getByTestId("filter-search").fill("runtime=fog-agent");
  await expect(page.getByTestId("node-card-agent-1")).toBeVisible();

  // Details: health, heartbeat age, power mode, load history, actions.
  await page.getByTestId("node-details-agent-1").click();
  const detail = page.getByTestId("node-detail");
  await expect(detail).toBeVisible();
  await expect(page.getByTestId("node-health")).toContainText("healthy");
  await expect(page.getByTestId("node-heartbeat-age")).toHaveText(/\d+ s ago/);
  // The agent's mTLS session certificate: 24 h, renewed long before.
  await expect(page.getByTestId("node-cert-expiry")).toHaveText(/\(in (23 h|1 d) /);
  await expect(detail).toContainText("Power mode");
  await expect(page.getByTestId("node-cordon")).toBeVisible();
  // Cordon and uncordon through the panel, seen back from the API.
  await page.getByTestId("node-cordon").click();
  await expect(page.getByTestId("node-health")).toContainText("cordoned");
  await page.getByTestId("node-uncordon").click();
  await expect(page.getByTestId("node-health")).not.toContainText("cordoned");
  await page.getByTestId("filter-search").fill("");
  await screenshot(page, "nodes");
});

test("a task submitted from the form runs to completion, and explains its placement", async ({ page, fleet }) => {
  await ensureAgents(fleet, ["agent-1", "agent-2"]);
  await signIn(page, fleet.url);
  await go(page, "tasks");
  await expect(page.getByTestId("tasks-header")).toBeVisible();
  const id = await submitFromForm(page, { name: "panel-echo", kind: "echo", arg: "hello from the panel" });
  const card = page.getByTestId(`task-card-${id}`);
  await expect(card).toBeVisible();
  await expect(page.getByTestId(`task-state-${id}`)).toHaveText("succeeded", { timeout: 30_000 });
  await expect(page.getByTestId(`task-output-${id}`)).toHaveText("hello from the panel");
  await expect(page.getByTestId(`task-nodes-${id}`)).toContainText(/on agent-\d/);
  await page.getByTestId("tab-completed").click();
  await expect(card).toBeVisible();
  await page.getByTestId("tab-running").click();
  await expect(card).toHaveCount(0);
  await page.getByTestId("tab-all").click();
  await page.getByTestId(`task-why-${id}`).click();
  await expect(page.getByTestId(`task-explain-${id}`)).toContainText("nodes fit");
  await expect.poll(async () => Number(await page.getByTestId("completed-tasks-card").locator(".stat-value").textContent())).toBeGreaterThanOrEqual(1);
  await screenshot(page, "tasks");
  // The control panel's screenshot with a fleet that has nodes and work done.
  await go(page, "control-panel");
  await expect(page.getByTestId("system-status-card")).toContainText(/[1-9]\d* total, [1-9]\d* healthy/);
  await expect(page.getByTestId("system-status-card")).toContainText(/[1-9]\d* completed/);
  await expect.poll(() => page.locator('[data-testid^="service-status-"]').count()).toBeGreaterThan(3);
  await screenshot(page, "control-panel");
});

test("an XSS payload in a node's name, zone and label and in a task's name renders as inert text", async ({ page, fleet, dialogs }) => {
  const nodeName = `<img src=x onerror="window.__xss=1;alert('node')">`;
  const zone = `"><script>alert('zone')</script>`;
  const taskName = `<img src=x onerror="window.__xss=2;alert('task')">`;
  const echo = `<script>alert('output')</script>`;
  // Label values are [A-Za-z0-9._-]* and keys [A-Za-z0-9._/-]+ (domain.rs,
  // and buf.validate on fog.v1.Label), so markup cannot get into a label:
  // the API refuses it below. This is the most hostile label that is
  // accepted: a path-like key and a javascript-like value.
  const label = "../../onerror=javascript.alert-1";
  const refused = "<img src=x onerror=alert(1)>";
  if (!fleet.agents.has("agent-x")) await fleet.addAgent("agent-x", { region: "eu-west", name: nodeName, zone, labels: [label] });

  await signIn(page, fleet.url);
  await go(page, "nodes");
  await expect(page.getByTestId("node-name-agent-x")).toHaveText(nodeName, { timeout: 30_000 });
  await expect(page.getByTestId("node-card-agent-x")).toContainText(zone);
  await page.getByTestId("node-details-agent-x").click();
  await expect(page.getByTestId("node-detail-name")).toHaveText(nodeName);
  await expect(page.getByTestId("node-detail").locator("li.label", { hasText: "onerror" })).toHaveText(label);
  await page.getByTestId("filter-search").fill("javascript.alert-1");
  await expect(page.getByTestId("node-card-agent-x")).toBeVisible();
  await page.getByTestId("filter-search").fill("");

  // A label with markup in it is refused by the API, naming the field.
  const api = clients(fleet.url, (await session(page)).accessToken);
  const bad = await api.fleet.updateNodeLabels({ nodeId: "agent-x", set: [{ key: "x", value: refused }] }).then(
    () => null,
    (e: unknown) => ConnectError.from(e),
  );
  expect(bad, "a label value with markup is refused").not.toBeNull();
  expect(Code[bad!.code]).toBe("InvalidArgument");
  log(`refused label: ${bad!.rawMessage}`);
  expect(bad!.rawMessage).toMatch(/set\[0\]\.value/);

  await go(page, "tasks");
  await ensureAgents(fleet, ["agent-1", "agent-2"]);
  const id = await submitFromForm(page, { name: taskName, kind: "echo", arg: echo });
  await expect(page.getByTestId(`task-name-${id}`)).toHaveText(taskName);
  await expect(page.getByTestId(`task-state-${id}`)).toHaveText("succeeded", { timeout: 30_000 });
  await expect(page.getByTestId(`task-output-${id}`)).toHaveText(echo);

  await go(page, "topology");
  await go(page, "control-panel");
  // Nothing ran: no dialog, no flag set by an onerror handler, no element
  // made from the payloads.
  expect(dialogs).toEqual([]);
  expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  await go(page, "nodes");
  await expect(page.getByTestId("node-name-agent-x")).toHaveText(nodeName);
  expect(await page.locator("img").count()).toBe(0);
  expect(await page.locator("#root script").count()).toBe(0);
  expect(dialogs).toEqual([]);
});

test("a viewer sees no mutating controls, and the API refuses them anyway", async ({ page, fleet }) => {
  await ensureAgents(fleet, ["agent-1", "agent-2"]);
  await signIn(page, fleet.url, VIEWER);
  await expect(page.getByTestId("user-role")).toHaveText("viewer");
  await expect(page.getByTestId("system-status-card")).toBeVisible();
  await expect(page.getByTestId("quick-action-open-topology")).toBeVisible();
  await expect(page.getByTestId("quick-action-create-join-token")).toHaveCount(0);
  await expect(page.getByTestId("quick-action-submit-task")).toHaveCount(0);
  await expect(page.getByTestId("quick-action-drain-node")).toHaveCount(0);
  expect(await page.locator("[data-mutating]").count()).toBe(0);

  await go(page, "nodes");
  await expect(page.getByTestId("node-card-agent-1")).toBeVisible({ timeout: 30_000 });
  await page.getByTestId("node-details-agent-1").click();
  await expect(page.getByTestId("node-health")).toBeVisible();
  await expect(page.getByTestId("node-cordon")).toHaveCount(0);
  await expect(page.getByTestId("join-token-toggle")).toHaveCount(0);
  expect(await page.locator("[data-mutating]").count()).toBe(0);

  await go(page, "tasks");
  await expect(page.getByTestId("tasks-header")).toBeVisible();
  await expect(page.getByTestId("task-submit-form")).toHaveCount(0);
  expect(await page.locator("[data-mutating]").count()).toBe(0);

  // The same token, used directly against the gateway, is refused by the coordinator.
  const { accessToken } = await session(page);
  const api = clients(fleet.url, accessToken);
  expect(await codeOf(api.fleet.listNodes({}))).toBe("ok");
  expect(await codeOf(api.fleet.cordonNode({ nodeId: "agent-1" }))).toBe("PermissionDenied");
  expect(await codeOf(api.fleet.createJoinToken({}))).toBe("PermissionDenied");
  expect(await codeOf(api.fleet.removeNode({ nodeId: "agent-1" }))).toBe("PermissionDenied");
  expect(
    await codeOf(api.tasks.submitTask({ spec: { name: "nope", workload: { case: "builtin", value: { kind: { case: "echo", value: "x" } } } } })),
  ).toBe("PermissionDenied");
  // And without a token at all.
  expect(await codeOf(clients(fleet.url, "").fleet.listNodes({}))).toBe("Unauthenticated");
});

test("quick actions work: submit a task, drain a node, open the topology", async ({ page, fleet }) => {
  await ensureAgents(fleet, ["agent-1", "agent-2", "agent-q"]);
  await signIn(page, fleet.url);
  await page.getByTestId("quick-action-submit-task").click();
  const form = page.getByTestId("quick-submit-form");
  await form.getByLabel("Task name").fill("quick-echo");
  await form.getByLabel("Text to echo").fill("from a quick action");
  await form.getByRole("button", { name: "Submit" }).click();
  const id = (await page.getByTestId("quick-submit-result").locator("a").textContent())!.trim();
  expect(id).toMatch(/^t-/);

  await page.getByTestId("quick-action-drain-node").click();
  await page.getByTestId("quick-drain-form").getByLabel("Node id").fill("agent-q");
  await page.getByTestId("quick-drain-form").getByRole("button", { name: "Drain" }).click();
  await expect(page.getByTestId("quick-drain-form")).toContainText("agent-q is draining");

  await page.getByTestId("quick-action-open-topology").click();
  await expect(page).toHaveURL(/\/topology$/);
  await expect(page.getByTestId("topology-canvas")).toBeVisible();

  await go(page, "tasks");
  await expect(page.getByTestId(`task-state-${id}`)).toHaveText("succeeded", { timeout: 30_000 });
  await expect(page.getByTestId(`task-output-${id}`)).toHaveText("from a quick action");
  await go(page, "nodes");
  await page.getByTestId("node-details-agent-q").click();
  await expect(page.getByTestId("node-health")).toContainText("draining");
});

test("live views survive a coordinator restart: the watches reconnect and resync", async ({ page, fleet }) => {
  await ensureAgents(fleet, ["agent-1", "agent-2"]);
  await signIn(page, fleet.url);
  await go(page, "topology");
  await expect(page.getByTestId("topology-status")).toContainText(/\d+ nodes/);
  await expect(page.getByTestId("live-indicator")).toHaveText("live");

  await fleet.coord.restart();
  // A new coordinator run has a new epoch: resuming from the old revision
  // must end in an explicit resync, not a silent gap.
  await expect(page.getByTestId("topology-status")).toContainText(/[1-9]\d* resyncs/, { timeout: 60_000 });
  await expect(page.getByTestId("live-indicator")).toHaveText("live");
  for (const id of ["agent-1", "agent-2"]) {
    await go(page, "nodes");
    await expect(page.getByTestId(`node-status-${id}`)).toHaveText(/idle|active|busy/, { timeout: 60_000 });
  }
  // The task watch is back too: a new task is followed to completion live.
  await go(page, "tasks");
  const id = await submitFromForm(page, { name: "after-restart", kind: "echo", arg: "still live" });
  await expect(page.getByTestId(`task-state-${id}`)).toHaveText("succeeded", { timeout: 30_000 });
});

test("a killed agent goes suspect, then offline, and its task is rerouted", async ({ page, fleet }) => {
  await ensureAgents(fleet, ["agent-1", "agent-2"]);
  await signIn(page, fleet.url);
  await go(page, "tasks");
  const id = await submitFromForm(page, { name: "long-sleeper", kind: "sleepMs", arg: "120000" });
  await expect(page.getByTestId(`task-state-${id}`)).toHaveText("running", { timeout: 30_000 });
  const placed = (await page.getByTestId(`task-nodes-${id}`).textContent()) ?? "";
  const victim = /on (\S+)/.exec(placed)?.[1];
  expect(victim, `task placement text: ${placed}`).toBeTruthy();
  const agent = fleet.agents.get(victim!);
  expect(agent, `${victim} is one of the test's agents`).toBeTruthy();

  await go(page, "nodes");
  await expect(page.getByTestId(`node-status-${victim}`)).toHaveText(/active|busy/);
  log(`SIGKILL ${victim} (pid ${agent!.child.pid})`);
  const killedAt = Date.now();
  await fleet.stack.kill(agent!.child);
  await expect(page.getByTestId(`node-status-${victim}`)).toHaveText("suspect", { timeout: 15_000 });
  figure(`${victim} suspect after ${Date.now() - killedAt} ms`);
  await expect(page.getByTestId(`node-status-${victim}`)).toHaveText("offline", { timeout: 30_000 });
  figure(`${victim} offline after ${Date.now() - killedAt} ms`);

  await go(page, "tasks");
  await expect(page.getByTestId(`task-attempt-${id}-1`)).toContainText("lost", { timeout: 30_000 });
  await expect(page.getByTestId(`task-attempt-${id}-2`)).toBeVisible({ timeout: 30_000 });
  const rerouted = (await page.getByTestId(`task-attempt-${id}-2`).locator(".mono").textContent())!.trim();
  expect(rerouted).not.toBe(victim);
  await expect(page.getByTestId(`task-state-${id}`)).toHaveText(/assigned|running/);
  log(`task ${id} rerouted from ${victim} to ${rerouted}`);

  // Clean up through the panel: cancel the sleeper.
  await page.getByTestId(`task-cancel-${id}`).click();
  await expect(page.getByTestId(`task-state-${id}`)).toHaveText("cancelled", { timeout: 15_000 });
  fleet.agents.delete(victim!);
});

test("usable on a phone-sized screen, by keyboard, and with a screen reader's basics", async ({ page, fleet }) => {
  await ensureAgents(fleet, ["agent-2"]);
  await page.setViewportSize({ width: 390, height: 844 });
  // Errors are announced: a failed sign-in is a role=alert.
  await page.goto(`${fleet.url}/login`);
  await page.getByLabel("Username").fill(ADMIN.username);
  await page.getByLabel("Password").fill("wrong-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("unauthenticated");
  await expectNamedControls(page, "login");

  await signIn(page, fleet.url);
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  for (const where of ["control-panel", "nodes", "tasks", "topology"] as const) {
    await go(page, where);
    await expect(page.getByTestId(`${where}-page`)).toBeVisible();
    // Nothing wider than the screen: no sideways scrolling of the page.
    expect(await overflow(), `horizontal overflow on /${where}`).toBeLessThanOrEqual(0);
    await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: /Nodes/ })).toBeVisible();
    if (where === "tasks") {
      await expect(page.getByRole("tablist", { name: "Task states" })).toBeVisible();
      await expect(page.getByRole("tab")).toHaveCount(5);
      await expect(page.getByRole("tab", { selected: true })).toHaveText(/^all/);
      await expect(page.getByRole("tabpanel")).toBeVisible();
      await expect(page.getByRole("table").filter({ has: page.getByRole("columnheader", { name: "Tier" }) })).toBeVisible();
      await expect(page.getByRole("form", { name: "Submit a task" })).toBeVisible();
    }
    if (where === "topology") await expect(page.getByRole("table").first()).toBeVisible();
    if (where === "nodes") {
      await expect(page.getByRole("list", { name: "Nodes" }).getByRole("listitem").first()).toBeVisible({ timeout: 30_000 });
      await expect(page.getByRole("search", { name: "Filter nodes" })).toBeVisible();
    }
    await expectNamedControls(page, where);
  }
  await go(page, "nodes");
  await expect(page.getByTestId("node-card-agent-2")).toBeVisible({ timeout: 30_000 });
  await page.getByTestId("node-details-agent-2").click();
  await expect(page.getByTestId("node-detail")).toBeVisible();
  await expect(page.getByRole("complementary", { name: "Details of node agent-2" })).toBeVisible();
  await expect(page.getByRole("group", { name: "Node actions" })).toBeVisible();
  expect(await overflow()).toBeLessThanOrEqual(0);
  await expectNamedControls(page, "nodes (detail open)");
  await screenshot(page, "nodes-phone");
  // The join-token form refuses a bad label with an announced error.
  await page.getByTestId("join-token-toggle").click();
  await page.getByLabel("Labels (key=value, comma-separated)").fill("site=<b>");
  await page.getByTestId("join-token-submit").click();
  await expect(page.getByTestId("join-token-form").getByRole("alert")).toContainText("invalid argument");
  await expectNamedControls(page, "nodes (join token form)");

  // Keyboard: on a fresh load the skip link is the first stop, the main
  // navigation comes next, and the skip link moves focus to the content.
  await page.reload();
  await expect(page.getByTestId("nodes-page")).toBeVisible();
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(page.getByTestId("nav-control-panel")).toBeFocused();
  await page.keyboard.press("Tab");
  await expect(page.getByTestId("nav-nodes")).toBeFocused();
  await expect(page.getByTestId("nav-nodes")).toHaveAttribute("aria-current", "page");
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("Shift+Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.locator("main#main")).toBeFocused();
});

/** Every visible form control, button and link has an accessible name (its label, text or aria-label). */
async function expectNamedControls(page: Page, where: string) {
  const controls = page.locator("input, select, textarea, button, a[href], [role=button], [role=tab]").filter({ visible: true });
  const html = await controls.evaluateAll((els) => els.map((el) => el.outerHTML.slice(0, 160)));
  expect(html.length, `controls on ${where}`).toBeGreaterThan(0);
  for (const [i, what] of html.entries()) {
    await expect(controls.nth(i), `accessible name of ${what} on ${where}`).toHaveAccessibleName(/\S/, { timeout: 2_000 });
  }
  log(`${html.length} controls on ${where}, all named`);
}
