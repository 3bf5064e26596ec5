#!/usr/bin/env python3
"""A Fogplane client in Python: signs in, submits a builtin echo task, waits
for it to finish, streams the topology until it has seen a node, signs out.

Settings, from the environment:
  FOG_COORDINATOR  host:port of the coordinator (an https:// prefix is accepted)
  FOG_CA_FILE      the coordinator's CA certificate (<data-dir>/ca.pem)
  FOG_USERNAME     user to sign in as (operator or admin: submitting is a write)
  FOG_PASSWORD     that user's password
  FOG_TIMEOUT      seconds the whole run may take (default 30)

The text to echo is the first argument (default "hello from python"). Exits 0
when the task succeeded and a node was seen, 1 with a message otherwise.

The fog.v1 stubs are generated from proto/ into gen/ by gen.sh.
"""

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))
from fog.v1 import (  # noqa: E402  (generated into gen/, added to the path above)
    auth_pb2,
    auth_pb2_grpc,
    fleet_pb2,
    task_pb2,
    task_pb2_grpc,
    topology_pb2,
    topology_pb2_grpc,
)

TERMINAL = {task_pb2.TASK_STATE_SUCCEEDED, task_pb2.TASK_STATE_FAILED, task_pb2.TASK_STATE_CANCELLED}


def env(name: str, default: str | None = None) -> str:
    """A setting from the environment; exits if it is missing."""
    value = os.environ.get(name, default)
    if not value:
        sys.exit(f"error: set {name} (see the top of {Path(__file__).name})")
    return value


def short(enum, value: int) -> str:
    """An enum value for people: TASK_STATE_SUCCEEDED -> succeeded."""
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return enum.Name(value).removeprefix(prefix).lower()


def describe(err: grpc.RpcError) -> str:
    """A failed call's code and message, with the google.rpc details the
    coordinator attaches: the fields a bad request got wrong (BadRequest) and,
    when over a rate limit, how long to wait before retrying (RetryInfo)."""
    text = f"{err.code().name}: {err.details()}"
    status = rpc_status.from_call(err)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            text += "".join(f"\n  field {v.field}: {v.description}" for v in bad_request.field_violations)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            text += f"\n  retry after {retry.retry_delay.ToTimedelta().total_seconds():.3f} s"
    return text


@contextmanager
def rpc(what: str):
    """Turns a failed call inside the block into exit 1 with a clear message."""
    try:
        yield
    except grpc.RpcError as err:
        sys.exit(f"error: {what}: {describe(err)}")


