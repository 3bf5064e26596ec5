// Prints the gzipped size of the built panel and fails the build when its
// JavaScript goes over the budget (issue 6: ≤ 300 KB gzipped).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET_JS = 300 * 1024;
const dir = new URL("../dist/assets/", import.meta.url).pathname;
let js = 0;
let css = 0;
for (const f of readdirSync(dir).sort()) {
  const raw = readFileSync(join(dir, f));
  const gz = gzipSync(raw, { level: 9 }).length;
  if (f.endsWith(".js")) js += gz;
  if (f.endsWith(".css")) css += gz;
  console.log(`  ${f.padEnd(32)} ${(raw.length / 1024).toFixed(1).padStart(7)} KB  ${(gz / 1024).toFixed(1).padStart(6)} KB gzipped`);
}
console.log(`panel size: JavaScript ${(js / 1024).toFixed(1)} KB gzipped (budget ${BUDGET_JS / 1024} KB), CSS ${(css / 1024).toFixed(1)} KB gzipped`);
if (js > BUDGET_JS) {
  console.error("JavaScript over budget");
  process.exit(1);
}
