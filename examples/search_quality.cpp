// Quality against cost of the factor search on stories260K (docs/search-quality.md).
//
// For each target (4x = 2048 and 8x = 4096 tokens), each optimizer and each
// seed, a validated search (llama2c/validated_search.hpp) runs on the first
// half of the text (train and validation windows interleaved there); after
// every generation the candidate it would return is scored on held-out
// windows from the second half, which the search never sees. The curves are
// the held-out perplexity of that candidate over the best baseline's (none,
// PI, NTK, YaRN, on the same held-out windows) against the evaluations spent
// (train + validation). --quick: a plumbing check (2x, tiny budgets).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/io.hpp>
#include <llama2c/checkpoint.hpp>
#include <llama2c/tokenizer.hpp>
#include <llama2c/transformer.hpp>
#include <llama2c/validated_search.hpp>

#include "svg_plot.hpp"

namespace {

std::string read_file(const std::string& path) {
  return longrope::read_file(path);
}

struct optimizer {
  std::string name, color;
  longrope::search_options opt;
};

/// The optimizers compared. budget: search evaluations (validation comes on top).
/// quick: the surrogate gets 30 (its model needs 21 evaluated candidates, so
/// its third generation is the first the model draws).
std::vector<optimizer> optimizers(std::int64_t budget, bool quick) {
  std::vector<optimizer> v;
  {
    optimizer o{"paper EA", "#d62728", {}};  // P 64, N1 = N2 = 16, k 32, T 40 (the CLI's defaults before)
    v.push_back(o);
  }
  {
    optimizer o{"random", "#7f7f7f", {}};
    o.opt.strategy = longrope::search_strategy::random;
    o.opt.iterations = 100000;
    v.push_back(o);
  }
  {
    optimizer o{"gaussian", "#1f77b4", {}};
    o.opt.strategy = longrope::search_strategy::gaussian;
    o.opt.population = 16;
    o.opt.mutations = 8;
    o.opt.crossovers = 0;
    o.opt.top_k = 8;
    o.opt.iterations = 100000;
    v.push_back(o);
  }
  {
    optimizer o = v.back();  // gaussian's settings, samples pre-screened by a quadratic model
    o.name = "surrogate";
    o.color = "#2ca02c";
    o.opt.strategy = longrope::search_strategy::surrogate;
    v.push_back(o);
  }
  for (auto& o : v) {
    o.opt.max_evaluations = quick && o.opt.strategy == longrope::search_strategy::surrogate ? 30 : budget;
  }
  return v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::string out_dir = "docs", shared = std::string(LONGROPE_SOURCE_DIR) + "/../shared";
  if (const char* e = std::getenv("LONGROPE_SHARED_DIR")) shared = e;
  int seeds = 5, threads = 2, first_seed = 0;
  std::vector<int> scales = {4, 8};
  std::map<int, std::int64_t> budget = {{2, 12}, {4, 450}, {8, 300}};
  int baseline_seeds = -1;  // seeds of the paper EA and random search (-1: --seeds)
  std::int64_t train_windows = 2, validation_windows = 2;  // the CLI's defaults (longrope search)
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + ": missing value");
      return argv[++i];
    };
    if (a == "--quick") {
      quick = true;
    } else if (a == "--out") {
      out_dir = next();
    } else if (a == "--seeds") {
      seeds = std::stoi(next());
    } else if (a == "--baseline-seeds") {
      baseline_seeds = std::stoi(next());
    } else if (a == "--threads") {
      threads = std::stoi(next());
    } else if (a == "--scale") {
      scales = {std::stoi(next())};
    } else if (a == "--budget") {
      const auto b = std::stoll(next());
      for (auto& e : budget) e.second = b;
    } else if (a == "--first-seed") {
      first_seed = std::stoi(next());
    } else if (a == "--train-windows") {
      train_windows = std::stoll(next());
    } else if (a == "--validation-windows") {
      validation_windows = std::stoll(next());
    } else if (a == "--only") {
      only = next();
    } else if (a == "--shared") {
      shared = next();
    } else {
      std::fprintf(stderr,
                   "usage: search_quality [--quick] [--out DIR] [--seeds N] [--scale 4|8] [--budget B] "
                   "[--baseline-seeds N] [--only OPTIMIZER] [--train-windows W] [--validation-windows V] [--first-seed S] [--threads J] "
                   "[--shared DIR]\n");
      return 2;
    }
  }
  if (quick) {
    scales = {2};
    seeds = 1;
    train_windows = 1;
    validation_windows = 1;
  }
  if (train_windows < 1 || validation_windows < 0 || seeds < 1 || first_seed < 0) {
    std::fprintf(stderr,
                 "search_quality: need --train-windows >= 1, --validation-windows >= 0, --seeds >= 1, --first-seed >= 0\n");
    return 2;
  }
  if (baseline_seeds < 0) baseline_seeds = seeds;
  try {
    const auto ck = llama2c::load_checkpoint(shared + "/models/stories260K/stories260K.bin");
    const auto tok = llama2c::tokenizer::load(shared + "/models/stories260K/tok512.bin", ck.config.vocab_size);
    const llama2c::transformer<float> model(ck);
    const auto stream = tok.encode(read_file(shared + "/data/tinystories/valid_head.txt"), false, false);
    const auto n = static_cast<std::int64_t>(stream.size());
    const std::int64_t half = n / 2;  // search: [0, half); held-out: [half, n)
    std::printf("text: %lld tokens; search windows in [0, %lld), held-out windows in [%lld, %lld)\n",
                static_cast<long long>(n), static_cast<long long>(half), static_cast<long long>(half),
                static_cast<long long>(n));
    nlohmann::json all;
    std::string md;
    std::vector<svg_plot::panel> panels;
    for (int s : scales) {
      const std::int64_t context = s * ck.config.seq_len;
      const std::int64_t train_w = train_windows, val_w = validation_windows, held_w = quick ? 1 : 4;
      const auto split = llama2c::split_windows(stream, context, train_w, val_w, 0, half);
      const auto held = llama2c::spread_windows(stream, context, held_w, half, n);
      const auto mc = model.config();
      std::map<std::string, double> base;
      for (auto m : {llama2c::scaling_method::none, llama2c::scaling_method::pi, llama2c::scaling_method::ntk,
                     llama2c::scaling_method::yarn}) {
        llama2c::scaling sc;
        sc.method = m;
        base[llama2c::to_string(m)] =
            llama2c::evaluate_perplexity(model, held, llama2c::make_frequencies(mc, sc, context), threads).perplexity();
      }
      double best_base = 1e300;
      std::string best_name;
      for (const auto& b : base) {
        if (b.second < best_base) best_base = b.second, best_name = b.first;
      }
      std::printf("%dx (%lld tokens): %lld train + %lld validation windows, %lld held-out; best baseline %s %.4f\n", s,
                  static_cast<long long>(context), static_cast<long long>(train_w), static_cast<long long>(val_w),
                  static_cast<long long>(held_w), best_name.c_str(), best_base);
      std::map<std::pair<std::vector<double>, std::int64_t>, double> held_cache;
      auto held_ppl = [&](const longrope::search_point& p) {
        const auto key = std::make_pair(p.factors, p.n_hat);
        auto it = held_cache.find(key);
        if (it != held_cache.end()) return it->second;
        const double v = llama2c::evaluate_perplexity(model, held, llama2c::point_frequencies(mc, p, context, {}),
                                                      threads).perplexity();
        held_cache.emplace(key, v);
        return v;
      };
      nlohmann::json js;
      js["context"] = context;
      js["baselines_held_out"] = base;
      js["best_baseline"] = best_name;
      svg_plot::panel pn;
      pn.title = "stories260K " + std::to_string(s) + "x: held-out ppl / best baseline";
      pn.xlabel = "evaluations (train + validation)";
      pn.ylabel = "ratio";
      md += "\n## " + std::to_string(s) + "x (" + std::to_string(context) + " tokens)\n\n";
      md += "Held-out baselines: ";
      for (const auto& b : base) md += b.first + " " + std::to_string(b.second).substr(0, 6) + ", ";
      md += "best " + best_name + ".\n\n";
      md += "| optimizer | evaluations (median) | ratio at 1/3 of the evaluations (median, min-max) | final ratio (median, min-max) | "
            "per seed (final) |\n| --- | ---: | ---: | ---: | --- |\n";
      for (const auto& o : optimizers(budget[s], quick)) {
        if (!only.empty() && o.name != only) continue;
        std::vector<std::vector<std::pair<std::int64_t, double>>> curves;
        std::vector<double> totals;
        nlohmann::json runs = nlohmann::json::array();
        const bool baseline = o.opt.strategy == longrope::search_strategy::evolution ||
                             o.opt.strategy == longrope::search_strategy::random;
        const int n_seeds = baseline ? baseline_seeds : seeds;
        for (int seed = first_seed; seed < first_seed + n_seeds; ++seed) {
          llama2c::validated_options vo;
          vo.extension.context = context;
          vo.extension.search = o.opt;
          vo.extension.search.seed = static_cast<std::uint64_t>(seed);
          vo.extension.search.threads = threads;
          const auto t0 = std::chrono::steady_clock::now();
          const std::clock_t c0 = std::clock();
          const auto r = llama2c::search_factors_validated(model, split.train, split.validation, vo);
          std::vector<std::pair<std::int64_t, double>> c;
          for (const auto& st : r.steps) c.emplace_back(st.evaluations, held_ppl(st.chosen) / best_base);
          const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
          std::printf("  %-9s seed %d: %lld evaluations (%lld validation), held-out %.4f = %.3fx, %.0f s wall, %.0f s CPU\n",
                      o.name.c_str(), seed, static_cast<long long>(c.back().first),
                      static_cast<long long>(r.validation_evaluations), c.back().second * best_base, c.back().second,
                      secs, cpu);
          std::printf("    curve (evaluations:ratio at each change):");
          for (std::size_t k = 0; k < c.size(); ++k) {
            if (k == 0 || c[k].second != c[k - 1].second) {
              std::printf(" %lld:%.4f", static_cast<long long>(c[k].first), c[k].second);
            }
          }
          std::printf("\n    factors");
          for (double x : r.chosen.factors) std::printf(" %.2f", x);
          std::printf(" n_hat %lld, validation %.4f (log-se %.4f)\n", static_cast<long long>(r.chosen.n_hat),
                      r.chosen_validation, r.validation_stats.log_se);
          std::fflush(stdout);
          nlohmann::json jr;
          jr["seed"] = seed;
          jr["factors"] = r.chosen.factors;
          jr["n_hat"] = r.chosen.n_hat;
          jr["validation_perplexity"] = r.chosen_validation;
          jr["validation_log_se"] = r.validation_stats.log_se;
          jr["curve"] = c;
          runs.push_back(jr);
          totals.push_back(static_cast<double>(c.back().first));
          curves.push_back(std::move(c));
        }
        // The ratio of every run at evaluation count x (its last step at or below x).
        auto at = [&](const std::vector<std::pair<std::int64_t, double>>& c, double x) {
          double v = std::nan("");
          for (const auto& p : c) {
            if (static_cast<double>(p.first) <= x) v = p.second;
          }
          return v;
        };
        const double xmax = *std::max_element(totals.begin(), totals.end());
        svg_plot::series med{o.name, o.color, {}, {}, false}, lo{o.name + " min", o.color, {}, {}, true},
            hi{o.name + " max", o.color, {}, {}, true};
        for (double x = 8; x <= xmax + 1e-9; x += std::max(1.0, xmax / 60.0)) {
          std::vector<double> v;
          for (const auto& c : curves) {
            const double y = at(c, x);
            if (std::isfinite(y)) v.push_back(y);
          }
          if (v.size() != curves.size()) continue;
          med.x.push_back(x), med.y.push_back(median(v));
          lo.x.push_back(x), lo.y.push_back(*std::min_element(v.begin(), v.end()));
          hi.x.push_back(x), hi.y.push_back(*std::max_element(v.begin(), v.end()));
        }
        pn.lines.push_back(med), pn.lines.push_back(lo), pn.lines.push_back(hi);
        std::vector<double> fin, third;
        std::string per;
        for (const auto& c : curves) {
          fin.push_back(c.back().second);
          third.push_back(at(c, 1340.0 / 3.0));
          char b[16];
          std::snprintf(b, sizeof b, "%.3f ", c.back().second);
          per += b;
        }
        char row[400];
        auto mm = [](const std::vector<double>& v) {
          return std::make_pair(*std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
        };
        std::snprintf(row, sizeof row, "| %s | %.0f | %.3f (%.3f-%.3f) | %.3f (%.3f-%.3f) | %s|\n", o.name.c_str(),
                      median(totals), median(third), mm(third).first, mm(third).second, median(fin), mm(fin).first,
                      mm(fin).second, per.c_str());
        md += row;
        js["optimizers"][o.name] = {{"budget", o.opt.max_evaluations}, {"strategy", longrope::to_string(o.opt.strategy)},
                                    {"population", o.opt.population}, {"children", o.opt.mutations + o.opt.crossovers},
                                    {"top_k", o.opt.top_k}, {"runs", runs}};
      }
      all[std::to_string(s) + "x"] = js;
      panels.push_back(pn);
    }
    std::ofstream(out_dir + "/search-quality.json") << all.dump(1) << '\n';
    std::ofstream(out_dir + "/search-quality.svg") << svg_plot::render(panels);
    std::ofstream(out_dir + "/search-quality-tables.md") << md;
    std::printf("%s\nwrote %s/search-quality.{json,svg} and search-quality-tables.md\n", md.c_str(), out_dir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "search_quality: %s\n", e.what());
    return 1;
  }
  return 0;
}
