import { useMemo, useState, type FormEvent } from "react";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ExplainPlacementResponse, Task, TaskSpecSchema } from "../gen/fog/v1/task_pb.js";
import { TaskState } from "../gen/fog/v1/task_pb.js";
import { PrivacyLevel, RoutingStrategy, SlaTier } from "../gen/fog/v1/common_pb.js";
import { errorText, taskApi } from "../api/client.js";
import {
  attemptStateName,
  dateTime,
  isTerminal,
  PRIVACY_LEVELS,
  privacyName,
  STRATEGIES,
  strategyName,
  taskStateName,
  tierName,
  TIERS,
} from "../api/format.js";
import { useCan } from "../api/hooks.js";
import { useQuery } from "../router.js";
import { useObservable } from "../state/store.js";
import { tasks } from "../state/tasks.js";
import { Badge, Card, ErrorText } from "../components/ui.js";
import { parseLabels } from "../components/JoinTokenForm.js";

type Tab = "all" | "running" | "pending" | "completed" | "failed";
const TABS: Tab[] = ["all", "running", "pending", "completed", "failed"];
/** Cards rendered per tab; the rest is counted, not drawn. */
const SHOW = 200;

function tabOf(s: TaskState): Tab {
  switch (s) {
    case TaskState.QUEUED:
      return "pending";
    case TaskState.ASSIGNED:
    case TaskState.RUNNING:
      return "running";
    case TaskState.SUCCEEDED:
      return "completed";
    default:
      return "failed";
  }
}

const QUEUE_STATES = [TaskState.QUEUED, TaskState.ASSIGNED, TaskState.RUNNING, TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED];

