// `longrope evaluate`: a C++ evaluator speaking the evaluator protocol
// (docs/evaluators.md) on stdin/stdout, or over MPI with --mpi. Scores either
// the toy llama2.c model (perplexity with the double forward on the paper's
// windows protocol) or the synthetic bowl of synthetic_fitness.hpp; the fault
// options make it misbehave on purpose, for the coordinator's tests.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include <longrope/evaluator_protocol.hpp>
#include <llama2c/perplexity.hpp>
#include <llama2c/scaling.hpp>
#include <llama2c/transformer.hpp>

#include "cli_args.hpp"
#include "cmd_model.hpp"
#include "commands.hpp"
#include "mpi_transport.hpp"
#include "synthetic_fitness.hpp"

namespace longrope_cli {

namespace {
const char* const kEvaluateHelp =
    "usage: longrope evaluate (--synthetic | --model M --tokenizer T (--text F | --tokens F)\n"
    "                          [--windows W] [--first-window K] [--threads J])\n"
    "                         [--mpi] [--fault kill|exit|hang|garbage|error --fault-rate P]\n"
    "\n"
    "An evaluator for `longrope search --evaluator`: reads protocol requests (one JSON\n"
    "line each, docs/evaluators.md) on stdin, answers {id, fitness} on stdout; with --mpi\n"
    "the same messages over MPI (rank 0 coordinates). The fitness is the perplexity of\n"
    "the llama2.c model with the candidate's LongRoPE factors, n_hat and attention factor\n"
    "on W windows of max_position_embeddings tokens (double-precision forward), or with\n"
    "--synthetic a deterministic bowl that costs nothing (for tests and benchmarks).\n"
    "\n"
    "  --windows W        windows scored per candidate (default 2)\n"
    "  --first-window K   skip the first K windows of the text (default 0)\n"
    "  --threads J        forward threads (default 1)\n"
    "  --fault F          misbehave on a fraction --fault-rate of requests: kill (SIGKILL\n"
    "                     itself), exit, hang (sleep), garbage (a non-JSON line), error\n"
    "                     (an {id, error} answer); for testing coordinators\n"
    "  --delay-ms D       sleep D ms before each answer (a slow evaluator, for tests)\n";

struct injected_garbage {};

struct fault_injector {
  std::string kind;
  double rate = 0.0;
  std::mt19937_64 rng{static_cast<std::uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull ^
                      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
  // Returns true when the answer must be replaced by garbage.
  bool strike() {
    if (kind.empty() || std::uniform_real_distribution<double>(0.0, 1.0)(rng) >= rate) return false;
    if (kind == "kill") std::raise(SIGKILL);
    if (kind == "exit") std::_Exit(3);
    if (kind == "hang") std::this_thread::sleep_for(std::chrono::hours(1));
    if (kind == "error") throw std::runtime_error("injected fault");
    return kind == "garbage";
  }
};
}  // namespace

int cmd_evaluate(const args& a) {
  const option_parser opt(a, model_options({"--text", "--tokens", "--windows", "--first-window", "--threads", "--fault",
                                            "--fault-rate", "--name", "--delay-ms"}),
                          {"--synthetic", "--mpi"});
  if (opt.help()) {
    std::fputs(kEvaluateHelp, stdout);
    return 0;
  }
  fault_injector faults;
  if (const auto f = opt.get("--fault")) {
    if (*f != "kill" && *f != "exit" && *f != "hang" && *f != "garbage" && *f != "error") {
      throw std::invalid_argument("--fault: expected kill, exit, hang, garbage or error, got '" + *f + "'");
    }
    faults.kind = *f;
    faults.rate = opt.double_or("--fault-rate", 0.1);
    if (!(faults.rate >= 0.0 && faults.rate <= 1.0)) throw std::invalid_argument("--fault-rate: must be in [0, 1]");
  }
  std::function<double(const longrope::eval_request&)> fitness;
  std::unique_ptr<loaded_model> model_files;
  std::unique_ptr<llama2c::transformer<double>> model;
  std::vector<int> stream;
  std::map<std::int64_t, std::vector<std::vector<int>>> windows_by_length;
  const bool synthetic = opt.has("--synthetic");
  if (synthetic == opt.has("--model")) throw std::invalid_argument("give exactly one of --synthetic and --model");
  if (synthetic) {
    fitness = [](const longrope::eval_request& r) {
      return synthetic_fitness(r.factors, r.n_hat, r.original_length, r.target_length);
    };
  } else {
    model_files = std::make_unique<loaded_model>(load_model(opt));
    stream = read_stream(opt, *model_files);
    model = std::make_unique<llama2c::transformer<double>>(model_files->ck);
    const std::int64_t windows = opt.int_or("--windows", 2);
    const std::int64_t first = opt.int_or("--first-window", 0);
    const std::int64_t threads = opt.int_or("--threads", 1);
    if (windows < 1 || first < 0 || threads < 0 || threads > 1024) {
      throw std::invalid_argument("--windows >= 1, --first-window >= 0, --threads in [0, 1024]");
    }
    fitness = [&, windows, first, threads](const longrope::eval_request& r) {
      const auto& mc = model->config();
      if (r.factors.size() != static_cast<std::size_t>(mc.head_size() / 2)) {
        throw std::invalid_argument("expected " + std::to_string(mc.head_size() / 2) + " factors, got " +
                                    std::to_string(r.factors.size()));
      }
      if (r.original_length != mc.seq_len) {
        throw std::invalid_argument("original_max_position_embeddings " + std::to_string(r.original_length) +
                                    " differs from the model's " + std::to_string(mc.seq_len));
      }
      auto it = windows_by_length.find(r.target_length);
      if (it == windows_by_length.end()) {
        it = windows_by_length.emplace(r.target_length, llama2c::make_windows(stream, r.target_length, windows, first))
                 .first;
      }
      llama2c::scaling s;
      s.method = llama2c::scaling_method::longrope;
      s.factors = r.factors;
      s.n_hat = r.n_hat;
      s.attention_factor = r.attention_factor;
      const auto f = llama2c::make_frequencies(mc, s, r.target_length);
      return llama2c::evaluate_perplexity(*model, it->second, f, static_cast<int>(threads)).perplexity();
    };
  }
  const std::int64_t delay_ms = opt.int_or("--delay-ms", 0);
  if (delay_ms < 0 || delay_ms > 3600000) throw std::invalid_argument("--delay-ms: must be in [0, 3600000]");
  auto guarded = [&](const longrope::eval_request& r) {
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    if (faults.strike()) throw injected_garbage{};
    return fitness(r);
  };
  const std::string name = opt.get_or("--name", synthetic ? "longrope evaluate --synthetic" : "longrope evaluate");
  if (opt.has("--mpi")) return mpi_serve(guarded, name);
  // stdin/stdout: serve_evaluator, except that an injected "garbage" fault
  // writes a broken line instead of the answer.
  std::ios::sync_with_stdio(false);
  std::string line;
  while (longrope::read_protocol_line(std::cin, line)) {
    if (line.empty()) continue;
    longrope::eval_message m;
    try {
      m = longrope::decode_message(line);
    } catch (const longrope::error& e) {
      std::cout << longrope::encode_reply({0, std::nullopt, e.what()}) << std::flush;
      continue;
    }
    if (m.type == longrope::eval_message_type::shutdown) break;
    if (m.type == longrope::eval_message_type::hello) {
      std::cout << longrope::encode_hello_reply(name) << std::flush;
      continue;
    }
    longrope::eval_reply rep;
    rep.id = m.request.id;
    try {
      rep.fitness = guarded(m.request);
    } catch (const injected_garbage&) {
      std::cout << "this is not {json\n" << std::flush;
      continue;
    } catch (const std::exception& e) {
      rep.error = e.what();
    }
    if (rep.fitness && !std::isfinite(*rep.fitness)) {
      rep.fitness.reset();
      rep.error = "fitness is not finite";
    }
    std::cout << longrope::encode_reply(rep);
    // Requests the coordinator pipelined are already buffered: one write for their replies.
    if (std::cin.rdbuf()->in_avail() <= 0) std::cout.flush();
  }
  std::cout.flush();
  return 0;
}

}  // namespace longrope_cli
