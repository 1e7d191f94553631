// Subcommands of the `longrope` CLI. Each lives in its own cmd_*.cpp and
// returns the process exit code; errors are reported as one line on stderr by
// main() (throw longrope::error or std::exception).
#pragma once
#include <string>
#include <vector>

namespace longrope_cli {

using args = std::vector<std::string>;  // the arguments after the subcommand name

struct command {
  const char* name;
  const char* summary;
  int (*run)(const args&);
};

// Numerics (cmd_freqs.cpp, cmd_table.cpp).
int cmd_freqs(const args& a);
int cmd_table(const args& a);

// The toy llama2.c model (cmd_eval.cpp, cmd_generate.cpp, cmd_search.cpp, cmd_passkey.cpp).
int cmd_eval(const args& a);
int cmd_generate(const args& a);
int cmd_search(const args& a);
int cmd_passkey(const args& a);
// Fine-tuning the toy model (cmd_finetune.cpp).
int cmd_finetune(const args& a);
// The progressive pipeline (cmd_extend.cpp).
int cmd_extend(const args& a);

// Interop (cmd_export.cpp, cmd_gguf.cpp).
int cmd_export(const args& a);
int cmd_gguf(const args& a);

// External evaluators (cmd_external.cpp, cmd_evaluate.cpp): `search --evaluator/--mpi/--config/--resume`,
// ask, tell, evaluate.
bool wants_external_search(const args& a);
int cmd_search_external(const args& a);
int cmd_ask(const args& a);
int cmd_tell(const args& a);
int cmd_evaluate(const args& a);

/// Every subcommand, in the order `longrope --help` lists them.
const std::vector<command>& commands();

}  // namespace longrope_cli
