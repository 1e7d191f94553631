// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file perplexity.hpp
/// Perplexity with the LongRoPE paper's protocol, on any number of threads.
///
/// The token stream (without BOS) is cut into consecutive windows of N tokens:
/// window w is BOS followed by stream[w (N-1) .. (w+1)(N-1)). Every token after
/// BOS is predicted from its prefix inside the window, so a window scores N-1
/// tokens, and
///     perplexity = exp( sum of -log p over every scored token of every window
///                       / number of scored tokens ).
/// (All windows have the same length, so this equals the paper's exp of the
/// mean of per-document mean NLLs.)
///
/// Evaluation runs (configuration, window) tasks on a pool of std::threads,
/// each with its own workspace and KV cache; sums are formed in a fixed order,
/// so results do not depend on the thread count.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <longrope/checked.hpp>
#include <longrope/frequencies.hpp>

#include "tokenizer.hpp"
#include "transformer.hpp"

namespace llama2c {

/// Number of whole windows of `context` tokens in a stream of n tokens.
inline std::int64_t window_count(std::int64_t n, std::int64_t context) noexcept {
  return context >= 2 ? n / (context - 1) : 0;
}

/// The windows [first, first + count) of the protocol above. count = 0 means
/// every whole window from `first` on. Throws longrope::error
/// ("longrope.argument") when context < 2 or the stream lacks `first + count`
/// whole windows (at least one), naming how many tokens were needed.
/// O(count * context).
inline std::vector<std::vector<int>> make_windows(const std::vector<int>& stream, std::int64_t context,
                                                  std::int64_t count = 0, std::int64_t first = 0) {
  if (context < 2) LONGROPE_THROW("longrope.argument", "context: must be >= 2, got " + std::to_string(context));
  if (count < 0 || first < 0) LONGROPE_THROW("longrope.argument", "windows: count and first must be >= 0");
  const std::int64_t have = window_count(static_cast<std::int64_t>(stream.size()), context);
  if (count == 0) count = std::max<std::int64_t>(have - first, 0);
  // Every product and sum of user numbers is overflow-checked (issue 9): a
  // wrapped first + count once passed this test and read past the stream.
  const std::int64_t wanted = longrope::checked_add(first, std::max<std::int64_t>(count, 1), "windows: first + count");
  if (count < 1 || wanted > have) {
    const std::int64_t need = longrope::checked_mul(wanted, context - 1, "windows: (first + count) * (context - 1) tokens");
    LONGROPE_THROW("longrope.argument", "text too short: " + std::to_string(wanted) + " window(s) of " +
                                            std::to_string(context) + " tokens need " + std::to_string(need) +
                                            " stream tokens, the text has " + std::to_string(stream.size()));
  }
  std::vector<std::vector<int>> w(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    auto& win = w[static_cast<std::size_t>(i)];
    win.reserve(static_cast<std::size_t>(context));
    win.push_back(kBos);
    const auto begin = stream.begin() + static_cast<std::ptrdiff_t>((first + i) * (context - 1));
    win.insert(win.end(), begin, begin + static_cast<std::ptrdiff_t>(context - 1));
  }
  return w;
}

/// Summed negative log-likelihood over a set of windows.
struct perplexity_result {
  double nll_sum = 0.0;          ///< sum of -log p (natural log) over scored tokens.
  std::int64_t tokens = 0;       ///< scored tokens: windows * (context - 1).
  std::int64_t windows = 0;
  /// exp(nll_sum / tokens); NaN when nothing was scored.
  double perplexity() const noexcept {
    return tokens > 0 ? std::exp(nll_sum / static_cast<double>(tokens)) : std::nan("");
  }
};

/// Runs task(i, thread_index) for i in [0, n) on `threads` threads (0: the
/// hardware concurrency), the calling thread included. The first exception
/// thrown by a task stops the remaining tasks and is rethrown.
template <class F>
void parallel_for(std::size_t n, int threads, F&& task) {
  unsigned t = threads > 0 ? static_cast<unsigned>(threads) : std::max(1u, std::thread::hardware_concurrency());
  t = static_cast<unsigned>(std::min<std::size_t>(t, n));
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mutex;
  auto worker = [&](unsigned id) {
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= n || failed.load()) return;
      try {
        task(i, id);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned k = 1; k < t; ++k) pool.emplace_back(worker, k);
  worker(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

/// Perplexity of every configuration in `configs` over the same windows:
/// result[c] sums configs[c]'s NLL over all windows. Tasks are (config, window)
/// pairs spread over `threads` threads (0: hardware concurrency).
/// Throws what the forward throws (bad tokens, frequencies that do not fit).
/// O(configs * windows * forward(context)).
template <class T>
std::vector<perplexity_result> evaluate_perplexity(const transformer<T>& model,
                                                   const std::vector<std::vector<int>>& windows,
                                                   const std::vector<longrope::rope_frequencies>& configs,
                                                   int threads = 1) {
  for (const auto& f : configs) model.check_frequencies(f);
  for (const auto& w : windows) {
    if (w.size() < 2) LONGROPE_THROW("longrope.argument", "evaluate_perplexity: a window needs at least 2 tokens");
  }
  const std::size_t nw = windows.size();
  std::vector<double> nll(configs.size() * nw, 0.0);
  // Threads beyond the work would only allocate idle workspaces and caches.
  const unsigned t = static_cast<unsigned>(std::max<std::size_t>(
      1, std::min<std::size_t>(nll.size(), threads > 0 ? static_cast<unsigned>(threads)
                                                       : std::max(1u, std::thread::hardware_concurrency()))));
  std::vector<workspace<T>> ws(t);
  std::vector<kv_cache<T>> cache(t);
  parallel_for(nll.size(), static_cast<int>(t), [&](std::size_t task, unsigned id) {
    const std::size_t c = task / nw, w = task % nw;
    const auto& win = windows[w];
    nll[task] = model.sequence_nll(win.data(), static_cast<index_t>(win.size()), configs[c], cache[id], ws[id]);
  });
  std::vector<perplexity_result> out(configs.size());
  for (std::size_t c = 0; c < configs.size(); ++c) {
    for (std::size_t w = 0; w < nw; ++w) {
      out[c].nll_sum += nll[c * nw + w];
      out[c].tokens += static_cast<std::int64_t>(windows[w].size()) - 1;
    }
    out[c].windows = static_cast<std::int64_t>(nw);
  }
  return out;
}

/// One configuration.
template <class T>
perplexity_result evaluate_perplexity(const transformer<T>& model, const std::vector<std::vector<int>>& windows,
                                      const longrope::rope_frequencies& f, int threads = 1) {
  return evaluate_perplexity(model, windows, std::vector<longrope::rope_frequencies>{f}, threads).front();
}

// Compiled once, in the longrope_toymodel library (models/src/); other
// scalar types are instantiated where they are used.
extern template std::vector<perplexity_result> evaluate_perplexity(
    const transformer<float>&, const std::vector<std::vector<int>>&,
    const std::vector<longrope::rope_frequencies>&, int);
extern template std::vector<perplexity_result> evaluate_perplexity(
    const transformer<double>&, const std::vector<std::vector<int>>&,
    const std::vector<longrope::rope_frequencies>&, int);
extern template perplexity_result evaluate_perplexity(const transformer<float>&,
                                                      const std::vector<std::vector<int>>&,
                                                      const longrope::rope_frequencies&, int);
extern template perplexity_result evaluate_perplexity(const transformer<double>&,
                                                      const std::vector<std::vector<int>>&,
                                                      const longrope::rope_frequencies&, int);

}  // namespace llama2c
