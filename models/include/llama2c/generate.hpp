// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file generate.hpp
/// Autoregressive generation with the KV cache, as llama2.c's run.c: the
/// prompt (with BOS) is prefilled in one forward, then one token per step;
/// generation stops after `steps` positions in total or when the model emits
/// BOS (run.c's end of a story).
///
/// Sampling: temperature 0 is greedy (argmax, the lowest id on ties);
/// otherwise multinomial over softmax(logits / temperature), drawn with run.c's
/// xorshift* generator (random_f32) seeded by `seed`, so a seed fixes the text.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <longrope/frequencies.hpp>
#include <longrope/kv_switch.hpp>

#include "kv_switch.hpp"
#include "tokenizer.hpp"
#include "transformer.hpp"

namespace llama2c {

struct generate_options {
  std::int64_t steps = 256;     ///< total positions, prompt included (run.c's -n).
  double temperature = 0.0;     ///< 0: greedy.
  std::uint64_t seed = 0;       ///< sampling seed (unused when greedy).
};

/// run.c's xorshift* random_u32 / random_f32.
class xorshift_rng {
 public:
  explicit xorshift_rng(std::uint64_t seed) noexcept : s_(seed == 0 ? 0x9E3779B97F4A7C15ULL : seed) {}
  std::uint32_t next_u32() noexcept {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return static_cast<std::uint32_t>((s_ * 0x2545F4914F6CDD1DULL) >> 32);
  }
  /// Uniform in [0, 1).
  float next_f32() noexcept { return static_cast<float>(next_u32() >> 8) / 16777216.0f; }

