// What an operator does from the tasks and nodes pages: a task with every
// placement setting from the form, "why here?", cancelling a running task,
// and a node's life from a join token made in the panel to its removal.
// Same real mTLS fleet as panel.spec.ts (the worker's `fleet`).

import { Code, ConnectError } from "@connectrpc/connect";
import type { Page } from "@playwright/test";
import { PrivacyLevel, RoutingStrategy, SlaTier } from "../src/gen/fog/v1/common_pb.js";
import { TaskState } from "../src/gen/fog/v1/task_pb.js";
import { clients } from "./support/api.js";
import { ensureAgents, expect, go, session, signIn, submitFromForm, submitted, test, type Fleet } from "./support/fixtures.js";
import { log } from "./support/processes.js";

/** Signs in, and (as admin) marks agent-1 the one node that may host PRIVATE work. */
async function privateOnAgent1(page: Page, fleet: Fleet) {
  await ensureAgents(fleet, ["agent-1", "agent-2"]);
  await signIn(page, fleet.url);
  const api = clients(fleet.url, (await session(page)).accessToken);
  await api.fleet.updateNodeLabels({ nodeId: "agent-1", set: [{ key: "fog.io/onion-routing", value: "true" }] });
  return api;
}

/** One cell of the queue table (tier × state). */
const queued = (page: Page, tier: string, state: string) => async () => Number(await page.getByTestId(`queue-${tier}-${state}`).textContent());

test("a task from the form carries its tier, privacy level, strategy, affinity key and origin, and explains its placement", async ({ page, fleet }) => {
  const api = await privateOnAgent1(page, fleet);
  await go(page, "tasks");
  const goldDone = await queued(page, "gold", "succeeded")();

  // An exec task (the test agents allow /bin/echo) with every placement setting changed.
  await page.getByTestId("task-form-name").fill("panel-exec");
  await page.getByTestId("task-form-kind").selectOption("exec");
  await page.getByTestId("task-form-command").fill("/bin/echo");
  await page.getByTestId("task-form-args").fill("placed\nby the form");
  await page.getByTestId("task-form-tier").selectOption({ label: "gold" });
  await page.getByTestId("task-form-privacy").selectOption({ label: "private" });
  await page.getByTestId("task-form-strategy").selectOption({ label: "proximity" });
  const form = page.getByTestId("task-submit-form");
  await form.getByLabel("Affinity key").fill("cache-7");
  await form.getByLabel("Origin region").fill("eu-west");
  await form.getByLabel("Origin latitude").fill("53.35");
  await form.getByLabel("Origin longitude").fill("-6.26");
  // Gold means three replicas on distinct nodes; only one node may take PRIVATE work here.
  await form.getByLabel("Replicas (0 = tier default)").fill("1");
  const id = await submitted(page, "panel-exec");

  await expect(page.getByTestId(`task-state-${id}`)).toHaveText("succeeded", { timeout: 30_000 });
  await expect(page.getByTestId(`task-output-${id}`)).toHaveText("placed by the form");
  await expect(page.getByTestId(`task-nodes-${id}`)).toContainText("on agent-1");
  await expect(page.getByTestId(`task-card-${id}`)).toContainText("gold · private · proximity · key cache-7");
  await expect.poll(queued(page, "gold", "succeeded")).toBe(goldDone + 1);

  // The coordinator holds what the form sent.
  const spec = (await api.tasks.getTask({ taskId: id })).task?.spec;
  expect(spec).toMatchObject({
    name: "panel-exec",
    slaTier: SlaTier.GOLD,
    privacyLevel: PrivacyLevel.PRIVATE,
    strategy: RoutingStrategy.PROXIMITY,
    affinityKey: "cache-7",
    replicas: 1,
    workload: { case: "exec", value: { command: "/bin/echo", args: ["placed", "by the form"] } },
    origin: { region: "eu-west", hasCoordinates: true, latitude: 53.35, longitude: -6.26 },
  });

  // "Why here?": proximity's reasoning, the chosen node, and why the others may not.
  await page.getByTestId(`task-why-${id}`).click();
  const explain = page.getByTestId(`task-explain-${id}`);
  await expect(explain).toContainText(/Strategy proximity: 1 of \d+ nodes fit; it would choose agent-1 now/);
  await expect(explain.locator("strong")).toHaveText("agent-1");
  await expect(explain.locator("ol > li").first()).toContainText(/^agent-1 score -?\d+\.\d{3}: ~\d+\.\d ms \(region matrix eu-west → eu-west\), load \d\.\d{3}$/);
  await expect(explain.locator("ul > li").filter({ hasText: /^agent-2:/ })).toHaveText("agent-2: privacy: task is PRIVATE, node may host at most PUBLIC");
  log(`explained: ${(await explain.textContent())?.slice(0, 300)}`);
});

