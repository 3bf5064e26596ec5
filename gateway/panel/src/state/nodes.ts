// The fleet directory: full Node records from FleetService.ListNodes (every
// page), re-read when the topology watch says a node joined or left, and every
// 15 s for the slower fields (heartbeat, battery, counters). Live status and
// load come from the topology watch and are overlaid by the nodes page.

import type { Node } from "../gen/fog/v1/fleet_pb.js";
import { errorText, fleetApi, sleep } from "../api/client.js";
import { Observable } from "./store.js";
import { topology } from "./topology.js";

const PERIOD_MS = 15_000;

class NodeStore extends Observable {
  nodes = new Map<string, Node>();
  loaded = false;
  error = "";
  private users = 0;
  private abort: AbortController | null = null;
  private wake: (() => void) | null = null;
  private seenMembership = -1;
  private unsub: (() => void) | null = null;

  constructor() {
    super(200);
  }

  /** Keeps the list fresh while at least one page uses it. */
  use(): () => void {
    if (this.users++ === 0) {
      this.abort = new AbortController();
      this.unsub = topology.subscribe(() => {
        if (topology.membership !== this.seenMembership) this.reload();
      });
      void this.run(this.abort.signal);
    }
    return () => {
      if (--this.users === 0) {
        this.abort?.abort();
        this.abort = null;
        this.unsub?.();
      }
    };
  }

  /** Asks for a re-read soon (after a change we made, or a membership change). */
  reload(): void {
    this.wake?.();
  }

  /** Replaces one node with what a call returned (cordon, drain …). */
  put(n: Node | undefined): void {
    if (!n) return;
    this.nodes.set(n.id, n);
    this.changed();
  }

  remove(id: string): void {
    this.nodes.delete(id);
    this.changed();
  }

  private async fetchAll(signal: AbortSignal) {
    const m = new Map<string, Node>();
    let pageToken = "";
    do {
      const res = await fleetApi.listNodes({ pageSize: 1000, pageToken }, { signal });
      for (const n of res.nodes) m.set(n.id, n);
      pageToken = res.nextPageToken;
    } while (pageToken);
    this.nodes = m;
    this.loaded = true;
    this.error = "";
    this.changed();
  }

  private async run(signal: AbortSignal) {
    while (!signal.aborted) {
      this.seenMembership = topology.membership;
      try {
        await this.fetchAll(signal);
      } catch (e) {
        if (signal.aborted) return;
        this.error = errorText(e);
        this.changed();
      }
      // Wait for the period, or a wake-up, but at least 500 ms between reads
      // so a joining swarm of simulated nodes does not turn into a read storm.
      await sleep(500, signal).catch(() => undefined);
      if (signal.aborted) return;
      if (topology.membership !== this.seenMembership) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, PERIOD_MS);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
        signal.addEventListener("abort", () => this.wake?.(), { once: true });
      });
      this.wake = null;
    }
  }
}

export const nodes = new NodeStore();
