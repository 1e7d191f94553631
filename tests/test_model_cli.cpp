// The model subcommands of the `longrope` binary (LONGROPE_CLI_PATH): bad
// command lines and files exit 1 with one line on stderr naming the problem
// (always runs); with stories260K from ../shared: `generate` reproduces the
// published text, `eval` matches the float64 reference, `search` and `passkey`
// print the documented JSON. POSIX only (std::system with redirections).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "run_cli.hpp"
#include "shared_data.hpp"
#include "tiny_model.hpp"

using nlohmann::json;

namespace {

using result = longrope_test::cli_result;
using longrope_test::slurp;

result run(const std::vector<std::string>& args) { return longrope_test::run_cli(args); }

using longrope_test::one_line;

using files = longrope_test::stories_files;
files shared() { return longrope_test::find_stories(); }

using longrope_test::write_tiny_model;
using longrope_test::write_tokenizer;

}  // namespace

TEST_CASE("model commands reject bad input with one line on stderr", "[model][cli]") {
  const auto tmp = std::filesystem::temp_directory_path() / "longrope_test_model_cli_bad.bin";
  {
    std::ofstream(tmp, std::ios::binary) << "not a checkpoint at all, far too short";
  }
  struct bad {
    std::vector<std::string> args;
    std::string expect;
  };
  const std::vector<bad> cases = {
      {{"eval", "--tokenizer", "t", "--text", "x", "--context", "64"}, "missing required option --model"},
      {{"eval", "--model", tmp.string(), "--tokenizer", "t", "--text", "x", "--context", "1"}, "--context: must be >= 2"},
      {{"eval", "--model", tmp.string(), "--tokenizer", "t", "--text", "x", "--context", "64"}, "corrupt header"},
      {{"eval", "--model", "/nonexistent.bin", "--tokenizer", "t", "--text", "x", "--context", "64"},
       "cannot read /nonexistent.bin: No such file or directory"},
      {{"eval", "--model", "m", "--tokenizer", "t", "--text", "x", "--context", "64", "--method", "rope"},
       "expected none, pi, ntk, yarn or longrope"},
      {{"eval", "--model", "m", "--tokenizer", "t", "--text", "x", "--context", "64", "--method", "longrope"},
       "--method longrope needs --factors"},
      {{"eval", "--model", "m", "--tokenizer", "t", "--text", "x", "--context", "64", "--factors", "1,x"},
       "--factors: expected a finite number"},
      {{"eval", "--model", "m", "--tokenizer", "t", "--context", "64", "--bogus"}, "unknown option '--bogus'"},
      {{"generate", "--model", "m", "--tokenizer", "t", "--temperature", "-1"}, "--temperature: must be >= 0"},
      {{"search", "--model", "m", "--tokenizer", "t", "--text", "x", "--context", "64", "--population", "0"},
       "--population: must be in [1, 1000000]"},
      {{"passkey", "--model", "m", "--tokenizer", "t", "--context", "64", "--trials", "0"}, "--trials: must be in"},
      // Issue 9, class 6: a directory as a file argument used to try a 2^63-byte allocation.
      {{"eval", "--model", "/tmp", "--tokenizer", "t", "--text", "x", "--context", "64"}, "[longrope.io] /tmp is a directory"},
      {{"generate", "--model", "/", "--tokenizer", "t"}, "[longrope.io] / is a directory"},
      // Class 5: threads beyond any use are refused before anything is allocated.
      {{"search", "--model", "m", "--tokenizer", "t", "--text", "x", "--context", "64", "--threads", "1000000"},
       "--threads: must be in [0, 1024], got 1000000"},
      {{"passkey", "--model", "m", "--tokenizer", "t", "--context", "1"}, "--context: must be >= 2"},
  };
  for (const auto& c : cases) {
    const result r = run(c.args);
    INFO(c.args.front() << " -> " << r.err);
    CHECK(r.status == 1);
    CHECK(one_line(r.err));
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(r.out.empty());
  }
  std::filesystem::remove(tmp);
  for (const char* cmd : {"eval", "generate", "search", "passkey"}) {
    const result h = run({cmd, "--help"});
    CHECK(h.status == 0);
    CHECK(h.out.find("usage: longrope") == 0);
  }
}

