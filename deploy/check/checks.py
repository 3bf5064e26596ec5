#!/usr/bin/env python3
"""Static checks of deploy/ (run by deploy/check.sh, inside its venv).

    checks.py yaml                 every non-template YAML file parses; agent.toml keys
                                   (commented-out `#key = value` examples too)
    checks.py dockerfiles          USER, stages, COPY sources vs the per-Dockerfile ignore files
    checks.py compose JSON ETCD_JSON
                                   structure of `docker compose config --format json`, without
                                   profiles and with the `etcd` profile (FOGPLANE_STORE=etcd,
                                   FOGPLANE_OTLP_ENDPOINT=https://…)
    checks.py helm CHART           lint, render with each ci/*-values.yaml, validate the objects;
                                   tracing.otlpEndpoint reaches the coordinator and the agents;
                                   store.* reaches the coordinator and its init container
    checks.py flags BIN_DIR        every fog flag and FOG_*/OTEL_* variable used exists (--help);
                                   etcd flags named in the guide exist in `etcd --help` (if any)
    checks.py metrics SCRAPE...    the metric names of docs/OPERATIONS.md's "Metrics, traces and
                                   logs" are those of the scrapes (run by smoke.sh)

Each prints what it checked and exits 1 on the first list of failures.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOC = ROOT / "docs" / "OPERATIONS.md"

# Flags and variables documented as planned (not in any binary yet): allowed,
# reported, and flagged as soon as a binary has them. Empty now that the
# coordinator's --metrics-listen exists.
PLANNED: set[str] = set()

failures: list[str] = []


def fail(msg: str) -> None:
    failures.append(msg)


def done(what: str) -> None:
    if failures:
        for f in failures:
            print(f"  FAIL {f}")
        print(f"{what}: {len(failures)} problem(s)")
        sys.exit(1)
    print(f"{what}: ok")


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


# --------------------------------------------------------------------------
# yaml


def yaml_files() -> list[Path]:
    out = []
    for p in sorted(DEPLOY.rglob("*")):
        if ".cache" in p.parts or not p.is_file():
            continue
        if p.suffix in (".yaml", ".yml") and "templates" not in p.parts:
            out.append(p)
    return out


def check_yaml() -> None:
    import yaml

    files = yaml_files()
    for p in files:
        try:
            docs = list(yaml.safe_load_all(p.read_text()))
        except yaml.YAMLError as e:
            fail(f"{rel(p)}: {e}")
            continue
        if not any(d is not None for d in docs):
            fail(f"{rel(p)}: empty")
        print(f"  parsed {rel(p)} ({len(docs)} document(s))")
    # agent.toml: TOML, and only keys fog-agent knows (deny_unknown_fields).
    known = agent_toml_keys()
    for p in sorted(DEPLOY.rglob("*.toml")):
        if ".cache" in p.parts:
            continue
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as e:
            fail(f"{rel(p)}: {e}")
            continue
        # Commented-out settings (`#key = value`, no space after `#`) are
        # examples to uncomment: they must be valid TOML and known keys too.
        examples = re.findall(r"^#([a-z][a-z0-9_]*\s*=.*)$", p.read_text(), re.M)
        try:
            example_keys = list(tomllib.loads("\n".join(examples)))
        except tomllib.TOMLDecodeError as e:
            fail(f"{rel(p)}: a commented-out example is not TOML: {e}")
            example_keys = []
        if known:
            for k in list(data) + example_keys:
                if k not in known:
                    fail(f"{rel(p)}: key {k!r} is not a fog-agent setting")
        print(f"  parsed {rel(p)} ({len(data)} keys, {len(example_keys)} commented-out examples)")
    done(f"YAML/TOML ({len(files)} YAML files)")


def agent_toml_keys() -> set[str]:
    """Keys of fog-agent's TOML: the fields of node-agent/src/config.rs `Layer`."""
    src = ROOT / "node-agent" / "src" / "config.rs"
    if not src.exists():
        return set()
    text = src.read_text()
    m = re.search(r"pub struct Layer \{(.*?)\n\}", text, re.S)
    return set(re.findall(r"pub (\w+): Option<", m.group(1))) if m else set()


# --------------------------------------------------------------------------
# dockerfiles


def dockerignore_rules(path: Path) -> list[tuple[bool, str]]:
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pat = line[1:] if neg else line
        pat = os.path.normpath(pat.strip("/"))
        rules.append((neg, pat))
    return rules


def pattern_matches(pat: str, path: str) -> bool:
    """Docker's matching: a pattern matches a path or any of its parents;
    `**` matches any number of directories."""
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        regex = "^" + re.escape(pat).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]") + "$"
        if re.match(regex, prefix):
            return True
    return False


def included(rules: list[tuple[bool, str]], path: str) -> bool:
    excluded = False
    for neg, pat in rules:
        if pattern_matches(pat, path):
            excluded = not neg
    return not excluded


def repo_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return [line for line in out.splitlines() if line]


def workspace_members() -> list[str]:
    data = tomllib.loads((ROOT / "Cargo.toml").read_text())
    return data["workspace"]["members"]


