// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file pipeline.hpp
/// The paper's progressive extension at toy scale (`longrope extend`,
/// docs/pipeline.md), as resumable stages in a work directory:
///
///   search1   LongRoPE search at mid_context (4x) on the base model
///   finetune  fine-tune the base model at mid_context with search1's factors
///   search2   search at long_context (16x) on the fine-tuned model, seeded
///             with search1's factors (totals relative to the original RoPE)
///   short     short-window readjustment: short factors at L0 on the
///             fine-tuned model, grid [1, short_lambda_max], n_hat 0,
///             seeded with the identity (and, with short_seed_finetune,
///             search1's factors clipped to the grid: the model was tuned
///             with them)
///   pi-ft, yarn-ft  baselines: the base model fine-tuned for the same steps
///             on the same data at mid_context with PI / YaRN
///   search-base     LongRoPE searched at long_context on the base model
///             (the no-fine-tuning row at 16x)
///   evaluate  held-out perplexity of every method at every eval length
///
/// The searches go through longrope::run_progressive with the in-process
/// perplexity fitness (the one llama2c::search_factors uses); the fine-tunes
/// through run_train_loop. Data: the token stream is cut into disjoint
/// ranges: fine-tuning [0, n/4) (or the caller's finetune_tokens), search
/// windows [n/4, n/2), held-out evaluation [n/2, n).
///
/// Every finished stage is written atomically to DIR/stage-NAME.json (after
/// its checkpoint, if any, DIR/NAME.bin); a run finds the finished stages and
/// continues at the first missing one, so a killed run ends with the same
/// result as an uninterrupted one (everything is deterministic for the seeds
/// and thread counts; stage files hold the options' fingerprint and a run
/// with other options refuses the directory). Errors: longrope::error with
/// id "longrope.pipeline" (work directory problems) or what the search,
/// trainer and forward throw.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/error.hpp>
#include <longrope/io.hpp>
#include <longrope/json.hpp>
#include <longrope/search.hpp>

#include "checkpoint_writer.hpp"
#include "extension.hpp"
#include "train_data.hpp"
#include "train_loop.hpp"
#include "validated_search.hpp"

