// `longrope export`: searched LongRoPE factors written into a model's
// config.json in the form one engine reads (include/longrope/export.hpp).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/io.hpp>
#include <longrope/export.hpp>

#include "cli_args.hpp"
#include "commands.hpp"

namespace longrope_cli {

namespace {
const char* const kExportHelp =
    "usage: longrope export --config IN.json --factors RESULT.json --target hf4|hf5|vllm --out OUT.json\n"
    "                       [--short-factors RESULT2.json] [--attention-factor A] [--drop-n-hat]\n"
    "\n"
    "Writes a complete config.json: IN with its rope block replaced by the searched factors in the\n"
    "form the target reads (docs/interop.md). Every other key keeps its value and position.\n"
    "\n"
    "  --config FILE          the model's config.json (a LongRoPE config: rope_scaling or rope_parameters)\n"
    "  --factors FILE         what `longrope search --out` writes: rescale_factors (the long factors), n_hat\n"
    "  --short-factors FILE   the same for the short set (default: keep the input's short factors)\n"
    "  --target T             hf4: transformers 4.4x Phi3Config (exactly type, short_factor, long_factor)\n"
    "                         hf5: transformers 5.x rope_parameters\n"
    "                         vllm: vLLM's Phi-3 path (short_mscale / long_mscale when needed)\n"
    "  --attention-factor A   the long set's attention factor (hf5, vllm; hf4 cannot express it)\n"
    "  --drop-n-hat           write the factors although the search found n_hat != 0 (no engine has it)\n"
    "  --out FILE             where to write the config\n";

std::string slurp_file(const std::string& path) {
  return longrope::read_file(path);  // "X is a directory" / "cannot read X: <errno text>"
}

nlohmann::ordered_json parse_file(const std::string& path, const std::string& text) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw longrope::error("longrope.json", path + ": not valid JSON");
  return j;
}

/// rescale_factors (and n_hat, a per-pair mscale) of a search result file.
void read_result(const std::string& path, std::vector<double>& factors, std::int64_t* n_hat,
                 std::vector<double>* mscale) {
  const auto j = parse_file(path, slurp_file(path));
  if (!j.is_object() || !j.contains("rescale_factors") || !j["rescale_factors"].is_array()) {
    throw longrope::error("longrope.json", path + ": rescale_factors: missing (expected what `longrope search --out` writes)");
  }
  for (std::size_t k = 0; k < j["rescale_factors"].size(); ++k) {
    const auto& v = j["rescale_factors"][k];
    if (!v.is_number()) {
      throw longrope::error("longrope.json", path + ": rescale_factors[" + std::to_string(k) + "]: expected a number");
    }
    factors.push_back(v.get<double>());
  }
  if (n_hat && j.contains("n_hat") && !j["n_hat"].is_null()) {
    if (!j["n_hat"].is_number_integer()) throw longrope::error("longrope.json", path + ": n_hat: expected an integer");
    *n_hat = j["n_hat"].get<std::int64_t>();
  }
  if (mscale && j.contains("mscale") && j["mscale"].is_array()) {
    for (const auto& v : j["mscale"]) mscale->push_back(v.is_number() ? v.get<double>() : 0.0);
  }
}
}  // namespace

int cmd_export(const args& a) {
  const option_parser opt(a, {"--config", "--factors", "--short-factors", "--target", "--out", "--attention-factor"},
                          {"--drop-n-hat"});
  if (opt.help()) {
    std::fputs(kExportHelp, stdout);
    return 0;
  }
  const std::string config_path = opt.required("--config");
  const std::string out_path = opt.required("--out");
  longrope::export_options eo;
  eo.target = longrope::parse_export_target(opt.required("--target"));
  read_result(opt.required("--factors"), eo.long_factors, &eo.n_hat, &eo.per_pair_mscale);
  if (const auto s = opt.get("--short-factors")) {
    std::vector<double> shorts;
    std::int64_t short_n_hat = 0;
    read_result(*s, shorts, &short_n_hat, &eo.per_pair_mscale);
    if (short_n_hat != 0 && eo.n_hat == 0) eo.n_hat = short_n_hat;
    eo.short_factors = shorts;
  }
  eo.attention_factor = opt.get_double("--attention-factor");
  eo.drop_n_hat = opt.has("--drop-n-hat");
  const std::string text = slurp_file(config_path);
  const auto in = parse_file(config_path, text);
  const auto out = longrope::export_config(in, eo);
  longrope::write_file_atomic(out_path, out.dump(longrope::json_indent_of(text)) + "\n");
  if (eo.n_hat != 0) std::fprintf(stderr, "export: n_hat = %lld dropped (--drop-n-hat)\n", static_cast<long long>(eo.n_hat));
  return 0;
}

}  // namespace longrope_cli
