// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search_json.hpp
/// JSON for the evolutionary search (needs nlohmann-json, so it is not part of
/// the umbrella header): checkpoint and resume of a whole search, and the
/// transformers rope_scaling block of a search's result.
///
/// Checkpoint format (an object; every number exact, so a resumed search is
/// bit-identical to the uninterrupted one):
///
///     {"format": "longrope.search_checkpoint", "version": 1,
///      "space":   {"pairs", "lambda_min", "lambda_max", "step", "frozen_factors": [..],
///                  "n_hat_values": [..], "search_n_hat", "ntk_derived_pairs", "monotone"},
///      "options": {"population", "mutations", "crossovers", "top_k", "iterations",
///                  "mutation_probability", "mutation_radius", "mutation": "bounded"|"push",
///                  "n_hat_probability", "crossover": "repair"|"reject",
///                  "max_attempts", "seed", "patience", "tolerance", "max_evaluations",
///                  "max_seconds", "threads", "strategy": "evolution"|"random"|"gaussian"|"surrogate"},
///      "rng": ["<16 hex digits>" x 4],            (xoshiro256** state; hex so no reader loses bits)
///      "iteration", "initial_done", "evaluations", "generation_evaluations", "best_score",
///      "stale_generations", "elapsed_seconds", "status": "running"|...,
///      "population": [[n_hat_index, score, [grid indices..]], ..],   ranked, best first
///      "pending":    [[n_hat_index, [grid indices..]], ..],          awaiting tell()
///      "cache":      [[n_hat_index, score, [grid indices..]], ..]}   every evaluation
///
/// Every numeric field has a documented range, checked on load
/// (search_checkpoint_from_json), so a hostile or corrupt checkpoint is refused
/// with longrope::error ("longrope.json") naming the key, and nothing it holds
/// can overflow a later computation:
///
///     space.pairs [1, 32768]           space.lambda_min [1e-6, 1e6]
///     space.lambda_max [lambda_min, 1e6]   space.step [1e-9, 1e6]
///     space.frozen_factors: fewer than pairs values, each in [1e-6, 1e6]
///     space.n_hat_values: at most 2^20 values, each in [0, 2^53]
///     options.population, top_k [1, 2^24]    options.mutations, crossovers [0, 2^24]
///     options.iterations, mutation_radius, patience [0, 2^30]
///     options.max_attempts [1, 2^20]         options.threads [0, 1024]
///     options.mutation_probability, n_hat_probability [0, 1]
///     options.tolerance [0, 1e300]           options.max_evaluations [0, 2^62]
///     options.max_seconds, elapsed_seconds [0, 1e12]
///     iteration, stale_generations [0, 2^30]
///     evaluations [0, 2^62], generation_evaluations [0, evaluations]
///     population, pending: at most 2^26 candidates each; pending without duplicates
///     every grid index: a 32-bit integer (the space checks it is on the grid)
///
/// (search_options::validate enforces the same option ranges for every search.)
/// Numbers JSON cannot hold as doubles (1e400) are malformed JSON.
///
/// Scores are numbers, or the strings "inf" / "-inf" (JSON has no infinities).
/// Doubles are written by nlohmann-json in shortest round-trip form and read back
/// exactly. Malformed input throws longrope::error ("longrope.json") naming the key;
/// an inconsistent state (a candidate off the grid, a population score that differs
/// from the cache, ...) is rejected by the evolutionary_search constructor
/// ("longrope.search").

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "error.hpp"
#include "io.hpp"
#include "json.hpp"
#include "search.hpp"

