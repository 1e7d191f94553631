// `longrope table`: cos/sin rows of a transformers config.json at a list of
// positions, attention factor applied, as one JSON object on stdout.
#include <cstdio>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/checked.hpp>
#include <longrope/frequencies.hpp>
#include <longrope/json.hpp>
#include <longrope/table.hpp>

#include "cli_args.hpp"
#include "cmd_numerics.hpp"
#include "commands.hpp"

namespace longrope_cli {

namespace {
constexpr std::size_t kMaxPositions = std::size_t{1} << 16;  // ~100 values each: keeps the JSON output below ~150 MB
/// positions x pairs per table: 2^23 values (32 MB per float table, ~350 MB of JSON
/// for cos and sin) is far more than any use of the printed table; above it the
/// table is refused with its size named instead of allocating gigabytes.
constexpr std::uint64_t kMaxTableValues = std::uint64_t{1} << 23;

const char* const kTableHelp =
    "usage: longrope table --config FILE --positions LIST [--seq-len N] [--n-hat K]\n"
    "                      [--precision exact|float32] [--dtype float|double]\n"
    "\n"
    "Prints one JSON object: positions[n], cos[n][rotary_dim/2], sin[n][rotary_dim/2]\n"
    "(pair order, attention factor applied; positions p < n_hat use the unscaled angles).\n"
    "\n"
    "  --config FILE     a transformers config.json (rope_scaling or rope_parameters)\n"
    "  --positions LIST  comma-separated integers in [0, 2^29] and half-open ranges a:b\n"
    "                    (4095:4097 is 4095,4096); at most 65536 positions and\n"
    "                    2^23 values (positions x rotary_dim/2)\n"
    "  --seq-len N       sequence length: LongRoPE long factors iff N > original length\n"
    "                    (default: short factors, as transformers at start-up)\n"
    "  --n-hat K         start-token cutoff, overrides the config's n_hat (default: config, else 0)\n"
    "  --precision P     exact (default): angle in double, reduced mod 2 pi, error < 2e-7 up to\n"
    "                    angles of 2^29 rad; float32: transformers' float32 angle (drifts with p)\n"
    "  --dtype T         float (default): the values a float32 model sees; double: the\n"
    "                    table computed in double (exact mode error ~1e-9)\n";
}  // namespace

int cmd_table(const args& a) {
  const option_parser opt(a, {"--config", "--positions", "--seq-len", "--n-hat", "--precision", "--dtype"});
  if (opt.help()) {
    std::fputs(kTableHelp, stdout);
    return 0;
  }
  longrope::rope_config cfg = longrope::load_rope_config(opt.required("--config"));
  const std::vector<std::int64_t> positions = parse_positions(opt.required("--positions"), kMaxPositions);
  if (const auto k = opt.get_int("--n-hat")) {
    if (*k < 0) throw std::invalid_argument("--n-hat: must be >= 0, got " + std::to_string(*k));
    cfg.n_hat = *k;
  }
  const std::string prec_name = opt.get_or("--precision", "exact");
  longrope::angle_precision prec;
  if (prec_name == "exact") {
    prec = longrope::angle_precision::exact;
  } else if (prec_name == "float32") {
    prec = longrope::angle_precision::float32;
  } else {
    throw std::invalid_argument("--precision: expected exact or float32, got '" + prec_name + "'");
  }
  const std::string dtype = opt.get_or("--dtype", "float");
  if (dtype != "float" && dtype != "double") {
    throw std::invalid_argument("--dtype: expected float or double, got '" + dtype + "'");
  }
  const longrope::rope_frequencies f(cfg, frequency_options_from(opt));
  const auto rows = static_cast<std::ptrdiff_t>(positions.size());
  const int n = f.pairs();
  const std::uint64_t values = longrope::checked_mul<std::uint64_t>(positions.size(), static_cast<std::uint64_t>(n),
                                                                    "--positions: table size");
  if (values > kMaxTableValues) {
    throw std::invalid_argument("--positions: " + std::to_string(positions.size()) + " positions x " + std::to_string(n) +
                                " pairs = " + std::to_string(values) + " values (" +
                                std::to_string(values * 2 * (dtype == "float" ? 4 : 8) >> 20) +
                                " MiB for cos and sin) exceed the table limit of 8388608 values");
  }
  nlohmann::json out;
  out["positions"] = positions;
  auto emit = [&](auto zero) {
    using T = decltype(zero);
    std::vector<T> c(static_cast<std::size_t>(rows) * static_cast<std::size_t>(n)), s(c.size());
    longrope::fill_table<T>(f, positions.data(), rows, {c.data(), rows, n}, {s.data(), rows, n}, prec);
    nlohmann::json jc = nlohmann::json::array(), js = nlohmann::json::array();
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      const auto b = c.begin() + r * n, e = b + n;
      jc.push_back(std::vector<double>(b, e));
      const auto sb = s.begin() + r * n, se = sb + n;
      js.push_back(std::vector<double>(sb, se));
    }
    out["cos"] = std::move(jc);
    out["sin"] = std::move(js);
  };
  if (dtype == "float") {
    emit(float{});
  } else {
    emit(double{});
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace longrope_cli
