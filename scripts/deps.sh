#!/usr/bin/env bash
# Installs (as root) or names (otherwise) everything Salon needs to build and test on
# Debian/Ubuntu. Sourced by scripts/run.sh and scripts/test.sh; safe to run on its own.
set -euo pipefail

# Build: C toolchain for libopus (cmake), SQLCipher's vendored OpenSSL (perl, make), ALSA
# headers, WebRTC echo cancellation (its headers, and libclang for bindgen).
# Test: the stock `sqlcipher` shell proves the store format; PulseAudio gives cpal a real
# device on a machine without a sound card. The NAT test bed (tests/) builds home routers
# in network namespaces with iproute2, iptables and conntrack, and shapes links with a
# python3 shuttle; a router that grants port mappings runs miniupnpd (UPnP-IGD, NAT-PMP,
# PCP) in its namespace: miniupnpd-nftables is the daemon alone (no service, no maintainer
# scripts; the `miniupnpd` package would add a system service), and nft makes its chains.
# The desktop app's WebDriver tests run under Xvfb; xdotool presses keys on the X server
# (push-to-talk while another window has the focus).
SALON_APT_PACKAGES=(
  build-essential pkg-config cmake perl make git ca-certificates curl
  libasound2-dev libwebrtc-audio-processing-dev libclang-dev
  sqlcipher
  pulseaudio pulseaudio-utils libasound2-plugins
  tcpdump
  iproute2 iptables conntrack python3 miniupnpd-nftables nftables
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
  webkit2gtk-driver xvfb xauth xdotool
)

salon_missing_packages() {
  local missing=() p
  for p in "${SALON_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

salon_install_deps() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "salon: this script installs packages on Debian/Ubuntu only; install the equivalents of: ${SALON_APT_PACKAGES[*]}" >&2
  else
    local missing
    missing=$(salon_missing_packages)
    if [ -n "$missing" ]; then
      if [ "$(id -u)" -eq 0 ]; then
        echo "salon: installing system packages: $missing"
        apt-get update
        # shellcheck disable=SC2086
        apt-get install -y --no-install-recommends $missing
      else
        echo "salon: missing system packages. Run this, then try again:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $missing" >&2
        return 1
      fi
    fi
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "salon: Rust is missing. Install it with" >&2
    echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\"" >&2
    echo "then run this command again." >&2
    return 1
  fi
}

salon_check_node() {
  # The desktop UI is built with Vite 7, which needs Node.js 20.19 or newer.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "salon: Node.js (20.19 or newer, with npm) is missing. Install it, e.g. from https://nodejs.org" >&2
    echo "  or: curl -fsSL https://deb.nodesource.com/setup_22.x | sudo bash - && sudo apt-get install -y nodejs" >&2
    echo "then run this command again." >&2
    return 1
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "salon: Node.js $(node --version) is too old; version 20.19 or newer is needed (see https://nodejs.org)" >&2
    return 1
  fi
}

# WebDriver bridge for the desktop app's UI tests (Tauri's, major version 2).
salon_install_tauri_driver() {
  if ! command -v tauri-driver >/dev/null 2>&1; then
    echo "salon: installing tauri-driver (cargo install, about a minute)"
    cargo install tauri-driver --version '^2' --locked
  fi
}

# Reuse a target directory outside the clone: it only saves time (a clean one must pass too).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${SALON_TARGET_DIR:-$HOME/.cache/salon/target}}"
mkdir -p "$CARGO_TARGET_DIR"

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  salon_install_deps
  salon_check_node
fi
