// Tasks, kept live: the newest page from ListTasks, then every change from
// TaskService.WatchTasks (all tasks). A lagged event or a reconnect re-reads
// the list, since events may have been missed.

import { Code } from "@connectrpc/connect";
import { TaskState, type Task } from "../gen/fog/v1/task_pb.js";
import { backoff, errorText, isCode, sleep, taskApi } from "../api/client.js";
import { refresh } from "../api/session.js";
import { Observable } from "./store.js";

const KEEP = 500;

/** How far a task has got: more attempts, then a later state, wins. */
function progress(t: Task): number {
  const rank =
    t.state === TaskState.QUEUED ? 1 : t.state === TaskState.ASSIGNED ? 2 : t.state === TaskState.RUNNING ? 3 : t.state === TaskState.UNSPECIFIED ? 0 : 4;
  return t.attempts.length * 10 + rank;
}

class TaskStore extends Observable {
  tasks = new Map<string, Task>();
  totalMatching = 0n;
  loaded = false;
  connected = false;
  error = "";
  private abort: AbortController | null = null;

  constructor() {
    super(150);
  }

  start(): void {
    if (this.abort) return;
    this.abort = new AbortController();
    void this.run(this.abort.signal);
  }

  stop(): void {
    this.abort?.abort();
    this.abort = null;
    this.tasks = new Map();
    this.loaded = false;
    this.changed();
  }

  /** Newest first (task ids are time-ordered UUIDv7s). */
  list(): Task[] {
    return [...this.tasks.values()].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  }

  /**
   * Puts a task we got from a call (submit, cancel) in at once. The watch may
   * have delivered a later state before the call's reply arrived (an echo
   * task can finish before its SubmitTask reply is read), so a reply never
   * replaces a task that has moved further.
   */
  put(t: Task | undefined): void {
    if (!t) return;
    const known = this.tasks.get(t.id);
    if (known && progress(known) >= progress(t)) return;
    if (!known) this.totalMatching++;
    this.tasks.set(t.id, t);
    this.changed();
  }

  private async relist(signal: AbortSignal) {
    const res = await taskApi.listTasks({ pageSize: KEEP }, { signal });
    const m = new Map<string, Task>();
    for (const t of res.tasks) m.set(t.id, t);
    this.tasks = m;
    this.totalMatching = res.totalMatching;
    this.loaded = true;
    this.changed();
  }

  private async run(signal: AbortSignal) {
    let failures = 0;
    while (!signal.aborted) {
      try {
        // Watch first, then list, so nothing between the two is lost; events
        // for tasks already listed simply replace them.
        const stream = taskApi.watchTasks({}, { signal });
        const it = stream[Symbol.asyncIterator]();
        const first = it.next();
        first.catch(() => undefined); // awaited below; avoid an unhandled-rejection warning meanwhile
        await this.relist(signal);
        this.connected = true;
        this.error = "";
        failures = 0;
        this.changed();
        for (let r = await first; !r.done; r = await it.next()) {
          const ev = r.value;
          if (ev.lagged) {
            await this.relist(signal);
            continue;
          }
          const t = ev.task;
          if (!t) continue;
          if (!this.tasks.has(t.id)) this.totalMatching++;
          this.tasks.set(t.id, t);
          this.changed();
        }
        this.connected = false;
      } catch (e) {
        if (signal.aborted) return;
        this.connected = false;
        this.error = errorText(e);
        if (isCode(e, Code.Unauthenticated) && !(await refresh())) return;
      }
      this.changed();
      failures++;
      try {
        await sleep(backoff(failures), signal);
      } catch {
        return;
      }
    }
  }
}

export const tasks = new TaskStore();
