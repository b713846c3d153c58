#!/usr/bin/env bash
# The latency matrix of a finished run on this machine and on emulated ARM64, merged into one report.
#
#   benchmarks/device_matrix.sh OUT RESULTS_DIR [DEVICE_JSON ...]
#
# OUT: a finished `bert-compress run` (teacher, student, export, quantize). Steps:
#   1. bert-compress bench  --out OUT --force   teacher, student, every artifact: OUT/bench.json
#   2. bert-compress bundle --out OUT --force   the bundle with this version's metadata (architecture, compute)
#   3. python -m targets bench OUT/bundle       twice, as a device would: the repeatability table
#   4. bert-compress arm64 OUT/bundle           Cortex-A72 / A76 under qemu-user (skipped without qemu)
#   5. bert-compress report ...                 RESULTS_DIR/report.md + plots, with any DEVICE_JSON from phones / Pis
# Each step's wall time goes to RESULTS_DIR/times.txt. Run it on an idle machine.
set -euo pipefail
OUT=${1:?usage: device_matrix.sh OUT RESULTS_DIR [DEVICE_JSON ...]}
RESULTS=${2:?usage: device_matrix.sh OUT RESULTS_DIR [DEVICE_JSON ...]}
shift 2
if [ -n "$(ls -A "$RESULTS" 2>/dev/null)" ] && [ ! -f "$RESULTS/times.txt" ]; then
  echo "device_matrix.sh: $RESULTS holds files this script did not write: choose an empty or new directory" >&2
  exit 2
fi
rm -rf "$RESULTS/inputs" "$RESULTS/arm64" "$RESULTS/report" "$RESULTS/times.txt"
mkdir -p "$RESULTS/inputs"
export TF_CPP_MIN_LOG_LEVEL=2
timed() { local label=$1; shift; local t0=$SECONDS; "$@"; echo "$label: $((SECONDS - t0)) s" >> "$RESULTS/times.txt"; }

timed "bert-compress bench" bert-compress bench --out "$OUT" --force
timed "bert-compress bundle" bert-compress bundle --out "$OUT" --force
cp "$OUT/bench.json" "$RESULTS/inputs/build_machine.json"
for i in 1 2; do
  timed "python -m targets bench (run $i)" python -m targets bench "$OUT/bundle" --device "$(hostname) (build machine, bundle only)" \
    --out "$RESULTS/inputs/device_run$i.json" --force
done
inputs=("$RESULTS/inputs/build_machine.json" "$RESULTS/inputs/device_run1.json" "$RESULTS/inputs/device_run2.json")
if command -v qemu-aarch64-static >/dev/null || command -v qemu-aarch64 >/dev/null; then
  timed "bert-compress arm64" bert-compress arm64 "$OUT/bundle" --out "$RESULTS/arm64" --force
  inputs+=("$RESULTS"/arm64/bench-*.json)
else
  echo "no qemu-user: the ARM64 step is skipped (apt-get install qemu-user-static debootstrap)" >&2
fi
timed "bert-compress report" bert-compress report "${inputs[@]}" "$@" --out "$RESULTS/report" --force
