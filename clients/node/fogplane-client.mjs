#!/usr/bin/env node
/**
 * A Fogplane client in Node: signs in, submits a builtin echo task, waits for
 * it to finish, streams the topology until it has seen a node, signs out.
 *
 * Settings, from the environment:
 *   FOG_COORDINATOR  host:port of the coordinator (an https:// prefix is accepted)
 *   FOG_CA_FILE      the coordinator's CA certificate (<data-dir>/ca.pem)
 *   FOG_USERNAME     user to sign in as (operator or admin: submitting is a write)
 *   FOG_PASSWORD     that user's password
 *   FOG_TIMEOUT      seconds the whole run may take (default 30)
 *
 * The text to echo is the first argument (default "hello from node"). Exits 0
 * when the task succeeded and a node was seen, 1 with a message otherwise.
 *
 * The fog.v1 contract is read from proto/ at run time by @grpc/proto-loader:
 * no generated code to keep in step with it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

// Enums as their names, 64-bit integers as strings, fields in camelCase, and
// for each oneof a field naming its member that is set (e.g. `event`).
const fog = grpc.loadPackageDefinition(
  protoLoader.loadSync(['fog/v1/auth.proto', 'fog/v1/task.proto', 'fog/v1/topology.proto'], {
    includeDirs: [fileURLToPath(new URL('../../proto/', import.meta.url))],
    enums: String,
    longs: String,
    defaults: true,
    oneofs: true,
  }),
).fog.v1;

// google.rpc.Status and the details the coordinator attaches to it, with the
// field numbers of googleapis' google/rpc/status.proto and error_details.proto
// (only the fields read here; Any and Duration as on the wire).
const rpcTypes = protobuf.parse(`
  syntax = "proto3";
  message Any { string type_url = 1; bytes value = 2; }
  message Duration { int64 seconds = 1; int32 nanos = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message FieldViolation { string field = 1; string description = 2; }
  message BadRequest { repeated FieldViolation field_violations = 1; }
  message RetryInfo { Duration retry_delay = 1; }
`).root;
const [Status, BadRequest, RetryInfo] = ['Status', 'BadRequest', 'RetryInfo'].map((t) => rpcTypes.lookupType(t));

/** A failure to report: exit 1 with its message. */
class Failure extends Error {}

/** A setting from the environment; fails if it is missing. */
function env(name, fallback) {
  const value = process.env[name] || fallback;
  if (!value) throw new Failure(`set ${name} (see the top of fogplane-client.mjs)`);
  return value;
}

/** The file a setting names; fails clearly if it cannot be read. */
function fileOf(name) {
  const path = env(name);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Failure(`${name}: ${err.message}`);
  }
}

/** An enum name for people: short('TASK_STATE_SUCCEEDED', 'TASK_STATE_') is 'succeeded'. */
const short = (name, prefix) => name.slice(prefix.length).toLowerCase();

/**
 * A failed call's code and message, with the google.rpc details the
 * coordinator attaches: the fields a bad request got wrong (BadRequest) and,
 * when over a rate limit, how long to wait before retrying (RetryInfo).
 */
function describe(err) {
  let text = `${grpc.status[err.code]}: ${err.details}`;
  const [details] = err.metadata?.get('grpc-status-details-bin') ?? [];
  for (const { typeUrl, value } of details ? Status.decode(details).details : []) {
    if (typeUrl.endsWith('/google.rpc.BadRequest')) {
      for (const v of BadRequest.decode(value).fieldViolations) text += `\n  field ${v.field}: ${v.description}`;
    } else if (typeUrl.endsWith('/google.rpc.RetryInfo')) {
      const { seconds = 0, nanos = 0 } = RetryInfo.toObject(RetryInfo.decode(value), { longs: Number }).retryDelay ?? {};
      text += `\n  retry after ${(seconds + nanos / 1e9).toFixed(3)} s`;
    }
  }
  return text;
}

/** Calls a unary method; a failed call becomes a Failure naming the method. */
function unary(client, method, request, options) {
  return new Promise((resolve, reject) => {
    client[method](request, options, (err, response) =>
      err ? reject(new Failure(`${method}: ${describe(err)}`)) : resolve(response),
    );
  });
}

/** Reads a server stream until `done(message)` is true, then cancels it. */
async function follow(call, method, done) {
  try {
    for await (const message of call) {
      if (await done(message)) {
        call.cancel();
        return message;
      }
    }
  } catch (err) {
    // A gRPC status carries metadata; anything else is rethrown as it is.
    throw err.metadata instanceof grpc.Metadata ? new Failure(`${method}: ${describe(err)}`) : err;
  }
  throw new Failure(`${method} ended early`);
}

