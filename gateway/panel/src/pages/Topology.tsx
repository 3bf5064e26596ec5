// The live topology on one canvas: a box per region, a cell per node coloured
// by status (cells shrink as regions grow; past what fits, a region is drawn
// as an aggregate bar). No DOM element per node, so 5,000 nodes cost one
// canvas redraw of a few milliseconds, at most a few times a second. The
// region table beside it is the accessible (keyboard, screen reader) view.

import { useEffect, useMemo, useRef, useState } from "react";
import type { TopologyNode } from "../gen/fog/v1/topology_pb.js";
import { NodeStatus } from "../gen/fog/v1/fleet_pb.js";
import { topologyApi } from "../api/client.js";
import { cores, mib, NODE_STATUSES, nodeStatusName, nodeTypeName, pct, tsMs } from "../api/format.js";
import { Link } from "../router.js";
import { useObservable } from "../state/store.js";
import { topology, type RegionView } from "../state/topology.js";
import { Sparkline } from "../components/ui.js";

const COLORS: Record<number, string> = {
  [NodeStatus.ACTIVE]: "#2e9d5b",
  [NodeStatus.IDLE]: "#4a90c8",
  [NodeStatus.BUSY]: "#e08a1e",
  [NodeStatus.SUSPECT]: "#d8c02a",
  [NodeStatus.OFFLINE]: "#8a8f98",
  [NodeStatus.MAINTENANCE]: "#8e5cc4",
  [NodeStatus.UNSPECIFIED]: "#c4c4c4",
};
const HEADER = 40;
const PAD = 8;
const MIN_CELL = 3;
const MAX_CELL = 16;

interface Box {
  region: string;
  x: number;
  y: number;
  w: number;
  h: number;
  cell: number;
  cols: number;
  nodes: TopologyNode[];
  aggregated: boolean;
  view: RegionView;
}

function layout(width: number, regions: RegionView[], byRegion: Map<string, TopologyNode[]>, focus: string | null): { boxes: Box[]; height: number } {
  const shown = focus !== null ? regions.filter((r) => r.region === focus) : regions;
  const cols = focus !== null ? 1 : Math.max(1, Math.floor(width / 300));
  const gap = 12;
  const bw = Math.floor((width - gap * (cols - 1)) / cols);
  const target = focus !== null ? 520 : 220;
  const boxes: Box[] = [];
  const rowHeights: number[] = [];
  shown.forEach((r, i) => {
    const list = byRegion.get(r.region) ?? [];
    const inner = bw - PAD * 2;
    const ideal = Math.floor(Math.sqrt((inner * target) / Math.max(1, list.length)));
    const cell = Math.min(MAX_CELL, ideal);
    const aggregated = cell < MIN_CELL;
    const c = aggregated ? 1 : Math.max(1, Math.floor(inner / cell));
    const rows = aggregated ? 0 : Math.ceil(list.length / c);
    const h = HEADER + PAD + (aggregated ? 28 : Math.max(cell, rows * cell)) + PAD;
    const row = Math.floor(i / cols);
    rowHeights[row] = Math.max(rowHeights[row] ?? 0, h);
    boxes.push({ region: r.region, x: (i % cols) * (bw + gap), y: row, w: bw, h, cell, cols: c, nodes: list, aggregated, view: r });
  });
  const offsets: number[] = [];
  let y = 0;
  for (const h of rowHeights) {
    offsets.push(y);
    y += h + gap;
  }
  for (const b of boxes) b.y = offsets[b.y] ?? 0;
  return { boxes, height: Math.max(120, y) };
}

