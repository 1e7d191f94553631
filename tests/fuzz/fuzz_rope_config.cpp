// Fuzz target: a transformers config.json as bytes. Accepted configs must give
// finite positive frequencies and attention factors, finite tables with
// |value| <= attention factor at every position up to max_position(), and a
// config that writes back to JSON and reloads.
#include <algorithm>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include <longrope/json.hpp>
#include <longrope/table.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace longrope;
  using longrope_fuzz::expect;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;  // malformed JSON: load_rope_config's own check, not the target
  return longrope_fuzz::guarded([&] {
    const rope_config cfg = rope_config_from_json(j);
    // The sequence length comes from the input too (its size), both factor sets are reached.
    for (std::int64_t seq : {std::int64_t{0}, static_cast<std::int64_t>(size) * 97}) {
      frequency_options fo;
      fo.seq_len = seq;
      const rope_frequencies f(cfg, fo);
      if (f.pairs() > 4096) continue;  // the work below is O(pairs); huge heads are covered by construction
      for (double v : f.inv_freq()) expect(std::isfinite(v) && v > 0.0, "inv_freq finite and > 0");
      for (double v : f.rescale_factors()) expect(std::isfinite(v) && v > 0.0, "rescale factor finite and > 0");
      const double att = f.attention_factor();
      expect(std::isfinite(att) && att > 0.0, "attention factor finite and > 0");
      const std::int64_t top = f.max_position();
      expect(top >= 0, "max_position >= 0");
      const std::int64_t pos[4] = {0, std::min<std::int64_t>(top, 4095), top / 2, top};
      const int n = f.pairs();
      std::vector<float> c(4 * static_cast<std::size_t>(n)), s(c.size());
      std::vector<double> cd(c.size()), sd(c.size());
      fill_table<float>(f, pos, 4, {c.data(), 4, n}, {s.data(), 4, n});
      fill_table<double>(f, pos, 4, {cd.data(), 4, n}, {sd.data(), 4, n});
      for (std::size_t i = 0; i < c.size(); ++i) {
        expect(std::isfinite(c[i]) && std::isfinite(s[i]) && std::isfinite(cd[i]) && std::isfinite(sd[i]), "finite table");
        expect(std::fabs(cd[i]) <= att * (1 + 1e-12) && std::fabs(sd[i]) <= att * (1 + 1e-12), "|cos|, |sin| <= attention factor");
        expect(std::fabs(c[i] - cd[i]) <= 2e-7 * std::max(1.0, att) && std::fabs(s[i] - sd[i]) <= 2e-7 * std::max(1.0, att),
               "float table within 2e-7 of the double table");
      }
    }
    // What longrope writes, it reads back to the same frequencies.
    const rope_config back = rope_config_from_json(to_config_json(cfg));
    const rope_frequencies a(cfg), b(back);
    expect(a.inv_freq() == b.inv_freq(), "to_config_json round trip keeps inv_freq");
  });
}
