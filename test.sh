#!/usr/bin/env bash
# The whole test suite: unit tests and the integration tests in tests/, which
# run the real binary (and as root, the real mmdebstrap, skopeo and umoci).
set -euo pipefail
cd "$(dirname "$0")"
for dir in "$HOME/.cargo/bin" /root/.cargo/bin /usr/local/cargo/bin; do
  [ -x "$dir/cargo" ] && PATH="$dir:$PATH"
done
exec cargo test --release --locked "$@"