function draw(canvas: HTMLCanvasElement, boxes: Box[], height: number, hover: TopologyNode | null): number {
  const started = performance.now();
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  canvas.style.height = `${height}px`;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const g = canvas.getContext("2d");
  if (!g) return 0;
  const css = getComputedStyle(canvas);
  const fg = css.getPropertyValue("--fg").trim() || "#222";
  const panel = css.getPropertyValue("--panel").trim() || "#f5f6f8";
  const line = css.getPropertyValue("--grid").trim() || "#ddd";
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, width, height);
  g.textBaseline = "top";
  for (const b of boxes) {
    g.fillStyle = panel;
    g.fillRect(b.x, b.y, b.w, b.h);
    g.strokeStyle = line;
    g.strokeRect(b.x + 0.5, b.y + 0.5, b.w - 1, b.h - 1);
    g.fillStyle = fg;
    g.font = "600 14px system-ui, sans-serif";
    // fillText draws text as pixels: a hostile region name cannot become markup.
    g.fillText(b.region || "(no region)", b.x + PAD, b.y + 6, b.w - PAD * 2);
    g.font = "12px system-ui, sans-serif";
    const avg = b.view.healthy ? b.view.healthyLoadSum / b.view.healthy : 0;
    g.fillText(`${b.view.total} nodes · ${b.view.healthy} healthy · load ${Math.round(avg * 100)} %`, b.x + PAD, b.y + 23, b.w - PAD * 2);
    const top = b.y + HEADER + PAD;
    if (b.aggregated) {
      // Too many to draw one by one here: a bar of status shares.
      let x = b.x + PAD;
      const w = b.w - PAD * 2;
      for (const s of NODE_STATUSES) {
        const n = b.view.byStatus.get(s) ?? 0;
        if (!n) continue;
        const sw = (n / b.view.total) * w;
        g.fillStyle = COLORS[s]!;
        g.fillRect(x, top, sw, 28);
        x += sw;
      }
      continue;
    }
    const s = b.cell;
    const inset = s >= 6 ? 1 : 0;
    let last = "";
    b.nodes.forEach((n, i) => {
      const col = COLORS[n.status] ?? COLORS[0]!;
      if (col !== last) {
        g.fillStyle = col;
        last = col;
      }
      const x = b.x + PAD + (i % b.cols) * s;
      const y = top + Math.floor(i / b.cols) * s;
      g.fillRect(x, y, s - inset, s - inset);
    });
    // Marks on top: cordoned/draining get a dark centre, overloaded a dark edge.
    if (s >= 6) {
      g.fillStyle = fg;
      b.nodes.forEach((n, i) => {
        if (!(n.cordoned || n.draining)) return;
        const x = b.x + PAD + (i % b.cols) * s;
        const y = top + Math.floor(i / b.cols) * s;
        const d = Math.max(2, Math.floor(s / 3));
        g.fillRect(x + (s - d) / 2, y + (s - d) / 2, d, d);
      });
    }
    if (hover) {
      const i = b.nodes.indexOf(hover);
      if (i >= 0) {
        g.strokeStyle = fg;
        g.lineWidth = 2;
        g.strokeRect(b.x + PAD + (i % b.cols) * s - 1, top + Math.floor(i / b.cols) * s - 1, s + 1, s + 1);
        g.lineWidth = 1;
      }
    }
  }
  return performance.now() - started;
}

function hit(boxes: Box[], x: number, y: number): { box: Box; node: TopologyNode | null } | null {
  for (const b of boxes) {
    if (x < b.x || x >= b.x + b.w || y < b.y || y >= b.y + b.h) continue;
    if (b.aggregated || y < b.y + HEADER + PAD) return { box: b, node: null };
    const col = Math.floor((x - b.x - PAD) / b.cell);
    const row = Math.floor((y - b.y - HEADER - PAD) / b.cell);
    if (col < 0 || col >= b.cols) return { box: b, node: null };
    return { box: b, node: b.nodes[row * b.cols + col] ?? null };
  }
  return null;
}

