// `longrope search --evaluator CMD | --mpi` (the search coordinator for
// external evaluators, with checkpoint and resume) and `longrope ask` /
// `longrope tell` (one step at a time, the state in a file). The search is the
// library's evolutionary_search driven through ask/tell; the transports only
// score a batch, so the result depends on the seed and the scores alone.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include <longrope/io.hpp>
#include <longrope/evaluator_protocol.hpp>

#include "cli_args.hpp"
#include "commands.hpp"
#include "evaluator_pool.hpp"
#include "mpi_transport.hpp"
#include "search_output.hpp"
#include "search_state.hpp"

namespace longrope_cli {

namespace {
const char* const kExternalHelp =
    "usage: longrope search (--config C.json --context N | --resume FILE)\n"
    "                       (--evaluator \"CMD ...\" [--evaluators N] | --mpi)\n"
    "                       [--eval-timeout S] [--eval-retries R] [--checkpoint FILE] [--out FILE]\n"
    "                       [--population P] [--mutations N1] [--crossovers N2] [--topk K]\n"
    "                       [--iterations T] [--seed S] [--no-n-hat] [--lambda-max X]\n"
    "                       [--mutation-radius R] [--max-evaluations E] [--original-length L0]\n"
    "                       [--attention-factor X] [--optimizer O]\n"
    "\n"
    "The LongRoPE search of any model: the space comes from a transformers config.json\n"
    "(pairs, base, original length L0; its LongRoPE factors, if any, seed the search)\n"
    "and the target context N; every candidate is scored by external evaluators speaking\n"
    "the evaluator protocol (docs/evaluators.md): N child processes running CMD (with\n"
    "/bin/sh), or the other ranks of an MPI job with --mpi. Deterministic for a seed,\n"
    "whatever N and the order answers arrive in. A child that exits, answers garbage or\n"
    "exceeds --eval-timeout is restarted and its candidate re-queued; after R failures\n"
    "(default 2) the candidate scores +inf. --checkpoint FILE is written atomically at\n"
    "the start and after each generation; SIGINT/SIGTERM write it, print the best so\n"
    "far and exit 130/143; --resume FILE continues bit-identically (and keeps\n"
    "checkpointing to FILE unless --checkpoint names another). --optimizer O: evolution\n"
    "(the paper's, the default here), random, gaussian or surrogate (search/strategy.hpp;\n"
    "docs/search-quality.md measured surrogate at a third of the evaluations on stories260K).\n";

void write_text(const std::string& path, const std::string& text) {
  longrope::write_file_atomic(path, text + "\n");
}

std::string progress_line(const longrope::evolutionary_search& s) {
  const auto p = s.progress();
  char buf[256];
  std::snprintf(buf, sizeof buf, "search: generation %d/%d  best %.9g  %lld evaluations  %.1f s", p.iteration,
                p.iterations, p.best_score, static_cast<long long>(p.evaluations), p.elapsed_seconds);
  return buf;
}
}  // namespace

bool wants_external_search(const args& a) {
  for (const auto& s : a) {
    for (const char* o : {"--evaluator", "--mpi", "--config", "--resume"}) {
      if (s == o || s.rfind(std::string(o) + "=", 0) == 0) return true;
    }
  }
  return false;
}

int cmd_search_external(const args& a) {
  auto values = external_start_options();
  for (const char* o : {"--evaluator", "--evaluators", "--eval-timeout", "--eval-retries", "--checkpoint", "--resume",
                        "--out"}) {
    values.insert(o);
  }
  auto flags = external_start_flags();
  flags.insert("--mpi");
  const option_parser opt(a, values, flags);
  if (opt.help()) {
    std::fputs(kExternalHelp, stdout);
    return 0;
  }
  const bool mpi = opt.has("--mpi");
  if (mpi == opt.has("--evaluator")) throw std::invalid_argument("give exactly one of --evaluator \"CMD\" and --mpi");
  if (mpi && opt.has("--evaluators")) throw std::invalid_argument("--evaluators: with --mpi the ranks are the evaluators");
  const std::int64_t n = opt.int_or("--evaluators", 1);
  if (n < 1 || n > 4096) throw std::invalid_argument("--evaluators: must be in [1, 4096], got " + std::to_string(n));
  const double timeout = opt.double_or("--eval-timeout", 0.0);
  if (timeout < 0.0) throw std::invalid_argument("--eval-timeout: must be >= 0");
  const std::int64_t retries = opt.int_or("--eval-retries", 2);
  if (retries < 0 || retries > 1000) throw std::invalid_argument("--eval-retries: must be in [0, 1000]");

  external_target target;
  std::optional<longrope::evolutionary_search> search;
  std::optional<std::string> checkpoint = opt.get("--checkpoint");
  if (const auto resume = opt.get("--resume")) {
    if (gives_start_options(opt)) {
      throw std::invalid_argument("--resume: the target and search options come from the checkpoint; "
                                  "do not give --config, --context or search options");
    }
    search.emplace(load_state(*resume, target));
    if (!checkpoint) checkpoint = *resume;
    std::fprintf(stderr, "search: resumed %s at generation %d, %lld evaluations\n", resume->c_str(),
                 search->progress().iteration, static_cast<long long>(search->progress().evaluations));
  } else {
    search.emplace(start_external_search(opt, target));
  }
  std::unique_ptr<evaluator_transport> transport;
  if (mpi) {
    transport = make_mpi_transport(timeout);
  } else {
    pool_options po;
    po.command = opt.required("--evaluator");
    po.children = static_cast<int>(n);
    po.timeout_seconds = timeout;
    po.max_retries = static_cast<int>(retries);
    transport = std::make_unique<process_pool>(po);
  }
  install_interrupt_handlers();
  std::fprintf(stderr, "search: %d pairs, L0 %lld, context %lld (scale %.4g), %zu candidates in the first batch\n",
               search->space().pairs(), static_cast<long long>(target.target.original_length),
               static_cast<long long>(target.target.target_length()), target.target.scale, search->ask().size());
  if (checkpoint) save_state(*checkpoint, *search, target);
  int signal = 0;
  while (!search->done()) {
    const auto requests = pending_requests(*search, target);
    std::vector<double> scores;
    try {
      scores = transport->evaluate(requests);
    } catch (const interrupted& e) {
      signal = e.signal;
      break;
    }
    search->tell(scores);
    if (checkpoint) save_state(*checkpoint, *search, target);
    std::fprintf(stderr, "%s\n", progress_line(*search).c_str());
    if (g_interrupt_signal != 0) {
      signal = g_interrupt_signal;
      break;
    }
  }
  const auto& st = transport->stats();
  nlohmann::json out = result_json(*search, target);
  out["evaluator_failures"] = {{"restarts", st.restarts}, {"retries", st.retries}, {"error_fitness", st.error_fitness}};
  transport.reset();  // shut the evaluators down before printing
  if (signal != 0 && checkpoint) save_state(*checkpoint, *search, target);
  return finish_search(out, signal, "search", static_cast<long long>(search->progress().evaluations),
                       out["fitness"].is_null() ? "(none yet)" : out["fitness"].dump(), checkpoint,
                       "--resume ", opt.get("--out"));
}

int cmd_ask(const args& a) {
  auto values = external_start_options();
  values.insert("--state");
  values.insert("--index");
  values.insert("--out");
  const option_parser opt(a, values, external_start_flags());
  if (opt.help()) {
    std::fputs("usage: longrope ask --state FILE [--index K] [--out FILE]\n"
               "       longrope ask --state FILE --config C.json --context N [search options]   (starts)\n"
               "\n"
               "Writes the pending candidates as evaluator-protocol requests, one JSON line each\n"
               "(stdout or --out), for evaluators run as separate jobs; --index K writes only the\n"
               "K-th (e.g. $SLURM_ARRAY_TASK_ID). The first call creates FILE from --config,\n"
               "--context and the search options of `longrope search`. Repeating ask before tell\n"
               "gives the same requests. Prints nothing once the search is done.\n",
               stdout);
    return 0;
  }
  const std::string state = opt.required("--state");
  external_target target;
  std::optional<longrope::evolutionary_search> search;
  if (std::ifstream(state).good()) {
    if (gives_start_options(opt)) throw std::invalid_argument(state + " exists: search options come from it");
    search.emplace(load_state(state, target));
  } else {
    search.emplace(start_external_search(opt, target));
    save_state(state, *search, target);
  }
  const auto reqs = pending_requests(*search, target);
  std::string text;
  if (const auto k = opt.get_int("--index")) {
    if (*k < 0 || static_cast<std::size_t>(*k) >= reqs.size()) {
      throw std::invalid_argument("--index: " + std::to_string(*k) + " outside [0, " + std::to_string(reqs.size()) + ")");
    }
    text = longrope::encode_request(reqs[static_cast<std::size_t>(*k)]);
  } else {
    for (const auto& r : reqs) text += longrope::encode_request(r);
  }
  if (const auto p = opt.get("--out")) {
    longrope::write_file_atomic(*p, text);
  } else {
    std::fputs(text.c_str(), stdout);
  }
  std::fprintf(stderr, "ask: %zu pending candidate(s)%s\n", reqs.size(), search->done() ? " (search done)" : "");
  return 0;
}

int cmd_tell(const args& a) {
  const option_parser opt(a, {"--state", "--replies", "--out"});
  if (opt.help()) {
    std::fputs("usage: longrope tell --state FILE --replies FILE[,FILE...] [--out FILE]\n"
               "\n"
               "Reads evaluator-protocol replies ({\"id\", \"fitness\"} or {\"id\", \"error\"}, one JSON line\n"
               "each; hello lines are skipped) for every pending candidate of FILE, advances the\n"
               "search one generation and saves FILE. An {id, error} reply scores +inf. Prints\n"
               "the progress line, and the result JSON once the search is done.\n",
               stdout);
    return 0;
  }
  const std::string state = opt.required("--state");
  external_target target;
  auto search = load_state(state, target);
  if (search.done()) throw std::invalid_argument(state + ": the search is done");
  const auto reqs = pending_requests(search, target);
  std::map<std::uint64_t, double> got;
  std::string files = opt.required("--replies");
  std::size_t start = 0;
  for (;;) {
    const auto comma = files.find(',', start);
    const std::string path = files.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    std::istringstream in(longrope::read_file(path));  // clear errors for missing files and directories
    std::string line;
    std::size_t lineno = 0;
    while (longrope::read_protocol_line(in, line)) {
      ++lineno;
      if (line.empty()) continue;
      {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        const auto t = j.is_object() ? j.find("type") : j.end();
        if (j.is_object() && t != j.end() && *t == "hello") continue;  // an evaluator's handshake
      }
      longrope::eval_reply r;
      try {
        r = longrope::decode_reply(line);
      } catch (const longrope::error& e) {
        throw longrope::error("longrope.protocol", path + ":" + std::to_string(lineno) + ": " + e.what());
      }
      const double v = r.fitness ? *r.fitness : std::numeric_limits<double>::infinity();
      const auto [it, fresh] = got.emplace(r.id, v);
      if (!fresh && !(it->second == v)) {
        throw longrope::error("longrope.protocol", path + ":" + std::to_string(lineno) + ": two different replies for id " +
                                                       std::to_string(r.id));
      }
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::vector<double> scores;
  for (const auto& r : reqs) {
    const auto it = got.find(r.id);
    if (it == got.end()) throw longrope::error("longrope.protocol", "no reply for pending id " + std::to_string(r.id));
    scores.push_back(it->second);
    got.erase(it);
  }
  if (!got.empty()) {
    throw longrope::error("longrope.protocol", "reply for id " + std::to_string(got.begin()->first) +
                                                   ", which is not pending");
  }
  search.tell(scores);
  save_state(state, search, target);
  std::fprintf(stderr, "%s\n", progress_line(search).c_str());
  if (search.done()) {
    const std::string text = result_json(search, target).dump(2);
    std::printf("%s\n", text.c_str());
    if (const auto p = opt.get("--out")) write_text(*p, text);
  }
  return 0;
}

}  // namespace longrope_cli
