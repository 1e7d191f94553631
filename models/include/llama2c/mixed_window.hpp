// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file mixed_window.hpp
/// LongRoPE2's mixed context window training: some sequences are long (the
/// target context, trained with the rescaled RoPE), the others are short
/// documents (at most the trained length L_train) packed into the same
/// length and trained with the original RoPE under the per-document
/// attention mask. At inference the short factors are then all 1.0 (the
/// original RoPE) and the long factors the searched ones.
///
/// mixed_window_source wraps another source of sequences of `length` tokens:
/// each sequence is, by a seeded coin with probability q, made short: the
/// wrapped sequence BOS t_1 ... t_{n-1} becomes
///     BOS t_1 .. t_{k-1}  BOS t_k .. t_{2k-3}  BOS ...
/// (documents of k = short_len tokens, BOS included; the last one shorter,
/// the tokens pushed past the end dropped), and short_window() says so;
/// otherwise it is passed through unchanged. trainer::step_mixed trains the
/// short ones with the plain-RoPE frequencies and the document mask.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <longrope/error.hpp>
#include <longrope/search/rng.hpp>

#include "train_data.hpp"

namespace llama2c {

class mixed_window_source final : public sequence_source {
 public:
  /// Throws longrope::error ("longrope.argument") for q outside [0, 1] or
  /// short_len outside [2, length]. `inner` is owned.
  mixed_window_source(std::unique_ptr<sequence_source> inner, std::int64_t short_len, double q, std::uint64_t seed)
      : inner_(std::move(inner)), short_(short_len), q_(q), rng_(seed) {
    if (!inner_) LONGROPE_THROW("longrope.argument", "mixed window: no source to wrap");
    if (!(q_ >= 0.0 && q_ <= 1.0)) LONGROPE_THROW("longrope.argument", "mixed window: probability must be in [0, 1]");
    if (short_ < 2 || short_ > inner_->length()) {
      LONGROPE_THROW("longrope.argument", "mixed window: short documents of " + std::to_string(short_) +
                                              " tokens must be in [2, " + std::to_string(inner_->length()) + "]");
    }
  }
  std::int64_t length() const override { return inner_->length(); }
  void next(std::vector<int>& out) override {
    last_short_ = longrope::bernoulli(rng_, q_);
    if (!last_short_) {
      inner_->next(out);
      return;
    }
    inner_->next(buf_);
    out.clear();
    std::size_t from = 1;
    while (static_cast<std::int64_t>(out.size()) < length()) {
      if (static_cast<std::int64_t>(out.size()) % short_ == 0) {
        out.push_back(kBos);
      } else {
        out.push_back(buf_[from++]);
      }
    }
  }
  bool short_window() const override { return last_short_; }
  std::vector<std::uint64_t> state() const override {
    std::vector<std::uint64_t> s = inner_->state();
    s.push_back(static_cast<std::uint64_t>(s.size()));
    for (auto w : rng_.state()) s.push_back(w);
    return s;
  }
  void restore(const std::vector<std::uint64_t>& s) override {
    constexpr std::size_t own = 1 + 4;
    if (s.size() < own || s[s.size() - own] != s.size() - own) {
      LONGROPE_THROW("longrope.io", "training state: not a mixed-window state");
    }
    const std::size_t k = s.size() - own;
    const longrope::search_rng::state_type r{s[k + 1], s[k + 2], s[k + 3], s[k + 4]};
    if ((r[0] | r[1] | r[2] | r[3]) == 0) LONGROPE_THROW("longrope.io", "training state: mixed-window rng state is zero");
    inner_->restore(std::vector<std::uint64_t>(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(k)));
    rng_.set_state(r);
  }
  std::string describe() const override {
    return inner_->describe() + ", short windows of " + std::to_string(short_) + " (original RoPE) with probability " +
           std::to_string(q_);
  }

 private:
  std::unique_ptr<sequence_source> inner_;
  std::int64_t short_;
  double q_;
  longrope::search_rng rng_;
  bool last_short_ = false;
  std::vector<int> buf_;
};

}  // namespace llama2c
