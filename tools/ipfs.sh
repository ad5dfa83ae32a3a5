#!/usr/bin/env bash
# The IPFS node of tests and of the local mode: js-ipfs 0.66 (a real node with a Kubo-compatible RPC
# API), pinned in tools/ipfs, run offline (no swarm, no bootstrap peers, no preload).
#
#   tools/ipfs.sh install        install the pinned node (idempotent; fast when already there)
#   tools/ipfs.sh start REPO     start a node on REPO (initialized on first use), print its API URL
#   tools/ipfs.sh api REPO       print the API URL of the node running on REPO
#   tools/ipfs.sh stop REPO      stop the node running on REPO (no error if none)
#
# Ports are chosen by the OS (no clashes between parallel tests); the node writes its API address to
# REPO/api, and `start` prints it as http://127.0.0.1:PORT once the node answers. A repo left by a
# killed node (stale lock, stale api file) is cleaned up on the next start.
set -euo pipefail
tools="$(cd "$(dirname "$0")" && pwd)"
pkg="$tools/ipfs"
jsipfs="$pkg/node_modules/.bin/jsipfs"

die() { echo "ipfs.sh: $*" >&2; exit 1; }

install() {
  command -v node >/dev/null 2>&1 || die "Node.js 18 or newer is required"
  command -v npm >/dev/null 2>&1 || die "npm is required"
  local stamp="$pkg/node_modules/.drlaas-lock.sha256" want
  want="$(sha256sum "$pkg/package.json" "$pkg/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$jsipfs" ]; then
    return
  fi
  echo "ipfs.sh: installing js-ipfs 0.66.1 into tools/ipfs (a few minutes on a fresh machine)" >&2
  # `npm ci` refuses this tree (npm reports a phantom 'headless@' entry missing from the lock), and
  # the mortice override needs a resolver run: `npm install` from the committed lock installs the
  # same versions.
  (cd "$pkg" && npm install --no-audit --no-fund --loglevel=error >&2)
  # Hash after the install: npm may normalize the lock it was given.
  want="$(sha256sum "$pkg/package.json" "$pkg/package-lock.json" | sha256sum | cut -d' ' -f1)"
  echo "$want" > "$stamp"
}

# The API URL from REPO/api (a multiaddr like /ip4/127.0.0.1/tcp/PORT/http).
api_url() {
  local addr
  addr="$(cat "$1/api" 2>/dev/null)" || return 1
  [[ "$addr" =~ ^/ip4/([^/]+)/tcp/([0-9]+) ]] || return 1
  echo "http://${BASH_REMATCH[1]}:${BASH_REMATCH[2]}"
}

running_pid() {
  local pid state
  pid="$(cat "$1/daemon.pid" 2>/dev/null)" || return 1
  # A killed node can linger as a zombie where nothing reaps orphans: that is not running.
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ] || return 1
  echo "$pid"
}

start() {
  local repo="$1"
  [ -x "$jsipfs" ] || install
  mkdir -p "$repo"
  repo="$(cd "$repo" && pwd)"
  if running_pid "$repo" >/dev/null; then
    api_url "$repo"
    return
  fi
  # Leftovers of a node that was killed: its lock and API address would stop or mislead a new one.
  rm -rf "$repo/api" "$repo/repo.lock" "$repo/daemon.pid" "$repo/daemon.log"
  local init=()
  if [ ! -f "$repo/config" ]; then
    cat > "$repo/.init-config.json" <<'JSON'
{
  "Addresses": {"Swarm": [], "API": "/ip4/127.0.0.1/tcp/0", "Gateway": "/ip4/127.0.0.1/tcp/0", "RPC": "/ip4/127.0.0.1/tcp/0"},
  "Bootstrap": [],
  "Discovery": {"MDNS": {"Enabled": false}, "webRTCStar": {"Enabled": false}}
}
JSON
    init=(--init-profile test --init-config "$repo/.init-config.json")
  fi
  IPFS_PATH="$repo" nohup "$jsipfs" daemon --offline --enable-preload=false "${init[@]}" \
    > "$repo/daemon.log" 2>&1 < /dev/null &
  echo $! > "$repo/daemon.pid"
  local deadline=$((SECONDS + ${DRLAAS_IPFS_START_TIMEOUT:-60}))
  until grep -q "Daemon is ready" "$repo/daemon.log" 2>/dev/null && api_url "$repo" >/dev/null; do
    if ! running_pid "$repo" >/dev/null; then
      tail -n 20 "$repo/daemon.log" >&2 || true
      die "the node on $repo exited during start (log above)"
    fi
    [ $SECONDS -lt $deadline ] || { stop "$repo"; die "the node on $repo was not ready within ${DRLAAS_IPFS_START_TIMEOUT:-60} s"; }
    sleep 0.2
  done
  api_url "$repo"
}

stop() {
  local repo="$1" pid
  if pid="$(running_pid "$repo")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do running_pid "$repo" >/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$repo/daemon.pid" "$repo/api"
}

case "${1:-}" in
  install) install ;;
  start) [ $# -eq 2 ] || die "usage: tools/ipfs.sh start REPO"; start "$2" ;;
  api) [ $# -eq 2 ] || die "usage: tools/ipfs.sh api REPO"; running_pid "$2" >/dev/null || die "no node is running on $2"; api_url "$2" ;;
  stop) [ $# -eq 2 ] || die "usage: tools/ipfs.sh stop REPO"; stop "$2" ;;
  *) die "usage: tools/ipfs.sh install | start REPO | api REPO | stop REPO" ;;
esac
