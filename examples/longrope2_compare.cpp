// LongRoPE2 against LongRoPE and the baselines on stories260K, scored on
// needles and text the searches never saw (docs/search.md, "LongRoPE2";
// docs/results-longrope2.md is its output).
//
//   longrope2_compare [--model-dir D | --model M --tokenizer T] [--text FILE] [--quick]
//                     [--threads J] [--contexts a,b] [--population P] [--iterations T]
//                     [--search-windows W] [--eval-windows W] [--core] [--space-bound G]
//
// For each target (4x = 2048 and 8x = 4096 tokens):
//   search material: needle windows (seed 1) on text tokens [0, ...), and
//                    perplexity windows on the same text;
//   held-out:        needle windows (seed 2, other keys and numbers) and
//                    perplexity windows on text from token n/4 on (n: the
//                    text's tokens; finetune trains on [0, n/4) by default).
// Rows: none, PI, NTK, YaRN; LongRoPE searched with perplexity (the paper's
// fitness, llama2c::search_factors); LongRoPE2 with the needle fitness, with
// the perplexity fitness, and needle + per-pair mscale. Columns: held-out
// answer-token NLL, teacher-forced exact-key accuracy, held-out perplexity.
// The budget is small (the machine is shared); --quick shrinks it further;
// --population P sets P (N1 = N2 = k = P/2), --iterations T the generations;
// --core keeps only the rows acceptance 2 compares (baselines, LongRoPE,
// LongRoPE2 with the needle fitness).
// --space-bound G replaces the searches by an oracle over LongRoPE2's space:
// at each critical dimension in d10_tcd .. d_tcd, every monotone choice of
// the searched pairs among G geometric levels in [s, 2s] (lower pairs by the
// NTK rule), scored on the held-out needles themselves, then a per-pair
// mscale for the best by coordinate descent on the same needles. It is
// biased toward LongRoPE2 (it selects on the evaluation set), so when even
// it loses to a baseline, no search in that space can win on those needles.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <llama2c/extension.hpp>
#include <llama2c/longrope2_extension.hpp>
#include <llama2c/model_files.hpp>
#include <llama2c/needle.hpp>
#include <llama2c/perplexity.hpp>
#include <llama2c/tokenizer.hpp>
#include <llama2c/transformer.hpp>
#include <longrope/io.hpp>

#include <fstream>
#include <sstream>

