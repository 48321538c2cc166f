# shellcheck shell=bash
# Make sure a PostgreSQL and an MQTT broker are reachable for the integration tests.
#
# Order of preference, for each service:
#   1. the one named by TAGLEDGER_TEST_DATABASE_URL / TAGLEDGER_TEST_MQTT_URL, or the
#      local default (127.0.0.1:5432, 127.0.0.1:1883), if it answers;
#   2. a throwaway one started from installed binaries on a free port, in a
#      temporary directory, stopped when the calling script exits;
#   3. when running as root with apt-get: install the Debian package, then 2.
# Otherwise it stops with a message naming what is missing.
#
# Sourced by scripts/test; exports the two TAGLEDGER_TEST_* variables.

_tl_tmp=""
_tl_cleanup() {
  if [ -n "${_TL_PG_DATA:-}" ] && [ -d "$_TL_PG_DATA" ]; then
    _tl_as_pg "$_TL_PG_BIN/pg_ctl" -D "$_TL_PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "${_TL_MQTT_PID:-}" ]; then kill "$_TL_MQTT_PID" 2>/dev/null || true; fi
  if [ -n "$_tl_tmp" ]; then rm -rf "$_tl_tmp"; fi
}

_tl_reachable() {  # host port
  python3 - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}

_tl_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

_tl_hostport() {  # url default_port -> "host port"
  python3 - "$1" "$2" <<'PY'
import sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
print(u.hostname or "127.0.0.1", u.port or int(sys.argv[2]))
PY
}

_tl_apt_install() {  # package...
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "services: installing $* from Debian packages" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    return 1
  fi
}

_tl_as_pg() {
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

_tl_tmpdir() {
  if [ -z "$_tl_tmp" ]; then
    _tl_tmp=$(mktemp -d /tmp/tagledger-services.XXXXXX)
    chmod 755 "$_tl_tmp"
    trap _tl_cleanup EXIT
  fi
}

_tl_pg_login() {  # url: can we log in and run a query? (an open port is not enough: auth may refuse us)
  "${VENV:-.venv}/bin/python" - "$1" <<'PY'
import asyncio, sys
import asyncpg

async def main() -> None:
    conn = await asyncpg.connect(sys.argv[1], timeout=5)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()

try:
    asyncio.run(main())
except Exception as exc:
    print(f"services: cannot use PostgreSQL at {sys.argv[1]}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}

ensure_postgres() {
  local url=${TAGLEDGER_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
  read -r host port < <(_tl_hostport "$url" 5432)
  if _tl_reachable "$host" "$port"; then
    if _tl_pg_login "$url"; then
      export TAGLEDGER_TEST_DATABASE_URL="$url"; echo "services: PostgreSQL at $host:$port" >&2; return 0
    fi
    if [ -n "${TAGLEDGER_TEST_DATABASE_URL:-}" ]; then
      echo "services: TAGLEDGER_TEST_DATABASE_URL is set but unusable (see above)" >&2; return 1
    fi
  fi
  echo "services: no usable PostgreSQL at $host:$port; starting a throwaway one" >&2
  _TL_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$_TL_PG_BIN" ] && ! command -v initdb >/dev/null 2>&1; then
    _tl_apt_install postgresql || { echo "services: PostgreSQL is not running and not installed (need initdb/pg_ctl, e.g. Debian package 'postgresql'), or set TAGLEDGER_TEST_DATABASE_URL" >&2; return 1; }
    _TL_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  [ -n "$_TL_PG_BIN" ] || _TL_PG_BIN=$(dirname "$(command -v initdb)")
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home /nonexistent --shell /usr/sbin/nologin postgres
  fi
  _tl_tmpdir
  _TL_PG_DATA="$_tl_tmp/pg"; mkdir -p "$_TL_PG_DATA"
  [ "$(id -u)" = 0 ] && chown postgres "$_TL_PG_DATA"
  local pgport; pgport=$(_tl_free_port)
  _tl_as_pg "$_TL_PG_BIN/initdb" -D "$_TL_PG_DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  _tl_as_pg "$_TL_PG_BIN/pg_ctl" -D "$_TL_PG_DATA" -l "$_TL_PG_DATA/log" -w \
    -o "-k $_TL_PG_DATA -h 127.0.0.1 -p $pgport -c fsync=off" start >/dev/null
  export TAGLEDGER_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$pgport/postgres"
  echo "services: throwaway PostgreSQL at 127.0.0.1:$pgport" >&2
}

ensure_mosquitto() {
  local url=${TAGLEDGER_TEST_MQTT_URL:-mqtt://127.0.0.1:1883}
  read -r host port < <(_tl_hostport "$url" 1883)
  if _tl_reachable "$host" "$port"; then
    export TAGLEDGER_TEST_MQTT_URL="$url"; echo "services: MQTT broker at $host:$port" >&2; return 0
  fi
  echo "services: no MQTT broker at $host:$port; starting a throwaway Mosquitto" >&2
  local bin; bin=$(command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null || true)
  if [ -z "$bin" ]; then
    _tl_apt_install mosquitto || { echo "services: no MQTT broker is running and Mosquitto is not installed (Debian package 'mosquitto'), or set TAGLEDGER_TEST_MQTT_URL" >&2; return 1; }
    bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  fi
  _tl_tmpdir
  local mport; mport=$(_tl_free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n' "$mport" > "$_tl_tmp/mosquitto.conf"
  "$bin" -c "$_tl_tmp/mosquitto.conf" >"$_tl_tmp/mosquitto.log" 2>&1 &
  _TL_MQTT_PID=$!
  for _ in $(seq 50); do _tl_reachable 127.0.0.1 "$mport" && break; sleep 0.1; done
  _tl_reachable 127.0.0.1 "$mport" || { echo "services: Mosquitto did not start:" >&2; cat "$_tl_tmp/mosquitto.log" >&2; return 1; }
  export TAGLEDGER_TEST_MQTT_URL="mqtt://127.0.0.1:$mport"
  echo "services: throwaway Mosquitto at 127.0.0.1:$mport" >&2
}

ensure_tools() {
  # The deploy tests check the systemd unit with systemd-analyze.
  if ! command -v systemd-analyze >/dev/null 2>&1; then
    _tl_apt_install systemd || { echo "services: systemd-analyze is missing (Debian package 'systemd')" >&2; return 1; }
  fi
  # tests/test_deploy_image.py builds deploy/Dockerfile with buildah (no daemon)
  # on a Debian root file system made by debootstrap, and runs the roles from it
  # with podman (runc: crun refuses this machine's hybrid cgroups); tests/test_deploy_monitoring.py
  # checks the alert rules with promtool (Debian package 'prometheus', about
  # 20 MB to download).
  local missing=()
  command -v buildah >/dev/null 2>&1 || missing+=(buildah)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  # tests/test_mqtt_provision.py and tests/test_deploy.py start Mosquitto brokers of their
  # own (generated passwords, ACL and TLS files), even when a shared broker answers.
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  # The staff console's browser tests (tests/cloud/console) drive Debian's chromium
  # through Playwright; Playwright's own browser downloads are never used.
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    _tl_apt_install --no-install-recommends "${missing[@]}" || { echo "services: cannot install ${missing[*]} (Debian packages)" >&2; return 1; }
  fi
}
