// `npm test`: the browser suite. Checks the prebuilt binaries, installs
// Debian's Chromium when missing, builds the panel, then runs Playwright.
// Extra arguments go to `playwright test` (e.g. `npm test -- -g viewer`).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const here = resolve(new URL("..", import.meta.url).pathname);
const bin = process.env.FOG_BIN_DIR ?? resolve(here, "../../target/debug");
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const say = (m) => console.log(`==> ${m}`);
const sh = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: here, ...opts });
  return r.status ?? 1;
};

say(`checking binaries in ${bin}`);
const missing = ["fog-coordinator", "fog-agent", "fogctl", "fog-gateway"].filter((b) => !existsSync(join(bin, b)));
if (missing.length) {
  console.error(`missing: ${missing.join(", ")} — build them first (cargo build --bins)`);
  process.exit(1);
}

if (!existsSync(chromium)) {
  say(`${chromium} is missing: installing Debian's chromium with apt-get`);
  if (sh("apt-get", ["install", "-y", "-qq", "chromium"]) !== 0) {
    sh("apt-get", ["update", "-qq"]);
    if (sh("apt-get", ["install", "-y", "-qq", "chromium"]) !== 0) process.exit(1);
  }
}
say(`browser: ${spawnSync(chromium, ["--version"], { encoding: "utf8" }).stdout.trim()}`);

if (process.env.FOG_PANEL_SKIP_BUILD !== "1") {
  say("building the panel (codegen from proto/, typecheck, vite build)");
  if (sh("npm", ["run", "build"]) !== 0) process.exit(1);
}

say("running the browser tests (Playwright, headless Chromium; real coordinator, agents, simulator and gateway)");
process.exit(sh("npx", ["playwright", "test", ...process.argv.slice(2)]));
