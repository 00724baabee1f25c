#!/usr/bin/env bash
# Backing services (root, after ./install.sh): postgres:create until the
# server answers, beside Debian's own pg_createcluster + start of the same
# PostgreSQL 15 on the host, in the same run; redis:create; and the
# service images' sizes.
# Usage: bench/services.sh [RUNS]      (default 5)
set -euo pipefail
RUNS=${1:-5}
stats() { python3 -c '
import statistics, sys
v = sorted(float(x) for x in sys.stdin.read().split())
print(f"median {statistics.median(v):.2f} s, min {v[0]:.2f}, max {v[-1]:.2f} (n={len(v)})")'; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; }
# The peer: Debian's cluster tools on the host.
command -v pg_createcluster >/dev/null && [ -x /usr/lib/postgresql/15/bin/initdb ] ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
berth plugin:install-dependencies >/dev/null

for kind in postgres redis; do
  for i in $(seq "$RUNS"); do
    berth "$kind:destroy" "bench$i" --force >/dev/null 2>&1 || true
    t0=$(now)
    berth "$kind:create" "bench$i" >/dev/null
    took "$t0"
    berth "$kind:destroy" "bench$i" --force >/dev/null
  done | stats | sed "s/^/| berth $kind:create, until it answers | /; s/\$/ |/"
done

for i in $(seq "$RUNS"); do
  pg_dropcluster --stop 15 "bench$i" >/dev/null 2>&1 || true
  t0=$(now)
  pg_createcluster 15 "bench$i" --start >/dev/null
  port=$(pg_lsclusters -h | awk -v c="bench$i" '$2 == c { print $3 }')
  until pg_isready -q -h /var/run/postgresql -p "$port"; do sleep 0.01; done
  took "$t0"
  pg_dropcluster --stop 15 "bench$i"
done | stats | sed 's/^/| Debian pg_createcluster --start on the host, until it answers | /; s/$/ |/'

for kind in postgres redis; do
  berth images:list | awk -v r="berth/service:$kind" '$1 == r { printf "| image berth/service:%s (one layer) | %s %s |\n", substr(r, 15), $4, $5 }'
done
