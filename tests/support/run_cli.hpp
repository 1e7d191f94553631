// Running the built `longrope` binary from a test: stdout, stderr, exit code.
// Needs LONGROPE_CLI_PATH defined to the binary's path (tests/*.cmake do this).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace longrope_test {

struct cli_result {
  int status = -1;  ///< exit code, -1 when the process did not exit normally
  std::string out, err;
};

/// s quoted for /bin/sh.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs the CLI with args (each quoted), capturing stdout, stderr and the exit
/// code through temporary files named after this process.
inline cli_result run_cli(const std::vector<std::string>& args) {
  static int counter = 0;
  const auto dir = std::filesystem::temp_directory_path();
  const std::string tag = std::to_string(::getpid()) + "_" + std::to_string(++counter);
  const auto out = dir / ("longrope_test_cli_out_" + tag);
  const auto err = dir / ("longrope_test_cli_err_" + tag);
  std::string cmd = shell_quote(LONGROPE_CLI_PATH);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " >" + shell_quote(out.string()) + " 2>" + shell_quote(err.string());
  cli_result r;
  const int st = std::system(cmd.c_str());
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

}  // namespace longrope_test
