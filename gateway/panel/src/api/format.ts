// Names for people (and for data-testid suffixes) of the generated enums,
// and small number/time formatters. Everything here returns plain strings that
// React renders as text, never as HTML.

import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { NodeType, PowerMode, PrivacyLevel, RoutingStrategy, SlaTier } from "../gen/fog/v1/common_pb.js";
import { Liveness, NodeStatus } from "../gen/fog/v1/fleet_pb.js";
import { ComponentStatus } from "../gen/fog/v1/system_pb.js";
import { AttemptState, TaskState } from "../gen/fog/v1/task_pb.js";

/** `NodeStatus.MAINTENANCE` → "maintenance"; `NodeType.EDGE_DEVICE` → "edge_device". */
export function enumName<E extends Record<number, string>>(e: E, v: number): string {
  const n = e[v];
  return typeof n === "string" ? n.toLowerCase() : String(v);
}

export const nodeStatusName = (s: NodeStatus) => (s === NodeStatus.UNSPECIFIED ? "unknown" : enumName(NodeStatus, s));
export const nodeTypeName = (t: NodeType) => (t === NodeType.UNSPECIFIED ? "compute_node" : enumName(NodeType, t));
export const livenessName = (l: Liveness) => (l === Liveness.UNSPECIFIED ? "not connected yet" : enumName(Liveness, l));
export const powerModeName = (p: PowerMode) =>
  p === PowerMode.UNSPECIFIED ? "performance (not reported)" : enumName(PowerMode, p).replace("_", "-");
export const componentStatusName = (s: ComponentStatus) =>
  s === ComponentStatus.UNSPECIFIED ? "unknown" : enumName(ComponentStatus, s);
export const taskStateName = (s: TaskState) => enumName(TaskState, s);
export const attemptStateName = (s: AttemptState) => enumName(AttemptState, s).replace("_", " ");
export const tierName = (t: SlaTier) => (t === SlaTier.UNSPECIFIED ? "bronze" : enumName(SlaTier, t));
export const privacyName = (p: PrivacyLevel) => (p === PrivacyLevel.UNSPECIFIED ? "public" : enumName(PrivacyLevel, p));
export const strategyName = (s: RoutingStrategy) =>
  (s === RoutingStrategy.UNSPECIFIED ? "least_loaded" : enumName(RoutingStrategy, s)).replace("_", "-");

export const NODE_STATUSES = [
  NodeStatus.ACTIVE,
  NodeStatus.IDLE,
  NodeStatus.BUSY,
  NodeStatus.SUSPECT,
  NodeStatus.OFFLINE,
  NodeStatus.MAINTENANCE,
] as const;
export const NODE_TYPES = [
  NodeType.EDGE_DEVICE,
  NodeType.RELAY_NODE,
  NodeType.MIXNODE,
  NodeType.COMPUTE_NODE,
  NodeType.GATEWAY,
] as const;
export const TIERS = [SlaTier.PLATINUM, SlaTier.GOLD, SlaTier.SILVER, SlaTier.BRONZE] as const;
export const PRIVACY_LEVELS = [
  PrivacyLevel.PUBLIC,
  PrivacyLevel.PRIVATE,
  PrivacyLevel.CONFIDENTIAL,
  PrivacyLevel.SECRET,
] as const;
export const STRATEGIES = [
  RoutingStrategy.LEAST_LOADED,
  RoutingStrategy.ROUND_ROBIN,
  RoutingStrategy.AFFINITY,
  RoutingStrategy.PROXIMITY,
  RoutingStrategy.PRIVACY_AWARE,
] as const;

/** Healthy statuses: the node heartbeats and can be given work. */
export function isHealthy(s: NodeStatus): boolean {
  return s === NodeStatus.ACTIVE || s === NodeStatus.IDLE || s === NodeStatus.BUSY;
}

export function isTerminal(s: TaskState): boolean {
  return s === TaskState.SUCCEEDED || s === TaskState.FAILED || s === TaskState.CANCELLED;
}

export function tsMs(t: Timestamp | undefined): number | undefined {
  return t ? timestampDate(t).getTime() : undefined;
}

export function ago(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A session certificate's expiry: absolute time and how long is left. */
export function certExpiry(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined) return "no certificate (not connected, or the coordinator runs without mTLS)";
  const left = Math.round((ms - now) / 1000);
  const when = new Date(ms).toLocaleString();
  return left <= 0 ? `${when} (expired)` : `${when} (in ${duration(left)})`;
}

export function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  return `${m} min ${Math.floor(seconds % 60)} s`;
}

export function pct(x: number): string {
  return `${Math.round(x * 100)} %`;
}

export function cores(millis: number): string {
  return `${(millis / 1000).toLocaleString(undefined, { maximumFractionDigits: 1 })} cores`;
}

export function mib(mb: bigint | number): string {
  const n = Number(mb);
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} TiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} GiB`;
  return `${n} MiB`;
}

export function dateTime(t: Timestamp | undefined): string {
  return t ? timestampDate(t).toLocaleString() : "—";
}
