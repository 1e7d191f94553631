// Quality against cost of the factor search on stories260K (docs/search-quality.md).
//
// For each target (4x = 2048 and 8x = 4096 tokens), each optimizer and each
// seed, a validated search (llama2c/validated_search.hpp) runs on the first
// half of the text (train and validation windows interleaved there); after
// every generation the candidate it would return is scored on held-out
// windows from the second half, which the search never sees. The curves are
// the held-out perplexity of that candidate over the best baseline's (none,
// PI, NTK, YaRN, on the same held-out windows) against the evaluations spent
// (train + validation). Two held-out sets are scored: "text", windows of the
// text's second half, and "sampled", stories the model samples itself
// (llama2c::sample_stories, temperature 1, from seed 1), issue 16's protocol.
// --quick: a plumbing check (2x, tiny budgets).
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

#include <llama2c/checkpoint.hpp>
#include <llama2c/generate.hpp>
#include <llama2c/tokenizer.hpp>
#include <llama2c/transformer.hpp>
#include <llama2c/validated_search.hpp>
#include <longrope/io.hpp>

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

/// One held-out set: its windows, the baselines on it and the best of them,
/// and the candidates already scored on it.
struct held_set {
  std::string name;
  std::vector<std::vector<int>> windows;
  std::map<std::string, double> base;
  double best_base = 1e300;
  std::string best_name;
  std::map<std::pair<std::vector<double>, std::int64_t>, double> cache;
};

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
  std::int64_t oracle_budget = 0;  // > 0: first search each held-out set itself (the ceiling)
  std::string oracle_set;          // --oracle-set: only this held-out set (default: both)
  try {                            // a bad number (std::stoi/stoll) or a missing value: one line, exit 2
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
      } else if (a == "--oracle") {
        oracle_budget = std::stoll(next());
      } else if (a == "--oracle-set") {
        oracle_set = next();
        if (oracle_set != "text" && oracle_set != "sampled") {
          std::fprintf(stderr, "search_quality: --oracle-set: expected text or sampled, got '%s'\n",
                       oracle_set.c_str());
          return 2;
        }
      } else if (a == "--only") {
        only = next();
      } else if (a == "--shared") {
        shared = next();
      } else {
        std::fprintf(stderr,
                     "usage: search_quality [--quick] [--out DIR] [--seeds N] [--scale 4|8] [--budget B] "
                     "[--baseline-seeds N] [--only OPTIMIZER] [--oracle BUDGET] [--oracle-set text|sampled] "
                     "[--train-windows W] "
                     "[--validation-windows V] [--first-seed S] [--threads J] "
                     "[--shared DIR]\n");
        return 2;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "search_quality: bad argument: %s\n", e.what());
    return 2;
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
    const int max_scale = *std::max_element(scales.begin(), scales.end());
    const std::int64_t held_w = quick ? 1 : 4;
    // Enough sampled tokens for held_w disjoint windows at the longest target.
    const std::int64_t sampled_n = held_w * max_scale * ck.config.seq_len + 1;
    const auto sampled = llama2c::sample_stories(
        model, llama2c::make_frequencies(model.config(), llama2c::scaling{}, ck.config.seq_len), sampled_n,
        ck.config.seq_len, 1.0, 1);
    std::printf("sampled held-out text: %lld tokens (stories of <= %d tokens, temperature 1, seed 1)\n",
                static_cast<long long>(sampled.size()), ck.config.seq_len);
    std::printf("text: %lld tokens; search windows in [0, %lld), held-out windows in [%lld, %lld)\n",
                static_cast<long long>(n), static_cast<long long>(half), static_cast<long long>(half),
                static_cast<long long>(n));
    nlohmann::json all;
    std::string md;
    std::vector<svg_plot::panel> panels;
    for (int s : scales) {
      const std::int64_t context = s * ck.config.seq_len;
      const std::int64_t train_w = train_windows, val_w = validation_windows;
      const auto split = llama2c::split_windows(stream, context, train_w, val_w, 0, half);
      const auto mc = model.config();
      std::vector<held_set> held(2);
      held[0].name = "text";
      held[0].windows = llama2c::spread_windows(stream, context, held_w, half, n);
      held[1].name = "sampled";
      held[1].windows =
          llama2c::spread_windows(sampled, context, held_w, 0, static_cast<std::int64_t>(sampled.size()));
      std::printf("%dx (%lld tokens): %lld train + %lld validation windows, %lld held-out per set\n", s,
                  static_cast<long long>(context), static_cast<long long>(train_w),
                  static_cast<long long>(val_w), static_cast<long long>(held_w));
      for (auto& h : held) {
        for (auto m : {llama2c::scaling_method::none, llama2c::scaling_method::pi,
                       llama2c::scaling_method::ntk, llama2c::scaling_method::yarn}) {
          llama2c::scaling sc;
          sc.method = m;
          h.base[llama2c::to_string(m)] =
              llama2c::evaluate_perplexity(model, h.windows, llama2c::make_frequencies(mc, sc, context),
                                           threads)
                  .perplexity();
        }
        for (const auto& b : h.base) {
          if (b.second < h.best_base) h.best_base = b.second, h.best_name = b.first;
        }
        std::printf("  held-out %s: best baseline %s %.4f\n", h.name.c_str(), h.best_name.c_str(),
                    h.best_base);
      }
      // Held-out perplexity of p on set h over h's best baseline.
      auto held_ratio = [&](held_set& h, const longrope::search_point& p) {
        const auto key = std::make_pair(p.factors, p.n_hat);
        auto it = h.cache.find(key);
        if (it == h.cache.end()) {
          const double v = llama2c::evaluate_perplexity(
                               model, h.windows, llama2c::point_frequencies(mc, p, context, {}), threads)
                               .perplexity();
          it = h.cache.emplace(key, v).first;
        }
        return it->second / h.best_base;
      };
      nlohmann::json js;
      // The ceiling of this search space on each held-out set: the surrogate run on
      // the held-out windows themselves (no validation). No search that never sees
      // them can be expected to beat it; a diagnostic, not a method.
      for (std::size_t h = 0; oracle_budget > 0 && h < held.size(); ++h) {
        if (!oracle_set.empty() && held[h].name != oracle_set) continue;
        llama2c::validated_options vo;
        vo.extension.context = context;
        vo.extension.search = optimizers(oracle_budget, false).back().opt;
        vo.extension.search.threads = threads;
        const auto r = llama2c::search_factors_validated(model, held[h].windows, {}, vo);
        const double ratio = held_ratio(held[h], r.chosen);
        std::printf("  oracle on held-out %s (%lld evaluations): %.3fx, factors", held[h].name.c_str(),
                    static_cast<long long>(r.steps.back().evaluations), ratio);
        for (double x : r.chosen.factors) std::printf(" %.2f", x);
        std::printf(" n_hat %lld\n", static_cast<long long>(r.chosen.n_hat));
        std::fflush(stdout);
        js["oracle_" + held[h].name] = {{"ratio", ratio},
                                        {"factors", r.chosen.factors},
                                        {"n_hat", r.chosen.n_hat},
                                        {"evaluations", r.steps.back().evaluations}};
      }
      js["context"] = context;
      js["baselines_held_out"] = held[0].base;
      js["best_baseline"] = held[0].best_name;
      js["baselines_held_out_sampled"] = held[1].base;
      js["best_baseline_sampled"] = held[1].best_name;
      std::vector<svg_plot::panel> pn(held.size());
      for (std::size_t h = 0; h < held.size(); ++h) {
        pn[h].title =
            "stories260K " + std::to_string(s) + "x: held-out " + held[h].name + " ppl / best baseline";
        pn[h].xlabel = "evaluations (train + validation)";
        pn[h].ylabel = "ratio";
      }
      md += "\n## " + std::to_string(s) + "x (" + std::to_string(context) + " tokens)\n\n";
      for (const auto& h : held) {
        md += "Held-out baselines (" + h.name + "): ";
        for (const auto& b : h.base) md += b.first + " " + std::to_string(b.second).substr(0, 6) + ", ";
        md += "best " + h.best_name + ".\n";
      }
      md +=
          "\n| optimizer | held-out | evaluations (median) | ratio at 1/3 of the evaluations (median, "
          "min-max) | "
          "final ratio (median, min-max) | per seed (final) |\n| --- | --- | ---: | ---: | ---: | --- |\n";
      for (const auto& o : optimizers(budget[s], quick)) {
        if (!only.empty() && o.name != only) continue;
        using curve = std::vector<std::pair<std::int64_t, double>>;
        std::vector<std::vector<curve>> curves(held.size());  // [set][run]
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
          std::vector<curve> c(held.size());  // [set]
          for (const auto& st : r.steps) {
            for (std::size_t h = 0; h < held.size(); ++h) {
              c[h].emplace_back(st.evaluations, held_ratio(held[h], st.chosen));
            }
          }
          const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
          std::printf(
              "  %-9s seed %d: %lld evaluations (%lld validation), held-out text %.4f = %.3fx, "
              "sampled %.4f = %.3fx, %.0f s wall, %.0f s CPU\n",
              o.name.c_str(), seed, static_cast<long long>(c[0].back().first),
              static_cast<long long>(r.validation_evaluations), c[0].back().second * held[0].best_base,
              c[0].back().second, c[1].back().second * held[1].best_base, c[1].back().second, secs, cpu);
          for (std::size_t h = 0; h < held.size(); ++h) {
            const curve& cv = c[h];
            std::printf("    curve %s (evaluations:ratio at each change):", held[h].name.c_str());
            for (std::size_t k = 0; k < cv.size(); ++k) {
              if (k == 0 || cv[k].second != cv[k - 1].second) {
                std::printf(" %lld:%.4f", static_cast<long long>(cv[k].first), cv[k].second);
              }
            }
            std::printf("\n");
          }
          std::printf("    factors");
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
          totals.push_back(static_cast<double>(c[0].back().first));
          for (std::size_t h = 0; h < held.size(); ++h) {
            jr[h == 0 ? "curve" : "curve_" + held[h].name] = c[h];  // "curve" (text), "curve_sampled"
            curves[h].push_back(std::move(c[h]));
          }
          runs.push_back(jr);
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
        for (std::size_t h = 0; h < held.size(); ++h) {
          const auto& cv = curves[h];
          svg_plot::series med{o.name, o.color, {}, {}, false}, lo{o.name + " min", o.color, {}, {}, true},
              hi{o.name + " max", o.color, {}, {}, true};
          for (double x = 8; x <= xmax + 1e-9; x += std::max(1.0, xmax / 60.0)) {
            std::vector<double> v;
            for (const auto& c : cv) {
              const double y = at(c, x);
              if (std::isfinite(y)) v.push_back(y);
            }
            if (v.size() != cv.size()) continue;
            med.x.push_back(x), med.y.push_back(median(v));
            lo.x.push_back(x), lo.y.push_back(*std::min_element(v.begin(), v.end()));
            hi.x.push_back(x), hi.y.push_back(*std::max_element(v.begin(), v.end()));
          }
          pn[h].lines.push_back(med), pn[h].lines.push_back(lo), pn[h].lines.push_back(hi);
          std::vector<double> fin, third;
          std::string per;
          for (const auto& c : cv) {
            fin.push_back(c.back().second);
            third.push_back(at(c, 1340.0 / 3.0));
            char b[16];
            std::snprintf(b, sizeof b, "%.3f ", c.back().second);
            per += b;
          }
          char row[400];
          auto mm = [](const std::vector<double>& v) {
            return std::make_pair(*std::min_element(v.begin(), v.end()),
                                  *std::max_element(v.begin(), v.end()));
          };
          std::snprintf(row, sizeof row, "| %s | %s | %.0f | %.3f (%.3f-%.3f) | %.3f (%.3f-%.3f) | %s|\n",
                        o.name.c_str(), held[h].name.c_str(), median(totals), median(third), mm(third).first,
                        mm(third).second, median(fin), mm(fin).first, mm(fin).second, per.c_str());
          md += row;
        }
        js["optimizers"][o.name] = {{"budget", o.opt.max_evaluations}, {"strategy", longrope::to_string(o.opt.strategy)},
                                    {"population", o.opt.population}, {"children", o.opt.mutations + o.opt.crossovers},
                                    {"top_k", o.opt.top_k}, {"runs", runs}};
      }
      all[std::to_string(s) + "x"] = js;
      panels.insert(panels.end(), pn.begin(), pn.end());
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
