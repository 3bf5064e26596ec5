import { useCallback, useEffect, useMemo, useState, type FormEvent } from "react";
import type { GetSystemStatusResponse } from "../gen/fog/v1/system_pb.js";
import { ComponentStatus } from "../gen/fog/v1/system_pb.js";
import { SlaTier } from "../gen/fog/v1/common_pb.js";
import { errorText, fleetApi, systemApi, taskApi } from "../api/client.js";
import { componentStatusName, dateTime, duration, isHealthy, pct, tierName, TIERS } from "../api/format.js";
import { useCan } from "../api/hooks.js";
import { Link, navigate } from "../router.js";
import { useObservable } from "../state/store.js";
import { topology } from "../state/topology.js";
import { tasks } from "../state/tasks.js";
import { Badge, ErrorText } from "../components/ui.js";
import { JoinTokenForm } from "../components/JoinTokenForm.js";

const POLL_MS = 5_000;

interface ComponentView {
  name: string;
  category: string;
  status: string;
  detail: string;
  metrics: [string, string][];
}

/** The gateway is not a coordinator component: the panel checks it itself. */
async function gatewayHealth(): Promise<ComponentView> {
  const started = performance.now();
  try {
    const res = await fetch("/healthz", { cache: "no-store" });
    const ms = Math.round(performance.now() - started);
    return {
      name: "gateway",
      category: "network",
      status: res.ok ? "healthy" : "degraded",
      detail: res.ok ? "serving the panel and forwarding grpc-web" : `health check answered ${res.status}`,
      metrics: [["round trip", `${ms} ms`]],
    };
  } catch (e) {
    return { name: "gateway", category: "network", status: "down", detail: String(e), metrics: [] };
  }
}

