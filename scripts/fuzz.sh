#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for a bounded time from its
# committed seeds and past crashes (fuzz/seeds/<target>, fuzz/regressions/<target>); a
# crash fails the run. The whole step, cargo-fuzz install and build included, stays
# within SALON_FUZZ_BUDGET seconds (default 270): each target gets up to the given
# seconds (default 45), fewer when the install or the build took long.
# Without a nightly toolchain it says so and exits 0: libFuzzer needs nightly.
# Usage: scripts/fuzz.sh [max seconds per target]
set -euo pipefail
cd "$(dirname "$0")/.."
per_max=${1:-45}
budget=${SALON_FUZZ_BUDGET:-270}
start=$SECONDS

if ! command -v rustup >/dev/null || ! rustup toolchain list | grep -q nightly; then
    echo "== fuzz: SKIPPED: no nightly Rust toolchain here (cargo-fuzz needs nightly for libFuzzer's"
    echo "   sanitizer flags). 'rustup toolchain install nightly' enables it; the committed fuzz"
    echo "   inputs are still replayed on stable by 'cargo test -p salon-proto --test fuzz_corpus'."
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== fuzz: installing cargo-fuzz (once per machine; kept in ~/.cargo/bin)"
    cargo install cargo-fuzz --locked
fi
# Under the build root scripts/deps.sh uses, in a directory of its own: CI's fresh clone
# reuses the last run's fuzz build and grown corpus, and libFuzzer's sanitizer flags never
# invalidate the workspace's artefacts.
base="${CARGO_TARGET_DIR:-${SALON_TARGET_DIR:-$HOME/.cache/salon/target}}"
export CARGO_TARGET_DIR="$base/fuzz"
corpus_root="$base/fuzz-corpus"
# -a: debug assertions and overflow checks on, so arithmetic overflow is a crash too.
flags=(-O -a)
mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build "${flags[@]}"
left=$(( budget - (SECONDS - start) ))
per=$(( left / ${#targets[@]} - 5 ))
(( per > per_max )) && per=$per_max
(( per < 10 )) && per=10
echo "== fuzz: ${#targets[@]} targets (${targets[*]}), ${per} s each"
for t in "${targets[@]}"; do
    # The first directory receives new inputs; the committed ones are only read.
    mkdir -p "$corpus_root/$t"
    dirs=("$corpus_root/$t")
    for d in "fuzz/seeds/$t" "fuzz/regressions/$t"; do
        [[ -d $d ]] && dirs+=("$d")
    done
    # Progress lines dropped; the final figures (runs, exec/s) and any crash report stay.
    set +e
    cargo +nightly fuzz run "${flags[@]}" "$t" "${dirs[@]}" -- -max_total_time="$per" 2>&1 \
        | grep -v -E '^(#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|[[:space:]]+NEW_FUNC)'
    status=${PIPESTATUS[0]}
    set -e
    if (( status != 0 )); then
        echo "== fuzz: $t CRASHED (exit $status): the input is in fuzz/artifacts/$t/;"
        echo "   fix it and commit the input under fuzz/regressions/$t/ (see fuzz/README.md)"
        exit 1
    fi
done
echo "== fuzz: done in $(( SECONDS - start )) s, no crash"
