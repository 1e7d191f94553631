// Helpers shared by the numerics subcommands (freqs, table).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <longrope/frequencies.hpp>

#include "cli_args.hpp"

namespace longrope_cli {

/// --seq-len N (optional, >= 1) as frequency_options with transformers' policy.
inline longrope::frequency_options frequency_options_from(const option_parser& opt) {
  longrope::frequency_options fo;
  if (const auto n = opt.get_int("--seq-len")) {
    if (*n < 1) throw std::invalid_argument("--seq-len: must be >= 1, got " + std::to_string(*n));
    fo.seq_len = *n;
  }
  fo.policy = longrope::factor_policy::by_sequence_length;
  return fo;
}

/// Positions above 2^29 are refused: beyond it the double angle p * inv_freq
/// (theta_0 = 1 rad per position) loses the float accuracy the tables promise
/// (rope_frequencies::max_angle; at 2^45 the angle's rounding alone is 4e-3).
inline constexpr std::int64_t kMaxPosition = static_cast<std::int64_t>(longrope::rope_frequencies::max_angle);

inline std::int64_t checked_position(std::int64_t p, const std::string& item) {
  if (p < 0) throw std::invalid_argument("--positions: position " + item + " is negative");
  if (p > kMaxPosition) {
    throw std::invalid_argument("--positions: position " + item + " exceeds the supported maximum 2^29 = 536870912");
  }
  return p;
}

/// Parses "0,1,4095:4097" (integers and half-open a:b ranges, a <= b) into
/// positions. Every position must be in [0, 2^29]; at most max_count positions.
inline std::vector<std::int64_t> parse_positions(const std::string& list, std::size_t max_count) {
  if (list.empty()) throw std::invalid_argument("--positions: empty list");
  std::vector<std::int64_t> out;
  std::size_t start = 0;
  while (true) {
    const auto comma = list.find(',', start);
    const std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) throw std::invalid_argument("--positions: empty item in '" + list + "'");
    const auto colon = item.find(':');
    if (colon == std::string::npos) {
      out.push_back(checked_position(option_parser::parse_int(item, "--positions"), item));
    } else {
      const std::int64_t a = option_parser::parse_int(item.substr(0, colon), "--positions");
      const std::int64_t b = option_parser::parse_int(item.substr(colon + 1), "--positions");
      if (a < 0 || b < 0) throw std::invalid_argument("--positions: range " + item + " has a negative bound");
      if (b < a) throw std::invalid_argument("--positions: range " + item + " is reversed (a:b needs a <= b)");
      if (b > kMaxPosition + 1) {
        throw std::invalid_argument("--positions: range " + item + " exceeds the supported maximum 2^29 = 536870912");
      }
      if (static_cast<std::uint64_t>(b - a) > max_count) {
        throw std::invalid_argument("--positions: range " + item + " has more than " + std::to_string(max_count) +
                                    " positions");
      }
      for (std::int64_t p = a; p < b; ++p) out.push_back(p);
    }
    if (out.size() > max_count) {
      throw std::invalid_argument("--positions: more than " + std::to_string(max_count) + " positions");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace longrope_cli
