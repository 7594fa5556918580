#!/usr/bin/env bash
# Builds the Debian package of the desktop app with the Tauri bundler:
#   ./scripts/package.sh        → prints the path of salon_<version>_<arch>.deb
# Install it with:  sudo apt-get install ./Salon_*.deb   (pulls libwebkit2gtk-4.1-0, libgtk-3-0)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
salon_install_deps
salon_check_node
npm --prefix ui ci --no-audit --no-fund
# The Tauri command line comes from npm as a prebuilt binary (pinned major version 2);
# it runs `npm run build` in ui/ itself (beforeBuildCommand in tauri.conf.json).
(cd src-tauri && npx --yes @tauri-apps/cli@2 build --bundles deb -- --locked)
deb=$(ls -t "$CARGO_TARGET_DIR"/release/bundle/deb/*.deb | head -n 1)
echo "$deb"
