// `longrope passkey`: the LongRoPE paper's passkey retrieval task on a
// llama2.c model: a 5-digit key hidden at a random depth in filler text, read
// back by greedy decoding.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/search.hpp>
#include <llama2c/generate.hpp>
#include <llama2c/passkey.hpp>
#include <llama2c/transformer.hpp>

#include "cli_args.hpp"
#include "cmd_model.hpp"
#include "commands.hpp"

namespace longrope_cli {

namespace {
const char* const kPasskeyHelp =
    "usage: longrope passkey --model M --tokenizer T --context N [--trials K] [--seed S]\n"
    "                        [scaling flags]\n"
    "\n"
    "The paper's passkey retrieval: an instruction, filler sentences (\"The grass is green.\n"
    "The sky is blue. ...\") filling the context to N tokens, the line \"The pass key is\n"
    "NNNNN. Remember it. NNNNN is the pass key.\" at a uniformly random depth, then \"What\n"
    "is the pass key? The pass key is\"; the model continues greedily for 8 tokens and a\n"
    "trial counts as correct when the first 5-digit run of the answer is the key.\n"
    "Prints JSON: accuracy, correct, trials, context, method, factors, n_hat,\n"
    "attention_factor, and every trial (depth, key, answer).\n"
    "\n"
    "  --context N   prompt length in tokens (the prompt plus 8 answer tokens fit in N)\n"
    "  --trials K    number of keys and depths (default 10)\n"
    "  --seed S      seed of the keys and depths (default 0)\n";

constexpr std::int64_t kAnswerTokens = 8;

}  // namespace

int cmd_passkey(const args& a) {
  const option_parser opt(a, model_options(with_scaling_options({"--context", "--trials", "--seed"})));
  if (opt.help()) {
    std::fputs(kPasskeyHelp, stdout);
    std::fputs(kScalingHelp, stdout);
    return 0;
  }
  const std::int64_t context = option_parser::parse_int(opt.required("--context"), "--context");
  const std::int64_t trials = opt.int_or("--trials", 10);
  if (trials < 1 || trials > 100000) throw std::invalid_argument("--trials: must be in [1, 100000]");
  const std::uint64_t seed = opt.seed();
  if (context < 2) throw std::invalid_argument("--context: must be >= 2, got " + std::to_string(context));
  const llama2c::scaling sc = parse_scaling(opt, context);
  const loaded_model m = load_model(opt);
  check_forward_memory(m.ck.config, context, 1, "--context");
  const auto f = llama2c::make_frequencies(m.ck.config, sc, context);
  const llama2c::transformer<float> model(m.ck);

  const llama2c::passkey_pieces pieces(m.tok);
  const std::int64_t fixed = 1 + static_cast<std::int64_t>(pieces.intro.size() + pieces.question.size()) +
                             pieces.key_line_tokens + 4 + kAnswerTokens;
  const std::int64_t n_fill = (context - fixed) / static_cast<std::int64_t>(pieces.filler.size());
  if (n_fill < 1) {
    throw std::invalid_argument("--context: " + std::to_string(context) + " tokens are too few for the task (need >= " +
                                std::to_string(fixed + static_cast<std::int64_t>(pieces.filler.size())) + ")");
  }
  longrope::search_rng rng(seed);
  nlohmann::json results = nlohmann::json::array();
  std::int64_t correct = 0;
  for (std::int64_t t = 0; t < trials; ++t) {
    const std::string key = llama2c::passkey_key(rng);
    const auto depth_fill = static_cast<std::int64_t>(longrope::uniform_index(rng, static_cast<std::uint64_t>(n_fill) + 1));
    const std::vector<int> prompt =
        llama2c::passkey_prompt(pieces, llama2c::passkey_pieces::key_line(m.tok, key), n_fill, depth_fill);
    const std::size_t plen = prompt.size();
    llama2c::generate_options g;
    g.steps = static_cast<std::int64_t>(plen) + kAnswerTokens;
    const auto seq = llama2c::generate(model, f, prompt, g);
    std::string answer;
    for (std::size_t i = plen; i < seq.size(); ++i) answer += m.tok.decode_piece(seq[i - 1], seq[i]);
    std::string digits;
    for (char c : answer) {
      if (c >= '0' && c <= '9') {
        digits.push_back(c);
        if (digits.size() == 5) break;
      } else if (!digits.empty()) {
        digits.clear();
      }
    }
    const bool ok = digits == key;
    correct += ok ? 1 : 0;
    std::fprintf(stderr, "passkey: trial %lld/%lld  %s  (%lld correct)\n", static_cast<long long>(t + 1),
                 static_cast<long long>(trials), ok ? "correct" : "wrong", static_cast<long long>(correct));
    results.push_back({{"depth", static_cast<double>(depth_fill) / static_cast<double>(n_fill)},
                       {"key", key},
                       {"answer", answer},
                       {"prompt_tokens", plen},
                       {"correct", ok}});
  }
  nlohmann::json out;
  out["accuracy"] = static_cast<double>(correct) / static_cast<double>(trials);
  out["correct"] = correct;
  out["trials"] = trials;
  out["context"] = context;
  put_scaling(out, sc, f);
  out["results"] = results;
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace longrope_cli
