#!/bin/sh
# Runs the rotation/table benchmarks of several longrope_bench binaries one
# after the other, twice, alternating (A B C A B C), so load changes on a
# shared machine hit each binary alike. Writes <out>/<label>.<round>.json.
#   bench/compare_runs.sh <out_dir> label=binary [label=binary ...]
# Typical: native=build/release/bench/longrope_bench nomarch=build/release/bench/longrope_bench_nomarch
set -eu
out=$1
shift
mkdir -p "$out"
filter=${LONGROPE_BENCH_FILTER:-'BM_prefill|BM_decode|BM_table_(naive|exact|write_floor)/131072'}
for round in ${LONGROPE_BENCH_ROUNDS:-1 2}; do
  for pair in "$@"; do
    label=${pair%%=*}
    bin=${pair#*=}
    "$bin" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
      --benchmark_enable_random_interleaving=true --benchmark_filter="$filter" \
      --benchmark_out="$out/$label.$round.json" --benchmark_out_format=json > /dev/null
    echo "$label round $round done"
  done
done
