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
#include <vector>

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

}  // namespace longrope_cli
