// Small shared pieces: cards, badges, the load bar, a sparkline.
// Every value is rendered as text (React escapes it): node names, labels and
// task names come from nodes and users and must never become markup.

import { useEffect, useRef, type ReactNode } from "react";

export function Card(props: { testId?: string; title: string; value: ReactNode; hint?: ReactNode }) {
  return (
    <section className="card stat" data-testid={props.testId} aria-label={props.title}>
      <h3>{props.title}</h3>
      <p className="stat-value">{props.value}</p>
      {props.hint !== undefined && <p className="stat-hint">{props.hint}</p>}
    </section>
  );
}

/** A coloured status word; the colour class is derived, the text is shown as is. */
export function Badge(props: { status: string; testId?: string; title?: string }) {
  const cls = `badge badge-${props.status.replace(/[^a-z_-]/g, "")}`;
  return (
    <span className={cls} data-testid={props.testId} title={props.title}>
      {props.status.replace(/_/g, " ")}
    </span>
  );
}

export function LoadBar(props: { value: number; label?: string }) {
  const v = Math.max(0, Math.min(1, props.value || 0));
  const level = v >= 0.85 ? "high" : v >= 0.6 ? "mid" : "low";
  return (
    <span className="loadbar" role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(v * 100)} aria-label={props.label ?? "load"}>
      <span className={`loadbar-fill loadbar-${level}`} style={{ width: `${v * 100}%` }} />
    </span>
  );
}

/**
 * A load chart on a canvas: `points` is [ms, value 0..1, ms, value …].
 * The time axis covers the last `windowMs`.
 */
export function Sparkline(props: { points: number[]; windowMs?: number; label: string; height?: number; testId?: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const { points } = props;
  // Without a fixed window, show what we have: at least 1 min, at most 5.
  const windowMs = props.windowMs ?? Math.max(60_000, Math.min(5 * 60_000, points.length ? Date.now() - points[0]! : 0));
  useEffect(() => {
    const c = ref.current;
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 300;
    const h = c.clientHeight || 80;
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    const g = c.getContext("2d");
    if (!g) return;
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, h);
    const css = getComputedStyle(c);
    g.strokeStyle = css.getPropertyValue("--grid").trim() || "#ccc";
    g.lineWidth = 1;
    for (const f of [0.25, 0.5, 0.75]) {
      g.beginPath();
      g.moveTo(0, Math.round(h * f) + 0.5);
      g.lineTo(w, Math.round(h * f) + 0.5);
      g.stroke();
    }
    if (points.length < 2) return;
    const end = Date.now();
    const x = (t: number) => w - ((end - t) / windowMs) * w;
    const y = (v: number) => h - 2 - Math.max(0, Math.min(1, v)) * (h - 4);
    g.strokeStyle = css.getPropertyValue("--accent").trim() || "#2f6f9f";
    g.lineWidth = 2;
    g.beginPath();
    let started = false;
    for (let i = 0; i < points.length; i += 2) {
      const px = x(points[i]!);
      const py = y(points[i + 1]!);
      if (!started) {
        g.moveTo(px, py);
        started = true;
      } else g.lineTo(px, py);
    }
    // Hold the last value up to now.
    g.lineTo(w, y(points[points.length - 1]!));
    g.stroke();
  });
  const last = points.length >= 2 ? points[points.length - 1]! : undefined;
  return (
    <figure className="sparkline" data-testid={props.testId} data-samples={points.length / 2}>
      <canvas ref={ref} className="sparkline-canvas" role="img" aria-label={`${props.label}: ${last === undefined ? "no samples yet" : `${Math.round(last * 100)} % now`}`} />
      <figcaption>
        {props.label} ({points.length / 2} samples, last {Math.round(windowMs / 60_000)} min)
      </figcaption>
    </figure>
  );
}

export function ErrorText(props: { error: string; testId?: string }) {
  if (!props.error) return null;
  return (
    <p className="error" role="alert" data-testid={props.testId}>
      {props.error}
    </p>
  );
}
