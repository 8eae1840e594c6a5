#!/usr/bin/env bash
# A local 3-daemon ratelord cluster on a real PostgreSQL server, no docker.
#
#   scripts/cluster.sh [DIR]      (or: make cluster)
#
# Creates DIR (default ./.cluster) with a PostgreSQL data directory (initdb), starts the
# server on a free port, then three ratelord-d on ports 8091-8093 sharing one log.
# One of them leads; kill it (kill -9 $(cat DIR/ratelord-1.pid)) and another takes over.
# Ctrl-C stops everything. Needs Debian's postgresql package (apt-get install postgresql).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="$(mkdir -p "${1:-.cluster}" && cd "${1:-.cluster}" && pwd)"
BIN="${RATELORD_BIN:-$ROOT/.venv/bin}"
PG_BIN="$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")")"
PG_PORT="${PG_PORT:-$("$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
PORTS=(8091 8092 8093)

[ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL is not installed: apt-get install postgresql" >&2; exit 1; }
[ -x "$BIN/ratelord-d" ] || { echo "ratelord is not installed: make install" >&2; exit 1; }

# PostgreSQL refuses to run as root: run it as the postgres user Debian creates.
AS=()
if [ "$(id -u)" = 0 ]; then
  AS=(runuser -u postgres --)
  chown postgres "$DIR"
fi

if [ ! -d "$DIR/pgdata" ]; then
  "${AS[@]}" "$PG_BIN/initdb" -D "$DIR/pgdata" -U postgres --auth=trust -E UTF8 >"$DIR/initdb.log"
fi
"${AS[@]}" "$PG_BIN/postgres" -D "$DIR/pgdata" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories="$DIR" >"$DIR/postgres.log" 2>&1 &
PG_PID=$!

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  kill -INT "$PG_PID" 2>/dev/null || true
  wait "$PG_PID" 2>/dev/null || true
  echo "cluster stopped (data kept in $DIR)"
}
trap stop INT TERM EXIT

for _ in $(seq 100); do
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
  sleep 0.1
done
"$BIN/python" - "$PG_PORT" <<'EOF'
import sys, psycopg
with psycopg.connect(f"postgresql://postgres@127.0.0.1:{sys.argv[1]}/postgres", autocommit=True) as c:
    if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'ratelord'").fetchone():
        c.execute("CREATE DATABASE ratelord")
EOF
STORE="postgresql://postgres@127.0.0.1:$PG_PORT/ratelord"

for i in 0 1 2; do
  n=$((i + 1))
  "$BIN/ratelord-d" --store "$STORE" --port "${PORTS[$i]}" --demo --log-format text \
    >"$DIR/ratelord-$n.log" 2>&1 &
  pids+=($!)
  echo $! >"$DIR/ratelord-$n.pid"
  sleep 0.5
done

URLS="http://127.0.0.1:${PORTS[0]},http://127.0.0.1:${PORTS[1]},http://127.0.0.1:${PORTS[2]}"
echo "PostgreSQL: $STORE"
echo "members:    $URLS"
echo "logs:       $DIR/ratelord-{1,2,3}.log"
echo
echo "try:  RATELORD_URL=$URLS $BIN/ratelord status"
echo "      curl -s http://127.0.0.1:${PORTS[1]}/v1/health"
echo "      kill -9 \$(cat $DIR/ratelord-1.pid)   # a follower takes over"
echo "Ctrl-C stops the cluster."
wait "${pids[@]}"
