// A LongRoPE search whose evaluations run anywhere else (other processes,
// other machines, a job queue): this program is only the coordinator, one
// command per step, with the whole search state in a JSON checkpoint file.
//
//   search_ask_tell start  STATE --head-dim 64 --l0 4096 --scale 8 [--seed N] [--iterations T]
//   search_ask_tell ask    STATE BATCH      write the candidates to score: [{"factors": [...], "n_hat": k}, ...]
//   search_ask_tell tell   STATE SCORES     read one score per candidate ([...], same order), advance
//   search_ask_tell result STATE            print the best factors as a rope_scaling block
//   search_ask_tell demo   STATE            run the loop above in-process with a synthetic fitness
//
// Each command loads STATE, acts, and saves it back (atomically); "ask" may be
// repeated (same candidates) until "tell". A worker reads BATCH, computes e.g.
// perplexities with the factors, and writes SCORES. The result is identical to
// running the search in one process with the same seed.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/io.hpp>
#include <longrope/longrope.hpp>
#include <longrope/search_json.hpp>

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: search_ask_tell start STATE --head-dim D --l0 L0 --scale S [--seed N] [--iterations T]\n"
               "       search_ask_tell ask STATE BATCH | tell STATE SCORES | result STATE | demo STATE\n");
  return 2;
}

nlohmann::json read_json(const std::string& path) {
  const std::string text = longrope::read_file(path);  // "X is a directory" / "cannot read X: <errno text>"
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    LONGROPE_THROW("longrope.json", path + ": " + e.what());
  }
}

void write_json(const std::string& path, const nlohmann::json& j) {
  longrope::write_file_atomic(path, j.dump(1) + "\n");  // the state survives a crash mid-write
}

// The worker's side in `demo`: a synthetic perplexity (lower is better).
double synthetic_perplexity(const std::vector<double>& f, std::int64_t n_hat) {
  double loss = 0.0;
  for (std::size_t i = 0; i < f.size(); ++i) {
    const double want = 1.0 + 7.0 * static_cast<double>(i) / static_cast<double>(f.size() - 1);
    loss += std::pow(std::log(f[i] / want), 2.0);
  }
  return std::exp(1.0 + loss) + 1e-3 * std::fabs(static_cast<double>(n_hat) - 8.0);
}

int cmd_start(const std::string& state, int argc, char** argv) {
  longrope::search_target t;
  longrope::search_options o;
  o.population = 32;
  o.mutations = 8;
  o.crossovers = 8;
  o.top_k = 16;
  o.iterations = 10;
  for (int i = 0; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--head-dim") {
      t.rope.head_dim = std::atoi(v);
    } else if (k == "--l0") {
      t.original_length = std::atoll(v);
    } else if (k == "--scale") {
      t.scale = std::atof(v);
    } else if (k == "--seed") {
      o.seed = std::strtoull(v, nullptr, 10);
    } else if (k == "--iterations") {
      o.iterations = std::atoi(v);
    } else {
      return usage();
    }
  }
  if (argc % 2 != 0) return usage();
  const longrope::search_space space(longrope::default_space_config(t));
  longrope::evolutionary_search s(space, o, t);
  longrope::save_checkpoint(s, state);
  // The model's geometry and lengths are not part of the search state: keep
  // them beside it for the rope_scaling export.
  write_json(state + ".target.json", {{"head_dim", t.rope.head_dim}, {"l0", t.original_length}, {"scale", t.scale}});
  std::printf("started: %d pairs, grid [%g, %g], %zu candidates to score\n", space.pairs(), space.value(0),
              space.value(space.max_index()), s.ask().size());
  return 0;
}

int cmd_ask(const std::string& state, const std::string& batch) {
  const auto s = longrope::load_checkpoint(state);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : s.ask_points()) out.push_back({{"factors", p.factors}, {"n_hat", p.n_hat}});
  write_json(batch, out);
  std::printf("%zu candidates written to %s%s\n", out.size(), batch.c_str(), s.done() ? " (search done)" : "");
  return 0;
}

