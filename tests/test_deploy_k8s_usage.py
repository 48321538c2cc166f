"""deploy/k8s/: the manifests use what the CLI and the image really have.

Each tagledger container runs a command the CLI has, with variables that command
reads and values it accepts (the real CLI parses them); every reference (Secret
key, ConfigMap, Service port, selector) resolves; probes hit the ports and paths
the roles serve; pods run unprivileged with pinned images.  How the overlays are
rendered: tests/test_deploy_k8s.py.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import typer.main
import yaml

from tests.k8s_manifests import (
    K8S,
    REPO,
    Object,
    container_env,
    one,
    placeholder,
    pod_spec,
    rendered_overlays,  # noqa: F401 - the fixture ``rendered``: each overlay, rendered once per module
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
        spec = pod_spec(obj)
        for container in spec.get("initContainers", []) + spec["containers"]:
            if container["image"].split(":")[0].endswith("tagledger"):
                out.append((f"{obj['kind']}/{obj['metadata']['name']}", container))
    return out


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
        env = {name: placeholder(entry, site) for name, entry in container_env(container).items()}
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
        spec = pod_spec(workload)
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
        ports = {p["name"] for w in matches for c in pod_spec(w)["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)
    for pdb in (o for o in objects if o["kind"] == "PodDisruptionBudget"):
        wanted = pdb["spec"]["selector"]["matchLabels"].items()
        assert any(wanted <= labels.items() for labels in pod_labels), pdb["metadata"]["name"]
    for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
        wanted = monitor["spec"]["selector"]["matchLabels"].items()
        (service,) = [s for s in services if wanted <= s["metadata"]["labels"].items()]
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
    hpa = one(objects, "HorizontalPodAutoscaler", "tagledger-api")
    target = hpa["spec"]["scaleTargetRef"]
    one(objects, target["kind"], target["name"])
    gateway = one(objects, "StatefulSet", "tagledger-gateway")
    assert one(objects, "Service", gateway["spec"]["serviceName"])["spec"]["clusterIP"] == "None"


def test_gateway_replicas_share_stores_only_with_leases(rendered: tuple[str, list[Object]]) -> None:
    overlay, objects = rendered
    gateway = one(objects, "StatefulSet", "tagledger-gateway")
    (container,) = pod_spec(gateway)["containers"]
    env = container_env(container)
    leases = env["TAGLEDGER_GATEWAY_LEASES"]["value"] == "true"
    replicas = gateway["spec"]["replicas"]
    # Several gateways without leases would ingest the same stores twice.
    assert replicas == 1 or leases
    assert (replicas, leases) == ({"single-store": (1, False), "multi-store": (3, True)}[overlay])
    # Each replica's MQTT client id is its pod name: stable, so its broker session survives restarts.
    assert env["TAGLEDGER_GATEWAY_CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    hpa = one(objects, "HorizontalPodAutoscaler", "tagledger-api")
    assert hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in one(objects, "Deployment", "tagledger-api")["spec"]  # the HPA owns it


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
        (container,) = pod_spec(one(objects, kind, name))["containers"]
        env = container_env(container)
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
        spec = pod_spec(workload)
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
    namespace = one(objects, "Namespace", "tagledger")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
