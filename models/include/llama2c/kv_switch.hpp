// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file kv_switch.hpp
/// LongRoPE's short/long switch for the toy transformer's KV cache, done with
/// longrope::switch_kv (longrope/kv_switch.hpp): when a forward takes the
/// sequence from cache.size() to cache.size() + m tokens and the factor policy
/// changes the set, every layer's cached keys are re-rotated in place before
/// the forward runs with the new set, instead of re-prefilling the sequence
/// (what transformers' Phi-3 does).
///
/// The cache stores keys channel-major (kv_dim x capacity, for the attention
/// kernel), while longrope's views need the channels of a head contiguous (as
/// every engine's cache has them): each layer's keys are transposed into a
/// token-major scratch [size][kv_heads][head_size], switched, and transposed
/// back. The scratch is kept in switch_scratch (allocated at the first switch).

#include <cstdint>
#include <vector>

#include <longrope/kv_switch.hpp>

#include "transformer.hpp"

namespace llama2c {

/// Buffers of switch_cache, reused across calls.
template <class T>
struct switch_scratch {
  matrix_rm<T> keys;                     ///< (size x kv_dim), token-major
  std::vector<std::int64_t> positions;   ///< 0 .. size-1
};

/// Re-rotates every layer's cached keys from sw.set_for(cache.size()) to
/// sw.set_for(new_length) when they differ; returns sw.set_for(new_length).
/// Values are not touched (RoPE rotates q and k only). Preconditions: new_length
/// >= 0; the cache belongs to a model with config c (longrope::error
/// "longrope.argument" from switch_kv otherwise). O(layers x size x kv_dim) when
/// the set changes, O(1) otherwise.
template <class T>
longrope::factor_set switch_cache(const longrope::factor_switch& sw, const model_config& c, kv_cache<T>& cache,
                                  index_t new_length, switch_scratch<T>& scratch) {
  const index_t n = cache.size();
  const longrope::factor_set to = sw.set_for(new_length);
  if (sw.set_for(n) == to || n == 0) return to;
  const index_t hs = c.head_size();
  scratch.positions.resize(static_cast<std::size_t>(n));
  for (index_t t = 0; t < n; ++t) scratch.positions[static_cast<std::size_t>(t)] = t;
  for (int l = 0; l < c.n_layers; ++l) {
    auto& K = cache.keys(l);
    scratch.keys = K.leftCols(n).transpose();
    const auto view = longrope::token_major(scratch.keys.data(), 1, n, c.n_kv_heads, hs);
    longrope::switch_kv(sw, view, {scratch.positions.data(), 0}, n, new_length);
    K.leftCols(n) = scratch.keys.transpose();
  }
  return to;
}

/// One forward of tokens[0..m) under the factor switch: switch_cache to the
/// new length cache.size() + m, then transformer::forward with
/// sw.frequencies_for(new length). Returns the set the forward used.
template <class T>
longrope::factor_set forward_switched(const transformer<T>& model, const longrope::factor_switch& sw,
                                      const int* tokens, index_t m, kv_cache<T>& cache, workspace<T>& ws,
                                      switch_scratch<T>& scratch) {
  const index_t new_length = cache.size() + m;
  const longrope::factor_set set = switch_cache(sw, model.config(), cache, new_length, scratch);
  model.forward(tokens, m, cache, sw.frequencies_for(new_length), ws);
  return set;
}

// Compiled once, in the longrope_toymodel library (models/src/); other
// scalar types are instantiated where they are used.
extern template longrope::factor_set switch_cache(const longrope::factor_switch&, const model_config&,
                                                  kv_cache<float>&, index_t, switch_scratch<float>&);
extern template longrope::factor_set forward_switched(const transformer<float>&,
                                                      const longrope::factor_switch&, const int*, index_t,
                                                      kv_cache<float>&, workspace<float>&,
                                                      switch_scratch<float>&);

}  // namespace llama2c
