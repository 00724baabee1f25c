#!/bin/bash
# berth's build driver: runs inside the build sandbox as the app user.
# Heroku's buildpack API: bin/detect BUILD_DIR, bin/compile BUILD_DIR
# CACHE_DIR ENV_DIR, bin/release BUILD_DIR; each buildpack's `export` file
# is sourced before the next one compiles.
#   driver.sh detect|explicit BUILDPACK_DIR...
# Lines starting with $BERTH_MARK are read by berth (phase marks, results);
# berth sets it and the exit codes (src/build/driver.rs holds the protocol).
set -eo pipefail
BUILD_DIR=/app CACHE_DIR=/cache ENV_DIR=/env OUT=/berth/out
mode=$1
shift
# Buildpacks are mounted read only; copies let them write their `export` file.
mkdir -p /tmp/buildpacks
bps=()
labels=()
i=0
for src in "$@"; do
  i=$((i + 1))
  cp -r "$src" "/tmp/buildpacks/$i"
  bps+=("/tmp/buildpacks/$i")
  labels+=("$(basename "$src")")
done
echo "$BERTH_MARK phase detect"
selected=()
names=()
for k in "${!bps[@]}"; do
  bp=${bps[$k]}
  if [ "$mode" = explicit ]; then
    name=$("$bp/bin/detect" "$BUILD_DIR" 2>/dev/null) || name=${labels[$k]}
    selected+=("$bp")
    names+=("${name:-buildpack}")
  elif name=$("$bp/bin/detect" "$BUILD_DIR" 2>/dev/null); then
    selected=("$bp")
    names=("$name")
    break
  fi
done
if [ ${#selected[@]} -eq 0 ]; then
  echo "$BERTH_MARK no-buildpack"
  exit "$BERTH_EXIT_NO_BUILDPACK"
fi
echo "$BERTH_MARK phase compile"
export BERTH_LAYERS=$OUT/layers
for n in "${!selected[@]}"; do
  bp=${selected[$n]}
  echo "-----> ${names[$n]} app detected"
  if [ -f /tmp/export ]; then
    # shellcheck disable=SC1091
    . /tmp/export
  fi
  if ! "$bp/bin/compile" "$BUILD_DIR" "$CACHE_DIR" "$ENV_DIR"; then
    echo "$BERTH_MARK compile-failed ${names[$n]}"
    exit "$BERTH_EXIT_COMPILE_FAILED"
  fi
  if [ -f "$bp/export" ]; then
    cat "$bp/export" >> /tmp/export
  fi
  echo "${names[$n]}" >> "$OUT/buildpacks"
done
echo "$BERTH_MARK phase release"
last=${selected[-1]}
if [ -x "$last/bin/release" ]; then
  "$last/bin/release" "$BUILD_DIR" > "$OUT/release.yml"
fi
echo "$BERTH_MARK done"
