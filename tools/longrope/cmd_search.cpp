// `longrope search`: the LongRoPE evolutionary search of rescale factors for a
// llama2.c model, with its perplexity at the target context as the fitness.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include <longrope/checked.hpp>
#include <longrope/io.hpp>
#include <longrope/json.hpp>
#include <llama2c/extension.hpp>
#include <llama2c/perplexity.hpp>
#include <llama2c/transformer.hpp>

#include "cli_args.hpp"
#include "cmd_model.hpp"
#include "cmd_search_longrope2.hpp"
#include "commands.hpp"
#include "evaluator_pool.hpp"
#include "model_search_state.hpp"
#include "search_defaults.hpp"
#include "search_output.hpp"

namespace longrope_cli {

namespace {
const char* const kSearchHelp =
    "usage: longrope search --model M --tokenizer T (--text FILE | --tokens FILE) --context N\n"
    "                       [--windows W] [--first-window K] [--population P] [--mutations N1]\n"
    "                       [--crossovers N2] [--topk K] [--iterations T] [--seed S] [--threads J]\n"
    "                       [--no-n-hat] [--lambda-max X] [--max-seconds S] [--out FILE]\n"
    "                       [--optimizer O] [--budget B] [--validation-windows V] [--validation-patience G]\n"
    "                       [--checkpoint FILE] [--resume FILE]\n"
    "\n"
    "Searches per-pair rescale factors lambda_i (non-decreasing, grid 0.01 in [1, 1.25 s],\n"
    "s = N / trained length) and n_hat minimising the perplexity of W windows of N tokens\n"
    "(the eval protocol), seeded with PI, NTK and YaRN. Progress goes to stderr; the result\n"
    "is printed and written to --out as JSON: rescale_factors, n_hat, attention_factor,\n"
    "perplexity, baselines {none, pi, ntk, yarn} on the same windows, evaluations, seconds,\n"
    "rope_scaling (a transformers rope_scaling block), and the search settings.\n"
    "Deterministic for a seed, whatever --threads. Without --first-window the W train and\n"
    "V validation windows are interleaved over the whole text; the search ranks on train\n"
    "windows only and returns the best candidate on the validation windows (JSON:\n"
    "optimizer {strategy, ..., budget}, validation {perplexity, log_se, evaluations, ...}).\n"
    "Without tuning flags the optimizer and budget are the best measured\n"
    "(docs/search-quality.md); --optimizer alone starts from the paper's P, N1, N2, k, T.\n"
    "Any other model: see `longrope search --evaluator CMD --help` (external evaluators,\n"
    "MPI, checkpoints).\n"
    "\n"
    "  --windows W        windows scored per candidate (default 2)\n"
    "  --first-window K   consecutive windows from window K (validation right after them)\n"
    "  --population P     initial population (paper 64; default 16, --optimizer evolution 64)\n"
    "  --mutations N1     mutated children per generation (default 8, evolution 16)\n"
    "  --crossovers N2    crossover children per generation (default 0, evolution 16)\n"
    "  --topk K           elite kept as parents (default 8, evolution 32)\n"
    "  --iterations T     generations after the initial one (default 47, evolution 40)\n"
    "  --seed S           search seed (default 0)\n"
    "  --threads J        evaluation threads, at most 1024 (default: all cores)\n"
    "  --no-n-hat         keep n_hat = 0 (the official release) instead of searching it\n"
    "  --lambda-max X     grid top (default 1.25 s)\n"
    "  --max-seconds S    wall-time budget, checked after each generation (default none)\n"
    "  --out FILE         also write the JSON result here\n"
    "  --optimizer O      surrogate (default), evolution (the paper), random, gaussian (search/strategy.hpp)\n"
    "  --budget B         search evaluations at most (default 392, other optimizers 0: none;\n"
    "                     validation comes on top)\n"
    "  --validation-windows V  windows the final choice is made on (default 2; 0: none)\n"
    "  --validation-patience G stop after G generations without a validation gain (0: off)\n"
    "  --checkpoint FILE  write the whole state here (atomically) at the start and after each\n"
    "                     generation; SIGINT/SIGTERM stop after the generation being scored,\n"
    "                     write it, print the best so far and exit 130/143\n"
    "  --resume FILE      continue FILE's search bit-identically: give the same command line\n"
    "                     (model, text, options; --threads may differ); keeps checkpointing\n"
    "                     to FILE unless --checkpoint names another\n"
    "A sidecar M.json written by `finetune` beside the model adds its factors as a seed.\n"
    "\n"
    "--method longrope2 runs LongRoPE2 instead (longrope search --method longrope2 --help).\n";
bool gives_model(const args& a) {
  for (const auto& s : a) {
    if (s == "--model" || s.rfind("--model=", 0) == 0) return true;
  }
  return false;
}
}  // namespace

int cmd_search(const args& a) {
  if (is_longrope2_search(a)) return cmd_search_longrope2(a);
  // --evaluator / --mpi / --config / --resume without --model: external evaluators (cmd_external.cpp).
  if (wants_external_search(a) && !gives_model(a)) return cmd_search_external(a);
  const option_parser opt(a, model_options({"--text", "--tokens", "--context", "--windows", "--first-window",
                                            "--population", "--mutations", "--crossovers", "--topk", "--iterations",
                                            "--seed", "--threads", "--lambda-max", "--max-seconds", "--out",
                                            kSearchTuningFlags[0], kSearchTuningFlags[1], kSearchTuningFlags[2],
                                            kSearchTuningFlags[3], "--checkpoint", "--resume"}),
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
  llama2c::validated_options vo;
  std::int64_t validation_windows = 0;
  apply_search_setup(opt, vo, validation_windows);
  llama2c::extension_options& eo = vo.extension;
  eo.context = context;
  const std::int64_t threads = opt.int_or("--threads", 0);
  if (threads < 0 || threads > 1024) {
    throw std::invalid_argument("--threads: must be in [0, 1024], got " + std::to_string(threads));
  }
  eo.search.threads = static_cast<int>(threads);
  const std::uint64_t seed = opt.seed();
  eo.search.seed = seed;
  eo.search_n_hat = !opt.has("--no-n-hat");
  eo.lambda_max = opt.double_or("--lambda-max", 0.0);
  if (opt.has("--lambda-max") && !(eo.lambda_max >= 1.0)) throw std::invalid_argument("--lambda-max: must be >= 1");
  eo.search.max_seconds = opt.double_or("--max-seconds", 0.0);
  if (eo.search.max_seconds < 0.0) throw std::invalid_argument("--max-seconds: must be >= 0");
  const auto out_path = opt.get("--out");

  const loaded_model m = load_model(opt);
  const std::string model_bytes = (opt.has("--checkpoint") || opt.has("--resume"))
                                      ? longrope::read_file(opt.required("--model")) : std::string();
  // A fine-tuned model's sidecar (finetune): its LongRoPE factors seed the search.
  if (const std::string side = sidecar_path(opt.required("--model")); std::ifstream(side).good()) {
    const nlohmann::json j = read_json_file(side);
    if (!j.is_object() || !j.contains("scaling")) throw std::invalid_argument(side + ": no \"scaling\" object");
    const llama2c::scaling s = scaling_from_json(j["scaling"], side + ": scaling");
    if (s.method == llama2c::scaling_method::longrope) {
      eo.seeds.push_back({s.factors, s.n_hat});
      std::fprintf(stderr, "search: seeded with the factors of %s\n", side.c_str());
    }
  }
  const auto stream = read_stream(opt, m);
  // --first-window: consecutive windows from K, validation right after them;
  // else train and validation windows interleaved over the whole text.
  const auto split = opt.has("--first-window")
                         ? llama2c::window_split{llama2c::make_windows(stream, context, windows, first),
                                                 validation_windows > 0 ? llama2c::make_windows(stream, context,
                                                                              validation_windows, longrope::checked_add(first, windows, "--first-window + --windows"))
                                                                        : std::vector<std::vector<int>>{}}
                         : llama2c::split_windows(stream, context, windows, validation_windows, 0,
                                                  static_cast<std::int64_t>(stream.size()));
  // Candidates are scored a generation at a time: every thread can be busy.
  check_forward_memory(m.ck.config, context, effective_threads(eo.search.threads, std::int64_t{1} << 30), "--context");
  const llama2c::transformer<float> model(m.ck);
  const auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "search: context %lld (scale %.3g), %lld window(s), population %d, %d iterations\n",
               static_cast<long long>(context), static_cast<double>(context) / m.ck.config.seq_len,
               static_cast<long long>(windows), eo.search.population, eo.search.iterations);
  // --checkpoint / --resume: the CLI's one state format (model_search_state.hpp).
  const external_target target{llama2c::search_target_for(m.ck.config, context), eo.attention_factor.value_or(1.0)};
  nlohmann::json settings = {{"context", context},
                             {"windows", windows},
                             {"first_window", opt.has("--first-window") ? nlohmann::json(first) : nlohmann::json()},
                             {"validation_windows", validation_windows},
                             {"validation_patience", vo.validation_patience},
                             {"validate_top", vo.validate_top},
                             {"model_fnv1a", fnv1a_hex(model_bytes.data(), model_bytes.size())},
                             {"model_seq_len", m.ck.config.seq_len},
                             {"windows_fnv1a", windows_fingerprint(split.train, split.validation)},
                             {"seeds", nlohmann::json::array()}};
  for (const auto& sd : eo.seeds) settings["seeds"].push_back({{"factors", sd.factors}, {"n_hat", sd.n_hat}});
  std::optional<std::string> checkpoint = opt.get("--checkpoint");
  std::optional<llama2c::validated_checkpoint> resumed;
  if (const auto resume = opt.get("--resume")) {
    longrope::search_checkpoint fresh;
    fresh.space = llama2c::space_config_for(m.ck.config, eo);
    fresh.options = eo.search;
    resumed = load_model_search(*resume, fresh, settings, eo.search.threads);
    if (!checkpoint) checkpoint = *resume;
    std::fprintf(stderr, "search: resumed %s at generation %d, %lld evaluations\n", resume->c_str(),
                 resumed->search.iteration, static_cast<long long>(resumed->search.evaluations));
  }
  if (checkpoint || resumed) install_interrupt_handlers();  // the search stops after the generation in flight
  llama2c::validated_checkpoint_callback save;
  if (checkpoint) {
    save = [&](const llama2c::validated_checkpoint& cp) { save_model_search(*checkpoint, cp, target, settings); };
  }
  const auto v = llama2c::search_factors_validated(model, split.train, split.validation, vo,
                                                  [](const longrope::search_progress& p) {
    std::fprintf(stderr, "search: generation %d/%d  best perplexity %.5f  %lld evaluations  %.1f s", p.iteration,
                 p.iterations, p.best_score, static_cast<long long>(p.evaluations), p.elapsed_seconds);
    if (std::isfinite(p.seconds_left)) std::fprintf(stderr, "  ~%.0f s left", p.seconds_left);
    std::fputc('\n', stderr);
    return g_interrupt_signal == 0;
  }, resumed ? &*resumed : nullptr, save);
  const int signal = g_interrupt_signal;
  const llama2c::extension_result& r = v.extension;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& [name, value] : {std::pair<const char*, double>{"best", r.search.best_score}, {"none", r.baselines.none},
                                {"pi", r.baselines.pi}, {"ntk", r.baselines.ntk}, {"yarn", r.baselines.yarn}}) {
    if (!std::isfinite(value)) {
      throw std::invalid_argument(std::string("perplexity (") + name + ") is not finite (" + std::to_string(value) +
                                  "): the model's activations overflow float32");
    }
  }

