// Training sequence sources beyond packed text (llama2c/passkey.hpp) and the
// from-scratch initialisation (llama2c/init.hpp): the passkey prompt is the
// `longrope passkey` text, the passkey mix (and its needle format) is deterministic, formatted as
// documented and resumes exactly; a fresh model is deterministic, has
// model.py's scales and round-trips through the checkpoint writer and loader;
// mixed-window sequences are documents of the short length and a trainer step
// switches to the original RoPE + document mask exactly for them.
// A byte-level tokenizer built here: no shared data needed.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <llama2c/checkpoint_writer.hpp>
#include <llama2c/init.hpp>
#include <llama2c/mixed_window.hpp>
#include <llama2c/passkey.hpp>
#include <llama2c/scaling.hpp>
#include <llama2c/train.hpp>
#include <llama2c/train_data.hpp>

#include "catch.hpp"

using namespace llama2c;

namespace {

// <unk> <s> </s>, the 256 byte pieces (ids 3..258, run.c's fallback), " ".
tokenizer byte_tokenizer() {
  std::vector<std::string> p{"<unk>", "<s>", "</s>"};
  const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) p.push_back(std::string("<0x") + hex[b / 16] + hex[b % 16] + ">");
  p.push_back(" ");
  return tokenizer::from_pieces(p, std::vector<float>(p.size(), 0.0f));
}

std::vector<int> text_tokens(const tokenizer& tok, std::size_t n) {
  std::string s;
  while (s.size() < n) s += "Lily saw a big red ball in the park and she ran to get it. ";
  return tok.encode(s.substr(0, n), false, false);  // dummy prefix: n + 1 tokens
}

std::unique_ptr<sequence_source> packed(const tokenizer& tok, std::int64_t len, std::uint64_t seed) {
  return std::make_unique<packed_stream_source>(text_tokens(tok, 3000), len, seed);
}

std::vector<std::vector<int>> draw(sequence_source& s, int n) {
  std::vector<std::vector<int>> out(static_cast<std::size_t>(n));
  for (auto& v : out) s.next(v);
  return out;
}

// The text of tokens [1, end) (BOS dropped).
std::string text_of(const tokenizer& tok, const std::vector<int>& t) {
  return tok.decode(std::vector<int>(t.begin() + 1, t.end()));
}

}  // namespace

TEST_CASE("passkey: the prompt is the documented text", "[train][passkey]") {
  const auto tok = byte_tokenizer();
  const passkey_pieces p(tok);
  const auto prompt = passkey_prompt(p, passkey_pieces::key_line(tok, "40312"), 3, 1);
  CHECK(prompt[0] == kBos);
  // Each piece is encoded alone, so each starts with the dummy-prefix space.
  const std::string filler = std::string(" ") + kPasskeyFiller;
  const std::string want = std::string(" ") + kPasskeyIntro + filler +
                           " The pass key is 40312. Remember it. 40312 is the pass key." + filler + filler + " " +
                           kPasskeyQuestion;
  CHECK(text_of(tok, prompt) == want);
  // depth == n_fill puts the key line after the last filler.
  const auto last = passkey_prompt(p, passkey_pieces::key_line(tok, "11111"), 1, 1);
  CHECK(text_of(tok, last) == std::string(" ") + kPasskeyIntro + filler +
                                  " The pass key is 11111. Remember it. 11111 is the pass key. " + kPasskeyQuestion);
}

