// The toy transformer on a tiny random checkpoint written by this test (always
// runs): both file formats, every malformed-file error, the forward against a
// naive double implementation written here (full score matrix, own RoPE),
// KV-cache generation against the full forward, the perplexity protocol, the
// tokenizer on a synthetic vocabulary, the scaling configs.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <llama2c/checkpoint.hpp>
#include <llama2c/checkpoint_writer.hpp>
#include <llama2c/perplexity.hpp>
#include <llama2c/scaling.hpp>
#include <llama2c/tokenizer.hpp>
#include <llama2c/transformer.hpp>

#include "catch.hpp"

using namespace llama2c;

namespace {

struct tiny {
  model_config c;
  // tensors in the v0 order, each with all layers
  std::vector<float> emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, wcls;
};

tiny make_tiny(bool shared, std::uint32_t seed = 7) {
  tiny t;
  t.c.dim = 16;
  t.c.hidden_dim = 24;
  t.c.n_layers = 2;
  t.c.n_heads = 4;
  t.c.n_kv_heads = 2;
  t.c.vocab_size = 40;
  t.c.seq_len = 32;
  t.c.shared_classifier = shared;
  std::mt19937 g(seed);
  std::normal_distribution<float> n(0.f, 0.5f);
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  auto fill = [&](std::vector<float>& v, std::size_t count, bool norm) {
    v.resize(count);
    for (auto& x : v) x = norm ? u(g) : n(g);
  };
  const std::size_t L = 2, d = 16, h = 24, kv = 8, V = 40;
  fill(t.emb, V * d, false);
  fill(t.rms_att, L * d, true);
  fill(t.wq, L * d * d, false);
  fill(t.wk, L * kv * d, false);
  fill(t.wv, L * kv * d, false);
  fill(t.wo, L * d * d, false);
  fill(t.rms_ffn, L * d, true);
  fill(t.w1, L * h * d, false);
  fill(t.w2, L * d * h, false);
  fill(t.w3, L * h * d, false);
  fill(t.rms_final, d, true);
  if (!shared) fill(t.wcls, V * d, false);
  return t;
}

void put_i32(std::vector<unsigned char>& b, std::int32_t v) {
  unsigned char x[4];
  std::memcpy(x, &v, 4);
  b.insert(b.end(), x, x + 4);
}
void put(std::vector<unsigned char>& b, const std::vector<float>& v) {
  for (float f : v) {
    unsigned char x[4];
    std::memcpy(x, &f, 4);
    b.insert(b.end(), x, x + 4);
  }
}

std::vector<unsigned char> write_v0(const tiny& t) {
  std::vector<unsigned char> b;
  const auto& c = t.c;
  for (int v : {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                c.shared_classifier ? c.vocab_size : -c.vocab_size, c.seq_len}) {
    put_i32(b, v);
  }
  for (const auto* v : {&t.emb, &t.rms_att, &t.wq, &t.wk, &t.wv, &t.wo, &t.rms_ffn, &t.w1, &t.w2, &t.w3, &t.rms_final}) {
    put(b, *v);
  }
  put(b, std::vector<float>(static_cast<std::size_t>(c.seq_len * c.head_size()), 0.25f));  // freq_cis real + imag
  if (!c.shared_classifier) put(b, t.wcls);
  return b;
}

std::vector<unsigned char> write_v1(const tiny& t) {
  std::vector<unsigned char> b;
  const auto& c = t.c;
  put_i32(b, 0x616b3432);
  put_i32(b, 1);
  for (int v : {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len}) put_i32(b, v);
  b.push_back(c.shared_classifier ? 1 : 0);
  b.resize(256, 0);
  for (const auto* v : {&t.rms_att, &t.rms_ffn, &t.rms_final, &t.emb, &t.wq, &t.wk, &t.wv, &t.wo, &t.w1, &t.w2, &t.w3}) {
    put(b, *v);
  }
  if (!c.shared_classifier) put(b, t.wcls);
  return b;
}

std::string parse_error(const std::vector<unsigned char>& b) {
  try {
    parse_checkpoint(b.data(), b.size(), "tiny.bin");
  } catch (const longrope::error& e) {
    CHECK(e.id() == "longrope.io");
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---------------------------------------------------------------------------
// The naive reference: double, full T x T scores, RoPE written out here.

std::vector<double> naive_rmsnorm(const std::vector<double>& x, const float* w) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + 1e-5);
  std::vector<double> o(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) o[i] = w[i] * x[i] * r;
  return o;
}

std::vector<double> matvec(const float* w, std::size_t rows, std::size_t cols, const std::vector<double>& x) {
  std::vector<double> o(rows, 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c) o[r] += static_cast<double>(w[r * cols + c]) * x[c];
  }
  return o;
}