export function ControlPanelPage() {
  const [status, setStatus] = useState<GetSystemStatusResponse | null>(null);
  const [gateway, setGateway] = useState<ComponentView | null>(null);
  const [error, setError] = useState("");
  const [loading, setLoading] = useState(true);
  const [open, setOpen] = useState<Set<string>>(new Set());
  useObservable(topology);
  useObservable(tasks);

  const load = useCallback(async () => {
    setLoading(true);
    try {
      const [s, g] = await Promise.all([systemApi.getSystemStatus({}), gatewayHealth()]);
      setStatus(s);
      setGateway(g);
      setError("");
    } catch (e) {
      setError(errorText(e));
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    void load();
    const t = setInterval(() => void load(), POLL_MS);
    return () => clearInterval(t);
  }, [load]);

  const categories = useMemo(() => {
    const list: ComponentView[] = (status?.components ?? []).map((c) => ({
      name: c.name,
      category: c.category || "other",
      status: componentStatusName(c.status),
      detail: c.detail,
      metrics: Object.entries(c.metrics).sort(([a], [b]) => a.localeCompare(b)),
    }));
    if (gateway && !list.some((c) => c.name === "gateway")) list.push(gateway);
    const m = new Map<string, ComponentView[]>();
    for (const c of list) {
      const arr = m.get(c.category) ?? [];
      arr.push(c);
      m.set(c.category, arr);
    }
    return [...m.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [status, gateway]);

  const toggle = (name: string) =>
    setOpen((o) => {
      const n = new Set(o);
      if (n.has(name)) n.delete(name);
      else n.add(name);
      return n;
    });

  const agg = topology.aggregates;
  const overall = status ? componentStatusName(status.overall) : "unknown";
  const overallWithGateway =
    gateway && gateway.status !== "healthy" && status?.overall === ComponentStatus.HEALTHY ? gateway.status : overall;

  return (
    <div className="page" data-testid="control-panel-page">
      <header className="page-header" data-testid="control-panel-header">
        <h1>Control panel</h1>
        <button type="button" data-testid="refresh-button" onClick={() => void load()} disabled={loading} aria-label="Refresh system status">
          {loading ? "Refreshing…" : "Refresh"}
        </button>
      </header>

      {error && (
        <section className="card error-card" data-testid="error-card" role="alert">
          <h2>Cannot read the system status</h2>
          <p>{error}</p>
          <button type="button" onClick={() => void load()}>
            Try again
          </button>
        </section>
      )}

      {!status && !error && (
        <section className="card" data-testid="loading-card" aria-busy="true">
          <p>Loading the coordinator's status…</p>
        </section>
      )}

      {status && (
        <section className="card system-status" data-testid="system-status-card" aria-labelledby="sys-title">
          <h2 id="sys-title">
            System status <Badge status={overallWithGateway} testId={`status-badge-${overallWithGateway}`} />
          </h2>
          <dl className="facts">
            <dt>Version</dt>
            <dd>{status.version}</dd>
            <dt>Up for</dt>
            <dd>{duration(Number(status.uptimeSeconds))}</dd>
            <dt>Started</dt>
            <dd>{dateTime(status.startedAt)}</dd>
            <dt>Topology epoch</dt>
            <dd className="mono">{status.epoch}</dd>
            {agg && (
              <>
                <dt>Nodes</dt>
                <dd>
                  {String(agg.nodes?.total ?? 0)} total, {String((agg.nodes?.active ?? 0n) + (agg.nodes?.idle ?? 0n) + (agg.nodes?.busy ?? 0n))} healthy,{" "}
                  {String(agg.nodes?.suspect ?? 0)} suspect, {String(agg.nodes?.offline ?? 0)} offline
                </dd>
                <dt>Tasks</dt>
                <dd>
                  {String(agg.queuedTasks)} queued, {String(agg.runningTasks)} running, {String(agg.completedTasks)} completed, {String(agg.failedTasks)} failed
                </dd>
                <dt>SLA compliance</dt>
                <dd>{pct(agg.slaCompliance)}</dd>
              </>
            )}
          </dl>
        </section>
      )}

      <QuickActions />

      {categories.map(([category, comps]) => (
        <section key={category} className="category" data-testid={`category-${category}`} aria-labelledby={`cat-${category}`}>
          <h2 id={`cat-${category}`}>{category}</h2>
          <div className="grid">
            {comps.map((c) => (
              <article key={c.name} className="card service" data-testid={`service-status-${c.name}`} aria-label={`${c.name}: ${c.status}`}>
                <header>
                  <h3>{c.name}</h3>
                  <Badge status={c.status} testId={`status-badge-${c.status}`} />
                </header>
                <p>{c.detail}</p>
                <button
                  type="button"
                  className="ghost"
                  data-testid={`view-details-${c.name}`}
                  aria-expanded={open.has(c.name)}
                  aria-controls={`details-${c.name}`}
                  onClick={() => toggle(c.name)}
                >
                  {open.has(c.name) ? "Hide details" : "View details"}
                </button>
                {open.has(c.name) && (
                  <dl className="facts" id={`details-${c.name}`}>
                    {c.metrics.length === 0 && <dd>No figures.</dd>}
                    {c.metrics.map(([k, v]) => (
                      <div key={k} className="fact">
                        <dt>{k}</dt>
                        <dd>{v}</dd>
                      </div>
                    ))}
                  </dl>
                )}
              </article>
            ))}
          </div>
        </section>
      ))}
    </div>
  );
}

type Action = "create-join-token" | "submit-task" | "drain-node" | null;

function QuickActions() {
  const can = useCan();
  const [action, setAction] = useState<Action>(null);
  const pick = (a: Action) => setAction((cur) => (cur === a ? null : a));
  return (
    <section className="card" data-testid="quick-actions-panel" aria-labelledby="qa-title">
      <h2 id="qa-title">Quick actions</h2>
      <div className="actions">
        {can.admin && (
          <button type="button" data-testid="quick-action-create-join-token" data-mutating="true" aria-expanded={action === "create-join-token"} onClick={() => pick("create-join-token")}>
            Create join token
          </button>
        )}
        {can.operate && (
          <button type="button" data-testid="quick-action-submit-task" data-mutating="true" aria-expanded={action === "submit-task"} onClick={() => pick("submit-task")}>
            Submit task
          </button>
        )}
        {can.operate && (
          <button type="button" data-testid="quick-action-drain-node" data-mutating="true" aria-expanded={action === "drain-node"} onClick={() => pick("drain-node")}>
            Drain node
          </button>
        )}
        <button type="button" data-testid="quick-action-open-topology" onClick={() => navigate("/topology")}>
          Open topology
        </button>
      </div>
      {action === "create-join-token" && can.admin && <JoinTokenForm />}
      {action === "submit-task" && can.operate && <QuickSubmit />}
      {action === "drain-node" && can.operate && <QuickDrain />}
    </section>
  );
}

function QuickSubmit() {
  const [name, setName] = useState("hello");
  const [text, setText] = useState("hello from the control panel");
  const [tier, setTier] = useState<SlaTier>(SlaTier.BRONZE);
  const [result, setResult] = useState("");
  const [error, setError] = useState("");
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError("");
    setResult("");
    try {
      const res = await taskApi.submitTask({
        spec: { name, workload: { case: "builtin", value: { kind: { case: "echo", value: text } } }, slaTier: tier },
        requestId: crypto.randomUUID(),
      });
      tasks.put(res.task);
      setResult(res.task?.id ?? "");
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form className="inline-form" onSubmit={submit} data-testid="quick-submit-form" aria-label="Submit an echo task">
      <label>
        Task name
        <input value={name} maxLength={128} onChange={(e) => setName(e.target.value)} />
      </label>
      <label>
        Text to echo
        <input value={text} maxLength={4096} onChange={(e) => setText(e.target.value)} required />
      </label>
      <label>
        SLA tier
        <select value={tier} onChange={(e) => setTier(Number(e.target.value))}>
          {TIERS.map((t) => (
            <option key={t} value={t}>
              {tierName(t)}
            </option>
          ))}
        </select>
      </label>
      <button type="submit" data-mutating="true">
        Submit
      </button>
      {result && (
        <p role="status" data-testid="quick-submit-result">
          Submitted <Link href="/tasks">{result}</Link>.
        </p>
      )}
      <ErrorText error={error} />
    </form>
  );
}

function QuickDrain() {
  useObservable(topology);
  const [id, setId] = useState("");
  const [result, setResult] = useState("");
  const [error, setError] = useState("");
  // A datalist of a few hundred healthy nodes; typing narrows it.
  const options = useMemo(() => {
    const out: string[] = [];
    for (const n of topology.nodes.values()) {
      if (isHealthy(n.status) && !n.draining && n.id.includes(id)) out.push(n.id);
      if (out.length >= 200) break;
    }
    return out.sort();
  }, [id, topology.version]);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError("");
    setResult("");
    try {
      const res = await fleetApi.drainNode({ nodeId: id.trim() });
      setResult(`${res.node?.id ?? id} is draining: it finishes its tasks and takes no new ones.`);
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form className="inline-form" onSubmit={submit} data-testid="quick-drain-form" aria-label="Drain a node">
      <label>
        Node id
        <input value={id} list="drain-nodes" required pattern="[a-z0-9-]+" onChange={(e) => setId(e.target.value)} />
        <datalist id="drain-nodes">
          {options.map((o) => (
            <option key={o} value={o} />
          ))}
        </datalist>
      </label>
      <button type="submit" data-mutating="true">
        Drain
      </button>
      {result && <p role="status">{result}</p>}
      <ErrorText error={error} />
    </form>
  );
}
