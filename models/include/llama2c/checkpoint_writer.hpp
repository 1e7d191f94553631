// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file checkpoint_writer.hpp
/// Writing llama2.c checkpoints in the two float32 layouts checkpoint.hpp
/// reads (byte for byte those of llama2.c's export.py: legacy_export for
/// version 0, which run.c reads, and version1_export, "ak42"). Version 0
/// stores the plain RoPE tables freq_cis_real / freq_cis_imag
/// (cos / sin of p theta_i, base 10000, p < seq_len, in float32 as export.py)
/// that run.c skips. The
/// config's seq_len is kept as the trained length L0: the scaling methods
/// compute their scale from it; the extended context goes into the JSON
/// sidecar written by `longrope finetune`.
///
/// Files are written to "<path>.tmp" and renamed, so a killed writer never
/// leaves a truncated checkpoint under the final name. Throws longrope::error
/// ("longrope.io") when the file cannot be written, ("longrope.argument") for
/// a version other than 0 or 1 or tensors of the wrong size. O(parameters).

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "checkpoint.hpp"

namespace llama2c {

namespace detail {

inline void put_i32(std::vector<unsigned char>& b, std::int32_t v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<unsigned char>((u >> (8 * i)) & 0xFFu));
}

inline void put_f32(std::vector<unsigned char>& b, const std::vector<float>& v) {
  for (float f : v) {
    std::int32_t i;
    std::memcpy(&i, &f, 4);
    put_i32(b, i);
  }
}

/// Writes bytes to path durably and atomically (longrope/io.hpp: tmp file,
/// fsync, rename, fsync of the directory).
inline void write_file_atomic(const std::string& path, const std::vector<unsigned char>& bytes) {
  longrope::write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace detail

/// The bytes of ck in format `version` (0 or 1). See the file comment.
inline std::vector<unsigned char> serialize_checkpoint(const checkpoint& ck, int version) {
  const model_config& c = ck.config;
  validate_config(c, "write_checkpoint");
  if (version != 0 && version != 1) {
    LONGROPE_THROW("longrope.argument", "checkpoint format: version must be 0 or 1, got " + std::to_string(version));
  }
  model_config fc = c;
  fc.version = version;
  const std::uint64_t floats = checkpoint_floats(fc, "write_checkpoint");
  check_tensor_sizes(ck, "write_checkpoint", true);

  std::vector<unsigned char> b;
  b.reserve(static_cast<std::size_t>(256 + 4 * floats));
  const std::int32_t dims[7] = {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                                version == 0 && !c.shared_classifier ? -c.vocab_size : c.vocab_size, c.seq_len};
  if (version == 1) {
    detail::put_i32(b, static_cast<std::int32_t>(0x616b3432u));
    detail::put_i32(b, 1);
    for (std::int32_t v : dims) detail::put_i32(b, v);
    b.push_back(c.shared_classifier ? 1 : 0);
    b.resize(256, 0);
    for (const auto* t : {&ck.rms_att, &ck.rms_ffn, &ck.rms_final, &ck.token_embedding, &ck.wq, &ck.wk, &ck.wv,
                          &ck.wo, &ck.w1, &ck.w2, &ck.w3}) {
      detail::put_f32(b, *t);
    }
  } else {
    for (std::int32_t v : dims) detail::put_i32(b, v);
    for (const auto* t : {&ck.token_embedding, &ck.rms_att, &ck.wq, &ck.wk, &ck.wv, &ck.wo, &ck.rms_ffn, &ck.w1,
                          &ck.w2, &ck.w3, &ck.rms_final}) {
      detail::put_f32(b, *t);
    }
    const int half = c.head_size() / 2;
    std::vector<float> re, im;
    re.reserve(static_cast<std::size_t>(c.seq_len) * static_cast<std::size_t>(half));
    im.reserve(re.capacity());
    // As export.py's precompute_freqs_cis computes them, in float32: the
    // frequency 1 / 10000^(2i/hs), the angle p * frequency, then cos / sin.
    std::vector<float> freq(static_cast<std::size_t>(half));
    for (int i = 0; i < half; ++i) {
      const float e = static_cast<float>(2 * i) / static_cast<float>(c.head_size());
      freq[static_cast<std::size_t>(i)] = 1.0f / std::pow(10000.0f, e);
    }
    for (int p = 0; p < c.seq_len; ++p) {
      for (int i = 0; i < half; ++i) {
        const float angle = static_cast<float>(p) * freq[static_cast<std::size_t>(i)];
        re.push_back(static_cast<float>(std::cos(static_cast<double>(angle))));
        im.push_back(static_cast<float>(std::sin(static_cast<double>(angle))));
      }
    }
    detail::put_f32(b, re);
    detail::put_f32(b, im);
  }
  if (!c.shared_classifier) detail::put_f32(b, ck.wcls);
  return b;
}

/// Writes ck to `path` in format `version` (0 or 1).
inline void write_checkpoint(const checkpoint& ck, const std::string& path, int version) {
  detail::write_file_atomic(path, serialize_checkpoint(ck, version));
}

}  // namespace llama2c
