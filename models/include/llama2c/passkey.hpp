// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file passkey.hpp
/// The LongRoPE paper's passkey retrieval task, shared by evaluation
/// (`longrope passkey`) and training (`finetune --passkey-mix P`), so both
/// see the same prompt:
///
///     BOS intro  filler x n_fill, with the key line before filler number `depth`
///         (after the last one when depth == n_fill)  question  [answer]
///
///   intro     "There is an important info hidden inside a lot of irrelevant text.
///              Find it and memorize it. I will quiz you about the important
///              information there."
///   filler    "The grass is green. The sky is blue. The sun is yellow. Here we go.
///              There and back again."  (evaluation; training may use stream text)
///   key line  "The pass key is NNNNN. Remember it. NNNNN is the pass key."
///   question  "What is the pass key? The pass key is"
///   answer    " NNNNN."  (training only; evaluation decodes greedily)
///
/// Every piece is encoded on its own (run.c's dummy prefix " " included), so
/// the prompt is the concatenation of the pieces' tokens.
///
/// passkey_mix_source wraps another sequence_source: with probability p per
/// sequence (a seeded coin) it emits a passkey sample instead of the wrapped
/// source's next sequence. A sample is, in `length` tokens:
///
///     BOS intro F_1 keyline F_2 question answer  [BOS text ...]
///
/// with a 5-digit key uniform in [10000, 99999]; F = F_1 F_2 is, by a second
/// coin, either whole filler sentences (n_fill uniform in [1, max], the key
/// line before a uniform sentence in [0, n_fill]) or consecutive stream text
/// (uniform length in [1, max], split at a uniform point); the tokens left
/// after the answer are BOS and the next stream text (a new document). The
/// stream text is read from its own cursor, wrapping at the end. The
/// wrapped source only advances when it is asked for a sequence. With an
/// answer weight w != 1 the answer tokens of a passkey sample weigh w in the
/// loss (target_weights()), every other target 1; w = 0 trains the samples'
/// text but not their answers.
///
/// With passkey_format::needle a sample is instead one LongRoPE2 needle window
/// of `length` tokens (needle.hpp's make_needle_window, the fitness's
/// generator): k uniform in [1, min(3, what fits)] needles with 7-digit
/// numbers at depths uniform in [0, 1], the text from the stream cursor, keys
/// and numbers from this source's seeded generator (so a training seed gives
/// other needles than the fitness's needle seeds); the answer tokens of every
/// question carry the weight w.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <longrope/error.hpp>
#include <longrope/search/rng.hpp>

#include "needle.hpp"
#include "tokenizer.hpp"
#include "train_data.hpp"

namespace llama2c {

inline constexpr const char* kPasskeyIntro =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.";
inline constexpr const char* kPasskeyFiller =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
inline constexpr const char* kPasskeyQuestion = "What is the pass key? The pass key is";

/// The encoded pieces of the passkey prompt.
struct passkey_pieces {
  std::vector<int> intro, filler, question;
  /// Tokens of the key line for a 5-digit key (its length does not depend on
  /// the digits for tok512 and Llama-2's tokenizer, which split digits).
  std::int64_t key_line_tokens = 0;

  explicit passkey_pieces(const tokenizer& tok)
      : intro(tok.encode(kPasskeyIntro, false, false)),
        filler(tok.encode(kPasskeyFiller, false, false)),
        question(tok.encode(kPasskeyQuestion, false, false)),
        key_line_tokens(static_cast<std::int64_t>(key_line(tok, "12345").size())) {}

