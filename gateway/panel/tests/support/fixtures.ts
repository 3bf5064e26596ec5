// Playwright fixtures. Worker-scoped stacks are started once and shared by the
// tests of a file (they run in order, on one worker): starting a coordinator,
// agents and a gateway per test would triple the suite's time on two cores.

import { test as base, expect, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ADMIN,
  BIN,
  createUser,
  log,
  requireBinaries,
  Stack,
  startAgent,
  startCoordinator,
  startGateway,
  VIEWER,
  type Agent,
  type Coordinator,
} from "./processes.js";

const SHOTS = resolve(dirname(fileURLToPath(import.meta.url)), "../../screenshots");

export interface Fleet {
  stack: Stack;
  coord: Coordinator;
  /** The gateway's origin, e.g. http://127.0.0.1:41234. */
  url: string;
  agents: Map<string, Agent>;
  addAgent: (id: string, opts: Parameters<typeof startAgent>[3]) => Promise<Agent>;
}

export interface SimFleet {
  stack: Stack;
  coord: Coordinator;
  url: string;
  nodes: number;
}

export const test = base.extend<{ dialogs: string[]; cspGuard: void }, { fleet: Fleet; simFleet: SimFleet }>({
  // Every test fails if the page broke the gateway's Content-Security-Policy
  // (an inline script or style, eval, a request to another origin), or threw.
  cspGuard: [
    async ({ page }, use) => {
      const violations: string[] = [];
      page.on("console", (m) => {
        if (/Content.Security.Policy/i.test(m.text())) violations.push(m.text());
      });
      // And on any uncaught exception in the page.
      const errors: string[] = [];
      page.on("pageerror", (e) => {
        if (/Content.Security.Policy|unsafe-eval/i.test(e.message)) violations.push(e.message);
        else errors.push(e.message);
      });
      await use();
      expect(violations, "CSP violations reported by the browser").toEqual([]);
      expect(errors, "uncaught exceptions in the page").toEqual([]);
    },
    { auto: true },
  ],

  // Any alert/confirm/prompt is recorded (and dismissed): the XSS test
  // asserts none fired, and the panel itself never opens one.
  dialogs: async ({ page }, use) => {
    const seen: string[] = [];
    page.on("dialog", (d) => {
      seen.push(`${d.type()}: ${d.message()}`);
      void d.dismiss();
    });
    await use(seen);
  },

  fleet: [
    async ({}, use) => {
      requireBinaries(["fog-coordinator", "fog-agent", "fogctl", "fog-gateway"]);
      const stack = new Stack("fleet");
      try {
        log("starting an mTLS coordinator (offline grace 8 s, so 'suspect' lasts long enough to see)");
        const coord = await startCoordinator(stack, { insecure: false, extraArgs: ["--heartbeat-interval", "1s", "--offline-grace", "8s"] });
        await createUser(coord, VIEWER, "viewer");
        const url = await startGateway(stack, coord);
        const agents = new Map<string, Agent>();
        const addAgent = async (id: string, opts: Parameters<typeof startAgent>[3]) => {
          log(`agent ${id} joins with a one-time token`);
          const a = await startAgent(stack, coord, id, opts);
          agents.set(id, a);
          return a;
        };
        await use({ stack, coord, url, agents, addAgent });
      } finally {
        await stack.stop();
      }
    },
    { scope: "worker", timeout: 120_000 },
  ],

  simFleet: [
    async ({}, use) => {
      requireBinaries(["fog-coordinator", "fogctl", "fog-gateway"]);
      const stack = new Stack("sim");
      const nodes = Number(process.env.FOG_SIM_NODES ?? 5000);
      try {
        log(`starting an --insecure-dev coordinator and ${nodes} simulated nodes (fogctl sim)`);
        // Heartbeats every 5 s: 5,000 debug-built sessions at 1 s would eat
        // both cores, and this test is about the browser, not the coordinator.
        // The write budget is raised because the test loads the fleet with
        // 300 tasks in one burst (the default 50/s per identity refuses that).
        const coord = await startCoordinator(stack, {
          insecure: true,
          extraArgs: ["--heartbeat-interval", "5s", "--restart-grace", "5s", "--limit-write-rps", "2000"],
        });
        stack.spawn("sim", join(BIN, "fogctl"), ["sim", "--nodes", String(nodes), "--coordinator", coord.url], coord.env);
        const url = await startGateway(stack, coord);
        await use({ stack, coord, url, nodes });
      } finally {
        await stack.stop();
      }
    },
    { scope: "worker", timeout: 120_000 },
  ],
});

export { expect };

/** Signs in through the form and waits for the control panel. */
export async function signIn(page: Page, base: string, user: { username: string; password: string } = ADMIN) {
  await page.goto(`${base}/login`);
  await page.getByTestId("login-username").fill(user.username);
  await page.getByTestId("login-password").fill(user.password);
  await page.getByTestId("login-submit").click();
  await expect(page.getByTestId("control-panel-header")).toBeVisible({ timeout: 15_000 });
}

/** Navigates inside the app (keeps the page's live watches open). */
export async function go(page: Page, where: "control-panel" | "nodes" | "tasks" | "topology") {
  await page.getByTestId(`nav-${where}`).click();
  await expect(page).toHaveURL(new RegExp(`/${where}$`));
}

export async function screenshot(page: Page, name: string) {
  mkdirSync(SHOTS, { recursive: true });
  const path = resolve(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot ${path}`);
}

export const SESSION_KEY = "fog.session.v1";

/** The tab's stored session (what the panel keeps in sessionStorage). */
export async function session(page: Page): Promise<{ accessToken: string; refreshToken: string; accessExpiresAt: number }> {
  return page.evaluate((k) => JSON.parse(sessionStorage.getItem(k) ?? "null"), SESSION_KEY);
}

/** Starts the named agents that are not running (a failed test restarts the worker's fleet). */
export async function ensureAgents(fleet: Fleet, ids: string[]) {
  const regions = ["eu-west", "us-east", "ap-south"];
  for (const [i, id] of ids.entries()) {
    const a = fleet.agents.get(id);
    if (a && a.child.exitCode === null && a.child.signalCode === null) continue;
    await fleet.addAgent(id, { region: regions[i % regions.length]! });
  }
}

/** Fills the task form's work fields, submits, and returns the new task's id. */
export async function submitFromForm(page: Page, spec: { name: string; kind: "echo" | "sleepMs"; arg: string }): Promise<string> {
  await page.getByTestId("task-form-name").fill(spec.name);
  await page.getByTestId("task-form-kind").selectOption(spec.kind);
  await page.getByTestId("task-form-arg").fill(spec.arg);
  return submitted(page, spec.name);
}

/** Clicks the task form's submit button and returns the id it reports. */
export async function submitted(page: Page, name: string): Promise<string> {
  await page.getByTestId("task-form-submit").click();
  const result = page.getByTestId("task-form-result");
  await expect(result).toContainText("Submitted t-");
  const id = (await result.locator(".mono").textContent())!.trim();
  log(`submitted ${name} as ${id}`);
  return id;
}
