// longrope benchmark suite (Google Benchmark): one binary, workloads in
// bench_*.cpp, each next to a naive baseline. See docs/performance.md.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
