// `longrope eval`: perplexity of a llama2.c model on a text with the LongRoPE
// paper's windows protocol, under any RoPE scaling method; one JSON object.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include <llama2c/perplexity.hpp>
#include <llama2c/transformer.hpp>

#include "cli_args.hpp"
#include "cmd_model.hpp"
#include "commands.hpp"

namespace longrope_cli {

namespace {
const char* const kEvalHelp =
    "usage: longrope eval --model M --tokenizer T (--text FILE | --tokens FILE) --context N\n"
    "                     [--windows W] [--first-window K] [--threads J]\n"
    "                     [--method none|pi|ntk|yarn|longrope] [--factors a,b,...] [--n-hat K]\n"
    "                     [--attention-factor X]\n"
    "\n"
    "Perplexity with the paper's protocol: the token stream is cut into consecutive windows\n"
    "of N tokens, each BOS followed by the next N-1 tokens; perplexity = exp(mean NLL over\n"
    "every predicted token of every window). Prints one JSON object: perplexity,\n"
    "tokens_scored, windows, context, method, factors (the lambda_i in use), n_hat,\n"
    "attention_factor, seconds.\n"
    "\n"
    "  --model M         a llama2.c checkpoint (version 0 or 1, float32)\n"
    "  --tokenizer T     its tok*.bin\n"
    "  --text FILE       text, encoded as llama2.c's run.c does (no BOS: the windows add it)\n"
    "  --tokens FILE     whitespace-separated token ids (the stream, without BOS)\n"
    "  --context N       window length in tokens, BOS included (>= 2)\n"
    "  --windows W       number of windows (default: every whole window of the text)\n"
    "  --first-window K  skip the first K windows (default 0), e.g. to evaluate on held-out text\n"
    "  --threads J       worker threads (default: all cores); results do not depend on it\n";
}  // namespace

int cmd_eval(const args& a) {
  const option_parser opt(a, model_options(with_scaling_options(
                                 {"--text", "--tokens", "--context", "--windows", "--first-window", "--threads"})));
  if (opt.help()) {
    std::fputs(kEvalHelp, stdout);
    std::fputs(kScalingHelp, stdout);
    return 0;
  }
  const std::int64_t context = option_parser::parse_int(opt.required("--context"), "--context");
  if (context < 2) throw std::invalid_argument("--context: must be >= 2, got " + std::to_string(context));
  const std::int64_t windows = opt.int_or("--windows", 0);
  if (opt.has("--windows") && windows < 1) throw std::invalid_argument("--windows: must be >= 1");
  const std::int64_t first = opt.int_or("--first-window", 0);
  if (first < 0) throw std::invalid_argument("--first-window: must be >= 0");
  const std::int64_t threads = opt.int_or("--threads", 0);
  if (threads < 0 || threads > 1024) throw std::invalid_argument("--threads: must be in [0, 1024]");
  const llama2c::scaling sc = parse_scaling(opt, context);

  const loaded_model m = load_model(opt);
  const auto f = llama2c::make_frequencies(m.ck.config, sc, context);
  const auto stream = read_stream(opt, m);
  const auto wins = llama2c::make_windows(stream, context, windows, first);
  check_forward_memory(m.ck.config, context, effective_threads(threads, static_cast<std::int64_t>(wins.size())),
                       "--context");
  const llama2c::transformer<float> model(m.ck);
  const auto t0 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "eval: %zu window(s) of %lld tokens, method %s\n", wins.size(), static_cast<long long>(context),
               llama2c::to_string(sc.method));
  const auto r = llama2c::evaluate_perplexity(model, wins, f, static_cast<int>(threads));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!std::isfinite(r.perplexity())) {
    throw std::invalid_argument("perplexity is not finite (" + std::to_string(r.perplexity()) +
                                "): the model's activations overflow float32");
  }
  std::fprintf(stderr, "eval: done in %.1f s\n", secs);

  nlohmann::json out;
  out["perplexity"] = json_number(r.perplexity());
  out["tokens_scored"] = r.tokens;
  out["windows"] = r.windows;
  out["first_window"] = first;
  out["context"] = context;
  put_scaling(out, sc, f);
  out["seconds"] = secs;
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace longrope_cli