TEST_CASE("passkey mix: p = 0 is the wrapped source, p = 1 only passkey samples in the format", "[train][passkey]") {
  const auto tok = byte_tokenizer();
  const std::int64_t len = 700;
  passkey_mix_source none(packed(tok, len, 3), tok, text_tokens(tok, 2000), 0.0, 5);
  auto plain = packed(tok, len, 3);
  CHECK(draw(none, 6) == draw(*plain, 6));
  CHECK(none.passkey_samples() == 0);

  passkey_mix_source all(packed(tok, len, 3), tok, text_tokens(tok, 2000), 1.0, 5);
  int sentences = 0;
  for (const auto& s : draw(all, 40)) {
    REQUIRE(static_cast<std::int64_t>(s.size()) == len);
    CHECK(s[0] == kBos);
    const std::string t = text_of(tok, s);
    REQUIRE(t.rfind(std::string(" ") + kPasskeyIntro, 0) == 0);
    const auto kl = t.find(" The pass key is ");
    REQUIRE(kl != std::string::npos);
    const std::string key = t.substr(kl + 17, 5);
    CHECK(key.find_first_not_of("0123456789") == std::string::npos);
    CHECK(key[0] != '0');
    const std::string line = " The pass key is " + key + ". Remember it. " + key + " is the pass key.";
    CHECK(t.compare(kl, line.size(), line) == 0);
    const std::string qa = std::string(" ") + kPasskeyQuestion + " " + key + ".";
    const auto q = t.find(qa);
    REQUIRE(q != std::string::npos);
    CHECK(q > kl);
    if (t.find(kPasskeyFiller) != std::string::npos) ++sentences;
    // What follows the answer is a new document: BOS, then the stream's text.
    const auto after = q + qa.size();
    if (after < t.size()) {
      const std::size_t prefix = tok.encode(t.substr(0, after), false, false).size();  // tokens incl. dummy " "
      CHECK(s[prefix] == kBos);
    }
  }
  CHECK(sentences > 5);   // both filler kinds occur (each with probability 1/2)
  CHECK(sentences < 35);
  CHECK(all.passkey_samples() == 40);
}

TEST_CASE("passkey mix: deterministic for a seed, mixes at rate p, resumes exactly", "[train][passkey]") {
  const auto tok = byte_tokenizer();
  const std::int64_t len = 400;
  auto make = [&](std::uint64_t seed) {
    return passkey_mix_source(packed(tok, len, 1), tok, text_tokens(tok, 1500), 0.3, seed);
  };
  auto a = make(7), b = make(7), c = make(8);
  const auto sa = draw(a, 200), sb = draw(b, 200), sc = draw(c, 200);
  CHECK(sa == sb);
  CHECK(sa != sc);
  // 200 coins at 0.3: mean 60, sd 6.5; [30, 90] is beyond 4.5 sd.
  CHECK(a.passkey_samples() >= 30);
  CHECK(a.passkey_samples() <= 90);

  auto first = make(9);
  draw(first, 17);
  const auto st = first.state();
  const auto want = draw(first, 25);
  auto resumed = make(9);
  resumed.restore(st);
  CHECK(draw(resumed, 25) == want);
  CHECK(resumed.sequences() == first.sequences());

  auto bad = st;
  bad.pop_back();
  CHECK_THROWS_AS(resumed.restore(bad), longrope::error);
  CHECK_THROWS_AS(resumed.restore({1, 2, 3}), longrope::error);
  CHECK_THROWS_AS(passkey_mix_source(packed(tok, len, 1), tok, text_tokens(tok, 100), 1.5, 0), longrope::error);
  CHECK_THROWS_AS(passkey_mix_source(packed(tok, len, 1), tok, {}, 0.5, 0), longrope::error);
  CHECK_THROWS_AS(passkey_mix_source(packed(tok, 120, 1), tok, text_tokens(tok, 100), 0.5, 0), longrope::error);
}

