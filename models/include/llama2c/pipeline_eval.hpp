// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file pipeline_eval.hpp
/// The last stage of the progressive pipeline (pipeline.hpp): held-out
/// perplexity of every method, with and without fine-tuning, at every
/// evaluation length; the result JSON and the served model's files.
/// Included by pipeline.hpp; not a header of its own.

#include "pipeline.hpp"

namespace llama2c {

namespace detail {

inline scaling longrope_scaling(const longrope::search_point& p) {
  scaling s;
  s.method = scaling_method::longrope;
  s.factors = p.factors;
  s.n_hat = p.n_hat;
  return s;
}

inline scaling method_scaling(scaling_method m) {
  scaling s;
  s.method = m;
  return s;
}

}  // namespace detail

/// Rows (docs/pipeline.md): the base model with none / PI / YaRN / LongRoPE
/// (L0: none, <= mid: search1, above: search-base); PI-FT and YaRN-FT with
/// their method at max(L, mid_context) (the scale they were fine-tuned at, or
/// more); the LongRoPE-FT model with PI, YaRN, search1's factors, search2's
/// factors at every length, and served (short factors <= L0, search2's above).
/// Each cell: perplexity and the standard error of its log over the windows.
/// O(rows * lengths * eval_windows * forward(L)).
inline nlohmann::json pipeline::evaluate() {
  using detail::longrope_scaling;
  using detail::method_scaling;
  const std::int64_t l0 = base_ck_.config.seq_len;
  const auto s1 = best_of("search1"), s2 = best_of("search2"), sh = best_of("short");
  std::optional<transformer<float>> pi_ft, yarn_ft;
  std::optional<longrope::search_point> sb;
  if (o_.baselines) {
    pi_ft.emplace(load_checkpoint(model_path("pi-ft")));
    yarn_ft.emplace(load_checkpoint(model_path("yarn-ft")));
    sb = best_of("search-base");
  }
  const transformer<float>& ft = model_for("search2");
  struct row {
    std::string method;
    bool fine_tuned;
    const transformer<float>* model;
    std::function<scaling(std::int64_t)> sc;   // scaling at length L
    std::function<std::int64_t(std::int64_t)> ctx;  // the context the scaling is built for
  };
  const auto same = [](std::int64_t L) { return L; };
  const auto at_least_mid = [this](std::int64_t L) { return std::max(L, o_.mid_context); };
  std::vector<row> rows = {
      {"none", false, &base_, [](std::int64_t) { return scaling{}; }, same},
      {"PI", false, &base_, [](std::int64_t) { return method_scaling(scaling_method::pi); }, same},
      {"YaRN", false, &base_, [](std::int64_t) { return method_scaling(scaling_method::yarn); }, same},
      {"LongRoPE", false, &base_,
       [&, l0](std::int64_t L) {
         if (L <= l0) return scaling{};
         if (L <= o_.mid_context || !sb) return longrope_scaling(s1);
         return longrope_scaling(*sb);
       },
       same},
  };
  if (o_.baselines) {
    rows.push_back({"PI-FT", true, &*pi_ft, [](std::int64_t) { return method_scaling(scaling_method::pi); }, at_least_mid});
    rows.push_back({"YaRN-FT", true, &*yarn_ft, [](std::int64_t) { return method_scaling(scaling_method::yarn); }, at_least_mid});
  }
  rows.push_back({"LongRoPE-FT model + PI", true, &ft, [](std::int64_t) { return method_scaling(scaling_method::pi); }, same});
  rows.push_back({"LongRoPE-FT model + YaRN", true, &ft, [](std::int64_t) { return method_scaling(scaling_method::yarn); }, same});
  rows.push_back({"LongRoPE-FT, search1 factors", true, &ft, [&](std::int64_t) { return longrope_scaling(s1); }, same});
  rows.push_back({"LongRoPE-FT, search2 factors", true, &ft, [&](std::int64_t) { return longrope_scaling(s2); }, same});
  rows.push_back({"LongRoPE-FT served (short <= L0, search2 above)", true, &ft,
                  [&, l0](std::int64_t L) { return L <= l0 ? longrope_scaling(sh) : longrope_scaling(s2); }, same});

  nlohmann::json table = nlohmann::json::array();
  std::map<std::int64_t, std::vector<std::vector<int>>> windows;
  for (std::int64_t L : o_.eval_lengths) windows[L] = spread_windows(stream_, L, o_.eval_windows, n() / 2, n());
  for (const auto& r : rows) {
    nlohmann::json cells = nlohmann::json::object();
    for (std::int64_t L : o_.eval_lengths) {
      const auto f = make_frequencies(base_ck_.config, r.sc(L), r.ctx(L));
      const window_stats st = window_statistics(*r.model, windows[L], f, o_.search.threads);
      cells[std::to_string(L)] = {{"perplexity", st.perplexity}, {"log_se", st.log_se}};
    }
    say("extend: evaluated " + r.method);
    table.push_back({{"method", r.method}, {"fine_tuned", r.fine_tuned}, {"perplexity", cells}});
  }
  return {{"held_out", "stream[" + std::to_string(n() / 2) + "," + std::to_string(n()) + ")"},
          {"windows", o_.eval_windows},
          {"lengths", o_.eval_lengths},
          {"rows", table}};
}

inline nlohmann::json pipeline::result() const {
  nlohmann::json out = {{"format", "longrope-extend-1"}, {"work", dir_}, {"options", options_json()}};
  nlohmann::json st = nlohmann::json::object();
  for (const auto& name : pipeline_stages(o_)) {
    if (done_.count(name)) st[name] = done_.at(name);
  }
  out["stages"] = st;
  if (done_.count("search2") && done_.count("short")) {
    longrope::longrope_factors lf;
    const auto s2 = detail::point_from(done_.at("search2").at("best"), "search2", pairs());
    lf.long_factor = s2.factors;
    lf.n_hat = s2.n_hat;
    lf.short_factor = detail::point_from(done_.at("short").at("best"), "short", pairs()).factors;
    lf.original_max_position = base_ck_.config.seq_len;
    lf.max_position = o_.long_context;
    const auto geometry = make_rope_config(base_ck_.config, scaling{}, base_ck_.config.seq_len);
    out["factors"] = {{"long_factor", lf.long_factor}, {"short_factor", lf.short_factor}, {"n_hat", lf.n_hat},
                      {"original_max_position_embeddings", lf.original_max_position},
                      {"max_position_embeddings", lf.max_position}};
    out["rope_scaling"] = longrope::to_rope_scaling_json(lf.to_rope_config(geometry));
  }
  if (done_.count("evaluate")) out["table"] = done_.at("evaluate");
  return out;
}

/// DIR/finetune.bin.json (the sidecar eval / generate / search read: long
/// factors as "scaling", short ones as "short_scaling", the transformers
/// rope_scaling block) and DIR/long-factors.json, DIR/short-factors.json
/// (`--factors-file` inputs).
inline void pipeline::write_served() {
  const auto r = result();
  if (!r.contains("factors")) return;
  const auto& fa = r["factors"];
  const nlohmann::json lon = {{"method", "longrope"}, {"factors", fa["long_factor"]}, {"n_hat", fa["n_hat"]},
                              {"attention_factor", nullptr}};
  const nlohmann::json sho = {{"method", "longrope"}, {"factors", fa["short_factor"]}, {"n_hat", 0},
                              {"attention_factor", nullptr}};
  const nlohmann::json side = {{"format", "longrope-extend-served-1"},
                               {"context", o_.long_context},
                               {"original_max_position_embeddings", base_ck_.config.seq_len},
                               {"scaling", lon},
                               {"short_scaling", sho},
                               {"rope_scaling", r["rope_scaling"]},
                               {"base_model", "the pipeline's base model"},
                               {"steps", o_.train.steps}};
  const std::filesystem::path d(dir_);
  longrope::write_file_atomic(model_path("finetune") + ".json", side.dump(2) + "\n");
  longrope::write_file_atomic((d / "long-factors.json").string(),
                              nlohmann::json{{"rescale_factors", fa["long_factor"]}, {"n_hat", fa["n_hat"]},
                                             {"attention_factor", nullptr}}.dump(2) + "\n");
  longrope::write_file_atomic((d / "short-factors.json").string(),
                              nlohmann::json{{"rescale_factors", fa["short_factor"]}, {"n_hat", 0},
                                             {"attention_factor", nullptr}}.dump(2) + "\n");
}

}  // namespace llama2c
