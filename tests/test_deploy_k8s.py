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

import filecmp
import os
import shutil
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.k8s_manifests import (
    K8S,
    KUBERNETES_VERSIONS,
    OVERLAYS,
    REPO,
    Object,
    by_prefix,
    copy_tree,
    kustomize,
    one,
    placeholder,
    pod_spec,
    rendered_overlays,  # noqa: F401 - the fixture ``rendered``: each overlay, rendered once per module
)

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
        by_prefix(objects, kind, prefix)
    assert len(objects) == len(expected) + 5
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"tagledger"}


def test_secrets_come_from_the_overlay_files(rendered: tuple[str, list[Object]]) -> None:
    import base64

    _, objects = rendered
    ledger = by_prefix(objects, "Secret", "tagledger-ledger")["data"]
    mqtt = by_prefix(objects, "Secret", "tagledger-mqtt")["data"]
    assert base64.b64decode(ledger["TAGLEDGER_DATABASE_URL"]).decode().startswith("postgresql://tagledger:pg-secret@")
    assert {k: base64.b64decode(v).decode() for k, v in mqtt.items()} == {
        "MQTT_GATEWAY_PASSWORD": "gw-secret",
        "MQTT_EDGE_PASSWORD": "edge-secret",
    }
    tls = by_prefix(objects, "Secret", "tagledger-mqtt-tls")["data"]
    assert set(tls) == {"ca.crt", "server.crt", "server.key"}  # not ca.key: the CA's key stays with the operator
    assert base64.b64decode(tls["server.key"]).startswith(b"-----BEGIN")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_overlay_without_its_secrets_files_does_not_render(overlay: str, tmp_path: Path) -> None:
    """No default passwords to deploy by mistake: the operator must write ledger.env and mqtt.env."""
    tree = copy_tree(tmp_path)
    result = kustomize(tree / "overlays" / overlay)
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
    job = one(objects, "Job", "tagledger-migrate")
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
    broken = yaml.safe_load(yaml.safe_dump(one(objects, "ServiceMonitor", "tagledger-api")))
    broken["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, CRD_SCHEMAS["ServiceMonitor"])


def test_prometheus_rule_holds_the_alert_rules_file(rendered: tuple[str, list[Object]]) -> None:
    _, objects = rendered
    rule = one(objects, "PrometheusRule", "tagledger")
    rules_file = yaml.safe_load((REPO / "deploy" / "monitoring" / "tagledger-rules.yaml").read_text())
    assert rule["spec"]["groups"] == rules_file["groups"], (
        "deploy/k8s/components/monitoring/prometheusrule.yaml differs from deploy/monitoring/tagledger-rules.yaml:"
        " regenerate it (spec.groups = the rules file's groups)"
    )


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
    pod = pod_spec(one(objects, "StatefulSet", "tagledger-mosquitto"))
    (init,) = pod["initContainers"]
    (broker,) = pod["containers"]
    if shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto_passwd is missing (Debian package 'mosquitto')", pytrace=False)
    auth, tls_in = tmp_path / "auth", tmp_path / "tls-in"
    auth.mkdir()
    mqtt_tls.write(tls_in, server_hosts=["mqtt.test"], client_names=[])
    script = init["args"][0].replace("/mosquitto/auth", str(auth)).replace("/tls-in", str(tls_in))
    env = {"PATH": os.environ["PATH"], **{e["name"]: placeholder(e, tmp_path) for e in init["env"]}}
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