TEST_CASE("init: spec parsing, defaults and errors", "[train][init]") {
  const auto c = parse_init_spec("dim=128,layers=4,heads=4,vocab=512");
  CHECK(c.dim == 128);
  CHECK(c.n_layers == 4);
  CHECK(c.n_heads == 4);
  CHECK(c.n_kv_heads == 4);
  CHECK(c.hidden_dim == 352);  // llama2.c: 32 * ceil(341 / 32)
  CHECK(c.vocab_size == 512);
  CHECK(c.seq_len == 256);
  CHECK(c.head_size() == 32);
  const auto g = parse_init_spec("seq_len=64,vocab=40,heads=4,kv_heads=2,hidden=24,layers=2,dim=32");
  CHECK(g.n_kv_heads == 2);
  CHECK(g.hidden_dim == 24);
  CHECK(g.seq_len == 64);
  for (const char* bad : {"", "dim=32", "dim=32,layers=2,heads=4,vocab=40,foo=1", "dim=32,layers=2,heads=5,vocab=40",
                          "dim=32,layers=2,heads=4,kv_heads=3,vocab=40", "dim=x,layers=2,heads=4,vocab=40",
                          "dim=32,layers=0,heads=4,vocab=40", "dim=32,layers=2,heads=4,vocab=40,", "dim=48,layers=1,heads=16,vocab=40"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_init_spec(bad), longrope::error);
  }
}

TEST_CASE("init: a fresh model is seeded, has model.py's scales and round-trips through the loader", "[train][init]") {
  const auto c = parse_init_spec("dim=64,layers=2,heads=2,vocab=300,hidden=96,seq_len=64");
  const auto a = random_checkpoint(c, 11), b = random_checkpoint(c, 11), d = random_checkpoint(c, 12);
  CHECK(a.wq == b.wq);
  CHECK(a.w2 == b.w2);
  CHECK(a.wq != d.wq);
  auto sd = [](const std::vector<float>& v) {
    double s = 0, q = 0;
    for (float x : v) s += x, q += static_cast<double>(x) * x;
    const double n = static_cast<double>(v.size());
    return std::sqrt(q / n - (s / n) * (s / n));
  };
  // 8192+ draws: the sample sd is within 3% of the true one far beyond 4 sd.
  CHECK(std::abs(sd(a.wq) / 0.02 - 1) < 0.03);
  CHECK(std::abs(sd(a.token_embedding) / 0.02 - 1) < 0.03);
  CHECK(std::abs(sd(a.wo) / (0.02 / 2.0) - 1) < 0.03);  // 0.02 / sqrt(2 * 2 layers)
  CHECK(std::abs(sd(a.w3) / (0.02 / 2.0) - 1) < 0.03);
  CHECK(a.rms_att == std::vector<float>(128, 1.0f));
  CHECK(a.wcls.empty());

  const auto dir = std::filesystem::temp_directory_path() / "longrope_test_train_sources";
  std::filesystem::create_directories(dir);
  for (int version : {0, 1}) {
    const std::string path = (dir / ("init" + std::to_string(version) + ".bin")).string();
    write_checkpoint(a, path, version);
    const auto back = load_checkpoint(path);
    CHECK(back.config.dim == 64);
    CHECK(back.config.hidden_dim == 96);
    CHECK(back.config.seq_len == 64);
    CHECK(back.config.vocab_size == 300);
    CHECK(back.config.shared_classifier);
    CHECK(back.token_embedding == a.token_embedding);
    CHECK(back.wq == a.wq);
    CHECK(back.wk == a.wk);
    CHECK(back.wv == a.wv);
    CHECK(back.wo == a.wo);
    CHECK(back.w1 == a.w1);
    CHECK(back.w2 == a.w2);
    CHECK(back.w3 == a.w3);
    CHECK(back.rms_ffn == a.rms_ffn);
    CHECK(back.rms_final == a.rms_final);
    // And it runs: finite logits over a short sequence.
    const transformer<float> m(back);
    std::vector<int> seq{kBos, 5, 17, 200, 299, 3};
    kv_cache<float> cache;
    workspace<float> w;
    matrix_rm<float> l;
    const auto f = make_frequencies(back.config, scaling{}, 64);
    m.forward(seq.data(), 6, cache, f, w);
    m.logits_rows(w, 0, 6, l);
    CHECK(l.allFinite());
  }
}

