"""The deployment artifacts, each checked by the real tool that consumes it."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from receiver.metrics import ReceiverMetrics
from shared.settings import OPTIONS
from tests.conftest import Exporter
from worker.__main__ import trace_loop

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
KNOWN_ENV = {o.env for o in OPTIONS} | {f"{o.env}_FILE" for o in OPTIONS} | {"GHA_EXPORTER_CONFIG"}


def run(*command, cwd=ROOT):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_dockerfile_passes_hadolint():
    run(str(BIN / "hadolint"), "Dockerfile")


def test_compose_file_follows_the_compose_specification():
    run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")


def test_taskfile_follows_its_schema_and_every_task_has_a_description():
    run(str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.taskfile", "Taskfile.yml")
    tasks = yaml.safe_load((ROOT / "Taskfile.yml").read_text())["tasks"]
    assert all(task.get("desc") for task in tasks.values())
    for needed in ("setup", "run", "test", "lint", "fmt", "typecheck", "bench", "compose:up", "compose:down",
                   "image"):  # fmt: skip
        assert needed in tasks, needed


def test_compose_stack_is_wired_as_documented():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    redis_command = " ".join(services["redis"]["command"])
    for flag in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert flag in redis_command
    assert services["redis"]["healthcheck"]
    assert "/data" in services["redis"]["volumes"][0]
    for service in services.values():
        assert "depends_on" not in service  # the processes wait for Redis: no engine's start order needed
    assert services["receiver"]["deploy"] == {"mode": "replicated", "replicas": 2}  # what every engine reads
    for name, image in (
        ("redis", "REDIS_IMAGE"),
        ("entry", "PROXY_IMAGE"),
        ("prometheus", "PROMETHEUS_IMAGE"),
    ):
        assert services[name]["image"].startswith("${" + image + ":-"), name  # official by default
    assert services["receiver"]["build"]["args"]["BASE_IMAGE"].startswith("${PYTHON_IMAGE:-python:")
    assert "ports" not in services["receiver"]  # replicas sit behind the one entry point
    assert services["entry"]["ports"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
        for variable in service.get("environment", {}):
            assert not variable.startswith("GHA_EXPORTER_") or variable in KNOWN_ENV, variable
    lines = (ROOT / ".env.example").read_text().splitlines()
    example = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    assert "GHA_EXPORTER_WEBHOOK__SECRETS" in example


@pytest.fixture(name="manifests", scope="module")
def _manifests():
    rendered = run(str(BIN / "kubectl"), "kustomize", str(DEPLOY / "kubernetes"))
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def test_kustomization_renders_valid_kubernetes_objects(manifests):
    kinds = sorted(doc["kind"] for doc in manifests)
    assert kinds == sorted([
        "Namespace", "ConfigMap", "Secret", "Service", "Service", "Service", "StatefulSet", "Deployment",
        "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "NetworkPolicy",
        "ServiceMonitor",
    ])  # fmt: skip
    for doc in manifests:
        assert doc["metadata"].get("namespace", "gha-exporter") == "gha-exporter"
        if doc["kind"] == "ServiceMonitor":
            continue  # a CRD: checked against the Services below
        kubernetes_validate.validate(doc, "1.33", strict=True)


def by_kind(manifests, kind, name):
    return next(doc for doc in manifests if doc["kind"] == kind and doc["metadata"]["name"] == name)


def test_workloads_are_hardened_and_probed(manifests):
    receiver = by_kind(manifests, "Deployment", "gha-exporter-receiver")
    [container] = receiver["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["image"] == "gha-exporter:0.1.0"  # kustomize's images: rewrites it
    for workload in (
        receiver,
        by_kind(manifests, "Deployment", "gha-exporter-worker"),
        by_kind(manifests, "StatefulSet", "gha-exporter-redis"),
    ):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]
    configmap = by_kind(manifests, "ConfigMap", "gha-exporter")
    assert set(configmap["data"]) <= KNOWN_ENV
    assert by_kind(manifests, "HorizontalPodAutoscaler", "gha-exporter-receiver")["spec"]["minReplicas"] >= 2
    assert by_kind(manifests, "PodDisruptionBudget", "gha-exporter-receiver")["spec"]["minAvailable"] >= 1
    secret = by_kind(manifests, "Secret", "gha-exporter-webhook")
    mounted = receiver["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-secret", "secret": {"secretName": secret["metadata"]["name"]}} in mounted


def test_service_monitor_and_network_policy_match_the_services(manifests):
    monitor = by_kind(manifests, "ServiceMonitor", "gha-exporter")
    wanted = {e["key"]: set(e["values"]) for e in monitor["spec"]["selector"]["matchExpressions"]}
    services = [
        doc for doc in manifests if doc["kind"] == "Service" and not doc["metadata"]["name"].endswith("redis")
    ]
    for service in services:
        labels = service["metadata"]["labels"]
        assert all(labels[key] in values for key, values in wanted.items()), service["metadata"]["name"]
    port_names = {port["name"] for s in services for port in s["spec"]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} == port_names
    policy = by_kind(manifests, "NetworkPolicy", "gha-exporter-worker")
    [rule] = policy["spec"]["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert rule["ports"] == [{"port": 9100, "protocol": "TCP"}]


promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian's prometheus) not installed"
)


@promtool
def test_alert_rules_pass_promtool_check_and_their_unit_tests():
    run("promtool", "check", "rules", "alerts.yml", cwd=PROMETHEUS)
    run("promtool", "check", "config", "prometheus.yml", cwd=PROMETHEUS)
    output = run("promtool", "test", "rules", "alerts_test.yml", cwd=PROMETHEUS)
    assert "SUCCESS" in output


def test_every_alert_has_a_unit_test():
    alerts = {
        r["alert"]
        for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    tested = {
        case["alertname"] for test in tests for case in test["alert_rule_test"] if case.get("exp_alerts")
    }
    assert alerts == tested


def test_dashboard_is_the_generated_one():
    generated = run(sys.executable, str(DEPLOY / "grafana" / "dashboard.py"))
    assert json.loads(generated) == json.loads(
        (DEPLOY / "grafana" / "dashboards" / "gha-exporter.json").read_text()
    )


def exposed_sample_names(make_exporter) -> set[str]:
    exporter: Exporter = make_exporter(GHA_EXPORTER_TRACES__OTLP_ENDPOINT="http://127.0.0.1:9/v1/traces")
    trace_loop(exporter.connection, exporter.settings, exporter.registry)  # the traces' families
    ReceiverMetrics(exporter.registry, "github_actions_")
    names = set()
    for family in exporter.families():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        names |= {family.name + suffix for suffix in suffixes}
    return names


def promql_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "gha-exporter.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [
        t["query"]["query"] for t in dashboard["templating"]["list"] if isinstance(t.get("query"), dict)
    ]
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return exprs


def test_every_query_names_metrics_the_exporter_exposes(make_exporter):
    exposed = exposed_sample_names(make_exporter)
    exprs = promql_expressions()
    assert len(exprs) > 30
    used = {name for expr in exprs for name in re.findall(r"\bgithub_actions_[a-z0-9_]+", expr)}
    assert used
    assert used <= exposed, used - exposed
    for expr in exprs:  # the only other metric: Prometheus's own `up`, for the exporter's targets
        others = set(re.findall(r"\b([a-z_]+)\{", expr)) - used
        assert others <= {"up"}, (others, expr)


def test_exemplars_are_stored_requested_and_linked_to_github():
    """Prometheus in compose keeps exemplars, the histogram panels ask for them, and the provisioned
    data source links a star to the job (run) on GitHub from its ids and its series' repository."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "--enable-feature=exemplar-storage" in compose["services"]["prometheus"]["command"]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "gha-exporter.json").read_text())
    asking = {
        name
        for p in dashboard["panels"]
        for t in p.get("targets", [])
        if t.get("exemplar")
        for name in re.findall(r"github_actions_[a-z_]+_bucket", t["expr"])
    }
    assert asking == {
        "github_actions_job_run_duration_seconds_bucket",
        "github_actions_job_queue_duration_seconds_bucket",
        "github_actions_workflow_run_duration_seconds_bucket",
    }
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    [source] = provisioned["datasources"]
    assert source["url"] == "http://prometheus:9090"  # the compose service
    destinations = source["jsonData"]["exemplarTraceIdDestinations"]
    links = {d["name"]: d["url"] for d in destinations if "url" in d}
    assert {d["name"]: d.get("datasourceUid") for d in destinations if "url" not in d} == {
        "trace_id": "tempo"
    }
    expanded = {  # as Grafana reads it: ${VAR} from the environment, $$ a literal $
        name: url.replace("${GITHUB_WEB_URL}", "https://github.com").replace("$$", "$")
        for name, url in links.items()
    }
    fields = {"${__data.fields.repository}": "o/r", "${__data.fields.run_id}": "6454805877"}
    for name, value in (("job_id", "17556730984"), ("run_id", "6454805877")):
        url = expanded[name].replace("${__value.raw}", value)
        for placeholder, filled in fields.items():
            url = url.replace(placeholder, filled)
        assert (
            url
            == {
                "job_id": "https://github.com/o/r/actions/runs/6454805877/job/17556730984",
                "run_id": "https://github.com/o/r/actions/runs/6454805877",
            }[name]
        )
    assert "GITHUB_WEB_URL" in compose["services"]["grafana"]["environment"]