def check_dockerfiles() -> None:
    files = repo_files()
    members = workspace_members()
    for df in sorted((DEPLOY / "docker").glob("*.Dockerfile")):
        name = df.name.removesuffix(".Dockerfile")
        ignore = df.with_name(df.name + ".dockerignore")
        if not ignore.exists():
            fail(f"{rel(df)}: no {ignore.name} next to it")
            continue
        rules = dockerignore_rules(ignore)
        context = [f for f in files if included(rules, f)]
        text = df.read_text()
        lines = text.splitlines()
        # Final stage runs as a numeric non-root user.
        stages = [i for i, l in enumerate(lines) if l.startswith("FROM ")]
        final = lines[stages[-1]:] if stages else lines
        users = [l.split()[1] for l in final if l.startswith("USER ")]
        if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
            fail(f"{rel(df)}: the final stage must end with a numeric non-root USER (found {users})")
        if not any(l.startswith("ENTRYPOINT ") for l in final):
            fail(f"{rel(df)}: no ENTRYPOINT in the final stage")
        build = "cargo build --profile agent --locked" if name == "agent" else "cargo build --release --locked"
        if build not in text:
            fail(f"{rel(df)}: expected `{build}`")
        # Every COPY source from the context is in the context.
        for l in lines:
            if not l.startswith("COPY ") or "--from=" in l:
                continue
            args = [a for a in shlex.split(l)[1:] if not a.startswith("--")]
            for src in args[:-1]:
                src = src.rstrip("/")
                if src == ".":
                    continue
                if not any(f == src or f.startswith(src + "/") for f in context):
                    fail(f"{rel(df)}: COPY {src} is not in the build context ({ignore.name} excludes it or it does not exist)")
        # What the Rust build needs is there; what must stay out stays out.
        need = ["Cargo.toml", "Cargo.lock"] + [f"{m}/Cargo.toml" for m in members]
        if name == "gateway":
            need += ["gateway/panel/package.json", "gateway/panel/package-lock.json", "gateway/panel/buf.gen.yaml", "proto/buf.yaml"]
        for n in need:
            if n in files and n not in context:
                fail(f"{rel(df)}: {n} is excluded from the build context")
        for f in context + ["target/release/fog-agent", "proto/node_modules/x/package.json",
                            "gateway/panel/node_modules/x/package.json", ".git/HEAD", ".fog-dev/data/fog.redb",
                            "deploy/.cache/venv/bin/python", "gateway/panel/dist/index.html"]:
            if not included(rules, f):
                continue
            if re.search(r"(^|/)(target|node_modules|\.git|\.fog-dev)(/|$)", f) or f.startswith(("deploy/.cache", "gateway/panel/dist")):
                fail(f"{rel(df)}: {f} would be sent to the builder")
        print(f"  {rel(df)}: final USER {users[-1] if users else '-'}, {len(context)} files in the build context")
    done("Dockerfiles")


# --------------------------------------------------------------------------
# compose


ETCD_FLAGS_NEEDED = {"--max-txn-ops": 16384, "--max-request-bytes": 33554432}


def check_compose(path: str, etcd_path: str) -> None:
    check_compose_project(path, etcd=False)
    check_compose_project(etcd_path, etcd=True)
    done("compose structure (default, and the etcd profile)")


def check_compose_project(path: str, etcd: bool) -> None:
    """One `docker compose config --format json`: the default project, or the
    `etcd` profile rendered with FOGPLANE_STORE=etcd and an https:// FOGPLANE_OTLP_ENDPOINT."""
    cfg = json.loads(Path(path).read_text())
    services = cfg["services"]
    what = "etcd profile" if etcd else "default"
    want = {"init", "coordinator", "bootstrap", "gateway", "agent-1", "agent-2", "agent-3"}
    if etcd:
        want |= {"etcd", "etcd-store-check"}
    if set(services) != want:
        fail(f"{what}: services are {sorted(services)}, expected {sorted(want)}")
    for name, s in services.items():
        if not s.get("read_only"):
            fail(f"{name}: read_only is not set")
        if "ALL" not in (s.get("cap_drop") or []):
            fail(f"{name}: cap_drop ALL missing")
        if "no-new-privileges:true" not in (s.get("security_opt") or []):
            fail(f"{name}: no-new-privileges missing")
        for p in s.get("ports") or []:
            if p.get("host_ip") not in ("127.0.0.1", "::1"):
                fail(f"{name}: port {p.get('published')} is published on every interface")
    deps = {n: set((s.get("depends_on") or {}).keys()) for n, s in services.items()}
    order = {"coordinator": {"init"}, "bootstrap": {"coordinator"}, "gateway": {"bootstrap"}}
    for n, d in order.items():
        if not d <= deps.get(n, set()):
            fail(f"{n} must depend on {sorted(d)}")
    for i in (1, 2, 3):
        a = services.get(f"agent-{i}", {})
        env = a.get("environment") or {}
        if env.get("FOG_AGENT_NAME") != f"agent-{i}":
            fail(f"agent-{i}: FOG_AGENT_NAME")
        if not env.get("FOGPLANE_JOIN_TOKEN_FILE", "").endswith(f"/agent-{i}"):
            fail(f"agent-{i}: FOGPLANE_JOIN_TOKEN_FILE does not name its own token")
        vols = {v["source"]: v for v in a.get("volumes") or []}
        if f"agent-{i}-state" not in vols:
            fail(f"agent-{i}: no state volume")
        if not vols.get("join-tokens", {}).get("read_only"):
            fail(f"agent-{i}: join-tokens must be mounted read-only")
    nodes = (services.get("bootstrap", {}).get("environment") or {}).get("FOGPLANE_JOIN_NODES", "").split()
    if sorted(nodes) != ["agent-1", "agent-2", "agent-3"]:
        fail(f"bootstrap mints tokens for {nodes}, not the three agents")
    sans = (services.get("coordinator", {}).get("environment") or {}).get("FOG_TLS_SANS", "").split(",")
    if "coordinator" not in sans:
        fail("coordinator: FOG_TLS_SANS must include `coordinator`, the name the others dial")
    for v in (services.get("bootstrap", {}).get("volumes") or []):
        if v["source"] == "coordinator-data" and not v.get("read_only"):
            fail("bootstrap: coordinator-data must be read-only")
    gw = services.get("gateway", {})
    if any(v["source"] in ("coordinator-data", "join-tokens") for v in gw.get("volumes") or []):
        fail("gateway: must see neither the store nor the join tokens")
    check_compose_store(what, services, etcd)
    # Traces: one variable for the coordinator and every agent; empty is off.
    otlp = {n: (s.get("environment") or {}).get(v) for n, s in services.items()
            for v in ("FOG_OTLP_ENDPOINT", "FOG_AGENT_OTLP_ENDPOINT") if v in (s.get("environment") or {})}
    want_otlp = "https://otel-collector:4317" if etcd else ""
    if sorted(otlp) != ["agent-1", "agent-2", "agent-3", "coordinator"] or set(otlp.values()) != {want_otlp}:
        fail(f"{what}: OTLP endpoints {otlp}, expected {want_otlp!r} on the coordinator and the three agents")
    print(f"  {what}: {len(services)} services, volumes: {', '.join(sorted(cfg.get('volumes', {})))}; "
          f"traces {'to ' + want_otlp if want_otlp else 'off (empty)'}")