namespace {

// Hands out fixed sequences in turn, each marked short or long.
class scripted_source final : public sequence_source {
 public:
  scripted_source(std::vector<std::vector<int>> s, std::vector<bool> shorts) : s_(std::move(s)), short_(std::move(shorts)) {}
  std::int64_t length() const override { return static_cast<std::int64_t>(s_[0].size()); }
  void next(std::vector<int>& out) override {
    last_ = i_ % s_.size();
    out = s_[last_];
    ++i_;
  }
  bool short_window() const override { return short_[last_]; }
  std::vector<std::uint64_t> state() const override { return {i_}; }
  void restore(const std::vector<std::uint64_t>& s) override { i_ = s.at(0); }
  std::string describe() const override { return "scripted"; }

 private:
  std::vector<std::vector<int>> s_;
  std::vector<bool> short_;
  std::size_t i_ = 0, last_ = 0;
};

template <class T>
std::vector<T> weights(const trainer<T>& t) {
  std::vector<T> w;
  t.model().for_each_tensor([&](const char*, const T* p, index_t n, bool) { w.insert(w.end(), p, p + n); });
  return w;
}
template <class T>
std::vector<T> grads(const trainer<T>& t) {
  std::vector<T> w;
  t.gradient_holder().for_each_tensor([&](const char*, const T* p, index_t n, bool) { w.insert(w.end(), p, p + n); });
  return w;
}

std::vector<int> seq_with_docs(std::uint32_t seed, std::int64_t len, std::int64_t doc) {
  std::mt19937 g(seed);
  std::vector<int> s(static_cast<std::size_t>(len));
  for (std::int64_t i = 0; i < len; ++i) s[static_cast<std::size_t>(i)] = i % doc == 0 ? kBos : 3 + static_cast<int>(g() % 250);
  return s;
}

}  // namespace

TEST_CASE("mixed window: short documents of the trained length, the wrapped tokens in order", "[train][mixed]") {
  const auto tok = byte_tokenizer();
  const std::int64_t len = 100, k = 32;
  mixed_window_source all(packed(tok, len, 2), k, 1.0, 4);
  auto plain = packed(tok, len, 2);
  for (int r = 0; r < 5; ++r) {
    std::vector<int> got, want;
    all.next(got);
    plain->next(want);
    CHECK(all.short_window());
    REQUIRE(static_cast<std::int64_t>(got.size()) == len);
    std::size_t from = 1;
    for (std::int64_t i = 0; i < len; ++i) {
      if (i % k == 0) {
        CHECK(got[static_cast<std::size_t>(i)] == kBos);
      } else {
        CHECK(got[static_cast<std::size_t>(i)] == want[from++]);
      }
    }
    // Every token's document starts at most k - 1 tokens back.
    const auto st = document_starts(got.data(), len);
    for (std::int64_t i = 0; i < len; ++i) CHECK(i - st[static_cast<std::size_t>(i)] < k);
  }
  mixed_window_source none(packed(tok, len, 2), k, 0.0, 4);
  auto plain2 = packed(tok, len, 2);
  std::vector<int> a, b;
  none.next(a);
  plain2->next(b);
  CHECK(a == b);
  CHECK_FALSE(none.short_window());

  auto make = [&] { return mixed_window_source(packed(tok, len, 2), k, 0.5, 6); };
  auto m1 = make(), m2 = make();
  int shorts = 0;
  for (int i = 0; i < 200; ++i) {
    std::vector<int> x, y;
    m1.next(x);
    m2.next(y);
    CHECK(x == y);
    CHECK(m1.short_window() == m2.short_window());
    shorts += m1.short_window() ? 1 : 0;
  }
  CHECK(shorts > 60);  // 200 coins at 1/2: mean 100, sd 7
  CHECK(shorts < 140);
  const auto st = m1.state();
  std::vector<std::vector<int>> want(10);
  std::vector<bool> want_short;
  for (auto& w : want) {
    m1.next(w);
    want_short.push_back(m1.short_window());
  }
  auto m3 = make();
  m3.restore(st);
  for (std::size_t i = 0; i < want.size(); ++i) {
    std::vector<int> x;
    m3.next(x);
    CHECK(x == want[i]);
    CHECK(m3.short_window() == want_short[i]);
  }
  CHECK_THROWS_AS(m3.restore({1, 2}), longrope::error);
  CHECK_THROWS_AS(mixed_window_source(packed(tok, len, 2), 101, 0.5, 0), longrope::error);
  CHECK_THROWS_AS(mixed_window_source(packed(tok, len, 2), 32, -0.1, 0), longrope::error);
}

