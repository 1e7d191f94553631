// `longrope search --evaluator / --mpi / --checkpoint / --resume`, `ask`, `tell`
// and `evaluate` (LONGROPE_CLI_PATH), against the library's in-process search
// with the same deterministic fitness (tools/longrope/synthetic_fitness.hpp):
//   acceptance 1: in-process == 1 child == 3 children (== mpirun -np 4, [mpi]),
//   acceptance 3: evaluators killed / exiting / hanging / answering garbage at
//                 random, the coordinator SIGKILLed or SIGTERMed and resumed,
//   ask/tell:     one step per process through the state file,
// all bit-identical (final checkpoints compared: population, cache, rng).
// [stories]: the numpy evaluator and the C++ double-forward evaluator drive a
// stories260K search to the same factors. POSIX only.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/search_json.hpp>

#include "catch.hpp"
#include "run_cli.hpp"
#include "shared_data.hpp"
#include "synthetic_fitness.hpp"
#include "tiny_model.hpp"

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kCli = LONGROPE_CLI_PATH;

fs::path tmp(const std::string& name) {
  return fs::temp_directory_path() / ("longrope_test_eval_" + std::to_string(::getpid()) + "_" + name);
}

std::string config_file() {
  const auto p = tmp("config.json");
  std::ofstream(p) << R"({"head_dim": 32, "rope_theta": 10000.0, "max_position_embeddings": 4096})";
  return p.string();
}

// The search every case runs: 16 pairs, s = 8, P 12, 6 + 6 children, k 6, 4 generations.
std::vector<std::string> search_args() {
  return {"--config", config_file(), "--context", "32768", "--population", "12", "--mutations", "6",
          "--crossovers", "6", "--topk", "6", "--iterations", "4", "--seed", "11"};
}

std::string evaluator(const std::string& extra = "") {
  return longrope_test::shell_quote(kCli) + " evaluate --synthetic" + (extra.empty() ? "" : " " + extra);
}

// The same search in this process (the library, no CLI): its checkpoint JSON.
json in_process() {
  longrope::search_target t;
  t.rope.head_dim = 32;
  t.original_length = 4096;
  t.scale = 8.0;
  longrope::search_options o;
  o.population = 12;
  o.mutations = 6;
  o.crossovers = 6;
  o.top_k = 6;
  o.iterations = 4;
  o.seed = 11;
  longrope::evolutionary_search s(longrope::search_space(longrope::default_space_config(t)), o, t);
  s.run([&](const std::vector<longrope::search_point>& pts) {
    std::vector<double> v;
    for (const auto& p : pts) v.push_back(longrope_cli::synthetic_fitness(p.factors, p.n_hat, 4096, 32768));
    return v;
  });
  return longrope::to_json(s.checkpoint());
}

// What must agree bit for bit: everything in a checkpoint but the clock.
json comparable(json cp) {
  cp.erase("elapsed_seconds");
  cp.erase("longrope_cli");
  return cp;
}

json read_json(const fs::path& p) { return json::parse(longrope_test::slurp(p)); }

json search_with(std::vector<std::string> extra, const std::string& name, int expect_status = 0) {
  const auto cp = tmp(name + ".json");
  fs::remove(cp);
  auto args = search_args();
  args.insert(args.begin(), "search");
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("--checkpoint");
  args.push_back(cp.string());
  const auto r = longrope_test::run_cli(args);
  INFO(r.err);
  REQUIRE(r.status == expect_status);
  const json out = json::parse(r.out);
  CHECK(out.at("stop_reason") == "iterations");
  const json state = read_json(cp);
  fs::remove(cp);
  return state;
}