 private:
  std::uint64_t s_;
};

namespace detail {

/// The generation loop of both generate() overloads; forward(tokens, m, cache, ws) runs one forward.
template <class T, class Forward>
std::vector<int> generate_loop(const transformer<T>& model, std::vector<int> prompt, const generate_options& opt,
                               const std::function<void(int, int)>& on_token, Forward&& forward) {
  if (prompt.empty()) LONGROPE_THROW("longrope.argument", "generate: empty prompt (start with BOS = 1)");
  if (opt.steps < static_cast<std::int64_t>(prompt.size())) {
    LONGROPE_THROW("longrope.argument", "generate: steps (" + std::to_string(opt.steps) +
                                            ") must be >= the prompt length (" + std::to_string(prompt.size()) + ")");
  }
  if (!std::isfinite(opt.temperature) || opt.temperature < 0.0) {
    LONGROPE_THROW("longrope.argument", "generate: temperature must be finite and >= 0, got " +
                                            std::to_string(opt.temperature));
  }
  kv_cache<T> cache;
  workspace<T> ws;
  matrix_rm<T> logits;
  // No up-front reservation for `steps` positions: the cache grows
  // geometrically as tokens arrive, so memory follows the text actually
  // generated (generation usually stops at BOS long before steps).
  xorshift_rng rng(opt.seed);
  std::vector<int> seq = std::move(prompt);
  forward(seq.data(), static_cast<index_t>(seq.size()), cache, ws);
  index_t last_row = static_cast<index_t>(seq.size()) - 1;
  while (static_cast<std::int64_t>(seq.size()) < opt.steps) {
    model.logits_rows(ws, last_row, 1, logits);
    auto row = logits.row(0);
    if (!row.allFinite()) {  // finite but huge weights: refuse instead of sampling from garbage
      LONGROPE_THROW("longrope.argument", "generate: the logits at position " + std::to_string(seq.size() - 1) +
                                              " are not finite (the model's activations overflow)");
    }
    int next = 0;
    if (opt.temperature == 0.0) {
      index_t arg = 0;
      row.maxCoeff(&arg);
      next = static_cast<int>(arg);
    } else {
      const double inv_t = 1.0 / opt.temperature;
      const double mx = static_cast<double>(row.maxCoeff());
      std::vector<double> p(static_cast<std::size_t>(row.size()));
      double sum = 0.0;
      for (index_t i = 0; i < row.size(); ++i) {
        sum += p[static_cast<std::size_t>(i)] = std::exp((static_cast<double>(row(i)) - mx) * inv_t);
      }
      const double coin = static_cast<double>(rng.next_f32()) * sum;
      double cdf = 0.0;
      next = static_cast<int>(row.size()) - 1;
      for (index_t i = 0; i < row.size(); ++i) {
        cdf += p[static_cast<std::size_t>(i)];
        if (coin < cdf) {
          next = static_cast<int>(i);
          break;
        }
      }
    }
    if (next == kBos) break;  // run.c: BOS delimits sequences
    if (on_token) on_token(seq.back(), next);
    seq.push_back(next);
    if (static_cast<std::int64_t>(seq.size()) >= opt.steps) break;
    forward(&seq.back(), 1, cache, ws);
    last_row = 0;
  }
  return seq;
}

}  // namespace detail

/// Generates from `prompt` (token ids, normally starting with BOS) with fixed
/// frequencies f. Returns the whole sequence: the prompt followed by the
/// generated tokens. `on_token`, when set, is called with (previous, token)
/// for every generated token (for streaming output). Throws longrope::error
/// ("longrope.argument") for an empty prompt, steps < prompt size, a negative
/// or non-finite temperature, and non-finite logits (weights whose activations
/// overflow). The KV cache grows with the sequence (no up-front reservation
/// for `steps`). O(steps * forward of one token over the cache).
template <class T>
std::vector<int> generate(const transformer<T>& model, const longrope::rope_frequencies& f, std::vector<int> prompt,
                          const generate_options& opt,
                          const std::function<void(int, int)>& on_token = {}) {
  return detail::generate_loop(model, std::move(prompt), opt, on_token,
                               [&](const int* tokens, index_t m, kv_cache<T>& cache, workspace<T>& ws) {
                                 model.forward(tokens, m, cache, f, ws);
                               });
}

/// As above, with the factor set chosen per forward by sw from the sequence
/// length after it (LongRoPE short/long): when a generation crosses the
/// switch point (under by_sequence_length: the trained length), the cached
/// keys are re-rotated in place (forward_switched, kv_switch.hpp) instead of
/// re-prefilling; the result equals a re-prefill with the new factors within
/// float rounding (tests/test_model_switch.cpp). Same errors as above.
template <class T>
std::vector<int> generate(const transformer<T>& model, const longrope::factor_switch& sw, std::vector<int> prompt,
                          const generate_options& opt,
                          const std::function<void(int, int)>& on_token = {}) {
  switch_scratch<T> scratch;
  return detail::generate_loop(model, std::move(prompt), opt, on_token,
                               [&](const int* tokens, index_t m, kv_cache<T>& cache, workspace<T>& ws) {
                                 forward_switched(model, sw, tokens, m, cache, ws, scratch);
                               });
}

/// A token stream of stories sampled from the model itself (issue 16's held-out
/// text: what the model would write, not a text it may have been trained on).
/// Story j is generate(model, f, {BOS}, {steps = max_story, temperature, seed +
/// j}): sampled with run.c's sampler until the model emits BOS or max_story
/// positions; the stories are concatenated, each preceded by its BOS, and the
/// stream is cut at exactly n_tokens. Deterministic for (model, f, seed).
/// Throws longrope.argument for n_tokens < 1, max_story < 2 or a temperature
/// <= 0 (greedy decoding would repeat one story). O(n_tokens * forward of one
/// token over at most max_story cached positions).
template <class T>
std::vector<int> sample_stories(const transformer<T>& model, const longrope::rope_frequencies& f,
                                std::int64_t n_tokens, std::int64_t max_story, double temperature,
                                std::uint64_t seed) {
  if (n_tokens < 1 || max_story < 2 || !(temperature > 0.0)) {
    LONGROPE_THROW("longrope.argument",
                   "sample_stories: need n_tokens >= 1, max_story >= 2 and temperature > 0, got " +
                       std::to_string(n_tokens) + ", " + std::to_string(max_story) + ", " +
                       std::to_string(temperature));
  }
  std::vector<int> out;
  out.reserve(static_cast<std::size_t>(n_tokens));
  for (std::uint64_t j = 0; static_cast<std::int64_t>(out.size()) < n_tokens; ++j) {
    generate_options opt;
    opt.steps = max_story;
    opt.temperature = temperature;
    opt.seed = seed + j;
    const auto story = generate(model, f, {kBos}, opt);  // starts with its BOS
    const auto room = static_cast<std::size_t>(n_tokens) - out.size();
    out.insert(out.end(), story.begin(),
               story.begin() + static_cast<std::ptrdiff_t>(std::min(room, story.size())));
  }
  return out;
}

// Compiled once, in the longrope_toymodel library (models/src/); other
// scalar types are instantiated where they are used.
extern template std::vector<int> generate(const transformer<float>&, const longrope::rope_frequencies&,
                                          std::vector<int>, const generate_options&,
                                          const std::function<void(int, int)>&);
extern template std::vector<int> generate(const transformer<float>&, const longrope::factor_switch&,
                                          std::vector<int>, const generate_options&,
                                          const std::function<void(int, int)>&);
extern template std::vector<int> sample_stories(const transformer<float>&, const longrope::rope_frequencies&,
                                                std::int64_t, std::int64_t, double, std::uint64_t);

}  // namespace llama2c
