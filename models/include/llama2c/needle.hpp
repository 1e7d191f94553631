// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file needle.hpp
/// LongRoPE2's needle-driven fitness: the loss on the answer tokens only of
/// needles planted at controlled depths in long text.
///
/// One window of `context` tokens (BOS included):
///
///     BOS "A special magic number is hidden within the following text. Make sure
///         to memorize it. I will quiz you about the magic number afterwards."
///     text ... "One of the special magic numbers for <key_1> is: <7 digits>." text ...
///          ... "One of the special magic numbers for <key_K> is: <7 digits>." text ...
///     for each key j:  "What is the special magic number for <key_j> mentioned in the
///         provided text? The special magic number for <key_j> mentioned in the
///         provided text is" " <7 digits_j>."
///
/// Needle j sits after floor(depth_j * H) of the window's H text tokens (the
/// text fills the window exactly). Only the answer tokens (the encoded
/// " <7 digits>") are scored, teacher-forced:
///     loss = sum of -log p(answer token | prefix) / number of answer tokens.
/// Keys are distinct words, numbers uniform in [1000000, 9999999], both drawn
/// from longrope::search_rng(seed), so a seed fixes the task; windows take
/// consecutive text from a token offset, so held-out windows use other text
/// (a later offset) and other needles (another seed).

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <longrope/frequencies.hpp>
#include <longrope/search/rng.hpp>

#include "perplexity.hpp"
#include "tokenizer.hpp"
#include "transformer.hpp"

