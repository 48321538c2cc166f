"""deploy/k8s/: the kustomize overlays render, validate, and use only what the CLI reads.

* Rendering: ``kubectl kustomize`` (kustomize v5 built into kubectl).  kubectl
  is not in Debian's, PyPI's or npm's packages; it ships with this kind of
  machine (the google-cloud-cli package of its image), so CI has it.
* Validation: every rendered object against the OpenAPI schemas of each
  Kubernetes release in ``KUBERNETES_VERSIONS`` (PyPI package
  ``kubernetes-validate``, strict: unknown fields are errors).  The Prometheus
  Operator's CRDs (ServiceMonitor, PrometheusRule) are not in those schemas:
  they are checked against a JSON Schema of the fields used here, written from
  the operator's ``monitoring.coreos.com/v1`` API, and the PrometheusRule's
  groups must equal deploy/monitoring/tagledger-rules.yaml (which promtool
  checks, tests/test_deploy_monitoring.py).
* No cluster runs here: nothing is applied.  See docs/deploy.md for what that
  leaves unproven.
"""

from __future__ import annotations

import asyncio
import filecmp
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import typer.main
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("single-store", "multi-store")
# The releases the manifests are checked against (autoscaling/v2 and policy/v1
# are GA in all; 1.31 was the oldest release still maintained upstream when
# this was written).
KUBERNETES_VERSIONS = ("1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0", "1.36.0")
TEST_SECRETS = {
    "ledger.env": "TAGLEDGER_DATABASE_URL=postgresql://tagledger:pg-secret@db.test:5432/tagledger\n",
    "mqtt.env": "MQTT_GATEWAY_PASSWORD=gw-secret\nMQTT_EDGE_PASSWORD=edge-secret\n",
}

Object = dict[str, Any]


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is missing: it renders the kustomizations (`kubectl kustomize`); it comes with this "
            "machine image (google-cloud-cli), not with Debian, PyPI or npm",
            pytrace=False,
        )
    return kubectl


def _kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )


def _copy_tree(tmp_path: Path) -> Path:
    """deploy/k8s/ as an operator would have it, with secrets files written (they are kept out of git)."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("ledger.env", "mqtt.env", "tls"))
    return tree


def _write_secrets(overlay: Path) -> None:
    """What the operator writes: the two env files and the broker's TLS files (tagledger mqtt provision --tls)."""
    from tagledger.app import mqtt_tls

    for name, text in TEST_SECRETS.items():
        (overlay / name).write_text(text)
    mqtt_tls.write(overlay / "tls", server_hosts=["mqtt.test"], client_names=[])


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Object]]:
    overlay: str = request.param
    tree = _copy_tree(tmp_path_factory.mktemp(overlay))
    _write_secrets(tree / "overlays" / overlay)
    result = _kustomize(tree / "overlays" / overlay)
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    return overlay, objects


