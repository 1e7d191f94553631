// `longrope finetune` (LONGROPE_CLI_PATH): bad command lines exit 1 with one
// line on stderr; with stories260K from ../shared: a short run prints the
// documented JSON, writes a loadable checkpoint and a sidecar that `eval`
// picks up, a run stopped early and resumed writes the same bytes as an
// uninterrupted one, and --factors-file reads a `search --out` JSON.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "run_cli.hpp"
#include "shared_data.hpp"

using nlohmann::json;
using longrope_test::run_cli;
using longrope_test::slurp;

namespace {
using longrope_test::one_line;
}  // namespace

TEST_CASE("finetune rejects bad input with one line on stderr", "[train][cli]") {
  const auto dir = std::filesystem::temp_directory_path() / "longrope_test_finetune_bad";
  std::filesystem::create_directories(dir);
  const std::string bad_json = (dir / "bad.json").string();
  std::ofstream(bad_json) << "{\"rescale_factors\": [1, \"x\"]}";
  const std::string not_json = (dir / "not.json").string();
  std::ofstream(not_json) << "{oops";
  const std::vector<std::string> base = {"finetune", "--model", "m", "--tokenizer", "t", "--text", "x"};
  struct bad {
    std::vector<std::string> extra;
    std::string expect;
  };
  const std::vector<bad> cases = {
      {{"--context", "64"}, "missing required option --out"},
      {{"--context", "1", "--out", "o"}, "--context: must be in [2, 1048576]"},
      {{"--context", "64", "--out", "o", "--format", "v2"}, "--format: expected v0 or v1"},
      {{"--context", "64", "--out", "o", "--decay", "step"}, "expected cosine, linear or constant"},
      {{"--context", "64", "--out", "o", "--lr", "0"}, "lr: must be finite and > 0"},
      {{"--context", "64", "--out", "o", "--batch", "0"}, "--batch: must be in [1, 4096]"},
      {{"--context", "64", "--out", "o", "--steps", "x"}, "--steps: expected an integer"},
      {{"--context", "64", "--out", "o", "--sampled"}, "give one of --text, --tokens or --sampled"},
      {{"--context", "64", "--out", "o", "--temperature", "1"}, "--temperature needs --sampled"},
      {{"--context", "64", "--out", "o", "--factors-file", bad_json}, "rescale_factors must hold finite numbers"},
      {{"--context", "64", "--out", "o", "--factors-file", not_json}, "not valid JSON"},
      {{"--context", "64", "--out", "o", "--factors-file", "/nonexistent.json"}, "cannot read /nonexistent.json: No such file"},
      {{"--context", "64", "--out", "o"}, "cannot read m: No such file"},
  };
  for (const auto& c : cases) {
    auto args = base;
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const auto r = run_cli(args);
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(one_line(r.err));
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(r.out.empty());
  }
  const auto h = run_cli({"finetune", "--help"});
  CHECK(h.status == 0);
  CHECK(h.out.find("usage: longrope finetune") == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("finetune on stories260K: JSON, checkpoint, sidecar, exact resume", "[train][cli][stories]") {
  const auto files = longrope_test::find_stories();
  if (!files.ok) {
    WARN(longrope_test::kStoriesSkipped);
    return;
  }
  const std::string model = files.model, tok = files.tok, text = files.text;
  const auto dir = longrope_test::fresh_temp_dir("longrope_test_finetune");
  const std::string a = (dir / "a.bin").string(), b = (dir / "b.bin").string();
  const std::string factors = (dir / "factors.json").string();
  std::ofstream(factors) << "{\"rescale_factors\": [1.0, 1.1, 1.3, 1.6], \"n_hat\": 2, \"attention_factor\": null}";
  const std::vector<std::string> common = {"finetune", "--model", model, "--tokenizer", tok,
                                           "--text", text, "--context", "96", "--batch", "2",
                                           "--threads", "2", "--steps", "3", "--warmup", "1", "--data-end", "4000",
                                           "--factors-file", factors, "--doc-mask", "--format", "v1"};
  auto args = longrope_test::plus(common, {"--out", a});
  const auto r = run_cli(args);
  INFO(r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(j.at("steps") == 3);
  CHECK(j.at("tokens_seen") == 3 * 2 * 95);
  CHECK(j.at("n_hat") == 2);
  CHECK(j.at("factors") == json::array({1.0, 1.1, 1.3, 1.6}));
  CHECK(j.at("data_end") == 4000);
  CHECK(std::isfinite(j.at("final_loss").get<double>()));
  CHECK(r.err.find("finetune: step 3/3") != std::string::npos);
  const json side = json::parse(slurp(a + ".json"));
  CHECK(side.at("context") == 96);
  CHECK(side.at("scaling").at("factors") == json::array({1.0, 1.1, 1.3, 1.6}));

  // eval on the result uses the sidecar's scaling.
  const auto e = run_cli({"eval", "--model", a, "--tokenizer", tok, "--text", text, "--context",
                          "96", "--windows", "1"});
  INFO(e.err);
  REQUIRE(e.status == 0);
  CHECK(e.err.find("using the scaling of") != std::string::npos);
  const json ej = json::parse(e.out);
  CHECK(ej.at("method") == "longrope");
  CHECK(ej.at("n_hat") == 2);

  // Stopped after the first step (--max-seconds tiny), then resumed: same bytes.
  args = longrope_test::plus(common, {"--out", b, "--max-seconds", "0.000001"});
  const auto r1 = run_cli(args);
  REQUIRE(r1.status == 0);
  CHECK(json::parse(r1.out).at("steps") == 1);
  args = longrope_test::plus(common, {"--out", b, "--resume", b + ".state"});
  const auto r2 = run_cli(args);
  INFO(r2.err);
  REQUIRE(r2.status == 0);
  CHECK(json::parse(r2.out).at("steps") == 3);
  CHECK(slurp(a) == slurp(b));
  CHECK(slurp(a + ".state") == slurp(b + ".state"));

  // Resuming with other options is refused.
  args = common;
  args[args.size() - 6] = "3000";  // --data-end
  args.insert(args.end(), {"--out", b, "--resume", a + ".state"});
  const auto r3 = run_cli(args);
  CHECK(r3.status == 1);
  CHECK(r3.err.find("other options") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("finetune --init, --passkey-mix, --mixed-window: a fresh model, loadable, resumed exactly", "[train][cli][stories]") {
  const auto files = longrope_test::find_stories();
  if (!files.ok) {
    WARN(longrope_test::kStoriesSkipped);
    return;
  }
  const std::string tok = files.tok, text = files.text;
  const auto dir = longrope_test::fresh_temp_dir("longrope_test_finetune_init");
  const std::string a = (dir / "a.bin").string(), b = (dir / "b.bin").string();
  // seq_len 64, context 256: long sequences are 4x the trained length (PI), short ones 64-token documents.
  const std::vector<std::string> common = {
      "finetune", "--init", "dim=32,layers=1,heads=2,vocab=512,seq_len=64", "--tokenizer", tok, "--text",
      text, "--data-end", "6000", "--context", "256", "--method", "pi", "--batch", "2", "--steps", "3",
      "--warmup", "1", "--passkey-mix", "0.5", "--mixed-window", "0.5", "--seed", "4"};
  auto args = longrope_test::plus(common, {"--out", a});
  const auto r = run_cli(args);
  INFO(r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(j.at("steps") == 3);
  CHECK(j.at("data").get<std::string>().find("passkey samples with probability") != std::string::npos);
  CHECK(j.at("data").get<std::string>().find("short windows of 64") != std::string::npos);
  CHECK(json::parse(slurp(a + ".json")).at("base_model") == "init:dim=32,layers=1,heads=2,vocab=512,seq_len=64");
  // The loader reads it back with the spec's shape (v0 keeps seq_len), and eval runs on it.
  const auto e = run_cli({"eval", "--model", a, "--tokenizer", tok, "--text", text, "--context",
                          "64", "--windows", "1", "--method", "none"});
  INFO(e.err);
  REQUIRE(e.status == 0);
  const double ppl = json::parse(e.out).at("perplexity").get<double>();
  CHECK(ppl > 1.0);
  CHECK(ppl < 600.0);  // a 3-step model is near uniform over 512 tokens
  // The same seed gives the same fresh model and run; stopped after one step and resumed: same bytes.
  args = longrope_test::plus(common, {"--out", b, "--max-seconds", "0.000001"});
  const auto r1 = run_cli(args);
  REQUIRE(r1.status == 0);
  CHECK(json::parse(r1.out).at("steps") == 1);
  args = longrope_test::plus(common, {"--out", b, "--resume", b + ".state"});
  const auto r2 = run_cli(args);
  INFO(r2.err);
  REQUIRE(r2.status == 0);
  CHECK(slurp(a) == slurp(b));
  CHECK(slurp(a + ".state") == slurp(b + ".state"));
  // Bad values: one line each.
  for (const auto& bad : std::vector<std::vector<std::string>>{
           {"--passkey-mix", "2"}, {"--mixed-window", "-1"}, {"--init", "dim=32"}, {"--model", "m"}}) {
    auto x = common;
    x.insert(x.end(), bad.begin(), bad.end());
    x.insert(x.end(), {"--out", (dir / "c.bin").string()});
    const auto rb = run_cli(x);
    INFO(rb.err);
    CHECK(rb.status == 1);
    CHECK(one_line(rb.err));
  }
  std::filesystem::remove_all(dir);
}
