// The `longrope` command-line tool: dispatch to subcommands, one line on stderr
// and a non-zero exit for any error.
#include <cstdio>
#include <exception>
#include <string>

#include <longrope/version.hpp>

#include "commands.hpp"

namespace longrope_cli {

namespace {
// JSON like every data command: {"name": "longrope", "version": "0.1.0", "major": 0, "minor": 1, "patch": 0}.
int cmd_version(const args&) {
  std::printf("{\n  \"name\": \"longrope\",\n  \"version\": \"%s\",\n  \"major\": %d,\n  \"minor\": %d,\n  \"patch\": %d\n}\n",
              LONGROPE_VERSION_STRING, LONGROPE_VERSION_MAJOR, LONGROPE_VERSION_MINOR, LONGROPE_VERSION_PATCH);
  return 0;
}
}  // namespace

const std::vector<command>& commands() {
  static const std::vector<command> all = {
      {"version", "print the library version (JSON)", cmd_version},
      {"freqs", "frequencies, rescale factors and attention factor of a config.json", cmd_freqs},
      {"table", "cos/sin table of a config.json at a list of positions", cmd_table},
      {"eval", "perplexity of a llama2.c model under a RoPE scaling method", cmd_eval},
      {"generate", "text from a llama2.c model (greedy or sampled), any scaling method", cmd_generate},
      {"search", "LongRoPE evolutionary search of rescale factors for a llama2.c model", cmd_search},
      {"passkey", "the paper's passkey retrieval task on a llama2.c model", cmd_passkey},
      {"finetune", "fine-tune a llama2.c model at a target context with a RoPE scaling", cmd_finetune},
      {"extend", "progressive extension: search, fine-tune, search again, short factors, baselines", cmd_extend},
      {"export", "searched factors into a config.json for transformers 4.x / 5.x or vLLM", cmd_export},
      {"gguf", "show a GGUF file's rope metadata, or set its LongRoPE factor tensors", cmd_gguf},
      {"evaluate", "an evaluator for search --evaluator (toy model or synthetic), stdin/stdout or MPI", cmd_evaluate},
      {"ask", "write a search's pending candidates as evaluator requests (state in a file)", cmd_ask},
      {"tell", "read evaluator replies, advance the search one generation", cmd_tell},
  };
  return all;
}

}  // namespace longrope_cli

namespace {
void usage(std::FILE* out) {
  std::fprintf(out, "usage: longrope <command> [options]\n\ncommands:\n");
  for (const auto& c : longrope_cli::commands()) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out, "\nrun 'longrope <command> --help' for a command's options\n");
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(stdout);
    return 0;
  }
  if (name == "--version") return longrope_cli::commands().front().run({});
  for (const auto& c : longrope_cli::commands()) {
    if (name == c.name) {
      try {
        return c.run(longrope_cli::args(argv + 2, argv + argc));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "longrope %s: error: %s\n", c.name, e.what());
        return 1;
      }
    }
  }
  std::fprintf(stderr, "longrope: error: unknown command '%s' (see 'longrope --help')\n", name.c_str());
  return 2;
}