def _one(objects: list[Object], kind: str, name: str) -> Object:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def _by_prefix(objects: list[Object], kind: str, prefix: str) -> Object:
    """A generated object (kustomize suffixes a content hash to its name)."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].rpartition("-")[0] == prefix]
    assert len(found) == 1, f"{kind}/{prefix}-*: {len(found)} rendered"
    return found[0]


def _pod_spec(workload: Object) -> Object:
    spec: Object = workload["spec"]["template"]["spec"]
    return spec


def _env(container: Object) -> dict[str, Object]:
    return {e["name"]: e for e in container.get("env", [])}


# --------------------------------------------------------------------------- #
# what renders


def test_overlay_renders_the_stack(rendered: tuple[str, list[Object]]) -> None:
    _, objects = rendered
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    expected = {
        ("Namespace", "tagledger"),
        ("Job", "tagledger-migrate"),
        ("StatefulSet", "tagledger-gateway"),
        ("Service", "tagledger-gateway"),
        ("PodDisruptionBudget", "tagledger-gateway"),
        ("Deployment", "tagledger-api"),
        ("Service", "tagledger-api"),
        ("HorizontalPodAutoscaler", "tagledger-api"),
        ("PodDisruptionBudget", "tagledger-api"),
        ("StatefulSet", "tagledger-mosquitto"),
        ("Service", "tagledger-mosquitto"),
        ("ServiceMonitor", "tagledger-gateway"),
        ("ServiceMonitor", "tagledger-api"),
        ("PrometheusRule", "tagledger"),
    }
    assert expected <= names
    for kind, prefix in (
        ("Secret", "tagledger-ledger"),
        ("Secret", "tagledger-mqtt"),
        ("Secret", "tagledger-mqtt-tls"),
        ("ConfigMap", "tagledger-site"),
        ("ConfigMap", "tagledger-mosquitto"),
    ):
        _by_prefix(objects, kind, prefix)
    assert len(objects) == len(expected) + 5
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"tagledger"}


def test_secrets_come_from_the_overlay_files(rendered: tuple[str, list[Object]]) -> None:
    import base64

    _, objects = rendered
    ledger = _by_prefix(objects, "Secret", "tagledger-ledger")["data"]
    mqtt = _by_prefix(objects, "Secret", "tagledger-mqtt")["data"]
    assert base64.b64decode(ledger["TAGLEDGER_DATABASE_URL"]).decode().startswith("postgresql://tagledger:pg-secret@")
    assert {k: base64.b64decode(v).decode() for k, v in mqtt.items()} == {
        "MQTT_GATEWAY_PASSWORD": "gw-secret",
        "MQTT_EDGE_PASSWORD": "edge-secret",
    }
    tls = _by_prefix(objects, "Secret", "tagledger-mqtt-tls")["data"]
    assert set(tls) == {"ca.crt", "server.crt", "server.key"}  # not ca.key: the CA's key stays with the operator
    assert base64.b64decode(tls["server.key"]).startswith(b"-----BEGIN")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_overlay_without_its_secrets_files_does_not_render(overlay: str, tmp_path: Path) -> None:
    """No default passwords to deploy by mistake: the operator must write ledger.env and mqtt.env."""
    tree = _copy_tree(tmp_path)
    result = _kustomize(tree / "overlays" / overlay)
    assert result.returncode != 0
    assert "ledger.env" in result.stderr or "mqtt.env" in result.stderr or "tls/" in result.stderr


# --------------------------------------------------------------------------- #
# schemas


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(
    rendered: tuple[str, list[Object]], version: str
) -> None:
    _, objects = rendered
    checked = 0
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # CRDs: see test_prometheus_operator_objects_match_their_schema
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} on Kubernetes {version}: {exc}")
        checked += 1
    assert checked == len(objects) - 3


def test_the_validator_refuses_a_broken_object(rendered: tuple[str, list[Object]]) -> None:
    """The check above can fail: a misspelt field and a wrong type are refused."""
    _, objects = rendered
    job = _one(objects, "Job", "tagledger-migrate")
    misspelt = yaml.safe_load(yaml.safe_dump(job))
    misspelt["spec"]["backofLimit"] = 6
    wrong_type = yaml.safe_load(yaml.safe_dump(job))
    wrong_type["spec"]["backoffLimit"] = "six"
    for bad in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[-1], strict=True)


_SELECTOR = {
    "type": "object",
    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
    "required": ["matchLabels"],
    "additionalProperties": False,
}
_METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["name"],
    "additionalProperties": False,
}
_DURATION = {
    "type": "string",
    "pattern": r"^((([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?|0)$",
}
# The fields of monitoring.coreos.com/v1 that these manifests use, with the
# operator's types; anything else is refused so a typo cannot pass.
CRD_SCHEMAS: dict[str, Object] = {
    "ServiceMonitor": {
        "type": "object",
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "properties": {
                    "selector": _SELECTOR,
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string", "pattern": "^/"},
                                "interval": _DURATION,
                            },
                            "required": ["port"],
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["selector", "endpoints"],
                "additionalProperties": False,
            },
        },
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
    },
    "PrometheusRule": {
        "type": "object",
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "properties": {
                    "groups": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "alert": {"type": "string"},
                                            "record": {"type": "string"},
                                            "expr": {"type": "string", "minLength": 1},
                                            "for": _DURATION,
                                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                            "annotations": {
                                                "type": "object",
                                                "additionalProperties": {"type": "string"},
                                            },
                                        },
                                        "required": ["expr"],
                                        "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                        "additionalProperties": False,
                                    },
                                },
                            },
                            "required": ["name", "rules"],
                            "additionalProperties": False,
                        },
                    }
                },
                "required": ["groups"],
                "additionalProperties": False,
            },
        },
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
    },
}


def test_prometheus_operator_objects_match_their_schema(rendered: tuple[str, list[Object]]) -> None:
    _, objects = rendered
    crds = [o for o in objects if o["apiVersion"].startswith("monitoring.coreos.com/")]
    assert sorted(o["kind"] for o in crds) == ["PrometheusRule", "ServiceMonitor", "ServiceMonitor"]
    for obj in crds:
        jsonschema.validate(obj, CRD_SCHEMAS[obj["kind"]])
    broken = yaml.safe_load(yaml.safe_dump(_one(objects, "ServiceMonitor", "tagledger-api")))
    broken["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, CRD_SCHEMAS["ServiceMonitor"])


def test_prometheus_rule_holds_the_alert_rules_file(rendered: tuple[str, list[Object]]) -> None:
    _, objects = rendered
    rule = _one(objects, "PrometheusRule", "tagledger")
    rules_file = yaml.safe_load((REPO / "deploy" / "monitoring" / "tagledger-rules.yaml").read_text())
    assert rule["spec"]["groups"] == rules_file["groups"], (
        "deploy/k8s/components/monitoring/prometheusrule.yaml differs from deploy/monitoring/tagledger-rules.yaml:"
        " regenerate it (spec.groups = the rules file's groups)"
    )


# --------------------------------------------------------------------------- #
# the manifests use what the CLI and the image really have


def _cli_params() -> dict[str, dict[str, Any]]:
    """Per command of `tagledger`, its options by environment variable."""
    from tagledger.app.cli import app

    root = typer.main.get_command(app)
    commands: dict[str, Any] = getattr(root, "commands", {})
    out: dict[str, dict[str, Any]] = {}
    for name, command in commands.items():
        by_env: dict[str, Any] = {}
        for param in command.params:
            envvar = param.envvar
            for var in [envvar] if isinstance(envvar, str) else list(envvar or []):
                by_env[var] = param
        out[name] = by_env
    return out


def _settings_envvars(command: str) -> set[str]:
    """Variables a role reads through its pydantic settings model beyond its CLI options."""
    if command != "api":
        return set()
    from cloud.settings import ApiSettings

    prefix = ApiSettings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in ApiSettings.model_fields}


def _tagledger_containers(objects: list[Object]) -> list[tuple[str, Object]]:
    out = []
    for obj in objects:
        if obj["kind"] not in {"Deployment", "StatefulSet", "Job"}:
            continue
        spec = _pod_spec(obj)
        for container in spec.get("initContainers", []) + spec["containers"]:
            if container["image"].split(":")[0].endswith("tagledger"):
                out.append((f"{obj['kind']}/{obj['metadata']['name']}", container))
    return out


def _placeholder(entry: Object, site: Path) -> str:
    """What a variable holds in the pod: its literal value, or a stand-in for a Secret / field reference."""
    if "value" in entry:
        value: str = entry["value"]
        # The site file is mounted from a ConfigMap; here, the overlay's own copy.
        return str(site) if value.startswith("/etc/tagledger/") else value
    ref = entry["valueFrom"]
    if "fieldRef" in ref:
        return "tagledger-gateway-0"
    key = ref["secretKeyRef"]["key"]
    return dict(line.split("=", 1) for text in TEST_SECRETS.values() for line in text.splitlines())[key]


def _parse(command: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Let the real CLI parse `tagledger <command>` with this environment (the command is not run)."""
    from tagledger.app.cli import app

    for name in list(os.environ):
        if name.startswith("TAGLEDGER_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    root = typer.main.get_command(app)
    commands: dict[str, Any] = getattr(root, "commands", {})
    params: dict[str, Any] = commands[command].make_context(command, []).params
    return params


def test_commands_and_variables_exist_in_the_cli(
    rendered: tuple[str, list[Object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay, objects = rendered
    site = K8S / "overlays" / overlay / "site.yaml"
    cli = _cli_params()
    containers = _tagledger_containers(objects)
    assert sorted(c["args"][0] for _, c in containers) == ["api", "gateway", "migrate"]
    for where, container in containers:
        command = container["args"][0]
        assert command in cli, f"{where} runs `tagledger {command}`, which the CLI lacks"
        assert "command" not in container, f"{where}: the image's entrypoint is tagledger; give args only"
        known = set(cli[command]) | _settings_envvars(command)
        env = {name: _placeholder(entry, site) for name, entry in _env(container).items()}
        unknown = set(env) - known
        assert not unknown, f"{where}: `tagledger {command}` reads no {sorted(unknown)}"
        # Every value is one the CLI accepts: it parses them as it would in the pod.
        params = _parse(command, env, monkeypatch)
        if command == "api":
            from cloud.settings import ApiSettings

            settings = ApiSettings()  # the env-only settings, parsed from the same environment
            assert settings.shutdown_grace_s == int(env["TAGLEDGER_API_SHUTDOWN_GRACE_S"])
        if command == "gateway":
            from gateway.settings import GatewaySettings

            leases = env["TAGLEDGER_GATEWAY_LEASES"] == "true"
            assert params["leases"] is leases
            # The options pass the values on as given; the settings model converts and checks them.
            given = {k: v for k, v in params.items() if k in GatewaySettings.model_fields and v is not None}
            gateway = GatewaySettings(**given)
            assert gateway.health_port == 9108
            assert gateway.client_id == "tagledger-gateway-0"
            assert gateway.mqtt_username == "tagledger-gateway"


def test_a_value_the_cli_refuses_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    site = str(K8S / "overlays" / "single-store" / "site.yaml")
    with pytest.raises(typer.BadParameter):
        _parse("gateway", {"TAGLEDGER_SITE": site, "TAGLEDGER_GATEWAY_LEASES": "perhaps"}, monkeypatch)


def test_references_resolve(rendered: tuple[str, list[Object]]) -> None:
    """Every Secret key, ConfigMap, Service port and selector referenced is rendered."""
    _, objects = rendered
    secrets = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "Secret"}
    configmaps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    workloads = [o for o in objects if o["kind"] in {"Deployment", "StatefulSet", "Job"}]
    for workload in workloads:
        spec = _pod_spec(workload)
        for container in spec.get("initContainers", []) + spec["containers"]:
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in secrets, ref
                    assert ref["key"] in secrets[ref["name"]], ref
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, volume
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, volume
    pod_labels = [w["spec"]["template"]["metadata"]["labels"] for w in workloads]
    services = [o for o in objects if o["kind"] == "Service"]
    for service in services:
        selector = service["spec"]["selector"]
        matches = [w for w in workloads if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert matches, f"Service {service['metadata']['name']} selects no pod"
        ports = {p["name"] for w in matches for c in _pod_spec(w)["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)
    for pdb in (o for o in objects if o["kind"] == "PodDisruptionBudget"):
        wanted = pdb["spec"]["selector"]["matchLabels"].items()
        assert any(wanted <= labels.items() for labels in pod_labels), pdb["metadata"]["name"]
    for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
        wanted = monitor["spec"]["selector"]["matchLabels"].items()
        (service,) = [s for s in services if wanted <= s["metadata"]["labels"].items()]
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
    hpa = _one(objects, "HorizontalPodAutoscaler", "tagledger-api")
    target = hpa["spec"]["scaleTargetRef"]
    _one(objects, target["kind"], target["name"])
    gateway = _one(objects, "StatefulSet", "tagledger-gateway")
    assert _one(objects, "Service", gateway["spec"]["serviceName"])["spec"]["clusterIP"] == "None"


def test_gateway_replicas_share_stores_only_with_leases(rendered: tuple[str, list[Object]]) -> None:
    overlay, objects = rendered
    gateway = _one(objects, "StatefulSet", "tagledger-gateway")
    (container,) = _pod_spec(gateway)["containers"]
    env = _env(container)
    leases = env["TAGLEDGER_GATEWAY_LEASES"]["value"] == "true"
    replicas = gateway["spec"]["replicas"]
    # Several gateways without leases would ingest the same stores twice.
    assert replicas == 1 or leases
    assert (replicas, leases) == ({"single-store": (1, False), "multi-store": (3, True)}[overlay])
    # Each replica's MQTT client id is its pod name: stable, so its broker session survives restarts.
    assert env["TAGLEDGER_GATEWAY_CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    hpa = _one(objects, "HorizontalPodAutoscaler", "tagledger-api")
    assert hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in _one(objects, "Deployment", "tagledger-api")["spec"]  # the HPA owns it


@pytest.fixture(scope="module")
def gateway_health_paths() -> set[str]:
    """The paths the gateway's real health server answers 200 on (when ready)."""
    from gateway.health import HealthServer

    async def probe() -> set[str]:
        async def ready() -> bool:
            return True

        async with HealthServer("127.0.0.1", 0, ready=ready, metrics=lambda: b"") as server:
            ok = set()
            for path in ("/healthz", "/readyz", "/metrics", "/nope"):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
                await writer.drain()
                status = (await reader.readline()).split()[1]
                writer.close()
                await writer.wait_closed()
                if status == b"200":
                    ok.add(path)
            return ok

    paths = asyncio.run(probe())
    assert paths == {"/healthz", "/readyz", "/metrics"}
    return paths


def test_probes_hit_the_ports_and_paths_the_roles_serve(
    rendered: tuple[str, list[Object]], gateway_health_paths: set[str]
) -> None:
    _, objects = rendered
    from cloud.health.endpoints import router

    api_paths = {getattr(r, "path", "") for r in router.routes}
    for kind, name, port_var, paths in (
        ("StatefulSet", "tagledger-gateway", "TAGLEDGER_GATEWAY_HEALTH_PORT", gateway_health_paths),
        ("Deployment", "tagledger-api", "TAGLEDGER_API_PORT", api_paths),
    ):
        (container,) = _pod_spec(_one(objects, kind, name))["containers"]
        env = _env(container)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            http = container[probe]["httpGet"]
            assert ports[http["port"]] == int(env[port_var]["value"]), (name, probe)
            assert http["path"] in paths, (name, probe, http["path"])
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        host_var = "TAGLEDGER_GATEWAY_HEALTH_HOST" if name.endswith("gateway") else "TAGLEDGER_API_HOST"
        assert env[host_var]["value"] == "0.0.0.0"  # reachable by the kubelet


def test_pods_run_unprivileged_with_pinned_images(rendered: tuple[str, list[Object]]) -> None:
    _, objects = rendered
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    compose = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())
    for workload in (o for o in objects if o["kind"] in {"Deployment", "StatefulSet", "Job"}):
        spec = _pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        # The namespace enforces the "restricted" Pod Security Standard, which requires these.
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        volume_kinds = {k for v in spec.get("volumes", []) for k in v if k != "name"}
        assert volume_kinds <= {"configMap", "secret", "emptyDir", "persistentVolumeClaim"}
        assert spec["automountServiceAccountToken"] is False
        for container in spec.get("initContainers", []) + spec["containers"]:
            image = container["image"]
            assert ":" in image, image
            assert not image.endswith(":latest"), image
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            if image.startswith("tagledger:"):
                uid = spec["securityContext"]["runAsUser"]
                assert f"USER {uid}:{uid}" in dockerfile
            else:
                assert image == compose["services"]["mosquitto"]["image"]
    namespace = _one(objects, "Namespace", "tagledger")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --------------------------------------------------------------------------- #
# files kept in step


def test_mosquitto_files_are_copies_of_deploy_mosquitto() -> None:
    for name in ("mosquitto.conf", "acl", "acl-health"):
        assert filecmp.cmp(K8S / "base" / "mosquitto" / name, REPO / "deploy" / "mosquitto" / name, shallow=False), (
            f"deploy/k8s/base/mosquitto/{name} differs from deploy/mosquitto/{name}: copy it again"
        )


def test_site_files_are_valid() -> None:
    from tagledger.site import EXAMPLE_SITE, load_site

    single = load_site(K8S / "overlays" / "single-store" / "site.yaml")
    assert [store.id for store in single.stores] == [store.id for store in load_site(EXAMPLE_SITE).stores]
    chain = load_site(K8S / "overlays" / "multi-store" / "site.yaml")
    assert len(chain.stores) >= 3
    for overlay in OVERLAYS:
        example = K8S / "overlays" / overlay
        assert (example / "ledger.env.example").is_file()
        assert (example / "mqtt.env.example").is_file()


def test_mosquitto_finds_every_file_its_configuration_names(rendered: tuple[str, list[Object]], tmp_path: Path) -> None:
    """The init container's script, run here with the same Secret values, creates every file
    under /mosquitto/auth that mosquitto.conf names; the other paths lie on the pod's volumes."""
    from tagledger.app import mqtt_tls

    _, objects = rendered
    pod = _pod_spec(_one(objects, "StatefulSet", "tagledger-mosquitto"))
    (init,) = pod["initContainers"]
    (broker,) = pod["containers"]
    if shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto_passwd is missing (Debian package 'mosquitto')", pytrace=False)
    auth, tls_in = tmp_path / "auth", tmp_path / "tls-in"
    auth.mkdir()
    mqtt_tls.write(tls_in, server_hosts=["mqtt.test"], client_names=[])
    script = init["args"][0].replace("/mosquitto/auth", str(auth)).replace("/tls-in", str(tls_in))
    env = {"PATH": os.environ["PATH"], **{e["name"]: _placeholder(e, tmp_path) for e in init["env"]}}
    subprocess.run([*init["command"], script], env=env, check=True, timeout=30, capture_output=True)

    conf = (K8S / "base" / "mosquitto" / "mosquitto.conf").read_text()
    keys = {"cafile", "certfile", "keyfile", "password_file", "acl_file", "persistence_location"}
    paths = [line.split()[1] for line in conf.splitlines() if line.split()[:1] and line.split()[0] in keys]
    assert len(paths) >= 6, paths
    mounts = [m["mountPath"] for m in broker["volumeMounts"]]
    for path in paths:
        assert any(path.startswith(m.rstrip("/") + "/") for m in mounts), path
        if path.startswith("/mosquitto/auth/"):
            made = auth / path.removeprefix("/mosquitto/auth/")
            assert made.is_file(), f"the init container does not create {path}"
            assert made.stat().st_mode & 0o077 == 0, path  # umask 077: the broker's user only
    assert "tagledger-gateway:" in (auth / "passwd").read_text()
    listeners = {int(line.split()[1]) for line in conf.splitlines() if line.startswith("listener ")}
    exposed = {p["containerPort"] for p in broker["ports"]}
    assert {1883, 8883} <= exposed <= listeners
