// Writes the binary and checkpoint seed corpora of the fuzz targets (the JSON
// config seeds are copies of tests/data/configs). Run once by hand:
//     cmake --build build/dev --target fuzz_write_seeds && build/dev/tests/fuzz/fuzz_write_seeds tests/fuzz/corpus
// Every seed is small and synthetic (no trained weights).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <longrope/search_json.hpp>

namespace {

void put(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) std::fprintf(stderr, "cannot write %s\n", path.c_str());
}

void i32(std::string& s, std::int32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian hosts only (x86-64, aarch64)
  s.append(b, 4);
}

void f32(std::string& s, float v) {
  char b[4];
  std::memcpy(b, &v, 4);
  s.append(b, 4);
}

// dim 8, hidden 16, 1 layer, 2 heads, kv heads kv, vocab 8, seq 16.
std::string model(int version, bool shared, int kv) {
  const int d = 8, h = 16, L = 1, nh = 2, v = 8, seq = 16, hs = d / nh, kvd = hs * kv;
  std::string s;
  if (version == 1) {
    i32(s, 0x616b3432);
    i32(s, 1);
  }
  for (int x : {d, h, L, nh, kv, version == 0 && !shared ? -v : v, seq}) i32(s, x);
  if (version == 1) {
    s.push_back(shared ? 1 : 0);
    s.resize(256, '\0');
  }
  std::uint32_t state = 12345;
  auto weights = [&](int n) {
    for (int i = 0; i < n; ++i) {
      state = state * 1664525u + 1013904223u;
      f32(s, static_cast<float>(static_cast<int>(state >> 24) - 128) / 256.0f);
    }
  };
  auto ones = [&](int n) {
    for (int i = 0; i < n; ++i) f32(s, 1.0f);
  };
  if (version == 0) {
    weights(v * d);
    ones(L * d);
    weights(L * d * d);
    weights(L * kvd * d);
    weights(L * kvd * d);
    weights(L * d * d);
    ones(L * d);
    weights(L * h * d);
    weights(L * d * h);
    weights(L * h * d);
    ones(d);
    weights(seq * hs);  // freq_cis_real + freq_cis_imag
  } else {
    ones(L * d);
    ones(L * d);
    ones(d);
    weights(v * d);
    weights(L * d * d);
    weights(L * kvd * d);
    weights(L * kvd * d);
    weights(L * d * d);
    weights(L * h * d);
    weights(L * d * h);
    weights(L * h * d);
  }
  if (!shared) weights(v * d);
  return s;
}

// The fuzz_tokenizer layout: uint16 vocab_size - 1, uint8 text length, text, tok*.bin.
std::string tokenizer_input(const std::vector<std::string>& pieces, const std::string& text) {
  std::string s;
  const auto v = static_cast<std::uint16_t>(pieces.size() - 1);
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(text.size()));
  s += text;
  std::uint32_t maxlen = 0;
  for (const auto& p : pieces) maxlen = std::max<std::uint32_t>(maxlen, static_cast<std::uint32_t>(p.size()));
  i32(s, static_cast<std::int32_t>(maxlen));
  float score = 0.0f;
  for (const auto& p : pieces) {
    f32(s, score);
    score -= 1.0f;
    i32(s, static_cast<std::int32_t>(p.size()));
    s += p;
  }
  return s;
}

longrope::search_checkpoint checkpoint(int tells, bool n_hat, bool frozen) {
  using namespace longrope;
  search_space_config sc;
  sc.pairs = 4;
  sc.lambda_min = 1.0;
  sc.lambda_max = 2.0;
  sc.step = 0.25;
  sc.search_n_hat = n_hat;
  if (n_hat) sc.n_hat_values = {0, 2, 4};
  if (frozen) sc.frozen_factors = {1.0};
  const search_space space(sc);
  search_options o;
  o.population = 6;
  o.mutations = 3;
  o.crossovers = 3;
  o.top_k = 3;
  o.iterations = 4;
  candidate c;
  c.lambda_index.assign(static_cast<std::size_t>(space.free_pairs()), 1);
  evolutionary_search s(space, o, {c});
  for (int t = 0; t < tells && !s.done(); ++t) {
    std::vector<double> scores;
    for (std::size_t i = 0; i < s.ask().size(); ++i) scores.push_back(static_cast<double>((i * 37) % 11));
    s.tell(scores);
  }
  return s.checkpoint();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_write_seeds <tests/fuzz/corpus>\n");
    return 2;
  }
  const std::string dir = argv[1];
  put(dir + "/fuzz_llama2c_checkpoint/v0_shared.bin", model(0, true, 2));
  put(dir + "/fuzz_llama2c_checkpoint/v0_unshared_gqa.bin", model(0, false, 1));
  put(dir + "/fuzz_llama2c_checkpoint/v1_shared.bin", model(1, true, 2));
  put(dir + "/fuzz_llama2c_checkpoint/v1_unshared.bin", model(1, false, 1));
  put(dir + "/fuzz_llama2c_checkpoint/truncated.bin", model(1, true, 2).substr(0, 300));

  std::vector<std::string> bytes = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    bytes.push_back(name);
  }
  std::vector<std::string> full = bytes;
  for (const char* p : {" ", "a", "b", " a", "ab", " ab", "\xc3\xa9", " the"}) full.push_back(p);
  put(dir + "/fuzz_tokenizer/bytes_and_merges.bin", tokenizer_input(full, "ab ba the \xc3\xa9\xff"));
  put(dir + "/fuzz_tokenizer/one_piece.bin", tokenizer_input({" "}, " "));
  put(dir + "/fuzz_tokenizer/three_pieces.bin", tokenizer_input({"<unk>", "<s>", " "}, "  "));
  put(dir + "/fuzz_tokenizer/no_space.bin", tokenizer_input(bytes, "x"));

  int k = 0;
  for (int tells : {0, 1, 3}) {
    for (bool n_hat : {false, true}) {
      const bool frozen = tells == 1;
      put(dir + "/fuzz_search_checkpoint/ck" + std::to_string(k++) + ".json",
          longrope::to_json(checkpoint(tells, n_hat, frozen)).dump() + "\n");
    }
  }
  std::printf("seeds written under %s\n", dir.c_str());
  return 0;
}
