// `longrope extend` (LONGROPE_CLI_PATH), the progressive pipeline: bad command
// lines and damaged work directories give one error line and exit 1; with
// stories260K from ../shared, a tiny-budget pipeline stopped after a stage
// (--until) and resumed ends with the same result JSON (up to wall-clock
// "seconds" and the work path) as an uninterrupted run, and writes the served
// model's sidecar and factor files.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "run_cli.hpp"
#include "shared_data.hpp"

using nlohmann::json;
using longrope_test::one_error_line;
using longrope_test::one_line;
using longrope_test::run_cli;
using longrope_test::slurp;

namespace {

/// j without the keys that legitimately differ between runs.
json strip(json j) {
  if (j.is_object()) {
    json out = json::object();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "seconds" || it.key() == "work") continue;
      out[it.key()] = strip(it.value());
    }
    return out;
  }
  if (j.is_array()) {
    for (auto& v : j) v = strip(v);
  }
  return j;
}

}  // namespace

TEST_CASE("extend rejects bad command lines with one line on stderr", "[pipeline][cli]") {
  const auto dir = std::filesystem::temp_directory_path() / "longrope_test_extend_bad";
  std::filesystem::remove_all(dir);
  const std::vector<std::string> base = {"extend", "--model", "m", "--tokenizer", "t", "--text", "x"};
  struct bad {
    std::vector<std::string> extra;
    std::string expect;
  };
  const std::vector<bad> cases = {
      {{}, "missing required option --work"},
      {{"--work", dir.string(), "--until", "search3"}, "--until: unknown stage 'search3'"},
      {{"--work", dir.string(), "--no-baselines", "--until", "pi-ft"}, "--until: unknown stage 'pi-ft'"},
      {{"--work", dir.string(), "--steps", "0"}, "--steps: must be in [1, 100000000]"},
      {{"--work", dir.string(), "--short-lambda-max", "0.5"}, "--short-lambda-max: must be in [1, 1000]"},
      {{"--work", dir.string(), "--population", "x"}, "--population: expected an integer"},
      {{"--work", dir.string(), "--stream-from", "-1"}, "--stream-from: must be in [0, "},
      {{"--work", dir.string(), "--short-seed", "yarn"},
       "--short-seed: expected ones or finetune, got 'yarn'"},
      {{"--work", dir.string(), "--short-windows", "0"}, "--short-windows: must be in [1, 10000]"},
      {{"--work", dir.string(), "--resume"}, "holds no started pipeline"},
      {{"--work", dir.string(), "--bogus"}, "unknown option '--bogus'"},
      {{"--work", dir.string()}, "cannot read m: No such file"},
  };
  for (const auto& c : cases) {
    auto args = base;
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const auto r = run_cli(args);
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(one_line(r.err));
    CHECK(r.err.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("extend: stopped after a stage and resumed, the same result as one run", "[pipeline][cli][stories]") {
  const auto files = longrope_test::find_stories();
  if (!files.ok) {
    WARN(longrope_test::kStoriesSkipped);
    return;
  }
  const std::string model = files.model, tok = files.tok, text = files.text;
  const auto dir = longrope_test::fresh_temp_dir("longrope_test_extend");
  // 12 KB of text: ~4k tokens, >= 4 windows of the longest length (640).
  const std::string small = (dir / "text.txt").string();
  std::ofstream(small) << slurp(text).substr(0, 12000);
  const std::string a = (dir / "a").string(), b = (dir / "b").string();
  // Tiny budgets and contexts: L0 512, mid 576, long 640 (the stages, not the quality, are tested).
  const std::vector<std::string> args = {"extend", "--model", model, "--tokenizer", tok, "--text",
                                         small, "--mid-context", "576", "--long-context", "640", "--population", "3",
                                         "--mutations", "1", "--crossovers", "1", "--topk", "2", "--iterations", "1",
                                         "--steps", "2", "--warmup", "1", "--eval-windows", "1", "--threads", "2"};
  // A --stream-from at or past the stream's end: one line, before any stage runs.
  const auto past = run_cli(longrope_test::plus(args, {"--work", a, "--stream-from", "100000000"}));
  CHECK(past.status == 1);
  CHECK(one_line(past.err));
  CHECK(past.err.find("--stream-from 100000000: the stream has only ") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path(a) / "stage-search1.json"));
  const auto full = run_cli(longrope_test::plus(args, {"--work", a}));
  INFO(full.err);
  REQUIRE(full.status == 0);
  const json ja = json::parse(full.out);
  CHECK(ja == json::parse(slurp(std::filesystem::path(a) / "result.json")));
  for (const char* stage : {"search1", "finetune", "search2", "short", "pi-ft", "yarn-ft", "search-base", "evaluate"}) {
    CHECK(ja["stages"].contains(stage));
  }
  const auto& rows = ja["table"]["rows"];
  REQUIRE(rows.size() == 11);
  for (const auto& r : rows) {
    for (const char* L : {"512", "576", "640"}) {
      INFO(r["method"].get<std::string>() << " at " << L);
      const double p = r["perplexity"][L]["perplexity"].get<double>();
      CHECK(p > 1.0);
      CHECK(p < 512.0);  // below the vocabulary size: a working model
    }
  }
  // The served factor set: long = search2's best, short = the short stage's.
  CHECK(ja["factors"]["long_factor"] == ja["stages"]["search2"]["best"]["factors"]);
  CHECK(ja["factors"]["short_factor"] == ja["stages"]["short"]["best"]["factors"]);
  CHECK(ja["rope_scaling"]["rope_type"] == "longrope");
  CHECK(ja["rope_scaling"]["original_max_position_embeddings"] == 512);
  for (double f : ja["factors"]["short_factor"]) CHECK((f >= 1.0 && f <= 1.25));
  const json side = json::parse(slurp(std::filesystem::path(a) / "finetune.bin.json"));
  CHECK(side["scaling"]["factors"] == ja["factors"]["long_factor"]);
  CHECK(side["short_scaling"]["factors"] == ja["factors"]["short_factor"]);
  // eval picks the served sidecar up (the long factors).
  const auto ev = run_cli({"eval", "--model", (std::filesystem::path(a) / "finetune.bin").string(), "--tokenizer",
                           tok, "--text", small, "--context", "640", "--windows", "1"});
  INFO(ev.err);
  CHECK(ev.status == 0);
  CHECK(ev.err.find("finetune.bin.json") != std::string::npos);
  REQUIRE(ev.status == 0);
  CHECK(json::parse(ev.out)["factors"] == ja["factors"]["long_factor"]);
  // ... and the short set up to the trained length (the served model switches at L0).
  const auto ev_short = run_cli({"eval", "--model", (std::filesystem::path(a) / "finetune.bin").string(),
                                 "--tokenizer", tok, "--text", small, "--context", "512", "--windows", "1"});
  INFO(ev_short.err);
  REQUIRE(ev_short.status == 0);
  CHECK(ev_short.err.find("using the short_scaling of") != std::string::npos);
  CHECK(json::parse(ev_short.out)["factors"] == ja["factors"]["short_factor"]);

  // Stopped after search2, then resumed: same stages, same result.
  const auto part = run_cli(longrope_test::plus(args, {"--work", b, "--until", "search2"}));
  INFO(part.err);
  REQUIRE(part.status == 0);
  const json jp = json::parse(part.out);
  CHECK(jp["stages"].contains("search2"));
  CHECK_FALSE(jp["stages"].contains("short"));
  CHECK_FALSE(jp.contains("table"));
  CHECK(std::filesystem::exists(std::filesystem::path(b) / "finetune.bin"));
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path(b) / "stage-short.json"));
  const auto rest = run_cli(longrope_test::plus(args, {"--work", b, "--resume"}));
  INFO(rest.err);
  REQUIRE(rest.status == 0);
  CHECK(rest.err.find("stage search2 already done") != std::string::npos);
  CHECK(rest.err.find("stage short already done") == std::string::npos);
  CHECK(strip(json::parse(rest.out)) == strip(ja));

  // --short-seed finetune: the short stage also starts from search1's factors clipped to its
  // grid, on its own window count; the stages before it are those of the default run.
  const std::string c = (dir / "c").string();
  const auto seeded =
      run_cli(longrope_test::plus(args, {"--work", c, "--short-seed", "finetune", "--short-windows", "2",
                                         "--short-lambda-max", "1.05", "--until", "short"}));
  INFO(seeded.err);
  REQUIRE(seeded.status == 0);
  const json js = json::parse(seeded.out);
  for (const char* stage : {"search1", "finetune", "search2"}) {
    CHECK(strip(js["stages"][stage]) == strip(ja["stages"][stage]));
  }
  const auto& sh = js["stages"]["short"];
  CHECK(sh["windows"] == 2);
  CHECK(ja["stages"]["short"]["user_seeds"].empty());
  REQUIRE(sh["user_seeds"].size() == 1);
  const auto& fine = ja["stages"]["search1"]["best"]["factors"];
  REQUIRE(sh["user_seeds"][0].size() == fine.size());
  bool clipped = false;
  for (std::size_t i = 0; i < fine.size(); ++i) {
    const double want = std::min(std::max(fine[i].get<double>(), 1.0), 1.05);
    clipped = clipped || fine[i].get<double>() > 1.05;
    CHECK(sh["user_seeds"][0][i].get<double>() == Approx(want).margin(0.0051));  // the grid's step is 0.01
  }
  CHECK(clipped);  // search1 (scale 1.125) has pairs above 1.05: the clip was exercised
  for (double f : sh["best"]["factors"]) CHECK((f >= 1.0 && f <= 1.05));

  // --finetune-range: the fine-tunes read those tokens of the whole text instead of the stream's
  // first quarter; bad ranges are one line each, before any stage runs.
  const std::string d = (dir / "d").string();
  for (const char* bad : {"100", "x:2000", "0:100", "-1:2000", "0:100000000"}) {
    const auto r = run_cli(longrope_test::plus(args, {"--work", d, "--finetune-range", bad}));
    INFO(bad << ": " << r.err);
    CHECK(r.status == 1);
    CHECK(one_line(r.err));
    CHECK(r.err.find("--finetune-range") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path(d) / "stage-search1.json"));
  const auto ranged = run_cli(
      longrope_test::plus(args, {"--work", d, "--finetune-range", "1000:3000", "--until", "finetune"}));
  INFO(ranged.err);
  REQUIRE(ranged.status == 0);
  const json jr = json::parse(ranged.out);
  CHECK(strip(jr["stages"]["search1"]) == strip(ja["stages"]["search1"]));
  CHECK(jr["stages"]["finetune"]["data"] == "finetune_tokens[0,2000)");
  CHECK(jr["stages"]["finetune"]["first_loss"] != ja["stages"]["finetune"]["first_loss"]);  // other tokens

  // Damaged work directories: one clear error line each.
  const auto short_file = std::filesystem::path(b) / "stage-short.json";
  const std::string good = slurp(short_file);
  std::ofstream(short_file) << "{\"format\": \"longrope-extend-stage-1\", \"stage\": \"short\"";  // truncated
  auto r = run_cli(longrope_test::plus(args, {"--work", b}));
  CHECK(r.status == 1);
  CHECK(one_error_line(r.err));
  CHECK(r.err.find("stage-short.json: not valid JSON") != std::string::npos);
  std::ofstream(short_file) << good;
  std::filesystem::rename(std::filesystem::path(b) / "finetune.bin", std::filesystem::path(b) / "moved.bin");
  r = run_cli(longrope_test::plus(args, {"--work", b}));
  CHECK(r.status == 1);
  CHECK(one_error_line(r.err));
  CHECK(r.err.find("finetune.bin is missing") != std::string::npos);
  std::filesystem::rename(std::filesystem::path(b) / "moved.bin", std::filesystem::path(b) / "finetune.bin");
  r = run_cli(longrope_test::plus(args, {"--work", b, "--seed", "7"}));
  CHECK(r.status == 1);
  CHECK(one_error_line(r.err));
  CHECK(r.err.find("written by a run with other options") != std::string::npos);
  std::filesystem::remove(std::filesystem::path(b) / "stage-search1.json");
  r = run_cli(longrope_test::plus(args, {"--work", b}));
  CHECK(r.status == 1);
  CHECK(one_error_line(r.err));
  CHECK(r.err.find("an earlier stage is missing") != std::string::npos);
  std::filesystem::remove_all(dir);
}