  nlohmann::json out;
  out["rescale_factors"] = v.chosen.factors;
  out["n_hat"] = v.chosen.n_hat;
  out["attention_factor"] = longrope::rope_frequencies(r.rope).attention_factor();
  out["perplexity"] = json_number(v.chosen_train);
  out["perplexity_log_se"] = json_number(v.train_stats.log_se);
  out["optimizer"] = search_setup_json(eo.search);
  out["validation"] = {{"windows", split.validation.size()},
                       {"perplexity", json_number(v.chosen_validation)},
                       {"log_se", json_number(v.validation_stats.log_se)},
                       {"evaluations", v.validation_evaluations},
                       {"patience", vo.validation_patience},
                       {"baselines", {{"none", json_number(v.validation_baselines.none)},
                                      {"pi", json_number(v.validation_baselines.pi)},
                                      {"ntk", json_number(v.validation_baselines.ntk)},
                                      {"yarn", json_number(v.validation_baselines.yarn)}}}};
  out["baselines"] = {{"none", json_number(r.baselines.none)},
                      {"pi", json_number(r.baselines.pi)},
                      {"ntk", json_number(r.baselines.ntk)},
                      {"yarn", json_number(r.baselines.yarn)}};
  out["evaluations"] = r.search.evaluations;
  out["iterations"] = r.search.iterations;
  out["stop_reason"] = v.stop_reason;
  out["seconds"] = secs;
  out["context"] = context;
  out["windows"] = windows;
  out["first_window"] = first;
  out["seed"] = seed;
  out["original_max_position_embeddings"] = m.ck.config.seq_len;
  out["rope_scaling"] = longrope::to_rope_scaling_json(r.rope);
  char best[64];
  std::snprintf(best, sizeof best, "perplexity %.9g", v.chosen_train);
  return finish_search(out, signal, "search", static_cast<long long>(r.search.evaluations), best, checkpoint,
                       "the same command and --resume ", out_path);
}

}  // namespace longrope_cli