struct naive_rope {
  std::vector<double> theta, inv;
  double att = 1.0;
  std::int64_t n_hat = 0;
  void apply(std::vector<double>& v, std::size_t heads, std::size_t hs, std::int64_t p) const {
    for (std::size_t h = 0; h < heads; ++h) {
      for (std::size_t i = 0; i < hs / 2; ++i) {
        const double a = static_cast<double>(p) * (p < n_hat ? theta[i] : inv[i]);
        double& x0 = v[h * hs + 2 * i];
        double& x1 = v[h * hs + 2 * i + 1];
        const double y0 = att * (x0 * std::cos(a) - x1 * std::sin(a));
        const double y1 = att * (x0 * std::sin(a) + x1 * std::cos(a));
        x0 = y0;
        x1 = y1;
      }
    }
  }
};

// logits[t][vocab] for every position of tokens.
std::vector<std::vector<double>> naive_forward(const tiny& t, const std::vector<int>& tokens, const naive_rope& rope) {
  const auto& c = t.c;
  const std::size_t d = 16, h = 24, kv = 8, hs = 4, nh = 4, nkv = 2, V = 40, T = tokens.size();
  std::vector<std::vector<double>> x(T);
  for (std::size_t i = 0; i < T; ++i) {
    x[i].assign(t.emb.begin() + static_cast<std::ptrdiff_t>(tokens[i] * 16),
                t.emb.begin() + static_cast<std::ptrdiff_t>(tokens[i] * 16 + 16));
  }
  for (std::size_t l = 0; l < static_cast<std::size_t>(c.n_layers); ++l) {
    std::vector<std::vector<double>> q(T), k(T), v(T);
    for (std::size_t i = 0; i < T; ++i) {
      auto xb = naive_rmsnorm(x[i], t.rms_att.data() + l * d);
      q[i] = matvec(t.wq.data() + l * d * d, d, d, xb);
      k[i] = matvec(t.wk.data() + l * kv * d, kv, d, xb);
      v[i] = matvec(t.wv.data() + l * kv * d, kv, d, xb);
      rope.apply(q[i], nh, hs, static_cast<std::int64_t>(i));
      rope.apply(k[i], nkv, hs, static_cast<std::int64_t>(i));
    }
    for (std::size_t i = 0; i < T; ++i) {
      std::vector<double> att(d, 0.0);
      for (std::size_t hh = 0; hh < nh; ++hh) {
        const std::size_t g = hh / (nh / nkv);
        std::vector<double> s(i + 1);
        double mx = -1e300;
        for (std::size_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (std::size_t e = 0; e < hs; ++e) dot += q[i][hh * hs + e] * k[j][g * hs + e];
          s[j] = dot / std::sqrt(static_cast<double>(hs));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (auto& sv : s) sum += (sv = std::exp(sv - mx));
        for (std::size_t j = 0; j <= i; ++j) {
          for (std::size_t e = 0; e < hs; ++e) att[hh * hs + e] += s[j] / sum * v[j][g * hs + e];
        }
      }
      const auto o = matvec(t.wo.data() + l * d * d, d, d, att);
      for (std::size_t e = 0; e < d; ++e) x[i][e] += o[e];
      auto xb = naive_rmsnorm(x[i], t.rms_ffn.data() + l * d);
      auto a = matvec(t.w1.data() + l * h * d, h, d, xb);
      const auto b = matvec(t.w3.data() + l * h * d, h, d, xb);
      for (std::size_t e = 0; e < h; ++e) a[e] = a[e] / (1.0 + std::exp(-a[e])) * b[e];
      const auto f = matvec(t.w2.data() + l * d * h, d, h, a);
      for (std::size_t e = 0; e < d; ++e) x[i][e] += f[e];
    }
  }
  std::vector<std::vector<double>> logits(T);
  const auto& cls = c.shared_classifier ? t.emb : t.wcls;
  for (std::size_t i = 0; i < T; ++i) logits[i] = matvec(cls.data(), V, d, naive_rmsnorm(x[i], t.rms_final.data()));
  return logits;
}

std::vector<int> random_tokens(std::size_t n, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> u(0, 39);
  std::vector<int> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

// A naive_rope matching scaling `sc` at `context`, from the same formulas as
// scaling.hpp's documentation (written out here for none and longrope).
naive_rope rope_for(const std::vector<double>& lambda, double att, std::int64_t n_hat) {
  naive_rope r;
  for (int i = 0; i < 2; ++i) {
    r.theta.push_back(std::pow(10000.0, -2.0 * i / 4.0));
    r.inv.push_back(r.theta.back() / lambda[static_cast<std::size_t>(i)]);
  }
  r.att = att;
  r.n_hat = n_hat;
  return r;
}

}  // namespace

TEST_CASE("v0 and v1 checkpoints load to the same weights", "[model][checkpoint]") {
  for (bool shared : {true, false}) {
    const tiny t = make_tiny(shared);
    const auto b0 = write_v0(t), b1 = write_v1(t);
    const checkpoint c0 = parse_checkpoint(b0.data(), b0.size(), "v0");
    const checkpoint c1 = parse_checkpoint(b1.data(), b1.size(), "v1");
    CHECK(c0.config.version == 0);
    CHECK(c1.config.version == 1);
    for (const checkpoint* c : {&c0, &c1}) {
      CHECK(c->config.dim == 16);
      CHECK(c->config.hidden_dim == 24);
      CHECK(c->config.n_layers == 2);
      CHECK(c->config.n_heads == 4);
      CHECK(c->config.n_kv_heads == 2);
      CHECK(c->config.vocab_size == 40);
      CHECK(c->config.seq_len == 32);
      CHECK(c->config.head_size() == 4);
      CHECK(c->config.kv_dim() == 8);
      CHECK(c->config.shared_classifier == shared);
      CHECK(c->token_embedding == t.emb);
      CHECK(c->wq == t.wq);
      CHECK(c->wk == t.wk);
      CHECK(c->wv == t.wv);
      CHECK(c->wo == t.wo);
      CHECK(c->w1 == t.w1);
      CHECK(c->w2 == t.w2);
      CHECK(c->w3 == t.w3);
      CHECK(c->rms_att == t.rms_att);
      CHECK(c->rms_ffn == t.rms_ffn);
      CHECK(c->rms_final == t.rms_final);
      CHECK(c->wcls == t.wcls);
    }
  }
}

TEST_CASE("truncated, padded and corrupt checkpoints give clear errors", "[model][checkpoint]") {
  const tiny t = make_tiny(false);
  for (const auto& full : {write_v0(t), write_v1(t)}) {
    for (std::size_t cut : {std::size_t{0}, std::size_t{3}, std::size_t{27}, std::size_t{28}, std::size_t{100},
                            std::size_t{255}, std::size_t{256}, full.size() / 2, full.size() - 1}) {
      std::vector<unsigned char> b(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut));
      const std::string e = parse_error(b);
      INFO("cut at " << cut << ": " << e);
      CHECK(contains(e, "tiny.bin: "));
      CHECK((contains(e, "truncated") || contains(e, "corrupt")));
    }
    auto padded = full;
    padded.push_back(0);
    CHECK(contains(parse_error(padded), "trailing bytes"));
  }
  const auto v0 = write_v0(t);
  auto with_header = [&](int field, std::int32_t value) {
    auto b = v0;
    std::memcpy(b.data() + 4 * field, &value, 4);
    return parse_error(b);
  };
  CHECK(contains(with_header(0, 0), "dim = 0"));
  CHECK(contains(with_header(0, -16), "dim = -16"));
  CHECK(contains(with_header(3, 3), "must divide dim"));
  CHECK(contains(with_header(4, 3), "n_kv_heads = 3"));
  CHECK(contains(with_header(2, 1 << 30), "n_layers"));
  CHECK(contains(with_header(5, 0), "vocab_size"));
  CHECK(contains(with_header(6, -1), "seq_len"));
  CHECK(contains(with_header(1, 1 << 17), "hidden_dim"));
  // Huge but individually valid dimensions: sizes are computed without overflow and mismatch.
  {
    auto b = v0;
    const std::int32_t big[7] = {65536, 262144, 1024, 32768, 32768, 4194304, 16777216};
    std::memcpy(b.data(), big, sizeof big);
    CHECK(contains(parse_error(b), "truncated"));
  }
  // A NaN weight.
  {
    auto b = v0;
    const float nan = std::nanf("");
    std::memcpy(b.data() + 28 + 4 * 5, &nan, 4);
    CHECK(contains(parse_error(b), "non-finite value in tensor token_embedding"));
  }
  // Version 2 (int8) and unknown versions; a bad shared flag.
  {
    auto b = write_v1(t);
    const std::int32_t two = 2, nine = 9;
    std::memcpy(b.data() + 4, &two, 4);
    CHECK(contains(parse_error(b), "Q8_0"));
    std::memcpy(b.data() + 4, &nine, 4);
    CHECK(contains(parse_error(b), "unknown checkpoint version 9"));
    b = write_v1(t);
    b[36] = 7;
    CHECK(contains(parse_error(b), "shared_classifier"));
  }
  // A file that does not exist.
  try {
    load_checkpoint("/nonexistent/dir/model.bin");
    FAIL("no error");
  } catch (const longrope::error& e) {
    CHECK(contains(e.what(), "cannot read /nonexistent/dir/model.bin: No such file or directory"));
  }
}

