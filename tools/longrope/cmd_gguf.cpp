// `longrope gguf show|set`: the rope metadata and factor tensors of a GGUF
// file (include/longrope/gguf.hpp).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/io.hpp>
#include <longrope/frequencies.hpp>
#include <longrope/gguf.hpp>
#include <longrope/json.hpp>

#include "cli_args.hpp"
#include "commands.hpp"

namespace longrope_cli {

namespace {
const char* const kGgufHelp =
    "usage: longrope gguf show FILE\n"
    "       longrope gguf set FILE --factors RESULT.json [--short-factors RESULT2.json]\n"
    "                             [--attn-factor A] [--drop-n-hat] --out NEW.gguf\n"
    "\n"
    "show: one JSON object: version, alignment, every metadata key (arrays longer than 16\n"
    "      elements as their type and length), every tensor (name, ggml type, dims, offset),\n"
    "      the rope factor tensors and the rope_config llama.cpp would run (or the reason not).\n"
    "set:  writes NEW with rope_factors_long.weight (and rope_factors_short.weight) replaced by\n"
    "      the searched rescale_factors (F32), and <arch>.rope.scaling.attn_factor when given;\n"
    "      every other key and every other tensor's bytes are copied unchanged, alignment kept.\n"
    "      n_hat != 0 cannot be expressed in GGUF: refused unless --drop-n-hat.\n";

nlohmann::json value_json(const longrope::gguf_value& v) {
  using T = longrope::gguf_type;
  switch (v.type) {
    case T::uint8: case T::uint16: case T::uint32: case T::uint64: return v.u;
    case T::boolean: return v.u != 0;
    case T::int8: case T::int16: case T::int32: case T::int64: return v.i;
    case T::float32: case T::float64:
      if (!std::isfinite(v.f)) return std::to_string(v.f);
      return v.f;
    case T::string: return v.s;
    case T::array: {
      if (v.elems.size() > 16) {
        return nlohmann::json{{"array_of", longrope::to_string(v.elem_type)}, {"length", v.elems.size()}};
      }
      nlohmann::json a = nlohmann::json::array();
      for (const auto& e : v.elems) a.push_back(value_json(e));
      return a;
    }
  }
  return nullptr;
}

std::vector<double> result_factors(const std::string& path, std::int64_t& n_hat) {
  const auto j = nlohmann::json::parse(longrope::read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("rescale_factors") || !j["rescale_factors"].is_array()) {
    throw longrope::error("longrope.json", path + ": rescale_factors: missing (expected what `longrope search --out` writes)");
  }
  std::vector<double> out;
  for (const auto& v : j["rescale_factors"]) {
    if (!v.is_number()) throw longrope::error("longrope.json", path + ": rescale_factors: expected numbers");
    out.push_back(v.get<double>());
  }
  if (j.contains("n_hat") && j["n_hat"].is_number_integer()) n_hat = j["n_hat"].get<std::int64_t>();
  return out;
}

int gguf_show(const std::string& path) {
  const longrope::gguf_file f = longrope::read_gguf(path);
  nlohmann::ordered_json out;
  out["version"] = f.version;
  out["alignment"] = f.alignment;
  nlohmann::ordered_json md = nlohmann::ordered_json::object();
  for (const auto& kv : f.kvs) {
    md[kv.key] = {{"type", longrope::to_string(kv.value.type)}, {"value", value_json(kv.value)}};
  }
  out["metadata"] = md;
  nlohmann::ordered_json ts = nlohmann::ordered_json::array();
  for (const auto& t : f.tensors) {
    ts.push_back({{"name", t.name}, {"type", t.type}, {"dims", t.dims}, {"offset", t.offset}, {"bytes", t.data.size()}});
  }
  out["tensors"] = ts;
  try {
    const longrope::rope_config c = longrope::rope_config_from_gguf(f);
    out["rope"] = longrope::to_config_json(c);
    out["rope"]["attention_factor"] = longrope::rope_frequencies(c).attention_factor();
  } catch (const longrope::error& e) {
    out["rope"] = nullptr;
    out["rope_error"] = e.what();
  }
  std::printf("%s\n", out.dump(1).c_str());
  return 0;
}

int gguf_set(const std::string& path, const args& rest) {
  const option_parser opt(rest, {"--factors", "--short-factors", "--attn-factor", "--out"}, {"--drop-n-hat"});
  std::int64_t n_hat = 0;
  const std::vector<double> longs = result_factors(opt.required("--factors"), n_hat);
  std::vector<double> shorts;
  if (const auto s = opt.get("--short-factors")) shorts = result_factors(*s, n_hat);
  if (n_hat != 0 && !opt.has("--drop-n-hat")) {
    throw longrope::error("longrope.export", "n_hat = " + std::to_string(n_hat) +
                                                 " cannot be expressed in GGUF (llama.cpp has no start-token cutoff); "
                                                 "pass --drop-n-hat to write the factors without it");
  }
  const std::string out_path = opt.required("--out");
  longrope::gguf_file f = longrope::read_gguf(path);
  longrope::set_gguf_rope_factors(f, longs, shorts, opt.double_or("--attn-factor", 0.0));
  longrope::write_gguf(out_path, f);
  return 0;
}
}  // namespace

int cmd_gguf(const args& a) {
  if (a.empty() || a[0] == "--help" || a[0] == "-h") {
    std::fputs(kGgufHelp, a.empty() ? stderr : stdout);
    return a.empty() ? 2 : 0;
  }
  if (a.size() < 2) throw std::invalid_argument("gguf " + a[0] + ": missing FILE (see 'longrope gguf --help')");
  const std::string& file = a[1];
  if (a[0] == "show") {
    if (a.size() > 2) throw std::invalid_argument("gguf show: unexpected argument '" + a[2] + "'");
    return gguf_show(file);
  }
  if (a[0] == "set") return gguf_set(file, args(a.begin() + 2, a.end()));
  throw std::invalid_argument("gguf: unknown action '" + a[0] + "' (expected show or set)");
}

}  // namespace longrope_cli
