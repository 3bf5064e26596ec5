import { defineConfig } from "@playwright/test";

// @playwright/test (rather than playwright-core + node:test) for what the
// suite leans on: expect.poll and auto-waiting locators (wait on conditions
// with deadlines, never sleeps), worker-scoped fixtures that start and stop
// the real processes, and a trace on failure. It drives Debian's Chromium
// through launchOptions.executablePath; no browser is downloaded.
export default defineConfig({
  testDir: "tests",
  // One worker: the machine has two cores and the tests share their fleet.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 15_000 },
  reporter: [["list"], ["./tests/support/closing-line.ts"]],
  outputDir: "test-results/artifacts",
  use: {
    browserName: "chromium",
    headless: true,
    viewport: { width: 1280, height: 900 },
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
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
    },
  },
});
