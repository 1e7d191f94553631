#!/usr/bin/env bash
# Passkey retrieval at toy scale, end to end (#11, docs/passkey.md): teach stories260K to retrieve within its
# trained 512 tokens, search LongRoPE factors on the result, fine-tune it at 2048 with PI, YaRN and LongRoPE,
# and measure passkey accuracy at 512 ... 8192 for every method without and with that extension fine-tune.
#
#   scripts/passkey-figure.sh [OUT_DIR]       default build/passkey; writes OUT_DIR/passkey-table.md and
#                                              OUT_DIR/passkey-table.json (every cell: correct, trials, interval)
#
# Every stage is cached in OUT_DIR (a finished file is not redone; FORCE=1 redoes all). Deterministic for
# THREADS (training results depend on the thread count, not on the run). Environment: LONGROPE (the CLI,
# default build/release/tools/longrope/longrope), LONGROPE_SHARED_DIR (../shared), THREADS (2), TRIALS (50),
# SEED (1000, the passkey trials' seed), LENGTHS ("512 1024 2048 4096 8192"), FT_STEPS (100), JOBS (2).
#
# Stages and their wall time on the 2-core Zen 2 machine at load 6-9 (other jobs running; about half as long
# idle): passkey training 6.5 min (2.3 min idle); factor searches at 2048 / 4096 / 8192 and the progressive
# 8192 one 1 / 3.5 / 10 / 6 min; the three extension fine-tunes 9 / 10 / 7 min; the table (40 cells) about an
# hour, mostly the 8192 column.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/passkey}
LONGROPE=${LONGROPE:-build/release/tools/longrope/longrope}
SHARED=${LONGROPE_SHARED_DIR:-../shared}
THREADS=${THREADS:-2}
TRIALS=${TRIALS:-50}
SEED=${SEED:-1000}
JOBS=${JOBS:-2}
FT_STEPS=${FT_STEPS:-100}
LENGTHS=${LENGTHS:-"512 1024 2048 4096 8192"}
TOK=$SHARED/models/stories260K/tok512.bin
BASE=$SHARED/models/stories260K/stories260K.bin
TEXT=$SHARED/data/tinystories/valid_head.txt
for f in "$LONGROPE" "$TOK" "$BASE" "$TEXT"; do
  [ -e "$f" ] || { echo "passkey-figure: $f not found (build the release preset; set LONGROPE_SHARED_DIR)" >&2; exit 2; }
