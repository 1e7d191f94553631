// `longrope search`: the LongRoPE evolutionary search of rescale factors for a
// llama2.c model, with its perplexity at the target context as the fitness.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include <longrope/json.hpp>
#include <llama2c/extension.hpp>
#include <llama2c/perplexity.hpp>
#include <llama2c/transformer.hpp>

#include "cli_args.hpp"
#include "cmd_model.hpp"
#include "commands.hpp"

namespace longrope_cli {

namespace {
const char* const kSearchHelp =
    "usage: longrope search --model M --tokenizer T (--text FILE | --tokens FILE) --context N\n"
    "                       [--windows W] [--first-window K] [--population P] [--mutations N1]\n"
    "                       [--crossovers N2] [--topk K] [--iterations T] [--seed S] [--threads J]\n"
    "                       [--no-n-hat] [--lambda-max X] [--max-seconds S] [--out FILE]\n"
    "\n"
    "Searches per-pair rescale factors lambda_i (non-decreasing, grid 0.01 in [1, 1.25 s],\n"
    "s = N / trained length) and n_hat minimising the perplexity of W windows of N tokens\n"
    "(the eval protocol), seeded with PI, NTK and YaRN. Progress goes to stderr; the result\n"
    "is printed and written to --out as JSON: rescale_factors, n_hat, attention_factor,\n"
    "perplexity, baselines {none, pi, ntk, yarn} on the same windows, evaluations, seconds,\n"
    "rope_scaling (a transformers rope_scaling block), and the search settings.\n"
    "Deterministic for a seed, whatever --threads. Any other model: see\n"
    "`longrope search --evaluator CMD --help` (external evaluators, MPI, checkpoints).\n"
    "\n"
    "  --windows W        windows scored per candidate (default 2)\n"
    "  --first-window K   skip the first K windows of the text (default 0)\n"
    "  --population P     initial population (paper 64, default 64)\n"
    "  --mutations N1     mutated children per generation (default 16)\n"
    "  --crossovers N2    crossover children per generation (default 16)\n"
    "  --topk K           elite kept as parents (default 32)\n"
    "  --iterations T     generations after the initial one (default 40)\n"
    "  --seed S           search seed (default 0)\n"
    "  --threads J        evaluation threads (default: all cores)\n"
    "  --no-n-hat         keep n_hat = 0 (the official release) instead of searching it\n"
    "  --lambda-max X     grid top (default 1.25 s)\n"
    "  --max-seconds S    wall-time budget, checked after each generation (default none)\n"
    "  --out FILE         also write the JSON result here\n";
}  // namespace

int cmd_search(const args& a) {
  // --evaluator / --mpi / --config / --resume: external evaluators (cmd_external.cpp).
  if (wants_external_search(a)) return cmd_search_external(a);
  const option_parser opt(a, model_options({"--text", "--tokens", "--context", "--windows", "--first-window",
                                            "--population", "--mutations", "--crossovers", "--topk", "--iterations",
                                            "--seed", "--threads", "--lambda-max", "--max-seconds", "--out"}),
                          {"--no-n-hat"});
  if (opt.help()) {
    std::fputs(kSearchHelp, stdout);
    return 0;
  }
  const std::int64_t context = option_parser::parse_int(opt.required("--context"), "--context");
  if (context < 2) throw std::invalid_argument("--context: must be >= 2, got " + std::to_string(context));
  const std::int64_t windows = opt.int_or("--windows", 2);
  if (windows < 1) throw std::invalid_argument("--windows: must be >= 1");
  const std::int64_t first = opt.int_or("--first-window", 0);
  if (first < 0) throw std::invalid_argument("--first-window: must be >= 0");
  auto small_int = [&](const char* name, std::int64_t fallback, std::int64_t lo) {
    const std::int64_t v = opt.int_or(name, fallback);
    if (v < lo || v > 1000000) {
      throw std::invalid_argument(std::string(name) + ": must be in [" + std::to_string(lo) + ", 1000000], got " +
                                  std::to_string(v));
    }
    return static_cast<int>(v);
  };
  llama2c::extension_options eo;
  eo.context = context;
  eo.search.population = small_int("--population", 64, 1);
  eo.search.mutations = small_int("--mutations", 16, 0);
  eo.search.crossovers = small_int("--crossovers", 16, 0);
  eo.search.top_k = small_int("--topk", 32, 1);
  eo.search.iterations = small_int("--iterations", 40, 0);
  eo.search.threads = small_int("--threads", 0, 0);
  const std::int64_t seed = opt.int_or("--seed", 0);
  if (seed < 0) throw std::invalid_argument("--seed: must be >= 0");
  eo.search.seed = static_cast<std::uint64_t>(seed);
  eo.search_n_hat = !opt.has("--no-n-hat");
  eo.lambda_max = opt.double_or("--lambda-max", 0.0);
  if (opt.has("--lambda-max") && !(eo.lambda_max >= 1.0)) throw std::invalid_argument("--lambda-max: must be >= 1");
  eo.search.max_seconds = opt.double_or("--max-seconds", 0.0);
  if (eo.search.max_seconds < 0.0) throw std::invalid_argument("--max-seconds: must be >= 0");
  const auto out_path = opt.get("--out");

  const loaded_model m = load_model(opt);
  const auto stream = read_stream(opt, m);
  const auto wins = llama2c::make_windows(stream, context, windows, first);
  const llama2c::transformer<float> model(m.ck);
  const auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "search: context %lld (scale %.3g), %lld window(s), population %d, %d iterations\n",
               static_cast<long long>(context), static_cast<double>(context) / m.ck.config.seq_len,
               static_cast<long long>(windows), eo.search.population, eo.search.iterations);
  const auto r = llama2c::search_factors(model, wins, eo, [](const longrope::search_progress& p) {
    std::fprintf(stderr, "search: generation %d/%d  best perplexity %.5f  %lld evaluations  %.1f s", p.iteration,
                 p.iterations, p.best_score, static_cast<long long>(p.evaluations), p.elapsed_seconds);
    if (std::isfinite(p.seconds_left)) std::fprintf(stderr, "  ~%.0f s left", p.seconds_left);
    std::fputc('\n', stderr);
    return true;
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  nlohmann::json out;
  out["rescale_factors"] = r.search.best.factors;
  out["n_hat"] = r.search.best.n_hat;
  out["attention_factor"] = longrope::rope_frequencies(r.rope).attention_factor();
  out["perplexity"] = json_number(r.search.best_score);
  out["baselines"] = {{"none", json_number(r.baselines.none)},
                      {"pi", json_number(r.baselines.pi)},
                      {"ntk", json_number(r.baselines.ntk)},
                      {"yarn", json_number(r.baselines.yarn)}};
  out["evaluations"] = r.search.evaluations;
  out["iterations"] = r.search.iterations;
  out["stop_reason"] = longrope::to_string(r.search.reason);
  out["seconds"] = secs;
  out["context"] = context;
  out["windows"] = windows;
  out["first_window"] = first;
  out["seed"] = seed;
  out["original_max_position_embeddings"] = m.ck.config.seq_len;
  out["rope_scaling"] = longrope::to_rope_scaling_json(r.rope);
  const std::string text = out.dump(2);
  std::printf("%s\n", text.c_str());
  if (out_path) {
    std::ofstream f(*out_path);
    if (!(f << text << '\n')) throw std::invalid_argument(*out_path + ": cannot write");
  }
  return 0;
}

}  // namespace longrope_cli
