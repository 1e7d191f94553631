#!/usr/bin/env bash
# The second, wider toy model (#11): a llama2.c model trained from scratch on the shared TinyStories text
# with head_size 32 (16 rotary pairs, against stories260K's 4), at 256 tokens (CONTEXT), in a time budget.
# The weights are made on this machine and never committed. Cached: a finished run is not repeated
# (FORCE=1 retrains); a killed run resumes from its state file, bit for bit.
#
#   scripts/train-wide.sh                  # train (<= MINUTES, default 30), then evaluate
#   EVAL_ONLY=1 scripts/train-wide.sh      # evaluate the cached model
#   EXTEND=1 scripts/train-wide.sh         # then the progressive pipeline on it (docs/pipeline.md,
#                                          # "The wide model"): OUT/extend/result.json, ~8 minutes
#   CONTEXT=512 BATCH=8 scripts/train-wide.sh  # the same model trained at 512 (stories260K's L0), so the
#                                          # pipeline's 4x and 16x are 2048 and 8192; OUT build/wide-512
#
# Environment: LONGROPE (the CLI, default build/release/tools/longrope/longrope), LONGROPE_SHARED_DIR
# (default ../shared), CONTEXT (the trained length L0, 256), OUT (default build/wide, build/wide-CONTEXT for
# another CONTEXT), EXTEND_DIR (the pipeline's work directory, OUT/extend), EXTEND_FLAGS (extra extend
# options, after the defaults, so they win), MINUTES (30), STEPS (the schedule's length, 1200),
# BATCH (16), THREADS (2), SEARCH_SECONDS (budget of each factor search, 240), SEARCH_FLAGS (extra search
# options, e.g. "--population 8 --iterations 1" for a smoke run).
#
# Data: the first 3/4 of valid_head.txt's 393,018 tokens train, the last quarter (from token 294,764) is
# held out; every perplexity below is on held-out windows, 32,768 scored tokens per context.
set -euo pipefail
cd "$(dirname "$0")/.."
LONGROPE=${LONGROPE:-build/release/tools/longrope/longrope}
SHARED=${LONGROPE_SHARED_DIR:-../shared}
CONTEXT=${CONTEXT:-256}
if [ "$CONTEXT" = 256 ]; then OUT=${OUT:-build/wide}; else OUT=${OUT:-build/wide-$CONTEXT}; fi
EXTEND_FLAGS=${EXTEND_FLAGS:-}
EXTEND_DIR=${EXTEND_DIR:-$OUT/extend}
MINUTES=${MINUTES:-30}
STEPS=${STEPS:-1200}
THREADS=${THREADS:-2}
BATCH=${BATCH:-16}
SEARCH_FLAGS=${SEARCH_FLAGS:-}
SEARCH_SECONDS=${SEARCH_SECONDS:-240}
TOK=$SHARED/models/stories260K/tok512.bin
TEXT=$SHARED/data/tinystories/valid_head.txt
SPEC=dim=128,layers=4,heads=4,kv_heads=4,hidden=352,vocab=512,seq_len=$CONTEXT
DATA_END=294764
mkdir -p "$OUT"
MODEL=$OUT/wide.bin

if [ -n "${FORCE:-}" ]; then rm -f "$OUT/wide.done" "$MODEL.state"; fi
if [ -z "${EVAL_ONLY:-}" ] && [ ! -f "$OUT/wide.done" ]; then
  RESUME=()
  if [ -f "$MODEL.state" ]; then RESUME=(--resume "$MODEL.state"); fi
  "$LONGROPE" finetune --init "$SPEC" --tokenizer "$TOK" --text "$TEXT" --data-end $DATA_END \
    --context "$CONTEXT" --steps "$STEPS" --batch "$BATCH" --lr 2e-3 --min-lr 2e-4 --warmup 40 \
    --weight-decay 0.1 --seed 0 --threads "$THREADS" --save-every 50 --max-seconds $((MINUTES * 60)) \
    --out "$MODEL" "${RESUME[@]}" \
    > "$OUT/train.json" 2> "$OUT/train.log"
  if grep -q '"stopped_early": false' "$OUT/train.json"; then touch "$OUT/wide.done"; fi
fi

# Held-out perplexity at N: windows of N-1 tokens from the first whole window after DATA_END.
ev() {  # ev N [scaling flags...]
  local n=$1; shift
  local first=$(( (DATA_END + n - 2) / (n - 1) )) windows=$(( 32768 / (n - 1) ))
  "$LONGROPE" eval --model "$MODEL" --tokenizer "$TOK" --text "$TEXT" --context "$n" --first-window $first \
    --windows $windows --threads "$THREADS" "$@" 2>/dev/null | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["perplexity"])'
}
# Factor searches (short budget) on training-text windows (the start of the stream).
for n in $((4 * CONTEXT)) $((8 * CONTEXT)); do
  if [ ! -f "$OUT/search$n.json" ]; then
    "$LONGROPE" search --model "$MODEL" --tokenizer "$TOK" --text "$TEXT" --context $n --windows 2 \
      --first-window 0 --threads "$THREADS" --seed 0 --max-seconds "$SEARCH_SECONDS" --out "$OUT/search$n.json" \
      $SEARCH_FLAGS \
      > /dev/null 2> "$OUT/search$n.log"
  fi
done
{
  echo "| context | none | PI | NTK | YaRN | LongRoPE (searched) |"
  echo "| --- | --- | --- | --- | --- | --- |"
  echo "| $CONTEXT | $(ev "$CONTEXT" --method none) | - | - | - | - |"
  for n in $((4 * CONTEXT)) $((8 * CONTEXT)); do
    echo "| $n | $(ev $n --method none) | $(ev $n --method pi) | $(ev $n --method ntk) | $(ev $n --method yarn) | $(ev $n --factors-file "$OUT/search$n.json") |"
  done
} | tee "$OUT/table.md"

# The progressive pipeline (#11) at 4x and 16x (1024 and 4096 for CONTEXT 256), evaluated up to 32x.
# The stream starts at token 196,510 of the text, so that its held-out half [n/2, n) is exactly the
# quarter the model never trained on (from token 294,764); fine-tuning and the searches use text it was
# trained on.
if [ -n "${EXTEND:-}" ]; then
  "$LONGROPE" extend --model "$MODEL" --tokenizer "$TOK" --text "$TEXT" --stream-from 196510 \
    --work "$EXTEND_DIR" --mid-context $((4 * CONTEXT)) --long-context $((16 * CONTEXT)) \
    --population 16 --mutations 8 --crossovers 8 --topk 8 --iterations 6 --seed 0 --search-windows 2 \
    --eval-windows 16 \
    --eval-lengths "$CONTEXT,$((4 * CONTEXT)),$((8 * CONTEXT)),$((16 * CONTEXT)),$((32 * CONTEXT))" \
    --steps 60 --batch 4 --lr 5e-4 --warmup 5 --threads "$THREADS" --train-threads 2 \
    --out "$EXTEND_DIR/result.json" $EXTEND_FLAGS > /dev/null 2> "$EXTEND_DIR.log"
  echo "pipeline result: $EXTEND_DIR/result.json"
fi
