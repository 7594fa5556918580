#!/usr/bin/env bash
# Builds and starts Salon. Until the desktop app lands this is the `salon` command line:
# with no arguments it creates your identity if needed (asks a name and a passphrase),
# then hosts a room with your default microphone and speakers and prints its invite.
# With arguments they go to `salon` as they are, e.g.
#   ./scripts/run.sh join 'salon:…'          join a room from another terminal or machine
#   ./scripts/run.sh --help                   everything else
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
salon_install_deps
cargo build --release --locked -p salon-node --bin salon
salon="$CARGO_TARGET_DIR/release/salon"
if [ "$#" -gt 0 ]; then
  exec "$salon" "$@"
fi
data_dir="${SALON_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/salon}"
if [ ! -e "$data_dir/salon.db" ]; then
  read -r -p "Your display name: " name
  "$salon" --data-dir "$data_dir" init --name "$name"
fi
echo "Hosting a room. Type 'say hello' to chat, 'promote NAME' to invite someone on stage, 'leave' to quit."
exec "$salon" --data-dir "$data_dir" host --title "${SALON_TITLE:-$(id -un)'s room}"