export function TasksPage() {
  useObservable(tasks);
  const can = useCan();
  const [tab, setTab] = useState<Tab>("all");
  const focus = useQuery().get("task");
  const all = useMemo(() => tasks.list(), [tasks.version]);
  const counts = useMemo(() => {
    const c: Record<Tab, number> = { all: all.length, running: 0, pending: 0, completed: 0, failed: 0 };
    for (const t of all) c[tabOf(t.state)]++;
    return c;
  }, [all]);
  const queue = useMemo(() => {
    const m = new Map<string, number>();
    for (const t of all) {
      const k = `${t.spec?.slaTier || SlaTier.BRONZE}/${t.state}`;
      m.set(k, (m.get(k) ?? 0) + 1);
    }
    return m;
  }, [all]);
  const shown = useMemo(() => {
    const list = all.filter((t) => tab === "all" || tabOf(t.state) === tab);
    if (focus) list.sort((a, b) => (a.id === focus ? -1 : b.id === focus ? 1 : 0));
    return list;
  }, [all, tab, focus]);

  return (
    <div className="page" data-testid="tasks-page">
      <header className="page-header" data-testid="tasks-header">
        <h1>Tasks</h1>
        <p className="muted">
          {tasks.connected ? "live" : tasks.error ? `reconnecting (${tasks.error})` : "connecting…"} · newest {all.length} of {String(tasks.totalMatching)}
        </p>
      </header>
      <div className="grid stats">
        <Card testId="total-tasks-card" title="Total tasks" value={String(tasks.totalMatching > BigInt(all.length) ? tasks.totalMatching : all.length)} />
        <Card testId="running-tasks-card" title="Running" value={counts.running} hint="assigned or running" />
        <Card testId="completed-tasks-card" title="Completed" value={counts.completed} />
        <Card testId="pending-tasks-card" title="Pending" value={counts.pending} hint="queued" />
      </div>

      {can.operate && <SubmitForm />}

      <section className="card" aria-labelledby="queue-title">
        <h2 id="queue-title">Queue by tier and state</h2>
        <div className="table-scroll">
          <table data-testid="task-queue">
            <thead>
              <tr>
                <th scope="col">Tier</th>
                {QUEUE_STATES.map((s) => (
                  <th scope="col" key={s}>
                    {taskStateName(s)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {TIERS.map((tier) => (
                <tr key={tier}>
                  <th scope="row">{tierName(tier)}</th>
                  {QUEUE_STATES.map((s) => (
                    <td key={s} data-testid={`queue-${tierName(tier)}-${taskStateName(s)}`}>
                      {queue.get(`${tier}/${s}`) ?? 0}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <div className="tabs" role="tablist" aria-label="Task states">
        {TABS.map((t) => (
          <button
            key={t}
            type="button"
            role="tab"
            id={`tab-${t}`}
            data-testid={`tab-${t}`}
            aria-selected={tab === t}
            aria-controls="task-list"
            className={tab === t ? "tab active" : "tab"}
            onClick={() => setTab(t)}
          >
            {t} ({counts[t]})
          </button>
        ))}
      </div>
      <div id="task-list" role="tabpanel" aria-labelledby={`tab-${tab}`}>
        {shown.length === 0 ? (
          <section className="card empty" data-testid="empty-state">
            <h2>No tasks here</h2>
            <p>{can.operate ? "Submit one with the form above." : "Tasks appear here as they are submitted."}</p>
          </section>
        ) : (
          <>
            <ul className="task-list">
              {shown.slice(0, SHOW).map((t) => (
                <li key={t.id}>
                  <TaskCard task={t} focused={t.id === focus} />
                </li>
              ))}
            </ul>
            {shown.length > SHOW && <p className="muted">{shown.length - SHOW} older tasks not shown.</p>}
          </>
        )}
      </div>
    </div>
  );
}

function TaskCard(props: { task: Task; focused: boolean }) {
  const t = props.task;
  const can = useCan();
  const [explain, setExplain] = useState<ExplainPlacementResponse | null>(null);
  const [open, setOpen] = useState(false);
  const [error, setError] = useState("");
  const st = taskStateName(t.state);
  const spec = t.spec;
  const work = spec?.workload;
  const what =
    work?.case === "exec"
      ? `exec ${[work.value.command, ...work.value.args].join(" ")}`
      : work?.case === "builtin"
        ? `${work.value.kind.case ?? "builtin"} ${String(work.value.kind.value ?? "")}`
        : "";
  const out = t.output?.stdout?.length ? new TextDecoder().decode(t.output.stdout) : "";
  const err = t.output?.stderr?.length ? new TextDecoder().decode(t.output.stderr) : "";
  const nodesOf = t.attempts.map((a) => a.nodeId);

  const why = async () => {
    if (open) {
      setOpen(false);
      return;
    }
    setOpen(true);
    setError("");
    try {
      setExplain(await taskApi.explainPlacement({ taskId: t.id, limit: 10 }));
    } catch (e) {
      setError(errorText(e));
    }
  };
  const cancel = async () => {
    setError("");
    try {
      const res = await taskApi.cancelTask({ taskId: t.id, reason: "cancelled from the control panel" });
      tasks.put(res.task);
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <article className={`card task${props.focused ? " focused" : ""}`} data-testid={`task-card-${t.id}`} aria-label={`Task ${spec?.name || t.id}`}>
      <header>
        <h3 data-testid={`task-name-${t.id}`}>{spec?.name || "(unnamed)"}</h3>
        <Badge status={st} testId={`task-state-${t.id}`} />
      </header>
      <p className="mono muted">{t.id}</p>
      <p>
        {what.length > 120 ? `${what.slice(0, 120)}…` : what}
        <br />
        {tierName(spec?.slaTier ?? SlaTier.UNSPECIFIED)} · {privacyName(spec?.privacyLevel ?? PrivacyLevel.UNSPECIFIED)} ·{" "}
        {strategyName(spec?.strategy ?? RoutingStrategy.UNSPECIFIED)}
        {spec?.affinityKey ? ` · key ${spec.affinityKey}` : ""}
        {t.slaMet !== undefined ? (t.slaMet ? " · SLA met" : " · SLA missed") : ""}
      </p>
      <p data-testid={`task-nodes-${t.id}`}>
        {nodesOf.length ? `on ${nodesOf.join(" → ")}` : "not placed yet"} · submitted {dateTime(t.submittedAt)}
      </p>
      {t.attempts.length > 0 && (
        <ol className="attempts" aria-label="Attempts">
          {t.attempts.map((a) => (
            <li key={String(a.attempt)} data-testid={`task-attempt-${t.id}-${String(a.attempt)}`}>
              #{String(a.attempt)} on <span className="mono">{a.nodeId}</span>: {attemptStateName(a.state)}
              {a.error ? ` (${a.error})` : ""}
            </li>
          ))}
        </ol>
      )}
      {out && (
        <pre className="output" data-testid={`task-output-${t.id}`} aria-label="Output">
          {out}
        </pre>
      )}
      {err && (
        <pre className="output stderr" aria-label="Standard error">
          {err}
        </pre>
      )}
      {t.error && <p className="error">{t.error}</p>}
      <div className="actions">
        <button type="button" className="ghost" data-testid={`task-why-${t.id}`} aria-expanded={open} onClick={() => void why()}>
          Why here?
        </button>
        {can.operate && !isTerminal(t.state) && (
          <button type="button" className="danger" data-mutating="true" data-testid={`task-cancel-${t.id}`} onClick={() => void cancel()}>
            Cancel
          </button>
        )}
      </div>
      <ErrorText error={error} />
      {open && explain && <Explain e={explain} taskId={t.id} />}
    </article>
  );
}

function Explain(props: { e: ExplainPlacementResponse; taskId: string }) {
  const e = props.e;
  return (
    <section className="explain" data-testid={`task-explain-${props.taskId}`} aria-label="Placement explanation">
      <p>
        Strategy {strategyName(e.strategy)}: {String(e.nodesFitting)} of {String(e.nodesConsidered)} nodes fit;{" "}
        {e.chosenNodeId ? (
          <>
            it would choose <strong className="mono">{e.chosenNodeId}</strong> now.
          </>
        ) : (
          "none would be chosen now."
        )}
      </p>
      {e.candidates.length > 0 && (
        <ol>
          {e.candidates.map((c) => (
            <li key={c.nodeId}>
              <span className="mono">{c.nodeId}</span> score {c.score.toFixed(3)}: {c.reason}
            </li>
          ))}
        </ol>
      )}
      {Object.keys(e.rejectionCounts).length > 0 && (
        <p>
          Rejected:{" "}
          {Object.entries(e.rejectionCounts)
            .map(([k, v]) => `${k} ${String(v)}`)
            .join(", ")}
        </p>
      )}
      {e.rejected.length > 0 && (
        <ul>
          {e.rejected.map((r) => (
            <li key={r.nodeId}>
              <span className="mono">{r.nodeId}</span>: {r.reasons.join("; ")}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

type Kind = "echo" | "sleepMs" | "hashRounds" | "fail" | "exec";

function SubmitForm() {
  const [name, setName] = useState("");
  const [kind, setKind] = useState<Kind>("echo");
  const [arg, setArg] = useState("hello from the fog");
  const [command, setCommand] = useState("/bin/echo");
  const [args, setArgs] = useState("");
  const [cpu, setCpu] = useState(100);
  const [memory, setMemory] = useState(16);
  const [storage, setStorage] = useState(0);
  const [gpus, setGpus] = useState(0);
  const [tier, setTier] = useState<SlaTier>(SlaTier.BRONZE);
  const [privacy, setPrivacy] = useState<PrivacyLevel>(PrivacyLevel.PUBLIC);
  const [strategy, setStrategy] = useState<RoutingStrategy>(RoutingStrategy.LEAST_LOADED);
  const [affinity, setAffinity] = useState("");
  const [originRegion, setOriginRegion] = useState("");
  const [lat, setLat] = useState("");
  const [lon, setLon] = useState("");
  const [required, setRequired] = useState("");
  const [timeout, setTimeoutS] = useState(300);
  const [replicas, setReplicas] = useState(0);
  const [error, setError] = useState("");
  const [done, setDone] = useState("");
  const [busy, setBusy] = useState(false);

  const spec = (): MessageInitShape<typeof TaskSpecSchema> => {
    const hasCoords = lat.trim() !== "" && lon.trim() !== "";
    const builtin = (): MessageInitShape<typeof TaskSpecSchema>["workload"] => {
      switch (kind) {
        case "sleepMs":
          return { case: "builtin", value: { kind: { case: "sleepMs", value: BigInt(Math.max(0, Math.floor(Number(arg) || 0))) } } };
        case "hashRounds":
          return { case: "builtin", value: { kind: { case: "hashRounds", value: Math.max(0, Math.floor(Number(arg) || 0)) } } };
        case "fail":
          return { case: "builtin", value: { kind: { case: "fail", value: arg } } };
        case "exec":
          return { case: "exec", value: { command, args: args.split("\n").filter((a) => a !== "") } };
        default:
          return { case: "builtin", value: { kind: { case: "echo", value: arg } } };
      }
    };
    return {
      name,
      workload: builtin(),
      resources: { cpuMillis: cpu, memoryMb: BigInt(memory), storageMb: BigInt(storage), gpus },
      slaTier: tier,
      privacyLevel: privacy,
      strategy,
      affinityKey: affinity,
      requiredLabels: parseLabels(required),
      origin: originRegion || hasCoords ? { region: originRegion, hasCoordinates: hasCoords, latitude: Number(lat) || 0, longitude: Number(lon) || 0 } : undefined,
      timeoutMs: BigInt(Math.max(0, timeout) * 1000),
      replicas,
    };
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    setDone("");
    try {
      // A request id makes a double click or a retried request one task.
      const res = await taskApi.submitTask({ spec: spec(), requestId: crypto.randomUUID() });
      tasks.put(res.task);
      setDone(res.task?.id ?? "");
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const argLabel = { echo: "Text to echo", sleepMs: "Milliseconds to sleep", hashRounds: "Hash rounds", fail: "Failure message", exec: "" }[kind];

  return (
    <details className="card" open>
      <summary>
        <h2 className="inline">Submit a task</h2>
      </summary>
      <form className="submit-form" onSubmit={submit} data-testid="task-submit-form" aria-label="Submit a task">
        <fieldset>
          <legend>Work</legend>
          <label>
            Name
            <input data-testid="task-form-name" value={name} maxLength={128} onChange={(e) => setName(e.target.value)} />
          </label>
          <label>
            Kind
            <select data-testid="task-form-kind" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
              <option value="echo">builtin: echo</option>
              <option value="sleepMs">builtin: sleep</option>
              <option value="hashRounds">builtin: hash rounds (CPU)</option>
              <option value="fail">builtin: fail</option>
              <option value="exec">exec a program</option>
            </select>
          </label>
          {kind !== "exec" ? (
            <label>
              {argLabel}
              <input data-testid="task-form-arg" value={arg} required={kind !== "fail"} onChange={(e) => setArg(e.target.value)} />
            </label>
          ) : (
            <>
              <label>
                Command
                <input data-testid="task-form-command" value={command} required onChange={(e) => setCommand(e.target.value)} />
              </label>
              <label>
                Arguments (one per line)
                <textarea data-testid="task-form-args" rows={2} value={args} onChange={(e) => setArgs(e.target.value)} />
              </label>
            </>
          )}
        </fieldset>
        <fieldset>
          <legend>Resources</legend>
          <label>
            CPU (millicores)
            <input type="number" min={0} max={1024000} value={cpu} onChange={(e) => setCpu(Number(e.target.value))} />
          </label>
          <label>
            Memory (MiB)
            <input type="number" min={0} value={memory} onChange={(e) => setMemory(Number(e.target.value))} />
          </label>
          <label>
            Storage (MiB)
            <input type="number" min={0} value={storage} onChange={(e) => setStorage(Number(e.target.value))} />
          </label>
          <label>
            GPUs
            <input type="number" min={0} max={64} value={gpus} onChange={(e) => setGpus(Number(e.target.value))} />
          </label>
        </fieldset>
        <fieldset>
          <legend>Placement</legend>
          <label>
            SLA tier
            <select data-testid="task-form-tier" value={tier} onChange={(e) => setTier(Number(e.target.value))}>
              {TIERS.map((t) => (
                <option key={t} value={t}>
                  {tierName(t)}
                </option>
              ))}
            </select>
          </label>
          <label>
            Privacy level
            <select data-testid="task-form-privacy" value={privacy} onChange={(e) => setPrivacy(Number(e.target.value))}>
              {PRIVACY_LEVELS.map((p) => (
                <option key={p} value={p}>
                  {privacyName(p)}
                </option>
              ))}
            </select>
          </label>
          <label>
            Strategy
            <select data-testid="task-form-strategy" value={strategy} onChange={(e) => setStrategy(Number(e.target.value))}>
              {STRATEGIES.map((s) => (
                <option key={s} value={s}>
                  {strategyName(s)}
                </option>
              ))}
            </select>
          </label>
          <label>
            Affinity key
            <input value={affinity} maxLength={256} required={strategy === RoutingStrategy.AFFINITY} onChange={(e) => setAffinity(e.target.value)} />
          </label>
          <label>
            Required labels (key=value, …)
            <input value={required} onChange={(e) => setRequired(e.target.value)} />
          </label>
          <label>
            Origin region
            <input value={originRegion} pattern="[a-z0-9-]*" maxLength={63} placeholder="us-east" onChange={(e) => setOriginRegion(e.target.value)} />
          </label>
          <label>
            Origin latitude
            <input type="number" step="any" min={-90} max={90} value={lat} onChange={(e) => setLat(e.target.value)} />
          </label>
          <label>
            Origin longitude
            <input type="number" step="any" min={-180} max={180} value={lon} onChange={(e) => setLon(e.target.value)} />
          </label>
          <label>
            Timeout (s)
            <input type="number" min={0} max={86400} value={timeout} onChange={(e) => setTimeoutS(Number(e.target.value))} />
          </label>
          <label>
            Replicas (0 = tier default)
            <input type="number" min={0} max={5} value={replicas} onChange={(e) => setReplicas(Number(e.target.value))} />
          </label>
        </fieldset>
        <div className="actions">
          <button type="submit" data-mutating="true" data-testid="task-form-submit" disabled={busy}>
            {busy ? "Submitting…" : "Submit task"}
          </button>
          {done && (
            <p role="status" data-testid="task-form-result">
              Submitted <span className="mono">{done}</span>.
            </p>
          )}
        </div>
        <ErrorText error={error} testId="task-form-error" />
      </form>
    </details>
  );
}
