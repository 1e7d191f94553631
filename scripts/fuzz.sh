#!/usr/bin/env bash
# Builds the fuzz targets (tests/fuzz/) with clang + libFuzzer + ASan/UBSan in
# build/fuzz and runs each for SECONDS (default 300) on a working copy of its
# seed corpus (build/fuzz/work/<target>; the committed corpus is never
# modified). Prints executions per second and corpus sizes per target; exits
# non-zero if any target finds a crash, leak, timeout or sanitizer report
# (the reproducer is left in build/fuzz/work/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 20 fuzz_tokenizer
#
# Needs clang and libclang-rt-dev: LONGROPE_FUZZ=1 scripts/install-deps.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_rope_config fuzz_search_checkpoint fuzz_llama2c_checkpoint fuzz_tokenizer)
fi
clangxx=$(command -v clang++ || command -v clang++-14 || true)
if [ -z "$clangxx" ]; then
  echo "fuzz: clang++ not found (LONGROPE_FUZZ=1 scripts/install-deps.sh installs clang and libclang-rt-dev)" >&2
  exit 2
fi
build=build/fuzz
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="$clangxx" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DLONGROPE_BUILD_BENCHMARKS=OFF -DLONGROPE_FUZZ_SECONDS=0 >/dev/null
cmake --build "$build" --target "${targets[@]}" -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in "${targets[@]}"; do
  work="$build/work/$t"
  mkdir -p "$work"
  log="$build/work/$t.log"
  echo "=== fuzz: $t for ${seconds}s"
  if ! "$build/tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$work/" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    echo "fuzz: $t FAILED (see $log)" >&2
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  secs=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz: $t: $runs executions, $secs exec/s, corpus $(find "$work" -maxdepth 1 -type f | wc -l) files" \
       "($(du -sh "$work" | cut -f1)), seeds $(find "tests/fuzz/corpus/$t" -type f | wc -l)"
done
exit $status
