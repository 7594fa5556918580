#!/usr/bin/env bash
# Builds and starts Salon. Until the desktop app and the `salon` command line land, this
# runs the protocol on a simulated network: a host and members join by invite over a lossy,
# reordering link, speak, chat, hand the room over, and print what each member sees.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
salon_install_deps
cargo run --release --locked -p salon-proto --example room -- "$@"
