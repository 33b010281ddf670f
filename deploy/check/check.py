#!/usr/bin/env python3
"""The deploy/ checks that no off-the-shelf tool makes; run by
tests/scripts/check-deploy.sh (which also runs kubernetes-validate, hadolint
and the compose-spec schema). Each subcommand prints what it checked and
exits 1 on the first group of problems.

  check.py anchors FILE...              no YAML alias refers to another document
  check.py manifests RENDERED... --secret-example FILE
                                        custom resources (KEDA) against
                                        schemas/, and the invariants of
                                        deploy/k8s (security, probes,
                                        references, network policies)
  check.py query RENDERED URL           runs the ScaledObject's query on
                                        PostgreSQL against known rows
  check.py compose FILE                 depends_on conditions, pinned images,
                                        secrets as required variables
  check.py dockerfile DOCKERFILE DOCKERIGNORE
"""

import json
import os
import re
import subprocess
import sys

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET_NAME = "evistream"
SECRET_KEYS = {"database-url", "s3-access-key-id", "s3-secret-access-key", "jwt-secret", "encryption-key"}
UID = 10001
POD_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}
KEDA_SCHEMAS = {
    "ScaledObject": "keda-scaledobject.schema.json",
    "TriggerAuthentication": "keda-triggerauthentication.schema.json",
}


class Problems:
    def __init__(self, what):
        self.what = what
        self.items = []

    def __call__(self, ok, msg):
        if not ok:
            self.items.append(msg)
        return ok

    def done(self, summary):
        if self.items:
            print(f"FAIL {self.what}:")
            for m in self.items:
                print(f"  - {m}")
            sys.exit(1)
        print(f"ok   {self.what}: {summary}")


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---------------------------------------------------------------- anchors


def cmd_anchors(files):
    p = Problems("YAML anchors")
    anchors = aliases = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        doc = 0
        defined = set()
        try:
            for ev in yaml.parse(text, Loader=yaml.SafeLoader):
                if isinstance(ev, yaml.DocumentStartEvent):
                    doc += 1
                    defined = set()
                elif isinstance(ev, yaml.AliasEvent):
                    aliases += 1
                    p(
                        ev.anchor in defined,
                        f"{path}: document {doc} uses *{ev.anchor} (line {ev.start_mark.line + 1}), "
                        "which no earlier node of that document defines (an anchor never crosses `---`)",
                    )
                elif getattr(ev, "anchor", None):
                    anchors += 1
                    defined.add(ev.anchor)
        except yaml.YAMLError as e:
            p(False, f"{path}: does not parse: {e}")
    p.done(f"{len(files)} files, {anchors} anchors and {aliases} aliases, each within its own document")


# ---------------------------------------------------------------- manifests


def pod_spec(r):
    if r["kind"] in POD_KINDS:
        return r["spec"]["template"]["spec"]
    return None


def pod_labels(r):
    return r["spec"]["template"].get("metadata", {}).get("labels", {})


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def image_pinned(image):
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


def container_env(c, configmaps):
    env = {}
    for src in c.get("envFrom", []):
        ref = src.get("configMapRef")
        if ref and ref["name"] in configmaps:
            env.update(configmaps[ref["name"]].get("data", {}))
    for e in c.get("env", []):
        env[e["name"]] = e.get("value", e.get("valueFrom"))
    return env


