// Core configuration and frequency tests: validation, the closed forms that
// need no reference table (plain RoPE, PI, attention factors), table basics.
#include <cmath>
#include <string>
#include <vector>

#include <longrope/longrope.hpp>

#include "catch.hpp"

using namespace longrope;
using Catch::Matchers::WithinRel;

namespace {

rope_config phi3_like(int pairs = 48) {
  rope_config c;
  c.head_dim = 2 * pairs;
  c.type = rope_type::longrope;
  c.max_position_embeddings = 131072;
  c.longrope.original_max_position = 4096;
  c.longrope.short_factor.assign(static_cast<std::size_t>(pairs), 1.5);
  c.longrope.long_factor.assign(static_cast<std::size_t>(pairs), 4.0);
  return c;
}

std::string error_of(const rope_config& c) {
  try {
    c.validate();
  } catch (const longrope::error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("version macros agree with version()", "[core]") {
  constexpr auto v = longrope::version();
  const std::string s = std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch);
  CHECK(s == LONGROPE_VERSION_STRING);
}

TEST_CASE("plain RoPE frequencies are base^(-2i/d)", "[core]") {
  rope_config c;
  c.head_dim = 128;
  const rope_frequencies f(c);
  REQUIRE(f.pairs() == 64);
  for (int i = 0; i < 64; ++i) {
    // Independent form: exp(-2i/d * ln base).
    const double expected = std::exp(-2.0 * i / 128.0 * std::log(10000.0));
    CHECK_THAT(f.inv_freq()[static_cast<std::size_t>(i)], WithinRel(expected, 1e-14));
    CHECK(f.rescale_factors()[static_cast<std::size_t>(i)] == 1.0);
  }
  CHECK(f.attention_factor() == 1.0);
  CHECK(f.active_factor_set() == factor_set::none);
}

TEST_CASE("linear scaling divides every frequency by the factor", "[core]") {
  rope_config c;
  c.head_dim = 64;
  c.type = rope_type::linear;
  c.factor = 4.0;
  const rope_frequencies f(c);
  for (int i = 0; i < f.pairs(); ++i) CHECK_THAT(f.rescale_factors()[static_cast<std::size_t>(i)], WithinRel(4.0, 1e-14));
}

TEST_CASE("LongRoPE attention factor and factor-set policies", "[core]") {
  const auto c = phi3_like();
  const double expected = 1.1902380714238083;  // sqrt(1 + ln 32 / ln 4096), published in the HF configs README
  SECTION("default: short factors, attention factor from max/original") {
    const rope_frequencies f(c);
    CHECK(f.active_factor_set() == factor_set::short_factors);
    CHECK_THAT(f.attention_factor(), WithinRel(expected, 1e-15));
    CHECK(f.rescale_factors()[0] == 1.5);
  }
  SECTION("by sequence length: long iff length > original") {
    CHECK(rope_frequencies(c, {4096}).active_factor_set() == factor_set::short_factors);
    CHECK(rope_frequencies(c, {4097}).active_factor_set() == factor_set::long_factors);
    CHECK(rope_frequencies(c, {4097}).rescale_factors()[3] == 4.0);
  }
  SECTION("fixed policies ignore the length") {
    CHECK(rope_frequencies(c, {10, factor_policy::always_long}).active_factor_set() == factor_set::long_factors);
    CHECK(rope_frequencies(c, {100000, factor_policy::always_short}).active_factor_set() ==
          factor_set::short_factors);
  }
  SECTION("explicit attention factor wins") {
    auto c2 = c;
    c2.longrope.attention_factor = 1.25;
    CHECK(rope_frequencies(c2).attention_factor() == 1.25);
  }
}

TEST_CASE("validation names the offending field", "[core][errors]") {
  auto c = phi3_like();
  c.longrope.long_factor.pop_back();
  const auto msg = error_of(c);
  CHECK(msg.find("[longrope.config]") == 0);
  CHECK(msg.find("longrope.long_factor") != std::string::npos);
  CHECK(msg.find("expected 48") != std::string::npos);

  auto odd = phi3_like();
  odd.rotary_dim = 95;
  CHECK(error_of(odd).find("rotary_dim") != std::string::npos);

  auto nan = phi3_like();
  nan.longrope.short_factor[7] = std::nan("");
  CHECK(error_of(nan).find("longrope.short_factor[7]") != std::string::npos);

  auto neg = phi3_like();
  neg.longrope.short_factor[0] = -1.0;
  CHECK(error_of(neg).find("must be > 0") != std::string::npos);

  rope_config bad_base;
  bad_base.head_dim = 8;
  bad_base.base = 0.0;
  CHECK(error_of(bad_base).find("base") != std::string::npos);

  rope_config unknown;
  unknown.head_dim = 8;
  unknown.type = static_cast<rope_type>(42);
  CHECK(error_of(unknown).find("unknown rope_type") != std::string::npos);

  CHECK_THROWS_AS(rope_frequencies(c), longrope::error);
}

TEST_CASE("table rows: attention factor applied, n_hat boundary", "[core][table]") {
  auto c = phi3_like(4);
  c.n_hat = 5;
  const rope_frequencies f(c, {100000});
  std::vector<float> cs(2 * 4), sn(2 * 4);
  const std::int64_t pos[2] = {4, 5};
  fill_table<float>(f, pos, 2, {cs.data(), 2, 4}, {sn.data(), 2, 4});
  const double att = f.attention_factor();
  for (int i = 0; i < 4; ++i) {
    const double th = std::pow(10000.0, -2.0 * i / 8.0);
    // p = 4 < n_hat: unscaled angle; p = 5 >= n_hat: angle divided by lambda = 4.
    CHECK(std::fabs(cs[static_cast<std::size_t>(i)] - att * std::cos(4 * th)) < 2e-7);
    CHECK(std::fabs(sn[static_cast<std::size_t>(i)] - att * std::sin(4 * th)) < 2e-7);
    CHECK(std::fabs(cs[static_cast<std::size_t>(4 + i)] - att * std::cos(5 * th / 4.0)) < 2e-7);
    CHECK(std::fabs(sn[static_cast<std::size_t>(4 + i)] - att * std::sin(5 * th / 4.0)) < 2e-7);
  }
  const std::int64_t negative[1] = {-1};
  CHECK_THROWS_WITH(fill_table<float>(f, negative, 1, {cs.data(), 1, 4}, {sn.data(), 1, 4}),
                    Catch::Matchers::Contains("negative"));
  CHECK_THROWS_WITH(fill_table<float>(f, pos, 2, {cs.data(), 1, 4}, {sn.data(), 1, 4}),
                    Catch::Matchers::Contains("rows"));
}

TEST_CASE("positions whose angles exceed 2^29 rad are rejected, not inaccurate", "[core][table][errors]") {
  rope_config c;
  c.head_dim = 8;
  const rope_frequencies f(c);
  // Pair 0 has frequency exactly 1 rad/position, so the bound is 2^29 itself.
  CHECK(f.max_position() == (std::int64_t{1} << 29));
  float cs[4], sn[4];
  const std::int64_t ok[1] = {std::int64_t{1} << 29};
  CHECK_NOTHROW(fill_table<float>(f, ok, 1, {cs, 1, 4}, {sn, 1, 4}));
  const std::int64_t too_far[1] = {(std::int64_t{1} << 29) + 1};
  CHECK_THROWS_WITH(fill_table<float>(f, too_far, 1, {cs, 1, 4}, {sn, 1, 4}),
                    Catch::Matchers::Contains("above 2^29 rad"));
  CHECK_THROWS_WITH(fill_table<float>(f, position_range{too_far[0] - 1, too_far[0] + 1}, {cs, 2, 4}, {sn, 2, 4}),
                    Catch::Matchers::Contains("above 2^29 rad"));
  float q[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  CHECK_THROWS_WITH(rotate(f, token_major(q, 1, 1, 1, 8), {too_far, 0}, {0, 1}),
                    Catch::Matchers::Contains("above 2^29 rad"));
  CHECK(q[0] == 1.0f);  // checked before any element is touched
}
