// The body of both translation units of the ODR test (odr_a.cpp, odr_b.cpp):
// every public header, and a call into each family of inline functions and
// templates, so a missing `inline` (a multiple definition) fails at link time
// and both units must compute the same value. ODR_FUNCTION names the function.
#include <cstdint>
#include <vector>

#include <longrope/checked.hpp>
#include <longrope/io.hpp>
#include <longrope/export.hpp>
#include <longrope/gguf.hpp>
#include <longrope/evaluator_protocol.hpp>
#include <longrope/json.hpp>
#include <longrope/longrope.hpp>
#include <longrope/search_json.hpp>

double ODR_FUNCTION() {
  longrope::rope_config cfg = longrope::rope_config_from_json(
      {{"hidden_size", 64}, {"num_attention_heads", 8}, {"max_position_embeddings", 2048}});
  cfg.layout = longrope::pair_layout::interleaved;
  const longrope::rope_frequencies f(cfg);
  float c[4], s[4];
  longrope::fill_table<float>(f, longrope::position_range{3, 4}, {c, 1, 4}, {s, 1, 4});

  std::vector<float> q(8, 1.0f);
  const std::int64_t pos[1] = {5};
  longrope::rotate(f, longrope::token_major(q.data(), 1, 1, 1, 8), {pos, 0}, {0, 1});
  longrope::rerotate(f, f, longrope::token_major(q.data(), 1, 1, 1, 8), {pos, 0});
  const longrope::owned_table table(f, {0, 8});
  longrope::rotate(f, table.view(), longrope::token_major(q.data(), 1, 1, 1, 8), {pos, 0}, {0, 1});
  longrope::rope_config lr = cfg;
  lr.type = longrope::rope_type::longrope;
  lr.longrope.original_max_position = 4;
  lr.longrope.short_factor = {1.0, 1.0, 1.0, 1.0};
  lr.longrope.long_factor = {1.0, 2.0, 3.0, 4.0};
  const longrope::factor_switch sw(lr, longrope::factor_policy::by_sequence_length);
  longrope::switch_kv(sw, longrope::token_major(q.data(), 1, 1, 1, 8), {pos, 0}, 4, 6);

  longrope::search_target target;
  target.rope = cfg;
  target.original_length = 512;
  target.scale = 4.0;
  const longrope::search_space space(longrope::default_space_config(target));
  const auto cand = longrope::snap(space, longrope::baseline_factors(target, longrope::rope_type::linear));
  const auto scaling = longrope::to_rope_scaling_json(longrope::to_rope_config(target, space.point(cand)));

  const auto reply = longrope::decode_reply(longrope::encode_reply({1, 0.5, ""}));

  return static_cast<double>(c[1]) + f.inv_freq()[1] + static_cast<double>(q[3]) +
         scaling.at("long_factor").at(2).get<double>() + longrope::json_indent_of("{\n  \"a\": 1}") +
         static_cast<double>(longrope::gguf_tensor_nbytes(0, 4))
         + reply.fitness.value_or(0.0);
}
