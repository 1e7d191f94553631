// Placeholder main demo (until the toy-transformer demo lands): the LongRoPE
// frequencies of Phi-3.5-mini at its short and long contexts.
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include <longrope/longrope.hpp>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1]
                                    : std::string(LONGROPE_SOURCE_DIR) +
                                          "/../shared/reference/hf-configs/phi-3.5-mini-instruct.json";
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "demo: cannot open %s (pass a transformers config.json)\n", path.c_str());
    return 1;
  }
  const auto j = nlohmann::json::parse(in);
  longrope::rope_config cfg;
  cfg.head_dim = j.at("hidden_size").get<int>() / j.at("num_attention_heads").get<int>();
  cfg.base = j.value("rope_theta", 10000.0);
  cfg.type = longrope::rope_type::longrope;
  cfg.max_position_embeddings = j.at("max_position_embeddings").get<std::int64_t>();
  cfg.longrope.original_max_position = j.at("original_max_position_embeddings").get<std::int64_t>();
  cfg.longrope.short_factor = j.at("rope_scaling").at("short_factor").get<std::vector<double>>();
  cfg.longrope.long_factor = j.at("rope_scaling").at("long_factor").get<std::vector<double>>();
  for (std::int64_t len : {std::int64_t{4096}, std::int64_t{131072}}) {
    const longrope::rope_frequencies f(cfg, {len});
    std::printf("seq_len %6lld: %s factors, attention factor %.16f\n", static_cast<long long>(len),
                longrope::to_string(f.active_factor_set()), f.attention_factor());
    std::printf("  pair  lambda      inv_freq\n");
    for (int i = 0; i < f.pairs(); i += 8) {
      std::printf("  %4d  %-10.4f  %.6e\n", i, f.rescale_factors()[static_cast<std::size_t>(i)],
                  f.inv_freq()[static_cast<std::size_t>(i)]);
    }
  }
  return 0;
}