namespace longrope {

/// The checkpoint of `cp` as JSON (format above). O(cache size * pairs).
nlohmann::json to_json(const search_checkpoint& cp);

/// Parses a checkpoint. Throws longrope::error ("longrope.json") naming the key on
/// a missing key, a wrong type, a value outside its documented range, an unknown
/// format or version. O(size).
search_checkpoint search_checkpoint_from_json(const nlohmann::json& j);

/// Parses checkpoint text (as written by save_checkpoint). Throws
/// "longrope.json" on malformed JSON (naming `name`) and as
/// search_checkpoint_from_json. Never lets a nlohmann exception escape. O(size).
search_checkpoint search_checkpoint_from_text(const std::string& text, const std::string& name = "checkpoint");

/// Writes search.checkpoint() to `path` atomically (a temporary file renamed over
/// it, so a crash never leaves a truncated checkpoint). Throws ("longrope.io").
void save_checkpoint(const evolutionary_search& search, const std::string& path);

/// Reads a checkpoint file and resumes the search. Throws "longrope.io" if the
/// file cannot be read, "longrope.json" on malformed JSON, "longrope.search" on
/// an inconsistent state.
evolutionary_search load_checkpoint(const std::string& path);

/// The transformers rope_scaling block of searched factors, via
/// to_rope_scaling_json(f.to_rope_config(geometry)):
///     {"type": "longrope", "rope_type": "longrope", "short_factor": [..], "long_factor": [..],
///      "original_max_position_embeddings": L0, "n_hat": K (when non-zero)}
/// geometry supplies head_dim / rotary_dim / base. Throws "longrope.config" if the
/// factors do not form a valid config (wrong length, non-positive). O(pairs).
nlohmann::json to_rope_scaling_json(const longrope_factors& f, const rope_config& geometry);

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

inline nlohmann::json search_score_json(double s) {
  if (std::isnan(s)) return "nan";
  if (std::isinf(s)) return s > 0 ? "inf" : "-inf";
  return s;
}

inline double search_score_from_json(const nlohmann::json& v, const std::string& key) {
  if (v.is_string()) {
    const auto& t = v.get_ref<const std::string&>();
    if (t == "inf") return std::numeric_limits<double>::infinity();
    if (t == "-inf") return -std::numeric_limits<double>::infinity();
    if (t == "nan") return std::numeric_limits<double>::quiet_NaN();
    json_fail(key, "expected a number, \"inf\", \"-inf\" or \"nan\", got \"" + t + "\"");
  }
  if (!v.is_number()) json_fail(key, std::string("expected a number, got ") + json_type_name(v));
  return v.get<double>();
}

inline const nlohmann::json& search_key(const nlohmann::json& obj, const char* key, const std::string& where) {
  if (!obj.is_object()) json_fail(where, std::string("expected an object, got ") + json_type_name(obj));
  const auto it = obj.find(key);
  if (it == obj.end()) json_fail(where.empty() ? key : where + "." + key, "missing");
  return *it;
}

inline std::string search_path(const std::string& where, const char* key) {
  return where.empty() ? std::string(key) : where + "." + key;
}

/// An integer in [lo, hi] (both within int64).
inline std::int64_t search_ranged_int(const nlohmann::json& v, const std::string& key, std::int64_t lo, std::int64_t hi) {
  if (!v.is_number_integer()) json_fail(key, std::string("expected an integer, got ") + json_type_name(v));
  const std::string range = " (must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "])";
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi)) json_fail(key, std::to_string(u) + " is out of range" + range);
    return static_cast<std::int64_t>(u);
  }
  const auto i = v.get<std::int64_t>();
  if (i < lo || i > hi) json_fail(key, std::to_string(i) + " is out of range" + range);
  return i;
}

inline int search_int(const nlohmann::json& obj, const char* key, const std::string& where, int lo, int hi) {
  return static_cast<int>(search_ranged_int(search_key(obj, key, where), search_path(where, key), lo, hi));
}

inline std::int64_t search_int64(const nlohmann::json& obj, const char* key, const std::string& where, std::int64_t lo,
                                 std::int64_t hi) {
  return search_ranged_int(search_key(obj, key, where), search_path(where, key), lo, hi);
}

