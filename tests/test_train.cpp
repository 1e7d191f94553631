// The trainer (models/include/llama2c/train.hpp, backward.hpp) on small random
// models made here: every parameter tensor's gradient against central finite
// differences in double (plain RoPE, LongRoPE factors with n_hat and an
// attention factor, YaRN with the document mask), the float trainer against
// the double one, the document mask against separate documents, checkpoint
// round trips (v0, v1) and stories260K re-serialised byte for byte, resume
// bit-identical to an uninterrupted run, training-state errors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <llama2c/checkpoint.hpp>
#include <llama2c/checkpoint_writer.hpp>
#include <llama2c/scaling.hpp>
#include <llama2c/train.hpp>
#include <llama2c/train_state.hpp>

#include "catch.hpp"
#include "shared_data.hpp"

using namespace llama2c;

namespace {

checkpoint random_model(bool shared, std::uint32_t seed, int dim = 32, int heads = 4, int kv_heads = 2) {
  checkpoint ck;
  auto& c = ck.config;
  c.dim = dim;
  c.hidden_dim = 24;
  c.n_layers = 2;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.vocab_size = 40;
  c.seq_len = 32;
  c.shared_classifier = shared;
  std::mt19937 g(seed);
  std::normal_distribution<float> n(0.f, 0.35f);
  std::uniform_real_distribution<float> u(0.6f, 1.4f);
  const std::size_t L = 2, d = static_cast<std::size_t>(dim), h = 24, kv = static_cast<std::size_t>(c.kv_dim()), V = 40;
  auto fill = [&](std::vector<float>& v, std::size_t count, bool gain) {
    v.resize(count);
    for (auto& x : v) x = gain ? u(g) : n(g);
  };
  fill(ck.token_embedding, V * d, false);
  fill(ck.rms_att, L * d, true);
  fill(ck.wq, L * d * d, false);
  fill(ck.wk, L * kv * d, false);
  fill(ck.wv, L * kv * d, false);
  fill(ck.wo, L * d * d, false);
  fill(ck.rms_ffn, L * d, true);
  fill(ck.w1, L * h * d, false);
  fill(ck.w2, L * d * h, false);
  fill(ck.w3, L * h * d, false);
  fill(ck.rms_final, d, true);
  if (!shared) fill(ck.wcls, V * d, false);
  return ck;
}

std::vector<int> random_tokens(std::size_t n, std::uint32_t seed, bool with_bos_inside) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> t(2, 39);
  std::vector<int> s(n);
  for (auto& x : s) x = t(g);
  s[0] = kBos;
  if (with_bos_inside) {
    for (std::size_t i = 37; i < n; i += 71) s[i] = kBos;
  }
  return s;
}

/// Summed NLL of tokens[1..m) by the forward alone (no backward code).
double forward_nll(const transformer<double>& model, const std::vector<int>& s, const longrope::rope_frequencies& f,
                   bool doc_mask) {
  kv_cache<double> cache;
  workspace<double> ws;
  const index_t n = static_cast<index_t>(s.size()) - 1;
  const auto starts = document_starts(s.data(), n);
  model.forward(s.data(), n, cache, f, ws, nullptr, doc_mask ? starts.data() : nullptr);
  matrix_rm<double> logits;
  model.logits_rows(ws, 0, n, logits);
  double total = 0;
  for (index_t i = 0; i < n; ++i) {
    const double mx = logits.row(i).maxCoeff();
    total += mx + std::log((logits.row(i).array() - mx).exp().sum()) - logits(i, s[static_cast<std::size_t>(i) + 1]);
  }
  return total;
}

struct tensor_ref {
  std::string name;
  double* data;
  index_t size;
};

std::vector<tensor_ref> tensors(transformer<double>& m) {
  std::vector<tensor_ref> t;
  int layer = -1;
  m.for_each_tensor([&](const char* name, double* p, index_t n, bool) {
    if (std::string(name) == "rms_att") ++layer;
    t.push_back({std::string(name) + (layer >= 0 ? "[" + std::to_string(layer) + "]" : ""), p, n});
  });
  return t;
}

