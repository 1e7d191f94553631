// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file train_loop.hpp
/// The fine-tuning loop shared by `longrope finetune` and the progressive
/// pipeline (`longrope extend`, pipeline.hpp): steps a trainer until its
/// schedule ends or a wall-time budget runs out, reporting every step and
/// saving every `save_every` steps.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "train.hpp"

namespace llama2c {

struct train_loop_options {
  double max_seconds = 0.0;     ///< stop after the step that crosses this many seconds (0: none).
  std::int64_t save_every = 0;  ///< call save() every K steps before the last (0: never).
  /// Mixed context window training (LongRoPE2): when set, each step is
  /// tr.step_mixed(src, f, *mixed_short) (short-window sequences with these
  /// frequencies, the original RoPE) instead of tr.step(src, f). Not owned.
  const longrope::rope_frequencies* mixed_short = nullptr;
};

struct train_loop_result {
  double first_loss = std::nan("");  ///< loss of the first step of this run.
  double last_loss = std::nan("");   ///< loss of its last step.
  std::vector<double> losses;        ///< every step's loss, in order.
  bool stopped_early = false;        ///< max_seconds ended the run.
  double seconds = 0.0;
};

/// Runs tr.step(src, f) (or step_mixed, see train_loop_options) until tr.step_count() reaches the schedule's steps
/// (a resumed trainer continues from its step). on_step(result, seconds since
/// the start, steps done in this run) after each step; save() every
/// save_every steps (not after the last: the caller saves at the end).
/// Throws what the trainer throws (a diverged step). O(steps * step cost).
template <class T>
train_loop_result run_train_loop(trainer<T>& tr, sequence_source& src, const longrope::rope_frequencies& f,
                                 const train_loop_options& o,
                                 const std::function<void(const step_result&, double, std::int64_t)>& on_step = {},
                                 const std::function<void()>& save = {}) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::int64_t start_step = tr.step_count(), steps = tr.options().steps;
  train_loop_result out;
  while (tr.step_count() < steps) {
    const step_result r = o.mixed_short != nullptr ? tr.step_mixed(src, f, *o.mixed_short) : tr.step(src, f);
    if (tr.step_count() == start_step + 1) out.first_loss = r.loss;
    out.last_loss = r.loss;
    out.losses.push_back(r.loss);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (on_step) on_step(r, secs, tr.step_count() - start_step);
    if (save && o.save_every > 0 && tr.step_count() % o.save_every == 0 && tr.step_count() < steps) save();
    if (o.max_seconds > 0.0 && secs >= o.max_seconds) {
      out.stopped_early = true;  // as `finetune` always reported it, even on the last step
      break;
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

// Compiled once, in the longrope_toymodel library (models/src/); other
// scalar types are instantiated where they are used.
extern template train_loop_result run_train_loop(
    trainer<float>&, sequence_source&, const longrope::rope_frequencies&, const train_loop_options&,
    const std::function<void(const step_result&, double, std::int64_t)>&, const std::function<void()>&);

}  // namespace llama2c
