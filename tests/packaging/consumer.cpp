// A minimal engine-side consumer: include the umbrella header, build Phi-3's
// long-context frequencies, check the attention factor against the closed form.
#include <cmath>
#include <cstdio>
#include <vector>

#include <longrope/longrope.hpp>

int main() {
  longrope::rope_config cfg;
  cfg.head_dim = 96;
  cfg.type = longrope::rope_type::longrope;
  cfg.max_position_embeddings = 131072;
  cfg.longrope.original_max_position = 4096;
  cfg.longrope.short_factor.assign(48, 1.0);
  cfg.longrope.long_factor.assign(48, 2.0);
  const longrope::rope_frequencies f(cfg, {/*seq_len=*/8192});
  const double expected = std::sqrt(1.0 + std::log(32.0) / std::log(4096.0));
  const bool ok = std::fabs(f.attention_factor() - expected) < 1e-15 &&
                  f.active_factor_set() == longrope::factor_set::long_factors;
  std::printf("consumer of longrope %s: attention_factor %.16f (%s)\n", LONGROPE_VERSION_STRING,
              f.attention_factor(), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