/// Relative error ||g - fd|| / ||fd|| over a few sampled entries of every
/// tensor, each checked against central differences with step 1e-5.
void check_gradients(const checkpoint& ck, const std::vector<int>& seq, const longrope::rope_frequencies& f,
                     bool doc_mask, int samples) {
  train_options o;
  o.doc_mask = doc_mask;
  trainer<double> tr(ck, o);
  tr.gradient({seq}, f, 1.0);
  transformer<double> grad = tr.gradient_holder();
  auto params = tensors(tr.model());
  auto grads = tensors(grad);
  REQUIRE(params.size() == grads.size());
  std::mt19937 g(11);
  for (std::size_t t = 0; t < params.size(); ++t) {
    std::uniform_int_distribution<index_t> pick(0, params[t].size - 1);
    double num = 0, den = 0;
    for (int k = 0; k < samples; ++k) {
      const index_t i = pick(g);
      double& w = params[t].data[i];
      const double keep = w, h = 1e-5;
      w = keep + h;
      const double up = forward_nll(tr.model(), seq, f, doc_mask);
      w = keep - h;
      const double down = forward_nll(tr.model(), seq, f, doc_mask);
      w = keep;
      const double fd = (up - down) / (2 * h);
      num += (grads[t].data[i] - fd) * (grads[t].data[i] - fd);
      den += fd * fd;
    }
    INFO("tensor " << params[t].name);
    REQUIRE(den > 0);
    CHECK(std::sqrt(num / den) <= 1e-6);
  }
}

longrope::rope_frequencies freqs(const model_config& c, scaling_method m, std::vector<double> factors,
                                 std::int64_t n_hat, std::optional<double> att, std::int64_t context) {
  scaling sc;
  sc.method = m;
  sc.factors = std::move(factors);
  sc.n_hat = n_hat;
  sc.attention_factor = att;
  return make_frequencies(c, sc, context);
}

}  // namespace

TEST_CASE("train: gradients match central differences, plain RoPE, several attention blocks", "[train]") {
  const auto ck = random_model(true, 1);
  // 300 tokens: query blocks of 32 and two key blocks of 256 are crossed.
  const auto seq = random_tokens(300, 2, false);
  check_gradients(ck, seq, freqs(ck.config, scaling_method::none, {}, 0, std::nullopt, 300), false, 3);
}

TEST_CASE("train: gradients match central differences, LongRoPE factors, n_hat, attention factor", "[train]") {
  const auto ck = random_model(false, 3);
  const auto seq = random_tokens(70, 4, false);
  check_gradients(ck, seq, freqs(ck.config, scaling_method::longrope, {1.0, 1.4, 2.1, 3.3}, 6, 1.25, 70), false, 4);
}

TEST_CASE("train: gradients match central differences, YaRN, document mask, MHA", "[train]") {
  const auto ck = random_model(false, 5, 32, 4, 4);
  const auto seq = random_tokens(120, 6, true);
  check_gradients(ck, seq, freqs(ck.config, scaling_method::yarn, {}, 0, std::nullopt, 128), true, 4);
}

TEST_CASE("train: the document mask equals running each document alone (plain RoPE)", "[train]") {
  const auto ck = random_model(true, 7);
  const transformer<double> model(ck);
  const auto f = freqs(ck.config, scaling_method::none, {}, 0, std::nullopt, 64);
  std::vector<int> a = random_tokens(20, 8, false), b = random_tokens(15, 9, false);  // both start with BOS
  std::vector<int> both = a;
  both.insert(both.end(), b.begin(), b.end());
  const auto starts = document_starts(both.data(), static_cast<index_t>(both.size()));
  kv_cache<double> c1, c2;
  workspace<double> w1, w2;
  matrix_rm<double> l1, l2;
  model.forward(both.data(), static_cast<index_t>(both.size()), c1, f, w1, nullptr, starts.data());
  model.logits_rows(w1, static_cast<index_t>(a.size()), static_cast<index_t>(b.size()), l1);
  model.forward(b.data(), static_cast<index_t>(b.size()), c2, f, w2);
  model.logits_rows(w2, 0, static_cast<index_t>(b.size()), l2);
  CHECK((l1 - l2).cwiseAbs().maxCoeff() < 1e-9);
  // Without the mask the second document sees the first one.
  kv_cache<double> c3;
  workspace<double> w3;
  model.forward(both.data(), static_cast<index_t>(both.size()), c3, f, w3);
  model.logits_rows(w3, static_cast<index_t>(a.size()), static_cast<index_t>(b.size()), l1);
  CHECK((l1 - l2).cwiseAbs().maxCoeff() > 1e-3);
  // A start after the token's own position is rejected.
  std::vector<index_t> bad(both.size(), 0);
  bad[3] = 4;
  c1.clear();
  CHECK_THROWS_AS(model.forward(both.data(), static_cast<index_t>(both.size()), c1, f, w1, nullptr, bad.data()),
                  longrope::error);
}

