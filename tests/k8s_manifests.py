"""What the tests of deploy/k8s/ share: rendering an overlay with kubectl, and finding objects in the result.

The overlays are rendered from a copy of deploy/k8s/ with the secrets files an
operator writes (tests/test_deploy_k8s.py says how rendering and validation are
done); tests/test_deploy_image.py renders them the same way.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
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


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl is missing: it renders the kustomizations (`kubectl kustomize`); it comes with this "
            "machine image (google-cloud-cli), not with Debian, PyPI or npm",
            pytrace=False,
        )
    return found


def kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )


def copy_tree(tmp_path: Path) -> Path:
    """deploy/k8s/ as an operator would have it, with secrets files written (they are kept out of git)."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("ledger.env", "mqtt.env", "tls"))
    return tree


def write_secrets(overlay: Path) -> None:
    """What the operator writes: the two env files and the broker's TLS files (tagledger mqtt provision --tls)."""
    from tagledger.app import mqtt_tls

    for name, text in TEST_SECRETS.items():
        (overlay / name).write_text(text)
    mqtt_tls.write(overlay / "tls", server_hosts=["mqtt.test"], client_names=[])


# Named in the decorator: a test module imports ``rendered_overlays`` and its tests take
# ``rendered``, which then shadows no imported name.
@pytest.fixture(scope="module", params=OVERLAYS, name="rendered")
def rendered_overlays(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[Object]]:
    overlay: str = request.param
    tree = copy_tree(tmp_path_factory.mktemp(overlay))
    write_secrets(tree / "overlays" / overlay)
    result = kustomize(tree / "overlays" / overlay)
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    return overlay, objects


def one(objects: list[Object], kind: str, name: str) -> Object:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def by_prefix(objects: list[Object], kind: str, prefix: str) -> Object:
    """A generated object (kustomize suffixes a content hash to its name)."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].rpartition("-")[0] == prefix]
    assert len(found) == 1, f"{kind}/{prefix}-*: {len(found)} rendered"
    return found[0]


def pod_spec(workload: Object) -> Object:
    spec: Object = workload["spec"]["template"]["spec"]
    return spec


def container_env(container: Object) -> dict[str, Object]:
    return {e["name"]: e for e in container.get("env", [])}


def placeholder(entry: Object, site: Path) -> str:
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