  static std::vector<int> key_line(const tokenizer& tok, const std::string& key) {
    return tok.encode("The pass key is " + key + ". Remember it. " + key + " is the pass key.", false, false);
  }
  /// " NNNNN." : what follows the question.
  static std::vector<int> answer(const tokenizer& tok, const std::string& key) {
    return tok.encode(key + ".", false, false);
  }
};

/// BOS intro filler^n_fill (key line before filler `depth`, after the last
/// when depth == n_fill) question. Precondition: 0 <= depth <= n_fill. O(length).
inline std::vector<int> passkey_prompt(const passkey_pieces& p, const std::vector<int>& key_line, std::int64_t n_fill,
                                       std::int64_t depth) {
  std::vector<int> t{kBos};
  t.insert(t.end(), p.intro.begin(), p.intro.end());
  for (std::int64_t i = 0; i <= n_fill; ++i) {
    if (i == depth) t.insert(t.end(), key_line.begin(), key_line.end());
    if (i < n_fill) t.insert(t.end(), p.filler.begin(), p.filler.end());
  }
  t.insert(t.end(), p.question.begin(), p.question.end());
  return t;
}

/// A uniform 5-digit key in [10000, 99999] (one draw).
template <class URBG>
std::string passkey_key(URBG& g) {
  return std::to_string(10000 + longrope::uniform_index(g, 90000));
}

/// What a passkey_mix_source sample looks like.
enum class passkey_format {
  passkey,  ///< `longrope passkey`'s 5-digit pass key prompt.
  needle,   ///< LongRoPE2's "special magic number" needle window (needle.hpp).
};

class passkey_mix_source final : public sequence_source {
 public:
  /// inner: the source mixed with (its length is this source's); text: the
  /// stream (no leading BOS) the text filler and the padding come from;
  /// p: the probability of a passkey sample per sequence, in [0, 1]; `tok`
  /// must outlive the source. next() is O(length).
  /// Throws longrope::error ("longrope.argument") for p outside [0, 1], an
  /// empty text, or a length too short for the intro, key line, question,
  /// answer and one filler sentence (naming the minimum).
  passkey_mix_source(std::unique_ptr<sequence_source> inner, const tokenizer& tok, std::vector<int> text, double p,
                     std::uint64_t seed, float answer_weight = 1.0f, passkey_format format = passkey_format::passkey)
      : inner_(std::move(inner)), pieces_(tok), tok_(tok), text_(std::move(text)), p_(p), rng_(seed),
        answer_weight_(answer_weight), format_(format) {
    if (!(answer_weight_ >= 0.0f && answer_weight_ <= 1e4f)) {
      LONGROPE_THROW("longrope.argument", "passkey mix: answer weight must be in [0, 10000]");
    }
    if (!inner_) LONGROPE_THROW("longrope.argument", "passkey mix: no source to mix with");
    if (!(p_ >= 0.0 && p_ <= 1.0)) LONGROPE_THROW("longrope.argument", "passkey mix: probability must be in [0, 1]");
    if (text_.empty()) LONGROPE_THROW("longrope.argument", "passkey mix: the filler text is empty");
    if (format_ == passkey_format::needle) {
      while (needle_keys_ > 0 && needle_max_fixed_tokens(tok_, needle_keys_) >= inner_->length()) --needle_keys_;
      if (needle_keys_ == 0) {
        LONGROPE_THROW("longrope.argument", "passkey mix: sequences of " + std::to_string(inner_->length()) +
                                                " tokens are too short for a needle sample (need > " +
                                                std::to_string(needle_max_fixed_tokens(tok_, 1)) + ")");
      }
      return;
    }
    answer_tokens_ = static_cast<std::int64_t>(passkey_pieces::answer(tok_, "12345").size());
    fixed_ = 1 + static_cast<std::int64_t>(pieces_.intro.size() + pieces_.question.size()) + pieces_.key_line_tokens +
             answer_tokens_;
    const std::int64_t need = fixed_ + static_cast<std::int64_t>(pieces_.filler.size());
    if (inner_->length() < need) {
      LONGROPE_THROW("longrope.argument", "passkey mix: sequences of " + std::to_string(inner_->length()) +
                                              " tokens are too short for a passkey sample (need >= " +
                                              std::to_string(need) + ")");
    }
  }

  std::int64_t length() const override { return inner_->length(); }

  void next(std::vector<int>& out) override {
    ++count_;
    last_passkey_ = longrope::bernoulli(rng_, p_);
    if (!last_passkey_) {
      inner_->next(out);
      return;
    }
    ++samples_;
    const std::int64_t len = length();
    if (format_ == passkey_format::needle) {
      next_needle(out, len);
      return;
    }
    const std::string key = passkey_key(rng_);
    const auto line = passkey_pieces::key_line(tok_, key);
    const auto ans = passkey_pieces::answer(tok_, key);
    const std::int64_t room = len - fixed_;  // filler tokens available
    if (longrope::bernoulli(rng_, 0.5)) {     // the evaluation's filler sentences
      const std::int64_t max_fill = room / static_cast<std::int64_t>(pieces_.filler.size());
      const auto n_fill = 1 + static_cast<std::int64_t>(longrope::uniform_index(rng_, static_cast<std::uint64_t>(max_fill)));
      const auto depth = static_cast<std::int64_t>(longrope::uniform_index(rng_, static_cast<std::uint64_t>(n_fill) + 1));
      out = passkey_prompt(pieces_, line, n_fill, depth);
    } else {  // stream text as filler
      const auto h = 1 + static_cast<std::int64_t>(longrope::uniform_index(rng_, static_cast<std::uint64_t>(room)));
      const auto cut = static_cast<std::int64_t>(longrope::uniform_index(rng_, static_cast<std::uint64_t>(h) + 1));
      out.assign(1, kBos);
      out.insert(out.end(), pieces_.intro.begin(), pieces_.intro.end());
      take_text(out, cut);
      out.insert(out.end(), line.begin(), line.end());
      take_text(out, h - cut);
      out.insert(out.end(), pieces_.question.begin(), pieces_.question.end());
    }
    const auto answer_at = static_cast<std::int64_t>(out.size());
    out.insert(out.end(), ans.begin(), ans.end());
    if (answer_weight_ != 1.0f) {
      weights_.assign(static_cast<std::size_t>(len - 1), 1.0f);
      for (std::int64_t i = answer_at; i < answer_at + static_cast<std::int64_t>(ans.size()) && i < len; ++i) {
        weights_[static_cast<std::size_t>(i - 1)] = answer_weight_;
      }
    }
    const auto rest = len - static_cast<std::int64_t>(out.size());
    if (rest > 0) {
      out.push_back(kBos);
      take_text(out, rest - 1);
    }
    out.resize(static_cast<std::size_t>(len));  // keys of another digit split could overshoot by a token
  }

