#!/usr/bin/env bash
# Turns a fresh Debian bookworm machine into a berth host. Run as root.
# Idempotent: a second run changes nothing and succeeds.
set -euo pipefail

BERTH_ROOT=${BERTH_ROOT:-/var/lib/berth}
BIN=/usr/local/bin/berth
here=$(cd "$(dirname "$0")" && pwd)

say() { printf -- '-----> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (sudo ./install.sh)"

# Debian packages berth uses at run time and to build itself.
packages=(ca-certificates git gcc libc6-dev pkg-config libseccomp-dev mmdebstrap skopeo umoci tar gzip uidmap iproute2 iptables curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "Installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust comes from rustup's toolchain on the machine (Debian's cargo is too old
# for this crate); look where sudo may have hidden it.
for dir in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin"}; do
  [ -x "$dir/cargo" ] && PATH="$dir:$PATH"
done
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) and run me again"

say "Building berth (release)"
(cd "$here" && cargo build --release --locked --quiet)
if ! cmp -s "$here/target/release/berth" "$BIN"; then
  install -m 0755 "$here/target/release/berth" "$BIN"
  say "Installed $BIN"
fi

install -d -m 0755 "$BERTH_ROOT"

# Stack recipes go where `berth stacks:build` looks for them.
for recipe in "$here"/stacks/*/recipe.toml; do
  name=$(basename "$(dirname "$recipe")")
  target=/usr/local/share/berth/stacks/$name/recipe.toml
  cmp -s "$recipe" "$target" || install -D -m 0644 "$recipe" "$target"
done

# Built-in buildpacks, where builds look for them.
if ! diff -rq "$here/buildpacks" /usr/local/share/berth/buildpacks >/dev/null 2>&1; then
  rm -rf /usr/local/share/berth/buildpacks
  mkdir -p /usr/local/share/berth
  cp -a "$here/buildpacks" /usr/local/share/berth/buildpacks
  say "Installed the built-in buildpacks"
fi

# The stack: built once with mmdebstrap (a few minutes), then kept in the
# stack cache keyed by the recipe's hash; later runs find it up to date.
BERTH_ROOT=$BERTH_ROOT "$BIN" stacks:build bookworm --cache /var/cache/berth/stacks
say "berth is installed: $("$BIN" version), state in $BERTH_ROOT"
