#!/usr/bin/env bash
# Image store benchmarks, printed as markdown rows for docs/BENCHMARKS.md:
#   - stack build, cold (mmdebstrap from the network) and cached (import of
#     the stack cache archive, as install.sh and the tests use it);
#   - layer write throughput of a ~200 MB tree (tar + gzip -6 + sha256 +
#     fsync'd blob), beside `tar -cf - DIR | gzip -6 | sha256sum`;
#   - unpack throughput of that layer (verifying both digests), beside `tar -xzf`.
# Usage: sudo bench/store.sh [--no-cold]     (needs root and an installed berth)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH:-/usr/local/bin/berth}
export BERTH_STACKS=$here/stacks
work=$(mktemp -d /var/tmp/berth-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v bytes="$1" -v s="$2" 'BEGIN { printf "%.0f", bytes / 1e6 / s }'; }

if [ "${1:-}" != "--no-cold" ]; then
  t=$(now); BERTH_ROOT=$work/cold "$BERTH" stacks:build bookworm --force >/dev/null; cold=$(since "$t")
  echo "| stack build, cold (mmdebstrap, both images) | ${cold} s |"
  hash=$(BERTH_ROOT=$work/cold "$BERTH" stacks:report bookworm --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["recipe"])')
  mkdir -p "$work/cache"
  BERTH_ROOT=$work/cold "$BERTH" stacks:export bookworm "$work/cache/bookworm-$hash.oci.tar" >/dev/null
  cache=$work/cache
  source_root=$work/cold
else
  cache=/var/cache/berth/stacks
  source_root=
fi
t=$(now); BERTH_ROOT=$work/cached "$BERTH" stacks:build bookworm --cache "$cache" >/dev/null; cached=$(since "$t")
echo "| stack build, cached (verified import of the cache archive) | ${cached} s |"
source_root=${source_root:-$work/cached}

# A ~200 MB tree of real files: the build layer's /usr/lib and /usr/include.
build_layer=$(BERTH_ROOT=$source_root "$BERTH" images:unpack berth/stack-build:bookworm | tail -n 1)
mkdir -p "$work/tree"
cp -a "$build_layer/usr/lib" "$build_layer/usr/include" "$work/tree/"
bytes=$(du -sb --apparent-size "$work/tree" | cut -f1)
sync

t=$(now); BERTH_ROOT=$work/layers "$BERTH" images:from-dir "$work/tree" bench/tree:1 >/dev/null; ours=$(since "$t")
t=$(now); tar -C "$work/tree" -cf - . | gzip -6 | sha256sum >/dev/null; peer=$(since "$t")
echo "| layer write, $((bytes / 1000000)) MB tree: berth images:from-dir | ${ours} s, $(rate "$bytes" "$ours") MB/s |"
echo "| layer write, same tree: tar -cf - \| gzip -6 \| sha256sum | ${peer} s, $(rate "$bytes" "$peer") MB/s |"

blob=$(BERTH_ROOT=$work/layers "$BERTH" images:inspect bench/tree:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest"]["layers"][0]["digest"].split(":")[1])')
sync
t=$(now); BERTH_ROOT=$work/layers "$BERTH" images:unpack bench/tree:1 >/dev/null; ours=$(since "$t")
mkdir -p "$work/untar"
t=$(now); tar -xzf "$work/layers/store/blobs/sha256/$blob" -C "$work/untar"; peer=$(since "$t")
echo "| unpack, same layer: berth images:unpack (both digests verified) | ${ours} s, $(rate "$bytes" "$ours") MB/s |"
echo "| unpack, same layer: tar -xzf | ${peer} s, $(rate "$bytes" "$peer") MB/s |"