/**
 * Submits a builtin echo task, follows it with WatchTasks until it ends, and
 * prints its result. Fails unless it succeeded.
 */
async function runTask(tasks, options, text) {
  const spec = { name: 'node-client', builtin: { echo: text } };
  let { task } = await unary(tasks, 'SubmitTask', { spec }, options);
  console.log(`submitted task ${task.id}: echo ${JSON.stringify(text)}`);

  const terminal = ['TASK_STATE_SUCCEEDED', 'TASK_STATE_FAILED', 'TASK_STATE_CANCELLED'];
  // initialState sends the task's current state first, so a task that
  // finished before the watch started is not missed.
  const watch = tasks.WatchTasks({ taskIds: [task.id], initialState: true }, options);
  await follow(watch, 'WatchTasks', async (event) => {
    let latest = event.task;
    if (event.lagged) {
      // Events were dropped: read the task again.
      ({ task: latest } = await unary(tasks, 'GetTask', { taskId: task.id }, options));
    }
    if (latest?.id !== task.id || !terminal.includes(latest.state)) return false;
    task = latest;
    return true;
  });

  const state = short(task.state, 'TASK_STATE_');
  if (task.state !== 'TASK_STATE_SUCCEEDED') throw new Failure(`task ${task.id} ${state}: ${task.error}`);
  const node = task.attempts.find((a) => a.attempt === task.acceptedAttempt).nodeId;
  console.log(`task ${task.id} ${state} on node ${node}: ${task.output.stdout.toString()}`);
}

/**
 * Streams the topology until the view is complete (the snapshot's last chunk
 * has arrived) and has at least one node, then prints the nodes.
 */
async function watchTopology(topology, options) {
  const nodes = new Map();
  let synced = false;
  const watch = topology.WatchTopology({ detail: 'TOPOLOGY_DETAIL_NODE_STATUS' }, options);
  const last = await follow(watch, 'WatchTopology', (message) => {
    if (message.event === 'snapshot') {
      // The first one, or a resync: replace the view.
      if (message.snapshot.first) {
        nodes.clear();
        synced = false;
      }
      for (const n of message.snapshot.nodes) nodes.set(n.id, n);
      synced ||= message.snapshot.last;
    } else if (message.event === 'node') {
      const { node, removed } = message.node;
      if (removed) nodes.delete(node.id);
      else nodes.set(node.id, node);
    }
    return synced && nodes.size > 0;
  });

  console.log(`topology at revision ${last.revision}: ${nodes.size} node(s)`);
  for (const n of [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    const status = short(n.status, 'NODE_STATUS_');
    console.log(`  ${n.id} ${status} region=${n.region || '-'} load=${n.load.toFixed(2)}`);
  }
}

async function main() {
  const target = env('FOG_COORDINATOR').replace(/^https:\/\//, '');
  const ca = fileOf('FOG_CA_FILE');
  const username = env('FOG_USERNAME');
  const password = env('FOG_PASSWORD');
  // One deadline for the whole run: every call, stream included, ends by it.
  const seconds = Number(env('FOG_TIMEOUT', '30'));
  if (!(seconds > 0)) throw new Failure('FOG_TIMEOUT must be a number of seconds');
  const deadline = new Date(Date.now() + seconds * 1000);
  const text = process.argv[2] ?? 'hello from node';

  // TLS verified against the coordinator's own CA. No client certificate:
  // those are for nodes; people and programs present a bearer token.
  const tls = grpc.credentials.createSsl(ca);
  const auth = new fog.AuthService(target, tls);
  // The other services' clients share its channel (one connection).
  const shared = { channelOverride: auth.getChannel() };
  try {
    const signedIn = await unary(auth, 'SignIn', { username, password }, { deadline });
    console.log(`signed in as ${username} (role ${short(signedIn.role, 'ROLE_')})`);
    // Sends `authorization: Bearer <access token>` with each call it is given to.
    const bearer = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${signedIn.tokens.accessToken}`);
      callback(null, metadata);
    });
    const options = { deadline, credentials: bearer };

    await runTask(new fog.TaskService(target, tls, shared), options, text);
    await watchTopology(new fog.TopologyService(target, tls, shared), options);

    // Ends the sign-in session: its access and refresh tokens stop working.
    await unary(auth, 'SignOut', { refreshToken: signedIn.tokens.refreshToken }, { deadline });
    console.log('signed out');
  } finally {
    auth.close();
  }
}

main().catch((err) => {
  console.error(`error: ${err instanceof Failure ? err.message : err.stack}`);
  process.exitCode = 1;
});
