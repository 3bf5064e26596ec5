#!/usr/bin/env python3
"""A minimal OTLP/gRPC trace collector for deploy/check/smoke.sh (needs grpcio,
which deploy/check.sh installs in its venv; the protobuf is decoded by hand).

    otlp_collector.py serve PORT_FILE SPANS_FILE [CERT KEY]
        listens on 127.0.0.1 (a free port, written to PORT_FILE) and appends
        every span it is sent to SPANS_FILE, one JSON object per line:
        service (the resource's service.name), trace, span, parent, name;
        with CERT and KEY (PEM) also over TLS on a second port, written to
        PORT_FILE.tls
    otlp_collector.py check SPANS_FILE TRACE_ID PARENT_SPAN_ID NAME:SERVICE...
        exits 0 when the trace holds the spans named, each the child of the one
        before (the first: of PARENT_SPAN_ID) and sent by the service given;
        else prints what it has and exits 1
"""

from __future__ import annotations

import json
import os
import sys
import threading
from concurrent import futures


def fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def spans(request: bytes):
    """The spans of an ExportTraceServiceRequest (opentelemetry/proto/collector/trace/v1)."""
    for num, _, rs in fields(request):  # 1: ResourceSpans
        if num != 1:
            continue
        service = ""
        for n, _, v in fields(rs):
            if n == 1:  # Resource: 1 = attributes (KeyValue: 1 key, 2 AnyValue: 1 string_value)
                for a, _, kv in fields(v):
                    if a != 1:
                        continue
                    kv = {k: x for k, _, x in fields(kv)}
                    if kv.get(1) == b"service.name":
                        service = {k: x for k, _, x in fields(kv.get(2, b""))}.get(1, b"").decode()
            elif n == 2:  # ScopeSpans: 2 = spans
                for s_num, _, span in fields(v):
                    if s_num != 2:
                        continue
                    f = {k: x for k, _, x in fields(span)}
                    yield {
                        "service": service,
                        "trace": f.get(1, b"").hex(),
                        "span": f.get(2, b"").hex(),
                        "parent": f.get(4, b"").hex(),
                        "name": f.get(5, b"").decode(),
                    }


def serve(port_file: str, spans_file: str, tls: tuple[str, str] | None = None) -> None:
    import grpc

    lock = threading.Lock()

    def export(request: bytes, context) -> bytes:
        with lock, open(spans_file, "a") as out:
            for s in spans(request):
                out.write(json.dumps(s) + "\n")
        return b""  # an empty ExportTraceServiceResponse

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(export)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    if tls:
        cert, key = (open(p, "rb").read() for p in tls)
        tls_port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
        with open(port_file + ".tls.tmp", "w") as f:
            f.write(str(tls_port))
        os.replace(port_file + ".tls.tmp", port_file + ".tls")
    server.start()
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(port_file + ".tmp", port_file)
    server.wait_for_termination()


def check(spans_file: str, trace: str, parent: str, chain: list[str]) -> int:
    try:
        got = [json.loads(line) for line in open(spans_file)]
    except FileNotFoundError:
        got = []
    got = [s for s in got if s["trace"] == trace]
    for item in chain:
        name, service = item.split(":", 1)
        match = [s for s in got if s["name"] == name and s["parent"] == parent and s["service"] == service]
        if not match:
            print(f"  no span {name!r} from {service} with parent {parent} in trace {trace}; have:")
            for s in got:
                print(f"    {s['service']:16} {s['name']:32} span {s['span']} parent {s['parent']}")
            return 1
        parent = match[0]["span"]
    return 0


def main() -> None:
    if len(sys.argv) in (4, 6) and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], (sys.argv[4], sys.argv[5]) if len(sys.argv) == 6 else None)
    elif len(sys.argv) >= 5 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]))
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