TEST_CASE("mixed window: a short sequence takes a plain-RoPE masked step, a long one a scaled step", "[train][mixed]") {
  const auto c = parse_init_spec("dim=32,layers=2,heads=4,kv_heads=2,hidden=24,vocab=260,seq_len=32");
  auto ck = random_checkpoint(c, 3);
  for (auto& x : ck.wq) x *= 20;  // larger weights: attention that depends visibly on the RoPE
  for (auto& x : ck.wk) x *= 20;
  const std::int64_t len = 96;
  scaling sl;
  sl.method = scaling_method::longrope;
  sl.factors = {1.0, 1.6, 2.4, 3.0};
  const auto f_long = make_frequencies(c, sl, len);
  const auto f_plain = make_frequencies(c, scaling{}, len);
  train_options o;
  o.steps = 3;
  o.batch = 2;
  o.lr = 1e-2;
  o.warmup = 0;
  train_options om = o;
  om.doc_mask = true;
  const auto shrt = seq_with_docs(1, len, 32), shrt2 = seq_with_docs(2, len, 32);
  const auto lng = seq_with_docs(3, len, len), lng2 = seq_with_docs(4, len, len);

  // Short sequences: step_mixed == step with the original RoPE and the document mask.
  trainer<float> a(ck, o), b(ck, om), wrong(ck, o);
  scripted_source sa({shrt, shrt2}, {true, true}), sb({shrt, shrt2}, {true, true}), sw({shrt, shrt2}, {true, true});
  for (int i = 0; i < 3; ++i) {
    const auto ra = a.step_mixed(sa, f_long, f_plain);
    const auto rb = b.step(sb, f_plain);
    CHECK(ra.loss == rb.loss);
    wrong.step(sw, f_long);
  }
  CHECK(weights(a) == weights(b));
  CHECK(weights(a) != weights(wrong));  // the switch matters: the scaled unmasked step differs
  CHECK(a.short_sequences_seen() == 6);

  // Long sequences: step_mixed == step with the rescaled RoPE (no mask: o.doc_mask is off).
  trainer<float> c1(ck, o), c2(ck, o);
  scripted_source s1({lng, lng2}, {false, false}), s2({lng, lng2}, {false, false});
  for (int i = 0; i < 3; ++i) CHECK(c1.step_mixed(s1, f_long, f_plain).loss == c2.step(s2, f_long).loss);
  CHECK(weights(c1) == weights(c2));
  CHECK(c1.short_sequences_seen() == 0);

  // A batch with one of each: the gradient is the sum of the two kinds' gradients (double, 1e-12).
  auto ckd = ck;
  trainer<double> mix(ckd, o), gs(ckd, om), gl(ckd, o);
  scripted_source sm({shrt, lng}, {true, false});
  mix.step_mixed(sm, f_long, f_plain);
  const double scale = 1.0 / (2.0 * static_cast<double>(len - 1));
  gs.gradient({shrt}, f_plain, scale);
  gl.gradient({lng}, f_long, scale);
  const auto g = grads(mix), g1 = grads(gs), g2 = grads(gl);
  double num = 0, den = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    num += (g[i] - g1[i] - g2[i]) * (g[i] - g1[i] - g2[i]);
    den += g[i] * g[i];
  }
  CHECK(den > 0);
  CHECK(std::sqrt(num / den) < 1e-12);
}

