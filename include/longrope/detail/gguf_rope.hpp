// longrope: header-only LongRoPE positional interpolation. MIT License.
// llama.cpp's rope metadata in a GGUF file. Include <longrope/gguf.hpp>, not this file.
#pragma once
#ifndef LONGROPE_GGUF_INTERNAL
#error "detail/gguf_rope.hpp is internal: include <longrope/gguf.hpp>"
#endif

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace longrope {

namespace detail {

[[noreturn]] inline void gguf_rope_fail(const std::string& key, const std::string& what) {
  LONGROPE_THROW("longrope.gguf", key + ": " + what);
}

inline std::string gguf_architecture(const gguf_file& f) {
  const gguf_value* a = f.find("general.architecture");
  if (!a) gguf_rope_fail("general.architecture", "missing");
  if (a->type != gguf_type::string) {
    gguf_rope_fail("general.architecture", std::string("expected a string, got ") + to_string(a->type));
  }
  return a->s;
}

/// The F32 values of a 1-D factor tensor with `pairs` elements.
inline std::vector<double> gguf_factor_tensor(const gguf_tensor& t, int pairs) {
  if (t.type != 0) gguf_rope_fail(t.name, "expected an F32 tensor (ggml type 0), got type " + std::to_string(t.type));
  std::uint64_t elements = 1;
  for (auto d : t.dims) elements *= d;
  if (elements != static_cast<std::uint64_t>(pairs) || t.data.size() != elements * 4) {
    gguf_rope_fail(t.name, "expected " + std::to_string(pairs) + " values (rope.dimension_count / 2), got " +
                               std::to_string(elements));
  }
  std::vector<double> out(static_cast<std::size_t>(pairs));
  for (std::size_t k = 0; k < out.size(); ++k) {
    std::uint32_t bits = 0;
    for (std::size_t b = 0; b < 4; ++b) bits |= static_cast<std::uint32_t>(t.data[4 * k + b]) << (8 * b);
    float v;
    std::memcpy(&v, &bits, sizeof v);
    out[k] = static_cast<double>(v);
    if (!std::isfinite(out[k]) || !(out[k] > 0.0)) {
      gguf_rope_fail(t.name + "[" + std::to_string(k) + "]", "must be finite and > 0, got " + std::to_string(out[k]));
    }
  }
  return out;
}

inline void gguf_put_factor_tensor(gguf_file& f, const std::string& name, const std::vector<double>& v) {
  gguf_tensor t;
  t.name = name;
  t.dims = {static_cast<std::uint64_t>(v.size())};
  t.type = 0;
  t.data.resize(4 * v.size());
  for (std::size_t k = 0; k < v.size(); ++k) {
    const float x = static_cast<float>(v[k]);
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    for (std::size_t b = 0; b < 4; ++b) t.data[4 * k + b] = static_cast<std::uint8_t>(bits >> (8 * b));
  }
  if (gguf_tensor* old = f.find_tensor(name)) {
    old->dims = t.dims;
    old->type = 0;
    old->data = std::move(t.data);
  } else {
    f.tensors.push_back(std::move(t));
  }
}

inline bool gguf_neox_arch(const std::string& a) {
  for (const char* n : {"phi2", "phi3", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gptneox", "falcon", "stablelm",
                        "starcoder2"}) {
    if (a == n) return true;
  }
  return false;
}

}  // namespace detail

inline rope_config rope_config_from_gguf(const gguf_file& f) {
  using detail::gguf_rope_fail;
  const std::string arch = detail::gguf_architecture(f);
  auto key = [&](const char* k) { return arch + "." + k; };
  auto get = [&](const char* k) { return f.find(key(k)); };
  auto positive_count = [&](const char* k) -> std::int64_t {
    const gguf_value* v = get(k);
    if (!v) gguf_rope_fail(key(k), "missing");
    const std::uint64_t n = v->count(key(k));
    if (n == 0 || n > (1ull << 40)) gguf_rope_fail(key(k), "out of range: " + std::to_string(n));
    return static_cast<std::int64_t>(n);
  };
  rope_config c;
  c.layout = detail::gguf_neox_arch(arch) ? pair_layout::half_split : pair_layout::interleaved;
  std::int64_t head_dim = 0;
  if (get("attention.key_length")) {
    head_dim = positive_count("attention.key_length");
  } else {
    const std::int64_t emb = positive_count("embedding_length");
    const std::int64_t heads = positive_count("attention.head_count");
    head_dim = emb / heads;
  }
  if (head_dim <= 0 || head_dim > 65536) gguf_rope_fail(key("embedding_length"), "gives head_dim " + std::to_string(head_dim));
  c.head_dim = static_cast<int>(head_dim);
  const std::int64_t rd = get("rope.dimension_count") ? positive_count("rope.dimension_count") : head_dim;
  if (rd > head_dim || rd % 2 != 0 || rd < 2) {
    gguf_rope_fail(key("rope.dimension_count"), std::to_string(rd) + " must be even and in [2, head_dim = " +
                                                    std::to_string(head_dim) + "]");
  }
  c.rotary_dim = rd == head_dim ? 0 : static_cast<int>(rd);
  if (const gguf_value* v = get("rope.freq_base")) c.base = v->number(key("rope.freq_base"));
  if (get("context_length")) c.max_position_embeddings = positive_count("context_length");
  const int pairs = c.pairs();

  const gguf_tensor* lt = f.find_tensor("rope_factors_long.weight");
  const gguf_tensor* st = f.find_tensor("rope_factors_short.weight");
  std::string scaling;
  if (const gguf_value* v = get("rope.scaling.type")) {
    if (v->type != gguf_type::string) gguf_rope_fail(key("rope.scaling.type"), "expected a string");
    scaling = v->s;
  }
  if (lt || st) {
    c.type = rope_type::longrope;
    auto& lr = c.longrope;
    lr.long_factor = detail::gguf_factor_tensor(lt ? *lt : *st, pairs);
    lr.short_factor = st ? detail::gguf_factor_tensor(*st, pairs) : lr.long_factor;
    lr.original_max_position = get("rope.scaling.original_context_length")
                                   ? positive_count("rope.scaling.original_context_length")
                                   : c.max_position_embeddings;
    if (lr.original_max_position <= 0) {
      gguf_rope_fail(key("rope.scaling.original_context_length"), "missing (and no context_length)");
    }
    if (const gguf_value* v = get("rope.scaling.attn_factor")) {
      lr.attention_factor = v->number(key("rope.scaling.attn_factor"));
    }
  } else if (scaling == "linear") {
    c.type = rope_type::linear;
    const gguf_value* v = get("rope.scaling.factor");
    if (!v) gguf_rope_fail(key("rope.scaling.factor"), "missing (required for linear scaling)");
    c.factor = v->number(key("rope.scaling.factor"));
  } else if (scaling.empty() || scaling == "none") {
    c.type = rope_type::none;
  } else {
    gguf_rope_fail(key("rope.scaling.type"), "unsupported scaling type '" + scaling +
                                                 "' (read: none, linear, and LongRoPE factor tensors)");
  }
  try {
    c.validate();
  } catch (const error& e) {
    LONGROPE_THROW("longrope.gguf", std::string("rope metadata does not validate: ") + e.what());
  }
  return c;
}

inline void set_gguf_rope_factors(gguf_file& f, const std::vector<double>& long_factors,
                                  const std::vector<double>& short_factors, double attn_factor) {
  using detail::gguf_rope_fail;
  const std::string arch = detail::gguf_architecture(f);
  const std::string dkey = arch + ".rope.dimension_count";
  const gguf_value* dc = f.find(dkey);
  if (!dc) gguf_rope_fail(dkey, "missing (needed to check the factor count)");
  const std::uint64_t pairs = dc->count(dkey) / 2;
  auto check = [&](const std::vector<double>& v, const char* what) {
    if (v.size() != pairs) {
      gguf_rope_fail(what, "expected " + std::to_string(pairs) + " values (" + dkey + " / 2), got " +
                               std::to_string(v.size()));
    }
    for (std::size_t k = 0; k < v.size(); ++k) {
      if (!std::isfinite(v[k]) || !(v[k] > 0.0) || v[k] > 3.0e38) {
        gguf_rope_fail(std::string(what) + "[" + std::to_string(k) + "]", "must be finite, > 0 and fit a float");
      }
    }
  };
  check(long_factors, "long factors");
  if (!short_factors.empty()) check(short_factors, "short factors");
  if (attn_factor != 0.0 && (!std::isfinite(attn_factor) || !(attn_factor > 0.0))) {
    gguf_rope_fail("attn_factor", "must be finite and > 0");
  }
  detail::gguf_put_factor_tensor(f, "rope_factors_long.weight", long_factors);
  if (!short_factors.empty()) detail::gguf_put_factor_tensor(f, "rope_factors_short.weight", short_factors);
  if (attn_factor > 0.0) f.set(arch + ".rope.scaling.attn_factor", gguf_value::make_f32(static_cast<float>(attn_factor)));
}

}  // namespace longrope
