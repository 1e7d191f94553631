// LongRoPE2 against LongRoPE and the baselines on stories260K, scored on
// needles and text the searches never saw (docs/search.md, "LongRoPE2";
// docs/results-longrope2.md is its output).
//
//   longrope2_compare [--model-dir D] [--text FILE] [--quick] [--threads J]
//
// For each target (4x = 2048 and 8x = 4096 tokens):
//   search material: needle windows (seed 1) on text tokens [0, ...), and
//                    perplexity windows on the same text;
//   held-out:        needle windows (seed 2, other keys and numbers) and
//                    perplexity windows on text from token 60000 on.
// Rows: none, PI, NTK, YaRN; LongRoPE searched with perplexity (the paper's
// fitness, llama2c::search_factors); LongRoPE2 with the needle fitness, with
// the perplexity fitness, and needle + per-pair mscale. Columns: held-out
// answer-token NLL, teacher-forced exact-key accuracy, held-out perplexity.
// The budget is small (the machine is shared); --quick shrinks it further.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <cstring>
#include <string>
#include <vector>

#include <longrope/io.hpp>
#include <llama2c/extension.hpp>
#include <llama2c/longrope2_extension.hpp>
#include <llama2c/model_files.hpp>
#include <llama2c/needle.hpp>
#include <llama2c/perplexity.hpp>
#include <llama2c/tokenizer.hpp>
#include <llama2c/transformer.hpp>

#include <fstream>
#include <sstream>

namespace {

struct row {
  std::string name;
  longrope::rope_frequencies f;
};

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, text_path = LLAMA2C_DEFAULT_TEXT;
  bool quick = false;
  int threads = 2;
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
    } else {
      std::fprintf(stderr, "usage: longrope2_compare [--model-dir D] [--text FILE] [--quick] [--threads J]\n");
      return 2;
    }
  }
  try {
    std::vector<std::string> log;
    const auto found = llama2c::find_stories260k(model_dir, log);
    if (!found) throw std::runtime_error("stories260K not found (--model-dir D)");
    const auto& files = *found;
    const auto ck = llama2c::load_checkpoint(files.checkpoint);
    const auto tok = llama2c::tokenizer::load(files.tokenizer, ck.config.vocab_size);
    const auto stream = tok.encode(longrope::read_file(text_path), false, false);
    const llama2c::transformer<float> model(ck);
    const auto& mc = ck.config;
    const std::int64_t held_out = 60000;  // first held-out text token

    std::printf("| %s | context | held-out needle NLL | exact keys | held-out perplexity |\n| --- | ---: | ---: | ---: | ---: |\n",
                "method");
    for (std::int64_t context : {std::int64_t{2048}, std::int64_t{4096}}) {
      const auto t0 = std::chrono::steady_clock::now();
      llama2c::needle_options no;
      no.context = context;
      no.keys = 3;
      no.seed = 1;
      const auto search_needles = llama2c::make_needle_windows(tok, stream, no, quick ? 1 : 2, 0);
      const auto search_ppl = llama2c::make_windows(stream, context, 2, 0);
      no.seed = 2;
      const auto eval_needles = llama2c::make_needle_windows(tok, stream, no, quick ? 2 : 4, held_out);
      const auto eval_ppl = llama2c::make_windows(stream, context, quick ? 2 : 3, held_out / (context - 1) + 1);

      longrope::search_options so;
      so.population = quick ? 8 : 16;
      so.mutations = quick ? 4 : 8;
      so.crossovers = quick ? 4 : 8;
      so.top_k = 8;
      so.iterations = quick ? 2 : 6;
      so.threads = threads;

      std::vector<row> rows;
      for (auto m : {llama2c::scaling_method::none, llama2c::scaling_method::pi, llama2c::scaling_method::ntk,
                     llama2c::scaling_method::yarn}) {
        llama2c::scaling sc;
        sc.method = m;
        rows.push_back({llama2c::to_string(m), llama2c::make_frequencies(mc, sc, context)});
      }
      {
        llama2c::extension_options eo;
        eo.context = context;
        eo.search = so;
        eo.search_n_hat = false;
        const auto r = llama2c::search_factors(model, search_ppl, eo);
        rows.push_back({"LongRoPE (perplexity fitness)", llama2c::longrope2_frequencies(mc, context, r.search.best.factors)});
      }
      auto needle_fit = [&](const std::vector<longrope::rope_frequencies>& fs) {
        std::vector<double> v;
        for (const auto& x : llama2c::evaluate_needle(model, search_needles, fs, threads)) v.push_back(x.loss());
        return v;
      };
      auto ppl_fit = [&](const std::vector<longrope::rope_frequencies>& fs) {
        std::vector<double> v;
        for (const auto& x : llama2c::evaluate_perplexity(model, search_ppl, fs, threads)) v.push_back(x.perplexity());
        return v;
      };
      llama2c::longrope2_extension_options lo;
      lo.context = context;
      lo.search.search = so;
      {
        const auto r = llama2c::search_longrope2(mc, lo, needle_fit);
        rows.push_back({"LongRoPE2 (needle fitness, d_rcd " + std::to_string(r.factors.critical_dim) + ")",
                        llama2c::longrope2_frequencies(mc, context, r.rope.longrope.long_factor)});
        lo.search_mscale = true;
        lo.mscale = so;
        lo.mscale.iterations = quick ? 1 : 4;
        lo.search.critical_dim_min = lo.search.critical_dim_max = r.factors.critical_dim;
        const auto r2 = llama2c::search_longrope2(mc, lo, needle_fit);
        rows.push_back({"LongRoPE2 (needle fitness + per-pair mscale)",
                        llama2c::longrope2_frequencies(mc, context, r2.rope.longrope.long_factor, r2.pair_mscale)});
        lo.search_mscale = false;
        lo.search.critical_dim_min = lo.search.critical_dim_max = -1;
      }
      {
        const auto r = llama2c::search_longrope2(mc, lo, ppl_fit);
        rows.push_back({"LongRoPE2 (perplexity fitness, d_rcd " + std::to_string(r.factors.critical_dim) + ")",
                        llama2c::longrope2_frequencies(mc, context, r.rope.longrope.long_factor)});
      }
      std::vector<longrope::rope_frequencies> fs;
      for (const auto& r : rows) fs.push_back(r.f);
      const auto nr = llama2c::evaluate_needle(model, eval_needles, fs, threads);
      const auto pr = llama2c::evaluate_perplexity(model, eval_ppl, fs, threads);
      for (std::size_t i = 0; i < rows.size(); ++i) {
        std::printf("| %s | %lld | %.4f | %lld/%lld | %.3f |\n", rows[i].name.c_str(), static_cast<long long>(context),
                    nr[i].loss(), static_cast<long long>(nr[i].keys_correct), static_cast<long long>(nr[i].keys),
                    pr[i].perplexity());
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