int shell(const std::string& cmd) {
  const int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

TEST_CASE("in-process, 1 child and 3 children give the same search bit for bit", "[evaluators]") {
  const json ref = comparable(in_process());
  REQUIRE(ref.at("status") == "iterations");
  CHECK(comparable(search_with({"--evaluator", evaluator(), "--evaluators", "1"}, "one")) == ref);
  // --optimizer picks the driver's strategy for the external search too (the paper's EA by default).
  CHECK(search_with({"--evaluator", evaluator(), "--evaluators", "1"}, "default")
            .at("options")
            .at("strategy") == "evolution");
  CHECK(
      search_with({"--evaluator", evaluator(), "--evaluators", "2", "--optimizer", "surrogate"}, "surrogate")
          .at("options")
          .at("strategy") == "surrogate");
  CHECK(comparable(search_with({"--evaluator", evaluator("--delay-ms 1"), "--evaluators", "3"}, "three")) == ref);
}

TEST_CASE("evaluators killed, exiting, hanging or answering garbage at random: the same result", "[evaluators]") {
  const json ref = comparable(in_process());
  for (const char* fault : {"kill", "exit", "garbage"}) {
    INFO(fault);
    const auto cmd = evaluator(std::string("--fault ") + fault + " --fault-rate 0.15");
    CHECK(comparable(search_with({"--evaluator", cmd, "--evaluators", "3", "--eval-retries", "50"}, fault)) == ref);
  }
  // Hangs: the timeout kills them (rarely, so few 0.3 s waits).
  const auto cmd = evaluator("--fault hang --fault-rate 0.02");
  CHECK(comparable(search_with({"--evaluator", cmd, "--evaluators", "3", "--eval-retries", "50", "--eval-timeout", "0.3"},
                               "hang")) == ref);
}

TEST_CASE("an evaluator error, or retries exhausted, scores +inf and the search goes on", "[evaluators]") {
  const auto cp = tmp("errors.json");
  auto args = search_args();
  args.insert(args.begin(), "search");
  for (const char* a : {"--evaluator", "", "--evaluators", "2", "--eval-retries", "0", "--checkpoint", ""}) args.push_back(a);
  args[args.size() - 7] = evaluator("--fault error --fault-rate 0.3");
  args.back() = cp.string();
  const auto r = longrope_test::run_cli(args);
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK_THAT(r.err, Catch::Contains("evaluator error: injected fault; scored +inf"));
  const json out = json::parse(r.out);
  CHECK(out.at("evaluator_failures").at("error_fitness").get<int>() > 0);
  // Every generation ran: 12 + 4 x 12 candidates, less the few duplicates a
  // generation can breed (cached, not re-evaluated). Which candidates fail
  // depends on which child got them, so the path, and that count, vary.
  CHECK(out.at("evaluations").get<int>() <= 12 + 4 * 12);
  CHECK(out.at("evaluations").get<int>() >= 12 + 4 * 12 - 6);
  CHECK(r.err.find("generation 4/4") != std::string::npos);
  bool has_inf = false;
  const json state = read_json(cp);
  for (const auto& e : state.at("cache")) has_inf = has_inf || e[1] == "inf";
  CHECK(has_inf);
  fs::remove(cp);
}

TEST_CASE("the coordinator killed (SIGKILL) or stopped (SIGTERM) and resumed: the same result", "[evaluators]") {
  const json ref = comparable(in_process());
  for (int sig : {SIGKILL, SIGTERM}) {
    INFO("signal " << sig);
    const auto cp = tmp("resume.json"), out = tmp("resume.out"), err = tmp("resume.err");
    fs::remove(cp);
    std::string cmd = longrope_test::shell_quote(kCli) + " search";
    for (const auto& a : search_args()) cmd += " " + longrope_test::shell_quote(a);
    cmd += " --evaluator " + longrope_test::shell_quote(evaluator("--delay-ms 20")) + " --evaluators 2 --checkpoint " +
           cp.string();
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >" + out.string() + " 2>" + err.string()).c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    // Stop it mid-search: after the first generation's checkpoint, before the end.
    for (int i = 0; i < 400; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (fs::exists(cp) && read_json(cp).at("iteration").get<int>() >= 1) break;
    }
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    const std::string e = longrope_test::slurp(err);
    INFO(e);
    if (sig == SIGTERM) {
      REQUIRE(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 128 + SIGTERM);
      CHECK_THAT(e, Catch::Contains("interrupted by signal 15"));
      CHECK_THAT(e, Catch::Contains("best so far"));
    } else {
      CHECK(WIFSIGNALED(status));
    }
    const json partial = read_json(cp);
    CHECK(partial.at("status") == "running");  // stopped before the end
    const auto r = longrope_test::run_cli({"search", "--resume", cp.string(), "--evaluator", evaluator(), "--evaluators", "3"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(comparable(read_json(cp)) == ref);
    for (const auto& p : {cp, out, err}) fs::remove(p);
  }
}

TEST_CASE("ask / tell, one step per process, give the same search", "[evaluators]") {
  const json ref = comparable(in_process());
  const auto state = tmp("asktell.json"), req = tmp("asktell.req"), rep = tmp("asktell.rep");
  fs::remove(state);
  auto start = search_args();
  start.insert(start.begin(), {"ask", "--state", state.string(), "--out", req.string()});
  REQUIRE(longrope_test::run_cli(start).status == 0);
  for (int gen = 0; gen < 10; ++gen) {
    // One job per request (--index), as a scheduler's array job would run them.
    std::string replies;
    const int n = static_cast<int>(read_json(state).at("pending").size());
    if (n == 0) break;
    for (int k = 0; k < n; ++k) {
      const auto one = tmp("asktell_" + std::to_string(k) + ".rep");
      const std::string cmd = longrope_test::shell_quote(kCli) + " ask --state " + state.string() + " --index " +
                              std::to_string(k) + " 2>/dev/null | " + evaluator() + " > " + one.string();
      REQUIRE(shell(cmd) == 0);
      replies += (k ? "," : "") + one.string();
    }
    const auto r = longrope_test::run_cli({"tell", "--state", state.string(), "--replies", replies});
    INFO(r.err);
    REQUIRE(r.status == 0);
    for (int k = 0; k < n; ++k) fs::remove(tmp("asktell_" + std::to_string(k) + ".rep"));
  }
  CHECK(comparable(read_json(state)) == ref);
  const auto done = longrope_test::run_cli({"ask", "--state", state.string()});
  CHECK(done.status == 0);
  CHECK(done.out.empty());
  for (const auto& p : {state, req, rep}) fs::remove(p);
}

TEST_CASE("bad command lines and replies get one clear error line", "[evaluators]") {
  const auto state = tmp("bad.json"), rep = tmp("bad.rep");
  fs::remove(state);
  struct bad {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<bad> cases = {
      {longrope_test::plus({"search", "--evaluator", evaluator(), "--evaluators", "0"}, search_args()),
       "--evaluators: must be in [1, 4096]"},
      {longrope_test::plus({"search", "--evaluator", evaluator(), "--mpi"}, search_args()),
       "exactly one of --evaluator"},
      {longrope_test::plus({"search", "--evaluator", evaluator(), "--optimizer", "cmaes"}, search_args()),
       "--optimizer: expected evolution, random, gaussian or surrogate, got 'cmaes'"},
      {longrope_test::plus({"search"}, search_args()), "exactly one of --evaluator"},
      {longrope_test::plus({"search", "--evaluator", evaluator(), "--eval-timeout", "-1"}, search_args()),
       "--eval-timeout: must be >= 0"},
      {{"search", "--evaluator", evaluator(), "--config", config_file()},
       "missing required option --context"},
      {{"search", "--evaluator", evaluator(), "--resume", state.string(), "--seed", "3"},
       "come from the checkpoint"},
      {{"search", "--evaluator", evaluator(), "--resume", state.string()},
       "cannot read " + state.string() + ": No such file"},
      {longrope_test::plus({"search", "--evaluator", "exit 3"}, search_args()),
       "every evaluator slot failed to start"},
      {{"tell", "--state", state.string(), "--replies", rep.string()},
       "cannot read " + state.string() + ": No such file"},
  };
  for (const auto& c : cases) {
    const auto r = longrope_test::run_cli(c.args);
    INFO(c.expect << "\n" << r.err);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains(c.expect));
    CHECK_THAT(r.err, Catch::EndsWith("\n"));
  }
  // tell with a missing, a foreign, and a garbage reply.
  auto start = search_args();
  start.insert(start.begin(), {"ask", "--state", state.string()});
  REQUIRE(longrope_test::run_cli(start).status == 0);
  for (const auto& [text, expect] : std::vector<std::pair<std::string, std::string>>{
           {"{\"id\":0,\"fitness\":1}\n", "no reply for pending id 1"},
           {"{\"id\":999,\"fitness\":1}\n", "no reply for pending id 0"},
           {"not json\n", "bad.rep:1: [longrope.protocol] not valid JSON"},
           {"{\"id\":0,\"fitness\":1}\n{\"id\":0,\"fitness\":2}\n", "two different replies for id 0"}}) {
    std::ofstream(rep) << text;
    const auto r = longrope_test::run_cli({"tell", "--state", state.string(), "--replies", rep.string()});
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK_THAT(r.err, Catch::Contains(expect));
  }
  fs::remove(state);
  fs::remove(rep);
}

namespace {

// The in-process model search on a tiny model (2 pairs, 64-token windows: milliseconds).
std::vector<std::string> model_search_args() {
  static const auto model = longrope_test::write_tiny_model("longrope_test_eval_model", 8, 1.0f);
  static const auto tok = longrope_test::write_tokenizer("longrope_test_eval_tok", {"<unk>", "<s>", "</s>", " ", "a", "b", "c", "d"});
  static const std::string text = [] {
    const auto p = tmp("text.txt");
    std::string t;
    std::uint32_t x = 12345;
    for (int i = 0; i < 800; ++i) {
      x = x * 1103515245u + 12345u;
      t += static_cast<char>('a' + (x >> 16) % 4);
    }
    std::ofstream(p) << t;
    return p.string();
  }();
  return {"search", "--model", model, "--tokenizer", tok, "--text", text, "--context", "64", "--windows", "2",
          "--validation-windows", "1", "--population", "8", "--mutations", "4", "--crossovers", "4", "--topk", "4",
          "--iterations", "5", "--seed", "7", "--threads", "2"};
}

using longrope_test::run_cli_interrupted;

// A result or checkpoint without the clock (and the thread count, which never changes a result).
json timeless(json j) {
  j.erase("seconds");
  j.erase("elapsed_seconds");
  if (j.contains("options")) j["options"].erase("threads");
  return j;
}

}  // namespace

TEST_CASE("the in-process model search: SIGINT, SIGTERM, resume, resume: the uninterrupted result", "[evaluators]") {
  const auto args = model_search_args();
  const auto ref_cp = tmp("model_ref.json"), cp = tmp("model_cp.json");
  fs::remove(cp);
  const auto ref = longrope_test::run_cli(longrope_test::plus(args, {"--checkpoint", ref_cp.string()}));
  INFO(ref.err);
  REQUIRE(ref.status == 0);
  const json ref_out = json::parse(ref.out);
  REQUIRE(ref_out.at("stop_reason") == "iterations");
  REQUIRE(ref_out.at("iterations") == 5);
  // --checkpoint does not change the search.
  const auto plain = longrope_test::run_cli(args);
  REQUIRE(plain.status == 0);
  CHECK(timeless(json::parse(plain.out)) == timeless(ref_out));

  // SIGINT during generation 0: the state after it is saved, the best so far printed, exit 130.
  const auto a = run_cli_interrupted(SIGINT, longrope_test::plus(args, {"--checkpoint", cp.string()}));
  INFO(a.err);
  REQUIRE(a.status == 128 + SIGINT);
  CHECK_THAT(a.err, Catch::Contains("interrupted by signal 2"));
  CHECK_THAT(a.err, Catch::Contains("best so far"));
  CHECK(json::parse(a.out).at("stop_reason") == "interrupted");
  CHECK(read_json(cp).at("status") == "running");
  CHECK(read_json(cp).at("iteration") == 0);
  // SIGTERM while resuming (other --threads): one more generation, exit 143.
  const auto b =
      run_cli_interrupted(SIGTERM, longrope_test::plus(args, {"--resume", cp.string(), "--threads", "1"}));
  INFO(b.err);
  REQUIRE(b.status == 128 + SIGTERM);
  CHECK_THAT(b.err, Catch::Contains("resumed"));
  CHECK(read_json(cp).at("iteration") == 1);
  // Resumed to the end: the uninterrupted result, and the same final state.
  const auto c = longrope_test::run_cli(longrope_test::plus(args, {"--resume", cp.string()}));
  INFO(c.err);
  REQUIRE(c.status == 0);
  CHECK(timeless(json::parse(c.out)) == timeless(ref_out));
  CHECK(timeless(read_json(cp)) == timeless(read_json(ref_cp)));

  // A resume with another search, or by the external path, is refused in one line.
  for (const auto& [extra, expect] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--resume", cp.string(), "--seed", "8"}, "written for another search: options.seed"},
           {{"--resume", cp.string(), "--windows", "3"}, "written for another search: settings.windows"},
           {{"--resume", ref_cp.string(), "--no-n-hat"}, "written for another search: space"}}) {
    const auto r = longrope_test::run_cli(longrope_test::plus(args, extra));
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(longrope_test::one_error_line(r.err));
    CHECK_THAT(r.err, Catch::Contains(expect));
  }
  const auto ext = longrope_test::run_cli({"search", "--resume", cp.string(), "--evaluator", evaluator()});
  CHECK(ext.status == 1);
  CHECK_THAT(ext.err, Catch::Contains("written by `longrope search --model`"));
  const auto model_on_ext = longrope_test::run_cli(longrope_test::plus(args, {"--resume", config_file()}));
  CHECK(model_on_ext.status == 1);
  CHECK_THAT(model_on_ext.err, Catch::Contains("longrope_cli: missing"));
  fs::remove(cp);
  fs::remove(ref_cp);
}

#ifdef LONGROPE_MPIEXEC
TEST_CASE("mpirun -np 4 (one coordinator, three evaluator ranks) gives the same search", "[mpi]") {
  if (std::getenv("LONGROPE_TEST_MPI") == nullptr) {
    WARN("run as test_evaluators_mpi (LONGROPE_TEST_MPI=1)");
    return;
  }
  const json ref = comparable(in_process());
  const auto cp = tmp("mpi.json"), out = tmp("mpi.out");
  std::string cmd = std::string(LONGROPE_MPIEXEC) + " --allow-run-as-root --oversubscribe -np 1 " +
                    longrope_test::shell_quote(kCli) + " search --mpi --checkpoint " + cp.string();
  for (const auto& a : search_args()) cmd += " " + longrope_test::shell_quote(a);
  cmd += " : -np 3 " + longrope_test::shell_quote(kCli) + " evaluate --synthetic --mpi > " + out.string();
  INFO(cmd);
  REQUIRE(shell(cmd) == 0);
  CHECK(json::parse(longrope_test::slurp(out)).at("stop_reason") == "iterations");
  CHECK(comparable(read_json(cp)) == ref);
  fs::remove(cp);
  fs::remove(out);
}
#endif
