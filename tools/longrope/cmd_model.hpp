// Shared by the model subcommands (eval, generate, search, passkey): loading
// the llama2.c model and tokenizer, the scaling flags, the token stream.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/checked.hpp>
#include <longrope/io.hpp>

#include <llama2c/checkpoint.hpp>
#include <llama2c/scaling.hpp>
#include <llama2c/tokenizer.hpp>

#include "cli_args.hpp"

namespace longrope_cli {

/// Options every model command accepts (merged into each command's set).
inline std::set<std::string> model_options(std::set<std::string> extra) {
  for (const char* o : {"--model", "--tokenizer"}) extra.insert(o);
  return extra;
}

/// The scaling flags: --method, --factors, --n-hat, --attention-factor,
/// --factors-file.
inline std::set<std::string> with_scaling_options(std::set<std::string> s) {
  for (const char* o : {"--method", "--factors", "--n-hat", "--attention-factor", "--factors-file"}) s.insert(o);
  return s;
}

inline const char* const kScalingHelp =
    "  --method M            none (default), pi, ntk, yarn or longrope; pi/ntk/yarn scale by\n"
    "                        s = max(1, context / the model's trained length)\n"
    "  --factors a,b,...     longrope: head_size/2 rescale factors lambda_i (theta_i / lambda_i);\n"
    "                        giving --factors implies --method longrope\n"
    "  --n-hat K             start-token cutoff: positions < K keep the unscaled angles (default 0)\n"
    "  --attention-factor X  multiplies cos and sin (logits by X^2); default 1, YaRN's own for yarn\n"
    "  --factors-file F      longrope factors, n_hat and attention factor of a `search --out` JSON\n"
    "                        (rescale_factors, n_hat, attention_factor); flags given too override it\n"
    "  Without any of these, the scaling of the model's sidecar M.json (written by `finetune`) is\n"
    "  used when that file exists.\n";

/// Reads a JSON file (std::invalid_argument naming it when unreadable or malformed).
inline nlohmann::json read_json_file(const std::string& path) {
  const std::string text = longrope::read_file(path);  // "X is a directory" / "cannot read X: <errno text>"
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
}

/// Factors, n_hat and attention factor from a JSON object with
/// "rescale_factors" (a `search --out` result) or "factors", optional "n_hat"
/// and "attention_factor" (null or a number). Checks every type.
inline llama2c::scaling scaling_from_json(const nlohmann::json& j, const std::string& what) {
  llama2c::scaling sc;
  if (!j.is_object()) throw std::invalid_argument(what + ": expected a JSON object");
  const char* key = j.contains("rescale_factors") ? "rescale_factors" : "factors";
  if (j.contains("method")) {
    if (!j["method"].is_string()) throw std::invalid_argument(what + ": method must be a string");
    sc.method = llama2c::parse_scaling_method(j["method"].get<std::string>());
  } else {
    sc.method = llama2c::scaling_method::longrope;
  }
  if (sc.method == llama2c::scaling_method::longrope) {
    if (!j.contains(key) || !j[key].is_array() || j[key].empty()) {
      throw std::invalid_argument(what + ": needs a non-empty array \"rescale_factors\"");
    }
    for (const auto& v : j[key]) {
      if (!v.is_number() || !std::isfinite(v.get<double>())) {
        throw std::invalid_argument(what + ": " + key + " must hold finite numbers");
      }
      sc.factors.push_back(v.get<double>());
    }
  }
  if (j.contains("n_hat")) {
    if (!j["n_hat"].is_number_integer() || j["n_hat"].get<std::int64_t>() < 0) {
      throw std::invalid_argument(what + ": n_hat must be an integer >= 0");
    }
    sc.n_hat = j["n_hat"].get<std::int64_t>();
  }
  if (j.contains("attention_factor") && !j["attention_factor"].is_null()) {
    if (!j["attention_factor"].is_number() || !(j["attention_factor"].get<double>() > 0.0)) {
      throw std::invalid_argument(what + ": attention_factor must be a number > 0");
    }
    sc.attention_factor = j["attention_factor"].get<double>();
  }
  return sc;
}

/// The sidecar `finetune` writes beside a checkpoint: M.json.
inline std::string sidecar_path(const std::string& model) { return model + ".json"; }

/// The scaling flags, else the sidecar M.json beside --model. A served
/// sidecar (`longrope extend`) holds two sets: "scaling" (long) and
/// "short_scaling" for sequences up to its "original_max_position_embeddings";
/// with `context` > 0 the set for that many tokens is taken, as an engine's
/// by-length policy would (kv_switch.hpp); context 0 always takes "scaling".
inline llama2c::scaling parse_scaling(const option_parser& opt, std::int64_t context = 0) {
  llama2c::scaling sc;
  const bool any = opt.has("--method") || opt.has("--factors") || opt.has("--n-hat") ||
                   opt.has("--attention-factor") || opt.has("--factors-file");
  if (const auto file = opt.get("--factors-file")) {
    sc = scaling_from_json(read_json_file(*file), *file);
  } else if (const auto model = opt.get("--model"); !any && model) {
    const std::string side = sidecar_path(*model);
    if (std::ifstream(side).good()) {
      const nlohmann::json j = read_json_file(side);
      if (!j.is_object() || !j.contains("scaling")) throw std::invalid_argument(side + ": no \"scaling\" object");
      const char* key = "scaling";
      if (context > 0 && j.contains("short_scaling")) {
        const auto it = j.find("original_max_position_embeddings");
        if (it == j.end() || !it->is_number_integer() || it->get<std::int64_t>() < 1) {
          throw std::invalid_argument(side + ": short_scaling needs an integer original_max_position_embeddings >= 1");
        }
        if (context <= it->get<std::int64_t>()) key = "short_scaling";
      }
      sc = scaling_from_json(j[key], side + ": " + key);
      std::fprintf(stderr, "note: using the %s of %s (method %s)\n", key, side.c_str(), llama2c::to_string(sc.method));
    }
  }
  if (const auto f = opt.get("--factors")) {
    sc.factors = option_parser::parse_double_list(*f, "--factors");
    sc.method = llama2c::scaling_method::longrope;
  }
  if (const auto m = opt.get("--method")) sc.method = llama2c::parse_scaling_method(*m);
  if (sc.method == llama2c::scaling_method::longrope && sc.factors.empty()) {
    throw std::invalid_argument("--method longrope needs --factors a,b,... (head_size/2 values)");
  }
  if (const auto k = opt.get_int("--n-hat")) {
    if (*k < 0) throw std::invalid_argument("--n-hat: must be >= 0, got " + std::to_string(*k));
    sc.n_hat = *k;
  }
  if (const auto x = opt.get_double("--attention-factor")) {
    if (!(*x > 0.0)) throw std::invalid_argument("--attention-factor: must be > 0");
    sc.attention_factor = *x;
  }
  return sc;
}

struct loaded_model {
  llama2c::checkpoint ck;
  llama2c::tokenizer tok;
};

inline loaded_model load_model(const option_parser& opt) {
  loaded_model m;
  m.ck = llama2c::load_checkpoint(opt.required("--model"));
  m.tok = llama2c::tokenizer::load(opt.required("--tokenizer"), m.ck.config.vocab_size);
  return m;
}

inline std::string read_text_file(const std::string& path) { return longrope::read_file(path); }

/// The token stream (without BOS) of --text FILE (encoded) or --tokens FILE
/// (whitespace-separated ids, each checked against the vocabulary).
inline std::vector<int> read_stream(const option_parser& opt, const loaded_model& m) {
  const auto text = opt.get("--text");
  const auto tokens = opt.get("--tokens");
  if (text && tokens) throw std::invalid_argument("give --text or --tokens, not both");
  if (text) return m.tok.encode(read_text_file(*text), false, false);
  if (!tokens) throw std::invalid_argument("missing --text FILE or --tokens FILE");
  std::istringstream in(read_text_file(*tokens));
  std::vector<int> ids;
  std::string word;
  while (in >> word) {
    const std::int64_t v = option_parser::parse_int(word, *tokens + ": token " + std::to_string(ids.size()));
    if (v < 0 || v >= m.ck.config.vocab_size) {
      throw std::invalid_argument(*tokens + ": token " + std::to_string(ids.size()) + " = " + std::to_string(v) +
                                  " outside [0, " + std::to_string(m.ck.config.vocab_size) + ")");
    }
    ids.push_back(static_cast<int>(v));
  }
  return ids;
}

/// Physical memory of this machine in bytes (0 when unknown).
inline std::uint64_t physical_memory_bytes() {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGE_SIZE)
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
#endif
  return 0;
}

