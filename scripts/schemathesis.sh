#!/usr/bin/env bash
# Property-based testing of the HTTP API from its OpenAPI document (schemathesis): every
# operation but the change stream (an endless SSE response), against a real `tagledger api`
# on SQLite or on PostgreSQL, with an admin key, the ledger holding a small known history.
# The check is "no 5xx": every answer to whatever the schema allows is a 2xx or a 4xx.
#
#   scripts/schemathesis.sh sqlite|postgresql [examples per operation, default 200]
#
# schemathesis is not a dependency of the project (it pins its own hypothesis); the script
# runs the one on PATH or in $SCHEMATHESIS, e.g. from a venv of its own:
#   python3 -m venv /tmp/st && /tmp/st/bin/pip install 'schemathesis>=4,<5'
#   SCHEMATHESIS=/tmp/st/bin/schemathesis scripts/schemathesis.sh postgresql
# PostgreSQL: an admin URL in TAGLEDGER_TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
# a database of the run's own is created and dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
examples=${2:-200}
st=${SCHEMATHESIS:-schemathesis}
py=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
api_pid=""
db_name="tagledger_st_$$"
admin_url=${TAGLEDGER_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
cleanup() {
  if [ -n "$api_pid" ]; then kill "$api_pid" 2>/dev/null || true; wait "$api_pid" 2>/dev/null || true; fi
  if [ "$backend" = postgresql ]; then
    "$py" -c "import asyncio,sys; from tagledger.ledger.scratch import drop_database as d; asyncio.run(d(sys.argv[1], sys.argv[2]))" \
      "$admin_url" "$db_name" || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

case "$backend" in
  sqlite) url="sqlite:///$tmp/ledger.sqlite" ;;
  postgresql)
    url=$("$py" -c "import asyncio,sys; from tagledger.ledger.scratch import create_database as c; print(asyncio.run(c(sys.argv[1], sys.argv[2])))" \
      "$admin_url" "$db_name") ;;
  *) echo "usage: $0 sqlite|postgresql [examples]" >&2; exit 2 ;;
esac

# The tests' two-store site and their known history (committed through the ledger's write path).
"$py" - "$url" "$tmp/site.yaml" <<'PY'
import asyncio, sys
import yaml
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tests.cloud.harness import two_store_site
from tests.cloud.ledger_data import populate
from tagledger.site import EXAMPLE_SITE

url, site_path = sys.argv[1], sys.argv[2]
data = yaml.safe_load(EXAMPLE_SITE.read_text())
data["stores"].append(
    {"id": "lyon-01", "name": "Lyon", "latitude": 45.76, "longitude": 4.86, "timezone": "Europe/Paris",
     "zones": [{"id": "floor", "role": "sales_floor"}],
     "readers": [{"id": "lyon-01-r1", "host": "10.1.0.5", "antennas": [{"port": 1, "zone": "floor"}]}]}
)
open(site_path, "w").write(yaml.safe_dump(data))

async def main() -> None:
    await migrate(url)
    ledger = await open_ledger(url)
    try:
        await populate(ledger)
    finally:
        await ledger.close()

asyncio.run(main())
PY
token=$("$py" -m tagledger.app.cli keys issue --name schemathesis --scope admin --database-url "$url" | tail -1)
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# A fuzzer is many requests per second from one key: the rate limit would answer 429 to most.
TAGLEDGER_API_RATE_LIMIT_PER_S=100000 TAGLEDGER_API_RATE_LIMIT_BURST=100000 \
  "$py" -m tagledger.app.cli api --site "$tmp/site.yaml" --database-url "$url" --port "$port" --log-level warning \
  2>"$tmp/api.log" &
api_pid=$!
for _ in $(seq 150); do
  if ! kill -0 "$api_pid" 2>/dev/null; then cat "$tmp/api.log" >&2; exit 1; fi
  if "$py" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close()" "$port" 2>/dev/null; then break; fi
  sleep 0.2
done
set +e
"$st" --config-file scripts/schemathesis.toml run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error \
  --exclude-path-regex '/changes$' \
  --max-examples "$examples" --workers 1 \
  --header "Authorization: Bearer $token" \
  --suppress-health-check all
rc=$?
set -e
if grep -q "Traceback\|ERROR" "$tmp/api.log"; then
  echo "--- the API logged errors:" >&2
  grep -B2 -A30 "Traceback\|ERROR" "$tmp/api.log" | head -200 >&2
  rc=1
fi
exit $rc