def check_compose_store(what: str, services: dict, etcd: bool) -> None:
    store = "etcd" if etcd else "redb"
    for n in ("init", "coordinator"):
        env = services.get(n, {}).get("environment") or {}
        if env.get("FOG_STORE") != store:
            fail(f"{what}: {n}: FOG_STORE={env.get('FOG_STORE')!r}, expected {store}")
        deps = services.get(n, {}).get("depends_on") or {}
        if (deps.get("etcd") or {}).get("condition") != "service_healthy" or deps["etcd"].get("required") is not False:
            fail(f"{what}: {n} must wait for a healthy etcd when the profile is on (required: false otherwise)")
        if etcd:
            prefix = env.get("FOG_ETCD_PREFIX", "")
            if env.get("FOG_ETCD_ENDPOINTS") != "http://etcd:2379":
                fail(f"{what}: {n}: FOG_ETCD_ENDPOINTS={env.get('FOG_ETCD_ENDPOINTS')!r}, expected http://etcd:2379")
            if not (len(prefix) > 1 and prefix.startswith("/") and prefix.endswith("/")):
                fail(f"{what}: {n}: FOG_ETCD_PREFIX {prefix!r} must start and end with /")
    guard_dep = (services.get("init", {}).get("depends_on") or {}).get("etcd-store-check") or {}
    if guard_dep.get("condition") != "service_completed_successfully" or guard_dep.get("required") is not False:
        fail(f"{what}: init must wait for etcd-store-check to succeed (required: false)")
    if not etcd:
        return
    e = services["etcd"]
    user = str(e.get("user") or "")
    if not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user):
        fail(f"{what}: etcd must run as a numeric non-root user, not {user!r}")
    args = dict(a.split("=", 1) for a in e.get("command") or [] if a.startswith("--") and "=" in a)
    for flag, least in ETCD_FLAGS_NEEDED.items():
        if int(args.get(flag, "0")) < least:
            fail(f"{what}: etcd needs {flag}={least} (the coordinator commits up to 4,096 mutations at once)")
    if not args.get("--auto-compaction-retention"):
        fail(f"{what}: etcd needs --auto-compaction-retention (the coordinator never compacts)")
    if not any(v["source"] == "etcd-data" for v in e.get("volumes") or []):
        fail(f"{what}: etcd has no etcd-data volume")
    if not args.get("--data-dir", "").startswith(tuple(v["target"] + "/" for v in e.get("volumes") or [])):
        fail(f"{what}: etcd's --data-dir is not on its volume")
    if e.get("ports"):
        fail(f"{what}: etcd must not be published on the host")
    if "etcdctl" not in " ".join((e.get("healthcheck") or {}).get("test") or []):
        fail(f"{what}: etcd needs its etcdctl health check (init and the coordinator wait for it)")
    if args.get("--advertise-client-urls") != "http://etcd:2379":
        fail(f"{what}: etcd advertises {args.get('--advertise-client-urls')!r}, not http://etcd:2379")
    # The guard, run here with sh: refuses the profile unless FOG_STORE=etcd.
    guard = services["etcd-store-check"]
    script = (guard.get("entrypoint") or [])[-1].replace("$$", "$")
    for value, code in (("redb", 64), ("etcd", 0)):
        r = subprocess.run(["sh", "-c", script], env={"FOG_STORE": value, "PATH": os.environ["PATH"]},
                           capture_output=True, text=True)
        if r.returncode != code:
            fail(f"{what}: etcd-store-check with FOG_STORE={value} exited {r.returncode}, expected {code}")
    if (guard.get("environment") or {}).get("FOG_STORE") != "etcd":
        fail(f"{what}: etcd-store-check does not see FOGPLANE_STORE as FOG_STORE")
    print(f"  {what}: init and coordinator on etcd (http://etcd:2379), etcd as {user} with "
          + " ".join(f"{k}={args[k]}" for k in ETCD_FLAGS_NEEDED) + "; etcd-store-check refuses FOG_STORE=redb")


# --------------------------------------------------------------------------
# helm


