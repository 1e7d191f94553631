// `longrope search --method longrope2`: bad command lines exit 1 with one line
// on stderr (always runs); with stories260K: the needle task's windows (length,
// answer spans, planted needles), and a tiny needle search with the mscale
// stage printing the documented JSON (d_rcd in the requested range, derived
// pairs on the NTK rule, short factors all 1, a transformers longrope block);
// on a tiny model (always runs): --checkpoint / --resume, killed after every
// generation, ends with the uninterrupted result; mismatched or foreign state
// files are refused in one line.
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <llama2c/checkpoint.hpp>
#include <llama2c/needle.hpp>
#include <llama2c/tokenizer.hpp>

#include "catch.hpp"
#include "run_cli.hpp"
#include "shared_data.hpp"
#include "tiny_model.hpp"

using nlohmann::json;

namespace {
using longrope_test::one_line;
}  // namespace

TEST_CASE("search --method longrope2 rejects bad input", "[longrope2][cli]") {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--context", "64", "--fitness", "rouge"}, "--fitness: expected needle or perplexity"},
      {{"--context", "64", "--critical-dim", "1", "--critical-dim-range", "1:2"}, "not both"},
      {{"--context", "64", "--critical-dim-range", "3:1"}, "--critical-dim-range: need 0 <= A <= B"},
      {{"--context", "64", "--critical-dim-range", "3"}, "expected A:B"},
      {{"--context", "64", "--needle-keys", "17"}, "--needle-keys: must be in [1, 16]"},
      {{"--context", "64", "--mscale-step", "0"}, "--mscale-step"},
      {{"--context", "64", "--no-n-hat"}, "unknown option '--no-n-hat'"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"search", "--method", "longrope2", "--model", "m", "--tokenizer", "t", "--text", "x"};
    args.insert(args.end(), c.first.begin(), c.first.end());
    const auto r = longrope_test::run_cli(args);
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(one_line(r.err));
    CHECK(r.err.find(c.second) != std::string::npos);
    CHECK(r.out.empty());
  }
  const auto h = longrope_test::run_cli({"search", "--method=longrope2", "--help"});
  CHECK(h.status == 0);
  CHECK(h.out.find("usage: longrope search --method longrope2") == 0);
  CHECK(longrope_test::run_cli({"search", "--help"}).out.find("--method longrope2") != std::string::npos);
}

TEST_CASE("longrope2 needle task and search on stories260K", "[longrope2][cli][stories]") {
  const auto m = longrope_test::shared_file("models/stories260K/stories260K.bin");
  const auto t = longrope_test::shared_file("models/stories260K/tok512.bin");
  const auto x = longrope_test::shared_file("data/tinystories/valid_head.txt");
  if (m.empty() || t.empty() || x.empty()) {
    WARN("skipped: stories260K or valid_head.txt not found (../shared or $LONGROPE_SHARED_DIR)");
    return;
  }
  {
    const auto ck = llama2c::load_checkpoint(m.string());
    const auto tok = llama2c::tokenizer::load(t.string(), ck.config.vocab_size);
    const auto stream = tok.encode(longrope_test::slurp(x).substr(0, 40000), false, false);
    llama2c::needle_options no;
    no.context = 700;
    no.keys = 3;
    no.depths = {0.5, 0.0, 1.0};
    const auto w = llama2c::make_needle_windows(tok, stream, no, 2, 100);
    REQUIRE(w.size() == 2);
    for (const auto& win : w) {
      CHECK(win.tokens.size() == 700);
      CHECK(win.tokens.front() == llama2c::kBos);
      REQUIRE(win.answers.size() == 3);
      std::string text;
      for (std::size_t i = 1; i < win.tokens.size(); ++i) text += tok.decode_piece(win.tokens[i - 1], win.tokens[i]);
      for (std::size_t j = 0; j < 3; ++j) {
        const auto needle = "special magic numbers for " + win.keys[j] + " is: " + win.values[j] + ".";
        const auto at = text.find(needle);
        CHECK(at != std::string::npos);
        std::string ans;
        for (auto i = win.answers[j].first; i < win.answers[j].second; ++i) {
          ans += tok.decode_piece(win.tokens[static_cast<std::size_t>(i - 1)], win.tokens[static_cast<std::size_t>(i)]);
        }
        CHECK(ans == " " + win.values[j]);
        CHECK(win.values[j].size() == 7);
      }
      // depth 0 comes first, depth 1 right before the questions.
      CHECK(text.find(win.keys[1] + " is:") < text.find(win.keys[0] + " is:"));
      CHECK(text.find(win.keys[0] + " is:") < text.find(win.keys[2] + " is:"));
      CHECK(text.find(win.keys[2] + " is:") < text.find("What is the special magic number"));
    }
    CHECK(w[0].keys != w[1].keys);
    no.context = 100;
    CHECK_THROWS_WITH(llama2c::make_needle_windows(tok, stream, no, 1), Catch::Contains("cannot hold"));
    no.context = 700;
    CHECK_THROWS_WITH(llama2c::make_needle_windows(tok, stream, no, 1000), Catch::Contains("needle text too short"));
  }
  const auto out = std::filesystem::temp_directory_path() / "longrope_test_longrope2_cli.json";
  const auto r = longrope_test::run_cli({"search", "--method", "longrope2", "--model", m.string(), "--tokenizer",
                                         t.string(), "--text", x.string(), "--context", "1024", "--windows", "1",
                                         "--critical-dim-range", "1:2", "--search-mscale", "--population", "4",
                                         "--mutations", "2", "--crossovers", "2", "--topk", "2", "--iterations", "1",
                                         "--mscale-iterations", "1", "--threads", "2", "--out", out.string()});
  INFO(r.err);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(json::parse(longrope_test::slurp(out)) == j);
  CHECK(j.at("method") == "longrope2");
  CHECK(j.at("fitness") == "needle");
  CHECK(j.at("d_tcd") == 2);
  CHECK(j.at("d10_tcd") == 1);
  const int k = j.at("critical_dim").get<int>();
  CHECK((k == 1 || k == 2));
  REQUIRE(j.at("runs").size() == 2);
  const auto f = j.at("rescale_factors").get<std::vector<double>>();
  REQUIRE(f.size() == 4);
  for (int i = 0; i < k; ++i) CHECK(std::fabs(f[static_cast<std::size_t>(i)] - std::pow(f[static_cast<std::size_t>(k)], double(i) / k)) < 1e-12);
  for (std::size_t i = static_cast<std::size_t>(k); i < 4; ++i) CHECK((f[i] >= 2.0 - 1e-12 && f[i] <= 4.0 + 1e-12));
  CHECK(j.at("short_factor") == json::array({1.0, 1.0, 1.0, 1.0}));
  CHECK(j.at("pair_mscale").size() == 4);
  CHECK(j.at("score").get<double>() <= j.at("factor_score").get<double>());
  CHECK(j.at("rope_scaling").at("rope_type") == "longrope");
  CHECK(j.at("rope_scaling").at("long_factor") == j.at("rescale_factors"));
  CHECK(j.at("rope_scaling").at("short_factor") == j.at("short_factor"));
  CHECK(j.at("baselines").at("pi").is_number());
  std::filesystem::remove(out);
}

