"""The Helm chart, by a real Helm (4, fetched by ``.ci/run``: ``tests/helm_binary.py``): linted
strictly, rendered for each values file of ``ci/`` with every object valid against Kubernetes'
schemas, values it must refuse refused with a clear message, packaged, installed as the README says
(``--dry-run=client``: no cluster here); the kustomize manifests are the chart rendered, and the
chart's README's values table is the one ``values.yaml`` makes."""

from __future__ import annotations

import json
import re
import runpy
import shlex
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.helm_binary import find_helm

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "gha-exporter"
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
CRDS = {"ServiceMonitor", "PrometheusRule"}  # the Prometheus Operator's: checked by hand below
VALUES_TABLE = runpy.run_path(str(ROOT / "deploy" / "helm" / "values_table.py"))  # a script, not a package


@pytest.fixture(name="helm", scope="module")
def _helm() -> str:
    helm = find_helm()
    if helm is None:
        pytest.skip("no helm: `python3 tests/helm_binary.py` fetches the pinned one (.ci/run does)")
    return helm


def run_helm(helm: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([helm, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def render(helm: str, *args: str) -> list[dict[str, Any]]:
    output = run_helm(
        helm, "template", "gha-exporter", str(CHART), "--namespace", "gha-exporter", *args
    ).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


def named(docs: list[dict[str, Any]], kind: str, name: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name)]
    assert len(found) == 1, (kind, name, [d["metadata"]["name"] for d in found])
    return found[0]


def env_of(docs: list[dict[str, Any]], component: str) -> dict[str, str]:
    """The GHA_EXPORTER_* a component's container gets: the ConfigMap's, then its own."""
    config = named(docs, "ConfigMap", "gha-exporter")["data"]
    [container] = named(docs, "Deployment", component)["spec"]["template"]["spec"]["containers"]
    return {**config, **{e["name"]: e["value"] for e in container.get("env", [])}}


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name.removesuffix("-values.yaml"))
def test_each_values_file_lints_strictly_and_renders_valid_objects(helm, values):
    run_helm(helm, "lint", "--strict", str(CHART), "-f", str(values))
    docs = render(helm, "-f", str(values))
    for doc in docs:
        if doc["kind"] in CRDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        kubernetes_validate.validate(doc, "1.33", strict=True)
    for kind in ("Deployment", "StatefulSet"):
        for workload in (d for d in docs if d["kind"] == kind):
            pod = workload["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            for container in pod["containers"]:
                assert container["securityContext"]["readOnlyRootFilesystem"] is True
                assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
                assert container["readinessProbe"]
                assert container["resources"]["limits"]["memory"]
    for workload in (d for d in docs if d["kind"] == "Deployment"):
        grace = workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > 10  # the processes' own stop grace (10 s) ends first


def test_defaults_bundle_redis_and_mount_the_webhook_secret(helm):
    docs = render(helm, "-f", str(CHART / "ci" / "defaults-values.yaml"))
    assert env_of(docs, "receiver")["GHA_EXPORTER_REDIS__URL"] == "redis://gha-exporter-redis:6379/0"
    assert (
        env_of(docs, "receiver")["GHA_EXPORTER_WEBHOOK__SECRETS_FILE"]
        == "/run/secrets/gha-exporter/webhook-secrets"
    )
    assert "GHA_EXPORTER_WEBHOOK__SECRETS_FILE" not in env_of(docs, "worker")
    assert named(docs, "StatefulSet", "redis")
    assert named(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 2
    assert "replicas" not in named(docs, "Deployment", "receiver")["spec"]  # the autoscaler decides
    assert not [d for d in docs if d["kind"] == "Secret"]  # the user's own Secret is used
    [hook] = [d for d in docs if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    assert hook["kind"] == "Pod"


def test_external_redis_with_sentinels_password_tls_and_a_github_app(helm):
    docs = render(helm, "-f", str(CHART / "ci" / "external-redis-values.yaml"))
    assert not [d for d in docs if d["kind"] == "StatefulSet"]
    worker = env_of(docs, "worker")
    assert json.loads(worker["GHA_EXPORTER_REDIS__SENTINELS"])[0] == "redis-sentinel-0.redis:26379"
    assert worker["GHA_EXPORTER_REDIS__MIN_REPLICAS_ACK"] == "1"
    assert worker["GHA_EXPORTER_REDIS__PASSWORD_FILE"] == "/run/secrets/redis/redis-password"
    assert worker["GHA_EXPORTER_REDIS__TLS_CERT_FILE"] == "/run/secrets/redis-tls/tls.crt"
    assert worker["GHA_EXPORTER_GITHUB__APP_PRIVATE_KEY_FILE"] == "/run/secrets/github/app-private-key"
    assert json.loads(worker["GHA_EXPORTER_GITHUB__HOOKS"]) == [
        "orgs/my-org/hooks/654321",
        "repos/my-org/my-repo/hooks/123456",
    ]
    assert json.loads(worker["GHA_EXPORTER_GITHUB__RUNNERS"]) == ["orgs/my-org"]
    assert "GHA_EXPORTER_GITHUB__APP_PRIVATE_KEY_FILE" not in env_of(
        docs, "receiver"
    )  # only the worker calls GitHub
    assert worker["GHA_EXPORTER_TRACES__OTLP_ENDPOINT"] == "https://otlp.example.com/v1/traces"
    assert worker["GHA_EXPORTER_TRACES__HEADERS_FILE"] == "/run/secrets/traces/headers"
    assert "GHA_EXPORTER_TRACES__HEADERS_FILE" not in env_of(docs, "receiver")  # only the worker sends
    volumes = named(docs, "Deployment", "worker")["spec"]["template"]["spec"]["volumes"]
    assert {v["secret"]["secretName"] for v in volumes} == {
        "redis-credentials",
        "redis-tls",
        "gha-exporter-github",
        "gha-exporter-traces",
    }


def test_monitoring_objects_carry_the_projects_own_rules_and_dashboard(helm):
    docs = render(helm, "-f", str(CHART / "ci" / "monitoring-values.yaml"))
    rules = named(docs, "PrometheusRule")
    assert rules["metadata"]["labels"]["release"] == "prometheus"
    assert (
        rules["spec"]["groups"]
        == yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
    )
    dashboard = named(docs, "ConfigMap", "dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    on_disk = json.loads((ROOT / "deploy/grafana/dashboards/gha-exporter.json").read_text())
    assert json.loads(dashboard["data"]["gha-exporter.json"]) == on_disk
    secret = named(docs, "Secret", "webhook")  # created from webhook.secret
    assert secret["stringData"]["webhook-secrets"] == "a-secret-for-the-chart-to-keep"


def test_fixed_replicas_without_autoscaling(helm):
    docs = render(helm, "-f", str(CHART / "ci" / "fixed-replicas-values.yaml"))
    assert named(docs, "Deployment", "receiver")["spec"]["replicas"] == 3
    assert not [
        d for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor")
    ]
    assert env_of(docs, "worker")["GHA_EXPORTER_REDIS__URL"] == "redis://redis.example.internal:6379/0"


def test_the_ingress_routes_webhook_only(helm):
    docs = render(helm, "-f", str(CHART / "ci" / "ingress-values.yaml"))
    [rule] = named(docs, "Ingress")["spec"]["rules"]
    assert rule["host"] == "hooks.example.com"
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/webhook", "Exact")]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["--set", "worker.replicas=-1"], r"worker/replicas.*minimum|minimum.*-1"),
        (["--set", "receiver.replica=3"], r"additional propert(y|ies) 'replica'"),
        (["--set", "image.pullPolicy=Sometimes"], r"pullPolicy"),
        (["--set", "redis.url=http://redis:6379"], r"redis/url"),
        ([], r"set webhook.existingSecret .* or webhook.secret"),
        (
            ["--set", "webhook.existingSecret=s", "--set", "redis.bundled.enabled=false"],
            r"set redis.url or redis.sentinels",
        ),
    ],
    ids=[
        "negative replicas",
        "unknown key",
        "bad pull policy",
        "bad redis url",
        "no webhook secret",
        "no redis",
    ],
)
def test_values_that_cannot_work_are_refused_with_a_clear_message(helm, settings, message):
    result = run_helm(helm, "template", "gha-exporter", str(CHART), *settings, ok=False)
    assert result.returncode != 0
    assert re.search(message, result.stderr), result.stderr


def test_the_chart_packages_with_its_linked_files(helm, tmp_path):
    run_helm(helm, "package", str(CHART), "-d", str(tmp_path))
    [package] = tmp_path.glob("gha-exporter-*.tgz")
    with tarfile.open(package) as archive:
        alerts = archive.extractfile("gha-exporter/files/alerts.yml")
        assert alerts is not None
        assert alerts.read() == (ROOT / "deploy/prometheus/alerts.yml").read_bytes()
        assert "gha-exporter/values.schema.json" in archive.getnames()
        assert not [n for n in archive.getnames() if "/ci/" in n]


def readme_commands(prefix: str) -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    lines = [
        line.split("  #")[0].strip() for block in blocks for line in block.replace("\\\n", " ").splitlines()
    ]
    return [shlex.split(line) for line in lines if line.startswith(prefix)]


def test_the_readmes_install_command_installs(helm):
    [install] = readme_commands("helm install")
    assert install[3] == "deploy/helm/gha-exporter"
    result = run_helm(helm, *install[1:], "--dry-run=client")
    assert "kind: Deployment" in result.stdout
    assert "NOTES:" in result.stdout


def test_the_kustomize_manifests_are_the_chart_rendered(helm):
    values = KUSTOMIZE / "values.yaml"
    header = values.read_text()
    found = re.search(r"#   (helm template .*?) >", header.replace("\\\n#    ", ""), re.S)
    assert found, "deploy/kubernetes/values.yaml no longer says how it is rendered"
    command = shlex.split(found[1])
    assert command[:4] == ["helm", "template", "gha-exporter", "deploy/helm/gha-exporter"]
    rendered = run_helm(helm, *command[1:]).stdout
    assert rendered == (KUSTOMIZE / "gha-exporter.yaml").read_text(), (
        "deploy/kubernetes/gha-exporter.yaml is not the chart rendered:"
        " run the command in deploy/kubernetes/values.yaml"
    )


def test_the_charts_values_table_is_the_generated_one():
    readme = (CHART / "README.md").read_text()
    found = re.search(r"<!-- helm-values:start.*?-->\n(.*?)<!-- helm-values:end -->", readme, re.S)
    assert found, "the chart's README lost its values markers"
    assert found.group(1) == VALUES_TABLE["table"]()


def test_every_value_is_described():
    text = (CHART / "values.yaml").read_text()
    keys = [key for key, _ in VALUES_TABLE["described"](text)]

    def leaves(node: Any, prefix: str = "") -> list[str]:
        if not isinstance(node, dict) or not node or prefix in keys:
            return [prefix]
        return [leaf for key, value in node.items() for leaf in leaves(value, f"{prefix}.{key}".strip("."))]

    for leaf in leaves(yaml.safe_load(text)):
        assert any(leaf == key or leaf.startswith(key + ".") for key in keys), (
            f"{leaf} has no `# --` description"
        )
