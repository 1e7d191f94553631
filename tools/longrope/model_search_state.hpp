// The checkpoint of the in-process `longrope search --model ...`: the CLI's one
// state format (search_state.hpp: a longrope.search_checkpoint plus the
// "longrope_cli" target block) with a "model_search" block holding
//   settings:   what the resumed command line must reproduce (model and window
//               fingerprints, context, windows, validation settings, seeds),
//   validation: the validated search's own state (llama2c::validation_state).
// Included by cmd_search.cpp (and cmd_search_longrope2.cpp for the fingerprints).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/error.hpp>
#include <longrope/io.hpp>
#include <longrope/search_json.hpp>
#include <llama2c/validated_search.hpp>

#include "search_state.hpp"

namespace longrope_cli {

/// FNV-1a 64 of bytes, as 16 hex digits: a fingerprint, not a security hash.
inline std::string fnv1a_hex(const void* data, std::size_t n, std::uint64_t h = 14695981039346656037ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return longrope::detail::search_hex(h);
}

/// Fingerprint of window token sets (train then validation, lengths included).
inline std::string windows_fingerprint(const std::vector<std::vector<int>>& train,
                                       const std::vector<std::vector<int>>& validation) {
  std::vector<std::int32_t> all;
  for (const auto* set : {&train, &validation}) {
    all.push_back(static_cast<std::int32_t>(set->size()));
    for (const auto& w : *set) all.insert(all.end(), w.begin(), w.end());
  }
  return fnv1a_hex(all.data(), all.size() * sizeof(std::int32_t));
}

inline nlohmann::json validation_state_json(const llama2c::validation_state& v) {
  using namespace longrope::detail;
  nlohmann::json j;
  auto& val = j["validated"] = nlohmann::json::array();
  for (const auto& e : v.validated) val.push_back(search_scored_json(e));
  j["chosen"] = v.chosen.lambda_index.empty() ? nlohmann::json() : search_candidate_json(v.chosen);
  j["chosen_validation"] = search_score_json(v.chosen_validation);
  j["stale"] = v.stale;
  j["evaluations"] = v.evaluations;
  j["stopped"] = v.stopped;
  auto& steps = j["steps"] = nlohmann::json::array();
  for (const auto& s : v.steps) {
    steps.push_back({{"evaluations", s.evaluations},
                     {"factors", s.chosen.factors},
                     {"n_hat", s.chosen.n_hat},
                     {"chosen_validation", search_score_json(s.chosen_validation)}});
  }
  return j;
}

inline llama2c::validation_state validation_state_from_json(const nlohmann::json& j, const std::string& where) {
  using namespace longrope::detail;
  if (!j.is_object()) LONGROPE_THROW("longrope.json", where + ": expected an object");
  llama2c::validation_state v;
  const auto& val = search_array(search_key(j, "validated", where), where + ".validated");
  if (static_cast<std::int64_t>(val.size()) > longrope::detail::kCheckpointMaxCandidates) {
    LONGROPE_THROW("longrope.json", where + ".validated: too many candidates");
  }
  for (const auto& e : val) v.validated.push_back(search_scored_from_json(e, where + ".validated"));
  const auto& chosen = search_key(j, "chosen", where);
  if (!chosen.is_null()) v.chosen = search_candidate_from_json(chosen, where + ".chosen");
  v.chosen_validation = search_score_from_json(search_key(j, "chosen_validation", where), where + ".chosen_validation");
  v.stale = search_int(j, "stale", where, 0, 1 << 30);
  v.evaluations = search_int64(j, "evaluations", where, 0, std::int64_t{1} << 50);
  v.stopped = search_bool(j, "stopped", where);
  const auto& steps = search_array(search_key(j, "steps", where), where + ".steps");
  if (steps.size() > (std::size_t{1} << 24)) LONGROPE_THROW("longrope.json", where + ".steps: too many");
  for (const auto& s : steps) {
    const std::string w = where + ".steps[]";
    if (!s.is_object()) LONGROPE_THROW("longrope.json", w + ": expected an object");
    llama2c::validated_step st;
    st.evaluations = search_int64(s, "evaluations", w, 0, std::int64_t{1} << 50);
    const auto& f = search_array(search_key(s, "factors", w), w + ".factors");
    if (f.size() > 65536) LONGROPE_THROW("longrope.json", w + ".factors: too many");
    for (const auto& x : f) st.chosen.factors.push_back(search_ranged_double(x, w + ".factors", 0.0, 1e300));
    st.chosen.n_hat = search_int64(s, "n_hat", w, 0, std::int64_t{1} << 50);
    st.chosen_validation = search_score_from_json(search_key(s, "chosen_validation", w), w + ".chosen_validation");
    v.steps.push_back(std::move(st));
  }
  return v;
}

/// The search options as a checkpoint writes them, without threads (which
/// never change a result and may differ on resume).
inline nlohmann::json comparable_options(const nlohmann::json& checkpoint) {
  nlohmann::json o = checkpoint.at("options");
  o.erase("threads");
  return o;
}

/// Writes the state file (atomic, fsync'd): cp, the target, settings.
inline void save_model_search(const std::string& path, const llama2c::validated_checkpoint& cp,
                              const external_target& t, const nlohmann::json& settings) {
  save_state(path, cp.search, t,
             {{"model_search", {{"version", 1}, {"settings", settings}, {"validation", validation_state_json(cp.validation)}}}});
}

/// The `name` block of a state file `whole` read from `path`, checked against
/// the command line resuming it: an object with "version": 1 whose "settings"
/// hold every key of `settings` with an equal value. Throws longrope::error:
/// ("longrope.argument") with `missing` when there is no such block or when a
/// setting differs (naming it, its old and new values), ("longrope.json") for a
/// malformed block. Shared by the model search and the LongRoPE2 search.
inline const nlohmann::json& resumed_block(const std::string& path, const nlohmann::json& whole, const std::string& name,
                                           const nlohmann::json& settings, const std::string& missing) {
  const auto it = whole.find(name);
  if (it == whole.end() || !it->is_object()) LONGROPE_THROW("longrope.argument", path + ": " + missing);
  const std::string where = path + ": " + name;
  if (longrope::detail::search_int(*it, "version", where, 0, 1 << 30) != 1) {
    LONGROPE_THROW("longrope.json", where + ".version: expected 1");
  }
  const nlohmann::json& had = longrope::detail::search_key(*it, "settings", where);
  if (!had.is_object()) LONGROPE_THROW("longrope.json", where + ".settings: expected an object");
  for (const auto& [k, v] : settings.items()) {
    const auto h = had.find(k);
    if (h == had.end() || *h != v) {
      LONGROPE_THROW("longrope.argument", path + ": written for another search: settings." + k + " was " +
                                              (h == had.end() ? std::string("missing") : h->dump()) +
                                              ", this command line gives " + v.dump() +
                                              " (resume with the same model, text and options)");
    }
  }
  return *it;
}

/// Reads a state file written by save_model_search and checks it belongs to
/// this command line: `fresh` is the checkpoint a new search would start from
/// (space and options compared, threads aside, which come from `threads`),
/// `settings` the command line's settings. Throws longrope::error naming the
/// first key that differs.
inline llama2c::validated_checkpoint load_model_search(const std::string& path, const longrope::search_checkpoint& fresh,
                                                       const nlohmann::json& settings, int threads) {
  external_target t;
  nlohmann::json whole;
  llama2c::validated_checkpoint cp;
  cp.search = load_state(path, t, whole);
  if (whole.contains("longrope2_search")) {
    LONGROPE_THROW("longrope.argument", path + ": written by `longrope search --method longrope2`: "
                                        "resume it with --method longrope2");
  }
  const nlohmann::json& block = resumed_block(path, whole, "model_search", settings,
                                              "no model_search block (written by `longrope search --evaluator` "
                                              "or `ask`: resume it with --evaluator/--mpi)");
  const std::string where = path + ": model_search";
  auto differs = [&](const std::string& key, const nlohmann::json& had, const nlohmann::json& now) {
    LONGROPE_THROW("longrope.argument", path + ": written for another search: " + key + " was " + had.dump() +
                                            ", this command line gives " + now.dump() +
                                            " (resume with the same model, text and options)");
  };
  const nlohmann::json now = longrope::to_json(fresh);
  if (whole.at("space") != now.at("space")) differs("space", whole.at("space"), now.at("space"));
  const auto ho = comparable_options(whole), no = comparable_options(now);
  for (const auto& [k, v] : no.items()) {
    const auto h = ho.find(k);
    if (h == ho.end() || *h != v) differs("options." + k, h == ho.end() ? nlohmann::json() : *h, v);
  }
  cp.search.options.threads = threads;
  cp.validation = validation_state_from_json(longrope::detail::search_key(block, "validation", where), where + ".validation");
  return cp;
}

}  // namespace longrope_cli