def check_helm(chart: str) -> None:
    import helm_python as helm
    import kubernetes_validate
    import yaml

    chart_dir = Path(chart)
    values_files = sorted((chart_dir / "ci").glob("*-values.yaml"))
    print(f"  helm SDK {helm.helm_sdk_version()} (helm-python-sdk {helm.helm_c_version()}, libhelm_c)")
    # Default values: the CA is required while the gateway is enabled.
    with helm.Chart.load(chart_dir) as c:
        try:
            c.render(None, name="fog", namespace="edge")
            fail("default values rendered, but must fail: the gateway needs the CA Secret")
        except Exception as e:  # HelmRenderError
            if "cluster CA" not in str(e):
                fail(f"default values failed for another reason: {e}")
            else:
                print("  default values: refused as intended (no CA Secret while the gateway is enabled)")
        nogw = {"gateway": {"enabled": False}}
        for bad, why in (
            ({"coordinator": {"replicas": 2, "ca": {"existingSecret": "x"}}}, "replicas must be 1 with store.backend=redb"),
            ({**nogw, "coordinator": {"replicas": 0}}, "replicas must be at least 1"),
            ({**nogw, "coordinator": {"replicas": 2},
              "store": {"backend": "etcd", "etcd": {"endpoints": ["http://etcd:2379"]}}}, "needs the cluster CA Secret"),
            ({**nogw, "metrics": {"serviceMonitor": {"enabled": True}}}, "needs metrics.enabled"),
            ({**nogw, "tracing": {"otlpEndpoint": "otel:4317"}}, "must be an http:// or https:// URL"),
            ({**nogw, "store": {"backend": "postgres"}}, "store.backend must be redb or etcd"),
            ({**nogw, "store": {"backend": "etcd"}}, "needs store.etcd.endpoints"),
            ({**nogw, "store": {"backend": "etcd", "etcd": {"endpoints": ["https://etcd:2379"]}}}, "needs store.etcd.tlsSecret"),
            ({**nogw, "store": {"backend": "etcd", "etcd": {"endpoints": ["http://etcd:2379"], "tlsSecret": "s"}}},
             "tlsSecret needs https://"),
            ({**nogw, "store": {"backend": "etcd", "etcd": {"endpoints": ["etcd:2379"]}}}, "expected http://host:port"),
            ({**nogw, "store": {"backend": "etcd", "etcd": {"endpoints": ["http://etcd:2379"], "prefix": "/fog"}}},
             "must start and end with /"),
        ):
            try:
                c.render(bad, name="fog", namespace="edge")
                fail(f"values {bad} rendered but must fail ({why})")
            except Exception as e:
                if why not in str(e):
                    fail(f"values {bad} failed for another reason: {e}")
    objects_seen = 0
    for vf in values_files:
        values = yaml.safe_load(vf.read_text()) or {}
        report = helm.lint(chart_dir, values, strict=True, namespace="edge")
        for m in report.get("messages", []):
            if m["severity"] >= 2:
                fail(f"helm lint ({vf.name}): {m['path']}: {m['error']}")
        for e in report.get("errors", []):
            fail(f"helm lint ({vf.name}): {e}")
        with helm.Chart.load(chart_dir) as c:
            try:
                manifests = c.render(values, name="fog", namespace="edge", is_install=True)
            except Exception as e:
                fail(f"render with {vf.name}: {e}")
                continue
        objs = []
        for path, text in sorted(manifests.items()):
            if path.endswith("NOTES.txt"):
                continue
            try:
                docs = [d for d in yaml.safe_load_all(text) if d]
            except yaml.YAMLError as e:
                fail(f"{vf.name}: {path} is not YAML: {e}")
                continue
            objs += [(path, d) for d in docs]
        kinds = []
        for path, o in objs:
            kind = o.get("kind")
            kinds.append(kind)
            if not o.get("apiVersion") or not kind or not o.get("metadata", {}).get("name"):
                fail(f"{vf.name}: {path}: apiVersion, kind and metadata.name are required")
                continue
            if kind == "ServiceMonitor":
                check_service_monitor(vf.name, o, [x for _, x in objs])
                continue
            for kv in ("1.25.0", "1.37.0"):
                try:
                    kubernetes_validate.validate(o, kv, strict=True)
                except Exception as e:
                    msg = str(e).splitlines()[0]
                    fail(f"{vf.name}: {kind}/{o['metadata']['name']} against Kubernetes {kv}: {msg}")
            check_pod_security(vf.name, o)
        check_tracing(vf.name, values, [x for _, x in objs])
        check_store(vf.name, values, [x for _, x in objs])
        check_ha(vf.name, values, [x for _, x in objs])
        objects_seen += len(objs)
        print(f"  {vf.name}: lint ok, {len(objs)} objects ({', '.join(sorted(set(kinds)))}) valid for Kubernetes 1.25 and 1.37")
    done(f"Helm chart ({objects_seen} rendered objects)")


def pod_spec(o: dict) -> dict | None:
    if o.get("kind") in ("StatefulSet", "Deployment", "DaemonSet"):
        return o["spec"]["template"]["spec"]
    return None


def check_pod_security(vf: str, o: dict) -> None:
    spec = pod_spec(o)
    if spec is None:
        return
    name = f"{vf}: {o['kind']}/{o['metadata']['name']}"
    if spec.get("automountServiceAccountToken") is not False:
        fail(f"{name}: automountServiceAccountToken must be false")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(f"{name}: {c['name']}: allowPrivilegeEscalation must be false")
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(f"{name}: {c['name']}: readOnlyRootFilesystem must be true")
        drop = (sc.get("capabilities") or {}).get("drop") or []
        if "ALL" not in drop:
            fail(f"{name}: {c['name']}: capabilities must drop ALL")
        add = (sc.get("capabilities") or {}).get("add") or []
        if add and not (c["name"] == "state-dir" and add == ["CHOWN"]):
            fail(f"{name}: {c['name']}: adds capabilities {add}")
        run_as = sc.get("runAsUser", (spec.get("securityContext") or {}).get("runAsUser"))
        if run_as in (None, 0) and c["name"] != "state-dir":
            fail(f"{name}: {c['name']}: runs as root")