TEST_CASE("issue 9: tiny hostile models give one error line, never a crash or NaN with exit 0", "[model][cli][hardening]") {
  // Class 2: a one-piece vocabulary; BOS (id 1) used to be emitted anyway and read past the pieces (segfault).
  const auto one = write_tiny_model("longrope_test_i9_vocab1", 1, 1.0f);
  const auto tok1 = write_tokenizer("longrope_test_i9_tok1", {" "});
  {
    const result r = run({"generate", "--model", one, "--tokenizer", tok1, "--prompt", " "});
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(one_line(r.err));
    CHECK(r.err.find("BOS (id 1) is outside the vocabulary of 1 piece(s)") != std::string::npos);
  }
  // Finite but huge weights: the logits overflow. Refused instead of "perplexity": null with exit 0.
  const auto huge = write_tiny_model("longrope_test_i9_huge", 8, 1e38f);
  const auto tok8 = write_tokenizer("longrope_test_i9_tok8", {"<unk>", "<s>", "</s>", " ", "a", "b", "c", "d"});
  const auto text = (std::filesystem::temp_directory_path() / ("longrope_test_i9_text_" + std::to_string(::getpid()))).string();
  std::ofstream(text) << "abcdabcdabcdabcdabcdabcdabcd";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"eval", "--model", huge, "--tokenizer", tok8, "--text", text, "--context", "8"},
        std::vector<std::string>{"generate", "--model", huge, "--tokenizer", tok8, "--prompt", "ab", "--steps", "8"}}) {
    const result r = run(args);
    INFO(args.front() << ": " << r.err << r.out);
    CHECK(r.status == 1);
    CHECK(longrope_test::one_error_line(r.err));  // eval reports progress on stderr first
    CHECK(r.err.find("not finite") != std::string::npos);
  }
  {
    // The same text on sane weights works (the refusal above is about the weights).
    const auto sane = write_tiny_model("longrope_test_i9_sane", 8, 1.0f);
    const result r = run({"eval", "--model", sane, "--tokenizer", tok8, "--text", text, "--context", "8"});
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(json::parse(r.out).at("perplexity").is_number());
    // Class 1: window offsets whose products overflow int64 (used to read past the token buffer).
    for (const char* first : {"9223372036854775807", "1000000000000000000"}) {
      for (const char* cmd : {"eval", "search"}) {
        // context 64: (10^18 + 1) * 63 needed tokens overflow (the error message itself used to be UB).
        const result o = run({cmd, "--model", sane, "--tokenizer", tok8, "--text", text, "--context", "64", "--windows", "1",
                              "--first-window", first});
        INFO(cmd << " --first-window " << first << ": " << o.err);
        CHECK(o.status == 1);
        CHECK(one_line(o.err));
        CHECK(o.err.find("overflows 64-bit integers") != std::string::npos);
      }
    }
    // Class 6: a directory as the tokenizer or the text.
    const result d1 = run({"eval", "--model", sane, "--tokenizer", "/tmp", "--text", text, "--context", "8"});
    CHECK(d1.err.find("[longrope.io] /tmp is a directory") != std::string::npos);
    const result d2 = run({"eval", "--model", sane, "--tokenizer", tok8, "--text", "/tmp", "--context", "8"});
    CHECK(d2.err.find("[longrope.io] /tmp is a directory") != std::string::npos);
    // Class 5: a prompt of 10^9 tokens is refused with its size, before it is built.
    const result pk = run({"passkey", "--model", sane, "--tokenizer", tok8, "--context", "1000000000"});
    INFO(pk.err);
    CHECK(pk.status == 1);
    CHECK(pk.err.find("--context: 1000000000 positions x 1 thread(s) need") != std::string::npos);
    CHECK(pk.err.find("of memory") != std::string::npos);
    std::filesystem::remove(sane);
  }
  for (const auto& p : {one, tok1, huge, tok8, text}) std::filesystem::remove(p);
}