namespace llama2c {

struct pipeline_options {
  std::int64_t mid_context = 2048;    ///< search1 and fine-tuning length (paper: 4x L0).
  std::int64_t long_context = 8192;   ///< search2 length (paper: 16x L0).
  double short_lambda_max = 1.25;     ///< grid top of the short-window stage.
  /// Also seed the short stage with search1's factors (the fine-tuning
  /// factors) clipped to [1, short_lambda_max]; false: the identity only.
  bool short_seed_finetune = false;
  std::int64_t short_windows = 0;  ///< windows per short-stage candidate (0: search_windows).
  /// The fine-tuning tokens (no BOS) of every fine-tune; empty: the stream's
  /// [0, n/4). E.g. a model's whole pre-training text, where a quarter of the
  /// stream would be repeated for many epochs and overfit.
  std::vector<int> finetune_tokens;
  longrope::search_options search;    ///< P, N1, N2, k, T, seed, threads of every search.
  bool search_n_hat = true;           ///< long searches also search n_hat.
  std::int64_t search_windows = 1;    ///< windows per candidate, from [n/4, n/2).
  std::int64_t eval_windows = 2;      ///< held-out windows per length, from [n/2, n).
  train_options train;                ///< the fine-tunes (every method the same).
  std::uint64_t data_seed = 0;        ///< fine-tuning data order.
  bool baselines = true;              ///< run pi-ft, yarn-ft and search-base.
  std::vector<std::int64_t> eval_lengths;  ///< default {L0, mid_context, long_context}.
  std::string until;                  ///< stop after this stage (empty: run all).
};

/// Every stage, in order (baselines omitted when !o.baselines).
inline std::vector<std::string> pipeline_stages(const pipeline_options& o) {
  std::vector<std::string> s = {"search1", "finetune", "search2", "short"};
  if (o.baselines) s.insert(s.end(), {"pi-ft", "yarn-ft", "search-base"});
  s.push_back("evaluate");
  return s;
}

namespace detail {

[[noreturn]] inline void pipeline_fail(const std::string& m) { LONGROPE_THROW("longrope.pipeline", m); }

inline std::uint64_t fnv1a(const std::vector<int>& v) {
  std::uint64_t h = 1469598103934665603ull;
  for (int x : v) {
    for (int b = 0; b < 4; ++b) {
      h ^= static_cast<std::uint64_t>((static_cast<unsigned>(x) >> (8 * b)) & 0xffu);
      h *= 1099511628211ull;
    }
  }
  return h;
}

inline nlohmann::json point_json(const longrope::search_point& p) { return {{"factors", p.factors}, {"n_hat", p.n_hat}}; }

inline longrope::search_point point_from(const nlohmann::json& j, const std::string& what, int pairs) {
  longrope::search_point p;
  if (!j.is_object() || !j.contains("factors") || !j["factors"].is_array() ||
      static_cast<int>(j["factors"].size()) != pairs || !j.contains("n_hat") || !j["n_hat"].is_number_integer()) {
    pipeline_fail(what + ": expected {\"factors\": [" + std::to_string(pairs) + " numbers], \"n_hat\": integer}");
  }
  for (const auto& v : j["factors"]) {
    if (!v.is_number() || !(v.get<double>() > 0.0)) pipeline_fail(what + ": factors must be numbers > 0");
    p.factors.push_back(v.get<double>());
  }
  p.n_hat = j["n_hat"].get<std::int64_t>();
  if (p.n_hat < 0) pipeline_fail(what + ": n_hat must be >= 0");
  return p;
}

}  // namespace detail

/// One run of the pipeline on `base` (L0 = its seq_len) and the token
/// stream `stream` (no BOS), in work directory `dir` (created if needed).
/// Returns the result JSON (also written to DIR/result.json when the
/// evaluate stage ran): options, every stage's record, the served factors
/// (long = search2, short = short stage) and their transformers rope_scaling,
/// and the held-out table. `log` gets progress lines.
class pipeline {
 public:
  pipeline(const checkpoint& base, std::vector<int> stream, std::string dir, pipeline_options o,
           std::function<void(const std::string&)> log = {})
      : base_ck_(base), base_(base), stream_(std::move(stream)), dir_(std::move(dir)), o_(std::move(o)),
        log_(std::move(log)) {
    const std::int64_t l0 = base.config.seq_len;
    if (o_.eval_lengths.empty()) o_.eval_lengths = {l0, o_.mid_context, o_.long_context};
    if (o_.mid_context <= l0 || o_.long_context < o_.mid_context) {
      detail::pipeline_fail("contexts: need L0 (" + std::to_string(l0) + ") < mid_context (" +
                            std::to_string(o_.mid_context) + ") <= long_context (" + std::to_string(o_.long_context) + ")");
    }
    if (!(o_.short_lambda_max >= 1.0)) detail::pipeline_fail("short_lambda_max: must be >= 1");
    if (o_.search_windows < 1 || o_.eval_windows < 1) detail::pipeline_fail("search_windows, eval_windows: must be >= 1");
    if (o_.short_windows < 0) detail::pipeline_fail("short_windows: must be >= 0 (0: search_windows)");
    if (!o_.finetune_tokens.empty() &&
        static_cast<std::int64_t>(o_.finetune_tokens.size()) <= o_.mid_context) {
      detail::pipeline_fail("finetune_tokens: " + std::to_string(o_.finetune_tokens.size()) +
                            " tokens; a fine-tuning sequence needs more than mid_context (" +
                            std::to_string(o_.mid_context) + ")");
    }
    const auto n = static_cast<std::int64_t>(stream_.size());
    std::int64_t longest = o_.long_context;
    for (std::int64_t L : o_.eval_lengths) {
      if (L < 2) detail::pipeline_fail("eval lengths: must be >= 2");
      longest = std::max(longest, L);
    }
    if (n / 4 < longest) {
      detail::pipeline_fail("text: " + std::to_string(n) + " tokens; the pipeline needs >= 4 x " +
                            std::to_string(longest) + " (search and held-out ranges of one window each)");
    }
    const auto stages = pipeline_stages(o_);
    if (!o_.until.empty() && std::find(stages.begin(), stages.end(), o_.until) == stages.end()) {
      std::string all;
      for (const auto& s : stages) all += (all.empty() ? "" : ", ") + s;
      detail::pipeline_fail("until: unknown stage '" + o_.until + "' (stages: " + all + ")");
    }
    o_.train.validate();
    fingerprint_ = options_json().dump();
  }

