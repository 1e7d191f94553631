// An engine-side consumer of the config I/O: links only longrope::json (CMake)
// or longrope-json (pkg-config), never nlohmann-json by hand. Reads a Phi-3
// style config.json held in a string, builds the factor switch, and checks
// the attention factor and the switch point against closed forms.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <longrope/json.hpp>
#include <longrope/kv_switch.hpp>
#include <longrope/longrope.hpp>

int main() {
  std::string factors = "[";
  for (int i = 0; i < 48; ++i) factors += (i ? "," : "") + std::to_string(1.0 + i);
  factors += "]";
  const std::string text = R"({"model_type": "phi3", "hidden_size": 3072, "num_attention_heads": 32,
    "max_position_embeddings": 131072, "original_max_position_embeddings": 4096, "rope_theta": 10000.0,
    "rope_scaling": {"type": "longrope", "short_factor": )" + factors + R"(, "long_factor": )" + factors + "}}";
  const longrope::rope_config cfg = longrope::rope_config_from_json(nlohmann::json::parse(text));
  const longrope::factor_switch sw(cfg, longrope::factor_policy::by_sequence_length);
  const double expected = std::sqrt(1.0 + std::log(32.0) / std::log(4096.0));
  const double att = sw.frequencies_for(5000).attention_factor();
  const bool ok = cfg.head_dim == 96 && std::fabs(att - expected) < 1e-15 &&
                  sw.set_for(4096) == longrope::factor_set::short_factors &&
                  sw.set_for(4097) == longrope::factor_set::long_factors;
  std::printf("json consumer of longrope %s: head_dim %d, attention_factor %.16f (%s)\n", LONGROPE_VERSION_STRING,
              cfg.head_dim, att, ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