TEST_CASE("passkey mix: answer weights mark exactly the answer tokens; weighted step = finite differences", "[train][passkey]") {
  const auto tok = byte_tokenizer();
  const std::int64_t len = 700;
  passkey_mix_source src(packed(tok, len, 3), tok, text_tokens(tok, 2000), 1.0, 5, 8.0f);
  std::vector<int> s;
  src.next(s);
  const auto* w = src.target_weights();
  REQUIRE(w != nullptr);
  REQUIRE(static_cast<std::int64_t>(w->size()) == len - 1);
  const std::string t = text_of(tok, s);
  const auto kl = t.find(" The pass key is ");
  const std::string key = t.substr(kl + 17, 5);
  const std::string qa = std::string(" ") + kPasskeyQuestion;
  const auto q = t.find(qa, kl);
  // Byte tokens: char c of t is token c + 1; the answer " NNNNN." is 7 tokens, targets at token index - 1.
  const std::size_t a0 = q + qa.size() + 1;
  for (std::size_t i = 0; i < w->size(); ++i) {
    const bool ans = i + 1 >= a0 && i + 1 < a0 + 7;
    CHECK((*w)[i] == (ans ? 8.0f : 1.0f));
  }
  CHECK(t.substr(q + qa.size(), 7) == " " + key + ".");
  passkey_mix_source unweighted(packed(tok, len, 3), tok, text_tokens(tok, 2000), 1.0, 5);
  unweighted.next(s);
  CHECK(unweighted.target_weights() == nullptr);
  CHECK_THROWS_AS(passkey_mix_source(packed(tok, len, 3), tok, text_tokens(tok, 100), 0.5, 0, -1.0f), longrope::error);

  // The weighted loss's gradient against central differences (double).
  const auto c = parse_init_spec("dim=16,layers=1,heads=2,hidden=16,vocab=260,seq_len=32");
  auto ck = random_checkpoint(c, 9);
  for (auto& x : ck.token_embedding) x *= 20;
  const std::vector<int> seq{kBos, 40, 41, 42, 40, 41, 7, 9, 40};
  std::vector<double> wt{0.0, 2.0, 1.0, 0.0, 5.0, 0.5, 1.0, 3.0};
  const auto f = make_frequencies(c, scaling{}, 9);
  transformer<double> model(ck), grad(ck);
  grad.for_each_tensor([](const char*, double* p, index_t n, bool) { std::fill(p, p + n, 0.0); });
  train_workspace<double> ws;
  const double loss = backward_pass<double>::loss_and_grad(model, seq.data(), 9, f, nullptr, 1.0, grad, ws, wt.data());
  auto weighted_nll = [&](transformer<double>& m) {
    kv_cache<double> cache;
    workspace<double> w2;
    matrix_rm<double> l;
    m.forward(seq.data(), 8, cache, f, w2);
    m.logits_rows(w2, 0, 8, l);
    double sum = 0;
    for (int i = 0; i < 8; ++i) {
      const double mx = l.row(i).maxCoeff();
      const double lse = mx + std::log((l.row(i).array() - mx).exp().sum());
      sum += wt[static_cast<std::size_t>(i)] * (lse - l(i, seq[static_cast<std::size_t>(i + 1)]));
    }
    return sum;
  };
  CHECK(std::abs(weighted_nll(model) - loss) < 1e-9 * std::abs(loss));
  // The embedding rows of the tokens used: d loss / d e against central differences.
  std::vector<std::pair<double*, double>> probes;
  std::vector<double*> emb_p, emb_g;
  model.for_each_tensor([&](const char* name, double* p, index_t, bool) {
    if (std::string(name) == "token_embedding") emb_p.push_back(p);
  });
  grad.for_each_tensor([&](const char* name, double* p, index_t, bool) {
    if (std::string(name) == "token_embedding") emb_g.push_back(p);
  });
  REQUIRE(emb_p.size() == 1);
  REQUIRE(emb_g.size() == 1);
  double num = 0, den = 0;
  for (int tokid : {40, 41, 42, 7}) {
    for (int k = 0; k < 16; ++k) {
      double* x = emb_p[0] + tokid * 16 + k;
      const double x0 = *x, h = 1e-5;
      *x = x0 + h;
      const double up = weighted_nll(model);
      *x = x0 - h;
      const double down = weighted_nll(model);
      *x = x0;
      const double fd = (up - down) / (2 * h), g = emb_g[0][tokid * 16 + k];
      num += (g - fd) * (g - fd);
      den += fd * fd;
    }
  }
  CHECK(den > 0);
  CHECK(std::sqrt(num / den) < 1e-6);
}