  /// The options, the model geometry and the data hash: what the stages
  /// depend on. The options added later (short_seed_finetune, short_windows,
  /// finetune_tokens) appear only when set, so work directories of earlier
  /// runs stay valid.
  nlohmann::json options_json() const {
    const auto& s = o_.search;
    nlohmann::json j = {{"l0", base_ck_.config.seq_len},
                        {"pairs", base_ck_.config.head_size() / 2},
                        {"mid_context", o_.mid_context},
                        {"long_context", o_.long_context},
                        {"short_lambda_max", o_.short_lambda_max},
                        {"search",
                         {{"population", s.population},
                          {"mutations", s.mutations},
                          {"crossovers", s.crossovers},
                          {"top_k", s.top_k},
                          {"iterations", s.iterations},
                          {"seed", s.seed}}},
                        {"search_n_hat", o_.search_n_hat},
                        {"search_windows", o_.search_windows},
                        {"eval_windows", o_.eval_windows},
                        {"train",
                         {{"steps", o_.train.steps},
                          {"batch", o_.train.batch},
                          {"accumulation", o_.train.accumulation},
                          {"threads", o_.train.threads},
                          {"lr", o_.train.lr},
                          {"min_lr", o_.train.min_lr},
                          {"warmup", o_.train.warmup},
                          {"decay", to_string(o_.train.decay)},
                          {"clip", o_.train.clip},
                          {"weight_decay", o_.train.weight_decay},
                          {"data_seed", o_.data_seed}}},
                        {"baselines", o_.baselines},
                        {"eval_lengths", o_.eval_lengths},
                        {"stream_tokens", stream_.size()},
                        {"stream_fnv1a", detail::fnv1a(stream_)}};
    if (o_.short_seed_finetune) j["short_seed"] = "finetune";
    if (o_.short_windows != 0) j["short_windows"] = o_.short_windows;
    if (!o_.finetune_tokens.empty()) {
      j["finetune_tokens"] = o_.finetune_tokens.size();
      j["finetune_fnv1a"] = detail::fnv1a(o_.finetune_tokens);
    }
    return j;
  }

  /// Runs the missing stages up to o.until (see the file comment).
  nlohmann::json run() {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec || !fs::is_directory(dir_)) detail::pipeline_fail(dir_ + ": cannot create the work directory");
    const auto all = pipeline_stages(o_);
    std::vector<std::string> todo;
    bool gap = false;
    for (const auto& name : all) {
      const bool have = load_stage(name);
      if (have && gap) {
        detail::pipeline_fail(stage_path(name) + ": finished, but an earlier stage is missing (a damaged work directory)");
      }
      if (!have) {
        gap = true;
        todo.push_back(name);
      }
    }
    if (!o_.until.empty()) {
      const auto stop = std::find(todo.begin(), todo.end(), o_.until);
      if (stop != todo.end()) todo.erase(stop + 1, todo.end());
      else todo.clear();  // already done
    }
    // Consecutive search stages on one model run as one run_progressive
    // call; the stages between them (fine-tuning) run in its callback.
    std::size_t i = 0;
    while (i < todo.size()) {
      if (!is_progressive_search(todo[i])) {
        run_plain(todo[i]);
        ++i;
        continue;
      }
      std::vector<std::string> chain = {todo[i]};
      std::size_t j = i + 1;
      while (j < todo.size()) {
        if (todo[j] == "short" && o_.short_seed_finetune) break;  // seeded from search1's file: alone
        if (is_progressive_search(todo[j])) {
          chain.push_back(todo[j]);
          ++j;
        } else if (todo[j] == "finetune" && j + 1 < todo.size() && is_progressive_search(todo[j + 1])) {
          ++j;  // runs between two chain stages
        } else {
          break;
        }
      }
      run_chain(chain);
      i = j;
    }
    return result();
  }

