#!/usr/bin/env bash
# Run on a connected Debian bookworm machine (as root, with berth installed
# for the bundle) to gather what `./install.sh --offline` needs on an
# air-gapped one; then copy this whole directory over.
#   vendor/ + .cargo/config.toml   the crates (cargo vendor) and the source
#                                  replacement that points cargo at them
#   offline/debs/                  packages.debian with their dependencies
#   offline/bundle.tar             the stack, the service images and the catmeow demo
# Parts: --crates, --debs, --bundle (default: all three). None of it is
# committed (.gitignore).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
say() { printf -- '-----> %s\n' "$*"; }
die() { printf 'offline-kit.sh: %s\n' "$*" >&2; exit 1; }

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(--crates --debs --bundle)
for part in "${parts[@]}"; do
  case "$part" in
    --crates)
      say "Vendoring the crates into vendor/"
      mkdir -p .cargo
      # stdout is the source replacement; stderr lists every crate (kept for a failure).
      cargo vendor --locked vendor > .cargo/config.toml.tmp 2> .cargo/vendor.log || { cat .cargo/vendor.log >&2; exit 1; }
      mv .cargo/config.toml.tmp .cargo/config.toml
      say "vendor/ holds $(ls vendor | wc -l) crates; .cargo/config.toml points cargo at it"
      ;;
    --debs)
      mapfile -t packages < <(sed 's/#.*//' packages.debian | tr -s ' \t' '\n' | grep .)
      say "Resolving ${#packages[@]} packages with their dependencies"
      mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "${packages[@]}" | grep '^[a-z0-9]' | sort -u)
      real=()
      for p in "${closure[@]}"; do
        # Virtual packages have no .deb of their own.
        apt-cache show --no-all-versions "$p" >/dev/null 2>&1 && real+=("$p")
      done
      rm -rf offline/debs
      mkdir -p offline/debs
      say "Downloading ${#real[@]} .deb files into offline/debs/"
      (cd offline/debs && apt-get download -qq "${real[@]}" 2>/dev/null)
      ;;
    --bundle)
      command -v berth >/dev/null || die "berth is not installed here: run ./install.sh first (the bundle holds its stack)"
      mkdir -p offline
      say "Writing offline/bundle.tar"
      berth bundle:create offline/bundle.tar --apps catmeow | sed 's/^/       /'
      ;;
    *) die "unknown part $part: use --crates, --debs or --bundle" ;;
  esac
done