export function TopologyPage() {
  const version = useObservable(topology);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const wrapRef = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(800);
  const [focus, setFocus] = useState<string | null>(null);
  const [hover, setHover] = useState<TopologyNode | null>(null);
  const [picked, setPicked] = useState<TopologyNode | null>(null);
  const [history, setHistory] = useState<number[]>([]);

  useEffect(() => {
    const el = wrapRef.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    setWidth(el.clientWidth);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    let stop = false;
    const load = () =>
      topologyApi
        .getTopologyHistory({ limit: 100 })
        .then((h) => {
          if (stop) return;
          const pts: number[] = [];
          for (const s of h.snapshots) pts.push(tsMs(s.takenAt) ?? 0, s.aggregates?.averageLoad ?? 0);
          setHistory(pts);
        })
        .catch(() => undefined);
    void load();
    const t = setInterval(load, 10_000);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, []);

  const regions = useMemo(() => topology.regions(), [version]);
  const byRegion = useMemo(() => {
    const m = new Map<string, TopologyNode[]>();
    for (const n of topology.nodes.values()) {
      const a = m.get(n.region) ?? [];
      a.push(n);
      m.set(n.region, a);
    }
    for (const a of m.values()) a.sort((x, y) => (x.zone === y.zone ? (x.id < y.id ? -1 : 1) : x.zone < y.zone ? -1 : 1));
    return m;
  }, [version]);
  const { boxes, height } = useMemo(() => layout(width, regions, byRegion, focus), [width, regions, byRegion, focus]);

  useEffect(() => {
    const c = canvasRef.current;
    if (!c) return;
    const id = requestAnimationFrame(() => {
      const ms = draw(c, boxes, height, hover);
      c.dataset.renderMs = ms.toFixed(2);
      c.dataset.nodes = String(boxes.reduce((s, b) => s + (b.aggregated ? 0 : b.nodes.length), 0));
      c.dataset.regions = String(boxes.length);
      c.dataset.revision = String(topology.revision);
    });
    return () => cancelAnimationFrame(id);
  }, [boxes, height, hover]);

  const pos = (e: React.MouseEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    return hit(boxes, e.clientX - r.left, e.clientY - r.top);
  };

  const agg = topology.aggregates;
  const tip = hover ?? picked;
  return (
    <div className="page" data-testid="topology-page">
      <header className="page-header" data-testid="topology-header">
        <h1>Topology</h1>
        <p className="muted" role="status" data-testid="topology-status">
          {topology.synced ? `${topology.nodes.size} nodes in ${regions.length} regions · revision ${String(topology.revision)}` : "waiting for the first snapshot…"}
          {topology.resyncs ? ` · ${topology.resyncs} resyncs` : ""}
          {topology.error && !topology.connected ? ` · ${topology.error}` : ""}
        </p>
        {focus !== null && (
          <button type="button" data-testid="topology-show-all" onClick={() => setFocus(null)}>
            All regions
          </button>
        )}
      </header>

      <ul className="legend" aria-label="Status colours">
        {NODE_STATUSES.map((s) => (
          <li key={s}>
            <span className="swatch" style={{ background: COLORS[s] }} aria-hidden="true" />
            {nodeStatusName(s)}
          </li>
        ))}
        <li>
          <span className="swatch swatch-mark" aria-hidden="true" />
          cordoned / draining
        </li>
      </ul>

      <div ref={wrapRef} className="topology-wrap">
        <canvas
          ref={canvasRef}
          className="topology-canvas"
          data-testid="topology-canvas"
          role="img"
          aria-label={`Map of ${topology.nodes.size} nodes in ${regions.length} regions, coloured by status; the region table below lists the same figures.`}
          onMouseMove={(e) => {
            const h = pos(e);
            setHover(h?.node ?? null);
          }}
          onMouseLeave={() => setHover(null)}
          onClick={(e) => {
            const h = pos(e);
            if (!h) return;
            if (h.node) setPicked(h.node);
            else setFocus((f) => (f === h.box.region ? null : h.box.region));
          }}
        />
        {tip && (
          <p className="tip" data-testid="topology-tip" role="status">
            <span className="mono">{tip.id}</span>: {nodeStatusName(tip.status)}, {nodeTypeName(tip.nodeType).replace("_", " ")}, {tip.region || "no region"}
            {tip.zone ? ` / ${tip.zone}` : ""}, load {pct(tip.load)}, {tip.activeTasks} tasks
            {tip.sessionRttMs ? `, rtt ${tip.sessionRttMs.toFixed(1)} ms` : ""}
            {tip.cordoned ? ", cordoned" : ""}
            {tip.draining ? ", draining" : ""}. <Link href={`/nodes?node=${encodeURIComponent(tip.id)}`}>Open in nodes</Link>
          </p>
        )}
      </div>

      <section className="card" aria-labelledby="regions-title">
        <h2 id="regions-title">Regions</h2>
        <div className="table-scroll">
          <table data-testid="region-table">
            <thead>
              <tr>
                <th scope="col">Region</th>
                <th scope="col">Nodes</th>
                {NODE_STATUSES.map((s) => (
                  <th scope="col" key={s}>
                    {nodeStatusName(s)}
                  </th>
                ))}
                <th scope="col">Avg load</th>
                <th scope="col">Zones</th>
              </tr>
            </thead>
            <tbody>
              {regions.map((r) => (
                <tr key={r.region}>
                  <th scope="row">
                    <button
                      type="button"
                      className="linkish"
                      data-testid={`region-${r.region || "none"}`}
                      aria-pressed={focus === r.region}
                      onClick={() => setFocus((f) => (f === r.region ? null : r.region))}
                    >
                      {r.region || "(none)"}
                    </button>
                  </th>
                  <td>{r.total}</td>
                  {NODE_STATUSES.map((s) => (
                    <td key={s} data-status={nodeStatusName(s)}>
                      {r.byStatus.get(s) ?? 0}
                    </td>
                  ))}
                  <td>{r.healthy ? pct(r.healthyLoadSum / r.healthy) : "—"}</td>
                  <td>{r.zones.size}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      {agg && (
        <section className="card" aria-labelledby="agg-title" data-testid="topology-aggregates">
          <h2 id="agg-title">Fleet</h2>
          <dl className="facts">
            <dt>Capacity (not offline)</dt>
            <dd>
              {cores(agg.totalCapacity?.cpuMillis ?? 0)}, {mib(agg.totalCapacity?.memoryMb ?? 0n)}
            </dd>
            <dt>Available</dt>
            <dd>
              {cores(agg.available?.cpuMillis ?? 0)}, {mib(agg.available?.memoryMb ?? 0n)}
            </dd>
            <dt>Tasks</dt>
            <dd>
              {String(agg.queuedTasks)} queued, {String(agg.runningTasks)} running, {String(agg.completedTasks)} completed, {String(agg.failedTasks)} failed
            </dd>
            <dt>By type</dt>
            <dd>
              {Object.entries(agg.nodesByType)
                .map(([k, v]) => `${k.replace("_", " ")} ${String(v.total)}`)
                .join(", ") || "—"}
            </dd>
          </dl>
          <Sparkline points={history} windowMs={Math.max(60_000, history.length >= 4 ? history[history.length - 2]! - history[0]! : 0)} label="Average load, fleet history" />
        </section>
      )}
    </div>
  );
}