namespace {
// A result or state file without the clock and the thread count (which never
// changes a result), at any depth.
json timeless(json j) {
  if (j.is_object()) {
    for (const char* k : {"seconds", "elapsed_seconds", "threads"}) j.erase(k);
    for (auto& [k, v] : j.items()) v = timeless(v);
  } else if (j.is_array()) {
    for (auto& v : j) v = timeless(v);
  }
  return j;
}
json read_json(const std::filesystem::path& p) { return json::parse(longrope_test::slurp(p)); }
}  // namespace

TEST_CASE("search --method longrope2 --checkpoint / --resume: killed at every generation, the uninterrupted result",
          "[longrope2][cli][resume]") {
  namespace fs = std::filesystem;
  // A tiny model (2 pairs, trained length 16): d_rcd in [0, 1], two factor runs, then the mscale stage.
  const auto model = longrope_test::write_tiny_model("longrope_test_lr2_model", 8, 1.0f);
  const auto tok = longrope_test::write_tokenizer("longrope_test_lr2_tok", {"<unk>", "<s>", "</s>", " ", "a", "b", "c", "d"});
  const auto dir = fs::temp_directory_path();
  const auto text = dir / ("longrope_test_lr2_text_" + std::to_string(::getpid()) + ".txt");
  {
    std::string t;
    std::uint32_t x = 4321;
    for (int i = 0; i < 800; ++i) {
      x = x * 1103515245u + 12345u;
      t += static_cast<char>('a' + (x >> 16) % 4);
    }
    std::ofstream(text) << t;
  }
  const auto ref_cp = dir / ("longrope_test_lr2_ref_" + std::to_string(::getpid()) + ".json");
  const auto cp = dir / ("longrope_test_lr2_cp_" + std::to_string(::getpid()) + ".json");
  fs::remove(cp);
  const std::vector<std::string> args = {
      "search", "--method", "longrope2", "--model", model, "--tokenizer", tok, "--text", text.string(),
      "--context", "64", "--fitness", "perplexity", "--windows", "2", "--critical-dim-range", "0:1",
      "--search-mscale", "--population", "6", "--mutations", "3", "--crossovers", "3", "--topk", "3",
      "--iterations", "2", "--mscale-iterations", "2", "--seed", "5", "--threads", "2"};
  const auto ref = longrope_test::run_cli(longrope_test::plus(args, {"--checkpoint", ref_cp.string()}));
  INFO(ref.err);
  REQUIRE(ref.status == 0);
  const json ref_out = json::parse(ref.out);
  REQUIRE(ref_out.at("runs").size() == 2);
  REQUIRE(ref_out.at("pair_mscale").size() == 2);
  CHECK(read_json(ref_cp).at("longrope2_search").at("stage") == "mscale");
  CHECK(read_json(ref_cp).at("longrope2_search").at("finished_runs").size() == 2);
  // --checkpoint does not change the search.
  const auto plain = longrope_test::run_cli(args);
  REQUIRE(plain.status == 0);
  CHECK(timeless(json::parse(plain.out)) == timeless(ref_out));

  // SIGINT during the first generation: its state saved, the best so far printed, exit 130.
  const auto a =
      longrope_test::run_cli_interrupted(SIGINT, longrope_test::plus(args, {"--checkpoint", cp.string()}));
  INFO(a.err);
  REQUIRE(a.status == 128 + SIGINT);
  CHECK_THAT(a.err, Catch::Contains("interrupted by signal 2"));
  CHECK(json::parse(a.out).at("stop_reason") == "interrupted");
  CHECK(read_json(cp).at("longrope2_search").at("stage") == "factors");
  CHECK(read_json(cp).at("iteration") == 0);
  // Killed (SIGTERM) after every further generation, other --threads: each resume
  // scores one generation, across both factor runs and into the mscale stage.
  // 3 + 3 + 3 generations in all: 8 interrupted runs, the 9th generation completes.
  int interrupted = 1;
  bool saw_mscale = false;
  longrope_test::cli_result last;
  for (int i = 0; i < 12; ++i) {
    last = longrope_test::run_cli_interrupted(
        SIGTERM, longrope_test::plus(args, {"--resume", cp.string(), "--threads", "1"}));
    if (last.status != 128 + SIGTERM) break;
    ++interrupted;
    CHECK_THAT(last.err, Catch::Contains("resumed"));
    saw_mscale = saw_mscale || read_json(cp).at("longrope2_search").at("stage") == "mscale";
  }
  INFO(last.err);
  REQUIRE(last.status == 0);
  CHECK(interrupted == 8);
  CHECK(saw_mscale);
  CHECK(timeless(json::parse(last.out)) == timeless(ref_out));
  CHECK(timeless(read_json(cp)) == timeless(read_json(ref_cp)));

  // Another search, another command's state, a corrupt file: one error line each.
  const auto lr_state = dir / ("longrope_test_lr2_lr_" + std::to_string(::getpid()) + ".json");
  const auto bad = dir / ("longrope_test_lr2_bad_" + std::to_string(::getpid()) + ".json");
  std::ofstream(bad) << "{\"not\": \"a state\"";
  const auto lr = longrope_test::run_cli({"search", "--model", model, "--tokenizer", tok, "--text", text.string(),
                                          "--context", "64", "--population", "4", "--mutations", "2", "--crossovers",
                                          "2", "--topk", "2", "--iterations", "0", "--checkpoint", lr_state.string()});
  INFO(lr.err);
  REQUIRE(lr.status == 0);
  for (const auto& [extra, expect] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--resume", cp.string(), "--seed", "8"}, "written for another search: settings.seed"},
           {{"--resume", cp.string(), "--windows", "3"}, "written for another search: settings.windows"},
           {{"--resume", cp.string(), "--mscale-iterations", "3"}, "written for another search: settings.mscale_iterations"},
           {{"--resume", cp.string(), "--population", "8"}, "written for another search: settings.population"},
           {{"--resume", lr_state.string()}, "no longrope2_search block"},
           {{"--resume", bad.string()}, "not a JSON object"},
           {{"--resume", (dir / "longrope_test_lr2_missing.json").string()}, "longrope_test_lr2_missing.json"}}) {
    const auto r = longrope_test::run_cli(longrope_test::plus(args, extra));
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(longrope_test::one_error_line(r.err));
    CHECK_THAT(r.err, Catch::Contains(expect));
    CHECK(r.out.empty());
  }
  // The LongRoPE search (in-process and external) refuses a LongRoPE2 state.
  const auto m2 = longrope_test::run_cli({"search", "--model", model, "--tokenizer", tok, "--text", text.string(),
                                          "--context", "64", "--resume", cp.string()});
  CHECK(m2.status == 1);
  CHECK_THAT(m2.err, Catch::Contains("written by `longrope search --method longrope2`"));
  const auto ext = longrope_test::run_cli({"search", "--resume", cp.string(), "--evaluator", "true"});
  CHECK(ext.status == 1);
  CHECK_THAT(ext.err, Catch::Contains("written by `longrope search --method longrope2`"));
  for (const auto& p : {fs::path(model), fs::path(tok), text, ref_cp, cp, lr_state, bad}) fs::remove(p);
}
