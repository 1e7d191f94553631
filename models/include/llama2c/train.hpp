// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file train.hpp
/// Fine-tuning a llama2.c model: AdamW with linear warm-up and cosine or
/// linear decay, global-norm gradient clipping, gradient accumulation, and
/// threads over the rows of a batch (docs/training.md).
///
/// One optimizer step takes batch * accumulation sequences from a
/// sequence_source; the loss is the mean next-token NLL over all their
/// predicted tokens. Row b of micro-batch a goes to thread b % threads, each
/// thread sums its rows' gradients in order into its own buffer, and the
/// buffers are added in thread order: for a given thread count the result is
/// the same on every run (a different count changes the summation order, so
/// the last bits). Everything a step depends on (weights, moments, step,
/// the source's state) is in the training-state file (train_state.hpp), so a
/// resumed run is bit-identical to an uninterrupted one.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <longrope/error.hpp>
#include <longrope/frequencies.hpp>

#include "backward.hpp"
#include "train_data.hpp"

namespace llama2c {

enum class lr_decay { cosine, linear, constant };

inline lr_decay parse_lr_decay(const std::string& s) {
  if (s == "cosine") return lr_decay::cosine;
  if (s == "linear") return lr_decay::linear;
  if (s == "constant") return lr_decay::constant;
  LONGROPE_THROW("longrope.argument", "decay: expected cosine, linear or constant, got '" + s + "'");
}
inline const char* to_string(lr_decay d) noexcept {
  return d == lr_decay::cosine ? "cosine" : d == lr_decay::linear ? "linear" : "constant";
}

struct train_options {
  std::int64_t steps = 100;      ///< optimizer steps of the schedule.
  int batch = 1;                 ///< sequences per micro-batch.
  int accumulation = 1;          ///< micro-batches per step.
  int threads = 1;               ///< threads over batch rows (>= 1).
  double lr = 1e-3;              ///< peak learning rate.
  double min_lr = 0.0;           ///< learning rate at the end of the decay.
  std::int64_t warmup = 0;       ///< linear warm-up steps (lr (s+1)/warmup).
  lr_decay decay = lr_decay::cosine;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.0;     ///< AdamW decoupled decay, matrices only (not RMSNorm gains).
  double clip = 1.0;             ///< global gradient-norm clip (0: off).
  bool doc_mask = false;         ///< attention does not cross BOS boundaries.

  /// Throws longrope::error ("longrope.argument") naming the bad field.
  void validate() const {
    auto bad = [](const std::string& m) { LONGROPE_THROW("longrope.argument", m); };
    if (steps < 1) bad("steps: must be >= 1");
    if (batch < 1 || batch > 4096) bad("batch: must be in [1, 4096]");
    if (accumulation < 1 || accumulation > 4096) bad("accumulation: must be in [1, 4096]");
    if (threads < 1 || threads > 1024) bad("threads: must be in [1, 1024]");
    if (!(lr > 0.0) || !std::isfinite(lr)) bad("lr: must be finite and > 0");
    if (!(min_lr >= 0.0) || min_lr > lr) bad("min_lr: must be in [0, lr]");
    if (warmup < 0) bad("warmup: must be >= 0");
    if (!(beta1 >= 0.0 && beta1 < 1.0) || !(beta2 >= 0.0 && beta2 < 1.0)) bad("betas: must be in [0, 1)");
    if (!(eps > 0.0)) bad("eps: must be > 0");
    if (!(weight_decay >= 0.0) || !std::isfinite(weight_decay)) bad("weight_decay: must be finite and >= 0");
    if (!(clip >= 0.0) || !std::isfinite(clip)) bad("clip: must be finite and >= 0");
  }
};

/// The learning rate of step s (0-based): lr (s+1)/warmup during warm-up,
/// then decaying from lr to min_lr over the remaining steps. O(1).
inline double learning_rate(const train_options& o, std::int64_t s) {
  if (s < o.warmup) return o.lr * static_cast<double>(s + 1) / static_cast<double>(o.warmup);
  const std::int64_t span = std::max<std::int64_t>(1, o.steps - o.warmup);
  const double t = std::min(1.0, static_cast<double>(s - o.warmup) / static_cast<double>(span));
  switch (o.decay) {
    case lr_decay::cosine: return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + std::cos(3.14159265358979323846 * t));
    case lr_decay::linear: return o.lr + (o.min_lr - o.lr) * t;
    case lr_decay::constant: return o.lr;
  }
  return o.lr;
}

