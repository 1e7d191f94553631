#!/usr/bin/env bash
# Passkey retrieval accuracy of a llama2.c model across lengths and RoPE scalings (#11, docs/passkey.md):
# `longrope passkey` at 512, 1k, 2k, 4k, 8k for none / PI / NTK / YaRN / LongRoPE, with a 95% Wilson
# interval per cell. LongRoPE uses the factors searched on stories260K (docs/results.json): the 4x set
# (searched at 2048) up to 2048, the 8x set (4096, n_hat 8) at 4096 and 8192.
#
#   scripts/passkey-table.sh MODEL [OUT.md]       env: TRIALS (default 50), SEED (default 1000),
#                                                  LENGTHS, LONGROPE, LONGROPE_SHARED_DIR, JOBS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$1
OUTMD=${2:-/dev/stdout}
LONGROPE=${LONGROPE:-build/release/tools/longrope/longrope}
SHARED=${LONGROPE_SHARED_DIR:-../shared}
TRIALS=${TRIALS:-50}
SEED=${SEED:-1000}
JOBS=${JOBS:-2}
LENGTHS=${LENGTHS:-"512 1024 2048 4096 8192"}
TOK=$SHARED/models/stories260K/tok512.bin
F4=1.0,1.27,1.63,2.27
F8=1.06,1.54,2.27,3.12
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

run() {  # run N METHOD
  local n=$1 m=$2 flags
  case $m in
    longrope) if [ "$n" -le 2048 ]; then flags="--factors $F4"; else flags="--factors $F8 --n-hat 8"; fi ;;
    *) flags="--method $m" ;;
  esac
  # shellcheck disable=SC2086
  "$LONGROPE" passkey --model "$MODEL" --tokenizer "$TOK" --context "$n" --trials "$TRIALS" --seed "$SEED" $flags \
    > "$WORK/$n-$m.json" 2>/dev/null
}
export -f run
export LONGROPE MODEL TOK TRIALS SEED F4 F8 WORK
for n in $LENGTHS; do for m in none pi ntk yarn longrope; do echo "$n $m"; done; done |
  xargs -P "$JOBS" -n 2 bash -c 'run "$0" "$1"'

python3 - "$WORK" "$LENGTHS" "$TRIALS" "$SEED" "$MODEL" > "$OUTMD" <<'EOF'
import json, math, sys
work, lengths, trials, seed, model = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4], sys.argv[5]
def wilson(k, n, z=1.959963984540054):
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)
methods = ["none", "pi", "ntk", "yarn", "longrope"]
names = {"none": "none", "pi": "PI", "ntk": "NTK", "yarn": "YaRN", "longrope": "LongRoPE (searched)"}
print(f"Model `{model}`, {trials} trials per cell (seed {seed}); accuracy and 95% Wilson interval.\n")
print("| method | " + " | ".join(lengths) + " |")
print("| --- |" + " --- |" * len(lengths))
for m in methods:
    cells = []
    for n in lengths:
        j = json.load(open(f"{work}/{n}-{m}.json"))
        lo, hi = wilson(j["correct"], j["trials"])
        cells.append(f"{100 * j['accuracy']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]")
    print(f"| {names[m]} | " + " | ".join(cells) + " |")
EOF
