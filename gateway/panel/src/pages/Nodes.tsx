import { useEffect, useMemo, useState } from "react";
import type { Node } from "../gen/fog/v1/fleet_pb.js";
import { NodeStatus } from "../gen/fog/v1/fleet_pb.js";
import type { Label, NodeType } from "../gen/fog/v1/common_pb.js";
import { errorText, fleetApi } from "../api/client.js";
import {
  certExpiry,
  ago,
  cores,
  dateTime,
  isHealthy,
  livenessName,
  mib,
  NODE_STATUSES,
  NODE_TYPES,
  nodeStatusName,
  nodeTypeName,
  pct,
  powerModeName,
  taskStateName,
  tsMs,
} from "../api/format.js";
import { useCan } from "../api/hooks.js";
import { Link, useQuery } from "../router.js";
import { useObservable } from "../state/store.js";
import { topology } from "../state/topology.js";
import { nodes } from "../state/nodes.js";
import { tasks } from "../state/tasks.js";
import { Badge, Card, ErrorText, LoadBar, Sparkline } from "../components/ui.js";
import { VirtualList } from "../components/VirtualList.js";
import { JoinTokenForm } from "../components/JoinTokenForm.js";

/** One row: the directory record merged with the live topology view. */
interface Row {
  id: string;
  name: string;
  type: NodeType;
  status: NodeStatus;
  region: string;
  zone: string;
  load: number;
  activeTasks: number;
  labels: Label[];
  cordoned: boolean;
  draining: boolean;
  maintenance: boolean;
  flapping: boolean;
  /** The agent cannot write its state directory (disk full, read-only): no new work. */
  unwritable: boolean;
  cpuMillis: number;
  memoryMb: bigint;
  search: string;
}

function buildRows(): Row[] {
  const rows: Row[] = [];
  const ids = new Set<string>([...nodes.nodes.keys(), ...topology.nodes.keys()]);
  for (const id of ids) {
    const n: Node | undefined = nodes.nodes.get(id);
    const t = topology.nodes.get(id);
    if (!n && !t) continue;
    const labels = n?.labels ?? [];
    const name = n?.name || id;
    const zone = t?.zone ?? n?.location?.zone ?? "";
    const r: Row = {
      id,
      name,
      type: (t?.nodeType ?? n?.nodeType)!,
      status: t?.status ?? n?.status ?? NodeStatus.UNSPECIFIED,
      region: t?.region ?? n?.location?.region ?? "",
      zone,
      load: t?.load ?? Math.max(n?.cpuUsage ?? 0, n?.memoryUsage ?? 0),
      activeTasks: t?.activeTasks ?? n?.activeTasks ?? 0,
      labels,
      cordoned: t?.cordoned ?? n?.cordoned ?? false,
      draining: t?.draining ?? n?.draining ?? false,
      maintenance: n?.maintenance ?? t?.status === NodeStatus.MAINTENANCE,
      flapping: t?.flapping ?? n?.flapping ?? false,
      unwritable: n?.stateUnwritable ?? false,
      cpuMillis: n?.capacity?.cpuMillis ?? 0,
      memoryMb: n?.capacity?.memoryMb ?? 0n,
      search: `${id} ${name} ${zone} ${labels.map((l) => `${l.key}=${l.value}`).join(" ")}`.toLowerCase(),
    };
    rows.push(r);
  }
  rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return rows;
}

