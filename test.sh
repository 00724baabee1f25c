#!/usr/bin/env bash
# The whole test suite: unit tests and the integration tests in tests/, which
# run the real binary (and as root, the real mmdebstrap, skopeo and umoci).
set -euo pipefail
cd "$(dirname "$0")"
for dir in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin; do
  [ -x "$dir/cargo" ] && PATH="$dir:$PATH"
done
# Peers the tests start but berth does not need: an ACME test server, an
# image registry, and htpasswd for its basic auth.
peers=()
command -v pebble >/dev/null || peers+=(pebble)
command -v docker-registry >/dev/null || peers+=(docker-registry)
command -v htpasswd >/dev/null || peers+=(apache2-utils)
command -v wrk >/dev/null || peers+=(wrk)
# berth's own run-time packages come from ./install.sh; one added since a
# machine last ran it is installed here too.
command -v nft >/dev/null || peers+=(nftables)
command -v zsh >/dev/null || peers+=(zsh)
command -v man >/dev/null || peers+=(man-db)
if [ "$(id -u)" = 0 ] && [ ${#peers[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${peers[@]}"
fi
# Tests that need root are marked #[ignore = "needs root..."]: a non-root run
# reports them as ignored; as root (CI) they all run.
if [ "$(id -u)" = 0 ]; then
  exec cargo test --release --locked "$@" -- --include-ignored
fi
exec cargo test --release --locked "$@"