namespace {

struct row {
  std::string name;
  longrope::rope_frequencies f;
};

// Index of the lowest needle loss of a batch.
std::size_t argmin_loss(const std::vector<llama2c::needle_result>& r) {
  std::size_t arg = 0;
  for (std::size_t i = 1; i < r.size(); ++i)
    if (r[i].loss() < r[arg].loss()) arg = i;
  return arg;
}

// Every non-decreasing vector of m indices in [0, levels), in lexicographic order.
std::vector<std::vector<int>> monotone_grid(int m, int levels, std::size_t cap) {
  std::vector<std::vector<int>> out;
  std::vector<int> v(static_cast<std::size_t>(m), 0);
  while (true) {
    out.push_back(v);
    if (out.size() > cap)
      throw std::runtime_error("--space-bound: more than " + std::to_string(cap) +
                               " grid points; use fewer levels");
    int i = m - 1;
    while (i >= 0 && v[static_cast<std::size_t>(i)] == levels - 1) --i;
    if (i < 0) return out;
    const int next = v[static_cast<std::size_t>(i)] + 1;
    for (int j = i; j < m; ++j) v[static_cast<std::size_t>(j)] = next;
  }
}

// The oracle of --space-bound (see the file comment); prints its rows.
void space_bound(const llama2c::model_config& mc, const llama2c::transformer<float>& model,
                 std::int64_t context, const std::vector<llama2c::needle_window>& eval, int levels,
                 int threads) {
  longrope::search_target target;
  target.rope = llama2c::make_rope_config(mc, llama2c::scaling{}, context);
  target.original_length = mc.seq_len;
  target.scale = static_cast<double>(context) / static_cast<double>(mc.seq_len);
  const int pairs = target.rope.pairs();
  const auto [lo, hi] = longrope::longrope2_default_critical_dims(target);  // the search's own range
  double best = 1e300;
  std::vector<double> best_f;
  int best_k = -1;
  for (int k = lo; k <= hi; ++k) {
    const longrope::search_space space(longrope::longrope2_space_config(target, k));
    std::vector<std::vector<double>> factors;
    std::vector<longrope::rope_frequencies> fs;
    for (const auto& idx : monotone_grid(pairs - k, levels, 4096)) {
      std::vector<double> f(static_cast<std::size_t>(pairs), target.scale);
      for (int i = k; i < pairs; ++i) {
        f[static_cast<std::size_t>(i)] =
            target.scale *
            std::pow(2.0, static_cast<double>(idx[static_cast<std::size_t>(i - k)]) / (levels - 1));
      }
      const auto c = longrope::snap(space, f, 0);  // grid values; the pairs below k by the NTK rule
      factors.push_back(space.point(c).factors);
      fs.push_back(llama2c::longrope2_frequencies(mc, context, factors.back()));
    }
    const auto r = llama2c::evaluate_needle(model, eval, fs, threads);
    const std::size_t arg = argmin_loss(r);
    std::printf("| LongRoPE2 space oracle, d_rcd %d (best of %zu) | %lld | %.4f | %lld/%lld | |\n", k,
                r.size(), static_cast<long long>(context), r[arg].loss(),
                static_cast<long long>(r[arg].keys_correct), static_cast<long long>(r[arg].keys));
    std::fprintf(stderr, "oracle d_rcd %d @%lld factors:", k, static_cast<long long>(context));
    for (double x : factors[arg]) std::fprintf(stderr, " %.4f", x);
    std::fputc('\n', stderr);
    if (r[arg].loss() < best) {
      best = r[arg].loss();
      best_f = factors[arg];
      best_k = k;
    }
  }
  // Per-pair mscale in [1, 2s] for the best factors: two rounds of coordinate descent.
  std::vector<double> m(static_cast<std::size_t>(pairs), 1.0);
  const std::vector<double> grid{1.0, 1.05, 1.1, 1.15, 1.2, 1.3, 1.4, 1.6, 2.0};
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < pairs; ++i) {
      std::vector<longrope::rope_frequencies> fs;
      for (double g : grid) {
        auto t = m;
        t[static_cast<std::size_t>(i)] = g;
        fs.push_back(llama2c::longrope2_frequencies(mc, context, best_f, t));
      }
      const auto r = llama2c::evaluate_needle(model, eval, fs, threads);
      const std::size_t arg = argmin_loss(r);
      if (r[arg].loss() < best) {
        best = r[arg].loss();
        m[static_cast<std::size_t>(i)] = grid[arg];
      }
    }
  }
  // best is the loss of (best_f, m): each accepted step was scored as exactly that
  // (all-ones mscale gives the factor stage's frequencies bit for bit).
  std::printf("| LongRoPE2 space oracle + per-pair mscale (d_rcd %d) | %lld | %.4f | | |\n", best_k,
              static_cast<long long>(context), best);
  std::fprintf(stderr, "oracle mscale @%lld:", static_cast<long long>(context));
  for (double x : m) std::fprintf(stderr, " %.3f", x);
  std::fputc('\n', stderr);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, model_path, tokenizer_path, text_path = LLAMA2C_DEFAULT_TEXT;
  bool quick = false, core = false;
  int threads = 2, population = 0, iterations = -1, search_windows = 0, eval_windows = 0, bound_levels = 0;
  std::vector<std::int64_t> contexts{2048, 4096};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--model-dir" && i + 1 < argc) {
      model_dir = argv[++i];
    } else if (a == "--text" && i + 1 < argc) {
      text_path = argv[++i];
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--model" && i + 1 < argc) {
      model_path = argv[++i];
    } else if (a == "--tokenizer" && i + 1 < argc) {
      tokenizer_path = argv[++i];
    } else if (a == "--contexts" && i + 1 < argc) {
      contexts.clear();
      std::stringstream ss(argv[++i]);
      for (std::string c; std::getline(ss, c, ',');) contexts.push_back(std::atoll(c.c_str()));
    } else if (a == "--population" && i + 1 < argc) {
      population = std::atoi(argv[++i]);
    } else if (a == "--iterations" && i + 1 < argc) {
      iterations = std::atoi(argv[++i]);
    } else if (a == "--search-windows" && i + 1 < argc) {
      search_windows = std::atoi(argv[++i]);
    } else if (a == "--eval-windows" && i + 1 < argc) {
      eval_windows = std::atoi(argv[++i]);
    } else if (a == "--core") {
      core = true;
    } else if (a == "--space-bound" && i + 1 < argc) {
      bound_levels = std::atoi(argv[++i]);
      if (bound_levels < 2 || bound_levels > 64) {
        std::fprintf(stderr, "longrope2_compare: --space-bound: G must be in [2, 64]\n");
        return 2;
      }
    } else {
      std::fprintf(
          stderr,
          "usage: longrope2_compare [--model-dir D | --model M --tokenizer T] [--text FILE] [--quick]\n"
          "                         [--threads J] [--contexts a,b] [--population P] [--iterations T]\n"
          "                         [--search-windows W] [--eval-windows W] [--core] [--space-bound G]\n");
      return 2;
    }
  }
  for (auto c : contexts) {
    if (c < 2 || c > (1 << 20)) {
      std::fprintf(stderr, "longrope2_compare: --contexts: each must be in [2, 1048576]\n");
      return 2;
    }
  }
  if (population < 0 || population == 1 || iterations < -1 || search_windows < 0 || eval_windows < 0 ||
      threads < 1 || model_path.empty() != tokenizer_path.empty()) {
    std::fprintf(stderr,
                 "longrope2_compare: bad --population/--iterations/--*-windows/--threads, or --model "
                 "without --tokenizer\n");
    return 2;
  }
  try {
    if (model_path.empty()) {
      std::vector<std::string> log;
      const auto found = llama2c::find_stories260k(model_dir, log);
      if (!found) throw std::runtime_error("stories260K not found (--model-dir D)");
      model_path = found->checkpoint;
      tokenizer_path = found->tokenizer;
    }
    std::fprintf(stderr, "model %s\n", model_path.c_str());
    const auto ck = llama2c::load_checkpoint(model_path);
    const auto tok = llama2c::tokenizer::load(tokenizer_path, ck.config.vocab_size);
    const auto stream = tok.encode(longrope::read_file(text_path), false, false);
    const llama2c::transformer<float> model(ck);
    const auto& mc = ck.config;
    const auto held_out = static_cast<std::int64_t>(stream.size() / 4);  // first held-out text token

    std::printf(
        "| %s | context | held-out needle NLL | exact keys | held-out perplexity |\n| --- | ---: | ---: | "
        "---: | ---: |\n",
        "method");
    for (std::int64_t context : contexts) {
      const auto t0 = std::chrono::steady_clock::now();
      llama2c::needle_options no;
      no.context = context;
      no.keys = 3;
      no.seed = 1;
      const int sw = search_windows > 0 ? search_windows : (quick ? 1 : 2);
      const int ew = eval_windows > 0 ? eval_windows : (quick ? 2 : 4);
      const auto search_needles = llama2c::make_needle_windows(tok, stream, no, sw, 0);
      const auto search_ppl = llama2c::make_windows(stream, context, 2, 0);
      no.seed = 2;
      const auto eval_needles = llama2c::make_needle_windows(tok, stream, no, ew, held_out);
      const auto eval_ppl =
          llama2c::make_windows(stream, context, quick ? 2 : 3, held_out / (context - 1) + 1);

      longrope::search_options so;
      so.population = quick ? 8 : 16;
      so.mutations = quick ? 4 : 8;
      so.crossovers = quick ? 4 : 8;
      so.top_k = 8;
      so.iterations = quick ? 2 : 6;
      if (population > 0) {
        so.population = population;
        so.mutations = so.crossovers = so.top_k = population / 2;
      }
      if (iterations >= 0) so.iterations = iterations;
      so.threads = threads;

      std::vector<row> rows;
      for (auto m : {llama2c::scaling_method::none, llama2c::scaling_method::pi, llama2c::scaling_method::ntk,
                     llama2c::scaling_method::yarn}) {
        llama2c::scaling sc;
        sc.method = m;
        rows.push_back({llama2c::to_string(m), llama2c::make_frequencies(mc, sc, context)});
      }
      if (bound_levels == 0) {  // the searches; --space-bound replaces them by its oracle
        {
          llama2c::extension_options eo;
          eo.context = context;
          eo.search = so;
          eo.search_n_hat = false;
          const auto r = llama2c::search_factors(model, search_ppl, eo);
          rows.push_back({"LongRoPE (perplexity fitness)",
                          llama2c::longrope2_frequencies(mc, context, r.search.best.factors)});
        }
        auto needle_fit = [&](const std::vector<longrope::rope_frequencies>& fs) {
          std::vector<double> v;
          for (const auto& x : llama2c::evaluate_needle(model, search_needles, fs, threads))
            v.push_back(x.loss());
          return v;
        };
        auto ppl_fit = [&](const std::vector<longrope::rope_frequencies>& fs) {
          std::vector<double> v;
          for (const auto& x : llama2c::evaluate_perplexity(model, search_ppl, fs, threads))
            v.push_back(x.perplexity());
          return v;
        };
        llama2c::longrope2_extension_options lo;
        lo.context = context;
        lo.search.search = so;
        int best_k = 0;
        {
          const auto r = llama2c::search_longrope2(mc, lo, needle_fit);
          best_k = r.factors.critical_dim;
          rows.push_back({"LongRoPE2 (needle fitness, d_rcd " + std::to_string(r.factors.critical_dim) + ")",
                          llama2c::longrope2_frequencies(mc, context, r.rope.longrope.long_factor)});
        }
        if (!core) {  // the same factor search at the best d_rcd (same seed: same factors), then mscale
          lo.search_mscale = true;
          lo.mscale = so;
          lo.mscale.iterations = quick ? 1 : 4;
          lo.search.critical_dim_min = lo.search.critical_dim_max = best_k;
          const auto r2 = llama2c::search_longrope2(mc, lo, needle_fit);
          rows.push_back(
              {"LongRoPE2 (needle fitness + per-pair mscale)",
               llama2c::longrope2_frequencies(mc, context, r2.rope.longrope.long_factor, r2.pair_mscale)});
          lo.search_mscale = false;
          lo.search.critical_dim_min = lo.search.critical_dim_max = -1;
        }
        if (!core) {
          const auto r = llama2c::search_longrope2(mc, lo, ppl_fit);
          rows.push_back(
              {"LongRoPE2 (perplexity fitness, d_rcd " + std::to_string(r.factors.critical_dim) + ")",
               llama2c::longrope2_frequencies(mc, context, r.rope.longrope.long_factor)});
        }
      }
      std::vector<longrope::rope_frequencies> fs;
      for (const auto& r : rows) fs.push_back(r.f);
      const auto nr = llama2c::evaluate_needle(model, eval_needles, fs, threads);
      const auto pr = llama2c::evaluate_perplexity(model, eval_ppl, fs, threads);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        std::printf("| %s | %lld | %.4f | %lld/%lld | %.3f |\n", rows[i].name.c_str(),
                    static_cast<long long>(context), nr[i].loss(), static_cast<long long>(nr[i].keys_correct),
                    static_cast<long long>(nr[i].keys), pr[i].perplexity());
      }
      for (std::size_t i = 4; i < rows.size(); ++i) {
        std::fprintf(stderr, "%s @%lld factors:", rows[i].name.c_str(), static_cast<long long>(context));
        for (double x : rows[i].f.rescale_factors()) std::fprintf(stderr, " %.4f", x);
        if (rows[i].f.has_pair_mscale()) {
          std::fprintf(stderr, "  mscale:");
          for (double x : rows[i].f.config().pair_mscale) std::fprintf(stderr, " %.3f", x);
        }
        std::fputc('\n', stderr);
      }
      if (bound_levels > 0) space_bound(mc, model, context, eval_needles, bound_levels, threads);
      std::fprintf(stderr, "context %lld done in %.0f s\n", static_cast<long long>(context),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "longrope2_compare: %s\n", e.what());
    return 1;
  }
  return 0;
}