/// A finite number in [lo, hi].
inline double search_ranged_double(const nlohmann::json& v, const std::string& key, double lo, double hi) {
  if (!v.is_number()) json_fail(key, std::string("expected a number, got ") + json_type_name(v));
  const double d = v.get<double>();
  if (!(d >= lo && d <= hi)) {
    json_fail(key, std::to_string(d) + " is out of range (must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "])");
  }
  return d;
}

inline double search_double(const nlohmann::json& obj, const char* key, const std::string& where, double lo, double hi) {
  return search_ranged_double(search_key(obj, key, where), search_path(where, key), lo, hi);
}

inline constexpr std::int64_t kCheckpointMaxCandidates = std::int64_t{1} << 26;

inline bool search_bool(const nlohmann::json& obj, const char* key, const std::string& where) {
  const auto& v = search_key(obj, key, where);
  if (!v.is_boolean()) json_fail(search_path(where, key), std::string("expected a boolean, got ") + json_type_name(v));
  return v.get<bool>();
}

inline const nlohmann::json& search_array(const nlohmann::json& v, const std::string& key) {
  if (!v.is_array()) json_fail(key, std::string("expected an array, got ") + json_type_name(v));
  return v;
}

inline std::vector<int> search_indices(const nlohmann::json& v, const std::string& key) {
  search_array(v, key);
  std::vector<int> out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    out.push_back(static_cast<int>(search_ranged_int(v[i], key + "[" + std::to_string(i) + "]",
                                                     std::numeric_limits<int>::min(), std::numeric_limits<int>::max())));
  }
  return out;
}

inline nlohmann::json search_candidate_json(const candidate& c) { return {c.n_hat_index, c.lambda_index}; }

inline nlohmann::json search_scored_json(const scored_candidate& s) {
  return {s.c.n_hat_index, search_score_json(s.score), s.c.lambda_index};
}