struct step_result {
  double loss = 0;        ///< mean NLL of the step's predicted tokens (before the update).
  double lr = 0;
  double grad_norm = 0;   ///< before clipping.
  std::int64_t tokens = 0;  ///< predicted tokens in the step.
};

template <class T>
class trainer {
 public:
  /// Copies the checkpoint's weights; zero moments, step 0.
  trainer(const checkpoint& ck, const train_options& o);

  const transformer<T>& model() const noexcept { return model_; }
  transformer<T>& model() noexcept { return model_; }
  /// The gradient of the last gradient()/step() call (before clipping).
  const transformer<T>& gradient_holder() const noexcept { return grad_; }
  const train_options& options() const noexcept { return opt_; }
  std::int64_t step_count() const noexcept { return step_; }
  std::int64_t tokens_seen() const noexcept { return tokens_seen_; }
  std::vector<T>& first_moment() noexcept { return m_; }
  std::vector<T>& second_moment() noexcept { return v_; }
  void set_progress(std::int64_t step, std::int64_t tokens) noexcept {
    step_ = step;
    tokens_seen_ = tokens;
  }
  /// Peak bytes of the per-thread buffers so far (activations included).
  std::size_t workspace_bytes() const noexcept {
    std::size_t b = 0;
    for (const auto& w : ws_) b += w.bytes();
    return b;
  }

  /// grad_ = gradient of (sum of the sequences' NLL) * scale; returns the
  /// summed NLL. Sequences may have different lengths (>= 2 tokens each).
  double gradient(const std::vector<std::vector<int>>& seqs, const longrope::rope_frequencies& f, T scale) {
    zero(grad_);
    return accumulate(seqs, f, scale);
  }

  /// One optimizer step on batch * accumulation sequences from `src`, whose
  /// RoPE frequencies are `f`. Throws what the forward throws.
  step_result step(sequence_source& src, const longrope::rope_frequencies& f) { return step_with(src, f, nullptr); }

  /// Mixed context window training (LongRoPE2; mixed_window.hpp): as step(),
  /// but each sequence the source marks short_window() is trained with
  /// `f_short` (the original RoPE) under the document mask, the others with
  /// `f_long` (and the document mask only when options().doc_mask). A step
  /// whose sequences are all long equals step(src, f_long) bit for bit; one
  /// whose sequences are all short equals step(src, f_short) with doc_mask on.
  step_result step_mixed(sequence_source& src, const longrope::rope_frequencies& f_long,
                         const longrope::rope_frequencies& f_short) {
    return step_with(src, f_long, &f_short);
  }
  /// Short-window sequences trained by step_mixed() in this process.
  std::int64_t short_sequences_seen() const noexcept { return short_seen_; }

 private:
  // step() (f_short null: every sequence with f) and step_mixed() (a sequence
  // the source marks short_window() with *f_short under the document mask).
  step_result step_with(sequence_source& src, const longrope::rope_frequencies& f,
                        const longrope::rope_frequencies* f_short);

  /// The source's target weights for its last sequence (empty: all 1).
  static void take_weights(const sequence_source& src, std::vector<T>& out);

  step_result finish_step(double nll, std::int64_t tokens);

  static void zero(transformer<T>& g);

  double accumulate(const std::vector<std::vector<int>>& seqs, const longrope::rope_frequencies& f, T scale);

  /// Sequence i with frequencies *fs[i], under the document mask when masked[i].
  double accumulate(const std::vector<std::vector<int>>& seqs,
                    const std::vector<const longrope::rope_frequencies*>& fs, const std::vector<char>& masked,
                    T scale, const std::vector<std::vector<T>>* weights = nullptr);

  static void add_into(transformer<T>& dst, const transformer<T>& src);

