import { useState, type FormEvent } from "react";
import { errorText, fleetApi } from "../api/client.js";
import { dateTime } from "../api/format.js";
import type { Timestamp } from "@bufbuild/protobuf/wkt";

/** Parses "a=b, c=d" into labels; the coordinator validates keys and values. */
export function parseLabels(text: string): { key: string; value: string }[] {
  return text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const i = s.indexOf("=");
      return i < 0 ? { key: s, value: "" } : { key: s.slice(0, i).trim(), value: s.slice(i + 1).trim() };
    });
}

/** Admins create a single-use join token for a new node (shown once). */
export function JoinTokenForm() {
  const [nodeName, setNodeName] = useState("");
  const [ttl, setTtl] = useState(3600);
  const [labels, setLabels] = useState("");
  const [token, setToken] = useState<{ token: string; id: string; expires?: Timestamp } | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    setToken(null);
    try {
      const res = await fleetApi.createJoinToken({ nodeName: nodeName.trim(), ttlSeconds: ttl, labels: parseLabels(labels) });
      setToken({ token: res.token, id: res.tokenId, expires: res.expiresAt });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="inline-form" onSubmit={submit} data-testid="join-token-form" aria-label="Create a join token">
      <label>
        Node name (optional)
        <input value={nodeName} pattern="[a-z0-9-]*" maxLength={63} placeholder="edge-7" onChange={(e) => setNodeName(e.target.value)} />
      </label>
      <label>
        Valid for (seconds)
        <input type="number" min={60} max={604800} value={ttl} onChange={(e) => setTtl(Number(e.target.value))} />
      </label>
      <label>
        Labels (key=value, comma-separated)
        <input value={labels} placeholder="fog.io/attested=true, site=lab" onChange={(e) => setLabels(e.target.value)} />
      </label>
      <button type="submit" data-mutating="true" data-testid="join-token-submit" disabled={busy}>
        Create join token
      </button>
      <ErrorLine error={error} />
      {token && (
        <div className="token-out" role="status">
          <p>
            Token <span className="mono">{token.id}</span>, valid until {dateTime(token.expires)}. It is shown only now: give it to the agent
            (<span className="mono">fog-agent join --token …</span>).
          </p>
          <textarea readOnly rows={3} value={token.token} data-testid="join-token-value" aria-label="Join token" onFocus={(e) => e.currentTarget.select()} />
          <button type="button" className="ghost" onClick={() => void navigator.clipboard?.writeText(token.token)}>
            Copy
          </button>
        </div>
      )}
    </form>
  );
}

function ErrorLine(props: { error: string }) {
  return props.error ? (
    <p className="error" role="alert">
      {props.error}
    </p>
  ) : null;
}