  std::vector<std::uint64_t> state() const override {
    std::vector<std::uint64_t> s = inner_->state();
    s.push_back(static_cast<std::uint64_t>(s.size()));
    for (auto w : rng_.state()) s.push_back(w);
    s.push_back(cursor_);
    s.push_back(count_);
    s.push_back(samples_);
    return s;
  }
  void restore(const std::vector<std::uint64_t>& s) override {
    constexpr std::size_t own = 1 + 4 + 3;
    if (s.size() < own || s[s.size() - own] != s.size() - own) {
      LONGROPE_THROW("longrope.io", "training state: not a passkey-mix state");
    }
    const std::size_t k = s.size() - own;
    if (s[k + 5] >= text_.size()) LONGROPE_THROW("longrope.io", "training state: passkey text position does not fit the text");
    const longrope::search_rng::state_type r{s[k + 1], s[k + 2], s[k + 3], s[k + 4]};
    if ((r[0] | r[1] | r[2] | r[3]) == 0) LONGROPE_THROW("longrope.io", "training state: passkey-mix rng state is zero");
    inner_->restore(std::vector<std::uint64_t>(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(k)));
    rng_.set_state(r);
    cursor_ = s[k + 5];
    count_ = s[k + 6];
    samples_ = s[k + 7];
  }
  /// A passkey sample is a long-window sequence; others are the wrapped source's.
  bool short_window() const override { return !last_passkey_ && inner_->short_window(); }
  const std::vector<float>* target_weights() const override {
    if (!last_passkey_) return inner_->target_weights();
    return answer_weight_ != 1.0f ? &weights_ : nullptr;
  }
  std::string describe() const override {
    return inner_->describe() + ", passkey samples with probability " + std::to_string(p_);
  }
  /// Sequences handed out and how many of them were passkey samples.
  std::uint64_t sequences() const noexcept { return count_; }
  std::uint64_t passkey_samples() const noexcept { return samples_; }

 private:
  void next_needle(std::vector<int>& out, std::int64_t len) {
    needle_options no;
    no.context = len;
    no.keys = 1 + static_cast<int>(longrope::uniform_index(rng_, static_cast<std::uint64_t>(needle_keys_)));
    for (int j = 0; j < no.keys; ++j) no.depths.push_back(longrope::uniform_unit(rng_));
    auto win = make_needle_window(tok_, no, no.depths, rng_,
                                  [&](std::vector<int>& t, std::int64_t n, std::int64_t) { take_text(t, n); });
    out = std::move(win.tokens);
    if (answer_weight_ != 1.0f) {
      weights_.assign(static_cast<std::size_t>(len - 1), 1.0f);
      for (const auto& span : win.answers) {
        for (std::int64_t i = span.first; i < span.second; ++i) weights_[static_cast<std::size_t>(i - 1)] = answer_weight_;
      }
    }
  }

  void take_text(std::vector<int>& out, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
      out.push_back(text_[static_cast<std::size_t>(cursor_)]);
      if (++cursor_ == text_.size()) cursor_ = 0;
    }
  }

  std::unique_ptr<sequence_source> inner_;
  passkey_pieces pieces_;
  const tokenizer& tok_;
  std::vector<int> text_;
  double p_;
  longrope::search_rng rng_;
  std::int64_t fixed_ = 0, answer_tokens_ = 0;
  std::uint64_t cursor_ = 0, count_ = 0, samples_ = 0;
  bool last_passkey_ = false;
  float answer_weight_;
  passkey_format format_;
  int needle_keys_ = 3;  ///< most needles per needle sample
  std::vector<float> weights_;
};

}  // namespace llama2c
