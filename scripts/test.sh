#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests (unit, property, simulated
# network, real-device), as CI runs it. Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/services.sh
salon_install_deps
salon_check_node
salon_install_tauri_driver

# Tests that need a tool (sqlcipher shell, audio device) fail instead of skipping.
export SALON_CI=1
salon_services_start
salon_xvfb_start
trap salon_services_stop EXIT

echo "== ui: install, unit tests, build (the desktop crate embeds ui/dist)"
npm --prefix ui ci --no-audit --no-fund
npm --prefix ui test
npm --prefix ui run build

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
echo "== fuzz: every cargo-fuzz target built and run for up to 45 s each (needs nightly; under 5 minutes)"
scripts/fuzz.sh 45
echo "== birthday benchmark: ten port-restricted x symmetric rooms in network namespaces (prints figures, asks 9 of 10 direct)"
cargo test -p salon-tests --locked --test nat a_symmetric_and_a_port -- --ignored --nocapture
echo "== traffic analysis: a tcpdump capture of a push-to-talk room, every classifier at chance (release build of salon, as users run it)"
cargo build --release -p salon-node --bin salon --locked
cargo test -p salon-tests --locked --test traffic -- --ignored --nocapture
echo "== memory figure: the app with a 4-person room open (debug build; prints, asserts the room)"
cargo bench -p salon-desktop --bench memory --profile dev --locked
echo "== all tests passed"
