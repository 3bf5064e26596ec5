// Real processes for the browser tests: a coordinator (mTLS, or --insecure-dev
// for the simulator), fog-agent processes that join with one-time tokens,
// `fogctl sim`, and fog-gateway serving the built panel. Everything binds to
// 127.0.0.1 on free ports, keeps its state in a fresh temp dir, logs to
// test-results/logs/, and is stopped by `Stack.stop()`.

import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));

export const REPO = resolve(HERE, "../../../..");
export const BIN = process.env.FOG_BIN_DIR ?? join(REPO, "target/debug");
export const PANEL_DIST = resolve(HERE, "../../dist");
const LOGS = resolve(HERE, "../../test-results/logs");

export const ADMIN = { username: "admin", password: "admin-password-for-panel-tests" };
export const VIEWER = { username: "watcher", password: "viewer-password-for-panel-tests" };

export function log(msg: string): void {
  console.log(`[fog-test] ${msg}`);
}

/** A measured figure (printed, never asserted tightly): `grep 'figure:'` collects them. */
export function figure(msg: string): void {
  log(`figure: ${msg}`);
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.unref();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => ok(port));
    });
  });
}

/** Polls `check` every 100 ms until it returns a truthy value, or fails after `ms`. */
export async function waitFor<T>(what: string, ms: number, check: () => Promise<T> | T): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (with optional stdin). */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const t = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
    child.on("error", (e) => {
      clearTimeout(t);
      fail(e);
    });
    child.on("close", (code) => {
      clearTimeout(t);
      ok({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? "");
  });
}

export function requireBinaries(names: string[]): void {
  const missing = names.filter((n) => !existsSync(join(BIN, n)));
  if (missing.length) throw new Error(`missing binaries in ${BIN}: ${missing.join(", ")} (build them with cargo first)`);
  if (!existsSync(join(PANEL_DIST, "index.html"))) throw new Error(`no built panel in ${PANEL_DIST} (run npm run build)`);
}

interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
}

/** A set of processes and temp dirs stopped and removed together. */
export class Stack {
  private procs: Proc[] = [];
  private dirs: string[] = [];
  readonly id: string;

  constructor(id: string) {
    // A timestamp in the name: a failed test restarts the worker's stack, and
    // the failed run's logs are what one wants to read.
    this.id = `${id}-${new Date().toISOString().slice(11, 19).replace(/:/g, "")}`;
    mkdirSync(LOGS, { recursive: true });
  }

  async tempDir(prefix: string): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), `fog-panel-${prefix}-`));
    this.dirs.push(d);
    return d;
  }

  /** Starts a long-running process; its output goes to test-results/logs/<stack>-<name>.log. */
  spawn(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, onStdout?: (line: string) => void): ChildProcess {
    const logFile = join(LOGS, `${this.id}-${name}.log`);
    const out = createWriteStream(logFile);
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      out.write(d);
      if (!onStdout) return;
      buf += d.toString();
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        onStdout(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    child.stderr!.on("data", (d: Buffer) => out.write(d));
    const exited = new Promise<void>((r) => child.on("exit", () => r()));
    this.procs.push({ name, child, exited });
    log(`started ${name} (pid ${child.pid}), log ${logFile}`);
    return child;
  }

  /** SIGTERMs one process and waits for it to exit (a graceful stop). */
  async terminate(child: ChildProcess): Promise<void> {
    const p = this.procs.find((x) => x.child === child);
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await p?.exited;
    clearTimeout(t);
  }

  /** SIGKILLs one process (a crash, not a shutdown). */
  async kill(child: ChildProcess): Promise<void> {
    const p = this.procs.find((x) => x.child === child);
    child.kill("SIGKILL");
    await p?.exited;
  }

  /** SIGTERM everything, newest first; SIGKILL what has not exited after 5 s. */
  async stop(): Promise<void> {
    for (const p of [...this.procs].reverse()) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
      p.child.kill("SIGTERM");
      const t = setTimeout(() => p.child.kill("SIGKILL"), 5_000);
      await p.exited;
      clearTimeout(t);
    }
    log(`stopped ${this.procs.length} processes of ${this.id}`);
    this.procs = [];
    for (const d of this.dirs) await rm(d, { recursive: true, force: true });
    this.dirs = [];
  }
}

export interface Coordinator {
  url: string;
  dataDir: string;
  caFile?: string;
  env: NodeJS.ProcessEnv;
  fogctl: (args: string[], input?: string) => Promise<RunResult>;
  /** Stops the coordinator gracefully and starts it again on the same port and store. */
  restart: () => Promise<void>;
}

/**
 * Starts a coordinator with an admin created offline (how the first admin
 * exists) and fogctl signed in as that admin. `insecure` serves plaintext for
 * the simulator; otherwise mTLS with the coordinator's own CA, as run.sh does.
 */