  /// Clips grad_, applies AdamW with learning rate lr; returns the norm.
  double apply_update(double lr);

  train_options opt_;
  transformer<T> model_;
  transformer<T> grad_;
  std::vector<transformer<T>> thread_grads_;
  std::vector<train_workspace<T>> ws_;
  std::vector<T> m_, v_;
  std::int64_t step_ = 0, tokens_seen_ = 0, short_seen_ = 0;
};

template <class T>
trainer<T>::trainer(const checkpoint& ck, const train_options& o) : opt_(o), model_(ck), grad_(ck) {
  opt_.validate();
  m_.assign(model_.parameter_count(), T(0));
  v_.assign(m_.size(), T(0));
  thread_grads_.reserve(static_cast<std::size_t>(opt_.threads));
  for (int t = 0; t < opt_.threads; ++t) thread_grads_.emplace_back(ck);
  ws_.resize(static_cast<std::size_t>(opt_.threads));
}

template <class T>
step_result trainer<T>::step_with(sequence_source& src, const longrope::rope_frequencies& f,
                                  const longrope::rope_frequencies* f_short) {
  const std::int64_t len = src.length();
  const std::int64_t per_step = static_cast<std::int64_t>(opt_.batch) * opt_.accumulation;
  const T scale = T(1) / static_cast<T>(per_step * (len - 1));
  zero(grad_);
  double nll = 0.0;
  std::vector<std::vector<int>> seqs(static_cast<std::size_t>(opt_.batch));
  std::vector<std::vector<T>> weights(seqs.size());
  std::vector<const longrope::rope_frequencies*> fs(seqs.size(), &f);
  std::vector<char> masked(seqs.size(), opt_.doc_mask ? 1 : 0);
  for (int a = 0; a < opt_.accumulation; ++a) {
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      src.next(seqs[i]);
      take_weights(src, weights[i]);
      if (f_short != nullptr) {
        const bool s = src.short_window();
        fs[i] = s ? f_short : &f;
        masked[i] = s || opt_.doc_mask ? 1 : 0;
        short_seen_ += s ? 1 : 0;
      }
    }
    nll += accumulate(seqs, fs, masked, scale, &weights);
  }
  return finish_step(nll, per_step * (len - 1));
}

template <class T>
void trainer<T>::take_weights(const sequence_source& src, std::vector<T>& out) {
  out.clear();
  if (const auto* w = src.target_weights()) {
    if (static_cast<std::int64_t>(w->size()) != src.length() - 1) {
      LONGROPE_THROW("longrope.argument", "training source: target weights do not match the sequence length");
    }
    for (float x : *w) {
      if (!(x >= 0.0f) || !std::isfinite(x))
        LONGROPE_THROW("longrope.argument", "training source: bad target weight");
      out.push_back(static_cast<T>(x));
    }
  }
}

template <class T>
step_result trainer<T>::finish_step(double nll, std::int64_t tokens) {
  step_result r;
  r.tokens = tokens;
  r.loss = nll / static_cast<double>(r.tokens);
  r.lr = learning_rate(opt_, step_);
  r.grad_norm = apply_update(r.lr);
  ++step_;
  tokens_seen_ += r.tokens;
  return r;
}

template <class T>
void trainer<T>::zero(transformer<T>& g) {
  g.for_each_tensor([](const char*, T* p, index_t n, bool) { std::fill(p, p + n, T(0)); });
}

template <class T>
double trainer<T>::accumulate(const std::vector<std::vector<int>>& seqs, const longrope::rope_frequencies& f,
                              T scale) {
  return accumulate(seqs, std::vector<const longrope::rope_frequencies*>(seqs.size(), &f),
                    std::vector<char>(seqs.size(), opt_.doc_mask ? 1 : 0), scale);
}