TEST_CASE("model commands on stories260K", "[model][cli][stories]") {
  const files f = shared();
  if (!f.ok) {
    WARN("skipped: stories260K or valid_head.txt not found (../shared or $LONGROPE_SHARED_DIR)");
    return;
  }
  {
    // JSON on stdout, the text streamed on stderr as progress.
    const result r = run({"generate", "--model", f.model, "--tokenizer", f.tok, "--steps", "60"});
    REQUIRE(r.status == 0);
    const std::string lily = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
    const json j = json::parse(r.out);
    CHECK(j.at("text").get<std::string>().rfind(lily, 0) == 0);
    CHECK(j.at("continuation").get<std::string>() == j.at("text").get<std::string>());  // empty prompt
    CHECK(j.at("tokens").size() == 60);
    CHECK(j.at("tokens").at(0) == 1);  // BOS
    CHECK(j.at("prompt_tokens") == 1);
    CHECK(j.at("generated_tokens") == 59);
    CHECK(j.at("method") == "none");
    CHECK(r.err.rfind(lily, 0) == 0);
  }
  {
    // The float64 reference's first case: context 512, 2 windows, 4.1397526152295585.
    const result r = run({"eval", "--model", f.model, "--tokenizer", f.tok, "--text", f.text, "--context", "512",
                          "--windows", "2", "--threads", "2"});
    REQUIRE(r.status == 0);
    const json j = json::parse(r.out);
    CHECK(std::abs(j.at("perplexity").get<double>() / 4.1397526152295585 - 1.0) < 1e-4);
    CHECK(j.at("tokens_scored") == 1022);
    CHECK(j.at("windows") == 2);
    CHECK(j.at("method") == "none");
    CHECK(j.at("factors") == json::array({1.0, 1.0, 1.0, 1.0}));
    CHECK(j.at("n_hat") == 0);
    CHECK(j.at("attention_factor") == 1.0);
  }
  {
    // --tokens: the same stream as ids. Too few tokens for one window is an error.
    const auto tmp = std::filesystem::temp_directory_path() / "longrope_test_model_cli_tokens.txt";
    std::ofstream(tmp) << "403 407 261\n378";
    const result r = run({"eval", "--model", f.model, "--tokenizer", f.tok, "--tokens", tmp.string(), "--context", "64"});
    CHECK(r.status == 1);
    CHECK(r.err.find("text too short") != std::string::npos);
    std::ofstream(tmp) << "403 407 9999";
    const result r2 = run({"eval", "--model", f.model, "--tokenizer", f.tok, "--tokens", tmp.string(), "--context", "4"});
    CHECK(r2.status == 1);
    CHECK(r2.err.find("9999 outside [0, 512)") != std::string::npos);
    std::filesystem::remove(tmp);
  }
  {
    const auto out = std::filesystem::temp_directory_path() / "longrope_test_model_cli_search.json";
    const result r = run({"search", "--model", f.model, "--tokenizer", f.tok, "--text", f.text, "--context", "1024",
                          "--windows", "1", "--population", "4", "--mutations", "2", "--crossovers", "2", "--topk",
                          "2", "--iterations", "1", "--threads", "2", "--out", out.string()});
    REQUIRE(r.status == 0);
    const json j = json::parse(r.out);
    CHECK(json::parse(slurp(out)) == j);
    for (const char* k : {"rescale_factors", "n_hat", "attention_factor", "perplexity", "baselines", "evaluations",
                          "seconds", "rope_scaling"}) {
      CHECK(j.contains(k));
    }
    CHECK(j.at("rescale_factors").size() == 4);
    CHECK(j.at("perplexity").get<double>() <= j.at("baselines").at("pi").get<double>());
    CHECK(j.at("rope_scaling").at("rope_type") == "longrope");
    CHECK(r.err.find("search: generation 1/1") != std::string::npos);
    std::filesystem::remove(out);
  }
  {
    const result r = run({"passkey", "--model", f.model, "--tokenizer", f.tok, "--context", "256", "--trials", "2"});
    REQUIRE(r.status == 0);
    const json j = json::parse(r.out);
    CHECK(j.at("trials") == 2);
    CHECK(j.at("results").size() == 2);
    CHECK(j.at("accuracy").get<double>() >= 0.0);
  }
}
