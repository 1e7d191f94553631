// Translation unit B of the ODR test: every public header, and one use of each
// inline function family, so a missing `inline` fails at link time.
#include <longrope/longrope.hpp>
#if __has_include(<longrope/json.hpp>)
#include <longrope/json.hpp>
#endif

double odr_b() {
  longrope::rope_config cfg;
  cfg.head_dim = 8;
  const longrope::rope_frequencies f(cfg);
  float c[4], s[4];
  longrope::fill_table<float>(f, longrope::position_range{3, 4}, {c, 1, 4}, {s, 1, 4});
  return static_cast<double>(c[1]) + f.inv_freq()[1];
}
