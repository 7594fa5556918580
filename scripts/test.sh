#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests (unit, property, simulated
# network, real-device), as CI runs it. Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/services.sh
salon_install_deps

# Tests that need a tool (sqlcipher shell, audio device) fail instead of skipping.
export SALON_CI=1
salon_services_start
trap salon_services_stop EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
echo "== all tests passed"