TEST_CASE("tensors that do not fit the config are refused by the transformer and the writer", "[model][checkpoint]") {
  for (bool shared : {false, true}) {
    const auto b = write_v1(make_tiny(shared));
    const checkpoint good = parse_checkpoint(b.data(), b.size(), "tiny");
    CHECK_NOTHROW(transformer<float>(good));
    CHECK(serialize_checkpoint(good, 1) == b);  // the writer accepts what the reader made
    auto error_of = [](const checkpoint& ck, bool writer) {
      try {
        if (writer) (void)serialize_checkpoint(ck, 1);
        else transformer<float> m(ck);
      } catch (const longrope::error& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    };
    checkpoint bad = good;
    bad.wk.pop_back();  // 2 layers x kv_dim 8 x dim 16 = 256 expected
    CHECK(contains(error_of(bad, false), "transformer: tensor wk has 255 values, expected 256"));
    CHECK(contains(error_of(bad, true), "write_checkpoint: tensor wk has 255 values, expected 256"));
    bad = good;
    bad.rms_final.push_back(1.f);
    CHECK(contains(error_of(bad, false), "tensor rms_final has 17 values, expected 16"));
    bad = good;
    if (shared) {
      bad.wcls.assign(40 * 16, 0.f);  // unused with a shared classifier: ignored by the model, refused by the writer
      CHECK(error_of(bad, false) == "no error");
      CHECK(contains(error_of(bad, true), "write_checkpoint: tensor wcls has 640 values, expected 0"));
    } else {
      bad.wcls.clear();
      CHECK(contains(error_of(bad, false), "transformer: tensor wcls has 0 values, expected 640"));
    }
  }
}

TEST_CASE("forward matches a naive double implementation", "[model][forward]") {
  for (bool shared : {true, false}) {
    const tiny t = make_tiny(shared, shared ? 11u : 12u);
    const auto b = write_v1(t);
    const checkpoint ck = parse_checkpoint(b.data(), b.size(), "tiny");
    const transformer<double> md(ck);
    const transformer<float> mf(ck);
    struct rope_case {
      scaling sc;
      std::vector<double> lambda;
      double att;
    };
    std::vector<rope_case> cases;
    cases.push_back({scaling{}, {1.0, 1.0}, 1.0});
    scaling lr;
    lr.method = scaling_method::longrope;
    lr.factors = {1.5, 6.0};
    lr.n_hat = 5;
    lr.attention_factor = 1.2;
    cases.push_back({lr, {1.5, 6.0}, 1.2});
    // 300 tokens: several query blocks and two key blocks.
    const auto tokens = random_tokens(300, 3);
    for (const auto& rc : cases) {
      const auto f = make_frequencies(ck.config, rc.sc, 300);
      const auto ref = naive_forward(t, tokens, rope_for(rc.lambda, rc.att, rc.sc.n_hat));
      kv_cache<double> cd;
      workspace<double> wd;
      md.forward(tokens.data(), 300, cd, f, wd);
      kv_cache<float> cf;
      workspace<float> wf;
      mf.forward(tokens.data(), 300, cf, f, wf);
      matrix_rm<double> ld;
      matrix_rm<float> lf;
      md.logits_rows(wd, 0, 300, ld);
      mf.logits_rows(wf, 0, 300, lf);
      double err_d = 0, err_f = 0;
      for (std::size_t i = 0; i < 300; ++i) {
        for (std::size_t v = 0; v < 40; ++v) {
          const double r = ref[i][v];
          err_d = std::max(err_d, std::abs(ld(static_cast<index_t>(i), static_cast<index_t>(v)) - r));
          err_f = std::max(err_f, std::abs(lf(static_cast<index_t>(i), static_cast<index_t>(v)) - r));
        }
      }
      INFO("method " << to_string(rc.sc.method) << ", shared " << shared);
      CHECK(err_d < 1e-10);
      CHECK(err_f < 2e-4);
    }
  }
}

TEST_CASE("KV-cache generation equals the full forward", "[model][forward]") {
  const tiny t = make_tiny(true, 21);
  const auto b = write_v0(t);
  const checkpoint ck = parse_checkpoint(b.data(), b.size(), "tiny");
  const transformer<float> m(ck);
  scaling sc;
  sc.method = scaling_method::yarn;  // a non-trivial attention factor and ramp
  const auto f = make_frequencies(ck.config, sc, 128);
  const auto tokens = random_tokens(300, 5);
  kv_cache<float> full_cache;
  workspace<float> ws;
  matrix_rm<float> full, step;
  m.forward(tokens.data(), 300, full_cache, f, ws);
  m.logits_rows(ws, 0, 300, full);
  CHECK(full_cache.size() == 300);
  // Uneven chunks, including single tokens, crossing every block boundary.
  kv_cache<float> cache;
  std::size_t pos = 0;
  double err = 0;
  const std::size_t chunks[] = {1, 1, 7, 33, 1, 64, 100, 1, 92};
  for (std::size_t n : chunks) {
    m.forward(tokens.data() + pos, static_cast<index_t>(n), cache, f, ws);
    m.logits_rows(ws, 0, static_cast<index_t>(n), step);
    for (std::size_t i = 0; i < n; ++i) {
      err = std::max(err, static_cast<double>((step.row(static_cast<index_t>(i)) -
                                               full.row(static_cast<index_t>(pos + i))).cwiseAbs().maxCoeff()));
    }
    pos += n;
  }
  CHECK(pos == 300);
  CHECK(cache.size() == 300);
  CHECK(err < 1e-4);
}

TEST_CASE("sequence_nll and the perplexity protocol", "[model][perplexity]") {
  const tiny t = make_tiny(true, 31);
  const auto b = write_v1(t);
  const checkpoint ck = parse_checkpoint(b.data(), b.size(), "tiny");
  const transformer<double> m(ck);
  const auto f = make_frequencies(ck.config, scaling{}, 64);
  const auto stream = random_tokens(200, 9);

  const auto w = make_windows(stream, 64, 2, 1);
  REQUIRE(w.size() == 2);
  CHECK(w[0].size() == 64);
  CHECK(w[0][0] == kBos);
  CHECK(std::equal(w[0].begin() + 1, w[0].end(), stream.begin() + 63));
  CHECK(std::equal(w[1].begin() + 1, w[1].end(), stream.begin() + 126));
  CHECK(make_windows(stream, 64).size() == 3);  // 200 / 63
  CHECK_THROWS_WITH(make_windows(stream, 64, 4), Catch::Contains("text too short"));
  CHECK_THROWS_WITH(make_windows(stream, 1), Catch::Contains("context"));

  // NLL from the naive logits.
  const auto ref = naive_forward(t, w[0], rope_for({1.0, 1.0}, 1.0, 0));
  double nll = 0;
  for (std::size_t i = 0; i + 1 < 64; ++i) {
    double mx = -1e300, s = 0;
    for (double v : ref[i]) mx = std::max(mx, v);
    for (double v : ref[i]) s += std::exp(v - mx);
    nll += mx + std::log(s) - ref[i][static_cast<std::size_t>(w[0][i + 1])];
  }
  kv_cache<double> cache;
  workspace<double> ws;
  CHECK(std::abs(m.sequence_nll(w[0].data(), 64, f, cache, ws) - nll) < 1e-9 * nll);

  // Thread count never changes the result (fixed summation order).
  const auto all = make_windows(stream, 64);
  const auto f2 = make_frequencies(ck.config, scaling{scaling_method::ntk, {}, 0, {}, {}}, 64);
  const auto r1 = evaluate_perplexity(m, all, {f, f2}, 1);
  const auto r3 = evaluate_perplexity(m, all, {f, f2}, 3);
  REQUIRE(r1.size() == 2);
  CHECK(r1[0].nll_sum == r3[0].nll_sum);
  CHECK(r1[1].nll_sum == r3[1].nll_sum);
  CHECK(r1[0].tokens == 3 * 63);
  CHECK(r1[0].windows == 3);
  CHECK(std::abs(r1[0].perplexity() - std::exp(r1[0].nll_sum / 189.0)) < 1e-12);

  // Bad input to the forward.
  std::vector<int> bad = {1, 2, 40};
  CHECK_THROWS_WITH(m.sequence_nll(bad.data(), 3, f, cache, ws), Catch::Contains("out of range"));
  longrope::rope_config wrong;
  wrong.head_dim = 8;
  wrong.layout = longrope::pair_layout::interleaved;
  CHECK_THROWS_WITH(m.sequence_nll(w[0].data(), 64, longrope::rope_frequencies(wrong), cache, ws),
                    Catch::Contains("head_dim = rotary_dim = 4"));
}

TEST_CASE("scaling configs for a model", "[model][scaling]") {
  model_config c;
  c.dim = 64;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.seq_len = 512;
  CHECK(context_scale(c, 2048) == 4.0);
  CHECK(context_scale(c, 256) == 1.0);
  {
    const auto f = make_frequencies(c, {scaling_method::pi, {}, 0, {}, {}}, 2048);
    CHECK(f.type() == longrope::rope_type::linear);
    for (double l : f.rescale_factors()) CHECK(std::abs(l - 4.0) < 1e-12);
    CHECK(f.attention_factor() == 1.0);
  }
  {
    const auto f = make_frequencies(c, {scaling_method::yarn, {}, 0, {}, {}}, 4096);
    CHECK(std::abs(f.attention_factor() - (0.1 * std::log(8.0) + 1.0)) < 1e-12);
  }
  {
    const auto f = make_frequencies(c, {scaling_method::longrope, {1, 2, 3, 4}, 16, {}, {}}, 4096);
    CHECK(f.attention_factor() == 1.0);
    CHECK(f.rescale_factors() == std::vector<double>{1, 2, 3, 4});
    CHECK(f.n_hat() == 16);
  }
  {
    // An explicit attention factor on a method without one: same frequencies, that factor.
    const auto plain = make_frequencies(c, {scaling_method::ntk, {}, 0, {}, {}}, 2048);
    const auto f = make_frequencies(c, {scaling_method::ntk, {}, 0, 1.3, {}}, 2048);
    CHECK(f.attention_factor() == 1.3);
    for (int i = 0; i < 4; ++i) {
      CHECK(std::abs(f.inv_freq()[static_cast<std::size_t>(i)] / plain.inv_freq()[static_cast<std::size_t>(i)] - 1) < 1e-14);
    }
  }
  CHECK_THROWS_WITH(make_frequencies(c, {scaling_method::longrope, {1, 2}, 0, {}, {}}, 2048),
                    Catch::Contains("expected 4 values"));
  CHECK_THROWS_WITH(make_frequencies(c, {scaling_method::pi, {1, 2, 3, 4}, 0, {}, {}}, 2048),
                    Catch::Contains("only the longrope method"));
  CHECK_THROWS_WITH(parse_scaling_method("rope"), Catch::Contains("none, pi, ntk, yarn or longrope"));
  CHECK(parse_scaling_method("yarn") == scaling_method::yarn);
}

TEST_CASE("tokenizer: run.c's merges on a synthetic vocabulary", "[model][tokenizer]") {
  // 0..2 specials, 3..258 bytes, then pieces with scores.
  std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  std::vector<float> scores(3, 0.f);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    pieces.push_back(buf);
    scores.push_back(0.f);
  }
  auto add = [&](const std::string& p, float s) {
    pieces.push_back(p);
    scores.push_back(s);
    return static_cast<int>(pieces.size()) - 1;
  };
  const int sp = add(" ", -1.f), a = add("a", -2.f), b = add("b", -3.f), ab = add("ab", -4.f),
            ba = add("ba", -4.f), sa = add(" a", -5.f), aba = add("aba", -6.f), e_acute = add("\xc3\xa9", -7.f);
  const tokenizer tok = tokenizer::from_pieces(pieces, scores);
  // Tie between "ab" and "ba" at equal score: the leftmost pair merges first.
  CHECK(tok.encode("bab", false, false) == std::vector<int>{sp, ba, b});
  CHECK(tok.encode("aba", false, false) == std::vector<int>{sp, aba});
  CHECK(tok.encode("", true, true) == std::vector<int>{kBos, kEos});
  CHECK(tok.encode("a", true, false) == std::vector<int>{kBos, sa});
  // A 2-byte code point that is a piece; one that is not (byte fallback); a lone continuation byte.
  CHECK(tok.encode("\xc3\xa9", false, false) == std::vector<int>{sp, e_acute});
  CHECK(tok.encode("\xc3\xa8", false, false) == std::vector<int>{sp, 0xc3 + 3, 0xa8 + 3});
  CHECK(tok.encode("\x80", false, false) == std::vector<int>{sp, 0x80 + 3});
  (void)a;
  (void)ab;
  // Decode: BOS drops one leading space, byte pieces become bytes, specials render as nothing.
  CHECK(tok.decode({kBos, sa, b, 0xc3 + 3, 0xa8 + 3, kEos}) == "ab\xc3\xa8");
  CHECK(tok.decode_piece(sp, sa) == " a");
  CHECK_THROWS_WITH(tok.decode_piece(0, 5000), Catch::Contains("out of range"));

  // A small vocabulary without byte tokens reports the fallback it cannot do.
  const tokenizer small = tokenizer::from_pieces({"<unk>", "<s>", "</s>", " ", "x"}, {0, 0, 0, -1, -2});
  CHECK_THROWS_WITH(small.encode("y", false, false), Catch::Contains("byte fallback needs 259 tokens"));
}

