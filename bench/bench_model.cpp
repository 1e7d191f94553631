// The toy transformer's perplexity window (models/include/llama2c) next to a
// naive forward that materialises the T x T score matrix per head, in one
// binary. Random weights of stories260K's shape (dim 64, hidden 172, 5 layers,
// 8/4 heads, vocab 512): speed does not depend on the values, and the bench
// needs no model file. One thread. See docs/toy-transformer.md for figures.
//
// Counter: items_per_second = tokens of the window per second.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include <llama2c/checkpoint.hpp>
#include <llama2c/init.hpp>
#include <llama2c/scaling.hpp>
#include <llama2c/transformer.hpp>

namespace {

/// stories260K's shape (dim 64, 5 layers, 8 heads / 4 kv heads, vocab 512, trained at 512)
/// with llama2.c's initialisation (llama2c/init.hpp): the timings do not depend on the values.
llama2c::checkpoint stories_shaped() {
  return llama2c::random_checkpoint(
      llama2c::parse_init_spec("dim=64,layers=5,heads=8,kv_heads=4,hidden=172,vocab=512,seq_len=512"), 1);
}

std::vector<int> window(std::int64_t n) {
  std::mt19937 g(2);
  std::uniform_int_distribution<int> u(3, 511);
  std::vector<int> w(static_cast<std::size_t>(n));
  for (auto& t : w) t = u(g);
  w[0] = 1;
  return w;
}

void BM_window_flash(benchmark::State& state) {
  const auto ck = stories_shaped();
  const llama2c::transformer<float> m(ck);
  const auto n = state.range(0);
  llama2c::scaling sc;
  sc.method = llama2c::scaling_method::ntk;
  const auto f = llama2c::make_frequencies(ck.config, sc, n);
  const auto w = window(n);
  llama2c::kv_cache<float> cache;
  llama2c::workspace<float> ws;
  for (auto _ : state) {
    benchmark::DoNotOptimize(m.sequence_nll(w.data(), n, f, cache, ws));
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// The obvious implementation: Eigen products for the projections, the full
// masked score matrix per head, row softmax, P V; table RoPE written inline.
void BM_window_naive(benchmark::State& state) {
  using mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto ck = stories_shaped();
  const auto n = state.range(0);
  const auto w = window(n);
  const Eigen::Index d = 64, h = 172, kv = 32, hs = 8, V = 512;
  auto map = [](const std::vector<float>& v, std::size_t off, Eigen::Index r, Eigen::Index c) {
    return Eigen::Map<const mat>(v.data() + off, r, c);
  };
  auto rms = [&](const mat& x, const float* wt) {
    mat o(x.rows(), x.cols());
    for (Eigen::Index r = 0; r < x.rows(); ++r) {
      const float s = 1.0f / std::sqrt(x.row(r).squaredNorm() / static_cast<float>(d) + 1e-5f);
      for (Eigen::Index c = 0; c < x.cols(); ++c) o(r, c) = wt[c] * x(r, c) * s;
    }
    return o;
  };
  auto rope = [&](mat& x, Eigen::Index heads) {
    for (Eigen::Index t = 0; t < x.rows(); ++t) {
      for (Eigen::Index hh = 0; hh < heads; ++hh) {
        for (Eigen::Index i = 0; i < hs / 2; ++i) {
          const double a = static_cast<double>(t) * std::pow(10000.0, -2.0 * static_cast<double>(i) / hs);
          const float c = static_cast<float>(std::cos(a)), s = static_cast<float>(std::sin(a));
          float& x0 = x(t, hh * hs + 2 * i);
          float& x1 = x(t, hh * hs + 2 * i + 1);
          const float y0 = x0 * c - x1 * s, y1 = x0 * s + x1 * c;
          x0 = y0;
          x1 = y1;
        }
      }
    }
  };
  for (auto _ : state) {
    mat x(n, d);
    for (Eigen::Index t = 0; t < n; ++t) x.row(t) = map(ck.token_embedding, static_cast<std::size_t>(w[static_cast<std::size_t>(t)] * d), 1, d);
    for (std::size_t l = 0; l < 5; ++l) {
      const mat xb = rms(x, ck.rms_att.data() + l * d);
      mat q = xb * map(ck.wq, l * d * d, d, d).transpose();
      mat k = xb * map(ck.wk, l * kv * d, kv, d).transpose();
      const mat v = xb * map(ck.wv, l * kv * d, kv, d).transpose();
      rope(q, 8);
      rope(k, 4);
      mat att(n, d);
      for (Eigen::Index hh = 0; hh < 8; ++hh) {
        const Eigen::Index g = hh / 2;
        mat s = q.middleCols(hh * hs, hs) * k.middleCols(g * hs, hs).transpose() / std::sqrt(8.0f);
        for (Eigen::Index r = 0; r < n; ++r) {
          s.row(r).tail(n - r - 1).setConstant(-INFINITY);
          const float mx = s.row(r).maxCoeff();
          s.row(r) = (s.row(r).array() - mx).exp().matrix();
          s.row(r) /= s.row(r).sum();
        }
        att.middleCols(hh * hs, hs) = s * v.middleCols(g * hs, hs);
      }
      x += att * map(ck.wo, l * d * d, d, d).transpose();
      const mat hb = rms(x, ck.rms_ffn.data() + l * d);
      mat a = hb * map(ck.w1, l * h * d, h, d).transpose();
      const mat b = hb * map(ck.w3, l * h * d, h, d).transpose();
      a = (a.array() / (1.0f + (-a.array()).exp()) * b.array()).matrix();
      x += a * map(ck.w2, l * d * h, d, h).transpose();
    }
    const mat logits = rms(x, ck.rms_final.data()) * map(ck.token_embedding, 0, V, d).transpose();
    double nll = 0;
    for (Eigen::Index t = 0; t + 1 < n; ++t) {
      const float mx = logits.row(t).maxCoeff();
      nll += mx + std::log((logits.row(t).array() - mx).exp().sum()) - logits(t, w[static_cast<std::size_t>(t + 1)]);
    }
    benchmark::DoNotOptimize(nll);
  }
  state.SetItemsProcessed(state.iterations() * n);
}

}  // namespace

BENCHMARK(BM_window_flash)->Arg(512)->Arg(2048)->Arg(4096)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_window_naive)->Arg(512)->Arg(2048)->Arg(4096)->Unit(benchmark::kMillisecond);