test("a running task is listed on its node and cancelled from the panel", async ({ page, fleet }) => {
  const api = await privateOnAgent1(page, fleet);
  await go(page, "tasks");
  const silverCancelled = await queued(page, "silver", "cancelled")();
  await page.getByTestId("task-form-tier").selectOption({ label: "silver" });
  await page.getByTestId("task-form-privacy").selectOption({ label: "private" });
  await page.getByTestId("task-submit-form").getByLabel("Replicas (0 = tier default)").fill("1");
  const id = await submitFromForm(page, { name: "panel-sleeper", kind: "sleepMs", arg: "120000" });
  await expect(page.getByTestId(`task-state-${id}`)).toHaveText("running", { timeout: 30_000 });
  await expect(page.getByTestId(`task-nodes-${id}`)).toContainText("on agent-1");
  await expect.poll(queued(page, "silver", "running")).toBeGreaterThanOrEqual(1);

  // The node's details list it among its running tasks, linked to the task.
  await go(page, "nodes");
  await page.getByTestId("node-details-agent-1").click();
  const onNode = page.getByTestId("node-tasks").getByRole("listitem").filter({ hasText: id });
  await expect(onNode).toContainText(`${id} panel-sleeper (running)`, { timeout: 15_000 });
  await onNode.getByRole("link", { name: id }).click();
  await expect(page).toHaveURL(new RegExp(`/tasks\\?task=${id}$`));

  await page.getByTestId(`task-cancel-${id}`).click();
  await expect(page.getByTestId(`task-state-${id}`)).toHaveText("cancelled", { timeout: 15_000 });
  await expect(page.getByTestId(`task-cancel-${id}`)).toHaveCount(0);
  await expect.poll(queued(page, "silver", "cancelled")).toBe(silverCancelled + 1);
  expect((await api.tasks.getTask({ taskId: id })).task?.state).toBe(TaskState.CANCELLED);
  // And the node lets go of it.
  await go(page, "nodes");
  await page.getByTestId("node-details-agent-1").click();
  await expect(page.getByTestId("node-health")).toBeVisible();
  await expect(page.getByTestId("node-detail")).not.toContainText(id, { timeout: 15_000 });
});

test("a node's life in the panel: join token, filters, load history, maintenance, removal", async ({ page, fleet }) => {
  await ensureAgents(fleet, ["agent-1", "agent-2"]);
  await signIn(page, fleet.url);
  await go(page, "nodes");

  // A join token from the nodes page; a label with markup is refused, naming the field.
  await page.getByTestId("join-token-toggle").click();
  const form = page.getByTestId("join-token-form");
  await form.getByLabel("Node name (optional)").fill("agent-r");
  await form.getByLabel("Labels (key=value, comma-separated)").fill("site=<img src=x onerror=alert(1)>");
  await page.getByTestId("join-token-submit").click();
  await expect(form.getByRole("alert")).toContainText(/^invalid argument: .*labels\[0\]\.value/);
  log(`join token with a bad label: ${await form.getByRole("alert").textContent()}`);
  // (An admin's token may carry reserved fog.io/ labels; the agent's own
  // report replaces the token's other labels when it registers.)
  await form.getByLabel("Labels (key=value, comma-separated)").fill("fog.io/attested=true");
  await page.getByTestId("join-token-submit").click();
  await expect(page.getByTestId("join-token-value")).toHaveValue(/^FOG1/);
  await expect(form.getByRole("alert")).toHaveCount(0);
  const token = await page.getByTestId("join-token-value").inputValue();

  // A new edge device joins with that token and appears live.
  const agent = await fleet.addAgent("agent-r", { region: "ap-south", nodeType: "edge_device", token });
  await expect(page.getByTestId("node-status-agent-r")).toHaveText(/idle|active|busy/, { timeout: 30_000 });

  // Type filter.
  await page.getByTestId("filter-type").selectOption({ label: "edge device" });
  await expect(page.getByTestId("node-card-agent-r")).toBeVisible();
  await expect(page.getByTestId("node-card-agent-1")).toHaveCount(0);
  await page.getByTestId("filter-type").selectOption({ label: "mixnode" });
  await expect(page.getByTestId("empty-state")).toBeVisible();
  await page.getByTestId("filter-type").selectOption({ label: "compute node" });
  await expect(page.getByTestId("node-card-agent-1")).toBeVisible();
  await expect(page.getByTestId("node-card-agent-r")).toHaveCount(0);
  await page.getByTestId("filter-type").selectOption({ label: "any" });

  // Details: the token's label, and a load chart that fills from the watch.
  await page.getByTestId("node-details-agent-r").click();
  await expect(page.getByTestId("node-detail").locator("li.label")).toContainText(["fog.io/attested=true"]);
  const chart = page.getByTestId("node-load-chart");
  await expect.poll(async () => Number(await chart.getAttribute("data-samples")), { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
  await expect(chart.getByRole("img")).toHaveAccessibleName(/^Load: \d+ % now$/);

  // Maintenance on, seen by the status filter, and off again.
  await page.getByTestId("node-maintenance").click();
  await expect(page.getByTestId("node-health")).toContainText("in maintenance");
  await expect(page.getByTestId("node-maintenance")).toHaveText("End maintenance");
  await page.getByTestId("filter-status").selectOption({ label: "maintenance" });
  await expect(page.getByTestId("node-status-agent-r")).toHaveText("maintenance");
  await expect(page.getByTestId("node-card-agent-1")).toHaveCount(0);
  await page.getByTestId("node-maintenance").click();
  await expect(page.getByTestId("node-health")).not.toContainText("in maintenance");
  await expect(page.getByTestId("node-maintenance")).toHaveText("Maintenance");
  await expect(page.getByTestId("empty-state")).toBeVisible();
  await page.getByTestId("filter-status").selectOption({ label: "any" });
  await expect(page.getByTestId("node-status-agent-r")).toHaveText(/idle|active|busy/);

  // Removal, behind a confirmation.
  await page.getByTestId("node-remove").click();
  await page.getByTestId("node-remove-confirm").click();
  await expect(page.getByTestId("node-detail")).toHaveCount(0);
  await expect(page.getByTestId("node-card-agent-r")).toHaveCount(0, { timeout: 15_000 });
  await expect(page.getByTestId("node-card-agent-1")).toBeVisible();
  const api = clients(fleet.url, (await session(page)).accessToken);
  const gone = await api.fleet.getNode({ nodeId: "agent-r" }).then(
    () => "found",
    (e: unknown) => Code[ConnectError.from(e).code],
  );
  expect(gone).toBe("NotFound");
  await fleet.stack.terminate(agent.child);
  fleet.agents.delete("agent-r");
});
