// `longrope extend`: the paper's progressive extension as one resumable
// command (llama2c/pipeline.hpp, docs/pipeline.md): search 4x, fine-tune at
// 4x with those factors, search 16x on the fine-tuned model, short-window
// readjustment, PI-FT / YaRN-FT baselines at the same budget, held-out
// evaluation. Stages are checkpointed in --work DIR; a rerun continues there.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include <longrope/io.hpp>
#include <llama2c/pipeline.hpp>

#include "cli_args.hpp"
#include "cmd_model.hpp"
#include "commands.hpp"

namespace longrope_cli {

namespace {
const char* const kExtendHelp =
    "usage: longrope extend --model M --tokenizer T (--text FILE | --tokens FILE) --work DIR\n"
    "                       [--stream-from K] [--until STAGE] [--resume] [--out FILE] [--no-baselines]\n"
    "                       [--mid-context N] [--long-context N] [--short-lambda-max X]\n"
    "                       [--short-seed ones|finetune] [--short-windows W] [--finetune-range A:B]\n"
    "                       [--population P] [--mutations N1] [--crossovers N2] [--topk K]\n"
    "                       [--iterations T] [--seed S] [--threads J] [--no-n-hat]\n"
    "                       [--search-windows W] [--eval-windows W] [--eval-lengths a,b,...]\n"
    "                       [--steps S] [--batch B] [--accum A] [--lr X] [--min-lr X] [--warmup W]\n"
    "                       [--decay D] [--clip X] [--weight-decay X] [--train-threads J] [--data-seed K]\n"
    "\n"
    "The progressive extension of a model trained at L0 tokens (its seq_len), as stages:\n"
    "  search1      LongRoPE search at the mid context (default 4 L0) on the base model\n"
    "  finetune     fine-tune at the mid context with search1's factors (DIR/finetune.bin)\n"
    "  search2      search at the long context (default 16 L0) on the fine-tuned model, seeded\n"
    "               with search1's factors (factors are totals relative to the original RoPE)\n"
    "  short        short factors at L0 on the fine-tuned model, grid [1, --short-lambda-max]\n"
    "  pi-ft, yarn-ft  the base model fine-tuned with PI / YaRN, same steps and data\n"
    "  search-base  LongRoPE at the long context on the base model (the no-fine-tuning row)\n"
    "  evaluate     held-out perplexity of every method at L0, mid and long (DIR/result.json);\n"
    "               the served model: DIR/finetune.bin + DIR/finetune.bin.json (long factors\n"
    "               as its scaling, short_scaling, a transformers rope_scaling block),\n"
    "               DIR/long-factors.json and DIR/short-factors.json for --factors-file\n"
    "Data: fine-tuning on stream tokens [0, n/4) (or --finetune-range), search windows from\n"
    "[n/4, n/2), held-out evaluation from [n/2, n); the stream is the tokens of --text or\n"
    "--tokens from --stream-from on. Each finished stage is written atomically to\n"
    "DIR/stage-NAME.json; a run finds them and continues at the first missing stage, so a\n"
    "killed run, rerun with the same options, ends with the same result (up to \"seconds\").\n"
    "Prints the result JSON (every stage's factors and scores, the served factors, the table).\n"
    "\n"
    "  --work DIR           the work directory (created if missing)\n"
    "  --stream-from K      drop the stream's first K tokens (default 0): e.g. so that a model\n"
    "                       trained on a prefix of the text is evaluated on text it never saw\n"
    "  --until STAGE        stop after STAGE (search1, finetune, search2, short, pi-ft, yarn-ft,\n"
    "                       search-base, evaluate)\n"
    "  --resume             require DIR to hold a started pipeline (else an error)\n"
    "  --out FILE           also write the printed JSON here\n"
    "  --no-baselines       skip pi-ft, yarn-ft and search-base\n"
    "  --short-lambda-max X grid top of the short stage (default 1.25)\n"
    "  --short-seed S       the short stage's seeds: ones (the identity, default) or finetune (also\n"
    "                       search1's factors clipped to the grid: the model was tuned with them)\n"
    "  --short-windows W    windows per short-stage candidate (default: --search-windows)\n"
    "  --finetune-range A:B fine-tune on tokens [A, B) of the whole text (before --stream-from),\n"
    "                       e.g. a model's pre-training text; default: the stream's [0, n/4)\n"
    "  --population P ... --iterations T  search budget of every search (default 8, 4, 4, 4, 4)\n"
    "  --seed S             search seed (default 0)\n"
    "  --threads J          evaluation threads (default: all cores; results do not depend on it)\n"
    "  --no-n-hat           n_hat = 0 instead of searched in the long searches\n"
    "  --search-windows W   windows per candidate (default 1)\n"
    "  --eval-windows W     held-out windows per length (default 2)\n"
    "  --eval-lengths L,... held-out lengths (default L0, mid, long)\n"
    "  --steps S            fine-tuning steps of every method (default 30); --batch (1), --accum (1),\n"
    "                       --lr (5e-4), --min-lr (lr/10), --warmup (4), --decay (cosine), --clip (1),\n"
    "                       --weight-decay (0), --train-threads (1: results depend on it), --data-seed (0)\n";
}  // namespace

int cmd_extend(const args& a) {
  const option_parser opt(
      a, model_options({"--text",          "--tokens",       "--work",         "--until",
                        "--out",           "--mid-context",  "--long-context", "--short-lambda-max",
                        "--population",    "--mutations",    "--crossovers",   "--topk",
                        "--iterations",    "--seed",         "--threads",      "--search-windows",
                        "--eval-windows",  "--eval-lengths", "--steps",        "--batch",
                        "--accum",         "--lr",           "--min-lr",       "--warmup",
                        "--decay",         "--clip",         "--weight-decay", "--train-threads",
                        "--data-seed",     "--stream-from",  "--short-seed",   "--short-windows",
                        "--finetune-range"}),
      {"--resume", "--no-baselines", "--no-n-hat"});
  if (opt.help()) {
    std::fputs(kExtendHelp, stdout);
    return 0;
  }
  const std::string work = opt.required("--work");
  const std::int64_t stream_from =
      opt.int_in("--stream-from", 0, 0, std::numeric_limits<std::int64_t>::max());
  llama2c::pipeline_options o;
  auto& s = o.search;
  s.population = static_cast<int>(opt.int_in("--population", 8, 1, 100000));
  s.mutations = static_cast<int>(opt.int_in("--mutations", 4, 0, 100000));
  s.crossovers = static_cast<int>(opt.int_in("--crossovers", 4, 0, 100000));
  s.top_k = static_cast<int>(opt.int_in("--topk", 4, 1, 100000));
  s.iterations = static_cast<int>(opt.int_in("--iterations", 4, 0, 100000));
  s.seed = static_cast<std::uint64_t>(opt.int_in("--seed", 0, 0, std::numeric_limits<std::int64_t>::max()));
  s.threads = static_cast<int>(opt.int_in("--threads", 0, 0, 1024));
  o.search_n_hat = !opt.has("--no-n-hat");
  o.search_windows = opt.int_in("--search-windows", 1, 1, 10000);
  o.eval_windows = opt.int_in("--eval-windows", 2, 1, 10000);
  o.short_lambda_max = opt.double_or("--short-lambda-max", 1.25);
  if (!(o.short_lambda_max >= 1.0) || o.short_lambda_max > 1000.0) {
    throw std::invalid_argument("--short-lambda-max: must be in [1, 1000]");
  }
  const std::string short_seed = opt.get_or("--short-seed", "ones");
  if (short_seed != "ones" && short_seed != "finetune") {
    throw std::invalid_argument("--short-seed: expected ones or finetune, got '" + short_seed + "'");
  }
  o.short_seed_finetune = short_seed == "finetune";
  o.short_windows = opt.has("--short-windows") ? opt.int_in("--short-windows", 1, 1, 10000) : 0;
  o.train.steps = opt.int_in("--steps", 30, 1, 100000000);
  o.train.batch = static_cast<int>(opt.int_in("--batch", 1, 1, 4096));
  o.train.accumulation = static_cast<int>(opt.int_in("--accum", 1, 1, 4096));
  o.train.threads = static_cast<int>(opt.int_in("--train-threads", 1, 1, 1024));
  o.train.warmup = opt.int_in("--warmup", 4, 0, 100000000);
  o.train.lr = opt.double_or("--lr", 5e-4);
  o.train.min_lr = opt.double_or("--min-lr", o.train.lr / 10);
  o.train.weight_decay = opt.double_or("--weight-decay", 0.0);
  o.train.clip = opt.double_or("--clip", 1.0);
  if (const auto d = opt.get("--decay")) o.train.decay = llama2c::parse_lr_decay(*d);
  o.train.validate();
  o.data_seed = static_cast<std::uint64_t>(opt.int_in("--data-seed", 0, 0, std::numeric_limits<std::int64_t>::max()));
  o.baselines = !opt.has("--no-baselines");
  o.until = opt.get_or("--until", "");
  if (!o.until.empty()) {
    const auto stages = llama2c::pipeline_stages(o);
    if (std::find(stages.begin(), stages.end(), o.until) == stages.end()) {
      std::string all;
      for (const auto& st : stages) all += (all.empty() ? "" : ", ") + st;
      throw std::invalid_argument("--until: unknown stage '" + o.until + "' (stages: " + all + ")");
    }
  }
  if (opt.has("--resume")) {
    std::error_code ec;
    const std::string first = (std::filesystem::path(work) / "stage-search1.json").string();
    if (!std::filesystem::exists(first, ec)) {
      throw std::invalid_argument("--resume: " + work + " holds no started pipeline (no " + first + ")");
    }
  }

  const loaded_model m = load_model(opt);
  const std::int64_t l0 = m.ck.config.seq_len;
  o.mid_context = opt.int_in("--mid-context", 4 * l0, l0 + 1, 1 << 20);
  o.long_context = opt.int_in("--long-context", 16 * l0, o.mid_context, 1 << 20);
  if (const auto e = opt.get("--eval-lengths")) {
    for (double v : option_parser::parse_double_list(*e, "--eval-lengths")) {
      if (v != static_cast<double>(static_cast<std::int64_t>(v)) || v < 2 || v > (1 << 20)) {
        throw std::invalid_argument("--eval-lengths: integers in [2, 1048576] expected");
      }
      o.eval_lengths.push_back(static_cast<std::int64_t>(v));
    }
  }
  std::int64_t longest = o.long_context;
  for (auto L : o.eval_lengths) longest = std::max(longest, L);
  check_forward_memory(m.ck.config, longest, effective_threads(s.threads, std::int64_t{1} << 30), "--long-context");
  auto stream = read_stream(opt, m);
  if (const auto r = opt.get("--finetune-range")) {
    const auto [a0, b0] = option_parser::parse_int_pair(*r, "--finetune-range");
    const auto total = static_cast<std::int64_t>(stream.size());
    if (a0 < 0 || b0 > total || b0 - a0 <= o.mid_context) {
      throw std::invalid_argument("--finetune-range " + *r + ": need 0 <= A, B <= " + std::to_string(total) +
                                  " (the text's tokens) and B - A > the mid context (" +
                                  std::to_string(o.mid_context) + ")");
    }
    o.finetune_tokens.assign(stream.begin() + static_cast<std::ptrdiff_t>(a0),
                             stream.begin() + static_cast<std::ptrdiff_t>(b0));
  }
  if (stream_from >= static_cast<std::int64_t>(stream.size())) {
    throw std::invalid_argument("--stream-from " + std::to_string(stream_from) + ": the stream has only " +
                                std::to_string(stream.size()) + " tokens");
  }
  stream.erase(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(stream_from));
  llama2c::pipeline p(m.ck, std::move(stream), work, o, [](const std::string& line) {
    std::fprintf(stderr, "%s\n", line.c_str());
  });
  const nlohmann::json out = p.run();
  const std::string text = out.dump(2);
  std::printf("%s\n", text.c_str());
  if (const auto f = opt.get("--out")) longrope::write_file_atomic(*f, text + "\n");
  return 0;
}

}  // namespace longrope_cli
