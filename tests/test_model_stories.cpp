// The toy transformer on the real stories260K checkpoint (skips cleanly when
// ../shared or $LONGROPE_SHARED_DIR does not have it): the published greedy
// text, the tokenizer and perplexities against the independent float64 numpy
// reference in tests/data/stories260K_reference.json
// (scripts/reference/llama2c_reference.py), and a short, reproducible search.
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <llama2c/checkpoint.hpp>
#include <llama2c/extension.hpp>
#include <llama2c/generate.hpp>
#include <llama2c/perplexity.hpp>
#include <llama2c/scaling.hpp>
#include <llama2c/tokenizer.hpp>
#include <llama2c/transformer.hpp>

#include "catch.hpp"
#include "shared_data.hpp"

using namespace llama2c;

namespace {

struct stories {
  checkpoint ck;
  tokenizer tok;
  bool ok = false;
};

const stories& load() {
  static const stories s = [] {
    stories r;
    const auto bin = longrope_test::shared_file("models/stories260K/stories260K.bin");
    const auto tk = longrope_test::shared_file("models/stories260K/tok512.bin");
    if (bin.empty() || tk.empty()) return r;
    r.ck = load_checkpoint(bin.string());
    r.tok = tokenizer::load(tk.string(), r.ck.config.vocab_size);
    r.ok = true;
    return r;
  }();
  return s;
}

nlohmann::json reference() {
  std::ifstream in(longrope_test::test_data_dir() / "stories260K_reference.json");
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

std::string read_text(const std::string& rel) {
  const auto p = longrope_test::shared_file(rel);
  if (p.empty()) return {};
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::uint64_t fnv1a64(const std::vector<int>& ids) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (int x : ids) {
    const auto u = static_cast<std::uint32_t>(x);
    for (int b = 0; b < 4; ++b) {
      h ^= (u >> (8 * b)) & 0xffu;
      h *= 0x100000001b3ULL;
    }
  }
  return h;
}

// Sanitizers and the scalar build (EIGEN_DONT_VECTORIZE) slow Eigen's loops
// 10-20x: there only the smallest cases run (the same code paths; the full
// comparison runs in the vectorized dev and release builds).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(EIGEN_DONT_VECTORIZE)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

#define REQUIRE_STORIES()                                                                  \
  const stories& S = load();                                                               \
  if (!S.ok) {                                                                             \
    WARN("skipped: stories260K not found (../shared/models/stories260K or $LONGROPE_SHARED_DIR)"); \
    return;                                                                                \
  }

}  // namespace

TEST_CASE("greedy generation reproduces the published stories260K text", "[stories]") {
  REQUIRE_STORIES();
  CHECK(S.ck.config.dim == 64);
  CHECK(S.ck.config.n_kv_heads == 4);
  CHECK(S.ck.config.version == 0);
  const transformer<float> m(S.ck);
  const auto f = make_frequencies(S.ck.config, scaling{}, 512);
  const auto seq = generate(m, f, {kBos}, generate_options{120, 0.0, 0});
  const std::string text = S.tok.decode(seq);
  const std::string published =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
      "she saw a big, red ball. She wanted to play with it, but it was too high";
  INFO(text);
  CHECK(text.rfind(published, 0) == 0);
  // The same ids as the float64 numpy reference's greedy decoding.
  const auto ref = reference().at("greedy_60").get<std::vector<int>>();
  REQUIRE(seq.size() >= ref.size());
  CHECK(std::vector<int>(seq.begin(), seq.begin() + static_cast<std::ptrdiff_t>(ref.size())) == ref);
}

TEST_CASE("sample_stories: BOS-separated sampled stories, cut at n tokens, fixed by the seed",
          "[stories][generate]") {
  REQUIRE_STORIES();
  const transformer<float> m(S.ck);
  const auto f = make_frequencies(S.ck.config, scaling{}, 512);
  const std::int64_t n = 1500;
  const auto a = sample_stories(m, f, n, 512, 1.0, 7);
  REQUIRE(static_cast<std::int64_t>(a.size()) == n);
  CHECK(a == sample_stories(m, f, n, 512, 1.0, 7));
  CHECK(a != sample_stories(m, f, n, 512, 1.0, 8));
  // Split at the BOS tokens: story j is what generate() samples from BOS with seed 7 + j.
  std::vector<std::vector<int>> parts;
  for (int t : a) {
    if (t == kBos) parts.emplace_back();
    parts.back().push_back(t);
  }
  REQUIRE(a.front() == kBos);
  REQUIRE(parts.size() >= 3);  // stories260K ends its stories well before 512 tokens
  for (std::size_t j = 0; j < parts.size(); ++j) {
    const auto story = generate(m, f, {kBos}, generate_options{512, 1.0, 7 + j});
    INFO("story " << j);
    if (j + 1 < parts.size()) {
      CHECK(parts[j] == story);
    } else {  // the last one is cut at n
      REQUIRE(parts[j].size() <= story.size());
      CHECK(std::equal(parts[j].begin(), parts[j].end(), story.begin()));
    }
  }
  // The text reads as a story (the sampler runs at temperature 1, not on noise).
  CHECK(S.tok.decode(parts[0]).find(' ') != std::string::npos);
  CHECK_THROWS_WITH(sample_stories(m, f, 0, 512, 1.0, 1), Catch::Matchers::Contains("n_tokens >= 1"));
  CHECK_THROWS_WITH(sample_stories(m, f, 10, 1, 1.0, 1), Catch::Matchers::Contains("max_story >= 2"));
  CHECK_THROWS_WITH(sample_stories(m, f, 10, 512, 0.0, 1), Catch::Matchers::Contains("temperature > 0"));
}

TEST_CASE("tokenizer matches the reference port of run.c", "[stories][tokenizer]") {
  REQUIRE_STORIES();
  const auto ref = reference();
  for (const auto& c : ref.at("tokenizer_cases")) {
    std::string text;
    if (c.contains("text")) {
      text = c.at("text").get<std::string>();
    } else {
      const auto hex = c.at("hex").get<std::string>();
      for (std::size_t i = 0; i + 1 < hex.size(); i += 2) text.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    INFO(text);
    CHECK(S.tok.encode(text, c.at("bos").get<bool>(), c.at("eos").get<bool>()) == c.at("ids").get<std::vector<int>>());
  }
  const std::string valid = read_text("data/tinystories/valid_head.txt");
  if (valid.empty()) {
    WARN("skipped: valid_head.txt not found");
    return;
  }
  const auto stream = S.tok.encode(valid, false, false);
  CHECK(static_cast<std::int64_t>(stream.size()) == ref.at("stream").at("tokens").get<std::int64_t>());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(stream)));
  CHECK(std::string(hex) == ref.at("stream").at("fnv1a64").get<std::string>());
  // decode(encode(x)) == x for this text (every byte is representable).
  const std::string head = valid.substr(0, 5000);
  auto ids = S.tok.encode(head, true, false);
  CHECK(S.tok.decode(ids) == head);
}

