#!/usr/bin/env python3
"""Speech quality of the salon-audio pipeline vs bare libopus, PESQ-WB (ITU-T P.862.2).

Needs: espeak-ng (Debian), the `pesq` and `scipy` packages (PyPI), a built
`speech_quality` example. Run from the workspace root:

    cargo build --release -p salon-audio --example speech_quality
    python3 crates/salon-audio/tools/pesq_bench.py

The example's environment passes through: `FRAME_MS=10` for 10 ms frames, `LEAD_IN_S=5`
to run the stream five seconds before the speech (as in a room), `NO_COPIES=1` to keep
payload format 0 at every loss. `LOSSES=0,20` picks the loss rates.
"""
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np
from pesq import pesq
from scipy.signal import resample_poly

EXAMPLE = os.environ.get("SPEECH_QUALITY_BIN", "target/release/examples/speech_quality")
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb-x-rp+m3"]
TEXT = (
    "The quick brown fox jumps over the lazy dog. Salon rooms keep every voice private, "
    "and the audio should sound as clear as a phone call on a good day. "
    "Please raise your hand if you would like to speak on stage."
)
LOSSES = [int(v) for v in os.environ.get("LOSSES", "0,5,10,20").split(",")]
SEEDS = [1, 2]


def read16k(path):
    with wave.open(path, "rb") as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
        if w.getnchannels() > 1:
            x = x.reshape(-1, w.getnchannels()).mean(axis=1)
    x /= 32768.0
    if rate == 48000:
        x = resample_poly(x, 1, 3)
    elif rate != 16000:
        x = resample_poly(x, 16000, rate)
    return x


def main():
    tmp = tempfile.mkdtemp(prefix="salon-pesq-")
    rows = {}
    for voice in VOICES:
        ref = os.path.join(tmp, f"{voice}.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-w", ref, TEXT], check=True)
        ref16 = read16k(ref)
        for loss in LOSSES:
            for seed in SEEDS:
                out = os.path.join(tmp, f"{voice}-{loss}-{seed}")
                subprocess.run(
                    [EXAMPLE, ref, str(loss), str(seed), out],
                    check=True,
                    stderr=subprocess.DEVNULL,
                )
                for kind in ["pipeline", "bare"]:
                    deg = read16k(os.path.join(out, f"{kind}.wav"))
                    n = min(len(ref16), len(deg))
                    score = pesq(16000, ref16[:n], deg[:n], "wb")
                    rows.setdefault((kind, loss), []).append(score)
    print("PESQ-WB, mean over %d voices x %d loss traces" % (len(VOICES), len(SEEDS)))
    print("%-9s %s" % ("loss", "  ".join("%5d%%" % l for l in LOSSES)))
    for kind in ["pipeline", "bare"]:
        print("%-9s %s" % (kind, "  ".join("%6.2f" % np.mean(rows[(kind, l)]) for l in LOSSES)))


if __name__ == "__main__":
    sys.exit(main())