done
mkdir -p "$OUT"
if [ -n "${FORCE:-}" ]; then rm -rf "$OUT"/*.done "$OUT/cells"; fi
log() { echo "passkey-figure: $*" >&2; }
done_or() {  # done_or NAME CMD...: run CMD unless NAME.done exists
  local name=$1; shift
  if [ -f "$OUT/$name.done" ]; then log "$name: cached"; return; fi
  log "$name: $*"
  "$@"
  touch "$OUT/$name.done"
}
train=(--tokenizer "$TOK" --text "$TEXT" --threads "$THREADS" --passkey-weight 10)

# 1. The passkey fine-tune: a short-distance curriculum at 256 tokens (every sequence a passkey sample), then
#    the trained length with half passkey samples and half training text.
done_or pk256 "$LONGROPE" finetune --model "$BASE" "${train[@]}" --context 256 --passkey-mix 1.0 --steps 800 \
  --batch 8 --lr 2e-3 --min-lr 2e-4 --warmup 20 --seed 0 --out "$OUT/pk256.bin"
done_or pk512 "$LONGROPE" finetune --model "$OUT/pk256.bin" "${train[@]}" --context 512 --passkey-mix 0.5 \
  --steps 400 --batch 8 --lr 1e-3 --min-lr 1e-4 --warmup 10 --seed 1 --out "$OUT/pk512.bin"

# 2. LongRoPE's search (perplexity fitness, the paper's method) on the passkey model, one factor set per length.
search=(--tokenizer "$TOK" --text "$TEXT" --threads "$THREADS" --windows 1 --validation-windows 1 --seed 0
  --population 12 --mutations 6 --crossovers 6 --topk 6 --iterations 4)
for n in 2048 4096 8192; do
  done_or "search$n" "$LONGROPE" search --model "$OUT/pk512.bin" "${search[@]}" --context $n \
    --out "$OUT/search$n.json"
done

# 3. Extension fine-tunes at 2048 with the same budget and data (passkey mix kept, so the skill is not
#    forgotten): PI, YaRN, LongRoPE with its searched 4x factors. Then LongRoPE's progressive step: the
#    factors for 8192 searched again on the fine-tuned model.
ft=("${train[@]}" --context 2048 --passkey-mix 0.5 --steps "$FT_STEPS" --batch 4 --lr 5e-4 --min-lr 5e-5
  --warmup 5 --seed 2)
done_or ft-pi "$LONGROPE" finetune --model "$OUT/pk512.bin" "${ft[@]}" --method pi --out "$OUT/ft-pi.bin"
done_or ft-yarn "$LONGROPE" finetune --model "$OUT/pk512.bin" "${ft[@]}" --method yarn --out "$OUT/ft-yarn.bin"
done_or ft-longrope "$LONGROPE" finetune --model "$OUT/pk512.bin" "${ft[@]}" --factors-file "$OUT/search2048.json" \
  --out "$OUT/ft-longrope.bin"
done_or ft-search8192 "$LONGROPE" search --model "$OUT/ft-longrope.bin" "${search[@]}" --context 8192 \
  --out "$OUT/ft-search8192.json"

# 4. The table. A row is "label|model|method|longrope factor files per length (n:file, smallest n >= context)".
lr_base="2048:$OUT/search2048.json 4096:$OUT/search4096.json 8192:$OUT/search8192.json"
lr_ft="2048:$OUT/search2048.json 8192:$OUT/ft-search8192.json"
rows=(
  "none|$OUT/pk512.bin|none|"
  "PI|$OUT/pk512.bin|pi|"
  "NTK|$OUT/pk512.bin|ntk|"
  "YaRN|$OUT/pk512.bin|yarn|"
  "LongRoPE (searched)|$OUT/pk512.bin|longrope|$lr_base"
  "PI-FT|$OUT/ft-pi.bin|pi|"
  "YaRN-FT|$OUT/ft-yarn.bin|yarn|"
  "LongRoPE-FT (searched, progressive)|$OUT/ft-longrope.bin|longrope|$lr_ft"
)
cells=$OUT/cells
mkdir -p "$cells"
jobs_list=$OUT/cells.list
: > "$jobs_list"
for i in "${!rows[@]}"; do for n in $LENGTHS; do echo "$i $n" >> "$jobs_list"; done; done
cell() {  # cell ROW_INDEX LENGTH
  local i=$1 n=$2 label model method files flags f k p
  IFS='|' read -r label model method files <<< "${ROWS[$i]}"
  local out="$CELLS/$i-$n-t$TRIALS-s$SEED.json"  # other trials or seed: other cells
  [ -s "$out" ] && return 0
  if [ "$method" = longrope ]; then
    # smallest listed length >= n, else the largest listed
    f=""; for kv in $files; do k=${kv%%:*}; p=${kv#*:}; f=$p; if [ "$k" -ge "$n" ]; then break; fi; done
    flags="--factors-file $f"
    if [ "$n" -le 512 ]; then flags="--method none"; fi   # inside the trained window: the original RoPE
  else
    flags="--method $method"
  fi
  # shellcheck disable=SC2086
  "$LONGROPE" passkey --model "$model" --tokenizer "$TOK" --context "$n" --trials "$TRIALS" --seed "$SEED" \
    $flags > "$out.tmp" 2>/dev/null
  mv "$out.tmp" "$out"
}
export -f cell
export LONGROPE TOK TRIALS SEED
export CELLS=$cells
# bash cannot export arrays: pass the rows through a file
printf '%s\n' "${rows[@]}" > "$OUT/rows.txt"
log "passkey table: $(wc -l < "$jobs_list") cells, $TRIALS trials each, $JOBS at a time"
xargs -P "$JOBS" -n 2 bash -c 'mapfile -t ROWS < "'"$OUT"'/rows.txt"; cell "$0" "$1"' < "$jobs_list"

python3 - "$OUT" "$LENGTHS" "$TRIALS" "$SEED" <<'EOF'
import json, math, sys
out, lengths, trials, seed = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]
rows = [r.split("|") for r in open(f"{out}/rows.txt").read().splitlines()]
def wilson(k, n, z=1.959963984540054):
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)
table, md = [], []
md.append(f"{trials} trials per cell (passkey seed {seed}); accuracy and 95% Wilson interval.\n")
md.append("| method | fine-tuned at 2048 | " + " | ".join(lengths) + " |")
md.append("| --- | --- |" + " --- |" * len(lengths))
for i, (label, model, method, _files) in enumerate(rows):
    cells = []
    for n in lengths:
        j = json.load(open(f"{out}/cells/{i}-{n}-t{trials}-s{seed}.json"))
        lo, hi = wilson(j["correct"], j["trials"])
        table.append({"method": label, "model": model, "context": int(n), "correct": j["correct"],
                      "trials": j["trials"], "accuracy": j["accuracy"], "wilson95": [lo, hi],
                      "factors": j["factors"], "n_hat": j["n_hat"], "attention_factor": j["attention_factor"]})
        cells.append(f"{100 * j['accuracy']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]")
    md.append(f"| {label} | {'yes' if '-FT' in label else 'no'} | " + " | ".join(cells) + " |")
open(f"{out}/passkey-table.md", "w").write("\n".join(md) + "\n")
json.dump({"trials": int(trials), "seed": int(seed), "cells": table}, open(f"{out}/passkey-table.json", "w"), indent=1)
print("\n".join(md))
EOF