TEST_CASE("perplexity agrees with the float64 reference within 1e-4", "[stories][perplexity]") {
  REQUIRE_STORIES();
  const std::string valid = read_text("data/tinystories/valid_head.txt");
  if (valid.empty()) {
    WARN("skipped: valid_head.txt not found");
    return;
  }
  const auto stream = S.tok.encode(valid, false, false);
  const transformer<double> md(S.ck);
  const transformer<float> mf(S.ck);
  const auto ref = reference();
  for (const auto& c : ref.at("perplexity")) {
    const auto context = c.at("context").get<std::int64_t>();
    if (kSanitized && context > 512) {
      WARN("sanitizer or scalar build: context " << context << " skipped (checked in the vectorized builds)");
      continue;
    }
    scaling sc;
    sc.method = parse_scaling_method(c.at("method").get<std::string>());
    sc.factors = c.at("factors").get<std::vector<double>>();
    sc.n_hat = c.at("n_hat").get<std::int64_t>();
    if (!c.at("attention_factor").is_null()) sc.attention_factor = c.at("attention_factor").get<double>();
    const auto windows = make_windows(stream, context, c.at("windows").get<std::int64_t>());
    const auto f = make_frequencies(S.ck.config, sc, context);
    const double want = c.at("perplexity").get<double>();
    const auto rd = evaluate_perplexity(md, windows, f, 2);
    const auto rf = evaluate_perplexity(mf, windows, f, 2);
    INFO("context " << context << " method " << to_string(sc.method) << ": reference " << want << ", double "
                    << rd.perplexity() << ", float " << rf.perplexity());
    CHECK(rd.tokens == c.at("tokens").get<std::int64_t>());
    CHECK(std::abs(rd.perplexity() / want - 1.0) < 1e-9);
    CHECK(std::abs(rf.perplexity() / want - 1.0) < 1e-4);
  }
}

TEST_CASE("a short search is reproducible and beats its seeds on its windows", "[stories][search]") {
  REQUIRE_STORIES();
  const std::string valid = read_text("data/tinystories/valid_head.txt");
  if (valid.empty()) {
    WARN("skipped: valid_head.txt not found");
    return;
  }
  const auto stream = S.tok.encode(valid.substr(0, 20000), false, false);
  const transformer<float> m(S.ck);
  const std::int64_t context = kSanitized ? 768 : 1024;
  const auto windows = make_windows(stream, context, 1);
  extension_options opt;
  opt.context = context;
  opt.search.population = kSanitized ? 4 : 6;
  opt.search.mutations = kSanitized ? 2 : 3;
  opt.search.crossovers = kSanitized ? 2 : 3;
  opt.search.top_k = 3;
  opt.search.iterations = kSanitized ? 1 : 2;
  opt.search.seed = 5;
  opt.search.threads = 2;
  const auto a = search_factors(m, windows, opt);
  const auto b = search_factors(m, windows, opt);
  CHECK(a.search.best.factors == b.search.best.factors);
  CHECK(a.search.best.n_hat == b.search.best.n_hat);
  CHECK(a.search.best_score == b.search.best_score);
  REQUIRE(a.search.best.factors.size() == 4);
  for (std::size_t i = 1; i < 4; ++i) CHECK(a.search.best.factors[i] >= a.search.best.factors[i - 1]);
  // Its best is at least as good as the PI seed it started from, and its reported
  // score is the perplexity of those factors.
  CHECK(a.search.best_score <= a.baselines.pi + 1e-12);
  scaling sc;
  sc.method = scaling_method::longrope;
  sc.factors = a.search.best.factors;
  sc.n_hat = a.search.best.n_hat;
  const double again = evaluate_perplexity(m, windows, make_frequencies(S.ck.config, sc, context), 1).perplexity();
  CHECK(again == a.search.best_score);
  CHECK(a.search.evaluations > opt.search.population);
}
