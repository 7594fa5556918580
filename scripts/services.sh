#!/usr/bin/env bash
# Starts and stops the services the test suite needs: a PulseAudio daemon with a null sink,
# so cpal has a real audio device on a machine without a sound card. Sourced by test.sh.

salon_services_start() {
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"
  mkdir -p -m 700 "$XDG_RUNTIME_DIR"
  if command -v pulseaudio >/dev/null 2>&1; then
    if ! pactl info >/dev/null 2>&1; then
      # No PULSE_LATENCY_MSEC: it breaks playback through the ALSA pulse plugin.
      pulseaudio --daemonize=yes --system=false --exit-idle-time=-1 --disallow-exit -n \
        --load=module-native-protocol-unix \
        --load="module-null-sink sink_name=nullsink rate=48000 channels=1" || true
      SALON_STARTED_PULSE=1
      local i
      for i in $(seq 1 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    if pactl info >/dev/null 2>&1; then
      pactl set-default-sink nullsink >/dev/null 2>&1 || true
      pactl set-default-source nullsink.monitor >/dev/null 2>&1 || true
      # Real-device tests fail (rather than skip) when this is set and the device path breaks.
      export SALON_AUDIO_DEVICE_TESTS=1
    else
      echo "salon: PulseAudio did not start; real-device audio tests will be skipped" >&2
    fi
  fi
}

# A virtual display for the desktop app's WebDriver tests.
salon_xvfb_start() {
  if [ -z "${DISPLAY:-}" ] && command -v Xvfb >/dev/null 2>&1; then
    Xvfb :99 -screen 0 1280x860x24 -nolisten tcp >/dev/null 2>&1 &
    SALON_XVFB_PID=$!
    export DISPLAY=:99
    local i
    for i in $(seq 1 50); do [ -e /tmp/.X11-unix/X99 ] && break; sleep 0.1; done
  fi
}

salon_services_stop() {
  if [ -n "${SALON_XVFB_PID:-}" ]; then
    kill "$SALON_XVFB_PID" >/dev/null 2>&1 || true
  fi
  if [ "${SALON_STARTED_PULSE:-0}" = 1 ]; then
    pulseaudio --kill >/dev/null 2>&1 || true
  fi
}
