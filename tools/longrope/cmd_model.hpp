// Shared by the model subcommands (eval, generate, search, passkey): loading
// the llama2.c model and tokenizer, the scaling flags, the token stream.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
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

/// The scaling flags: --method, --factors, --n-hat, --attention-factor.
inline std::set<std::string> with_scaling_options(std::set<std::string> s) {
  for (const char* o : {"--method", "--factors", "--n-hat", "--attention-factor"}) s.insert(o);
  return s;
}

inline const char* const kScalingHelp =
    "  --method M            none (default), pi, ntk, yarn or longrope; pi/ntk/yarn scale by\n"
    "                        s = max(1, context / the model's trained length)\n"
    "  --factors a,b,...     longrope: head_size/2 rescale factors lambda_i (theta_i / lambda_i);\n"
    "                        giving --factors implies --method longrope\n"
    "  --n-hat K             start-token cutoff: positions < K keep the unscaled angles (default 0)\n"
    "  --attention-factor X  multiplies cos and sin (logits by X^2); default 1, YaRN's own for yarn\n";

inline llama2c::scaling parse_scaling(const option_parser& opt) {
  llama2c::scaling sc;
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

}  // namespace longrope_cli
