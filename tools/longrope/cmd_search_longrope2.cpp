// `longrope search --method longrope2`: LongRoPE2 on a llama2.c model (critical
// dimension range, NTK-derived lower pairs, needle or perplexity fitness,
// optional per-pair mscale stage). Kept out of cmd_search.cpp, which only
// dispatches here.
#include "cmd_search_longrope2.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/io.hpp>
#include <longrope/json.hpp>
#include <llama2c/extension.hpp>
#include <llama2c/longrope2_extension.hpp>
#include <llama2c/needle.hpp>
#include <llama2c/perplexity.hpp>
#include <llama2c/transformer.hpp>

#include "cli_args.hpp"
#include "cmd_model.hpp"
#include "evaluator_pool.hpp"
#include "model_search_state.hpp"
#include "search_output.hpp"

namespace longrope_cli {

namespace {
const char* const kHelp =
    "usage: longrope search --method longrope2 --model M --tokenizer T (--text FILE | --tokens FILE)\n"
    "                       --context N [--critical-dim K | --critical-dim-range A:B]\n"
    "                       [--fitness needle|perplexity] [--search-mscale] [--windows W]\n"
    "                       [--first-window K] [--needle-keys K] [--needle-depths a,b,..]\n"
    "                       [--needle-seed S] [--population P] [--mutations N1] [--crossovers N2]\n"
    "                       [--topk K] [--iterations T] [--mscale-iterations T2] [--mscale-step X]\n"
    "                       [--seed S] [--threads J] [--max-seconds S] [--out FILE]\n"
    "                       [--checkpoint FILE] [--resume FILE]\n"
    "\n"
    "LongRoPE2 (arXiv 2502.20082): pairs i >= d_rcd searched in [s, 2s] (grid 0.01, monotone,\n"
    "s = N / trained length), pairs below d_rcd derived by lambda_i = lambda_d_rcd^(i / d_rcd);\n"
    "one search per critical dimension, the best kept (default range: d10_tcd .. d_tcd of the\n"
    "model). Seeds: 8 NTK-style vectors and mutation chains of them. n_hat is not searched.\n"
    "Fitness needle (default): mean NLL of the answer tokens of K needles (\"One of the special\n"
    "magic numbers for <key> is: <7 digits>.\") planted in W windows of N tokens of the text,\n"
    "teacher-forced; perplexity: the eval protocol's perplexity of W windows. Candidates run\n"
    "with attention factor 1. --search-mscale then searches a per-pair mscale m_i in [1, 2s]\n"
    "(grid --mscale-step) with the factors fixed. Prints and writes (--out) JSON:\n"
    "rescale_factors (= long_factor), short_factor (all 1.0), pair_mscale (null unless\n"
    "searched), critical_dim, runs (per critical dimension), score, factor_score, baselines\n"
    "{none, pi, ntk, yarn} under the same fitness, rope_scaling (a transformers longrope block:\n"
    "it cannot carry pair_mscale), evaluations, seconds and the settings.\n"
    "\n"
    "  --critical-dim K         search only d_rcd = K (0 <= K < head_size / 2)\n"
    "  --critical-dim-range A:B one search per d_rcd in [A, B]\n"
    "  --fitness F              needle (default) or perplexity\n"
    "  --search-mscale          add the per-pair mscale stage\n"
    "  --windows W              windows scored per candidate (default 2)\n"
    "  --first-window K         skip K windows' worth of text (default 0)\n"
    "  --needle-keys K          needles and questions per window, 1..16 (default 3)\n"
    "  --needle-depths a,b,..   needle depths in [0, 1], one per key (default 0.1 .. 0.5)\n"
    "  --needle-seed S          seed of the keys and numbers (default 0)\n"
    "  --population P           initial population (default 64)\n"
    "  --mutations N1           (default 16)   --crossovers N2 (default 16)   --topk K (default 32)\n"
    "  --iterations T           generations per critical dimension (default 40)\n"
    "  --mscale-iterations T2   generations of the mscale stage (default 10)\n"
    "  --mscale-step X          mscale grid step (default 0.01)\n"
    "  --seed S --threads J --max-seconds S --out FILE   as for the LongRoPE search\n"
    "  --checkpoint FILE        write the whole state (every critical dimension's run and the\n"
    "                           mscale stage) here, atomically, at the start and after each\n"
    "                           generation; SIGINT/SIGTERM stop after the generation being\n"
    "                           scored, write it, print the best so far and exit 130/143\n"
    "  --resume FILE            continue FILE's search to the uninterrupted result: give the\n"
    "                           same command line (--threads may differ); keeps checkpointing\n"
    "                           to FILE unless --checkpoint names another\n";

// The state file: the CLI's one format (search_state.hpp: the current run's
// longrope.search_checkpoint + "longrope_cli") with a "longrope2_search"
// block: version, settings (what the command line must reproduce), stage
// ("factors" or "mscale") and finished_runs (the checkpoints of the factor
// runs before the current one; every factor run at the mscale stage).
void save_longrope2_state(const std::string& path, const llama2c::longrope2_extension_checkpoint& cp,
                          const external_target& t, const nlohmann::json& settings) {
  const auto& runs = cp.factors.runs;
  if (runs.empty()) return;  // nothing started yet
  nlohmann::json finished = nlohmann::json::array();
  const std::size_t n = cp.mscale ? runs.size() : runs.size() - 1;
  for (std::size_t i = 0; i < n; ++i) finished.push_back(longrope::to_json(runs[i]));
  save_state(path, cp.mscale ? *cp.mscale : runs.back(), t,
             {{"longrope2_search",
               {{"version", 1}, {"settings", settings}, {"stage", cp.mscale ? "mscale" : "factors"},
                {"finished_runs", finished}}}});
}

llama2c::longrope2_extension_checkpoint load_longrope2_state(const std::string& path, const nlohmann::json& settings) {
  external_target t;
  nlohmann::json whole;
  const longrope::search_checkpoint current = load_state(path, t, whole);
  const nlohmann::json& block = resumed_block(path, whole, "longrope2_search", settings,
                                              "no longrope2_search block (not written by `longrope search "
                                              "--method longrope2`: resume it with the command that wrote it)");
  const std::string where = path + ": longrope2_search";
  const nlohmann::json& stage = longrope::detail::search_key(block, "stage", where);
  if (!stage.is_string() || (stage != "factors" && stage != "mscale")) {
    LONGROPE_THROW("longrope.json", where + ".stage: expected \"factors\" or \"mscale\"");
  }
  const auto& finished = longrope::detail::search_array(longrope::detail::search_key(block, "finished_runs", where),
                                                        where + ".finished_runs");
  if (finished.size() > 4096) LONGROPE_THROW("longrope.json", where + ".finished_runs: too many");
  llama2c::longrope2_extension_checkpoint cp;
  for (std::size_t i = 0; i < finished.size(); ++i) {
    try {
      cp.factors.runs.push_back(longrope::search_checkpoint_from_json(finished[i]));
    } catch (const longrope::error& e) {
      LONGROPE_THROW(e.id(), where + ".finished_runs[" + std::to_string(i) + "]: " + e.what());
    }
  }
  if (stage == "mscale") {
    cp.mscale = current;
  } else {
    cp.factors.runs.push_back(current);
  }
  return cp;
}

std::pair<int, int> parse_range(const std::string& s) {
  const auto [a, b] = option_parser::parse_int_pair(s, "--critical-dim-range");
  if (a < 0 || b < a || b > 100000) throw std::invalid_argument("--critical-dim-range: need 0 <= A <= B, got '" + s + "'");
  return {static_cast<int>(a), static_cast<int>(b)};
}
}  // namespace

bool is_longrope2_search(const args& a) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--method=longrope2") return true;
    if (a[i] == "--method" && i + 1 < a.size() && a[i + 1] == "longrope2") return true;
  }
  return false;
}