namespace llama2c {

struct needle_options {
  std::int64_t context = 2048;   ///< window length in tokens (BOS included).
  int keys = 3;                  ///< needles (and questions) per window, 1..16.
  /// Depth of needle j as a fraction of the window's text in [0, 1]; empty:
  /// 0.1 + 0.4 j / (keys - 1) (0.1 .. 0.5: near the start, as LongRoPE2).
  std::vector<double> depths;
  std::uint64_t seed = 0;        ///< keys and numbers.
};

/// One window: its tokens and the answer spans [begin, end) (token indices).
struct needle_window {
  std::vector<int> tokens;
  std::vector<std::pair<std::int64_t, std::int64_t>> answers;
  std::vector<std::string> keys, values;
};

namespace detail_needle {
inline const char* const kIntro =
    "A special magic number is hidden within the following text. Make sure to memorize it. "
    "I will quiz you about the magic number afterwards.";
inline const char* const kWords[16] = {"apple",  "river",  "garden", "window", "castle", "forest",
                                       "rocket", "pencil", "ocean",  "dragon", "candle", "mirror",
                                       "planet", "flower", "bridge", "tiger"};
}  // namespace detail_needle

namespace detail_needle {
/// Depths of opt, defaulted and validated (see needle_options).
inline std::vector<double> checked_depths(const needle_options& opt) {
  if (opt.keys < 1 || opt.keys > 16) LONGROPE_THROW("longrope.argument", "needle keys: must be in [1, 16]");
  std::vector<double> depths = opt.depths;
  if (depths.empty()) {
    for (int j = 0; j < opt.keys; ++j) depths.push_back(opt.keys == 1 ? 0.1 : 0.1 + 0.4 * j / (opt.keys - 1));
  }
  if (static_cast<int>(depths.size()) != opt.keys) {
    LONGROPE_THROW("longrope.argument", "needle depths: expected " + std::to_string(opt.keys) + " values, got " +
                                            std::to_string(depths.size()));
  }
  for (double d : depths) {
    if (!(d >= 0.0 && d <= 1.0)) LONGROPE_THROW("longrope.argument", "needle depths: must be in [0, 1]");
  }
  return depths;
}
}  // namespace detail_needle

/// Tokens a window needs besides its text, at most, for `keys` needles: BOS,
/// the intro and, per key, needle + question + answer with the longest key
/// word (7-digit numbers have one length for digit-splitting tokenizers).
/// O(16 * encode).
inline std::int64_t needle_max_fixed_tokens(const tokenizer& tok, int keys) {
  auto n = [&](const std::string& s) { return static_cast<std::int64_t>(tok.encode(s, false, false).size()); };
  std::int64_t per_key = 0;
  for (const char* k : detail_needle::kWords) {
    const std::string w = k;
    per_key = std::max(per_key, n("One of the special magic numbers for " + w + " is: 1234567.") +
                                    n("What is the special magic number for " + w +
                                      " mentioned in the provided text? The special magic number for " + w +
                                      " mentioned in the provided text is") +
                                    n("1234567."));
  }
  return 1 + n(detail_needle::kIntro) + keys * per_key;
}

/// One window of opt.context tokens with opt.keys needles at `depths` (already
/// validated, see needle_options): keys and numbers drawn from `rng` (the
/// order make_needle_windows documents), its H text tokens appended by
/// take_text(tokens, n, H), called in order with n summing to H (each call
/// must append n tokens or throw).
/// Shared by the fitness (make_needle_windows) and training
/// (passkey_mix_source's needle format), so both see the same task.
/// Throws longrope::error ("longrope.argument") when the context cannot hold
/// the needles and questions (naming the minimum). O(context).
template <class TakeText>
needle_window make_needle_window(const tokenizer& tok, const needle_options& opt, const std::vector<double>& depths,
                                 longrope::search_rng& rng, TakeText&& take_text) {
  auto enc = [&](const std::string& s) { return tok.encode(s, false, false); };
  const auto intro = enc(detail_needle::kIntro);
  needle_window win;
  std::vector<int> order(16);
  for (int i = 0; i < 16; ++i) order[static_cast<std::size_t>(i)] = i;
  for (int i = 0; i < opt.keys; ++i) {  // partial Fisher-Yates: distinct words
    const auto j = i + static_cast<int>(longrope::uniform_index(rng, static_cast<std::uint64_t>(16 - i)));
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
    win.keys.push_back(detail_needle::kWords[order[static_cast<std::size_t>(i)]]);
    win.values.push_back(std::to_string(1000000 + longrope::uniform_index(rng, 9000000)));
  }
  std::vector<std::vector<int>> needles, questions, answers;
  std::int64_t fixed = 1 + static_cast<std::int64_t>(intro.size());
  for (int j = 0; j < opt.keys; ++j) {
    const auto& k = win.keys[static_cast<std::size_t>(j)];
    const auto& v = win.values[static_cast<std::size_t>(j)];
    // encode() adds run.c's dummy prefix " ", so every piece starts with a space.
    needles.push_back(enc("One of the special magic numbers for " + k + " is: " + v + "."));
    questions.push_back(enc("What is the special magic number for " + k +
                            " mentioned in the provided text? The special magic number for " + k +
                            " mentioned in the provided text is"));
    answers.push_back(enc(v + "."));
    fixed += static_cast<std::int64_t>(needles.back().size() + questions.back().size() + answers.back().size());
  }
  const std::int64_t h = opt.context - fixed;
  if (h < 1) {
    LONGROPE_THROW("longrope.argument", "needle context: " + std::to_string(opt.context) + " tokens cannot hold " +
                                            std::to_string(opt.keys) + " needle(s) and questions (need > " +
                                            std::to_string(fixed) + ")");
  }
  // Needles in depth order (stable for equal depths); text split at floor(depth * h).
  std::vector<int> by_depth(static_cast<std::size_t>(opt.keys));
  for (int j = 0; j < opt.keys; ++j) by_depth[static_cast<std::size_t>(j)] = j;
  std::stable_sort(by_depth.begin(), by_depth.end(),
                   [&](int a, int b) { return depths[static_cast<std::size_t>(a)] < depths[static_cast<std::size_t>(b)]; });
  auto& t = win.tokens;
  t.reserve(static_cast<std::size_t>(opt.context));
  t.push_back(kBos);
  t.insert(t.end(), intro.begin(), intro.end());
  std::int64_t used = 0;
  auto text = [&](std::int64_t upto) {
    take_text(t, upto - used, h);
    used = upto;
  };
  for (int j : by_depth) {
    text(static_cast<std::int64_t>(depths[static_cast<std::size_t>(j)] * static_cast<double>(h)));
    t.insert(t.end(), needles[static_cast<std::size_t>(j)].begin(), needles[static_cast<std::size_t>(j)].end());
  }
  text(h);
  for (int j = 0; j < opt.keys; ++j) {
    const auto& q = questions[static_cast<std::size_t>(j)];
    const auto& a = answers[static_cast<std::size_t>(j)];
    t.insert(t.end(), q.begin(), q.end());
    const auto begin = static_cast<std::int64_t>(t.size());
    t.insert(t.end(), a.begin(), a.end() - 1);  // the closing "." is not part of the answer
    win.answers.emplace_back(begin, static_cast<std::int64_t>(t.size()));
    t.push_back(a.back());
  }
  return win;
}

/// `count` windows from text tokens haystack[first_token ..] (without BOS),
/// one search_rng(opt.seed) drawing every window's keys and numbers in turn.
/// Throws longrope::error ("longrope.argument") on keys outside [1, 16],
/// depths of the wrong count or outside [0, 1], a context too small for the
/// needles and questions (naming the minimum), or too little text (naming how
/// much is needed). O(count * context).
inline std::vector<needle_window> make_needle_windows(const tokenizer& tok, const std::vector<int>& haystack,
                                                      const needle_options& opt, std::int64_t count,
                                                      std::int64_t first_token = 0) {
  const std::vector<double> depths = detail_needle::checked_depths(opt);
  if (count < 1 || first_token < 0) LONGROPE_THROW("longrope.argument", "needle windows: count >= 1, offset >= 0");
  longrope::search_rng rng(opt.seed);
  std::vector<needle_window> out;
  std::int64_t pos = first_token;
  for (std::int64_t w = 0; w < count; ++w) {
    std::int64_t used = 0, text_len = 0;
    auto take = [&](std::vector<int>& t, std::int64_t n, std::int64_t h) {
      if (pos + h > static_cast<std::int64_t>(haystack.size())) {
        LONGROPE_THROW("longrope.argument", "needle text too short: " + std::to_string(count) +
                                                " window(s) from token " + std::to_string(first_token) +
                                                " need about " + std::to_string(first_token + count * h) +
                                                " text tokens, have " + std::to_string(haystack.size()));
      }
      const auto b = haystack.begin() + static_cast<std::ptrdiff_t>(pos + used);
      t.insert(t.end(), b, b + static_cast<std::ptrdiff_t>(n));
      used += n;
      text_len = h;
    };
    out.push_back(make_needle_window(tok, opt, depths, rng, take));
    pos += text_len;
  }
  return out;
}

/// Needle loss of one configuration over a set of windows.
struct needle_result {
  double nll_sum = 0.0;        ///< sum of -log p over answer tokens.
  std::int64_t tokens = 0;     ///< answer tokens scored.
  std::int64_t hits = 0;       ///< answer tokens that are the argmax (teacher-forced).
  std::int64_t keys = 0;       ///< questions asked.
  std::int64_t keys_correct = 0;  ///< questions whose every answer token is the argmax.
  /// Mean answer-token NLL (the fitness, lower is better); NaN when nothing was scored.
  double loss() const noexcept { return tokens > 0 ? nll_sum / static_cast<double>(tokens) : std::nan(""); }
  /// Fraction of questions answered exactly by greedy (teacher-forced) reading.
  double accuracy() const noexcept { return keys > 0 ? static_cast<double>(keys_correct) / static_cast<double>(keys) : 0.0; }
};

/// The needle result of every configuration on the same windows, tasks
/// (config, window) on `threads` threads (0: hardware concurrency); sums in a
/// fixed order, so results do not depend on the thread count. Throws what the
/// forward throws. O(configs * windows * forward(context)).
template <class T>
std::vector<needle_result> evaluate_needle(const transformer<T>& model, const std::vector<needle_window>& windows,
                                           const std::vector<longrope::rope_frequencies>& configs, int threads = 1) {
  for (const auto& f : configs) model.check_frequencies(f);
  const std::size_t nw = windows.size();
  std::vector<needle_result> part(configs.size() * nw);
  const unsigned t = threads > 0 ? static_cast<unsigned>(threads) : std::max(1u, std::thread::hardware_concurrency());
  std::vector<workspace<T>> ws(t);
  std::vector<kv_cache<T>> cache(t);
  std::vector<matrix_rm<T>> logits(t);
  parallel_for(part.size(), static_cast<int>(t), [&](std::size_t task, unsigned id) {
    const std::size_t c = task / nw, w = task % nw;
    const auto& win = windows[w];
    cache[id].clear();
    model.forward(win.tokens.data(), static_cast<index_t>(win.tokens.size()), cache[id], configs[c], ws[id]);
    needle_result& r = part[task];
    for (const auto& span : win.answers) {
      bool all = true;
      for (std::int64_t i = span.first; i < span.second; ++i) {
        model.logits_rows(ws[id], static_cast<index_t>(i - 1), 1, logits[id]);
        const auto row = logits[id].row(0);
        index_t arg = 0;
        const T mx = row.maxCoeff(&arg);
        const T lse = mx + std::log((row.array() - mx).exp().sum());
        const int target = win.tokens[static_cast<std::size_t>(i)];
        r.nll_sum += static_cast<double>(lse - row(target));
        ++r.tokens;
        const bool hit = arg == static_cast<index_t>(target);
        r.hits += hit ? 1 : 0;
        all = all && hit;
      }
      ++r.keys;
      r.keys_correct += all ? 1 : 0;
    }
  });
  std::vector<needle_result> out(configs.size());
  for (std::size_t c = 0; c < configs.size(); ++c) {
    for (std::size_t w = 0; w < nw; ++w) {
      const auto& p = part[c * nw + w];
      out[c].nll_sum += p.nll_sum;
      out[c].tokens += p.tokens;
      out[c].hits += p.hits;
      out[c].keys += p.keys;
      out[c].keys_correct += p.keys_correct;
    }
  }
  return out;
}

// Compiled once, in the longrope_toymodel library (models/src/); other
// scalar types are instantiated where they are used.
extern template std::vector<needle_result> evaluate_needle(const transformer<float>&,
                                                           const std::vector<needle_window>&,
                                                           const std::vector<longrope::rope_frequencies>&,
                                                           int);

}  // namespace llama2c