def check_store(vf: str, values: dict, objs: list[dict]) -> None:
    """store.* reaches the coordinator and its init container (the admin goes
    into the same store); redb has its volume claim, etcd none."""
    store = values.get("store") or {}
    backend = store.get("backend", "redb")
    etcd = store.get("etcd") or {}
    want = {"FOG_STORE": backend}
    if backend == "etcd":
        e = etcd.get("endpoints") or []
        want |= {"FOG_ETCD_ENDPOINTS": e if isinstance(e, str) else ",".join(e),
                 "FOG_ETCD_PREFIX": etcd.get("prefix", "/fogplane/")}
        if etcd.get("tlsSecret"):
            want |= {"FOG_ETCD_CA": "/etc/fogplane/etcd/ca.crt", "FOG_ETCD_CERT": "/etc/fogplane/etcd/tls.crt",
                     "FOG_ETCD_KEY": "/etc/fogplane/etcd/tls.key"}
    sts = [o for o in objs if o["kind"] == "StatefulSet"]
    if len(sts) != 1:
        fail(f"{vf}: {len(sts)} StatefulSets, expected the coordinator's")
        return
    spec = sts[0]["spec"]
    pod = spec["template"]["spec"]
    admin = (values.get("coordinator") or {}).get("admin", {}).get("create", True)
    ctrs = {c["name"]: c for c in pod.get("containers", []) + pod.get("initContainers", [])}
    for name in ["coordinator"] + (["init-admin"] if admin else []):
        env = {e["name"]: e.get("value") for e in ctrs.get(name, {}).get("env") or []}
        got = {k: v for k, v in env.items() if k.startswith(("FOG_STORE", "FOG_ETCD_"))}
        if got != want:
            fail(f"{vf}: {name}: store settings {got}, expected {want}")
        mounts = {m["mountPath"]: m["name"] for m in ctrs.get(name, {}).get("volumeMounts") or []}
        if etcd.get("tlsSecret") and mounts.get("/etc/fogplane/etcd") != "etcd-tls":
            fail(f"{vf}: {name}: the etcd client certificate is not mounted at /etc/fogplane/etcd")
    if etcd.get("tlsSecret"):
        secrets = [v.get("secret", {}).get("secretName") for v in pod.get("volumes") or [] if v["name"] == "etcd-tls"]
        if secrets != [etcd["tlsSecret"]]:
            fail(f"{vf}: the etcd-tls volume must come from Secret {etcd['tlsSecret']}, got {secrets}")
    claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates") or []]
    data = [v for v in pod.get("volumes") or [] if v["name"] == "data"]
    if backend == "redb" and (claims != ["data"] or data):
        fail(f"{vf}: redb needs the volume claim `data` (and no `data` volume), got claims {claims}")
    if backend == "etcd" and (claims or [list(v) for v in data] != [["name", "emptyDir"]]):
        fail(f"{vf}: etcd needs no volume claim and an emptyDir `data` (ca.pem), got claims {claims}, volumes {data}")
    print(f"  {vf}: store {backend}" + (f" at {want['FOG_ETCD_ENDPOINTS']} {want['FOG_ETCD_PREFIX']} (no PVC)"
                                        if backend == "etcd" else " on the PVC `data`"))