int cmd_search_longrope2(const args& a) {
  const option_parser opt(
      a,
      model_options({"--method", "--text", "--tokens", "--context", "--critical-dim", "--critical-dim-range",
                     "--fitness", "--windows", "--first-window", "--needle-keys", "--needle-depths", "--needle-seed",
                     "--population", "--mutations", "--crossovers", "--topk", "--iterations", "--mscale-iterations",
                     "--mscale-step", "--seed", "--threads", "--max-seconds", "--out", "--checkpoint", "--resume"}),
      {"--search-mscale"});
  if (opt.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  const std::int64_t context = option_parser::parse_int(opt.required("--context"), "--context");
  if (context < 2) throw std::invalid_argument("--context: must be >= 2, got " + std::to_string(context));
  const std::string fitness = opt.get_or("--fitness", "needle");
  if (fitness != "needle" && fitness != "perplexity") {
    throw std::invalid_argument("--fitness: expected needle or perplexity, got '" + fitness + "'");
  }
  if (opt.has("--critical-dim") && opt.has("--critical-dim-range")) {
    throw std::invalid_argument("give --critical-dim or --critical-dim-range, not both");
  }
  llama2c::longrope2_extension_options eo;
  eo.context = context;
  auto& so = eo.search.search;
  read_generation_flags(opt).apply_to(so);
  so.threads = opt.small_int("--threads", 0, 0);
  const std::uint64_t seed = opt.seed();
  so.seed = seed;
  so.max_seconds = opt.double_or("--max-seconds", 0.0);
  if (so.max_seconds < 0.0) throw std::invalid_argument("--max-seconds: must be >= 0");
  if (const auto k = opt.get("--critical-dim")) {
    const auto v = option_parser::parse_int(*k, "--critical-dim");
    if (v < 0 || v > 100000) throw std::invalid_argument("--critical-dim: must be >= 0, got " + *k);
    eo.search.critical_dim_min = eo.search.critical_dim_max = static_cast<int>(v);
  } else if (const auto r = opt.get("--critical-dim-range")) {
    std::tie(eo.search.critical_dim_min, eo.search.critical_dim_max) = parse_range(*r);
  }
  eo.search_mscale = opt.has("--search-mscale");
  eo.mscale = so;
  eo.mscale.iterations = opt.small_int("--mscale-iterations", 10, 0);
  eo.mscale_step = opt.double_or("--mscale-step", 0.01);
  if (!(eo.mscale_step > 0.0 && eo.mscale_step <= 1.0)) throw std::invalid_argument("--mscale-step: must be in (0, 1]");
  const std::int64_t windows = opt.int_or("--windows", 2);
  if (windows < 1 || windows > 100000) throw std::invalid_argument("--windows: must be in [1, 100000]");
  const std::int64_t first = opt.int_or("--first-window", 0);
  if (first < 0 || first > 100000000) throw std::invalid_argument("--first-window: must be >= 0");
  llama2c::needle_options no;
  no.context = context;
  no.keys = opt.small_int("--needle-keys", 3, 1);
  if (no.keys > 16) throw std::invalid_argument("--needle-keys: must be in [1, 16]");
  if (const auto d = opt.get("--needle-depths")) no.depths = option_parser::parse_double_list(*d, "--needle-depths");
  const std::int64_t needle_seed = opt.int_or("--needle-seed", 0);
  if (needle_seed < 0) throw std::invalid_argument("--needle-seed: must be >= 0");
  no.seed = static_cast<std::uint64_t>(needle_seed);
  const auto out_path = opt.get("--out");

  const loaded_model m = load_model(opt);
  const auto stream = read_stream(opt, m);
  const llama2c::transformer<float> model(m.ck);
  const int threads = so.threads;
  llama2c::frequencies_fitness score;
  std::vector<std::vector<int>> ppl_windows;
  std::vector<llama2c::needle_window> needle_windows;
  if (fitness == "perplexity") {
    ppl_windows = llama2c::make_windows(stream, context, windows, first);
    score = [&](const std::vector<longrope::rope_frequencies>& fs) {
      const auto r = llama2c::evaluate_perplexity(model, ppl_windows, fs, threads);
      std::vector<double> v;
      for (const auto& x : r) v.push_back(x.perplexity());
      return v;
    };
  } else {
    needle_windows = llama2c::make_needle_windows(m.tok, stream, no, windows, first * context);
    score = [&](const std::vector<longrope::rope_frequencies>& fs) {
      const auto r = llama2c::evaluate_needle(model, needle_windows, fs, threads);
      std::vector<double> v;
      for (const auto& x : r) v.push_back(x.loss());
      return v;
    };
  }
  const auto& mc = m.ck.config;
  // --checkpoint / --resume: everything the state must agree with.
  std::optional<std::string> checkpoint = opt.get("--checkpoint");
  std::optional<llama2c::longrope2_extension_checkpoint> resumed;
  nlohmann::json settings;
  if (checkpoint || opt.has("--resume")) {
    const std::string model_bytes = longrope::read_file(opt.required("--model"));
    std::vector<std::vector<int>> material = ppl_windows;
    for (const auto& w : needle_windows) material.push_back(w.tokens);
    settings = {{"context", context},
                {"fitness", fitness},
                {"windows", windows},
                {"first_window", first},
                {"needle_keys", no.keys},
                {"needle_depths", no.depths},
                {"needle_seed", needle_seed},
                {"critical_dim_min", eo.search.critical_dim_min},
                {"critical_dim_max", eo.search.critical_dim_max},
                {"search_mscale", eo.search_mscale},
                {"mscale_iterations", eo.mscale.iterations},
                {"mscale_step", eo.mscale_step},
                {"population", so.population},
                {"mutations", so.mutations},
                {"crossovers", so.crossovers},
                {"topk", so.top_k},
                {"iterations", so.iterations},
                {"seed", seed},
                {"max_seconds", so.max_seconds},
                {"model_fnv1a", fnv1a_hex(model_bytes.data(), model_bytes.size())},
                {"model_seq_len", mc.seq_len},
                {"windows_fnv1a", windows_fingerprint(material, {})}};
  }
  if (const auto resume = opt.get("--resume")) {
    resumed = load_longrope2_state(*resume, settings);
    if (!checkpoint) checkpoint = *resume;
    std::fprintf(stderr, "search longrope2: resumed %s at %s stage, %zu run(s) started\n", resume->c_str(),
                 resumed->mscale ? "the mscale" : "the factor", resumed->factors.runs.size());
  }
  if (checkpoint) install_interrupt_handlers();  // the search stops after the generation in flight
  const external_target target{llama2c::search_target_for(mc, context), 1.0};
  llama2c::longrope2_extension_checkpoint_callback save;
  if (checkpoint) {
    save = [&](const llama2c::longrope2_extension_checkpoint& cp) { save_longrope2_state(*checkpoint, cp, target, settings); };
  }
  // Baselines under the same fitness.
  std::vector<longrope::rope_frequencies> base;
  for (auto meth : {llama2c::scaling_method::none, llama2c::scaling_method::pi, llama2c::scaling_method::ntk,
                    llama2c::scaling_method::yarn}) {
    llama2c::scaling sc;
    sc.method = meth;
    base.push_back(llama2c::make_frequencies(mc, sc, context));
  }
  const auto b = score(base);
  const auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "search longrope2: context %lld (scale %.3g), fitness %s, %lld window(s)\n",
               static_cast<long long>(context), static_cast<double>(context) / mc.seq_len, fitness.c_str(),
               static_cast<long long>(windows));
  const auto r = llama2c::search_longrope2(mc, eo, score, [](const longrope::search_progress& p) {
    std::fprintf(stderr, "search longrope2: generation %d/%d  best %.5f  %lld evaluations  %.1f s\n", p.iteration,
                 p.iterations, p.best_score, static_cast<long long>(p.evaluations), p.elapsed_seconds);
    return g_interrupt_signal == 0;
  }, resumed ? &*resumed : nullptr, save);
  const int signal = r.stopped ? static_cast<int>(g_interrupt_signal) : 0;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  nlohmann::json out;
  out["method"] = "longrope2";
  out["fitness"] = fitness;
  out["rescale_factors"] = r.rope.longrope.long_factor;
  out["long_factor"] = r.rope.longrope.long_factor;
  out["short_factor"] = r.rope.longrope.short_factor;
  out["pair_mscale"] = r.pair_mscale.empty() ? nlohmann::json() : nlohmann::json(r.pair_mscale);
  out["attention_factor"] = 1.0;
  out["n_hat"] = 0;
  out["critical_dim"] = r.factors.critical_dim;
  const int d = mc.head_size();
  out["d_tcd"] = longrope::theoretical_critical_dim(d, 10000.0, mc.seq_len);
  out["d10_tcd"] = longrope::d10_critical_dim(d, 10000.0, mc.seq_len);
  std::int64_t evals = r.mscale.evaluations;
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& run : r.factors.runs) {
    runs.push_back({{"critical_dim", run.critical_dim},
                    {"score", json_number(run.result.best_score)},
                    {"rescale_factors", run.result.best.factors},
                    {"evaluations", run.result.evaluations},
                    {"stop_reason", longrope::to_string(run.result.reason)}});
    evals += run.result.evaluations;
  }
  out["runs"] = runs;
  out["score"] = json_number(r.score);
  out["factor_score"] = json_number(r.factor_score);
  out["baselines"] = {{"none", json_number(b[0])}, {"pi", json_number(b[1])}, {"ntk", json_number(b[2])},
                      {"yarn", json_number(b[3])}};
  out["evaluations"] = evals;
  out["seconds"] = secs;
  out["context"] = context;
  out["windows"] = windows;
  out["first_window"] = first;
  out["seed"] = seed;
  if (fitness == "needle") out["needle"] = {{"keys", no.keys}, {"seed", needle_seed}};
  out["original_max_position_embeddings"] = mc.seq_len;
  out["max_position_embeddings"] = context;
  out["rope_scaling"] = longrope::to_rope_scaling_json(r.rope);
  if (!r.pair_mscale.empty()) {
    out["rope_scaling_note"] = "transformers' rope_scaling has one scalar attention_factor: pair_mscale is not in it";
  }
  char best[64];
  std::snprintf(best, sizeof best, "%.9g", r.score);
  return finish_search(out, signal, "search longrope2", static_cast<long long>(evals), best, checkpoint,
                       "the same command and --resume ", out_path);
}

}  // namespace longrope_cli