int cmd_tell(const std::string& state, const std::string& scores_path) {
  auto s = longrope::load_checkpoint(state);
  const auto j = read_json(scores_path);
  if (!j.is_array()) LONGROPE_THROW("longrope.json", scores_path + ": expected an array of scores");
  std::vector<double> scores;
  for (const auto& v : j) {
    if (!v.is_number()) LONGROPE_THROW("longrope.json", scores_path + ": every score must be a number");
    scores.push_back(v.get<double>());
  }
  s.tell(scores);
  longrope::save_checkpoint(s, state);
  std::printf("%s\n", longrope::format_progress(s.progress()).c_str());
  return 0;
}

int cmd_result(const std::string& state) {
  const auto s = longrope::load_checkpoint(state);
  const auto r = s.result();
  const auto target = read_json(state + ".target.json");
  longrope::rope_config geometry;
  geometry.head_dim = target.at("head_dim").get<int>();
  longrope::longrope_factors f;
  f.long_factor = r.best.factors;
  f.short_factor.assign(r.best.factors.size(), 1.0);
  f.original_max_position = target.at("l0").get<std::int64_t>();
  f.max_position = std::llround(target.at("scale").get<double>() * static_cast<double>(f.original_max_position));
  f.n_hat = r.best.n_hat;
  std::printf("best %.6g after %lld evaluations (%s)\n%s\n", r.best_score, static_cast<long long>(r.evaluations),
              longrope::to_string(r.reason), longrope::to_rope_scaling_json(f, geometry).dump().c_str());
  return 0;
}

// The whole protocol in one process: start, then ask / (worker) / tell until
// done, each step through the files, then compare with an in-process run.
int cmd_demo(const std::string& state) {
  char a0[] = "--head-dim", a1[] = "32", a2[] = "--l0", a3[] = "4096", a4[] = "--scale", a5[] = "8";
  char* args[] = {a0, a1, a2, a3, a4, a5};
  if (cmd_start(state, 6, args) != 0) return 1;
  const std::string batch = state + ".batch.json", scores = state + ".scores.json";
  for (;;) {
    if (longrope::load_checkpoint(state).done()) break;
    cmd_ask(state, batch);
    // The worker: reads the batch, writes the scores.
    std::vector<double> sc;
    for (const auto& p : read_json(batch)) {
      sc.push_back(synthetic_perplexity(p["factors"].get<std::vector<double>>(), p["n_hat"].get<std::int64_t>()));
    }
    write_json(scores, sc);
    cmd_tell(state, scores);
  }
  std::remove(batch.c_str());
  std::remove(scores.c_str());
  cmd_result(state);
  std::remove((state + ".target.json").c_str());

  // Same seed in one process: the same result, bit for bit.
  const auto via_files = longrope::load_checkpoint(state).result();
  longrope::search_target t;
  t.rope.head_dim = 32;
  t.original_length = 4096;
  t.scale = 8;
  longrope::evolutionary_search direct(longrope::search_space(longrope::default_space_config(t)),
                                       longrope::load_checkpoint(state).options(), t);
  const auto r = direct.run_parallel(
      [](const longrope::search_point& p) { return synthetic_perplexity(p.factors, p.n_hat); });
  const bool same = r.best_candidate == via_files.best_candidate && r.best_score == via_files.best_score &&
                    r.evaluations == via_files.evaluations;
  std::remove(state.c_str());
  std::printf("in-process run: %s\n", same ? "identical" : "DIFFERENT");
  return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string cmd = argv[1], state = argv[2];
  try {
    if (cmd == "start") return cmd_start(state, argc - 3, argv + 3);
    if (cmd == "ask" && argc == 4) return cmd_ask(state, argv[3]);
    if (cmd == "tell" && argc == 4) return cmd_tell(state, argv[3]);
    if (cmd == "result" && argc == 3) return cmd_result(state);
    if (cmd == "demo" && argc == 3) return cmd_demo(state);
    return usage();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "search_ask_tell %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
