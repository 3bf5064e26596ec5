// Prints "N passed, N failed, N skipped" as the last line, the plain summary
// CI tooling reads whatever the runner.
import type { FullResult, Reporter, TestCase, TestResult } from "@playwright/test/reporter";

export default class ClosingLine implements Reporter {
  private passed = 0;
  private failed = 0;
  private skipped = 0;

  onTestEnd(test: TestCase, result: TestResult) {
    if (result.retry < test.retries && result.status !== "passed" && result.status !== "skipped") return;
    if (result.status === "passed") this.passed++;
    else if (result.status === "skipped") this.skipped++;
    else this.failed++;
  }

  onEnd(_result: FullResult) {
    console.log(`${this.passed} passed, ${this.failed} failed, ${this.skipped} skipped`);
  }

  printsToStdio() {
    return true;
  }
}