def check_ha(vf: str, values: dict, objs: list[dict]) -> None:
    """With etcd: every replica runs --ha with its own --advertise-url (its
    pod name under the headless service, also in its certificate), readiness
    is the leader's metrics listener, standbys start in parallel, more than
    one replica updates OnDelete, and the agents list every replica. With
    redb: one replica, none of that."""
    etcd = (values.get("store") or {}).get("backend", "redb") == "etcd"
    replicas = int((values.get("coordinator") or {}).get("replicas", 1))
    sts = next((o for o in objs if o["kind"] == "StatefulSet"), None)
    if sts is None:
        return
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    ctr = next(c for c in pod["containers"] if c["name"] == "coordinator")
    args = ctr.get("args") or []
    env = {e["name"]: e for e in ctr.get("env") or []}
    hl = spec["serviceName"]
    host = f"$(POD_NAME).{hl}.edge.svc"
    if spec.get("replicas") != replicas:
        fail(f"{vf}: StatefulSet replicas {spec.get('replicas')}, values say {replicas}")
    agent_env = {}
    for o in objs:
        if o["kind"] == "DaemonSet":
            for c in o["spec"]["template"]["spec"]["containers"]:
                agent_env = {e["name"]: e.get("value") for e in c.get("env") or []}
    if not etcd:
        if replicas != 1 or "--ha" in args or any(a.startswith("--advertise-url") for a in args):
            fail(f"{vf}: redb must run one replica without --ha/--advertise-url")
        if spec.get("podManagementPolicy") != "OrderedReady" or spec["updateStrategy"]["type"] != "RollingUpdate":
            fail(f"{vf}: redb: OrderedReady and RollingUpdate expected")
        if "FOG_AGENT_COORDINATORS" in agent_env:
            fail(f"{vf}: redb: agents need no replica list")
        print(f"  {vf}: one coordinator (redb), no --ha")
        return
    if "--ha" not in args:
        fail(f"{vf}: etcd: the coordinator must run with --ha")
    want_adv = f"--advertise-url=https://{host}:7443"
    if want_adv not in args:
        fail(f"{vf}: etcd: expected {want_adv} in {args}")
    sans = next((a.split("=", 1)[1].split(",") for a in args if a.startswith("--tls-san=")), [])
    if host not in sans:
        fail(f"{vf}: the serving certificate must name the advertised host {host}: {sans}")
    if (env.get("POD_NAME", {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
        fail(f"{vf}: POD_NAME must come from metadata.name")
    probe = (ctr.get("readinessProbe") or {}).get("httpGet") or {}
    ports = {p["name"]: p["containerPort"] for p in ctr.get("ports") or []}
    if probe.get("port") != "metrics" or "metrics" not in ports or \
            not any(a.startswith("--metrics-listen=") and a.endswith(f":{ports['metrics']}") for a in args):
        fail(f"{vf}: etcd: readiness must be the leader's metrics listener (httpGet on port metrics, --metrics-listen)")
    if spec.get("podManagementPolicy") != "Parallel":
        fail(f"{vf}: etcd: podManagementPolicy must be Parallel (standbys are never Ready)")
    want_update = "OnDelete" if replicas > 1 else "RollingUpdate"
    if spec["updateStrategy"]["type"] != want_update:
        fail(f"{vf}: {replicas} replicas: updateStrategy {spec['updateStrategy']['type']}, expected {want_update}")
    name = sts["metadata"]["name"]
    want_urls = ",".join(f"https://{name}-{i}.{hl}.edge.svc:7443" for i in range(replicas))
    if agent_env and agent_env.get("FOG_AGENT_COORDINATORS") != want_urls:
        fail(f"{vf}: agents' FOG_AGENT_COORDINATORS {agent_env.get('FOG_AGENT_COORDINATORS')!r}, expected {want_urls}")
    print(f"  {vf}: {replicas} coordinator replica(s) with --ha, each advertising {host}:7443; "
          f"readiness = leader (metrics); {spec['podManagementPolicy']}/{want_update}; agents list {want_urls}")


def check_tracing(vf: str, values: dict, objs: list[dict]) -> None:
    """tracing.otlpEndpoint (http:// or https://) sets FOG_OTLP_ENDPOINT on the
    coordinator and FOG_AGENT_OTLP_ENDPOINT on the agents, and nothing at all
    when empty (both binaries take an empty value as off; unset is cleaner)."""
    endpoint = (values.get("tracing") or {}).get("otlpEndpoint") or ""
    want = {("StatefulSet", "coordinator"): "FOG_OTLP_ENDPOINT", ("DaemonSet", "agent"): "FOG_AGENT_OTLP_ENDPOINT"}
    seen = []
    for o in objs:
        spec = pod_spec(o)
        for c in (spec or {}).get("containers", []):
            env = {e["name"]: e.get("value") for e in c.get("env") or []}
            var = want.get((o["kind"], c["name"]))
            if var is None:
                if any("OTLP" in n for n in env):
                    fail(f"{vf}: {o['kind']}/{c['name']} has an OTLP variable")
                continue
            if (env.get(var) or "") != endpoint or (not endpoint and var in env):
                fail(f"{vf}: {o['kind']}/{c['name']}: {var}={env.get(var)!r}, expected {endpoint or 'unset'}")
            seen.append(c["name"])
    print(f"  {vf}: traces {'to ' + endpoint if endpoint else 'off'} ({', '.join(seen)})")


def check_service_monitor(vf: str, sm: dict, objs: list[dict]) -> None:
    if sm.get("apiVersion") != "monitoring.coreos.com/v1":
        fail(f"{vf}: ServiceMonitor apiVersion")
    sel = sm["spec"]["selector"]
    ports = {e["port"] for e in sm["spec"]["endpoints"]}

    def selected(o: dict) -> bool:
        labels = o["metadata"].get("labels", {})
        if any(labels.get(k) != v for k, v in (sel.get("matchLabels") or {}).items()):
            return False
        for e in sel.get("matchExpressions") or []:
            if e["operator"] != "In" or labels.get(e["key"]) not in e["values"]:
                return False
        return True

    services = [o for o in objs if o.get("kind") == "Service"]
    targets = [o for o in services if selected(o) and ports & {p.get("name") for p in o["spec"]["ports"]}]
    want = {o["metadata"]["labels"].get("app.kubernetes.io/component") for o in services
            if "metrics" in {p.get("name") for p in o["spec"]["ports"]}}
    got = {o["metadata"]["labels"].get("app.kubernetes.io/component") for o in targets}
    relabel = [r for e in sm["spec"]["endpoints"] for r in e.get("relabelings") or []]
    if not any(r.get("targetLabel") == "job" and r.get("replacement") == "fog-$1"
               and r.get("sourceLabels") == ["__meta_kubernetes_service_label_app_kubernetes_io_component"]
               for r in relabel):
        fail(f"{vf}: the ServiceMonitor must name the jobs fog-<component> (the rules in prometheus-rules.yaml use them)")
    if not targets or got != want:
        fail(f"{vf}: the ServiceMonitor selects the metrics ports of {sorted(got)}, expected {sorted(want)}")
    else:
        print(f"  {vf}: the ServiceMonitor scrapes {', '.join(sorted(got))}")


# --------------------------------------------------------------------------
# flags


FLAG_RE = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
ENV_RE = re.compile(r"\b((?:FOG|OTEL)_[A-Z0-9_]+)\b")
BINARIES = ("fog-coordinator", "fog-gateway", "fog-agent", "fogctl")
# Read outside clap (so not in --help): the tracing filter of the coordinator
# and the gateway; fogctl's password and config directory; the batch settings
# of the OpenTelemetry SDK's span processor, in the two binaries that export
# spans (the thread-based BatchSpanProcessor reads these three).
OTEL_BSP = ("OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
EXTRA_ENV = {"FOG_LOG": {"fog-coordinator", "fog-gateway"}, "FOG_PASSWORD": {"fogctl"},
             **{v: {"fog-coordinator", "fog-agent"} for v in OTEL_BSP}}


def help_text(bin_dir: Path, argv: list[str]) -> str:
    r = subprocess.run([str(bin_dir / argv[0])] + argv[1:] + ["--help"], capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} --help exited {r.returncode}: {r.stderr}")
    return r.stdout


def subcommands(text: str) -> list[str]:
    m = re.search(r"^Commands:\n(.*?)(?:\n\n|\Z)", text, re.M | re.S)
    if not m:
        return []
    return [l.split()[0] for l in m.group(1).splitlines() if l.strip() and l.split()[0] != "help"]


def collect(bin_dir: Path) -> dict[str, dict[str, set[str]]]:
    """binary -> {"flags": …, "env": …} from every (sub)command's --help."""
    out: dict[str, dict[str, set[str]]] = {}
    for b in BINARIES:
        flags: set[str] = set()
        env: set[str] = set()
        todo = [[b]] + ([[b, "admin", "create"]] if b == "fog-coordinator" else [])
        while todo:
            argv = todo.pop()
            text = help_text(bin_dir, argv)
            for line in text.splitlines():
                s = line.strip()
                if s.startswith("-"):
                    flags.update(FLAG_RE.findall(s.split("  ")[0]))
            env.update(re.findall(r"\[env: ([A-Z0-9_]+)", text))
            todo += [argv + [c] for c in subcommands(text)]
        env |= {k for k, bins in EXTRA_ENV.items() if b in bins}
        out[b] = {"flags": flags, "env": env}
    return out


def segments(text: str):
    """(binary, words) for every command line of a fog binary in `text`
    (shell scripts, Dockerfiles, unit files, Markdown code, YAML)."""
    text = text.replace("\\\n", " ")
    for line in text.splitlines():
        for seg in re.split(r"\|\||&&|[|;`]|\$\(", line):
            words = seg.replace('"', " ").replace("'", " ").replace(",", " , ").split()
            for i, w in enumerate(words):
                base = w.rsplit("/", 1)[-1]
                if base in BINARIES:
                    yield base, words[i + 1:]
                    break


def scan_files() -> list[Path]:
    out = [DOC] if DOC.exists() else []
    for p in sorted(DEPLOY.rglob("*")):
        if p.is_file() and ".cache" not in p.parts and p.suffix not in (".py",) and p.name != "check.sh":
            out.append(p)
    return out


def check_flags(bin_dir: str) -> None:
    helps = collect(Path(bin_dir))
    all_flags = set().union(*(h["flags"] for h in helps.values()))
    all_env = set().union(*(h["env"] for h in helps.values()))
    planned_seen: set[str] = set()
    etcd = etcd_flags()
    etcd_seen: set[str] = set()
    n_flags = n_env = 0
    for p in scan_files():
        text = p.read_text(errors="replace")
        for b, words in segments(text):
            for w in words:
                for f in FLAG_RE.findall(w.split("=")[0]):
                    n_flags += 1
                    if f in PLANNED:
                        planned_seen.add(f)
                    elif f not in helps[b]["flags"]:
                        fail(f"{rel(p)}: `{b} … {f}`: {b} has no such flag")
        if p == DOC:
            # Flags named in prose (`--restart-grace`) belong to some Fogplane
            # binary, or to etcd (`--max-txn-ops`; checked against `etcd --help`
            # where etcd is installed, else against ETCD_FLAGS_NAMED).
            for f in re.findall(r"`(--[a-z][a-z0-9-]*)", text):
                n_flags += 1
                if f in all_flags or f in PLANNED:
                    continue
                if f in (etcd or ETCD_FLAGS_NAMED):
                    etcd_seen.add(f)
                    continue
                fail(f"{rel(p)}: `{f}` is not a flag of any Fogplane binary" + (" nor of etcd" if etcd else ""))
        for v in ENV_RE.findall(text):
            if v.endswith("_"):  # a prefix, as in "FOG_AGENT_* variables"
                continue
            n_env += 1
            if v in PLANNED:
                planned_seen.add(v)
            elif v not in all_env:
                fail(f"{rel(p)}: {v} is not read by any Fogplane binary")
        # Env files and units belong to one binary: their variables must be that binary's.
        owner = {"coordinator.env": "fog-coordinator", "gateway.env": "fog-gateway", "agent.env": "fog-agent",
                 "fog-coordinator.service": "fog-coordinator", "fog-gateway.service": "fog-gateway",
                 "fog-agent.service": "fog-agent"}.get(p.name)
        if owner:
            for v in re.findall(r"^#?\s*(?:Environment=)?((?:FOG|OTEL)_[A-Z0-9_]+)=", text, re.M):
                if v not in helps[owner]["env"] and v not in PLANNED:
                    fail(f"{rel(p)}: {v} is not a {owner} variable")
    for name in sorted(PLANNED & (all_flags | all_env)):
        fail(f"{name} now exists in a binary: remove it from PLANNED in deploy/check/checks.py and the PLANNED notes")
    print(f"  {n_flags} flag uses and {n_env} FOG_*/OTEL_* names in {len(scan_files())} files checked against "
          + ", ".join(f"{b} ({len(h['flags'])} flags, {len(h['env'])} variables)" for b, h in helps.items()))
    if planned_seen:
        print(f"  planned, not yet in any binary (allowed): {', '.join(sorted(planned_seen))}")
    if etcd_seen:
        print(f"  etcd flags named in the guide: {', '.join(sorted(etcd_seen))} "
              + ("(each in `etcd --help`)" if etcd else "(no etcd installed: checked against ETCD_FLAGS_NAMED only)"))
    done("flags and variables")


# etcd flags the guide and deploy/ may name, for machines without etcd; where
# etcd is installed, its --help is the reference instead.
ETCD_FLAGS_NAMED = {"--max-txn-ops", "--max-request-bytes", "--auto-compaction-mode", "--auto-compaction-retention",
                    "--quota-backend-bytes", "--data-dir", "--name", "--initial-cluster", "--initial-cluster-token",
                    "--initial-advertise-peer-urls", "--listen-client-urls", "--advertise-client-urls",
                    "--listen-peer-urls", "--initial-cluster-state"}


def etcd_flags() -> set[str] | None:
    """The flags of the etcd on PATH (`etcd --help`), or None without one."""
    try:
        r = subprocess.run(["etcd", "--help"], capture_output=True, text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return set(re.findall(r"^\s+(--[a-z][a-z0-9-]*)", r.stdout + r.stderr, re.M)) or None


def check_rendered_flags(bin_dir: str, chart: str, compose_json: list[str]) -> None:
    """Per-container check of the Helm chart's and compose file's args and env."""
    import helm_python as helm
    import yaml

    helps = collect(Path(bin_dir))
    image_bins = {"coordinator": ["fog-coordinator", "fogctl"], "gateway": ["fog-gateway"], "agent": ["fog-agent"]}
    script_env = re.compile(r"^(FOGPLANE_[A-Z_]+|NODE_NAME|POD_NAME)$")

    def check(where: str, image: str, command: list[str] | None, args: list[str], env: list[str]) -> None:
        kind = next((k for k in image_bins if f"/{k}:" in image or image.startswith(f"{k}:")), None)
        if kind is None:
            fail(f"{where}: unknown image {image}")
            return
        bins = image_bins[kind]
        allowed_env = set().union(*(helps[b]["env"] for b in bins))
        for e in env:
            if not (e in allowed_env or script_env.match(e) or e in PLANNED):
                fail(f"{where}: env {e} is not read by {'/'.join(bins)}")
        if command:  # a script or a shell: its flags are checked by the text scan
            return
        for a in args:
            f = a.split("=")[0]
            if f.startswith("--") and f not in helps[bins[0]]["flags"] and f not in PLANNED:
                fail(f"{where}: {bins[0]} has no flag {f}")

    values_files = sorted((Path(chart) / "ci").glob("*-values.yaml"))
    n = 0
    for vf in values_files:
        with helm.Chart.load(chart) as c:
            manifests = c.render(yaml.safe_load(vf.read_text()), name="fog", namespace="edge")
        for path, text in manifests.items():
            if path.endswith("NOTES.txt"):
                continue
            for o in yaml.safe_load_all(text):
                spec = pod_spec(o) if isinstance(o, dict) else None
                if not spec:
                    continue
                for ctr in spec.get("containers", []) + spec.get("initContainers", []):
                    n += 1
                    check(f"{vf.name}: {o['kind']}/{ctr['name']}", ctr["image"], ctr.get("command"),
                          ctr.get("args") or [], [e["name"] for e in ctr.get("env") or []])
    etcd = etcd_flags()
    etcd_checked = []
    for path in compose_json:
        cfg = json.loads(Path(path).read_text())
        for name, s in cfg["services"].items():
            n += 1
            if "/etcd:" in s["image"]:
                # etcd's own flags, against the etcd installed here (Debian's 3.4
                # in CI: every flag used exists in 3.4 and 3.5).
                for a in s.get("command") or []:
                    f = a.split("=")[0]
                    if f.startswith("--") and etcd is not None and f not in etcd:
                        fail(f"compose {name}: etcd has no flag {f} (etcd --help)")
                etcd_checked.append(name)
                continue
            check(f"compose {name}", s["image"], s.get("entrypoint"), s.get("command") or [],
                  list((s.get("environment") or {}).keys()))
    print(f"  {n} containers (Helm renders and compose services, both compose configs): args and env match their "
          "image's binaries" + (f"; compose {', '.join(sorted(set(etcd_checked)))}: flags in `etcd --help`"
                                if etcd and etcd_checked else ""))
    done("container flags and variables")


# --------------------------------------------------------------------------
# metrics

METRIC_RE = re.compile(r"(?<![\w:/.-])((?:fog|grpc_server)_[a-z0-9_]+)(?![\w=-])")
METRICS_SECTION = "## Metrics, traces and logs"


def check_metrics(scrapes: list[str]) -> None:
    """Every metric the guide names is served, every one served is named."""
    samples: set[str] = set()
    for f in scrapes:
        for line in Path(f).read_text(errors="replace").splitlines():
            m = re.match(r"([a-z_][a-z0-9_]*)[{ ]", line)
            if m and not line.startswith("#"):
                samples.add(m.group(1))

    def family(name: str) -> str:
        for suffix in ("_bucket", "_sum", "_count"):
            base = name.removesuffix(suffix)
            if base != name and base + "_bucket" in samples:
                return base
        return name

    served = {family(s) for s in samples if s.startswith(("fog_", "grpc_server_"))}
    text = DOC.read_text()
    start = text.find(METRICS_SECTION)
    if start < 0:
        fail(f"{rel(DOC)}: no section {METRICS_SECTION!r}")
        done("metric names")
    end = text.find("\n## ", start + 1)
    documented = {family(n) for n in METRIC_RE.findall(text[start:end if end > 0 else None])}
    for n in sorted(documented - served):
        fail(f"{rel(DOC)} names {n}, which no scrape has")
    rules = DEPLOY / "config" / "prometheus-rules.yaml"
    for n in sorted({family(n) for n in METRIC_RE.findall(rules.read_text())} - served):
        fail(f"{rel(rules)} uses {n}, which no scrape has")
    for n in sorted(served - documented):
        fail(f"{n} is served but not in {rel(DOC)}, {METRICS_SECTION!r}")
    print(f"  {len(documented)} metrics named in the guide, {len(served)} served")
    done("metric names")


def main() -> None:
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "yaml":
        check_yaml()
    elif cmd == "dockerfiles":
        check_dockerfiles()
    elif cmd == "compose":
        check_compose(sys.argv[2], sys.argv[3])
    elif cmd == "helm":
        check_helm(sys.argv[2])
    elif cmd == "flags":
        check_flags(sys.argv[2])
    elif cmd == "container-flags":
        check_rendered_flags(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "metrics":
        check_metrics(sys.argv[2:])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
