// `longrope generate`: text from a llama2.c model with the KV cache, under any
// RoPE scaling method; greedy at temperature 0.
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include <llama2c/generate.hpp>
#include <llama2c/transformer.hpp>

#include "cli_args.hpp"
#include "cmd_model.hpp"
#include "commands.hpp"

namespace longrope_cli {

namespace {
const char* const kGenerateHelp =
    "usage: longrope generate --model M --tokenizer T [--prompt TEXT] [--steps N]\n"
    "                         [--temperature X] [--seed S] [scaling flags]\n"
    "\n"
    "Streams the prompt and its continuation on stderr as they are generated (progress), then\n"
    "prints JSON on stdout: text, continuation, token ids, counts, the scaling and the seconds.\n"
    "Stops after N positions (prompt and BOS included, as llama2.c's -n) or when the model\n"
    "emits BOS.\n"
    "\n"
    "  --prompt TEXT     text to continue (default: none, generation starts from BOS)\n"
    "  --steps N         total positions, default 256; the scaling methods use N as the context\n"
    "  --temperature X   0 (default) is greedy; > 0 samples softmax(logits / X)\n"
    "  --seed S          sampling seed (default 0), run.c's xorshift generator\n";
}  // namespace

int cmd_generate(const args& a) {
  const option_parser opt(a, model_options(with_scaling_options({"--prompt", "--steps", "--temperature", "--seed"})));
  if (opt.help()) {
    std::fputs(kGenerateHelp, stdout);
    std::fputs(kScalingHelp, stdout);
    return 0;
  }
  llama2c::generate_options g;
  g.steps = opt.int_or("--steps", 256);
  if (g.steps < 2 || g.steps > (std::int64_t{1} << 24)) throw std::invalid_argument("--steps: must be in [2, 2^24]");
  g.temperature = opt.double_or("--temperature", 0.0);
  if (g.temperature < 0.0) throw std::invalid_argument("--temperature: must be >= 0");
  g.seed = opt.seed();
  const llama2c::scaling sc = parse_scaling(opt);

  const loaded_model m = load_model(opt);
  const auto f = llama2c::make_frequencies(m.ck.config, sc, g.steps);
  const llama2c::transformer<float> model(m.ck);
  const auto prompt = m.tok.encode(opt.get_or("--prompt", ""), true, false);
  if (static_cast<std::int64_t>(prompt.size()) > g.steps) {
    throw std::invalid_argument("--steps (" + std::to_string(g.steps) + ") is shorter than the prompt (" +
                                std::to_string(prompt.size()) + " tokens)");
  }
  const std::string prompt_text = m.tok.decode(prompt);
  std::fputs(prompt_text.c_str(), stderr);
  std::string continuation;
  const auto t0 = std::chrono::steady_clock::now();
  const auto seq = llama2c::generate(model, f, prompt, g, [&](int prev, int tok) {
    const std::string piece = m.tok.decode_piece(prev, tok);
    continuation += piece;
    std::fwrite(piece.data(), 1, piece.size(), stderr);
    std::fflush(stderr);
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fputc('\n', stderr);
  nlohmann::json out;
  out["text"] = prompt_text + continuation;
  out["prompt"] = prompt_text;
  out["continuation"] = continuation;
  out["tokens"] = seq;
  out["prompt_tokens"] = prompt.size();
  out["generated_tokens"] = seq.size() - prompt.size();
  out["steps"] = g.steps;
  out["temperature"] = g.temperature;
  out["seed"] = g.seed;
  put_scaling(out, sc, f);
  out["seconds"] = secs;
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace longrope_cli