export async function startCoordinator(stack: Stack, opts: { insecure: boolean; extraArgs?: string[] }): Promise<Coordinator> {
  const dir = await stack.tempDir("coord");
  const dataDir = join(dir, "data");
  const pwFile = join(dir, "admin-password");
  await writeFile(pwFile, `${ADMIN.password}\n`, { mode: 0o600 });
  const created = await run(join(BIN, "fog-coordinator"), ["admin", "create", "--data-dir", dataDir, "--username", ADMIN.username, "--password-file", pwFile]);
  if (created.code !== 0) throw new Error(`admin create failed: ${created.stderr}`);
  const port = await freePort();
  const url = opts.insecure ? `http://127.0.0.1:${port}` : `https://localhost:${port}`;
  const caFile = opts.insecure ? undefined : join(dataDir, "ca.pem");
  const args = ["--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, ...(opts.insecure ? ["--insecure-dev"] : []), ...(opts.extraArgs ?? [])];
  const env: NodeJS.ProcessEnv = { FOG_COORDINATOR: url, FOGCTL_CONFIG_DIR: join(dir, "fogctl"), ...(caFile ? { FOG_CA_FILE: caFile } : {}) };
  const fogctl = (a: string[], input?: string) => run(join(BIN, "fogctl"), a, { env, input });
  let runs = 0;
  let child: ChildProcess;
  const boot = async () => {
    child = stack.spawn(runs++ ? `coordinator-${runs}` : "coordinator", join(BIN, "fog-coordinator"), args);
    await waitFor(`coordinator on ${url} to accept sign-in`, 60_000, async () => {
      if (child.exitCode !== null) throw new Error(`coordinator exited with ${child.exitCode}`);
      if (caFile && !existsSync(caFile)) return false;
      const r = await fogctl(["login", "--username", ADMIN.username, "--password-stdin"], `${ADMIN.password}\n`);
      return r.code === 0;
    });
    log(`coordinator ready on ${url}${opts.insecure ? " (insecure-dev)" : " (mTLS)"}`);
  };
  await boot();
  const restart = async () => {
    log("restarting the coordinator (SIGTERM, then the same port and store)");
    await stack.terminate(child);
    await boot();
  };
  return { url, dataDir, caFile, env, fogctl, restart };
}

/** Starts fog-gateway in front of `coord` and returns the panel's base URL. */
export async function startGateway(stack: Stack, coord: Coordinator): Promise<string> {
  let resolveUrl: (u: string) => void;
  const urlP = new Promise<string>((r) => (resolveUrl = r));
  const args = ["--listen", "127.0.0.1:0", "--coordinator", coord.url, "--panel-dir", PANEL_DIST, ...(coord.caFile ? ["--ca-file", coord.caFile] : [])];
  const child = stack.spawn("gateway", join(BIN, "fog-gateway"), args, {}, (line) => {
    const m = /listening on (http:\/\/\S+)/.exec(line);
    if (m) resolveUrl(m[1]!.replace(/\/$/, ""));
  });
  const url = await Promise.race([
    urlP,
    new Promise<string>((_, fail) => child.on("exit", (c) => fail(new Error(`fog-gateway exited with ${c}; see its log`)))),
    new Promise<string>((_, fail) => setTimeout(() => fail(new Error("fog-gateway printed no 'listening on' line in 30 s")), 30_000)),
  ]);
  await waitFor(`gateway health at ${url}/healthz`, 30_000, async () => (await fetch(`${url}/healthz`)).ok);
  log(`gateway ready on ${url}`);
  return url;
}

export interface Agent {
  id: string;
  child: ChildProcess;
}

/**
 * Joins a real fog-agent with a one-time token (mTLS) and runs it. The token
 * is made with fogctl unless one is given (e.g. one the panel created).
 */
export async function startAgent(
  stack: Stack,
  coord: Coordinator,
  id: string,
  opts: { region: string; name?: string; zone?: string; labels?: string[]; nodeType?: string; token?: string } = { region: "eu-west" },
): Promise<Agent> {
  const state = await stack.tempDir(`agent-${id}`);
  let token = opts.token;
  if (!token) {
    const tok = await coord.fogctl(["join-token", "create", "--name", id, "--ttl", "10m"]);
    if (tok.code !== 0) throw new Error(`join-token create failed: ${tok.stderr}`);
    token = tok.stdout.trim();
  }
  const joined = await run(join(BIN, "fog-agent"), ["join", "--token", token, "--coordinator", coord.url, "--name", id, "--state-dir", state]);
  if (joined.code !== 0) throw new Error(`fog-agent join failed: ${joined.stderr}`);
  const args = [
    "run",
    "--state-dir",
    state,
    "--region",
    opts.region,
    "--label",
    ["runtime=fog-agent", ...(opts.labels ?? [])].join(","),
    "--allow-command",
    "/bin/echo",
  ];
  if (opts.name) args.push("--name", opts.name);
  if (opts.zone) args.push("--zone", opts.zone);
  if (opts.nodeType) args.push("--node-type", opts.nodeType);
  const child = stack.spawn(`agent-${id}`, join(BIN, "fog-agent"), args);
  return { id, child };
}

/** Creates a user through the API (fogctl, signed in as admin). */
export async function createUser(coord: Coordinator, user: { username: string; password: string }, role: "viewer" | "operator" | "admin") {
  const r = await coord.fogctl(["users", "create", user.username, "--role", role], `${user.password}\n`);
  if (r.code !== 0) throw new Error(`users create failed: ${r.stderr}`);
}