TEST_CASE("train: the float trainer agrees with the double trainer", "[train]") {
  const auto ck = random_model(false, 12);
  const auto seq = random_tokens(90, 13, true);
  const auto f = freqs(ck.config, scaling_method::longrope, {1.0, 1.2, 1.9, 2.8}, 3, 1.1, 90);
  train_options o;
  o.doc_mask = true;
  trainer<double> td(ck, o);
  trainer<float> tf(ck, o);
  const double ld = td.gradient({seq}, f, 1.0);
  const double lf = tf.gradient({seq}, f, 1.0f);
  CHECK(std::abs(ld - lf) <= 1e-4 * std::abs(ld));
  std::vector<std::vector<double>> gd;
  td.gradient_holder().for_each_tensor(
      [&](const char*, const double* p, index_t n, bool) { gd.emplace_back(p, p + n); });
  std::size_t k = 0;
  tf.gradient_holder().for_each_tensor([&](const char* name, const float* p, index_t n, bool) {
    double num = 0, den = 0;
    for (index_t i = 0; i < n; ++i) {
      num += (p[i] - gd[k][static_cast<std::size_t>(i)]) * (p[i] - gd[k][static_cast<std::size_t>(i)]);
      den += gd[k][static_cast<std::size_t>(i)] * gd[k][static_cast<std::size_t>(i)];
    }
    INFO("tensor " << name);
    CHECK(std::sqrt(num / den) <= 1e-4);
    ++k;
  });
}

TEST_CASE("train: a step lowers the loss of the batch it was taken on", "[train]") {
  const auto ck = random_model(true, 14);
  train_options o;
  o.lr = 3e-3;
  o.steps = 8;
  o.batch = 2;
  packed_stream_source src(random_tokens(400, 15, true), 48, 1);
  trainer<float> tr(ck, o);
  const auto f = freqs(ck.config, scaling_method::none, {}, 0, std::nullopt, 48);
  std::vector<std::vector<int>> batch(2);
  auto probe = src;
  for (auto& s : batch) probe.next(s);
  const double before = tr.gradient(batch, f, 1.0f);
  for (int i = 0; i < 8; ++i) tr.step(src, f);  // 8 steps over the same 8 windows of the text
  const double after = tr.gradient(batch, f, 1.0f);
  CHECK(after < before);
}

TEST_CASE("train: checkpoints written in v0 and v1 load with the same logits", "[train]") {
  const auto dir = std::filesystem::temp_directory_path() / "longrope_test_train";
  std::filesystem::create_directories(dir);
  for (bool shared : {true, false}) {
    const auto ck = random_model(shared, 20);
    train_options o;
    o.lr = 1e-2;
    trainer<float> tr(ck, o);
    packed_stream_source src(random_tokens(200, 21, false), 40, 2);
    const auto f = freqs(ck.config, scaling_method::longrope, {1.0, 1.5, 2.0, 2.5}, 2, std::nullopt, 40);
    tr.step(src, f);
    const auto seq = random_tokens(40, 22, false);
    auto logits = [&](const transformer<float>& m) {
      kv_cache<float> c;
      workspace<float> w;
      matrix_rm<float> l;
      m.forward(seq.data(), 40, c, f, w);
      m.logits_rows(w, 0, 40, l);
      return l;
    };
    const auto want = logits(tr.model());
    for (int version : {0, 1}) {
      const std::string path = (dir / ("ck" + std::to_string(version) + ".bin")).string();
      write_checkpoint(tr.model().to_checkpoint(), path, version);
      const auto back = load_checkpoint(path);
      CHECK(back.config.version == version);
      CHECK(back.config.shared_classifier == shared);
      const auto got = logits(transformer<float>(back));
      CHECK((got - want).cwiseAbs().maxCoeff() == 0.0f);
    }
  }
  CHECK_THROWS_AS(serialize_checkpoint(random_model(true, 1), 2), longrope::error);
}

