// The paper's progressive extension at toy scale (docs/pipeline.md): runs the
// `longrope extend` pipeline (llama2c/pipeline.hpp) on stories260K, or reads
// the result JSON of one (--result), and writes the results page
// results-pipeline.md with the paper-style table (held-out perplexity per
// method, with and without fine-tuning), the acceptance checks of issue 11,
// and three pictures: perplexity against context, factors per pair per stage,
// the fine-tuning loss curves.
//
//   build/dev/examples/progressive [--quick] [--out DIR] [--work DIR] [--result FILE]
//                                  [--model-dir DIR] [--text FILE] [--threads J]
//
// --quick: tiny budgets and contexts (mid 640, long 768 tokens), a smoke run
// for ctest; its numbers say nothing about the method.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <longrope/io.hpp>
#include <llama2c/checkpoint.hpp>
#include <llama2c/model_files.hpp>
#include <llama2c/pipeline.hpp>
#include <llama2c/tokenizer.hpp>

#include "svg_plot.hpp"

namespace {

using nlohmann::json;

const char* const kHelp =
    "usage: progressive [--quick] [--out DIR] [--work DIR] [--result FILE] [--model-dir DIR]\n"
    "                   [--text FILE] [--threads J]\n"
    "  --quick        tiny budgets and contexts (a smoke run, < 10 s)\n"
    "  --out DIR      where results-pipeline.md and the SVGs go (default progressive-out)\n"
    "  --work DIR     the pipeline's work directory (default OUT/work); a rerun resumes there\n"
    "  --result FILE  render the result JSON of a `longrope extend` run instead of running one\n"
    "  --model-dir D  stories260K.bin + tok512.bin (default: ../shared, then the download cache)\n"
    "  --text FILE    the text (default ../shared/data/tinystories/valid_head.txt)\n"
    "  --threads J    evaluation threads (default: all cores)\n"
    "Without --quick the budgets are `longrope extend`'s defaults (docs/pipeline.md).\n";

std::string fixed(double v, int digits) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

double ppl(const json& row, std::int64_t L) { return row["perplexity"][std::to_string(L)]["perplexity"].get<double>(); }

const json* find_row(const json& rows, const std::string& name) {
  for (const auto& r : rows) {
    if (r["method"] == name) return &r;
  }
  return nullptr;
}

const char* color(std::size_t i) {
  static const char* c[] = {"#7f7f7f", "#d62728", "#9467bd", "#2ca02c", "#ff9896", "#c5b0d5",
                            "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#1f77b4"};
  return c[i % 11];
}

std::string render_page(const json& r, const std::string& command) {
  const auto& t = r["table"];
  const auto lengths = t["lengths"].get<std::vector<std::int64_t>>();
  const auto& o = r["options"];
  const std::int64_t l0 = o["l0"].get<std::int64_t>(), mid = o["mid_context"].get<std::int64_t>(),
                     lng = o["long_context"].get<std::int64_t>();
  std::ostringstream md;
  const auto times = [l0](std::int64_t L) { return fixed(static_cast<double>(L) / static_cast<double>(l0), 2); };
  md << "# Progressive extension at toy scale: results\n\n"
     << "The model (" << o["pairs"] << " rotary pairs, trained at " << l0 << " tokens): search at " << mid
     << " (" << times(mid) << "x), fine-tune at " << mid << " with those factors, search at " << lng << " ("
     << times(lng) << "x) on the fine-tuned model, short factors at " << l0
     << "; PI-FT and YaRN-FT fine-tuned for the same steps on the same data. Held-out perplexity on "
     << t["held_out"].get<std::string>() << " of the token stream (" << t["windows"]
     << " window(s) per length; "
     << "fine-tuning saw "
     << (o.contains("finetune_tokens") ? std::to_string(o["finetune_tokens"].get<std::int64_t>()) +
                                             " tokens of its own (--finetune-range)"
                                       : std::string("[0, n/4)"))
     << ", the searches [n/4, n/2)). Lower is better; +- is one standard error of the "
        "log-perplexity over windows, shown as a factor.\n\n"
     << "Made by:\n\n```\n"
     << command << "\n```\n\nOptions (all in the result JSON): search P=" << o["search"]["population"]
     << " N1=" << o["search"]["mutations"] << " N2=" << o["search"]["crossovers"]
     << " k=" << o["search"]["top_k"] << " T=" << o["search"]["iterations"] << " seed=" << o["search"]["seed"]
     << ", " << o["search_windows"] << " search window(s); fine-tuning " << o["train"]["steps"] << " steps x "
     << o["train"]["batch"] << " x " << o["train"]["accumulation"] << " sequences, lr " << o["train"]["lr"]
     << ", data seed " << o["train"]["data_seed"] << "; short stage grid [1, " << o["short_lambda_max"]
     << "], seeds " << (o.value("short_seed", "") == "finetune" ? "ones and search1's factors" : "ones")
     << ", " << (o.contains("short_windows") ? o["short_windows"] : o["search_windows"]) << " window(s).\n\n";
  md << "| method | fine-tuned |";
  for (auto L : lengths) md << " " << L << " (" << fixed(static_cast<double>(L) / static_cast<double>(l0), 2) << "x) |";
  md << "\n|---|---|";
  for (std::size_t i = 0; i < lengths.size(); ++i) md << "---|";
  md << "\n";
  for (const auto& row : t["rows"]) {
    md << "| " << row["method"].get<std::string>() << " | " << (row["fine_tuned"].get<bool>() ? "yes" : "no") << " |";
    for (auto L : lengths) {
      const auto& c = row["perplexity"][std::to_string(L)];
      md << " " << fixed(c["perplexity"].get<double>(), 3) << " (x" << fixed(std::exp(c["log_se"].get<double>()), 3)
         << ") |";
    }
    md << "\n";
  }
  // The acceptance checks of issue 11 (points 1 and 2), computed from the table.
  const json& rows = t["rows"];
  const json* served = find_row(rows, "LongRoPE-FT served (short <= L0, search2 above)");
  const json* noft = find_row(rows, "LongRoPE");
  const json* none = find_row(rows, "none");
  md << "\n## Checks (issue 11, acceptance 1 and 2)\n\n";
  auto check = [&](const std::string& what, double a, double b) {
    md << "- " << what << ": " << fixed(a, 3) << " vs " << fixed(b, 3) << " -> **" << (a < b ? "yes" : "NO") << "**\n";
  };
  // "LongRoPE fine-tuned": the fine-tuned model with search1's factors at the
  // mid context (what it was tuned with), with search2's (its 16x search) above.
  const json* ft1 = find_row(rows, "LongRoPE-FT, search1 factors");
  const json* ft2 = find_row(rows, "LongRoPE-FT, search2 factors");
  if (ft1 && ft2 && noft) {
    for (auto L : {mid, lng}) {
      if (std::find(lengths.begin(), lengths.end(), L) == lengths.end()) continue;
      const json& mine = L == mid ? *ft1 : *ft2;
      const std::string who = L == mid ? "LongRoPE-FT (search1 factors)" : "LongRoPE-FT (search2 factors)";
      check(who + " below LongRoPE without fine-tuning at " + std::to_string(L), ppl(mine, L), ppl(*noft, L));
      for (const char* b : {"PI-FT", "YaRN-FT"}) {
        if (const json* x = find_row(rows, b)) check(who + " below " + std::string(b) + " at " + std::to_string(L), ppl(mine, L), ppl(*x, L));
      }
    }
    if (std::find(lengths.begin(), lengths.end(), lng) != lengths.end()) {
      for (const char* b : {"LongRoPE-FT model + PI", "LongRoPE-FT model + YaRN", "LongRoPE-FT, search1 factors"}) {
        if (const json* x = find_row(rows, b)) {
          check("on the fine-tuned model at " + std::to_string(lng) + ": search2 factors below " + std::string(b), ppl(*ft2, lng), ppl(*x, lng));
        }
      }
    }
  }
  if (served && none) {
    const double a = ppl(*served, l0), b = ppl(*none, l0);
    md << "- served model at " << l0 << " (short factors) within 2% of the base model: " << fixed(a, 3) << " vs "
       << fixed(b, 3) << " (" << (a / b - 1.0 >= 0 ? "+" : "") << fixed(100.0 * (a / b - 1.0), 2) << "%) -> **"
       << (a <= 1.02 * b ? "yes" : "NO") << "**\n";
    if (const json* longonly = find_row(rows, "LongRoPE-FT, search2 factors")) {
      md << "- the same model at " << l0 << " with the long factors (no readjustment): " << fixed(ppl(*longonly, l0), 3)
         << " (" << fixed(100.0 * (ppl(*longonly, l0) / b - 1.0), 2) << "%)\n";
    }
  }
  md << "\n## Stages\n\n| stage | context | model | factors (per pair) | n_hat | score | evaluations |\n|---|---|---|---|---|---|---|\n";
  for (const char* s : {"search1", "search2", "short", "search-base"}) {
    if (!r["stages"].contains(s)) continue;
    const auto& st = r["stages"][s];
    std::string f;
    for (double x : st["best"]["factors"]) f += (f.empty() ? "" : ", ") + fixed(x, 2);
    md << "| " << s << " | " << st["context"] << " | " << st["model"].get<std::string>() << " | " << f << " | "
       << st["best"]["n_hat"] << " | " << fixed(st["score"].get<double>(), 3) << " | " << st["evaluations"] << " |\n";
  }
  md << "\n| fine-tune | method | steps | first loss | final loss | seconds |\n|---|---|---|---|---|---|\n";
  for (const char* s : {"finetune", "pi-ft", "yarn-ft"}) {
    if (!r["stages"].contains(s)) continue;
    const auto& st = r["stages"][s];
    md << "| " << s << " | " << st["method"].get<std::string>() << " | " << st["steps"] << " | "
       << fixed(st["first_loss"].get<double>(), 4) << " | " << fixed(st["final_loss"].get<double>(), 4) << " | "
       << fixed(st["seconds"].get<double>(), 1) << " |\n";
  }
  md << "\n![perplexity against context](pipeline-perplexity.svg)\n\n![factors per stage](pipeline-factors.svg)\n\n"
     << "![fine-tuning loss](pipeline-loss.svg)\n";
  return md.str();
}

void render_svgs(const json& r, const std::filesystem::path& out) {
  const auto& t = r["table"];
  const auto lengths = t["lengths"].get<std::vector<std::int64_t>>();
  {
    svg_plot::panel p;
    p.title = "held-out perplexity per method and stage";
    p.xlabel = "context length (tokens)";
    p.ylabel = "perplexity (log scale)";
    p.logx = p.logy = true;
    for (auto L : lengths) {
      p.xticks.push_back(static_cast<double>(L));
      p.xticklabels.push_back(std::to_string(L));
    }
    std::size_t i = 0;
    for (const auto& row : t["rows"]) {
      svg_plot::series s{row["method"].get<std::string>(), color(i++), {}, {}, !row["fine_tuned"].get<bool>()};
      for (auto L : lengths) {
        s.x.push_back(static_cast<double>(L));
        s.y.push_back(ppl(row, L));
      }
      p.lines.push_back(s);
    }
    longrope::write_file_atomic((out / "pipeline-perplexity.svg").string(), svg_plot::render({p}, 760, 480));
  }
  {
    svg_plot::panel p;
    p.title = "rescale factors lambda_i per stage";
    p.xlabel = "RoPE pair i";
    p.ylabel = "lambda_i (log scale)";
    p.logy = true;
    std::size_t i = 0;
    for (const char* s : {"search1", "search2", "short", "search-base"}) {
      if (!r["stages"].contains(s)) continue;
      svg_plot::series ser{s, color(3 + 2 * i++), {}, r["stages"][s]["best"]["factors"].get<std::vector<double>>(), false};
      for (std::size_t k = 0; k < ser.y.size(); ++k) ser.x.push_back(static_cast<double>(k));
      p.lines.push_back(ser);
    }
    if (!p.lines.empty()) {
      for (std::size_t k = 0; k < p.lines.front().x.size(); ++k) {
        p.xticks.push_back(static_cast<double>(k));
        p.xticklabels.push_back(std::to_string(k));
      }
    }
    longrope::write_file_atomic((out / "pipeline-factors.svg").string(), svg_plot::render({p}, 560, 400));
  }
  {
    svg_plot::panel p;
    p.title = "fine-tuning loss at the mid context";
    p.xlabel = "step";
    p.ylabel = "training loss (nats/token)";
    std::size_t i = 0;
    for (const char* s : {"finetune", "pi-ft", "yarn-ft"}) {
      if (!r["stages"].contains(s)) continue;
      const auto y = r["stages"][s]["losses"].get<std::vector<double>>();
      svg_plot::series ser{std::string(s) + " (" + r["stages"][s]["method"].get<std::string>() + ")",
                           color(1 + 2 * i++), {}, y, false};
      for (std::size_t k = 0; k < y.size(); ++k) ser.x.push_back(static_cast<double>(k + 1));
      p.lines.push_back(ser);
    }
    longrope::write_file_atomic((out / "pipeline-loss.svg").string(), svg_plot::render({p}, 560, 400));
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    bool quick = false;
    std::string out = "progressive-out", work, result, model_dir, text;
    int threads = 0;
    std::string command = "build/dev/examples/progressive";
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      command += " " + a;
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
        command += std::string(" ") + argv[i + 1];
        return argv[++i];
      };
      if (a == "--help" || a == "-h") {
        std::fputs(kHelp, stdout);
        return 0;
      } else if (a == "--quick") {
        quick = true;
      } else if (a == "--out") {
        out = value();
      } else if (a == "--work") {
        work = value();
      } else if (a == "--result") {
        result = value();
      } else if (a == "--model-dir") {
        model_dir = value();
      } else if (a == "--text") {
        text = value();
      } else if (a == "--threads") {
        const std::string v = value();
        char* end = nullptr;
        const long t = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || t < 0 || t > 1024) throw std::invalid_argument("--threads: expected 0..1024");
        threads = static_cast<int>(t);
      } else {
        throw std::invalid_argument("unknown option '" + a + "' (see --help)");
      }
    }
    std::filesystem::create_directories(out);
    json r;
    if (!result.empty()) {
      r = json::parse(longrope::read_file(result));
      if (r.value("format", "") != "longrope-extend-1" || !r.contains("table")) {
        throw std::invalid_argument(result + ": not a finished `longrope extend` result (format longrope-extend-1 with a table)");
      }
      command = "longrope extend ... (options below; " + result + ")";
    } else {
      std::vector<std::string> log;
      const auto files = llama2c::find_stories260k(model_dir, log);
      if (!files) {
        for (const auto& l : log) std::fprintf(stderr, "progressive: %s\n", l.c_str());
        throw std::runtime_error("stories260K not found");
      }
#ifdef LLAMA2C_DEFAULT_TEXT
      if (text.empty()) text = LLAMA2C_DEFAULT_TEXT;
#endif
      if (text.empty()) throw std::invalid_argument("--text FILE needed (no default text)");
      const llama2c::checkpoint ck = llama2c::load_checkpoint(files->checkpoint);
      const llama2c::tokenizer tok = llama2c::tokenizer::load(files->tokenizer, ck.config.vocab_size);
      std::string body = longrope::read_file(text);
      llama2c::pipeline_options o;
      o.search.threads = threads;
      o.search.population = 8;
      o.search.mutations = o.search.crossovers = o.search.top_k = o.search.iterations = 4;
      o.train.steps = 30;
      o.train.batch = 1;
      o.train.lr = 5e-4;
      o.train.min_lr = 5e-5;
      o.train.warmup = 4;
      if (quick) {
        body = body.substr(0, 60000);  // ~20k tokens: 4 x 768 and more
        o.mid_context = 640;
        o.long_context = 768;
        o.search.population = 3;
        o.search.mutations = o.search.crossovers = 1;
        o.search.top_k = 2;
        o.search.iterations = 1;
        o.train.steps = 2;
        o.train.warmup = 1;
        o.eval_windows = 1;
      }
      auto stream = tok.encode(body, false, false);
      if (work.empty()) work = (std::filesystem::path(out) / "work").string();
      llama2c::pipeline p(ck, std::move(stream), work, o,
                          [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
      r = p.run();
    }
    const std::string page = render_page(r, command);
    longrope::write_file_atomic((std::filesystem::path(out) / "results-pipeline.md").string(), page);
    render_svgs(r, out);
    std::fputs(page.c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "progressive: error: %s\n", e.what());
    return 1;
  }
}
