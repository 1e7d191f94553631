// Tiny llama2.c files written by tests: a version 0 checkpoint and a tokenizer
// (test_model_cli: hostile models; test_evaluators: a search fast enough for CI).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace longrope_test {

/// A tiny version 0 llama2.c checkpoint (dim 8, hidden 16, 1 layer, 2 heads,
/// seq_len 16, shared classifier) with `vocab` tokens, weights in [-1, 1] and
/// the final RMSNorm weights set to final_norm (huge: finite weights whose logits overflow).
inline std::string write_tiny_model(const std::string& name, int vocab, float final_norm) {
  const auto path = (std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + ".bin")).string();
  const int d = 8, h = 16, L = 1, nh = 2, kv = 2, seq = 16, hs = d / nh;
  std::string b;
  auto i32 = [&](std::int32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  auto f32 = [&](float v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  for (int v : {d, h, L, nh, kv, vocab, seq}) i32(v);
  const long kvd = hs * kv;
  const long n = static_cast<long>(vocab) * d + L * 2 * d + L * d * (2 * d + 2 * kvd) + L * 3 * h * d + d + seq * hs;
  // rms_final follows token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3.
  const long final_at = static_cast<long>(vocab) * d + L * d + 2 * L * d * d + 2 * L * kvd * d + L * d + 3 * L * h * d;
  for (long i = 0; i < n; ++i) {
    f32(i >= final_at && i < final_at + d ? final_norm : static_cast<float>((i * 37) % 17 - 8) / 8.0f);
  }
  std::ofstream(path, std::ios::binary) << b;
  return path;
}

/// A tok*.bin with the given pieces (scores 0).
inline std::string write_tokenizer(const std::string& name, const std::vector<std::string>& pieces) {
  const auto path = (std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + ".bin")).string();
  std::string b;
  auto i32 = [&](std::int32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  i32(8);
  for (const auto& p : pieces) {
    i32(0);  // float 0.0 score
    i32(static_cast<std::int32_t>(p.size()));
    b += p;
  }
  std::ofstream(path, std::ios::binary) << b;
  return path;
}

}  // namespace longrope_test