TEST_CASE("train: stories260K re-serialised as v0 is byte-identical to the file (RoPE tables to one ulp)", "[train]") {
  const auto path = longrope_test::shared_file("models/stories260K/stories260K.bin");
  if (path.empty()) {
    WARN("skipped: ../shared/models/stories260K not found");
    return;
  }
  const auto bytes = read_file_bytes(path.string());
  const auto ck = parse_checkpoint(bytes.data(), bytes.size(), "stories260K.bin");
  const auto out = serialize_checkpoint(transformer<float>(ck).to_checkpoint(), 0);
  REQUIRE(out.size() == bytes.size());
  const model_config& c = ck.config;
  const std::size_t rope_floats = static_cast<std::size_t>(c.seq_len) * static_cast<std::size_t>(c.head_size());
  const std::size_t cls_floats = c.shared_classifier ? 0 : static_cast<std::size_t>(c.vocab_size) * c.dim;
  const std::size_t rope_begin = 28 + 4 * (checkpoint_floats(c, "stories") - rope_floats - cls_floats);
  CHECK(std::memcmp(out.data(), bytes.data(), rope_begin) == 0);
  double worst = 0;
  for (std::size_t i = rope_begin; i + 4 <= rope_begin + 4 * rope_floats; i += 4) {
    float a, b;
    std::memcpy(&a, out.data() + i, 4);
    std::memcpy(&b, bytes.data() + i, 4);
    worst = std::max(worst, static_cast<double>(std::abs(a - b)));
  }
  CHECK(worst <= 1.2e-7);  // one float32 ulp at 1 (torch and libm cos differ in the last bit)
  const auto v1 = serialize_checkpoint(ck, 1);
  const auto back = parse_checkpoint(v1.data(), v1.size(), "v1");
  CHECK(back.wq == ck.wq);
  CHECK(back.token_embedding == ck.token_embedding);
}

