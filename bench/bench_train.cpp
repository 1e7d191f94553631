// The trainer (models/include/llama2c/train.hpp) next to the forward alone,
// on random weights of stories260K's shape (dim 64, hidden 172, 5 layers, 8/4
// heads, vocab 512; speed does not depend on the values).
//
//   BM_forward/<tokens>/<threads>     perplexity forward of 2 sequences
//                                     (evaluate_perplexity), the baseline
//   BM_train_step/<tokens>/<threads>  one optimizer step on the same 2
//                                     sequences: forward keeping activations,
//                                     backward, clip, AdamW
//   BM_train_step_4096                one step at 4096 tokens, batch 1; counter
//                                     train_MB = trainer buffers (activations,
//                                     cache, gradient holders) at that length
// items_per_second = predicted tokens per second (2 x (tokens - 1)).
// docs/training.md quotes the ratio train / forward from one run.
#include <cstdint>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include <llama2c/perplexity.hpp>
#include <llama2c/init.hpp>
#include <llama2c/scaling.hpp>
#include <llama2c/train.hpp>

namespace {

/// stories260K's shape (dim 64, 5 layers, 8 heads / 4 kv heads, vocab 512, trained at 512)
/// with llama2.c's initialisation (llama2c/init.hpp): the timings do not depend on the values.
llama2c::checkpoint stories_like() {
  return llama2c::random_checkpoint(
      llama2c::parse_init_spec("dim=64,layers=5,heads=8,kv_heads=4,hidden=172,vocab=512,seq_len=512"), 1);
}

std::vector<int> stream(std::size_t n) {
  std::mt19937 g(2);
  std::uniform_int_distribution<int> u(3, 511);
  std::vector<int> s(n);
  for (auto& t : s) t = u(g);
  return s;
}


longrope::rope_frequencies longrope_freqs(const llama2c::model_config& c, std::int64_t n) {
  llama2c::scaling sc;
  sc.method = llama2c::scaling_method::longrope;
  sc.factors = {1.0, 1.27, 1.63, 2.27};
  return llama2c::make_frequencies(c, sc, n);
}

void BM_forward(benchmark::State& state) {
  const auto ck = stories_like();
  const llama2c::transformer<float> m(ck);
  const auto n = state.range(0);
  const auto f = longrope_freqs(ck.config, n);
  const auto wins = llama2c::make_windows(stream(static_cast<std::size_t>(2 * n)), n, 2);
  for (auto _ : state) {
    benchmark::DoNotOptimize(llama2c::evaluate_perplexity(m, wins, f, static_cast<int>(state.range(1))).nll_sum);
  }
  state.SetItemsProcessed(state.iterations() * 2 * (n - 1));
}

void BM_train_step(benchmark::State& state) {
  const auto ck = stories_like();
  const auto n = state.range(0);
  llama2c::train_options o;
  o.batch = 2;
  o.threads = static_cast<int>(state.range(1));
  o.lr = 1e-6;  // keep the weights (and so the work) essentially fixed
  o.steps = 1000000;
  llama2c::trainer<float> tr(ck, o);
  llama2c::packed_stream_source src(stream(static_cast<std::size_t>(2 * n)), n, 0);
  const auto f = longrope_freqs(ck.config, n);
  for (auto _ : state) {
    benchmark::DoNotOptimize(tr.step(src, f).loss);
  }
  state.SetItemsProcessed(state.iterations() * 2 * (n - 1));
}

void BM_train_step_4096(benchmark::State& state) {
  const auto ck = stories_like();
  llama2c::train_options o;
  o.batch = 1;
  o.lr = 1e-6;
  o.steps = 1000000;
  llama2c::trainer<float> tr(ck, o);
  llama2c::packed_stream_source src(stream(8192), 4096, 0);
  const auto f = longrope_freqs(ck.config, 4096);
  for (auto _ : state) {
    benchmark::DoNotOptimize(tr.step(src, f).loss);
  }
  state.SetItemsProcessed(state.iterations() * 4095);
  state.counters["train_MB"] = static_cast<double>(tr.workspace_bytes()) / 1e6;
}

}  // namespace

BENCHMARK(BM_forward)->Args({512, 1})->Args({512, 2})->Args({2048, 1})->Args({2048, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_train_step)->Args({512, 1})->Args({512, 2})->Args({2048, 1})->Args({2048, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_train_step_4096)->Unit(benchmark::kMillisecond)->Iterations(2);