TEST_CASE("tokenizer files: format errors", "[model][tokenizer]") {
  std::vector<unsigned char> b;
  put_i32(b, 3);
  auto piece = [&](float s, const std::string& p) {
    put(b, {s});
    put_i32(b, static_cast<std::int32_t>(p.size()));
    b.insert(b.end(), p.begin(), p.end());
  };
  piece(0.f, "<unk>");
  piece(0.f, "<s>");
  piece(-1.f, " ab");
  const tokenizer t = tokenizer::parse(b.data(), b.size(), 3, "tok.bin");
  CHECK(t.piece(2) == " ab");
  CHECK(t.score(2) == -1.f);
  auto err = [&](const std::vector<unsigned char>& bytes, int vocab) {
    try {
      tokenizer::parse(bytes.data(), bytes.size(), vocab, "tok.bin");
    } catch (const longrope::error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(contains(err(b, 4), "truncated at token 3 of 4"));
  CHECK(contains(err(b, 2), "trailing bytes"));
  CHECK(contains(err({1, 0}, 3), "truncated"));
  auto cut = b;
  cut.resize(cut.size() - 1);
  CHECK(contains(err(cut, 3), "token 2 has length 3"));
  auto neg = b;
  const std::int32_t m1 = -1;
  std::memcpy(neg.data() + 8, &m1, 4);
  CHECK(contains(err(neg, 3), "token 0 has length -1"));
}