inline int search_index_int(const nlohmann::json& v, const std::string& key) {
  return static_cast<int>(search_ranged_int(v, key, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
}

inline candidate search_candidate_from_json(const nlohmann::json& v, const std::string& key) {
  if (!v.is_array() || v.size() != 2) json_fail(key, "expected [n_hat_index, [grid indices]]");
  candidate c;
  c.n_hat_index = search_index_int(v[0], key + "[0]");
  c.lambda_index = search_indices(v[1], key + "[1]");
  return c;
}

inline scored_candidate search_scored_from_json(const nlohmann::json& v, const std::string& key) {
  if (!v.is_array() || v.size() != 3) json_fail(key, "expected [n_hat_index, score, [grid indices]]");
  scored_candidate s;
  s.c.n_hat_index = search_index_int(v[0], key + "[0]");
  s.score = search_score_from_json(v[1], key + "[1]");
  s.c.lambda_index = search_indices(v[2], key + "[2]");
  return s;
}

inline std::string search_hex(std::uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

inline std::uint64_t search_unhex(const nlohmann::json& v, const std::string& key) {
  if (!v.is_string()) json_fail(key, "expected a string of 16 hex digits");
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() != 16) json_fail(key, "expected 16 hex digits, got \"" + s + "\"");
  std::uint64_t x = 0;
  for (char ch : s) {
    int d = -1;
    if (ch >= '0' && ch <= '9') d = ch - '0';
    if (ch >= 'a' && ch <= 'f') d = ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') d = ch - 'A' + 10;
    if (d < 0) json_fail(key, "not a hex digit in \"" + s + "\"");
    x = (x << 4) | static_cast<std::uint64_t>(d);
  }
  return x;
}

inline stop_reason search_stop_from_string(const std::string& s, const std::string& key) {
  for (auto r : {stop_reason::running, stop_reason::iterations, stop_reason::converged, stop_reason::evaluation_budget,
                 stop_reason::time_budget, stop_reason::exhausted, stop_reason::cancelled}) {
    if (s == to_string(r)) return r;
  }
  json_fail(key, "unknown status \"" + s + "\"");
}

// options.strategy (search/strategy.hpp): written as a name; absent in
// checkpoints of earlier versions, which read back as the paper's evolution.
inline void search_strategy_to_json(const search_options& o, nlohmann::json& options) {
  options["strategy"] = to_string(o.strategy);
}

inline void search_strategy_from_json(const nlohmann::json& options, search_options& o) {
  if (!options.contains("strategy")) {
    o.strategy = search_strategy::evolution;
    return;
  }
  const std::string s = json_string(options["strategy"], "options.strategy");
  if (!parse_search_strategy(s, o.strategy)) {
    json_fail("options.strategy", "expected \"evolution\", \"random\", \"gaussian\" or \"surrogate\", got \"" + s + "\"");
  }
}

}  // namespace detail

inline nlohmann::json to_json(const search_checkpoint& cp) {
  using namespace detail;
  nlohmann::json j = nlohmann::json::object();
  j["format"] = "longrope.search_checkpoint";
  j["version"] = 1;
  const auto& sp = cp.space;
  j["space"] = {{"pairs", sp.pairs},
                {"lambda_min", sp.lambda_min},
                {"lambda_max", sp.lambda_max},
                {"step", sp.step},
                {"frozen_factors", sp.frozen_factors},
                {"n_hat_values", sp.n_hat_values},
                {"search_n_hat", sp.search_n_hat},
                {"ntk_derived_pairs", sp.ntk_derived_pairs},
                {"monotone", sp.monotone}};
  const auto& o = cp.options;
  j["options"] = {{"population", o.population},
                  {"mutations", o.mutations},
                  {"crossovers", o.crossovers},
                  {"top_k", o.top_k},
                  {"iterations", o.iterations},
                  {"mutation_probability", o.mutation_probability},
                  {"mutation_radius", o.mutation_radius},
                  {"mutation", o.mutation == mutation_mode::bounded ? "bounded" : "push"},
                  {"n_hat_probability", o.n_hat_probability},
                  {"crossover", o.crossover == crossover_policy::repair ? "repair" : "reject"},
                  {"max_attempts", o.max_attempts},
                  {"seed", search_hex(o.seed)},
                  {"patience", o.patience},
                  {"tolerance", o.tolerance},
                  {"max_evaluations", o.max_evaluations},
                  {"max_seconds", o.max_seconds},
                  {"threads", o.threads}};
  detail::search_strategy_to_json(o, j["options"]);
  j["rng"] = nlohmann::json::array();
  for (auto w : cp.rng) j["rng"].push_back(search_hex(w));
  j["iteration"] = cp.iteration;
  j["initial_done"] = cp.initial_done;
  j["evaluations"] = cp.evaluations;
  j["generation_evaluations"] = cp.generation_evaluations;
  j["best_score"] = search_score_json(cp.best_score);
  j["stale_generations"] = cp.stale_generations;
  j["elapsed_seconds"] = cp.elapsed_seconds;
  j["status"] = to_string(cp.status);
  auto& pop = j["population"] = nlohmann::json::array();
  for (const auto& s : cp.population) pop.push_back(search_scored_json(s));
  auto& pend = j["pending"] = nlohmann::json::array();
  for (const auto& c : cp.pending) pend.push_back(search_candidate_json(c));
  auto& cache = j["cache"] = nlohmann::json::array();
  for (const auto& s : cp.cache) cache.push_back(search_scored_json(s));
  return j;
}

inline search_checkpoint search_checkpoint_from_json(const nlohmann::json& j) {
  using namespace detail;
  search_checkpoint cp;
  const auto& fmt = search_key(j, "format", "");
  if (!fmt.is_string() || fmt.get<std::string>() != "longrope.search_checkpoint") {
    json_fail("format", "expected \"longrope.search_checkpoint\"");
  }
  const int version = search_int(j, "version", "", std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
  if (version != 1) json_fail("version", "unsupported checkpoint version " + std::to_string(version) + " (expected 1)");

  const auto& sp = search_key(j, "space", "");
  cp.space.pairs = search_int(sp, "pairs", "space", 1, 32768);
  cp.space.lambda_min = search_double(sp, "lambda_min", "space", 1e-6, 1e6);
  cp.space.lambda_max = search_double(sp, "lambda_max", "space", cp.space.lambda_min, 1e6);
  cp.space.step = search_double(sp, "step", "space", 1e-9, 1e6);
  {
    const auto& ff = search_array(search_key(sp, "frozen_factors", "space"), "space.frozen_factors");
    if (ff.size() >= static_cast<std::size_t>(cp.space.pairs)) {
      json_fail("space.frozen_factors", std::to_string(ff.size()) + " values (must be fewer than pairs = " +
                                            std::to_string(cp.space.pairs) + ")");
    }
    cp.space.frozen_factors.clear();
    for (std::size_t i = 0; i < ff.size(); ++i) {
      cp.space.frozen_factors.push_back(search_ranged_double(ff[i], "space.frozen_factors[" + std::to_string(i) + "]", 1e-6, 1e6));
    }
    const auto& nv = search_array(search_key(sp, "n_hat_values", "space"), "space.n_hat_values");
    if (nv.size() > (std::size_t{1} << 20)) json_fail("space.n_hat_values", "more than 2^20 values");
    cp.space.n_hat_values.clear();
    for (std::size_t i = 0; i < nv.size(); ++i) {
      cp.space.n_hat_values.push_back(
          search_ranged_int(nv[i], "space.n_hat_values[" + std::to_string(i) + "]", 0, std::int64_t{1} << 53));
    }
  }
  cp.space.search_n_hat = search_bool(sp, "search_n_hat", "space");
  // LongRoPE2 fields; optional so checkpoints written before them still load.
  if (sp.is_object() && sp.contains("ntk_derived_pairs")) {
    cp.space.ntk_derived_pairs = search_int(sp, "ntk_derived_pairs", "space", 0, 32768);
  }
  if (sp.is_object() && sp.contains("monotone")) cp.space.monotone = search_bool(sp, "monotone", "space");

  const auto& o = search_key(j, "options", "");
  auto& op = cp.options;
  constexpr int k24 = 1 << 24, k30 = 1 << 30;
  op.population = search_int(o, "population", "options", 1, k24);
  op.mutations = search_int(o, "mutations", "options", 0, k24);
  op.crossovers = search_int(o, "crossovers", "options", 0, k24);
  op.top_k = search_int(o, "top_k", "options", 1, k24);
  op.iterations = search_int(o, "iterations", "options", 0, k30);
  op.mutation_probability = search_double(o, "mutation_probability", "options", 0.0, 1.0);
  op.mutation_radius = search_int(o, "mutation_radius", "options", 0, k30);
  {
    const std::string m = json_string(search_key(o, "mutation", "options"), "options.mutation");
    if (m == "bounded") {
      op.mutation = mutation_mode::bounded;
    } else if (m == "push") {
      op.mutation = mutation_mode::push;
    } else {
      json_fail("options.mutation", "expected \"bounded\" or \"push\", got \"" + m + "\"");
    }
  }
  op.n_hat_probability = search_double(o, "n_hat_probability", "options", 0.0, 1.0);
  {
    const auto& c = search_key(o, "crossover", "options");
    const std::string s = json_string(c, "options.crossover");
    if (s == "repair") {
      op.crossover = crossover_policy::repair;
    } else if (s == "reject") {
      op.crossover = crossover_policy::reject;
    } else {
      json_fail("options.crossover", "expected \"repair\" or \"reject\", got \"" + s + "\"");
    }
  }
  op.max_attempts = search_int(o, "max_attempts", "options", 1, 1 << 20);
  op.seed = search_unhex(search_key(o, "seed", "options"), "options.seed");
  op.patience = search_int(o, "patience", "options", 0, k30);
  op.tolerance = search_double(o, "tolerance", "options", 0.0, 1e300);
  op.max_evaluations = search_int64(o, "max_evaluations", "options", 0, std::int64_t{1} << 62);
  op.max_seconds = search_double(o, "max_seconds", "options", 0.0, 1e12);
  op.threads = search_int(o, "threads", "options", 0, 1024);
  detail::search_strategy_from_json(o, op);

  const auto& rng = search_array(search_key(j, "rng", ""), "rng");
  if (rng.size() != 4) json_fail("rng", "expected 4 state words");
  for (std::size_t i = 0; i < 4; ++i) cp.rng[i] = search_unhex(rng[i], "rng[" + std::to_string(i) + "]");

  cp.iteration = search_int(j, "iteration", "", 0, k30);
  cp.initial_done = search_bool(j, "initial_done", "");
  cp.evaluations = search_int64(j, "evaluations", "", 0, std::int64_t{1} << 62);
  cp.generation_evaluations = search_int64(j, "generation_evaluations", "", 0, cp.evaluations);
  cp.best_score = search_score_from_json(search_key(j, "best_score", ""), "best_score");
  cp.stale_generations = search_int(j, "stale_generations", "", 0, k30);
  cp.elapsed_seconds = search_double(j, "elapsed_seconds", "", 0.0, 1e12);
  cp.status = search_stop_from_string(json_string(search_key(j, "status", ""), "status"), "status");

  const auto& pop = search_array(search_key(j, "population", ""), "population");
  if (static_cast<std::int64_t>(pop.size()) > kCheckpointMaxCandidates) json_fail("population", "more than 2^26 candidates");
  for (std::size_t i = 0; i < pop.size(); ++i) {
    cp.population.push_back(search_scored_from_json(pop[i], "population[" + std::to_string(i) + "]"));
  }
  const auto& pend = search_array(search_key(j, "pending", ""), "pending");
  if (static_cast<std::int64_t>(pend.size()) > kCheckpointMaxCandidates) json_fail("pending", "more than 2^26 candidates");
  {
    std::set<candidate> seen;
    for (std::size_t i = 0; i < pend.size(); ++i) {
      const std::string key = "pending[" + std::to_string(i) + "]";
      cp.pending.push_back(search_candidate_from_json(pend[i], key));
      // A generation never holds a candidate twice; the search's own next checkpoint would be refused.
      if (!seen.insert(cp.pending.back()).second) json_fail(key, "duplicate pending candidate");
    }
  }
  const auto& cache = search_array(search_key(j, "cache", ""), "cache");
  cp.cache.reserve(cache.size());
  for (std::size_t i = 0; i < cache.size(); ++i) {
    cp.cache.push_back(search_scored_from_json(cache[i], "cache[" + std::to_string(i) + "]"));
  }
  return cp;
}

inline search_checkpoint search_checkpoint_from_text(const std::string& text, const std::string& name) {
  nlohmann::json j;
#if LONGROPE_HAS_EXCEPTIONS
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for numbers such as 1e400
    LONGROPE_THROW("longrope.json", name + ": not valid JSON (" + e.what() + ")");
  }
#else
  j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) LONGROPE_THROW("longrope.json", name + ": not valid JSON");
#endif
  return search_checkpoint_from_json(j);
}

inline void save_checkpoint(const evolutionary_search& search, const std::string& path) {
  write_file_atomic(path, to_json(search.checkpoint()).dump() + "\n");
}

inline evolutionary_search load_checkpoint(const std::string& path) {
  return evolutionary_search(search_checkpoint_from_text(read_file(path), path));
}

inline nlohmann::json to_rope_scaling_json(const longrope_factors& f, const rope_config& geometry) {
  return to_rope_scaling_json(f.to_rope_config(geometry));
}

}  // namespace longrope