TEST_CASE("passkey mix, needle format: LongRoPE2's needle windows, every answer weighted", "[train][passkey][needle]") {
  const auto tok = byte_tokenizer();
  const std::int64_t len = 900;
  auto make = [&](std::uint64_t seed) {
    return passkey_mix_source(packed(tok, len, 3), tok, text_tokens(tok, 2000), 1.0, seed, 6.0f, passkey_format::needle);
  };
  auto src = make(11);
  const std::regex needle(" One of the special magic numbers for ([a-z]+) is: ([0-9]{7})\\.");
  const std::regex question(" What is the special magic number for ([a-z]+) mentioned in the provided text\\? The "
                            "special magic number for \\1 mentioned in the provided text is ([0-9]{7})\\.");
  std::set<std::size_t> key_counts;
  for (int n = 0; n < 12; ++n) {
    std::vector<int> s;
    src.next(s);
    REQUIRE(static_cast<std::int64_t>(s.size()) == len);
    CHECK(s.front() == kBos);
    const std::string t = text_of(tok, s);
    CHECK(t.rfind(std::string(" ") + detail_needle::kIntro, 0) == 0);
    std::map<std::string, std::string> planted;
    for (std::sregex_iterator it(t.begin(), t.end(), needle), end; it != end; ++it) planted[(*it)[1]] = (*it)[2];
    std::vector<std::pair<std::size_t, std::size_t>> answers;  // char offsets of " NNNNNNN"
    std::size_t asked = 0;
    for (std::sregex_iterator it(t.begin(), t.end(), question), end; it != end; ++it) {
      ++asked;
      REQUIRE(planted.count((*it)[1]) == 1);
      CHECK(planted[(*it)[1]] == (*it)[2].str());  // the question's answer is the planted number
      const std::size_t at = static_cast<std::size_t>(it->position(2)) - 1;
      answers.emplace_back(at, at + 8);
    }
    CHECK(asked == planted.size());
    CHECK((asked >= 1 && asked <= 3));
    key_counts.insert(asked);
    // Byte tokens: char c of t is token c + 1, target index = token index - 1.
    const auto* w = src.target_weights();
    REQUIRE(w != nullptr);
    REQUIRE(static_cast<std::int64_t>(w->size()) == len - 1);
    for (std::size_t i = 0; i < w->size(); ++i) {
      bool ans = false;
      for (const auto& [a, b] : answers) ans = ans || (i >= a && i < b);
      INFO(i);
      CHECK((*w)[i] == (ans ? 6.0f : 1.0f));
    }
  }
  CHECK(key_counts.size() >= 2);  // 1..3 needles per sample
  CHECK(src.passkey_samples() == 12);
  // Seeded: the same seed gives the same samples, another seed other needles.
  auto a = make(11), b = make(11), c = make(12);
  const auto da = draw(a, 4);
  CHECK(da == draw(b, 4));
  CHECK(da != draw(c, 4));
  CHECK_THROWS_WITH(passkey_mix_source(packed(tok, 200, 3), tok, text_tokens(tok, 2000), 1.0, 1, 1.0f,
                                       passkey_format::needle),
                    Catch::Contains("too short for a needle sample"));
}
