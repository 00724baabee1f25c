#!/usr/bin/env bash
# The switch, measured alone: from the moment traffic is moved from
# container A to container B until the first request answered by B, for
# berth's way (one nftables transaction behind a stable address; nginx
# untouched) and the reload-based way berth used before (nginx's upstream
# rewritten, `nginx -t`, `nginx -s reload`). Same host, same run, same two containers
# (python3 http.server in two network namespaces on a bridge).
# Usage: bench/switch.sh [RUNS]     (root; nginx and nft installed)
set -euo pipefail
RUNS=${1:-20}
work=$(mktemp -d /var/tmp/berth-bench-switch.XXXXXX)
br=bsw0 vip=10.209.0.250 port=$((20000 + RANDOM % 10000))
cleanup() {
  nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true
  for n in a b; do ip netns pids "bsw-$n" 2>/dev/null | xargs -r kill; ip netns del "bsw-$n" 2>/dev/null || true; done
  ip link del "$br" 2>/dev/null || true
  nft delete table ip bench_switch 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip link add "$br" type bridge && ip addr add 10.209.0.1/24 dev "$br" && ip link set "$br" up
i=2
for n in a b; do
  ip netns add "bsw-$n"
  ip link add "vsw$n" type veth peer name eth0 netns "bsw-$n"
  ip link set "vsw$n" master "$br" up
  ip -n "bsw-$n" addr add "10.209.0.$i/24" dev eth0
  ip -n "bsw-$n" link set eth0 up && ip -n "bsw-$n" link set lo up
  mkdir -p "$work/$n" && echo "$n" > "$work/$n/index.html"
  (cd "$work/$n" && ip netns exec "bsw-$n" python3 -m http.server 5000 --bind "10.209.0.$i" >/dev/null 2>&1 &)
  i=$((i + 1))
done
sleep 1

route() { # container address behind the vip
  nft -f - <<NFT
table ip bench_switch { }
delete table ip bench_switch
table ip bench_switch {
  chain route { type nat hook output priority -100; policy accept; ip daddr $vip jump backends; }
  chain backends { dnat to numgen inc mod 1 map { 0 : $1 }; }
}
NFT
}
upstream() { printf 'server { listen 127.0.0.1:%s; location / { proxy_pass http://%s:5000; proxy_http_version 1.1; proxy_set_header Connection ""; } }\n' "$port" "$1" > "$work/site.conf"; }
mkdir -p "$work/tmp"
printf 'pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path %s/tmp;\n  proxy_temp_path %s/tmp;\n  include %s/site.conf;\n}\n' \
  "$work" "$work" "$work" "$work" "$work" > "$work/nginx.conf"

first_answer_from() { # wanted-body: ms until a request through nginx is answered by it
  local t0=$1 want=$2 body
  while :; do
    body=$(curl -s -m 2 "http://127.0.0.1:$port/" || true)
    [ $(( $(date +%s%N) - t0 )) -lt 10000000000 ] || { echo "no answer from $want in 10 s" >&2; exit 1; }
    [ "$body" = "$want" ] && break
  done
  echo "$(( ($(date +%s%N) - t0) / 1000 ))" | awk '{ printf "%.2f\n", $1 / 1000 }'
}
stats() { python3 -c '
import statistics, sys
v = sorted(float(x) for x in sys.stdin.read().split())
print(f"median {statistics.median(v):.1f} ms, min {v[0]:.1f}, max {v[-1]:.1f} (n={len(v)})")'; }

# berth: nginx names the vip; the switch is one nft transaction.
route 10.209.0.2; upstream "$vip"; nginx -c "$work/nginx.conf"
sleep 0.5
nft_runs=$(for r in $(seq "$RUNS"); do
  from=a to=b addr=10.209.0.3; [ $((r % 2)) = 0 ] && from=b to=a addr=10.209.0.2
  t0=$(date +%s%N); route "$addr"; first_answer_from "$t0" "$to"
done | stats)
# before: nginx names the container; the switch rewrites it and reloads.
nginx -c "$work/nginx.conf" -s stop; sleep 0.5
upstream 10.209.0.2; nginx -c "$work/nginx.conf"
sleep 0.5
reload_runs=$(for r in $(seq "$RUNS"); do
  to=b addr=10.209.0.3; [ $((r % 2)) = 0 ] && to=a addr=10.209.0.2
  # As berth did: the block written, `nginx -t`, then the reload.
  t0=$(date +%s%N); upstream "$addr"; nginx -t -q -c "$work/nginx.conf"; nginx -c "$work/nginx.conf" -s reload; first_answer_from "$t0" "$to"
done | stats)
echo "| switch to first answer from the new container, nftables behind a stable address (berth now) | $nft_runs |"
echo "| switch to first answer from the new container, upstream rewritten + nginx reload (berth before) | $reload_runs |"
