// Coordinator overhead with a zero-cost evaluator (`longrope evaluate
// --synthetic`: a few logs per request): evaluations per second through the
// process pool (pipes, 1 and 3 children) and over MPI, against a naive
// baseline in the same run, the protocol's own encode + decode in-process (no
// pipes, no processes: what a message costs at minimum). Its own binary,
// longrope_bench_evaluators, because the MPI case must run as rank 0 of
//   mpirun --oversubscribe -np 1 longrope_bench_evaluators : -np 3 longrope evaluate --synthetic --mpi
// (without mpirun only the pipe cases run). Batches of 256 requests of 64 pairs.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <longrope/evaluator_protocol.hpp>

#include "evaluator_pool.hpp"
#include "mpi_transport.hpp"

namespace {

std::vector<longrope::eval_request> batch() {
  longrope::search_target t;
  t.rope.head_dim = 128;
  t.original_length = 4096;
  t.scale = 32.0;
  std::vector<longrope::eval_request> v;
  for (int i = 0; i < 256; ++i) {
    longrope::search_point p;
    for (int k = 0; k < 64; ++k) p.factors.push_back(1.0 + 0.37 * k + 0.001 * i);
    p.n_hat = i % 8;
    v.push_back(longrope::make_eval_request(static_cast<std::uint64_t>(i), t, p, 1.2));
  }
  return v;
}

void BM_protocol_encode_decode(benchmark::State& st) {
  const auto reqs = batch();
  double sum = 0;
  for (auto _ : st) {
    for (const auto& r : reqs) {
      const auto m = longrope::decode_message(longrope::encode_request(r));
      const auto rep = longrope::decode_reply(longrope::encode_reply({m.request.id, m.request.factors[0], ""}));
      sum += *rep.fitness;
    }
  }
  benchmark::DoNotOptimize(sum);
  st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(reqs.size()));
}
BENCHMARK(BM_protocol_encode_decode)->Unit(benchmark::kMillisecond)->UseRealTime();

// The split of the in-process cost: what the coordinator pays per request
// (encode) and what an evaluator pays to read it (decode_message).
void BM_protocol_encode_request(benchmark::State& st) {
  const auto reqs = batch();
  std::size_t bytes = 0;
  for (auto _ : st) {
    for (const auto& r : reqs) bytes += longrope::encode_request(r).size();
  }
  benchmark::DoNotOptimize(bytes);
  st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(reqs.size()));
  st.counters["bytes_per_request"] = static_cast<double>(bytes) / static_cast<double>(st.iterations() * reqs.size());
}
BENCHMARK(BM_protocol_encode_request)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_protocol_decode_request(benchmark::State& st) {
  std::vector<std::string> lines;
  for (const auto& r : batch()) lines.push_back(longrope::encode_request(r));
  double sum = 0;
  for (auto _ : st) {
    for (const auto& l : lines) sum += longrope::decode_message(l).request.factors[0];
  }
  benchmark::DoNotOptimize(sum);
  st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(lines.size()));
}
BENCHMARK(BM_protocol_decode_request)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_pool_pipes(benchmark::State& st) {
  longrope_cli::pool_options o;
  o.command = std::string(LONGROPE_CLI_PATH) + " evaluate --synthetic";
  o.children = static_cast<int>(st.range(0));
  o.max_pipeline = static_cast<int>(st.range(1));  // 1: one request per round trip (the naive baseline)
  longrope_cli::process_pool pool(o);
  const auto reqs = batch();
  pool.evaluate(reqs);  // start the children outside the timing
  for (auto _ : st) benchmark::DoNotOptimize(pool.evaluate(reqs));
  st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(reqs.size()));
}
BENCHMARK(BM_pool_pipes)
    ->ArgNames({"children", "pipeline"})
    ->Args({1, 1})
    ->Args({1, 64})
    ->Args({3, 1})
    ->Args({3, 64})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

std::unique_ptr<longrope_cli::evaluator_transport> g_mpi;

void BM_mpi(benchmark::State& st) {
  const auto reqs = batch();
  for (auto _ : st) benchmark::DoNotOptimize(g_mpi->evaluate(reqs));
  st.SetItemsProcessed(st.iterations() * static_cast<std::int64_t>(reqs.size()));
}

}  // namespace

int main(int argc, char** argv) {
  const char* world = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (!world) world = std::getenv("PMI_SIZE");
  if (world && std::atoi(world) > 1 && longrope_cli::mpi_available()) {
    g_mpi = longrope_cli::make_mpi_transport(0.0);
    benchmark::RegisterBenchmark("BM_mpi", BM_mpi)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_mpi.reset();  // shutdown to the evaluator ranks, MPI_Finalize
  return 0;
}