template <class T>
double trainer<T>::accumulate(const std::vector<std::vector<int>>& seqs,
                              const std::vector<const longrope::rope_frequencies*>& fs,
                              const std::vector<char>& masked, T scale,
                              const std::vector<std::vector<T>>* weights) {
  const int nt = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(opt_.threads), seqs.size()));
  std::vector<double> nll(static_cast<std::size_t>(std::max(nt, 1)), 0.0);
  std::vector<std::exception_ptr> err(nll.size());
  auto work = [&](int t) {
    try {
      transformer<T>& g = thread_grads_[static_cast<std::size_t>(t)];
      zero(g);
      for (std::size_t i = static_cast<std::size_t>(t); i < seqs.size(); i += static_cast<std::size_t>(nt)) {
        const auto& s = seqs[i];
        const index_t m = static_cast<index_t>(s.size());
        std::vector<index_t> starts;
        if (masked[i]) starts = document_starts(s.data(), m - 1);
        const T* wt = weights && !(*weights)[i].empty() ? (*weights)[i].data() : nullptr;
        nll[static_cast<std::size_t>(t)] +=
            backward_pass<T>::loss_and_grad(model_, s.data(), m, *fs[i], masked[i] ? starts.data() : nullptr,
                                            scale, g, ws_[static_cast<std::size_t>(t)], wt);
      }
    } catch (...) {
      err[static_cast<std::size_t>(t)] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < nt; ++t) pool.emplace_back(work, t);
  if (nt > 0) work(0);
  for (auto& th : pool) th.join();
  for (auto& e : err) {
    if (e) std::rethrow_exception(e);
  }
  double total = 0.0;
  for (int t = 0; t < nt; ++t) {
    total += nll[static_cast<std::size_t>(t)];
    add_into(grad_, thread_grads_[static_cast<std::size_t>(t)]);
  }
  return total;
}

template <class T>
void trainer<T>::add_into(transformer<T>& dst, const transformer<T>& src) {
  std::vector<std::pair<const T*, index_t>> parts;
  src.for_each_tensor([&](const char*, const T* p, index_t n, bool) { parts.emplace_back(p, n); });
  std::size_t k = 0;
  dst.for_each_tensor([&](const char*, T* p, index_t n, bool) {
    const T* q = parts[k++].first;
    for (index_t i = 0; i < n; ++i) p[i] += q[i];
  });
}

template <class T>
double trainer<T>::apply_update(double lr) {
  double sq = 0.0;
  grad_.for_each_tensor([&](const char*, const T* p, index_t n, bool) {
    for (index_t i = 0; i < n; ++i) sq += static_cast<double>(p[i]) * static_cast<double>(p[i]);
  });
  const double norm = std::sqrt(sq);
  if (!std::isfinite(norm)) LONGROPE_THROW("longrope.numeric", "training diverged: non-finite gradient");
  const T gscale = static_cast<T>(opt_.clip > 0.0 && norm > opt_.clip ? opt_.clip / norm : 1.0);
  std::vector<const T*> gp;
  grad_.for_each_tensor([&](const char*, const T* p, index_t, bool) { gp.push_back(p); });
  const double t = static_cast<double>(step_ + 1);
  const T b1 = static_cast<T>(opt_.beta1), b2 = static_cast<T>(opt_.beta2);
  const T c1 = static_cast<T>(1.0 / (1.0 - std::pow(opt_.beta1, t)));
  const T c2 = static_cast<T>(1.0 / (1.0 - std::pow(opt_.beta2, t)));
  const T step_lr = static_cast<T>(lr), eps = static_cast<T>(opt_.eps),
          wd = static_cast<T>(opt_.weight_decay);
  std::size_t k = 0, off = 0;
  model_.for_each_tensor([&](const char*, T* p, index_t n, bool is_matrix) {
    const T* g = gp[k++];
    T* m = m_.data() + off;
    T* v = v_.data() + off;
    for (index_t i = 0; i < n; ++i) {
      const T gi = g[i] * gscale;
      m[i] = b1 * m[i] + (T(1) - b1) * gi;
      v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
      const T upd = (m[i] * c1) / (std::sqrt(v[i] * c2) + eps);
      p[i] -= step_lr * (upd + (is_matrix ? wd * p[i] : T(0)));
    }
    off += static_cast<std::size_t>(n);
  });
  return norm;
}

// Compiled once, in the longrope_toymodel library (models/src/).
extern template class trainer<float>;
extern template class trainer<double>;

}  // namespace llama2c