/// Refuses, before anything is allocated, a forward over `positions`
/// positions on `threads` threads whose KV caches and activations would not
/// fit in this machine's memory, naming the size (issue 9: --context 1e9 once
/// started building a 4 GB prompt). Per position and thread the model needs
/// 2 * n_layers * kv_dim floats of KV cache, (4 dim + 2 kv_dim) floats of
/// activations, a position and a token id.
inline void check_forward_memory(const llama2c::model_config& c, std::int64_t positions, std::int64_t threads,
                                 const std::string& option) {
  using longrope::checked_add;
  using longrope::checked_mul;
  const std::uint64_t L = static_cast<std::uint64_t>(c.n_layers), kv = static_cast<std::uint64_t>(c.kv_dim()),
                      d = static_cast<std::uint64_t>(c.dim);
  const std::uint64_t per_position = 4 * (2 * L * kv + 4 * d + 2 * kv) + 8 + 4;  // headers bound these: no overflow
  const std::string what = option + ": memory estimate";
  const std::uint64_t bytes = checked_mul<std::uint64_t>(
      checked_mul<std::uint64_t>(static_cast<std::uint64_t>(positions), per_position, what),
      static_cast<std::uint64_t>(std::max<std::int64_t>(threads, 1)), what);
  const std::uint64_t mem = physical_memory_bytes();
  if (mem > 0 && bytes > mem) {
    throw std::invalid_argument(option + ": " + std::to_string(positions) + " positions x " +
                                std::to_string(std::max<std::int64_t>(threads, 1)) + " thread(s) need " +
                                std::to_string(bytes >> 20) + " MiB of KV cache and activations, more than this machine's " +
                                std::to_string(mem >> 20) + " MiB of memory");
  }
}

/// Worker threads actually used for `tasks` independent forwards: --threads J
/// (0: all cores), never more than the work.
inline std::int64_t effective_threads(std::int64_t threads, std::int64_t tasks) {
  const std::int64_t hw = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::thread::hardware_concurrency()));
  return std::max<std::int64_t>(1, std::min<std::int64_t>(threads > 0 ? threads : hw, tasks));
}

/// A double for JSON: NaN and infinities become null (JSON has no such numbers).
inline nlohmann::json json_number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

/// The scaling a model command ran with, as eval, generate, passkey and
/// finetune report it: "method" (sc's name), "factors" (lambda_i per pair),
/// "n_hat" and "attention_factor" of the frequencies f built from sc.
inline void put_scaling(nlohmann::json& out, const llama2c::scaling& sc, const longrope::rope_frequencies& f) {
  out["method"] = llama2c::to_string(sc.method);
  out["factors"] = f.rescale_factors();
  out["n_hat"] = f.n_hat();
  out["attention_factor"] = f.attention_factor();
}

}  // namespace longrope_cli
