#!/usr/bin/env bash
# Builds and starts Salon.
#   ./scripts/run.sh               the desktop app (first run: choose a name and a passphrase)
#   ./scripts/run.sh host|join|…   the `salon` command line instead, e.g.
#       ./scripts/run.sh host --title "Friday jazz"
#       ./scripts/run.sh join 'salon:…'
#       ./scripts/run.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
salon_install_deps
if [ "$#" -gt 0 ]; then
  cargo build --release --locked -p salon-node --bin salon
  exec "$CARGO_TARGET_DIR/release/salon" "$@"
fi
salon_check_node
npm --prefix ui ci --no-audit --no-fund
npm --prefix ui run build
cargo build --release --locked -p salon-desktop
exec "$CARGO_TARGET_DIR/release/salon-desktop"
