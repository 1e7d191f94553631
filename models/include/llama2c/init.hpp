// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file init.hpp
/// A fresh llama2.c model for training from scratch (`finetune --init SPEC`).
///
/// The initialisation is llama2.c's model.py: every linear weight and the
/// token embedding ~ N(0, 0.02^2), except wo and w3 (the tensors model.py
/// scales, same names here) ~ N(0, (0.02 / sqrt(2 n_layers))^2); the RMSNorm
/// gains 1; the classifier shared with the embedding. The normal draws come
/// from longrope::search_rng(seed) through a Box-Muller transform written
/// here, so the weights are the same on every platform and standard library.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <longrope/error.hpp>
#include <longrope/search/rng.hpp>

#include "checkpoint.hpp"

namespace llama2c {

/// Parses "dim=D,layers=L,heads=H,kv_heads=K,hidden=F,vocab=V,seq_len=N"
/// (any order; kv_heads defaults to heads, hidden to llama2.c's
/// 32 * ceil((8 D / 3) / 32), seq_len to 256; dim, layers, heads, vocab are
/// required). Throws longrope::error ("longrope.argument") naming an unknown
/// key, a missing or malformed value, or a shape validate_config rejects. O(len).
inline model_config parse_init_spec(const std::string& spec) {
  model_config c;
  c.seq_len = 256;
  c.shared_classifier = true;
  c.version = 0;
  bool have_dim = false, have_layers = false, have_heads = false, have_vocab = false, have_kv = false,
       have_hidden = false;
  std::size_t at = 0;
  while (at <= spec.size()) {
    const std::size_t end = std::min(spec.find(',', at), spec.size());
    const std::string item = spec.substr(at, end - at);
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      LONGROPE_THROW("longrope.argument", "--init: expected key=value items separated by commas, got '" + item + "'");
    }
    const std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    long long x = 0;
    std::size_t used = 0;
    try {
      x = std::stoll(v, &used);
    } catch (...) {
      used = 0;
    }
    if (used != v.size() || x < 1 || x > (1 << 24)) {
      LONGROPE_THROW("longrope.argument", "--init: " + k + " must be an integer in [1, 16777216], got '" + v + "'");
    }
    const int n = static_cast<int>(x);
    if (k == "dim") c.dim = n, have_dim = true;
    else if (k == "layers") c.n_layers = n, have_layers = true;
    else if (k == "heads") c.n_heads = n, have_heads = true;
    else if (k == "kv_heads") c.n_kv_heads = n, have_kv = true;
    else if (k == "hidden") c.hidden_dim = n, have_hidden = true;
    else if (k == "vocab") c.vocab_size = n, have_vocab = true;
    else if (k == "seq_len") c.seq_len = n;
    else LONGROPE_THROW("longrope.argument", "--init: unknown key '" + k + "' (dim, layers, heads, kv_heads, hidden, vocab, seq_len)");
    at = end + 1;
  }
  if (!have_dim || !have_layers || !have_heads || !have_vocab) {
    LONGROPE_THROW("longrope.argument", "--init: dim, layers, heads and vocab are required");
  }
  if (!have_kv) c.n_kv_heads = c.n_heads;
  if (!have_hidden) c.hidden_dim = 32 * ((8 * c.dim / 3 + 31) / 32);
  if (c.dim % c.n_heads != 0 || (c.dim / c.n_heads) % 2 != 0) {
    LONGROPE_THROW("longrope.argument", "--init: dim must be a multiple of heads with an even head size");
  }
  if (c.n_heads % c.n_kv_heads != 0) LONGROPE_THROW("longrope.argument", "--init: heads must be a multiple of kv_heads");
  try {
    validate_config(c, "--init");
  } catch (const longrope::error& e) {  // bounds: say it as an argument error, without the io id
    const std::string m = e.what();
    LONGROPE_THROW("longrope.argument", m.substr(std::min(m.size(), e.id().size() + 3)));
  }
  return c;
}

/// A model of shape c initialised as the file comment says; deterministic in
/// (c, seed). Precondition: c passed validate_config. O(parameters).
inline checkpoint random_checkpoint(const model_config& c, std::uint64_t seed) {
  checkpoint ck;
  ck.config = c;
  ck.config.shared_classifier = true;
  longrope::search_rng rng(seed);
  auto normal = [&](std::vector<float>& v, std::size_t n, double sd) {
    v.resize(n);
    for (std::size_t i = 0; i < n; i += 2) {
      // Box-Muller: two independent N(0, 1) from two uniforms in (0, 1].
      const double u1 = 1.0 - longrope::uniform_unit(rng), u2 = longrope::uniform_unit(rng);
      const double r = std::sqrt(-2.0 * std::log(u1)), a = 6.283185307179586 * u2;
      v[i] = static_cast<float>(sd * r * std::cos(a));
      if (i + 1 < n) v[i + 1] = static_cast<float>(sd * r * std::sin(a));
    }
  };
  const std::size_t L = static_cast<std::size_t>(c.n_layers), d = static_cast<std::size_t>(c.dim),
                    h = static_cast<std::size_t>(c.hidden_dim), kv = static_cast<std::size_t>(c.kv_dim()),
                    V = static_cast<std::size_t>(c.vocab_size);
  const double sd = 0.02, sd_out = 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layers));
  normal(ck.token_embedding, V * d, sd);
  ck.rms_att.assign(L * d, 1.0f);
  normal(ck.wq, L * d * d, sd);
  normal(ck.wk, L * kv * d, sd);
  normal(ck.wv, L * kv * d, sd);
  normal(ck.wo, L * d * d, sd_out);
  ck.rms_ffn.assign(L * d, 1.0f);
  normal(ck.w1, L * h * d, sd);
  normal(ck.w2, L * d * h, sd);
  normal(ck.w3, L * h * d, sd_out);
  ck.rms_final.assign(d, 1.0f);
  return ck;
}

}  // namespace llama2c
