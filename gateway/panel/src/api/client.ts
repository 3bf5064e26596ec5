// Typed clients for the fog.v1 services, generated from proto/fog/v1 and
// spoken as grpc-web to the gateway on the page's own origin.

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AuthService } from "../gen/fog/v1/auth_pb.js";
import { FleetService } from "../gen/fog/v1/fleet_pb.js";
import { SystemService } from "../gen/fog/v1/system_pb.js";
import { TaskService } from "../gen/fog/v1/task_pb.js";
import { TopologyService } from "../gen/fog/v1/topology_pb.js";
import { bearer } from "./session.js";

const transport = createGrpcWebTransport({
  baseUrl: window.location.origin,
  interceptors: [bearer],
});

export const authApi = createClient(AuthService, transport);
export const fleetApi = createClient(FleetService, transport);
export const systemApi = createClient(SystemService, transport);
export const taskApi = createClient(TaskService, transport);
export const topologyApi = createClient(TopologyService, transport);

/** A message for people from any error an API call threw. */
export function errorText(e: unknown): string {
  const err = ConnectError.from(e);
  const what = Code[err.code] ?? "error";
  return `${what.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase()}: ${err.rawMessage}`;
}

export function isCode(e: unknown, code: Code): boolean {
  return ConnectError.from(e).code === code;
}

/** Sleeps, or rejects when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Full-jitter exponential backoff: 0.5 s, 1 s, 2 s … capped at 15 s. */
export function backoff(attempt: number): number {
  const cap = Math.min(15_000, 500 * 2 ** Math.min(attempt, 5));
  return cap / 2 + Math.random() * (cap / 2);
}
