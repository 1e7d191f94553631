// How every `longrope search` ends (the model search, --method longrope2, the
// external evaluators' search): the result JSON on stdout and in --out, or,
// when SIGINT/SIGTERM stopped it, the best so far and how to resume.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <longrope/io.hpp>

namespace longrope_cli {

/// Prints `out` (2-space JSON) on stdout and returns the exit status.
/// sig == 0: also writes it to out_path (atomically, with a final newline)
/// when given; returns 0. sig != 0: sets out["stop_reason"] = "interrupted",
/// prints "<who>: interrupted by signal <sig> after <evaluations> evaluations;
/// best so far <best>" plus "; resume with <resume_with><checkpoint>" (the
/// model searches: "the same command and --resume ", the external search,
/// whose options come from its checkpoint: "--resume "), or "; no
/// --checkpoint, progress lost", on stderr, leaves
/// out_path alone (a partial result is not a result file) and returns
/// 128 + sig. Throws longrope::error ("longrope.io") when out_path cannot be
/// written.
inline int finish_search(nlohmann::json& out, int sig, const std::string& who, long long evaluations,
                         const std::string& best, const std::optional<std::string>& checkpoint,
                         const std::string& resume_with, const std::optional<std::string>& out_path) {
  if (sig != 0) {
    out["stop_reason"] = "interrupted";
    std::printf("%s\n", out.dump(2).c_str());
    std::fprintf(stderr, "%s: interrupted by signal %d after %lld evaluations; best so far %s%s\n",
                 who.c_str(), sig, evaluations, best.c_str(),
                 checkpoint ? ("; resume with " + resume_with + *checkpoint).c_str()
                            : "; no --checkpoint, progress lost");
    return 128 + sig;
  }
  const std::string text = out.dump(2);
  std::printf("%s\n", text.c_str());
  if (out_path) longrope::write_file_atomic(*out_path, text + "\n");
  return 0;
}

}  // namespace longrope_cli