  const std::map<std::string, nlohmann::json>& stages() const noexcept { return done_; }

 private:
  static bool is_progressive_search(const std::string& n) { return n == "search1" || n == "search2" || n == "short"; }

  std::string stage_path(const std::string& name) const { return (std::filesystem::path(dir_) / ("stage-" + name + ".json")).string(); }
  std::string model_path(const std::string& name) const { return (std::filesystem::path(dir_) / (name + ".bin")).string(); }
  void say(const std::string& m) const {
    if (log_) log_(m);
  }
  int pairs() const { return base_ck_.config.head_size() / 2; }
  std::int64_t n() const { return static_cast<std::int64_t>(stream_.size()); }

  /// Reads DIR/stage-NAME.json if present: checks format, fingerprint and checkpoint.
  bool load_stage(const std::string& name) {
    const std::string p = stage_path(name);
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) return false;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(longrope::read_file(p));
    } catch (const nlohmann::json::exception& e) {
      detail::pipeline_fail(p + ": not valid JSON (" + std::string(e.what()) + "); delete it to rerun the stage");
    }
    if (!j.is_object() || j.value("format", "") != "longrope-extend-stage-1" || j.value("stage", "") != name ||
        !j.contains("record") || !j["record"].is_object()) {
      detail::pipeline_fail(p + ": not a stage file of stage '" + name + "'; delete it to rerun the stage");
    }
    if (!j.contains("fingerprint") || !j["fingerprint"].is_string() || j["fingerprint"].get<std::string>() != fingerprint_) {
      detail::pipeline_fail(p + ": written by a run with other options or data (see its \"fingerprint\"); use another "
                                "work directory or the same options");
    }
    const nlohmann::json& r = j["record"];
    if (r.contains("best")) (void)detail::point_from(r["best"], p + ": best", pairs());
    if (r.contains("checkpoint")) {
      if (!r["checkpoint"].is_string()) detail::pipeline_fail(p + ": checkpoint must be a file name");
      const std::string ck = (std::filesystem::path(dir_) / r["checkpoint"].get<std::string>()).string();
      if (!std::filesystem::exists(ck, ec)) {
        detail::pipeline_fail(p + ": its checkpoint " + ck + " is missing; delete " + p + " to rerun the stage");
      }
    }
    done_[name] = r;
    say("extend: stage " + name + " already done (" + p + ")");
    return true;
  }

  void save_stage(const std::string& name, const nlohmann::json& record) {
    const nlohmann::json j = {{"format", "longrope-extend-stage-1"}, {"stage", name}, {"fingerprint", fingerprint_},
                              {"record", record}};
    longrope::write_file_atomic(stage_path(name), j.dump(2) + "\n");
    done_[name] = record;
  }

  longrope::search_point best_of(const std::string& stage) const {
    return detail::point_from(done_.at(stage).at("best"), stage_path(stage) + ": best", pairs());
  }

  /// The model a stage runs on: the base model or a stage's checkpoint (loaded from disk).
  const transformer<float>& model_for(const std::string& stage) {
    if (stage == "search1" || stage == "search-base") return base_;
    if (!finetuned_) finetuned_.emplace(load_checkpoint(model_path("finetune")));
    return *finetuned_;
  }

  longrope::search_stage make_stage(const std::string& name) const {
    longrope::search_stage st;
    st.name = name;
    const std::int64_t ctx = name == "search1" ? o_.mid_context : name == "short" ? base_ck_.config.seq_len : o_.long_context;
    st.target = search_target_for(base_ck_.config, ctx);
    st.space = longrope::default_space_config(st.target);
    st.space.search_n_hat = o_.search_n_hat && name != "short";
    st.options = o_.search;
    st.seed_from_previous = name == "search2";  // search1's factors, in the same call or from its file
    if (name == "short") {
      st.space.lambda_max = o_.short_lambda_max;
      st.short_window = true;
      // The baseline seeds are all the identity at scale 1; snap() clips the
      // fine-tuning factors to the grid. run() runs this stage alone, after
      // search1's file exists.
      if (o_.short_seed_finetune) st.seeds.user.push_back({best_of("search1").factors, 0});
    }
    return st;
  }

  std::vector<std::vector<int>> search_windows(const longrope::search_stage& st) const {
    const std::int64_t count = st.short_window && o_.short_windows > 0 ? o_.short_windows : o_.search_windows;
    return spread_windows(stream_, st.target.target_length(), count, n() / 4, n() / 2);
  }

  /// Search stages in one run_progressive call (fine-tuning between search1 and search2).
  void run_chain(const std::vector<std::string>& chain) {
    std::vector<longrope::search_stage> stages;
    for (const auto& name : chain) stages.push_back(make_stage(name));
    // A first stage seeded from a stage finished in an earlier run.
    if (stages.front().name == "search2" || stages.front().name == "search-base") {
      stages.front().seeds.user.push_back(best_of("search1"));
      stages.front().seed_from_previous = false;
    }
    std::map<std::int64_t, std::vector<std::vector<int>>> windows;
    const transformer<float>* model = &model_for(chain.front());
    auto fitness = [&](std::size_t, const longrope::search_stage& st, const std::vector<longrope::search_point>& pts) {
      const std::int64_t ctx = st.target.target_length();
      auto& w = windows[ctx];
      if (w.empty()) w = search_windows(st);
      std::vector<longrope::rope_frequencies> fs;
      for (const auto& p : pts) fs.push_back(point_frequencies(model->config(), p, ctx, std::nullopt));
      const auto r = evaluate_perplexity(*model, w, fs, o_.search.threads);
      std::vector<double> s(r.size());
      for (std::size_t k = 0; k < r.size(); ++k) s[k] = r[k].perplexity();
      return s;
    };
    auto record = [&](const longrope::search_stage& st, const longrope::search_result& r) {
      say("extend: " + st.name + " done: perplexity " + std::to_string(r.best_score) + " at " +
          std::to_string(st.target.target_length()) + " tokens, " + std::to_string(r.evaluations) + " evaluations");
      nlohmann::json rec = {
          {"context", st.target.target_length()},
          {"short_window", st.short_window},
          {"lambda_max", st.space.lambda_max},
          {"best", detail::point_json(r.best)},
          {"score", r.best_score},
          {"evaluations", r.evaluations},
          {"iterations", r.iterations},
          {"seconds", r.elapsed_seconds},
          {"windows", windows[st.target.target_length()].size()},
          {"model", st.name == "search1" || st.name == "search-base" ? "base" : "finetune"}};
      if (st.short_window) {  // its seeds beside the identity, as the search saw them (on the grid)
        const longrope::search_space space(st.space);
        rec["user_seeds"] = nlohmann::json::array();
        for (const auto& u : st.seeds.user) {
          rec["user_seeds"].push_back(space.point(longrope::snap(space, u.factors, u.n_hat)).factors);
        }
      }
      save_stage(st.name, rec);
    };
    auto between = [&](std::size_t k, const longrope::search_stage& st, const longrope::search_result& r) {
      record(st, r);
      if (st.name == "search1" && stages[k + 1].name == "search2") {
        run_plain("finetune");
        model = &model_for("search2");
      }
    };
    say("extend: searching " + chain.front() + (chain.size() > 1 ? " ... " + chain.back() : std::string()));
    const longrope::progress_callback progress = [this](const longrope::search_progress& p) {
      char line[160];
      std::snprintf(line, sizeof line, "extend:   generation %d/%d  best perplexity %.5f  %lld evaluations  %.1f s",
                    p.iteration, p.iterations, p.best_score, static_cast<long long>(p.evaluations), p.elapsed_seconds);
      say(line);
      return true;
    };
    if (!stages.back().short_window || stages.size() > 1) {
      const auto res = longrope::run_progressive(stages, fitness, between, progress);
      record(stages.back(), res.stages.back());
    } else {
      // The short stage alone (resumed after search2): run_progressive needs
      // a long stage, so the same per-stage search it runs, directly.
      const longrope::search_stage& st = stages.back();
      const longrope::search_space space(st.space);
      longrope::evolutionary_search search(space, st.options, st.target, st.seeds);
      record(st, search.run([&](const std::vector<longrope::search_point>& pts) { return fitness(0, st, pts); }, progress));
    }
  }

  /// Fine-tunes the base model at mid_context with `sc`; writes DIR/NAME.bin.
  nlohmann::json finetune(const std::string& name, const scaling& sc) {
    const auto f = make_frequencies(base_ck_.config, sc, o_.mid_context);
    trainer<float> tr(base_ck_, o_.train);
    std::vector<int> data = o_.finetune_tokens;
    if (data.empty()) data.assign(stream_.begin(), stream_.begin() + static_cast<std::ptrdiff_t>(n() / 4));
    packed_stream_source src(std::move(data), o_.mid_context, o_.data_seed);
    say("extend: " + name + ": " + std::to_string(o_.train.steps) + " steps at " + std::to_string(o_.mid_context) +
        " tokens, " + to_string(sc.method));
    const auto loop = run_train_loop<float>(tr, src, f, {}, [&](const step_result& r, double secs, std::int64_t k) {
      if (k == 1 || k % 10 == 0 || k == o_.train.steps) {
        char line[160];
        std::snprintf(line, sizeof line, "extend: %s step %lld/%lld loss %.5f (%.1f s)", name.c_str(),
                      static_cast<long long>(k), static_cast<long long>(o_.train.steps), r.loss, secs);
        say(line);
      }
    });
    write_checkpoint(tr.model().to_checkpoint(), model_path(name), 0);
    nlohmann::json rec = {
        {"checkpoint", name + ".bin"},
        {"context", o_.mid_context},
        {"method", to_string(sc.method)},
        {"steps", tr.step_count()},
        {"tokens_seen", tr.tokens_seen()},
        {"first_loss", loop.first_loss},
        {"final_loss", loop.last_loss},
        {"losses", loop.losses},
        {"seconds", loop.seconds},
        {"data", o_.finetune_tokens.empty()
                     ? "stream[0," + std::to_string(n() / 4) + ")"
                     : "finetune_tokens[0," + std::to_string(o_.finetune_tokens.size()) + ")"}};
    if (sc.method == scaling_method::longrope) rec["scaling"] = detail::point_json({sc.factors, sc.n_hat});
    return rec;
  }

  void run_plain(const std::string& name) {
    if (name == "finetune") {
      const auto p = best_of("search1");
      scaling sc;
      sc.method = scaling_method::longrope;
      sc.factors = p.factors;
      sc.n_hat = p.n_hat;
      save_stage(name, finetune(name, sc));
      finetuned_.reset();
    } else if (name == "pi-ft" || name == "yarn-ft") {
      scaling sc;
      sc.method = name == "pi-ft" ? scaling_method::pi : scaling_method::yarn;
      save_stage(name, finetune(name, sc));
    } else if (name == "search-base") {
      run_chain({"search-base"});
    } else if (name == "evaluate") {
      save_stage(name, evaluate());
      longrope::write_file_atomic((std::filesystem::path(dir_) / "result.json").string(), result().dump(2) + "\n");
      write_served();
    } else {
      run_chain({name});
    }
  }

  /// Held-out perplexity table (rows: method x fine-tuned, columns: eval lengths).
  nlohmann::json evaluate();
  void write_served();

 public:
  /// The result JSON (see the class comment); stages not run yet are absent.
  nlohmann::json result() const;

 private:
  checkpoint base_ck_;
  transformer<float> base_;
  std::optional<transformer<float>> finetuned_;
  std::vector<int> stream_;
  std::string dir_;
  pipeline_options o_;
  std::function<void(const std::string&)> log_;
  std::string fingerprint_;
  std::map<std::string, nlohmann::json> done_;
};

}  // namespace llama2c

#include "pipeline_eval.hpp"
