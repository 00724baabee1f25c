#!/usr/bin/env bash
# Pushing the installed catmeow's image to Debian's docker-registry on
# loopback (root, after ./install.sh): berth's push against `skopeo copy`
# of the same image (from an OCI layout berth exported), each into an
# empty registry, in the same run. Then berth's re-push of the same image
# (every blob already there: only checks and the manifest cross).
# Usage: bench/registry.sh [RUNS]      (default 3)
set -euo pipefail
RUNS=${1:-3}
command -v docker-registry >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-registry >/dev/null; }
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
registry() { # DIR PORT: an empty registry
  mkdir -p "$1"
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$1/data" "$2" > "$1/config.yml"
  docker-registry serve "$1/config.yml" >/dev/null 2>&1 &
  pids+=($!)
  until curl -s "http://127.0.0.1:$2/v2/" >/dev/null; do sleep 0.05; done
}
stats() { python3 -c '
import statistics, sys
v = sorted(float(x) for x in sys.stdin.read().split())
print(f"median {statistics.median(v):.2f} s, min {v[0]:.2f}, max {v[-1]:.2f} (n={len(v)})")'; }
elapsed() { local t0; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f\n", b - a }'; }

berth images:export catmeow --format oci-dir -o "$work/layout" >/dev/null
bytes=$(du -sb --apparent-size "$work/layout/blobs" | cut -f1)
echo "| image | catmeow, $((bytes / 1000000)) MB of blobs |"
for i in $(seq "$RUNS"); do
  port=$(free_port); registry "$work/berth-$i" "$port"
  elapsed berth images:push berth/app-catmeow:latest "127.0.0.1:$port/catmeow:bench" --insecure
done | stats | sed 's/^/| berth images:push, empty registry | /; s/$/ |/'
for i in $(seq "$RUNS"); do
  port=$(free_port); registry "$work/skopeo-$i" "$port"
  elapsed skopeo copy -q --dest-tls-verify=false "oci:$work/layout" "docker://127.0.0.1:$port/catmeow:bench"
done | stats | sed 's/^/| skopeo copy oci: to docker:, empty registry | /; s/$/ |/'
port=$(free_port); registry "$work/again" "$port"
berth images:push berth/app-catmeow:latest "127.0.0.1:$port/catmeow:bench" --insecure >/dev/null
for i in $(seq "$RUNS"); do
  elapsed berth images:push berth/app-catmeow:latest "127.0.0.1:$port/catmeow:again$i" --insecure
done | stats | sed 's/^/| berth re-push, every blob there | /; s/$/ |/'
