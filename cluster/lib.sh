# Shared by the cluster/ scripts. State lives in $BALLAST_CLUSTER_DIR (default .cluster/), one
# folder per node (pid, log, data); ports derive from $BALLAST_BASE_PORT (default 7100):
# node N gets raft BASE+N*10+1, api BASE+N*10+2, admin BASE+N*10+3.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${BALLAST_CLUSTER_DIR:-$ROOT/.cluster}"
BASE_PORT="${BALLAST_BASE_PORT:-7100}"
HOST=127.0.0.1

# TLS (cluster/up --tls): a throwaway CA and certificates in $CLUSTER_DIR/tls (docs/security.md):
# node-N (ballast://node/N), worker, operator and reader. Every script then talks TLS, as the
# operator unless BALLAST_TLS_CERT/KEY say otherwise.
TLS_DIR="$CLUSTER_DIR/tls"
tls_on() { [ -f "$TLS_DIR/ca.crt" ]; }
# Creates the CA and the client certificates (once).
tls_init() {
  tls_on && return 0
  local certs="$ROOT/scripts/tls-certs" who
  mkdir -p "$TLS_DIR"
  "$certs" ca "$TLS_DIR" ca
  for who in worker operator reader; do "$certs" issue "$TLS_DIR" ca "$who" "$who" --days 30; done
  # The roles the first leader bootstraps (docs/security.md): a TLS node enforces them.
  { echo "# identity  role  namespace  [task queue]"
    echo "operator admin *"
    echo "worker worker *"
    # The transfers worker registers the example's search attributes when it starts.
    echo "worker admin default"
    echo "reader reader *"
    # Member nodes need no binding: a node/<id> certificate of a current member passes the
    # check (it forwards web UI actions and audit records it has already checked).
  } >"$TLS_DIR/roles"
}
# Issues node N's certificate if it has none.
tls_node_cert() {
  [ -f "$TLS_DIR/node-$1.crt" ] || "$ROOT/scripts/tls-certs" issue "$TLS_DIR" ca "node-$1" "node/$1" --days 30
}
# Server flags for node N (empty without TLS).
tls_server_flags() {
  tls_on || return 0
  tls_node_cert "$1"
  echo --tls-cert "$TLS_DIR/node-$1.crt" --tls-key "$TLS_DIR/node-$1.key" --tls-ca "$TLS_DIR/ca.crt" --roles "$TLS_DIR/roles"
}
if tls_on; then
  export BALLAST_TLS_CA="${BALLAST_TLS_CA:-$TLS_DIR/ca.crt}"
  export BALLAST_TLS_CERT="${BALLAST_TLS_CERT:-$TLS_DIR/operator.crt}" BALLAST_TLS_KEY="${BALLAST_TLS_KEY:-$TLS_DIR/operator.key}"
fi

raft_port() { echo $((BASE_PORT + $1 * 10 + 1)); }
api_port() { echo $((BASE_PORT + $1 * 10 + 2)); }
admin_port() { echo $((BASE_PORT + $1 * 10 + 3)); }
node_dir() { echo "$CLUSTER_DIR/node-$1"; }

# The ballast binary: $BALLAST_BIN, else `ballast` on PATH, else a release build of this checkout.
ballast_bin() {
  if [ -n "${BALLAST_BIN:-}" ]; then echo "$BALLAST_BIN"; return; fi
  if command -v ballast >/dev/null 2>&1; then command -v ballast; return; fi
  local bin
  bin="$(cd "$ROOT" && swift build -c release --show-bin-path)/ballast"
  if [ ! -x "$bin" ]; then
    echo "building ballast (release)…" >&2
    (cd "$ROOT" && swift build -c release --product ballast >&2)
  fi
  echo "$bin"
}

# Node ids recorded by `up`.
node_ids() { [ -f "$CLUSTER_DIR/nodes" ] && cat "$CLUSTER_DIR/nodes" || true; }

is_running() {
  local pid_file; pid_file="$(node_dir "$1")/pid"
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

peers_list() {
  local list="" id
  for id in $(node_ids); do list="${list:+$list,}$id=$HOST:$(raft_port "$id")"; done
  echo "$list"
}

# Whether node N's data directory holds state from an earlier start.
has_data() { [ -f "$(node_dir "$1")/data/members" ] || [ -d "$(node_dir "$1")/data/raft" ]; }

# API addresses of the running nodes, comma-separated (optionally all but node $1).
api_list() {
  local list="" id
  for id in $(node_ids); do
    [ "$id" = "${1:-}" ] && continue
    is_running "$id" && list="${list:+$list,}$HOST:$(api_port "$id")"
  done
  echo "$list"
}

# start_node N [extra server flags…]. Refuses to start a member of an initialized cluster on an
# empty data directory: with its log and votes gone it must rejoin under a new id
# (docs/operations.md, "Recover a node whose disk was lost").
start_node() {
  local id=$1 dir bin; dir="$(node_dir "$id")"; bin="$(ballast_bin)"
  shift
  if is_running "$id"; then echo "node $id is already running (pid $(cat "$dir/pid"))"; return; fi
  if [ -f "$CLUSTER_DIR/initialized" ] && ! has_data "$id" && [ "$#" -eq 0 ]; then
    echo "node $id has no data (lost disk?): it must not rejoin under its old id. Run cluster/remove-node $id, then cluster/add-node" >&2
    return 1
  fi
  mkdir -p "$dir/data"
  local extra=("$@")
  if [ -f "$dir/peer-address" ]; then extra+=(--peer-address "$(cat "$dir/peer-address")"); fi
  # shellcheck disable=SC2207
  extra+=($(tls_server_flags "$id"))
  nohup "$bin" server --id "$id" --data-dir "$dir/data" --raft "$HOST:$(raft_port "$id")" \
    --api "$HOST:$(api_port "$id")" --admin "$HOST:$(admin_port "$id")" --peers "$(peers_list)" \
    ${extra[@]+"${extra[@]}"} >>"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
}

# GET http://127.0.0.1:PORT/PATH with a timeout; prints the body, fails on no answer.
admin_get() {
  local port=$1 path=$2
  python3 - "$port" "$path" <<'PY'
import os, ssl, sys, urllib.request
try:
    ca = os.environ.get("BALLAST_TLS_CA")
    if ca:
        context = ssl.create_default_context(cafile=ca)
        context.load_cert_chain(os.environ["BALLAST_TLS_CERT"], os.environ["BALLAST_TLS_KEY"])
        url, kwargs = f"https://127.0.0.1:{sys.argv[1]}{sys.argv[2]}", {"context": context}
    else:
        url, kwargs = f"http://127.0.0.1:{sys.argv[1]}{sys.argv[2]}", {}
    with urllib.request.urlopen(url, timeout=2, **kwargs) as r:
        sys.stdout.write(r.read().decode())
except Exception as e:
    sys.exit(1)
PY
}

# Waits until some running node reports a leader (default 20 s).
wait_for_leader() {
  local deadline=$(( $(date +%s) + ${1:-20} )) id view
  while [ "$(date +%s)" -lt "$deadline" ]; do
    for id in $(node_ids); do
      is_running "$id" || continue
      if view=$(admin_get "$(admin_port "$id")" /cluster 2>/dev/null) && \
         python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1]).get("leader") else 1)' "$view"; then
        return 0
      fi
    done
    sleep 0.1
  done
  echo "no leader within ${1:-20} s; see the logs in $CLUSTER_DIR/node-*/log" >&2
  return 1
}