TEST_CASE("train: a resumed run is bit-identical to an uninterrupted one", "[train]") {
  const auto dir = std::filesystem::temp_directory_path() / "longrope_test_train";
  std::filesystem::create_directories(dir);
  const auto ck = random_model(false, 30);
  train_options o;
  o.steps = 4;
  o.batch = 3;
  o.accumulation = 2;
  o.threads = 2;
  o.warmup = 1;
  o.lr = 5e-3;
  o.weight_decay = 0.1;
  o.clip = 0.5;
  o.doc_mask = true;
  const auto stream = random_tokens(500, 31, true);
  const auto f = freqs(ck.config, scaling_method::longrope, {1.0, 1.3, 1.8, 2.6}, 4, 1.1, 64);
  auto weights = [](const trainer<float>& t) {
    std::vector<float> w;
    t.model().for_each_tensor([&](const char*, const float* p, index_t n, bool) { w.insert(w.end(), p, p + n); });
    return w;
  };
  trainer<float> full(ck, o);
  packed_stream_source s1(stream, 64, 9);
  std::vector<double> losses;
  for (int i = 0; i < 4; ++i) losses.push_back(full.step(s1, f).loss);

  const std::string state = (dir / "state.bin").string();
  {
    trainer<float> first(ck, o);
    packed_stream_source s2(stream, 64, 9);
    first.step(s2, f);
    first.step(s2, f);
    save_train_state(first, s2, "fp", state);
  }
  trainer<float> resumed(ck, o);
  packed_stream_source s3(stream, 64, 9);
  load_train_state(resumed, s3, "fp", state);
  CHECK(resumed.step_count() == 2);
  const double l3 = resumed.step(s3, f).loss;
  const double l4 = resumed.step(s3, f).loss;
  CHECK(l3 == losses[2]);
  CHECK(l4 == losses[3]);
  const auto a = weights(full), b = weights(resumed);
  REQUIRE(a.size() == b.size());
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  CHECK(resumed.tokens_seen() == full.tokens_seen());

  // The same thread count gives the same bits run after run.
  trainer<float> again(ck, o);
  packed_stream_source s4(stream, 64, 9);
  for (int i = 0; i < 4; ++i) again.step(s4, f);
  const auto c = weights(again);
  CHECK(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)) == 0);

  // Errors: other options, another model, a truncated file, a foreign file.
  trainer<float> other(ck, o);
  CHECK_THROWS_WITH(load_train_state(other, s4, "fp2", state), Catch::Matchers::Contains("other options"));
  trainer<float> shape(random_model(true, 30), o);
  CHECK_THROWS_WITH(load_train_state(shape, s4, "fp", state), Catch::Matchers::Contains("another model"));
  auto bytes = read_file_bytes(state);
  bytes.resize(bytes.size() - 5);
  const std::string cut = (dir / "cut.bin").string();
  detail::write_file_atomic(cut, bytes);
  CHECK_THROWS_WITH(load_train_state(other, s4, "fp", cut), Catch::Matchers::Contains("truncated"));
  const std::string foreign = (dir / "foreign.bin").string();
  detail::write_file_atomic(foreign, std::vector<unsigned char>(64, 7));
  CHECK_THROWS_WITH(load_train_state(other, s4, "fp", foreign), Catch::Matchers::Contains("bad magic"));
  trainer<double> dbl(ck, o);
  CHECK_THROWS_WITH(load_train_state(dbl, s4, "fp", state), Catch::Matchers::Contains("4-byte values"));
}

TEST_CASE("train: options and data sources reject bad input", "[train]") {
  train_options o;
  o.lr = 0;
  CHECK_THROWS_AS(o.validate(), longrope::error);
  o = train_options{};
  o.min_lr = 2 * o.lr;
  CHECK_THROWS_AS(o.validate(), longrope::error);
  CHECK_THROWS_AS(packed_stream_source(std::vector<int>(5, 3), 10, 0), longrope::error);
  CHECK_THROWS_AS(parse_lr_decay("step"), longrope::error);
  o = train_options{};
  o.steps = 10;
  o.warmup = 2;
  CHECK(learning_rate(o, 0) == Approx(o.lr / 2));
  CHECK(learning_rate(o, 1) == Approx(o.lr));
  CHECK(learning_rate(o, 6) == Approx(o.lr * 0.5));  // cosine half-way through the 8 decay steps
  o.decay = lr_decay::linear;
  CHECK(learning_rate(o, 6) == Approx(o.lr * 0.5));
  // The packed source wraps to a seeded offset and restores its position.
  packed_stream_source src(random_tokens(100, 40, false), 30, 5);
  std::vector<int> a, b;
  for (int i = 0; i < 5; ++i) src.next(a);
  const auto st = src.state();
  src.next(a);
  src.restore(st);
  src.next(b);
  CHECK(a == b);
  CHECK(a.size() == 30);
  CHECK(a[0] == kBos);
  CHECK_THROWS_AS(src.restore({1u << 30, 0, 0}), longrope::error);
}

TEST_CASE("train: stories sampled from the model form BOS-separated sequences and resume", "[train]") {
  const auto ck = random_model(true, 50);
  const transformer<float> model(ck);
  sampled_source<float> src(model, 40, 1.0, 3, 16);  // stories of at most 16 tokens
  std::vector<int> a, b;
  src.next(a);
  REQUIRE(a.size() == 40);
  CHECK(a[0] == kBos);
  CHECK(std::count(a.begin(), a.end(), kBos) >= 3);  // at least three stories in 40 tokens
  const auto st = src.state();
  src.next(a);
  src.restore(st);
  src.next(b);
  CHECK(a == b);
  CHECK_THROWS_AS(sampled_source<float>(model, 40, 0.0, 3), longrope::error);
}