def check_pod(p, where, r, configmaps, volumes_ok=True):
    spec = pod_spec(r)
    sc = spec.get("securityContext", {})
    p(sc.get("runAsNonRoot") is True, f"{where}: pod securityContext.runAsNonRoot is not true")
    for f in ("runAsUser", "runAsGroup", "fsGroup"):
        p(sc.get(f) == UID, f"{where}: pod securityContext.{f} is not {UID}")
    p(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: pod seccompProfile is not RuntimeDefault")
    p(spec.get("automountServiceAccountToken") is False, f"{where}: automountServiceAccountToken is not false")
    p(spec.get("enableServiceLinks") is False, f"{where}: enableServiceLinks is not false (EVISTREAM_* service variables)")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    p(containers, f"{where}: no containers")
    for c in containers:
        cw = f"{where} container {c['name']}"
        p(image_pinned(c.get("image", "")), f"{cw}: image {c.get('image')!r} is not pinned to a tag or digest")
        csc = c.get("securityContext", {})
        p(csc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation is not false")
        p(csc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem is not true")
        p("ALL" in csc.get("capabilities", {}).get("drop", []), f"{cw}: capabilities do not drop ALL")
        p(csc.get("runAsNonRoot", sc.get("runAsNonRoot")) is True, f"{cw}: may run as root")
        if "seccompProfile" in csc:
            p(csc["seccompProfile"].get("type") == "RuntimeDefault", f"{cw}: seccompProfile is not RuntimeDefault")
        res = c.get("resources", {})
        for k in ("cpu", "memory"):
            p(k in res.get("requests", {}), f"{cw}: no resources.requests.{k}")
        p("memory" in res.get("limits", {}), f"{cw}: no resources.limits.memory")
        # A read-only root: the data dir and /tmp must be writable mounts.
        env = container_env(c, configmaps)
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        for path in (env.get("EVISTREAM_DATA_DIR"), "/tmp"):
            ok = p(path in mounts, f"{cw}: {path} is not a mounted volume (the root filesystem is read-only)")
            if ok:
                p("emptyDir" in volumes.get(mounts[path], {}), f"{cw}: {path} is not an emptyDir")
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                p(ref["name"] == SECRET_NAME, f"{cw}: env {e['name']} reads Secret {ref['name']}, not {SECRET_NAME}")
                p(ref["key"] in SECRET_KEYS, f"{cw}: env {e['name']} reads undocumented Secret key {ref['key']}")
        for src in c.get("envFrom", []):
            ref = src.get("configMapRef")
            if ref:
                p(ref["name"] in configmaps, f"{cw}: envFrom ConfigMap {ref['name']} is not in the output")
            p("secretRef" not in src, f"{cw}: envFrom secretRef (the Secret's keys are not env names)")
    return containers


def probe_port(c, probe):
    port = probe.get("httpGet", {}).get("port")
    if isinstance(port, str):
        for cp in c.get("ports", []):
            if cp.get("name") == port:
                return cp["containerPort"]
        return None
    return port


def check_node(p, where, r, kind, cfg):
    spec = pod_spec(r)
    (c,) = spec["containers"]
    args = c.get("args", [])
    want_port = 8080 if kind == "api" else 9090
    want_args = ["serve", "--no-workers"] if kind == "api" else ["worker"]
    p(args == want_args, f"{where}: args {args} are not {want_args}")
    for probe, path in (("startupProbe", "/livez"), ("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        pr = c.get(probe)
        if p(pr is not None and "httpGet" in pr, f"{where}: no httpGet {probe}"):
            p(pr["httpGet"].get("path") == path, f"{where}: {probe} path is {pr['httpGet'].get('path')}, not {path}")
            p(probe_port(c, pr) == want_port, f"{where}: {probe} port is not {want_port}")
    if kind == "worker":
        p(c["readinessProbe"]["httpGet"].get("port") == "ops", f"{where}: probes do not use the named port ops")
    env = container_env(c, {n: {"data": d} for n, d in cfg.items()})
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if kind == "api":
        sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
        if p(isinstance(sleep, int), f"{where}: no lifecycle.preStop.sleep"):
            p(grace > sleep + 10, f"{where}: terminationGracePeriodSeconds {grace} <= preStop {sleep} s + 10 s drain")
        listen = env.get("EVISTREAM_LISTEN", "")
        p(listen.endswith(":8080") and not listen.startswith("127."), f"{where}: EVISTREAM_LISTEN {listen!r} is not 0.0.0.0:8080")
    else:
        grace_ms = int(env.get("EVISTREAM_JOBS__SHUTDOWN_GRACE_MS", "10000"))
        p(grace * 1000 > grace_ms, f"{where}: terminationGracePeriodSeconds {grace} <= jobs.shutdown_grace_ms {grace_ms} ms")
        p(env.get("EVISTREAM_OPS_LISTEN") == "0.0.0.0:9090", f"{where}: EVISTREAM_OPS_LISTEN is not 0.0.0.0:9090")
        p(env.get("EVISTREAM_JOBS__CONCURRENCY") == "4", f"{where}: EVISTREAM_JOBS__CONCURRENCY is not set to 4")
    keys = {t.get("topologyKey") for t in spec.get("topologySpreadConstraints", [])}
    for k in ("topology.kubernetes.io/zone", "kubernetes.io/hostname"):
        p(k in keys, f"{where}: no topologySpreadConstraint on {k}")
    for t in spec.get("topologySpreadConstraints", []):
        p(selects(t.get("labelSelector", {}).get("matchLabels"), pod_labels(r)), f"{where}: a spread constraint does not select its own pods")


def cmd_manifests(files, secret_example):
    schemas = {}
    for kind, fname in KEDA_SCHEMAS.items():
        with open(os.path.join(HERE, "schemas", fname), encoding="utf-8") as f:
            schemas[kind] = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schemas[kind])
    secret_keys = set()
    if secret_example:
        (secret,) = load_all(secret_example)
        secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
        p = Problems(f"Secret example {secret_example}")
        p(secret_keys == SECRET_KEYS, f"keys {sorted(secret_keys)} are not the documented {sorted(SECRET_KEYS)}")
        p(secret["metadata"]["name"] == SECRET_NAME, f"name is not {SECRET_NAME}")
        p.done(f"documents exactly the keys {', '.join(sorted(SECRET_KEYS))}")
    for path in files:
        check_rendered(path)


def check_rendered(path):
    res = load_all(path)
    name = os.path.basename(path)
    by_kind = {}
    for r in res:
        by_kind.setdefault(r["kind"], []).append(r)

    def named(kind):
        return {r["metadata"]["name"]: r for r in by_kind.get(kind, [])}

    # KEDA's custom resources: no schema in kubernetes-validate.
    p = Problems(f"{name}: KEDA custom resources (schemas/*.json)")
    n = 0
    for r in res:
        if r.get("apiVersion", "").startswith("keda.sh/"):
            n += 1
            schema = KEDA_SCHEMAS.get(r["kind"])
            if not p(schema is not None, f"{r['kind']} {r['metadata']['name']}: no schema for this KEDA kind"):
                continue
            v = jsonschema.Draft202012Validator(json.load(open(os.path.join(HERE, "schemas", schema), encoding="utf-8")))
            for e in sorted(v.iter_errors(r), key=lambda e: list(e.path)):
                loc = ".".join(str(x) for x in e.path) or "(root)"
                p(False, f"{r['kind']} {r['metadata']['name']}: {loc}: {e.message}")
    deployments = named("Deployment")
    auths = named("TriggerAuthentication")
    hpa_targets = {h["spec"]["scaleTargetRef"]["name"] for h in by_kind.get("HorizontalPodAutoscaler", [])}
    for so in by_kind.get("ScaledObject", []):
        t = so["spec"]["scaleTargetRef"]
        p(t.get("name") in deployments, f"ScaledObject {so['metadata']['name']}: target {t.get('name')} is not a Deployment here")
        p(t.get("name") not in hpa_targets, f"ScaledObject {so['metadata']['name']}: {t.get('name')} also has an HPA")
        for tr in so["spec"]["triggers"]:
            if tr["type"] != "postgresql":
                continue
            md = tr["metadata"]
            for f in ("query", "targetQueryValue", "activationTargetQueryValue"):
                p(f in md, f"ScaledObject {so['metadata']['name']}: postgresql trigger has no {f}")
            ref = tr.get("authenticationRef", {}).get("name")
            ta = auths.get(ref)
            if p(ta is not None or "connectionFromEnv" in md, f"ScaledObject {so['metadata']['name']}: no TriggerAuthentication {ref} and no connectionFromEnv"):
                if ta is not None:
                    params = {s["parameter"]: s for s in ta["spec"].get("secretTargetRef", [])}
                    c = params.get("connection")
                    if p(c is not None, f"TriggerAuthentication {ref}: no `connection` parameter (the postgresql scaler's connection string)"):
                        p(c["name"] == SECRET_NAME and c["key"] == "database-url", f"TriggerAuthentication {ref}: connection is not Secret {SECRET_NAME} key database-url")
            q = md.get("query", "")
            for part in ("state = 'queued'", "run_at <= (extract(epoch from now()) * 1000)::bigint", "state = 'running'", "lease_owner IS NOT NULL"):
                p(part in q, f"ScaledObject {so['metadata']['name']}: query lacks `{part}`")
    p.done(f"{n} resources valid against their schemas; ScaledObject → Deployment and TriggerAuthentication → Secret references resolve")

    # The pods.
    p = Problems(f"{name}: pod security, resources, probes")
    configmaps = named("ConfigMap")
    cfg = {k: v.get("data", {}) for k, v in configmaps.items()}
    pods = [r for r in res if r["kind"] in POD_KINDS]
    nodes = {}
    for r in pods:
        where = f"{r['kind']} {r['metadata']['name']}"
        check_pod(p, where, r, configmaps)
        comp = pod_labels(r).get("app.kubernetes.io/component")
        p(pod_labels(r).get("app.kubernetes.io/part-of") == "evistream", f"{where}: pods lack app.kubernetes.io/part-of: evistream (the default-deny policy selects on it)")
        if r["kind"] == "Deployment":
            p(selects(r["spec"]["selector"].get("matchLabels"), pod_labels(r)), f"{where}: selector does not match its pod labels")
            scaled = r["metadata"]["name"] in hpa_targets or any(so["spec"]["scaleTargetRef"]["name"] == r["metadata"]["name"] for so in by_kind.get("ScaledObject", []))
            p(not scaled or "replicas" not in r["spec"], f"{where}: has replicas although an autoscaler owns the count")
            p(scaled, f"{where}: no HPA or ScaledObject scales it")
            if comp in ("api", "worker"):
                nodes[comp] = r
                check_node(p, where, r, comp, cfg)
        if r["kind"] == "Job":
            p("backoffLimit" in r["spec"], f"{where}: no backoffLimit")
            p("ttlSecondsAfterFinished" in r["spec"], f"{where}: no ttlSecondsAfterFinished")
            p(r["spec"]["template"]["spec"]["containers"][0].get("args") == ["migrate"], f"{where}: does not run `evistream migrate`")
    p("api" in nodes and "worker" in nodes, "no API and worker Deployments (component api / worker)")
    if "worker" in nodes:
        (c,) = pod_spec(nodes["worker"])["containers"]
        mem = c["resources"]["limits"]["memory"]
        p(mem.endswith("Gi") and float(mem[:-2]) * 1024 >= 4 * 512, f"worker memory limit {mem} is below jobs.concurrency × plugins.max_memory_mb (4 × 512 MB)")
    images = {c["image"] for r in pods for c in pod_spec(r)["containers"]}
    p(len(images) == 1, f"pods run different images: {sorted(images)}")
    p.done(f"{len(pods)} pod templates ({', '.join(sorted(r['metadata']['name'] for r in pods))}), image {', '.join(sorted(images))}")

    # References between resources.
    p = Problems(f"{name}: selectors and references")
    for s in by_kind.get("Service", []):
        sel = s["spec"].get("selector", {})
        matched = [r for r in pods if selects(sel, pod_labels(r))]
        if p(matched, f"Service {s['metadata']['name']}: selects no pods"):
            names = {cp.get("name") for r in matched for c in pod_spec(r)["containers"] for cp in c.get("ports", [])}
            numbers = {cp.get("containerPort") for r in matched for c in pod_spec(r)["containers"] for cp in c.get("ports", [])}
            for port in s["spec"]["ports"]:
                tp = port.get("targetPort", port["port"])
                p(tp in names or tp in numbers, f"Service {s['metadata']['name']}: targetPort {tp} is no container port")
    api_svc = [s for s in by_kind.get("Service", []) if s["spec"].get("selector", {}).get("app.kubernetes.io/component") == "api"]
    p(any(pt["port"] == 80 and pt.get("targetPort") in ("http", 8080) for s in api_svc for pt in s["spec"]["ports"]), "no Service for the API on port 80 → 8080")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        sel = pdb["spec"]["selector"].get("matchLabels")
        p(any(selects(sel, pod_labels(r)) for r in pods if r["kind"] == "Deployment"), f"PodDisruptionBudget {pdb['metadata']['name']}: selects no Deployment's pods")
    for comp in ("api", "worker"):
        if comp in nodes:
            p(any(selects(pdb["spec"]["selector"].get("matchLabels"), pod_labels(nodes[comp])) for pdb in by_kind.get("PodDisruptionBudget", [])), f"no PodDisruptionBudget for the {comp} pods")
    for h in by_kind.get("HorizontalPodAutoscaler", []):
        p(h["spec"]["scaleTargetRef"]["name"] in deployments, f"HPA {h['metadata']['name']}: target is not a Deployment here")
        p(any(m.get("resource", {}).get("name") == "cpu" for m in h["spec"].get("metrics", [])), f"HPA {h['metadata']['name']}: does not scale on CPU")
    sas = named("ServiceAccount")
    for r in pods:
        sa = pod_spec(r).get("serviceAccountName", "default")
        p(sa in sas, f"{r['kind']} {r['metadata']['name']}: ServiceAccount {sa} is not in the output")
    p.done(f"{len(by_kind.get('Service', []))} Services, {len(by_kind.get('PodDisruptionBudget', []))} PDBs, {len(by_kind.get('HorizontalPodAutoscaler', []))} HPA, {len(by_kind.get('ScaledObject', []))} ScaledObject resolve")

    # Network policies.
    p = Problems(f"{name}: network policies")
    nps = by_kind.get("NetworkPolicy", [])
    deny = [
        n for n in nps
        if set(n["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not n["spec"].get("ingress") and not n["spec"].get("egress")
        and n["spec"]["podSelector"].get("matchLabels") == {"app.kubernetes.io/part-of": "evistream"}
    ]
    p(deny, "no default-deny policy (Ingress and Egress, no rules) for app.kubernetes.io/part-of: evistream")
    for r in pods:
        allow = [n for n in nps if n not in deny and selects(n["spec"]["podSelector"].get("matchLabels"), pod_labels(r))]
        where = f"{r['kind']} {r['metadata']['name']}"
        if not p(allow, f"{where}: no NetworkPolicy opens anything for it"):
            continue
        egress_ports = {(pt.get("protocol", "TCP"), pt.get("port")) for n in allow for rule in n["spec"].get("egress", []) for pt in rule.get("ports", [])}
        ingress_ports = {pt.get("port") for n in allow for rule in n["spec"].get("ingress", []) for pt in rule.get("ports", [])}
        for need in (("UDP", 53), ("TCP", 5432)):
            p(need in egress_ports, f"{where}: egress {need[0]}/{need[1]} not allowed")
        comp = pod_labels(r).get("app.kubernetes.io/component")
        if comp in ("api", "worker"):
            for port in (9000, 443):
                p(("TCP", port) in egress_ports, f"{where}: egress to S3 on {port} not allowed")
            want = 8080 if comp == "api" else 9090
            p(want in ingress_ports, f"{where}: ingress on {want} not allowed")
            p(ingress_ports <= {want}, f"{where}: ingress open on more than {want}: {sorted(ingress_ports)}")
        public = [b for n in allow for rule in n["spec"].get("egress", []) for to in rule.get("to", []) for b in [to.get("ipBlock")] if b and b["cidr"] == "0.0.0.0/0"]
        if comp == "worker":
            if p(public, f"{where}: no egress to the public internet (LLM hosts)"):
                for b in public:
                    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
                        p(cidr in b.get("except", []), f"{where}: public egress does not exclude {cidr}")
        else:
            p(not public, f"{where}: egress to the public internet")
    p.done(f"{len(nps)} policies: default deny, each pod kind opened for DNS, PostgreSQL{', S3, LLM hosts (workers)' if nodes else ''} only")


# ---------------------------------------------------------------- query

QUERY_FIXTURE = """
CREATE TEMP TABLE jobs (
  id varchar(36) PRIMARY KEY, state varchar(16) NOT NULL, run_at bigint NOT NULL,
  lease_owner varchar(100), lease_expires_at bigint, parent_id varchar(36), kind varchar(100) NOT NULL
);
CREATE INDEX ix_jobs_claim ON jobs (state, run_at);
-- now in ms, as the server writes it
CREATE TEMP TABLE t AS SELECT (extract(epoch from now()) * 1000)::bigint AS now;
INSERT INTO jobs SELECT 'q-due', 'queued', now - 1000, NULL, NULL, 'p', 'extract.unit' FROM t;      -- counts
INSERT INTO jobs SELECT 'q-due2', 'queued', now - 5, NULL, NULL, NULL, 'convert' FROM t;            -- counts
INSERT INTO jobs SELECT 'q-retry', 'queued', now + 600000, NULL, NULL, NULL, 'convert' FROM t;      -- not due yet
INSERT INTO jobs SELECT 'r-live', 'running', now - 9000, 'w1', now + 20000, 'p', 'extract.unit' FROM t; -- counts (in progress)
INSERT INTO jobs SELECT 'r-dead', 'running', now - 90000, 'w2', now - 1000, 'p', 'extract.unit' FROM t; -- counts
INSERT INTO jobs SELECT 'r-dead2', 'running', now - 90000, 'w4', now - 1, NULL, 'convert' FROM t;     -- counts
INSERT INTO jobs SELECT 'p', 'running', now - 90000, NULL, NULL, NULL, 'extract' FROM t;           -- parent
INSERT INTO jobs SELECT 'p-odd', 'running', now - 90000, NULL, now - 1000, NULL, 'extract' FROM t; -- parent, stale expiry
INSERT INTO jobs SELECT 's', 'succeeded', now - 90000, NULL, NULL, NULL, 'convert' FROM t;
INSERT INTO jobs SELECT 'f', 'failed', now - 90000, 'w3', now - 1000, NULL, 'convert' FROM t;
INSERT INTO jobs SELECT 'c', 'cancelled', now - 90000, NULL, NULL, NULL, 'convert' FROM t;
ANALYZE jobs;
"""
QUERY_EXPECTED = 5


def cmd_query(rendered, url):
    p = Problems("ScaledObject query on PostgreSQL")
    (so,) = [r for r in load_all(rendered) if r["kind"] == "ScaledObject"]
    (query,) = [t["metadata"]["query"] for t in so["spec"]["triggers"] if t["type"] == "postgresql"]
    script = (
        QUERY_FIXTURE
        + f"\\echo RESULT\n{query};\n"
        + f"SET enable_seqscan = off;\n\\echo PLAN\nEXPLAIN (COSTS OFF) {query};\n"
    )
    out = subprocess.run(
        ["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        input=script, capture_output=True, text=True,
    )
    if not p(out.returncode == 0, f"psql failed: {out.stderr.strip()}"):
        p.done("")
    text = out.stdout
    result = text.split("RESULT", 1)[1].split("PLAN", 1)[0].strip()
    plan = text.split("PLAN", 1)[1]
    p(result and float(result) == QUERY_EXPECTED, f"counted {result!r} work units, expected {QUERY_EXPECTED} (2 queued and due + 3 leased, live or expired; not: a retry not yet due, parents, finished jobs)")
    # The queued part is a range scan of the claim index on both columns.
    p(
        re.search(r"Scan using ix_jobs_claim on jobs\s+Index Cond: [^\n]*'queued'[^\n]*run_at <=", plan),
        f"the queued part is not a range scan of ix_jobs_claim (state, run_at):\n{plan}",
    )
    p.done(f"{result} work units of 11 rows as expected; the queued part is a range scan of ix_jobs_claim (state, run_at)")


# ---------------------------------------------------------------- compose

REQUIRED_VAR = re.compile(r"\$\{[A-Z_][A-Z0-9_]*:\?[^}]*\}")
SECRETISH = re.compile(r"(PASSWORD|SECRET|ENCRYPTION_KEY)")
URL_CREDS = re.compile(r"://[^/@:]+:([^@]+)@")


def cmd_compose(path):
    p = Problems(f"compose {os.path.relpath(path)}")
    docs = load_all(path)
    p(len(docs) == 1, f"{len(docs)} YAML documents, expected 1")
    services = docs[0].get("services", {})
    built = {n for n, s in services.items() if "build" in s}
    deps = 0
    for name, s in services.items():
        image = s.get("image")
        if name in built:
            p(image and ":" in image and not image.endswith(":latest"), f"{name}: the locally built image should carry a tag other than latest ({image!r})")
        else:
            p(image and image_pinned(image), f"{name}: image {image!r} is untagged or :latest")
        dep = s.get("depends_on", {})
        if not p(isinstance(dep, dict), f"{name}: depends_on is a list (no conditions)"):
            continue
        for target, spec in dep.items():
            deps += 1
            cond = (spec or {}).get("condition")
            p(cond is not None, f"{name}: depends_on {target} has no condition")
            t = services.get(target, {})
            if cond == "service_healthy":
                hc = t.get("healthcheck", {})
                p(hc.get("test") and not hc.get("disable"), f"{name}: waits for {target} to be healthy, which has no healthcheck")
            if cond == "service_completed_successfully":
                p(t.get("restart") == "no", f"{name}: waits for {target} to complete, but it restarts ({t.get('restart')!r})")
        for key, value in (s.get("environment") or {}).items():
            value = str(value)
            if SECRETISH.search(key):
                p(REQUIRED_VAR.fullmatch(value), f"{name}: {key} is not a required variable ${{NAME:?message}}")
            m = URL_CREDS.search(value)
            if m:
                p(REQUIRED_VAR.fullmatch(m.group(1)), f"{name}: {key} has a password in its URL that is not a required variable")
    # The start order: database and bucket, then the migration, then the nodes.
    order = {
        "s3-init": {"s3": "service_healthy"},
        "migrate": {"postgres": "service_healthy"},
        "api": {"postgres": "service_healthy", "s3-init": "service_completed_successfully", "migrate": "service_completed_successfully"},
        "worker": {"postgres": "service_healthy", "s3-init": "service_completed_successfully", "migrate": "service_completed_successfully"},
    }
    for svc, want in order.items():
        dep = services.get(svc, {}).get("depends_on") or {}
        got = {t: (c or {}).get("condition") for t, c in dep.items()} if isinstance(dep, dict) else {t: None for t in dep}
        p(got == want, f"{svc}: depends_on {got}, expected {want}")
    pg = services.get("postgres", {}).get("healthcheck", {}).get("test", [])
    p("pg_isready" in pg, "postgres: healthcheck is not pg_isready")
    init = services.get("s3-init", {}).get("command", [])
    p(init[:2] == ["mb", "--ignore-existing"], "s3-init: does not run `mc mb --ignore-existing`")
    w = services.get("worker", {})
    p(w.get("healthcheck", {}).get("test", [])[-2:] == ["health", "--worker"], "worker: healthcheck is not `evistream health --worker`")
    p((w.get("environment") or {}).get("EVISTREAM_OPS_LISTEN") == "0.0.0.0:9090", "worker: EVISTREAM_OPS_LISTEN is not 0.0.0.0:9090")
    p.done(f"{len(services)} services, {deps} depends_on all with conditions, images pinned (built: {', '.join(sorted(built))}), secrets required")


# ---------------------------------------------------------------- dockerfile


def cmd_dockerfile(dockerfile, dockerignore):
    p = Problems(f"Dockerfile {os.path.relpath(dockerfile)}")
    text = open(dockerfile, encoding="utf-8").read()
    joined = re.sub(r"\\\n", " ", text)
    p(re.search(r"rustup target add\b.*\bwasm32-wasip2", joined), "no `rustup target add wasm32-wasip2`")
    for target in ("/usr/local/cargo/registry", "/usr/local/cargo/git", "/src/target"):
        p(f"--mount=type=cache,target={target}" in joined, f"no cache mount on {target}")
    p(re.search(r"RUN --mount[^\n]*cargo build[^\n]*&&[^\n]*target/release/evistream", joined), "the binary is not copied out of the target cache in the cargo build's RUN")
    p("CARGO_PROFILE_RELEASE_STRIP=symbols" in joined or "CARGO_PROFILE_RELEASE_DEBUG=0" in joined, "the binary is not stripped")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    p(users and re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]), f"the last USER is not numeric and non-root: {users}")
    p('HEALTHCHECK' in joined and 'CMD ["/usr/local/bin/evistream", "health"]' in joined, "no HEALTHCHECK CMD [\"/usr/local/bin/evistream\", \"health\"]")
    ignored = {l.strip().lstrip("/") for l in open(dockerignore, encoding="utf-8") if l.strip() and not l.startswith("#")}
    for need in ("target", "data", ".git"):
        p(need in ignored or f"**/{need}" in ignored, f".dockerignore does not exclude {need}")
    p.done("wasm32-wasip2 target, cache mounts (registry, git, target), stripped binary, numeric USER, HEALTHCHECK evistream health; .dockerignore excludes target/ data/ .git")


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    cmd, rest = a[0], a[1:]
    if cmd == "anchors":
        cmd_anchors(rest)
    elif cmd == "manifests":
        secret = None
        if "--secret-example" in rest:
            i = rest.index("--secret-example")
            secret = rest[i + 1]
            rest = rest[:i] + rest[i + 2 :]
        cmd_manifests(rest, secret)
    elif cmd == "query":
        cmd_query(*rest)
    elif cmd == "compose":
        cmd_compose(*rest)
    elif cmd == "dockerfile":
        cmd_dockerfile(*rest)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
