"""Tests of the riverlog Helm chart and Dockerfile.

The chart is rendered and linted by the real Helm engine (helm-python-sdk binds
Helm's Go SDK), each rendered document is validated against the Kubernetes 1.30
schemas (kubernetes-validate, strict), and the rendered pod spec drives the real
riverlog binary, probed the way the kubelet would, in PostgreSQL mode through a
database outage (a TCP proxy the test cuts). The `helm test` Pod's steps run
against that binary too: its health check as grpc_health_probe asks it, and
its publish and read round trip as written, with the real CLI.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import threading
import time
import hashlib
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import grpc
import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "riverlog"
HERE = Path(__file__).resolve().parent
PG_VALUES = yaml.safe_load((HERE / "values-postgres.yaml").read_text())
BIN = os.environ.get("RIVERLOG_BIN", str(ROOT / "target" / "debug" / "riverlog"))
PG_URL = os.environ.get("RIVERLOG_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")
KUBE_VERSION = "1.30"
# The health service name that stays SERVING while the process runs (src/server.rs).
LIVENESS_SERVICE = re.search(
    r'pub const LIVENESS_SERVICE: &str = "([^"]*)";', (ROOT / "src" / "server.rs").read_text()
).group(1)
LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
GRPC_INGRESS = {
    "enabled": True,
    "host": "grpc.riverlog.example.com",
    "tls": [{"secretName": "riverlog-grpc-tls", "hosts": ["grpc.riverlog.example.com"]}],
}
# The peer the NetworkPolicy adds for the release's `helm test` Pod.
TEST_POD_PEER = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "riverlog-test", "app.kubernetes.io/instance": "rl"}}}


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def chart():
    with helm.Chart.load(CHART) as c:
        yield c


def render(chart, values=None, name="rl"):
    out = chart.render(values=values or {}, name=name, namespace="riverlog")
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def notes(chart, values=None):
    out = chart.render(values=values or {}, name="rl", namespace="riverlog")
    return next(v for k, v in out.items() if k.endswith("NOTES.txt"))


def kinds(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind):
    found = kinds(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def workload(docs):
    found = [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
    assert len(found) == 1
    return found[0]


def container(docs):
    (c,) = workload(docs)["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


def config_toml(docs):
    return one(docs, "ConfigMap")["data"]["config.toml"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def merge(a, b):
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture(scope="session")
def default_docs(chart):
    return render(chart)


@pytest.fixture(scope="session")
def pg_docs(chart):
    return render(chart, PG_VALUES)


# ---------------------------------------------------------------- chart files


def test_chart_metadata_matches_the_crate(chart):
    meta = chart.metadata
    crate = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    assert meta["apiVersion"] == "v2"
    assert meta["appVersion"] == crate
    assert chart.schema is not None


def test_chart_icon_is_the_projects_own(chart):
    """The icon URL points at a file of this repository (the chart's `home`),
    not at someone else's artwork, and that file is a small SVG."""
    meta = chart.metadata
    home = urllib.parse.urlsplit(meta["home"])
    assert home.netloc == "github.com"
    prefix = f"https://raw.githubusercontent.com{home.path}/main/"
    assert meta["icon"].startswith(prefix), meta["icon"]
    icon = ROOT / meta["icon"][len(prefix):]
    assert icon.is_file(), icon
    assert icon.stat().st_size < 4096
    root = ET.parse(icon).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert not [e for e in root.iter() if e.tag.endswith("}image") or e.tag.endswith("}script")], "self-contained"


@pytest.mark.parametrize(
    "values",
    [None, PG_VALUES, merge(PG_VALUES, {"serviceMonitor": {"bearerTokenSecret": {"name": "rl-scrape"}}})],
    ids=["defaults", "postgres", "postgres-bearer-token"],
)
def test_lint_strict(values):
    report = helm.lint(CHART, values, strict=True, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not problems and not report["errors"], report


def test_every_value_has_a_comment():
    lines = (CHART / "values.yaml").read_text().splitlines()
    key = re.compile(r"^(\s*)([A-Za-z0-9_]+):(.*)$")
    missing = []
    for i, line in enumerate(lines):
        m = key.match(line)
        if not m:
            continue
        indent, name, rest = m.groups()
        nxt = next((l for l in lines[i + 1 :] if l.strip()), "")
        is_parent = not rest.strip() and not nxt.lstrip().startswith("-") and (
            len(nxt) - len(nxt.lstrip()) > len(indent)
        )
        if is_parent:
            continue
        prev = lines[i - 1].strip() if i else ""
        if not prev.startswith("#"):
            missing.append(name)
    assert not missing, f"values without a comment: {missing}"


def leaf_keys(d, prefix=""):
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            yield from leaf_keys(v, path + ".")
        else:
            yield path


def test_readme_kubernetes_section_lists_every_value():
    readme = (HERE.parent.parent / "README.md").read_text()
    section = readme.split("\n## Kubernetes\n", 1)[1].split("\n## ", 1)[0]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [k for k in leaf_keys(values) if f"`{k}`" not in section]
    assert not missing, f"values missing from the README's Kubernetes table: {missing}"


# ---------------------------------------------------------------- kubernetes schemas

SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "labels": {"type": "object"}},
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
                },
                "namespaceSelector": {
                    "type": "object",
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "authorization": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["type", "credentials"],
                                "properties": {
                                    "type": {"const": "Bearer"},
                                    "credentials": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["name", "key"],
                                        "properties": {
                                            "name": {"type": "string", "minLength": 1},
                                            "key": {"type": "string", "minLength": 1},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.mark.parametrize(
    "values",
    [
        None,
        PG_VALUES,
        merge(PG_VALUES, {"autoscaling": {"enabled": True}, "auth": {"existingSecret": "cfg"}}),
        merge(PG_VALUES, {"serviceMonitor": {"bearerTokenSecret": {"name": "rl-scrape"}}}),
        {"serviceMonitor": {"enabled": True}, "networkPolicy": {"enabled": True, "metricsFrom": [{"podSelector": {}}]}},
        {"metrics": {"separatePort": True}, "service": {"type": "LoadBalancer"}},
        merge(PG_VALUES, {"ingress": {"grpc": GRPC_INGRESS}, "tests": {"tokenSecret": {"name": "rl-test-token"}}}),
        {"ingress": {"grpc": {"enabled": True, "host": "grpc.example.com"}}, "tests": {"enabled": False}},
    ],
    ids=[
        "defaults",
        "postgres",
        "postgres-hpa-existing-config",
        "postgres-bearer-token",
        "no-tokens-monitored",
        "separate-port-lb",
        "postgres-grpc-ingress-test-token",
        "grpc-ingress-alone-no-tests",
    ],
)
def test_documents_are_valid_kubernetes_1_30(chart, values):
    docs = render(chart, values)
    assert docs
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            # A CRD: not in the Kubernetes schemas; checked against a small hand-written one.
            jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
        else:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


# ---------------------------------------------------------------- what operators rely on


@pytest.mark.parametrize("mode", ["defaults", "postgres"])
def test_native_grpc_probes(default_docs, pg_docs, mode):
    c = container(default_docs if mode == "defaults" else pg_docs)
    grpc_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "grpc")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert set(c[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, probe
        assert c[probe]["grpc"]["port"] == grpc_port
    # Liveness asks whether the process is alive (a name the server keeps SERVING
    # whatever storage does); readiness whether storage is. Start-up ends when
    # the process serves gRPC (see the comment in _helpers.tpl).
    assert c["livenessProbe"]["grpc"]["service"] == "liveness" == LIVENESS_SERVICE
    assert c["startupProbe"]["grpc"]["service"] == "liveness"
    assert c["readinessProbe"]["grpc"]["service"] == "riverlog.v1.EventLog"


def test_notes_show_what_the_probes_ask(chart, default_docs):
    text = notes(chart)
    c = container(default_docs)
    for probe in ("livenessProbe", "readinessProbe"):
        assert f'{{"service": "{c[probe]["grpc"]["service"]}"}}' in text, probe


def test_sqlite_mode_is_one_replica_statefulset_with_a_claim(default_docs):
    sts = one(default_docs, "StatefulSet")
    assert sts["spec"]["replicas"] == 1
    assert not kinds(default_docs, "Deployment")
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container(default_docs)["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"
    assert env_of(container(default_docs))["RIVERLOG_DATABASE_URL"]["value"] == "sqlite:///data/riverlog.db"
    assert not kinds(default_docs, "PodDisruptionBudget")
    assert not kinds(default_docs, "HorizontalPodAutoscaler")
    svc = {s["metadata"]["name"]: s for s in kinds(default_docs, "Service")}
    assert sts["spec"]["serviceName"] in svc


def test_postgres_mode_is_a_deployment_without_claims(pg_docs, chart):
    dep = one(pg_docs, "Deployment")
    assert dep["spec"]["replicas"] == 3
    assert not kinds(pg_docs, "StatefulSet")
    assert not kinds(pg_docs, "PersistentVolumeClaim")
    assert "volumeClaimTemplates" not in dep["spec"]
    assert all(v["name"] != "data" for v in dep["spec"]["template"]["spec"]["volumes"])
    hpa_docs = render(chart, merge(PG_VALUES, {"autoscaling": {"enabled": True, "maxReplicas": 7}}))
    hpa = one(hpa_docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert hpa["spec"]["maxReplicas"] == 7
    assert "replicas" not in one(hpa_docs, "Deployment")["spec"]
    assert not kinds(pg_docs, "HorizontalPodAutoscaler")


def test_pdb_selects_the_pods(pg_docs):
    pdb = one(pg_docs, "PodDisruptionBudget")
    dep = one(pg_docs, "Deployment")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    sel = pdb["spec"]["selector"]["matchLabels"]
    assert sel and all(pod_labels.get(k) == v for k, v in sel.items())
    assert sel == dep["spec"]["selector"]["matchLabels"]


def _secret_free(docs, secret):
    for cm in kinds(docs, "ConfigMap"):
        assert secret not in json.dumps(cm), "secret value in a ConfigMap"
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            for c in d["spec"]["template"]["spec"]["containers"]:
                for e in c.get("env", []):
                    assert secret not in str(e.get("value", "")), f"secret value in env {e['name']}"
                    assert "postgres" not in str(e.get("value", "")), f"database URL inline in env {e['name']}"


def test_database_url_only_through_a_secret(chart, pg_docs):
    ref = env_of(container(pg_docs))["RIVERLOG_DATABASE_URL"]
    assert "value" not in ref
    assert ref["valueFrom"]["secretKeyRef"] == {"name": "riverlog-database", "key": "url"}
    assert not kinds(pg_docs, "Secret"), "existingSecret given: the chart creates none"
    _secret_free(pg_docs, "riverlog-database-password")

    url = "postgres://riverlog:s3cr3t-pw@db.internal:5432/riverlog"
    vals = merge(PG_VALUES, {"storage": {"postgres": {"existingSecret": "", "url": url}}})
    docs = render(chart, vals)
    secret = one(docs, "Secret")
    key = env_of(container(docs))["RIVERLOG_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert key["name"] == secret["metadata"]["name"]
    import base64

    assert base64.b64decode(secret["data"][key["key"]]).decode() == url
    _secret_free(docs, "s3cr3t-pw")
    assert "s3cr3t-pw" not in notes(chart, vals)


def test_postgres_without_a_url_fails(chart):
    with pytest.raises(helm.HelmError, match="existingSecret"):
        render(chart, {"storage": {"mode": "postgres"}})


@pytest.mark.parametrize("mode", ["defaults", "postgres"])
def test_security_context(default_docs, pg_docs, mode):
    docs = default_docs if mode == "defaults" else pg_docs
    pod = workload(docs)["spec"]["template"]["spec"]
    c = container(docs)
    psc, sc = pod["securityContext"], c["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "add" not in sc["capabilities"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert "/tmp" in mounts
    if mode == "defaults":
        assert "/data" in mounts
    res = c["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"]
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("mode", ["defaults", "postgres"])
def test_standard_labels(default_docs, pg_docs, mode):
    docs = default_docs if mode == "defaults" else pg_docs
    for d in docs:
        labels = d["metadata"].get("labels", {})
        for label in LABELS:
            assert label in labels, f"{d['kind']} {d['metadata']['name']} lacks {label}"
        assert labels["app.kubernetes.io/instance"] == "rl"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
    pod_labels = workload(docs)["spec"]["template"]["metadata"]["labels"]
    for svc in kinds(docs, "Service"):
        assert all(pod_labels[k] == v for k, v in svc["spec"]["selector"].items())


def test_service_ports(default_docs):
    svc = next(s for s in kinds(default_docs, "Service") if s["spec"].get("clusterIP") != "None")
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert ports["grpc"]["appProtocol"] == "grpc" and ports["grpc"]["port"] == 50051
    assert ports["http"]["port"] == 8080
    cports = {p["name"] for p in container(default_docs)["ports"]}
    assert {p["targetPort"] for p in ports.values()} <= cports


def test_ingress_keeps_sse_unbuffered(pg_docs):
    ing = one(pg_docs, "Ingress")
    ann = ing["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert "nginx.ingress.kubernetes.io/backend-protocol" not in ann, "HTTP/1.1 to the HTTP port"
    assert int(ann["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["port"]["number"] == 8080
    assert ing["spec"]["tls"][0]["secretName"] == "riverlog-tls"


def test_service_monitor_and_network_policy(pg_docs, default_docs):
    # Tokens in values-postgres.yaml: /metrics gets a port of its own (metrics.separatePort auto).
    sm = one(pg_docs, "ServiceMonitor")
    (ep,) = sm["spec"]["endpoints"]
    assert ep["port"] == "metrics" and ep["path"] == "/metrics"
    assert "authorization" not in ep
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    np = one(pg_docs, "NetworkPolicy")
    api, scrape = np["spec"]["ingress"]
    assert {p["port"] for p in api["ports"]} == {"grpc", "http"}
    assert api["from"] == PG_VALUES["networkPolicy"]["from"] + [TEST_POD_PEER]
    assert [p["port"] for p in scrape["ports"]] == ["metrics"]
    assert scrape["from"] == PG_VALUES["networkPolicy"]["metricsFrom"]
    assert not kinds(default_docs, "ServiceMonitor") and not kinds(default_docs, "NetworkPolicy")
    assert not kinds(default_docs, "Ingress")


# ---------------------------------------------------------------- gRPC through an Ingress

GRPC_BACKEND = "nginx.ingress.kubernetes.io/backend-protocol"


def ingresses(docs):
    return {i["metadata"]["name"]: i for i in kinds(docs, "Ingress")}


def backend_container_port(docs, backend):
    """The container port an Ingress backend reaches: its Service (by name),
    that Service's port (by number), its targetPort resolved by name."""
    (svc,) = [s for s in kinds(docs, "Service") if s["metadata"]["name"] == backend["service"]["name"]]
    pod_labels = workload(docs)["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    (sport,) = [p for p in svc["spec"]["ports"] if p["port"] == backend["service"]["port"]["number"]]
    (cport,) = [p for p in container(docs)["ports"] if p["name"] == sport["targetPort"]]
    return sport, cport


def test_grpc_ingress_routes_to_the_grpc_port_over_http2(chart):
    values = merge(PG_VALUES, {"ingress": {"grpc": GRPC_INGRESS}})
    docs = render(chart, values)
    found = ingresses(docs)
    assert set(found) == {"rl-riverlog", "rl-riverlog-grpc"}, "an Ingress of its own for gRPC"
    grpc_ing, http_ing = found["rl-riverlog-grpc"], found["rl-riverlog"]
    ann = grpc_ing["metadata"]["annotations"]
    assert ann[GRPC_BACKEND] == "GRPC"
    # Subscribe and Consume streams stay open as long as on the HTTP Ingress' SSE.
    assert int(ann["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(ann["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert grpc_ing["spec"]["ingressClassName"] == http_ing["spec"]["ingressClassName"] == "nginx"
    assert grpc_ing["spec"]["tls"] == GRPC_INGRESS["tls"]
    (rule,) = grpc_ing["spec"]["rules"]
    assert rule["host"] == GRPC_INGRESS["host"]
    (path,) = rule["http"]["paths"]
    # Every gRPC method lives under /<package.Service>/: one prefix takes them all.
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    sport, cport = backend_container_port(docs, path["backend"])
    assert sport["appProtocol"] == "grpc" and cport["name"] == "grpc"
    assert cport["containerPort"] == container(docs)["readinessProbe"]["grpc"]["port"]
    # The HTTP Ingress still goes to the HTTP port, without the gRPC protocol.
    http_path = http_ing["spec"]["rules"][0]["http"]["paths"][0]
    assert backend_container_port(docs, http_path["backend"])[1]["name"] == "http"
    assert GRPC_BACKEND not in http_ing["metadata"]["annotations"]


def test_grpc_ingress_stands_alone_and_keeps_its_backend_protocol(chart):
    user = {
        GRPC_BACKEND: "GRPCS",
        "nginx.ingress.kubernetes.io/proxy-read-timeout": "86400",
        "cert-manager.io/cluster-issuer": "letsencrypt",
    }
    docs = render(chart, {"ingress": {"grpc": {"enabled": True, "host": "grpc.example.com", "annotations": user}}})
    (ing,) = kinds(docs, "Ingress")
    ann = ing["metadata"]["annotations"]
    # The pods serve gRPC in cleartext: the protocol stays the chart's.
    assert ann[GRPC_BACKEND] == "GRPC"
    assert ann["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "86400"
    assert ann["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert "ingressClassName" not in ing["spec"] and "tls" not in ing["spec"]
    assert not kinds(render(chart), "Ingress")


def test_notes_show_the_grpc_ingress_and_warn_without_tls(chart):
    with_tls = notes(chart, {"ingress": {"grpc": GRPC_INGRESS}})
    assert "grpcurl grpc.riverlog.example.com:443 list" in with_tls
    assert "WARNING: ingress.grpc.tls is empty" not in with_tls
    without = notes(chart, {"ingress": {"grpc": {"enabled": True, "host": "grpc.example.com"}}})
    assert "WARNING: ingress.grpc.tls is empty" in without
    assert "grpcurl -plaintext grpc.example.com:80 list" in without
    assert "gRPC Ingress" not in notes(chart)


# ---------------------------------------------------------------- helm test


def helm_test_pod(docs):
    found = [d for d in kinds(docs, "Pod") if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    assert len(found) == 1, f"expected one helm test Pod, got {len(found)}"
    return found[0]


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("mode", ["defaults", "postgres"])
def test_helm_test_pod_is_a_test_hook_that_no_selector_takes_for_a_server(default_docs, pg_docs, mode):
    docs = default_docs if mode == "defaults" else pg_docs
    pod = helm_test_pod(docs)
    assert pod["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    labels = pod["metadata"]["labels"]
    for svc in kinds(docs, "Service"):
        assert not selects(svc["spec"]["selector"], labels), svc["metadata"]["name"]
    for d in kinds(docs, "PodDisruptionBudget") + kinds(docs, "NetworkPolicy"):
        sel = d["spec"].get("selector", d["spec"].get("podSelector"))["matchLabels"]
        assert not selects(sel, labels), d["kind"]
    # As locked down as the server's pod.
    server = workload(docs)["spec"]["template"]["spec"]
    assert spec["securityContext"] == server["securityContext"]
    for c in spec.get("initContainers", []) + spec["containers"]:
        assert c["securityContext"] == container(docs)["securityContext"], c["name"]
        assert c["resources"]["limits"]["memory"]


def test_helm_test_checks_readiness_health_then_publishes_and_reads_with_the_release_image(default_docs):
    spec = helm_test_pod(default_docs)["spec"]
    (health,) = spec["initContainers"]
    (trip,) = spec["containers"]
    assert health["image"].startswith("ghcr.io/grpc-ecosystem/grpc-health-probe:")
    args = dict(a.split("=", 1) for a in health["args"])
    # The question the readiness probe asks, through the Service.
    assert args["-service"] == container(default_docs)["readinessProbe"]["grpc"]["service"]
    assert args["-addr"] == "rl-riverlog.riverlog.svc:50051"
    assert trip["image"] == container(default_docs)["image"]
    env = env_of(trip)
    assert env["RIVERLOG_SERVER"]["value"] == "http://" + args["-addr"]
    assert env["STREAM"]["value"] == "riverlog-helm-test"
    assert env["POD_UID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    assert "RIVERLOG_TOKEN" not in env
    script = trip["command"][-1]
    assert "riverlog publish" in script and "riverlog tail" in script


def test_helm_test_with_tokens_needs_a_token_secret_for_the_round_trip(chart, pg_docs):
    # Tokens and no tests.tokenSecret: health only, and the notes say so.
    spec = helm_test_pod(pg_docs)["spec"]
    assert [c["name"] for c in spec["containers"]] == ["health"]
    assert "initContainers" not in spec
    assert "health only" in notes(chart, PG_VALUES)
    values = merge(PG_VALUES, {"tests": {"tokenSecret": {"name": "rl-test-token", "key": "t"}}})
    spec = helm_test_pod(render(chart, values))["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["health"]
    (trip,) = spec["containers"]
    ref = env_of(trip)["RIVERLOG_TOKEN"]
    assert ref == {"name": "RIVERLOG_TOKEN", "valueFrom": {"secretKeyRef": {"name": "rl-test-token", "key": "t"}}}
    assert "health only" not in notes(chart, values)
    assert "read back" in notes(chart, values)


def test_network_policy_admits_the_test_pod_and_nothing_more(chart, pg_docs):
    np = one(pg_docs, "NetworkPolicy")
    api = np["spec"]["ingress"][0]
    added = [peer for peer in api["from"] if peer not in PG_VALUES["networkPolicy"]["from"]]
    assert added == [TEST_POD_PEER]
    assert selects(TEST_POD_PEER["podSelector"]["matchLabels"], helm_test_pod(pg_docs)["metadata"]["labels"])
    off = render(chart, merge(PG_VALUES, {"tests": {"enabled": False}}))
    assert not kinds(off, "Pod")
    assert one(off, "NetworkPolicy")["spec"]["ingress"][0]["from"] == PG_VALUES["networkPolicy"]["from"]
    # Without `from` the API ports are open to all: nothing to add.
    docs = render(chart, {"networkPolicy": {"enabled": True}})
    assert "from" not in one(docs, "NetworkPolicy")["spec"]["ingress"][0]


# ---------------------------------------------------------------- where /metrics is scraped

TOKEN_HASH = "4fbaa42021233ea080b6abbe50579e420981c1629c40edd0fe30bbd14438a9ad"
TOKENS = {"auth": {"tokens": [{"name": "ingest", "sha256": TOKEN_HASH, "publish": ["*"]}]}}
MONITORED = {
    "serviceMonitor": {"enabled": True},
    "networkPolicy": {
        "enabled": True,
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}}],
        "metricsFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
    },
}
BEARER = {"serviceMonitor": {"bearerTokenSecret": {"name": "rl-scrape", "key": "token"}}}

# id: (values, /metrics on its own port?, ServiceMonitor sends the bearer token?)
METRICS_CASES = {
    "no-tokens": ({}, False, False),
    "no-tokens-separate": ({"metrics": {"separatePort": True}}, True, False),
    "tokens": (TOKENS, True, False),
    "tokens-loadbalancer": (merge(TOKENS, {"service": {"type": "LoadBalancer"}}), True, False),
    "tokens-bearer": (merge(TOKENS, BEARER), False, True),
    "tokens-bearer-not-separate": (merge(merge(TOKENS, BEARER), {"metrics": {"separatePort": False}}), False, True),
    "tokens-bearer-but-separate": (merge(merge(TOKENS, BEARER), {"metrics": {"separatePort": True}}), True, False),
    "existing-config": ({"auth": {"existingSecret": "cfg"}}, True, False),
    "no-tokens-not-separate-bearer": (merge(BEARER, {"metrics": {"separatePort": False}}), False, True),
}


def main_services(docs):
    return [s for s in kinds(docs, "Service") if not s["metadata"]["name"].endswith("-metrics")]


def metrics_service(docs):
    (svc,) = [s for s in kinds(docs, "Service") if s["metadata"]["name"].endswith("-metrics")]
    return svc


def scrape_target(docs):
    """What Prometheus scrapes from the rendered ServiceMonitor: the Services its
    selector matches (exactly one), that Service's port of the endpoint's name, its
    targetPort resolved to the container port. Returns (endpoint, container port)."""
    sm = one(docs, "ServiceMonitor")
    (ep,) = sm["spec"]["endpoints"]
    sel = sm["spec"]["selector"]["matchLabels"]
    matched = [s for s in kinds(docs, "Service") if all(s["metadata"]["labels"].get(k) == v for k, v in sel.items())]
    assert len(matched) == 1, f"the ServiceMonitor selects {[s['metadata']['name'] for s in matched]}"
    (svc,) = matched
    pod_labels = workload(docs)["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    (sport,) = [p for p in svc["spec"]["ports"] if p["name"] == ep["port"]]
    (cport,) = [p for p in container(docs)["ports"] if p["name"] == sport["targetPort"]]
    return ep, cport["containerPort"]


@pytest.mark.parametrize("case", list(METRICS_CASES), ids=list(METRICS_CASES))
def test_metrics_port_service_monitor_and_network_policy(chart, case):
    values, separate, bearer = METRICS_CASES[case]
    values = merge(MONITORED, values)
    docs = render(chart, values)
    c = container(docs)
    env = env_of(c)
    cports = {p["name"]: p["containerPort"] for p in c["ports"]}
    msvc = metrics_service(docs)
    (mport,) = msvc["spec"]["ports"]
    # The metrics Service is ClusterIP whatever service.type says: nothing on
    # it asks for a token when the port is separate.
    assert msvc["spec"]["type"] == "ClusterIP"
    assert msvc["metadata"]["labels"]["app.kubernetes.io/component"] == "metrics"
    for svc in main_services(docs):
        assert "metrics" not in {p["name"] for p in svc["spec"]["ports"]}, svc["metadata"]["name"]
    ep, target = scrape_target(docs)
    assert ep["path"] == "/metrics" and ep["scheme"] == "http"
    np = one(docs, "NetworkPolicy")
    api, scrape = np["spec"]["ingress"]
    assert {p["port"] for p in api["ports"]} == {"grpc", "http"}
    assert scrape["from"] == MONITORED["networkPolicy"]["metricsFrom"]
    if separate:
        assert env["RIVERLOG_METRICS_LISTEN"]["value"] == "0.0.0.0:9090"
        assert cports["metrics"] == 9090
        assert mport == {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP", "appProtocol": "http"}
        assert ep["port"] == "metrics" and target == 9090
        assert [p["port"] for p in scrape["ports"]] == ["metrics"]
    else:
        assert "RIVERLOG_METRICS_LISTEN" not in env
        assert "metrics" not in cports
        assert mport["name"] == "http" and mport["targetPort"] == "http"
        assert ep["port"] == "http" and target == 8080
        assert [p["port"] for p in scrape["ports"]] == ["http"]
    if bearer:
        assert ep["authorization"] == {"type": "Bearer", "credentials": {"name": "rl-scrape", "key": "token"}}
    else:
        assert "authorization" not in ep
    # The listen address comes from the environment, like the other listeners,
    # so it also holds with a config.toml from auth.existingSecret.
    for cm in kinds(docs, "ConfigMap"):
        assert "metrics_listen" not in cm["data"]["config.toml"]


def test_metrics_port_number_follows_the_values(chart):
    docs = render(chart, merge(TOKENS, {"ports": {"metrics": 9464}, "serviceMonitor": {"enabled": True}}))
    assert env_of(container(docs))["RIVERLOG_METRICS_LISTEN"]["value"] == "0.0.0.0:9464"
    assert scrape_target(docs)[1] == 9464
    assert metrics_service(docs)["spec"]["ports"][0]["port"] == 9464


def test_metrics_service_only_when_needed(chart, default_docs):
    assert [s["metadata"]["name"] for s in kinds(default_docs, "Service")] == ["rl-riverlog", "rl-riverlog-headless"]
    docs = render(chart, TOKENS)
    assert metrics_service(docs)["metadata"]["name"] == "rl-riverlog-metrics"
    assert not kinds(docs, "ServiceMonitor")


def test_network_policy_closes_the_metrics_port_without_metrics_from(chart):
    docs = render(chart, merge(TOKENS, {"serviceMonitor": {"enabled": True}, "networkPolicy": {"enabled": True}}))
    (rule,) = one(docs, "NetworkPolicy")["spec"]["ingress"]
    # One rule, without `from` (any source) but only for the API ports: no rule
    # names the metrics port, so nobody reaches it.
    assert {p["port"] for p in rule["ports"]} == {"grpc", "http"}
    text = notes(chart, merge(TOKENS, {"serviceMonitor": {"enabled": True}, "networkPolicy": {"enabled": True}}))
    assert "networkPolicy.metricsFrom is empty" in text
    assert "metricsFrom is empty" not in notes(chart, merge(TOKENS, MONITORED))
    # On the HTTP port with `from` empty (any source), Prometheus gets in anyway.
    open_http = merge(merge(TOKENS, BEARER), {"serviceMonitor": {"enabled": True}, "networkPolicy": {"enabled": True}})
    assert "metricsFrom is empty" not in notes(chart, open_http)


def test_notes_say_where_metrics_are(chart):
    assert "port-forward svc/rl-riverlog-metrics 9090:9090" in notes(chart, TOKENS)
    assert "Bearer YOUR-METRICS-TOKEN" in notes(chart, merge(TOKENS, BEARER))
    assert "Metrics: http://127.0.0.1:8080/metrics" in notes(chart)


def test_token_metrics_permission_is_rendered(chart, tmp_path):
    tokens = [
        {"name": "scraper", "sha256": "1" * 64, "metrics": True},
        {"name": "ingest", "sha256": "2" * 64, "publish": ["orders:*"]},
    ]
    toml = config_toml(render(chart, {"auth": {"tokens": tokens}}))
    blocks = toml.split("[[auth.tokens]]")[1:]
    assert len(blocks) == 2
    assert re.search(r"^metrics = true$", blocks[0], re.M)
    assert re.search(r"^metrics = false$", blocks[1], re.M), "metrics defaults to false"
    f = tmp_path / "config.toml"
    f.write_text(toml)
    r = subprocess.run([BIN, "config", "--config", str(f)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("metrics = true") == 1 and r.stdout.count("metrics = false") == 1, r.stdout


def test_tokens_without_a_way_to_scrape_fail(chart):
    values = merge(TOKENS, {"metrics": {"separatePort": False}, "serviceMonitor": {"enabled": True}})
    with pytest.raises(helm.HelmError, match=r"serviceMonitor.bearerTokenSecret.*metrics.separatePort"):
        render(chart, values)
    # Each way out renders: a bearer token, the separate port, or no ServiceMonitor.
    render(chart, merge(values, BEARER))
    render(chart, merge(values, {"metrics": {"separatePort": True}}))
    render(chart, merge(values, {"serviceMonitor": {"enabled": False}}))
    # Without tokens /metrics is open on the HTTP port: nothing to refuse.
    render(chart, {"metrics": {"separatePort": False}, "serviceMonitor": {"enabled": True}})


def test_metrics_port_must_not_clash(chart):
    with pytest.raises(helm.HelmError, match=r"ports.metrics \(8080\) must differ"):
        render(chart, merge(TOKENS, {"ports": {"metrics": 8080}}))
    # Unused without the separate port.
    render(chart, {"ports": {"metrics": 8080}})


def _grace_seconds(c):
    return int(env_of(c)["RIVERLOG_SHUTDOWN_GRACE"]["value"].rstrip("s"))


@pytest.mark.parametrize("mode", ["defaults", "postgres"])
def test_termination_grace_exceeds_shutdown_grace(default_docs, pg_docs, mode):
    docs = default_docs if mode == "defaults" else pg_docs
    pod = workload(docs)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > _grace_seconds(container(docs))


def test_too_short_termination_grace_is_refused(chart):
    with pytest.raises(helm.HelmError, match="terminationGracePeriodSeconds"):
        render(chart, {"terminationGracePeriodSeconds": 5, "config": {"shutdownGraceSeconds": 10}})


def test_config_toml_carries_the_values(pg_docs):
    toml = config_toml(pg_docs)
    assert 'otlp_endpoint = "http://otel-collector.observability:4317"' in toml
    assert 'log_format = "json"' in toml
    assert "max_event_size = 262144" in toml
    assert "retention_max_events = 100000" in toml
    assert 'retention_max_age = "7d"' in toml
    assert toml.count("[[auth.tokens]]") == 2
    assert toml.count("metrics = true") == 1 and toml.count("metrics = false") == 1
    assert "database_url" not in toml


def test_existing_secret_config_replaces_the_configmap(chart):
    docs = render(chart, {"auth": {"existingSecret": "my-config", "existingSecretKey": "riverlog.toml"}})
    assert not kinds(docs, "ConfigMap")
    vol = next(v for v in workload(docs)["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    assert vol["secret"] == {"secretName": "my-config", "items": [{"key": "riverlog.toml", "path": "config.toml"}]}


# ---------------------------------------------------------------- values.schema.json

BAD_VALUES = {
    "replicas>1-in-sqlite": {"replicas": 3},
    "unknown-storage-mode": {"storage": {"mode": "mysql"}},
    "replicas-wrong-type": {"replicas": "three"},
    "port-out-of-range": {"ports": {"grpc": 70000}},
    "bad-log-format": {"config": {"logFormat": "xml"}},
    "token-hash-not-sha256": {"auth": {"tokens": [{"name": "x", "sha256": "secret-token-in-clear"}]}},
    "unknown-top-level-key": {"replica": 2},
    "autoscaling-in-sqlite": {"autoscaling": {"enabled": True}},
    "negative-limit": {"config": {"limits": {"maxEventSize": -1}}},
    "bool-as-string": {"ingress": {"enabled": "yes"}},
    "bad-duration": {"config": {"retention": {"interval": "often"}}},
    "separate-port-not-a-choice": {"metrics": {"separatePort": "yes"}},
    "separate-port-bool-as-string": {"metrics": {"separatePort": "true"}},
    "metrics-port-out-of-range": {"ports": {"metrics": 0}},
    "token-metrics-not-bool": {"auth": {"tokens": [{"name": "x", "sha256": "1" * 64, "metrics": "yes"}]}},
    "bearer-secret-unknown-key": {"serviceMonitor": {"bearerTokenSecret": {"secret": "x"}}},
    "bearer-secret-bad-name": {"serviceMonitor": {"bearerTokenSecret": {"name": "Not_A_Name"}}},
    "bearer-secret-empty-key": {"serviceMonitor": {"bearerTokenSecret": {"name": "x", "key": ""}}},
    "metrics-from-not-a-list": {"networkPolicy": {"metricsFrom": {"podSelector": {}}}},
    "unknown-metrics-key": {"metrics": {"port": 9090}},
    "grpc-ingress-without-host": {"ingress": {"grpc": {"enabled": True}}},
    "grpc-ingress-bad-host": {"ingress": {"grpc": {"enabled": True, "host": "https://grpc.example.com"}}},
    "grpc-ingress-unknown-key": {"ingress": {"grpc": {"enabled": True, "host": "g.example.com", "hosts": []}}},
    "grpc-ingress-annotation-not-string": {"ingress": {"grpc": {"annotations": {"a": 1}}}},
    "tests-enabled-as-string": {"tests": {"enabled": "yes"}},
    "tests-stream-not-a-stream-name": {"tests": {"stream": "helm test"}},
    "tests-token-secret-bad-name": {"tests": {"tokenSecret": {"name": "Not_A_Name"}}},
    "tests-probe-without-tag": {"tests": {"healthProbe": {"image": {"tag": ""}}}},
    "tests-unknown-key": {"tests": {"image": "x"}},
}


@pytest.mark.parametrize("bad", list(BAD_VALUES), ids=list(BAD_VALUES))
def test_schema_rejects(chart, bad):
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(BAD_VALUES[bad]))
    with pytest.raises(helm.HelmError):
        render(chart, BAD_VALUES[bad])


def test_schema_accepts_postgres_with_replicas(chart):
    chart.validate_schema(chart.merge_values(PG_VALUES))


@pytest.mark.parametrize("choice", ["auto", True, False])
def test_schema_accepts_separate_port_choices(chart, choice):
    values = {"metrics": {"separatePort": choice}, "auth": {"tokens": [{"name": "x", "sha256": "1" * 64, "metrics": True}]}}
    values = merge(values, BEARER)
    chart.validate_schema(chart.merge_values(values))
    render(chart, values)


# ---------------------------------------------------------------- the Dockerfile


def dockerfile():
    text = (ROOT / "Dockerfile").read_text()
    return text, re.sub(r"\\\n", " ", text)


def test_dockerfile_matches_the_chart(default_docs):
    text, joined = dockerfile()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2, "multi-stage"
    assert re.search(r"cargo build[^\n]*--locked[^\n]*--release", joined)
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    c = container(default_docs)
    assert c["command"] == entry
    exposed = {int(p) for p in re.search(r"^EXPOSE (.*)$", text, re.M).group(1).split()}
    assert exposed == {p["containerPort"] for p in c["ports"]}
    volumes = json.loads(re.search(r"^VOLUME (\[.*\])$", text, re.M).group(1))
    data_mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "data")
    assert volumes == [data_mount]
    user = re.search(r"^USER (\d+)(?::(\d+))?$", text, re.M)
    psc = workload(default_docs)["spec"]["template"]["spec"]["securityContext"]
    assert int(user.group(1)) == psc["runAsUser"] != 0
    assert user.group(2) is None or int(user.group(2)) == psc["runAsGroup"]
    # The image's own defaults listen on the exposed ports, like the chart's env.
    env = env_of(c)
    for var in ("RIVERLOG_LISTEN", "RIVERLOG_HTTP_LISTEN", "RIVERLOG_DATABASE_URL"):
        assert re.search(rf"\b{var}={re.escape(env[var]['value'])}(\s|$)", joined), var
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore and "!src/" in ignore and "!Cargo.lock" in ignore
    # Cargo reads the whole workspace even to build one binary: every member
    # folder must be in the build context and copied.
    members = re.search(r"^members = \[(.*)\]$", (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    for member in re.findall(r'"([^"]+)"', members):
        if member != ".":
            assert f"!{member}/" in ignore, member
            assert re.search(rf"^COPY {member} \./{member}$", text, re.M), member


# ---------------------------------------------------------------- the chart drives the binary


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def kubelet_probe(c, name):
    """One run of the container's gRPC probe `name`, as the kubelet runs it: a new
    connection to its port, grpc.health.v1.Health/Check for its `service` ("" when
    unset) within its timeoutSeconds (default 1). The probe passes on SERVING only.
    Returns the status, or the code of a failed call."""
    probe = c[name]
    request = health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", ""))
    with grpc.insecure_channel(f"127.0.0.1:{probe['grpc']['port']}") as ch:
        try:
            return health_pb2_grpc.HealthStub(ch).Check(request, timeout=probe.get("timeoutSeconds", 1)).status
        except grpc.RpcError as e:
            return e.code()


def log_text(log):
    # By path: reading through `log` would move the offset the server writes at.
    return Path(log.name).read_text()


def await_probe(c, name, want, proc, log, timeout=30.0):
    """Runs probe `name` until it returns `want`."""
    deadline = time.monotonic() + timeout
    while True:
        got = kubelet_probe(c, name)
        if got == want:
            return
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"{name} {c[name]['grpc']}: {got}, not {want}; rc={proc.poll()}\n{log_text(log)}")
        time.sleep(0.2)


def await_log(log, text, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while text not in log_text(log):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"no {text!r} in the log; rc={proc.poll()}\n{log_text(log)}")
        time.sleep(0.05)


def _map_path(value, mapping):
    """Map container paths to host paths in one pass (longest first), so a mapped path is not mapped again."""
    keys = sorted(mapping, key=len, reverse=True)
    pattern = "|".join(re.escape(k) + r"(?=/|$|\b)" for k in keys)
    return re.sub(pattern, lambda m: str(mapping[m.group(0)]), value)


def run_pod(docs, tmp_path, secrets):
    """Start riverlog as the kubelet would: the container's command, args, env and mounts."""
    pod = workload(docs)["spec"]["template"]["spec"]
    c = container(docs)
    mounts = {m["mountPath"]: tmp_path / m["mountPath"].strip("/").replace("/", "_") for m in c["volumeMounts"]}
    for path in mounts.values():
        path.mkdir(parents=True, exist_ok=True)
    # The config volume: the rendered ConfigMap's keys become files.
    cfg_mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "config")
    for key, text in one(docs, "ConfigMap")["data"].items():
        (mounts[cfg_mount] / key).write_text(text)
    mapping = dict(sorted(mounts.items(), key=lambda kv: -len(kv[0])))
    mapping[c["command"][0]] = BIN
    argv = [_map_path(a, mapping) for a in c["command"] + c.get("args", [])]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "TMPDIR": str(mounts["/tmp"])}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = _map_path(e["value"], mapping)
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[(ref["name"], ref["key"])]
    cwd = mounts.get("/data", tmp_path)
    log = open(tmp_path / "riverlog.log", "w+")
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    return proc, log, pod, c


def stop_pod(proc, log, pod):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=pod["terminationGracePeriodSeconds"])
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("riverlog outlived terminationGracePeriodSeconds")
    else:
        rc = proc.returncode
    log.seek(0)
    return rc, log.read()


def probe_like_kubelet(c, proc, log):
    for name in ("startupProbe", "readinessProbe", "livenessProbe"):
        await_probe(c, name, SERVING, proc, log)


def serving_addrs(out):
    """The grpc= and http= addresses of the 'serving' log line, text or JSON."""
    for line in out.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            fields = rec.get("fields", {})
            if "serving" in fields.get("message", "") and "grpc" in fields:
                return fields["grpc"], fields["http"]
        else:
            m = re.search(r"grpc=(\S+) http=(\S+)", line)
            if m:
                return m.group(1), m.group(2)
    raise AssertionError("no serving line in:\n" + out)


def test_config_toml_parses_with_the_binary(default_docs, pg_docs, tmp_path):
    for name, docs in (("defaults", default_docs), ("postgres", pg_docs)):
        f = tmp_path / f"{name}.toml"
        f.write_text(config_toml(docs))
        r = subprocess.run([BIN, "config", "--config", str(f)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
        assert r.returncode == 0, r.stderr
        if name == "postgres":
            assert 'name = "ingest"' in r.stdout and "publish_rate_limit = 500" in r.stdout


def test_sqlite_pod_runs_and_passes_its_probes(chart, tmp_path):
    gport, hport = free_port(), free_port()
    docs = render(chart, {"ports": {"grpc": gport, "http": hport}, "config": {"shutdownGraceSeconds": 3}})
    proc, log, pod, c = run_pod(docs, tmp_path, {})
    try:
        probe_like_kubelet(c, proc, log)
        assert c["readinessProbe"]["grpc"]["port"] == gport
    finally:
        rc, out = stop_pod(proc, log, pod)
    assert rc == 0, out
    assert serving_addrs(out) == (f"0.0.0.0:{gport}", f"0.0.0.0:{hport}")
    assert (tmp_path / "data" / "riverlog.db").exists(), "the database lives on the data volume"


def http_get(port, path, token=None):
    """GET http://127.0.0.1:port/path, with a bearer token if given: (status, body)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape_like_prometheus(docs, secrets):
    """One scrape as Prometheus runs it from the rendered ServiceMonitor: its
    Service's port resolved to the container port, its path, and its
    `authorization` credentials read from the Secret."""
    ep, port = scrape_target(docs)
    token = None
    if "authorization" in ep:
        assert ep["authorization"]["type"] == "Bearer"
        cred = ep["authorization"]["credentials"]
        token = secrets[(cred["name"], cred["key"])]
    return http_get(port, ep["path"], token)


def random_token():
    """A fresh token and its SHA-256 hex, which is what goes into values."""
    token = os.urandom(24).hex()
    return token, hashlib.sha256(token.encode()).hexdigest()


def test_sqlite_pod_serves_metrics_on_its_own_port(chart, tmp_path):
    """Tokens and metrics.separatePort auto: /metrics answers on the metrics
    port without a token, and no longer on the HTTP port."""
    gport, hport, mport = free_port(), free_port(), free_port()
    ingest, ingest_hash = random_token()
    scraper, scraper_hash = random_token()
    values = {
        "ports": {"grpc": gport, "http": hport, "metrics": mport},
        "config": {"shutdownGraceSeconds": 3},
        "auth": {
            "tokens": [
                {"name": "ingest", "sha256": ingest_hash, "publish": ["*"], "subscribe": ["*"]},
                {"name": "scraper", "sha256": scraper_hash, "metrics": True},
            ]
        },
        "serviceMonitor": {"enabled": True},
    }
    docs = render(chart, values)
    proc, log, pod, c = run_pod(docs, tmp_path, {})
    try:
        probe_like_kubelet(c, proc, log)
        status, body = scrape_like_prometheus(docs, {})
        assert status == 200, body
        assert "riverlog_storage_up" in body
        assert scrape_target(docs)[1] == mport
        # The HTTP port has no /metrics any more, whatever the token.
        for token in (None, ingest, scraper):
            got = http_get(hport, "/metrics", token)[0]
            assert got == 404, f"/metrics on the HTTP port with {token and 'a token'}: {got}"
        # Only /metrics on the metrics port: the API is not reachable through it.
        assert http_get(mport, "/api/v1/streams", ingest)[0] == 404
        # The API on the HTTP port still asks for tokens.
        assert http_get(hport, "/api/v1/streams")[0] == 401
    finally:
        rc, out = stop_pod(proc, log, pod)
    assert rc == 0, out


def test_sqlite_pod_metrics_on_the_http_port_need_a_metrics_token(chart, tmp_path):
    """Tokens without the separate port: the ServiceMonitor's bearer token from
    its Secret gets 200; no token 401; a token without `metrics` 403."""
    gport, hport = free_port(), free_port()
    ingest, ingest_hash = random_token()
    scraper, scraper_hash = random_token()
    values = {
        "ports": {"grpc": gport, "http": hport},
        "config": {"shutdownGraceSeconds": 3},
        "auth": {
            "tokens": [
                {"name": "ingest", "sha256": ingest_hash, "publish": ["*"], "subscribe": ["*"]},
                {"name": "scraper", "sha256": scraper_hash, "metrics": True},
            ]
        },
        "metrics": {"separatePort": False},
        "serviceMonitor": {"enabled": True, "bearerTokenSecret": {"name": "rl-scrape", "key": "token"}},
    }
    docs = render(chart, values)
    assert "RIVERLOG_METRICS_LISTEN" not in env_of(container(docs))
    proc, log, pod, c = run_pod(docs, tmp_path, {})
    try:
        probe_like_kubelet(c, proc, log)
        status, body = scrape_like_prometheus(docs, {("rl-scrape", "token"): scraper})
        assert status == 200, body
        assert "riverlog_storage_up" in body
        assert http_get(hport, "/metrics")[0] == 401
        assert http_get(hport, "/metrics", ingest)[0] == 403
        assert http_get(hport, "/metrics", "not-a-configured-token")[0] == 401
        assert http_get(hport, "/metrics", scraper)[0] == 200
    finally:
        rc, out = stop_pod(proc, log, pod)
    assert rc == 0, out


# ---------------------------------------------------------------- helm test against the binary


def resolve_service_addr(docs, addr):
    """Where `<service>.<namespace>.svc:<port>` leads, as cluster DNS and the
    Service would take it: the container port behind that Service port, on
    127.0.0.1 (where run_pod's server listens)."""
    host, port = addr.rsplit(":", 1)
    name, namespace, svc_suffix = host.split(".")
    assert (namespace, svc_suffix) == ("riverlog", "svc"), host
    (svc,) = [s for s in kinds(docs, "Service") if s["metadata"]["name"] == name]
    pod_labels = workload(docs)["spec"]["template"]["metadata"]["labels"]
    assert selects(svc["spec"]["selector"], pod_labels), f"{name} does not select the server"
    (sport,) = [p for p in svc["spec"]["ports"] if p["port"] == int(port)]
    (cport,) = [p for p in container(docs)["ports"] if p["name"] == sport["targetPort"]]
    return f"127.0.0.1:{cport['containerPort']}"


def grpc_health_probe(docs, c):
    """The health container, run as grpc_health_probe runs: Health/Check of its
    -service at its -addr within -rpc-timeout; exit 0 on SERVING only, 2 when
    it cannot connect, 3 when the call fails, 4 on any other status."""
    assert c["image"].startswith("ghcr.io/grpc-ecosystem/grpc-health-probe:"), "emulated: grpc_health_probe"
    args = dict(a.split("=", 1) for a in c["args"])
    assert set(args) == {"-addr", "-service", "-connect-timeout", "-rpc-timeout"}, args
    target = resolve_service_addr(docs, args["-addr"])
    connect, rpc = (float(args[k].rstrip("s")) for k in ("-connect-timeout", "-rpc-timeout"))
    with grpc.insecure_channel(target) as ch:
        try:
            grpc.channel_ready_future(ch).result(timeout=connect)
        except grpc.FutureTimeoutError:
            return 2, f"failed to connect service at {args['-addr']}"
        try:
            got = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=args["-service"]), timeout=rpc)
        except grpc.RpcError as e:
            return 3, f"health rpc failed: {e.code()}"
    if got.status != SERVING:
        return 4, f"service unhealthy (responded with {health_pb2.HealthCheckResponse.ServingStatus.Name(got.status)})"
    return 0, "status: SERVING"


def run_container_command(docs, c, secrets, tmp_path):
    """A container of the riverlog image, as the kubelet runs it: its command
    and env (values, the pod's uid, Secret keys), `riverlog` on the PATH being
    the binary under test, the Service address resolved to the server."""
    bindir = tmp_path / "image-bin"
    bindir.mkdir(exist_ok=True)
    if not (bindir / "riverlog").exists():
        (bindir / "riverlog").symlink_to(BIN)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "fieldRef" in e["valueFrom"]:
            assert e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.uid"
            env[e["name"]] = str(uuid.uuid4())
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secrets[(ref["name"], ref["key"])]
    scheme, addr = env["RIVERLOG_SERVER"].split("://", 1)
    env["RIVERLOG_SERVER"] = f"{scheme}://{resolve_service_addr(docs, addr)}"
    r = subprocess.run(c["command"] + c.get("args", []), env=env, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def run_helm_test(docs, secrets, tmp_path):
    """`helm test`: the test Pod's init containers in order, then its
    containers; the first that fails fails the Pod, and what comes after it
    does not run. Returns (passed, [(container, exit code, output)])."""
    spec = helm_test_pod(docs)["spec"]
    steps = []
    for c in spec.get("initContainers", []) + spec["containers"]:
        if c["name"] == "health":
            rc, out = grpc_health_probe(docs, c)
        else:
            rc, out = run_container_command(docs, c, secrets, tmp_path)
        steps.append((c["name"], rc, out))
        if rc != 0:
            return False, steps
    return True, steps


def test_helm_test_passes_against_the_sqlite_pod_and_needs_the_stream_without_auto_create(chart, tmp_path):
    gport, hport = free_port(), free_port()
    values = {"ports": {"grpc": gport, "http": hport}, "config": {"shutdownGraceSeconds": 3, "autoCreateStreams": False}}
    docs = render(chart, values)
    proc, log, pod, c = run_pod(docs, tmp_path, {})
    try:
        probe_like_kubelet(c, proc, log)
        # autoCreateStreams off: the round trip fails until the stream exists.
        passed, steps = run_helm_test(docs, {}, tmp_path)
        assert not passed, steps
        assert [(name, rc) for name, rc, _ in steps] == [("health", 0), ("round-trip", 1)], steps
        assert "NotFound" in steps[1][2], steps
        # The README's command, then two runs: each finds its own event.
        server = f"http://127.0.0.1:{gport}"
        r = subprocess.run(
            [BIN, "streams", "create", "riverlog-helm-test", "--max-events", "100", "--server", server],
            capture_output=True, text=True,
        )
        assert r.returncode == 0, r.stderr
        for _ in range(2):
            passed, steps = run_helm_test(docs, {}, tmp_path)
            assert passed, steps
            assert "round trip: OK" in steps[-1][2]
        # One event per run, each about its own subject.
        r = subprocess.run(
            [BIN, "tail", "riverlog-helm-test", "--from", "earliest", "--no-follow", "--json", "--server", server],
            capture_output=True, text=True,
        )
        assert r.returncode == 0, r.stderr
        subjects = [json.loads(line)["subject"] for line in r.stdout.splitlines()]
        assert len(subjects) == 2 and len(set(subjects)) == 2, subjects
    finally:
        rc, out = stop_pod(proc, log, pod)
    assert rc == 0, out
    # The server is gone: the health step fails, and the round trip never runs.
    passed, steps = run_helm_test(docs, {}, tmp_path)
    assert not passed and [(name, rc) for name, rc, _ in steps] == [("health", 2)], steps


def test_helm_test_round_trip_uses_the_token_from_its_secret(chart, tmp_path):
    gport, hport = free_port(), free_port()
    tester, tester_hash = random_token()
    writer, writer_hash = random_token()
    values = {
        "ports": {"grpc": gport, "http": hport},
        "config": {"shutdownGraceSeconds": 3},
        "auth": {
            "tokens": [
                {"name": "helm-test", "sha256": tester_hash, "publish": ["riverlog-helm-test"], "subscribe": ["riverlog-helm-test"]},
                {"name": "writer", "sha256": writer_hash, "publish": ["*"]},
            ]
        },
        "tests": {"tokenSecret": {"name": "rl-test-token", "key": "token"}},
    }
    docs = render(chart, values)
    proc, log, pod, c = run_pod(docs, tmp_path, {})
    try:
        probe_like_kubelet(c, proc, log)
        passed, steps = run_helm_test(docs, {("rl-test-token", "token"): tester}, tmp_path)
        assert passed, steps
        # A token that may publish but not read: the read-back step catches it.
        passed, steps = run_helm_test(docs, {("rl-test-token", "token"): writer}, tmp_path)
        assert not passed and steps[-1][0] == "round-trip", steps
        assert "PermissionDenied" in steps[-1][2] and "round trip: OK" not in steps[-1][2], steps
        # A wrong token: refused at the publish.
        passed, steps = run_helm_test(docs, {("rl-test-token", "token"): "not-a-token"}, tmp_path)
        assert not passed and "Unauthenticated" in steps[-1][2], steps
    finally:
        rc, out = stop_pod(proc, log, pod)
    assert rc == 0, out


def _psql(sql):
    subprocess.run(["psql", PG_URL, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True)


@pytest.fixture
def pg_schema():
    try:
        subprocess.run(["psql", PG_URL, "-qc", "select 1"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("no local PostgreSQL at " + PG_URL)
    schema = "rl_helm_" + uuid.uuid4().hex[:10]
    _psql(f"CREATE SCHEMA {schema}")
    yield schema
    _psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


class CuttableProxy:
    """A TCP proxy in front of PostgreSQL that a test cuts like a network outage:
    cut() drops every open connection and resets new ones, restore() lets them
    through again."""

    def __init__(self, target):
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.up = True
        self.stopped = False
        self.lock = threading.Lock()
        self.pairs = set()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @staticmethod
    def _reset(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if not self.up:
                self._reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                self._reset(client)
                continue
            with self.lock:
                self.pairs.add((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a, b):
        peer = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [])
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peer[sock].sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            with self.lock:
                self.pairs.discard((a, b))
                a.close()
                b.close()

    def cut(self):
        self.up = False
        with self.lock:
            for pair in self.pairs:
                for sock in pair:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def restore(self):
        self.up = True

    def close(self):
        self.stopped = True
        self.cut()
        self.thread.join()
        self.server.close()


@pytest.fixture
def pg_proxy(pg_schema):
    u = urllib.parse.urlsplit(PG_URL)
    if not u.hostname or "host=" in u.query:
        pytest.skip("the outage proxy needs a host:port PostgreSQL URL, not " + PG_URL)
    proxy = CuttableProxy((u.hostname, u.port or 5432))
    user = u.netloc.rpartition("@")[0]
    proxy.url = urllib.parse.urlunsplit(u._replace(netloc=f"{user}@127.0.0.1:{proxy.port}" if user else f"127.0.0.1:{proxy.port}"))
    yield proxy
    proxy.close()


def test_postgres_pod_probes_through_a_database_outage(chart, tmp_path, pg_schema, pg_proxy):
    """Liveness asks whether the process is alive, readiness whether storage is:
    a database outage takes the pod out of the Service and never restarts it."""
    gport, hport = free_port(), free_port()
    # The OTLP endpoint goes to a closed loopback port: wired, but no traffic leaves the machine.
    values = merge(
        PG_VALUES,
        {
            "ports": {"grpc": gport, "http": hport, "metrics": free_port()},
            "config": {"shutdownGraceSeconds": 3},
            "telemetry": {"otlpEndpoint": f"http://127.0.0.1:{free_port()}"},
        },
    )
    docs = render(chart, values)
    sep = "&" if "?" in pg_proxy.url else "?"
    secrets = {("riverlog-database", "url"): f"{pg_proxy.url}{sep}options=-csearch_path%3D{pg_schema}"}
    # The database is away at start: the server retries it before binding, so
    # start-up has not passed yet; it passes once the database is back.
    pg_proxy.cut()
    proc, log, pod, c = run_pod(docs, tmp_path, secrets)
    try:
        await_log(log, "PostgreSQL not reachable yet", proc)
        assert kubelet_probe(c, "startupProbe") == grpc.StatusCode.UNAVAILABLE
        pg_proxy.restore()
        probe_like_kubelet(c, proc, log)

        # The database goes away while the server runs.
        pg_proxy.cut()
        await_probe(c, "readinessProbe", NOT_SERVING, proc, log)
        # What the chart's liveness probe asked before, overall health, fails here.
        overall = {"probe": {"grpc": {"port": c["livenessProbe"]["grpc"]["port"]}}}
        assert kubelet_probe(overall, "probe") == NOT_SERVING
        # Liveness (and start-up, which asks the same) pass through the outage:
        # several storage health checks (config.healthCheckInterval) long.
        until = time.monotonic() + 2.5
        while time.monotonic() < until:
            for name in ("livenessProbe", "startupProbe"):
                got = kubelet_probe(c, name)
                assert got == SERVING, f"{name} {c[name]['grpc']} during the outage: {got}\n{log_text(log)}"
            time.sleep(0.2)
        assert kubelet_probe(c, "readinessProbe") == NOT_SERVING
        assert proc.poll() is None
        # `helm test` (health only here: tokens without tests.tokenSecret) fails.
        passed, steps = run_helm_test(docs, secrets, tmp_path)
        assert not passed and [(name, rc) for name, rc, _ in steps] == [("health", 4)], steps

        # The database is back: ready again, without a restart.
        pg_proxy.restore()
        await_probe(c, "readinessProbe", SERVING, proc, log)
        assert kubelet_probe(c, "livenessProbe") == SERVING
        assert run_helm_test(docs, secrets, tmp_path)[0]
    finally:
        rc, out = stop_pod(proc, log, pod)
    assert rc == 0, out
    assert serving_addrs(out) == (f"0.0.0.0:{gport}", f"0.0.0.0:{hport}")
    assert all(json.loads(l) for l in out.splitlines() if l.strip()), "log_format json from the ConfigMap"
    assert "storage unreachable" in out and "storage reachable and taking writes again" in out