export function NodesPage() {
  useEffect(() => nodes.use(), []);
  const tv = useObservable(topology);
  const nv = useObservable(nodes);
  const can = useCan();
  const [status, setStatus] = useState<number>(0);
  const [type, setType] = useState<number>(0);
  const [region, setRegion] = useState("");
  // ?node=<id> (from the topology page) opens that node's details.
  const linked = useQuery().get("node");
  const [q, setQ] = useState(linked ?? "");
  const [selected, setSelected] = useState<string | null>(linked);
  const [showJoin, setShowJoin] = useState(false);

  const rows = useMemo(buildRows, [tv, nv]);
  const regions = useMemo(() => [...new Set(rows.map((r) => r.region))].sort(), [rows]);
  const filtered = useMemo(() => {
    const needle = q.trim().toLowerCase();
    return rows.filter(
      (r) => (!status || r.status === status) && (!type || r.type === type) && (!region || r.region === region) && (!needle || r.search.includes(needle)),
    );
  }, [rows, status, type, region, q]);

  const healthy = rows.filter((r) => isHealthy(r.status)).length;
  let cpu = 0;
  let mem = 0n;
  let loadSum = 0;
  for (const r of rows) {
    cpu += r.cpuMillis;
    mem += r.memoryMb;
    if (isHealthy(r.status)) loadSum += r.load;
  }

  return (
    <div className="page" data-testid="nodes-page">
      <header className="page-header" data-testid="nodes-header">
        <h1>Nodes</h1>
        <p className="muted">
          {rows.length} in the fleet{filtered.length !== rows.length ? `, ${filtered.length} shown` : ""}
        </p>
        {can.admin && (
          <button type="button" data-testid="join-token-toggle" data-mutating="true" aria-expanded={showJoin} onClick={() => setShowJoin((s) => !s)}>
            {showJoin ? "Close" : "New join token"}
          </button>
        )}
      </header>
      {can.admin && showJoin && (
        <section className="card" aria-label="Join token">
          <h2>Join token</h2>
          <JoinTokenForm />
        </section>
      )}

      <div className="grid stats">
        <Card testId="total-nodes-card" title="Total nodes" value={rows.length} hint={`${regions.length} region${regions.length === 1 ? "" : "s"}`} />
        <Card testId="active-nodes-card" title="Active nodes" value={healthy} hint="healthy: active, idle or busy" />
        {/* The watch's aggregates are there at once; the directory's sum once every page is read. */}
        {topology.aggregates?.totalCapacity && !nodes.loaded ? (
          <Card
            testId="total-resources-card"
            title="Total resources"
            value={cores(topology.aggregates.totalCapacity.cpuMillis)}
            hint={`${mib(topology.aggregates.totalCapacity.memoryMb)} memory (nodes not offline)`}
          />
        ) : (
          <Card testId="total-resources-card" title="Total resources" value={cores(cpu)} hint={`${mib(mem)} memory`} />
        )}
        <Card testId="avg-load-card" title="Average load" value={healthy ? pct(loadSum / healthy) : "—"} hint="over healthy nodes" />
      </div>
      <ErrorText error={nodes.error} />

      <form className="filters" role="search" aria-label="Filter nodes" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select data-testid="filter-status" value={status} onChange={(e) => setStatus(Number(e.target.value))}>
            <option value={0}>any</option>
            {NODE_STATUSES.map((s) => (
              <option key={s} value={s}>
                {nodeStatusName(s)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type
          <select data-testid="filter-type" value={type} onChange={(e) => setType(Number(e.target.value))}>
            <option value={0}>any</option>
            {NODE_TYPES.map((t) => (
              <option key={t} value={t}>
                {nodeTypeName(t).replace("_", " ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          Region
          <select data-testid="filter-region" value={region} onChange={(e) => setRegion(e.target.value)}>
            <option value="">any</option>
            {regions.map((r) => (
              <option key={r} value={r}>
                {r || "(none)"}
              </option>
            ))}
          </select>
        </label>
        <label className="grow">
          Search (id, name, zone, label)
          <input data-testid="filter-search" type="search" value={q} placeholder="e.g. runtime=fog-agent" onChange={(e) => setQ(e.target.value)} />
        </label>
      </form>

      <div className="split">
        <div className="split-main">
          {filtered.length === 0 ? (
            <section className="card empty" data-testid="empty-state">
              <h2>{rows.length === 0 ? "No nodes yet" : "No node matches"}</h2>
              <p>
                {rows.length === 0
                  ? can.admin
                    ? "Create a join token and start fog-agent with it; the node appears here as soon as it connects."
                    : "Nodes appear here as soon as they connect."
                  : "Change the filters to see more nodes."}
              </p>
            </section>
          ) : (
            <VirtualList
              items={filtered}
              rowHeight={76}
              maxHeight={640}
              label="Nodes"
              testId="node-list"
              keyOf={(r) => r.id}
              render={(r) => <NodeRow row={r} selected={selected === r.id} onSelect={() => setSelected((s) => (s === r.id ? null : r.id))} />}
            />
          )}
        </div>
        {selected && <NodeDetail id={selected} onClose={() => setSelected(null)} />}
      </div>
    </div>
  );
}

function NodeRow(props: { row: Row; selected: boolean; onSelect: () => void }) {
  const r = props.row;
  const st = nodeStatusName(r.status);
  const flags = [
    r.cordoned && "cordoned",
    r.draining && "draining",
    r.flapping && "flapping",
    r.unwritable && "disk unwritable",
  ].filter(Boolean) as string[];
  return (
    <article className={`node-row${props.selected ? " selected" : ""}`} data-testid={`node-card-${r.id}`} aria-label={`Node ${r.id}`}>
      <div className="node-main">
        <span className="node-name" data-testid={`node-name-${r.id}`}>
          {r.name}
        </span>
        <span className="mono muted">{r.id !== r.name ? r.id : ""}</span>
        <span className="muted">
          {nodeTypeName(r.type).replace("_", " ")} · {r.region || "no region"}
          {r.zone ? ` / ${r.zone}` : ""}
        </span>
      </div>
      <div className="node-state">
        <Badge status={st} testId={`node-status-${r.id}`} />
        {flags.map((f) => (
          <Badge key={f} status={f} />
        ))}
      </div>
      <div className="node-load">
        <LoadBar value={r.load} label={`load of ${r.id}`} />
        <span className="muted">
          {pct(r.load)} · {r.activeTasks} tasks
        </span>
      </div>
      <button type="button" className="ghost" data-testid={`node-details-${r.id}`} aria-expanded={props.selected} onClick={props.onSelect}>
        {props.selected ? "Hide" : "Details"}
      </button>
    </article>
  );
}

function NodeDetail(props: { id: string; onClose: () => void }) {
  const can = useCan();
  useObservable(topology);
  useObservable(tasks);
  const [node, setNode] = useState<Node | null>(null);
  const [taskIds, setTaskIds] = useState<string[]>([]);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [confirmRemove, setConfirmRemove] = useState(false);
  const [, tick] = useState(0);
  const { id } = props;

  useEffect(() => {
    let stop = false;
    const load = async () => {
      try {
        const res = await fleetApi.getNode({ nodeId: id });
        if (stop) return;
        setNode(res.node ?? null);
        setTaskIds(res.taskIds);
        setError("");
      } catch (e) {
        if (!stop) setError(errorText(e));
      }
    };
    void load();
    const t = setInterval(() => void load(), 2_000);
    const c = setInterval(() => tick((x) => x + 1), 1_000);
    return () => {
      stop = true;
      clearInterval(t);
      clearInterval(c);
    };
  }, [id]);

  const act = async (what: string, f: () => Promise<{ node?: Node } | object>) => {
    setBusy(true);
    setError("");
    try {
      const res = await f();
      if ("node" in res && res.node) {
        setNode(res.node);
        nodes.put(res.node);
      }
      if (what === "remove") {
        nodes.remove(id);
        props.onClose();
      }
    } catch (e) {
      setError(`${what}: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };

  const live = topology.nodes.get(id);
  const n = node;
  const status = live?.status ?? n?.status ?? NodeStatus.UNSPECIFIED;
  const hb = tsMs(n?.lastHeartbeat);
  return (
    <aside className="card detail" data-testid="node-detail" aria-label={`Details of node ${id}`}>
      <header>
        <h2>
          <span data-testid="node-detail-name">{n?.name || id}</span> <Badge status={nodeStatusName(status)} />
        </h2>
        <button type="button" className="ghost" onClick={props.onClose} aria-label="Close details">
          Close
        </button>
      </header>
      <ErrorText error={error} />
      {!n && !error && <p aria-busy="true">Loading…</p>}
      {n && (
        <>
          <dl className="facts">
            <dt>Id</dt>
            <dd className="mono">{n.id}</dd>
            <dt>Health</dt>
            <dd data-testid="node-health">
              {livenessName(n.liveness)}
              {n.flapping ? ", flapping" : ""}
              {n.cordoned ? ", cordoned" : ""}
              {n.draining ? ", draining" : ""}
              {n.maintenance ? ", in maintenance" : ""}
              {n.stateUnwritable ? ", state directory unwritable (no new work)" : ""}
            </dd>
            <dt>Last heartbeat</dt>
            <dd data-testid="node-heartbeat-age">{ago(hb)}</dd>
            <dt>Power mode</dt>
            <dd>
              {powerModeName(n.powerMode)}
              {n.batteryPercent >= 0 ? ` · battery ${n.batteryPercent} %${n.charging ? " (charging)" : ""}` : ""}
              {n.temperatureCelsius > -1000 ? ` · ${n.temperatureCelsius.toFixed(0)} °C` : ""}
            </dd>
            <dt>Certificate expiry</dt>
            <dd data-testid="node-cert-expiry">{certExpiry(tsMs(n.certificateExpiresAt))}</dd>
            <dt>Capacity</dt>
            <dd>
              {cores(n.capacity?.cpuMillis ?? 0)}, {mib(n.capacity?.memoryMb ?? 0n)} memory, {mib(n.capacity?.storageMb ?? 0n)} storage
              {n.capacity?.gpus ? `, ${n.capacity.gpus} GPU` : ""}
            </dd>
            <dt>Reserved</dt>
            <dd>
              {cores(n.allocated?.cpuMillis ?? 0)}, {mib(n.allocated?.memoryMb ?? 0n)}
            </dd>
            <dt>Usage</dt>
            <dd>
              cpu {pct(n.cpuUsage)}, memory {pct(n.memoryUsage)}
            </dd>
            <dt>Tasks</dt>
            <dd>
              {n.activeTasks} active, {String(n.completedTasks)} completed, {String(n.failedTasks)} failed
            </dd>
            <dt>Reputation / uptime</dt>
            <dd>
              {n.reputation.toFixed(2)} / {n.uptimePercent.toFixed(1)} %
            </dd>
            <dt>Session RTT</dt>
            <dd>{n.sessionRttMs ? `${n.sessionRttMs.toFixed(1)} ms` : "unknown"}</dd>
            <dt>Location</dt>
            <dd>
              {n.location?.region || "no region"}
              {n.location?.zone ? ` / ${n.location.zone}` : ""}
              {n.location?.hasCoordinates ? ` (${n.location.latitude.toFixed(2)}, ${n.location.longitude.toFixed(2)})` : ""}
            </dd>
            <dt>Labels</dt>
            <dd>
              {n.labels.length === 0 && "none"}
              <ul className="labels">
                {n.labels.map((l) => (
                  <li key={l.key} className="label">
                    {l.key}={l.value}
                  </li>
                ))}
              </ul>
            </dd>
            <dt>Agent</dt>
            <dd>
              {n.agentVersion || "unknown"}, registered {dateTime(n.registeredAt)}
            </dd>
            {n.sessionReplica && (
              <>
                <dt>Session held by</dt>
                <dd>{n.sessionReplica}</dd>
              </>
            )}
          </dl>
          <Sparkline points={topology.loadHistory(id)} label="Load" testId="node-load-chart" />
          <h3>Running tasks</h3>
          {taskIds.length === 0 ? (
            <p className="muted">None.</p>
          ) : (
            <ul data-testid="node-tasks">
              {taskIds.map((t) => {
                const task = tasks.tasks.get(t);
                return (
                  <li key={t}>
                    <Link href={`/tasks?task=${encodeURIComponent(t)}`} className="mono">
                      {t}
                    </Link>{" "}
                    {task ? `${task.spec?.name ?? ""} (${taskStateName(task.state)})` : ""}
                  </li>
                );
              })}
            </ul>
          )}
          {can.operate && (
            <div className="actions" role="group" aria-label="Node actions">
              {n.cordoned || n.draining ? (
                <button type="button" data-mutating="true" data-testid="node-uncordon" disabled={busy} onClick={() => void act("uncordon", () => fleetApi.uncordonNode({ nodeId: id }))}>
                  Uncordon
                </button>
              ) : (
                <button type="button" data-mutating="true" data-testid="node-cordon" disabled={busy} onClick={() => void act("cordon", () => fleetApi.cordonNode({ nodeId: id }))}>
                  Cordon
                </button>
              )}
              <button type="button" data-mutating="true" data-testid="node-drain" disabled={busy || n.draining} onClick={() => void act("drain", () => fleetApi.drainNode({ nodeId: id }))}>
                Drain
              </button>
              <button
                type="button"
                data-mutating="true"
                data-testid="node-maintenance"
                disabled={busy}
                onClick={() => void act("maintenance", () => fleetApi.setMaintenance({ nodeId: id, maintenance: !n.maintenance }))}
              >
                {n.maintenance ? "End maintenance" : "Maintenance"}
              </button>
              {can.admin &&
                (confirmRemove ? (
                  <>
                    <button type="button" className="danger" data-mutating="true" data-testid="node-remove-confirm" disabled={busy} onClick={() => void act("remove", () => fleetApi.removeNode({ nodeId: id }))}>
                      Really remove {id}
                    </button>
                    <button type="button" className="ghost" onClick={() => setConfirmRemove(false)}>
                      Keep it
                    </button>
                  </>
                ) : (
                  <button type="button" className="danger" data-mutating="true" data-testid="node-remove" disabled={busy} onClick={() => setConfirmRemove(true)}>
                    Remove…
                  </button>
                ))}
            </div>
          )}
        </>
      )}
    </aside>
  );
}
