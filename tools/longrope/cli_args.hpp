// Option parsing shared by the `longrope` subcommands: "--name value" and
// "--flag" forms, strict number parsing, unknown options rejected. Every
// failure throws std::invalid_argument with a message naming the option, which
// main() prints as one line on stderr.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <longrope/search/strategy.hpp>

namespace longrope_cli {

class option_parser {
 public:
  /// values: options that take a value; flags: options without one. Names
  /// include the leading dashes ("--config"). "--help" is always accepted.
  option_parser(const std::vector<std::string>& argv, std::set<std::string> values,
                std::set<std::string> flags = {})
      : values_allowed_(std::move(values)), flags_allowed_(std::move(flags)) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
      const std::string& a = argv[i];
      if (a == "--help" || a == "-h") {
        help_ = true;
        continue;
      }
      std::string name = a, inline_value;
      bool has_inline = false;
      if (const auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
        name = a.substr(0, eq);
        inline_value = a.substr(eq + 1);
        has_inline = true;
      }
      if (values_allowed_.count(name)) {
        if (has_inline) {
          values_[name] = inline_value;
        } else {
          if (i + 1 >= argv.size()) throw std::invalid_argument("option " + name + " needs a value");
          values_[name] = argv[++i];
        }
      } else if (flags_allowed_.count(name) && !has_inline) {
        flags_.insert(name);
      } else {
        throw std::invalid_argument("unknown option '" + a + "'");
      }
    }
  }

  bool help() const { return help_; }
  bool has(const std::string& name) const { return values_.count(name) || flags_.count(name); }

  std::optional<std::string> get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  std::string required(const std::string& name) const {
    auto v = get(name);
    if (!v) throw std::invalid_argument("missing required option " + name);
    return *v;
  }
  std::string get_or(const std::string& name, const std::string& fallback) const {
    return get(name).value_or(fallback);
  }

  std::optional<std::int64_t> get_int(const std::string& name) const {
    auto v = get(name);
    if (!v) return std::nullopt;
    return parse_int(*v, name);
  }
  std::int64_t int_or(const std::string& name, std::int64_t fallback) const {
    return get_int(name).value_or(fallback);
  }
  std::optional<double> get_double(const std::string& name) const {
    auto v = get(name);
    if (!v) return std::nullopt;
    return parse_double(*v, name);
  }
  double double_or(const std::string& name, double fallback) const {
    return get_double(name).value_or(fallback);
  }

  /// A bounded integer option: its value (fallback when absent) in [lo, hi],
  /// else std::invalid_argument "NAME: must be in [lo, hi], got V".
  int small_int(const std::string& name, std::int64_t fallback, std::int64_t lo, std::int64_t hi = 1000000) const {
    return static_cast<int>(int_in(name, fallback, lo, hi));
  }

  /// The integer option `name` (default `fallback`), which must be in [lo, hi].
  std::int64_t int_in(const std::string& name, std::int64_t fallback, std::int64_t lo, std::int64_t hi) const {
    const std::int64_t v = int_or(name, fallback);
    if (v < lo || v > hi) {
      throw std::invalid_argument(name + ": must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                  std::to_string(v));
    }
    return v;
  }

  /// --seed K (default 0): an integer >= 0, as every seeded command reads it.
  std::uint64_t seed() const {
    const std::int64_t v = int_or("--seed", 0);
    if (v < 0) throw std::invalid_argument("--seed: must be >= 0");
    return static_cast<std::uint64_t>(v);
  }

  /// "A:B" as two strict integers (parse_int), unchecked otherwise; else
  /// std::invalid_argument "WHAT: expected A:B, got 'S'".
  static std::pair<std::int64_t, std::int64_t> parse_int_pair(const std::string& s, const std::string& what) {
    const auto colon = s.find(':');
    if (colon == std::string::npos) throw std::invalid_argument(what + ": expected A:B, got '" + s + "'");
    return {parse_int(s.substr(0, colon), what), parse_int(s.substr(colon + 1), what)};
  }

  /// Strict integer: the whole string, base 10, in range.
  static std::int64_t parse_int(const std::string& s, const std::string& what) {
    if (s.empty()) throw std::invalid_argument(what + ": expected an integer, got ''");
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (errno == ERANGE) throw std::invalid_argument(what + ": integer out of range '" + s + "'");
    if (end != s.c_str() + s.size()) throw std::invalid_argument(what + ": expected an integer, got '" + s + "'");
    return static_cast<std::int64_t>(v);
  }

  /// Strict finite number: the whole string.
  static double parse_double(const std::string& s, const std::string& what) {
    if (s.empty()) throw std::invalid_argument(what + ": expected a number, got ''");
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (errno == ERANGE || end != s.c_str() + s.size() || !std::isfinite(v)) {
      throw std::invalid_argument(what + ": expected a finite number, got '" + s + "'");
    }
    return v;
  }

  /// Comma-separated numbers ("1.0,1.5,2").
  static std::vector<double> parse_double_list(const std::string& s, const std::string& what) {
    std::vector<double> out;
    std::size_t start = 0;
    while (true) {
      const auto comma = s.find(',', start);
      out.push_back(parse_double(s.substr(start, comma - start), what));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return out;
  }

 private:
  std::set<std::string> values_allowed_, flags_allowed_;
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  bool help_ = false;
};

/// --optimizer O (search/strategy.hpp's names) into `strategy`, left as is
/// when the flag is absent. Throws std::invalid_argument on another name.
inline void read_optimizer(const option_parser& opt, longrope::search_strategy& strategy) {
  if (const auto name = opt.get("--optimizer")) {
    if (!longrope::parse_search_strategy(*name, strategy)) {
      throw std::invalid_argument("--optimizer: expected evolution, random, gaussian or surrogate, got '" +
                                  *name + "'");
    }
  }
}

/// The evolutionary search's shape: P, N1, N2, k, T.
struct generation_flags {
  int population = 64, mutations = 16, crossovers = 16, top_k = 32, iterations = 40;

  /// Copies P, N1, N2, k, T into a search's options (longrope::search_options).
  template <class Options>
  void apply_to(Options& o) const {
    o.population = population;
    o.mutations = mutations;
    o.crossovers = crossovers;
    o.top_k = top_k;
    o.iterations = iterations;
  }
};

/// Reads --population P (>= 1), --mutations N1, --crossovers N2 (>= 0), --topk K
/// (>= 1) and --iterations T (>= 0), each at most 1000000, defaulting to d's
/// (the paper's values by default). Throws std::invalid_argument naming the flag.
inline generation_flags read_generation_flags(const option_parser& opt, const generation_flags& d = {}) {
  generation_flags g;
  g.population = opt.small_int("--population", d.population, 1);
  g.mutations = opt.small_int("--mutations", d.mutations, 0);
  g.crossovers = opt.small_int("--crossovers", d.crossovers, 0);
  g.top_k = opt.small_int("--topk", d.top_k, 1);
  g.iterations = opt.small_int("--iterations", d.iterations, 0);
  return g;
}

}  // namespace longrope_cli