class Deadline:
    """One deadline for the whole run; every call gets the time that is left,
    so no call, stream included, can outlive it."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        # Never 0: gRPC then fails the call with DEADLINE_EXCEEDED, as wanted.
        return max(self.end - time.monotonic(), 0.001)


def run_task(channel: grpc.Channel, bearer: grpc.CallCredentials, deadline: Deadline, text: str) -> None:
    """Submits a builtin echo task, follows it with WatchTasks until it ends,
    and prints its result. Exits 1 unless it succeeded."""
    tasks = task_pb2_grpc.TaskServiceStub(channel)
    spec = task_pb2.TaskSpec(name="python-client", builtin=task_pb2.BuiltinTask(echo=text))
    with rpc("SubmitTask"):
        task = tasks.SubmitTask(task_pb2.SubmitTaskRequest(spec=spec), timeout=deadline.left(), credentials=bearer).task
    print(f"submitted task {task.id}: echo {text!r}")

    # initial_state sends the task's current state first, so a task that
    # finished before the watch started is not missed.
    request = task_pb2.WatchTasksRequest(task_ids=[task.id], initial_state=True)
    with rpc("WatchTasks"):
        watch = tasks.WatchTasks(request, timeout=deadline.left(), credentials=bearer)
        for event in watch:
            if event.lagged:  # events were dropped: read the task again
                get = task_pb2.GetTaskRequest(task_id=task.id)
                with rpc("GetTask"):
                    event.task.CopyFrom(tasks.GetTask(get, timeout=deadline.left(), credentials=bearer).task)
            if event.task.id == task.id and event.task.state in TERMINAL:
                task = event.task
                break
        else:
            sys.exit(f"error: WatchTasks ended before task {task.id} finished")
        watch.cancel()

    state = short(task_pb2.TaskState, task.state)
    if task.state != task_pb2.TASK_STATE_SUCCEEDED:
        sys.exit(f"error: task {task.id} {state}: {task.error}")
    node = next(a.node_id for a in task.attempts if a.attempt == task.accepted_attempt)
    print(f"task {task.id} {state} on node {node}: {task.output.stdout.decode(errors='replace')}")


def watch_topology(channel: grpc.Channel, bearer: grpc.CallCredentials, deadline: Deadline) -> None:
    """Streams the topology until the view is complete (the snapshot's last
    chunk has arrived) and has at least one node, then prints the nodes."""
    topology = topology_pb2_grpc.TopologyServiceStub(channel)
    request = topology_pb2.WatchTopologyRequest(detail=topology_pb2.TOPOLOGY_DETAIL_NODE_STATUS)
    nodes: dict[str, topology_pb2.TopologyNode] = {}
    synced = False
    with rpc("WatchTopology"):
        watch = topology.WatchTopology(request, timeout=deadline.left(), credentials=bearer)
        for message in watch:
            kind = message.WhichOneof("event")
            if kind == "snapshot":  # the first one, or a resync: replace the view
                if message.snapshot.first:
                    nodes.clear()
                    synced = False
                nodes.update((n.id, n) for n in message.snapshot.nodes)
                synced = synced or message.snapshot.last
            elif kind == "node":
                if message.node.removed:
                    nodes.pop(message.node.node.id, None)
                else:
                    nodes[message.node.node.id] = message.node.node
            if synced and nodes:
                break
        else:
            sys.exit("error: WatchTopology ended before a node was seen")
        watch.cancel()

    print(f"topology at revision {message.revision}: {len(nodes)} node(s)")
    for node in sorted(nodes.values(), key=lambda n: n.id):
        status = short(fleet_pb2.NodeStatus, node.status)
        print(f"  {node.id} {status} region={node.region or '-'} load={node.load:.2f}")


def main() -> None:
    target = env("FOG_COORDINATOR").removeprefix("https://")
    ca_file = env("FOG_CA_FILE")
    username, password = env("FOG_USERNAME"), env("FOG_PASSWORD")
    try:
        deadline = Deadline(float(env("FOG_TIMEOUT", "30")))
    except ValueError:
        sys.exit("error: FOG_TIMEOUT must be a number of seconds")
    text = sys.argv[1] if len(sys.argv) > 1 else "hello from python"

    # TLS verified against the coordinator's own CA. No client certificate:
    # those are for nodes; people and programs present a bearer token.
    try:
        ca = Path(ca_file).read_bytes()
    except OSError as err:
        sys.exit(f"error: FOG_CA_FILE: {err}")
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    with grpc.secure_channel(target, credentials) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        with rpc("SignIn"):
            signed_in = auth.SignIn(
                auth_pb2.SignInRequest(username=username, password=password), timeout=deadline.left()
            )
        print(f"signed in as {username} (role {short(auth_pb2.Role, signed_in.role)})")
        # Sends `authorization: Bearer <access token>` with each call it is given to.
        bearer = grpc.access_token_call_credentials(signed_in.tokens.access_token)

        run_task(channel, bearer, deadline, text)
        watch_topology(channel, bearer, deadline)

        # Ends the sign-in session: its access and refresh tokens stop working.
        with rpc("SignOut"):
            auth.SignOut(auth_pb2.SignOutRequest(refresh_token=signed_in.tokens.refresh_token), timeout=deadline.left())
        print("signed out")


if __name__ == "__main__":
    main()
