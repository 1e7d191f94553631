// `longrope freqs`: the frequencies, rescale factors and attention factor of a
// transformers config.json, as one JSON object on stdout.
#include <cstdio>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include <longrope/frequencies.hpp>
#include <longrope/json.hpp>

#include "cli_args.hpp"
#include "cmd_numerics.hpp"
#include "commands.hpp"

namespace longrope_cli {

namespace {
const char* const kFreqsHelp =
    "usage: longrope freqs --config FILE [--seq-len N]\n"
    "\n"
    "Prints one JSON object: rope_type, head_dim, rotary_dim, base, attention_factor,\n"
    "inv_freq[rotary_dim/2], rescale_factors[rotary_dim/2] (lambda_i = theta_i / inv_freq_i)\n"
    "and factor_set (\"short\", \"long\", or null for methods without factor sets).\n"
    "\n"
    "  --config FILE   a transformers config.json (rope_scaling or rope_parameters)\n"
    "  --seq-len N     the sequence length (max position + 1): LongRoPE uses the long\n"
    "                  factors iff N > original_max_position_embeddings, dynamic NTK grows\n"
    "                  from it. Without it: short factors, no growth (transformers at start-up).\n";
}  // namespace

int cmd_freqs(const args& a) {
  const option_parser opt(a, {"--config", "--seq-len"});
  if (opt.help()) {
    std::fputs(kFreqsHelp, stdout);
    return 0;
  }
  const longrope::rope_config cfg = longrope::load_rope_config(opt.required("--config"));
  const longrope::rope_frequencies f(cfg, frequency_options_from(opt));
  nlohmann::json out;
  out["rope_type"] = longrope::to_string(f.type());
  out["head_dim"] = f.head_dim();
  out["rotary_dim"] = f.rotary_dim();
  out["base"] = cfg.base;
  out["attention_factor"] = f.attention_factor();
  out["inv_freq"] = f.inv_freq();
  out["rescale_factors"] = f.rescale_factors();
  if (f.active_factor_set() == longrope::factor_set::none) {
    out["factor_set"] = nullptr;
  } else {
    out["factor_set"] = longrope::to_string(f.active_factor_set());
  }
  // nlohmann-json prints doubles with the shortest round-trip representation.
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace longrope_cli
