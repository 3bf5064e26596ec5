// The generated fog.v1 clients over grpc-web, from Node, through the gateway:
// what any program holding a stolen or low-privilege token could send,
// without the panel's help.

import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { FleetService } from "../../src/gen/fog/v1/fleet_pb.js";
import { TaskService } from "../../src/gen/fog/v1/task_pb.js";

export function clients(baseUrl: string, token: string) {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const transport = createGrpcWebTransport({ baseUrl, interceptors: [bearer] });
  return { fleet: createClient(FleetService, transport), tasks: createClient(TaskService, transport) };
}

/** The gRPC code a call failed with, or "ok". */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    return Code[ConnectError.from(e).code] ?? "unknown";
  }
}
