// The live topology, kept from TopologyService.WatchTopology and shared by
// every page (one watch per tab).
//
// Protocol (topology.proto): the stream starts with a snapshot (in chunks;
// `first` replaces the view, `last` completes it at `revision`), then node
// deltas, aggregate updates and bookmarks. A resync is simply another snapshot
// (reason RESYNC_*): we replace the view the same way. When the stream breaks
// we reconnect with backoff and resume from the last revision we fully hold,
// with its epoch; a coordinator that cannot resume sends a resync snapshot.
//
// The per-node load history for the nodes page's chart is kept here, from the
// metric deltas, because the API keeps none per node.

import { Code } from "@connectrpc/connect";
import type { Aggregates, TopologyNode } from "../gen/fog/v1/topology_pb.js";
import { TopologyDetail } from "../gen/fog/v1/topology_pb.js";
import { NodeStatus } from "../gen/fog/v1/fleet_pb.js";
import { backoff, errorText, isCode, sleep, topologyApi } from "../api/client.js";
import { refresh } from "../api/session.js";
import { isHealthy } from "../api/format.js";
import { Observable } from "./store.js";

/** Load samples kept per node: [ms since epoch, load 0..1]. */
const HISTORY = 120;

export interface RegionView {
  region: string;
  total: number;
  byStatus: Map<NodeStatus, number>;
  healthyLoadSum: number;
  healthy: number;
  zones: Set<string>;
}

class TopologyStore extends Observable {
  nodes = new Map<string, TopologyNode>();
  aggregates: Aggregates | undefined;
  revision = 0n;
  epoch = "";
  /** True once a complete snapshot is held. */
  synced = false;
  connected = false;
  error = "";
  resyncs = 0;
  /** Bumped when a node is added or removed (the nodes page re-lists then). */
  membership = 0;
  private history = new Map<string, number[]>();
  private abort: AbortController | null = null;

  constructor() {
    super(250);
  }

  start(): void {
    if (this.abort) return;
    this.abort = new AbortController();
    void this.run(this.abort.signal);
  }

  stop(): void {
    this.abort?.abort();
    this.abort = null;
    this.nodes = new Map();
    this.aggregates = undefined;
    this.synced = false;
    this.connected = false;
    this.revision = 0n;
    this.epoch = "";
    this.history.clear();
    this.changed();
  }

  /** [time, load] pairs, oldest first, flattened. */
  loadHistory(id: string): number[] {
    return this.history.get(id) ?? [];
  }

  private record(n: TopologyNode, now: number) {
    let h = this.history.get(n.id);
    if (!h) this.history.set(n.id, (h = []));
    h.push(now, n.load);
    if (h.length > HISTORY * 2) h.splice(0, h.length - HISTORY * 2);
  }

  private async run(signal: AbortSignal) {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const resume = this.synced && this.revision > 0n;
        const stream = topologyApi.watchTopology(
          {
            detail: TopologyDetail.NODE_METRICS,
            metricsIntervalMs: 2000,
            resumeRevision: resume ? this.revision : 0n,
            epoch: resume ? this.epoch : "",
          },
          { signal },
        );
        let building: Map<string, TopologyNode> | null = null;
        for await (const msg of stream) {
          if (!this.connected) {
            this.connected = true;
            this.error = "";
          }
          failures = 0;
          const now = Date.now();
          const ev = msg.event;
          switch (ev.case) {
            case "snapshot": {
              const snap = ev.value;
              if (snap.first || !building) building = new Map();
              for (const n of snap.nodes) building.set(n.id, n);
              if (snap.last) {
                for (const n of building.values()) {
                  const old = this.nodes.get(n.id);
                  if (!old || old.load !== n.load) this.record(n, now);
                }
                for (const id of this.history.keys()) if (!building.has(id)) this.history.delete(id);
                if (this.synced) this.resyncs++;
                this.nodes = building;
                building = null;
                if (snap.aggregates) this.aggregates = snap.aggregates;
                this.synced = true;
                this.revision = msg.revision;
                this.epoch = msg.epoch;
                this.membership++;
              }
              break;
            }
            case "node": {
              const d = ev.value;
              const n = d.node;
              if (!n) break;
              if (d.removed) {
                if (this.nodes.delete(n.id)) this.membership++;
                this.history.delete(n.id);
              } else {
                if (!this.nodes.has(n.id)) this.membership++;
                this.nodes.set(n.id, n);
                this.record(n, now);
              }
              this.revision = msg.revision;
              this.epoch = msg.epoch;
              break;
            }
            case "aggregates":
              this.aggregates = ev.value;
              this.revision = msg.revision;
              this.epoch = msg.epoch;
              break;
            case "bookmark":
              this.revision = msg.revision;
              this.epoch = msg.epoch;
              break;
          }
          this.changed();
        }
        // The server ended the stream (e.g. it is shutting down): reconnect.
        this.connected = false;
      } catch (e) {
        if (signal.aborted) return;
        this.connected = false;
        this.error = errorText(e);
        if (isCode(e, Code.Unauthenticated)) {
          // The access token expired mid-stream; a failed refresh signs out.
          if (!(await refresh())) return;
        }
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

  /** Regions computed from the nodes held, so they stay live between snapshots. */
  regions(): RegionView[] {
    const m = new Map<string, RegionView>();
    for (const n of this.nodes.values()) {
      let r = m.get(n.region);
      if (!r) {
        r = { region: n.region, total: 0, byStatus: new Map(), healthyLoadSum: 0, healthy: 0, zones: new Set() };
        m.set(n.region, r);
      }
      r.total++;
      r.byStatus.set(n.status, (r.byStatus.get(n.status) ?? 0) + 1);
      if (n.zone) r.zones.add(n.zone);
      if (isHealthy(n.status)) {
        r.healthy++;
        r.healthyLoadSum += n.load;
      }
    }
    return [...m.values()].sort((a, b) => a.region.localeCompare(b.region));
  }
}

export const topology = new TopologyStore();
