// The `longrope` binary's data commands print JSON on stdout (version here;
// generate in test_model_cli.cpp, the others in their own tests).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/version.hpp>

#include "catch.hpp"
#include "run_cli.hpp"

TEST_CASE("version and --version print JSON", "[cli]") {
  for (const char* arg : {"version", "--version"}) {
    INFO(arg);
    const auto r = longrope_test::run_cli({arg});
    REQUIRE(r.status == 0);
    CHECK(r.err.empty());
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j.at("name") == "longrope");
    CHECK(j.at("version") == LONGROPE_VERSION_STRING);
    CHECK(j.at("major") == LONGROPE_VERSION_MAJOR);
    CHECK(j.at("minor") == LONGROPE_VERSION_MINOR);
    CHECK(j.at("patch") == LONGROPE_VERSION_PATCH);
  }
}
