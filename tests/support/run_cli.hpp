// Running the built `longrope` binary from a test: stdout, stderr, exit code.
// Needs LONGROPE_CLI_PATH defined to the binary's path (tests/*.cmake do this).
#pragma once

#include <fcntl.h>
#include <signal.h>
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

/// base followed by extra: a command line with a few more flags.
inline std::vector<std::string> plus(std::vector<std::string> base, const std::vector<std::string>& extra) {
  base.insert(base.end(), extra.begin(), extra.end());
  return base;
}

/// True when s is exactly one line (one '\n', at its end): a CLI error before any progress.
inline bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

/// True when the error is one line: the last line of s, and the only one
/// holding "error:" (progress lines may come before it on stderr).
inline bool one_error_line(const std::string& s) {
  if (s.empty() || s.back() != '\n') return false;
  const std::size_t prev = s.rfind('\n', s.size() - 2);  // npos: s is one line
  const std::size_t last_line = prev == std::string::npos ? 0 : prev + 1;
  const std::size_t e = s.find("error:");
  return e != std::string::npos && e >= last_line && s.find("error:", e + 1) == std::string::npos;
}

/// Runs the CLI (args unquoted, no shell) with `sig` already pending, blocked
/// before exec: a CLI that installs its SIGINT/SIGTERM handlers unblocks it, so
/// a search stops after the first generation it scores, every time (no sleeps,
/// no race). stdout, stderr and the exit code as run_cli.
inline cli_result run_cli_interrupted(int sig, const std::vector<std::string>& args) {
  static int counter = 0;
  const auto dir = std::filesystem::temp_directory_path();
  const std::string tag = std::to_string(::getpid()) + "_sig" + std::to_string(++counter);
  const auto out = dir / ("longrope_test_cli_out_" + tag);
  const auto err = dir / ("longrope_test_cli_err_" + tag);
  std::vector<std::string> argv_s{LONGROPE_CLI_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    raise(sig);  // pending until the CLI unblocks it
    const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
    execv(argv_s.front().c_str(), argv.data());
    _exit(127);
  }
  cli_result r;
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) r.status = WEXITSTATUS(status);
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

}  // namespace longrope_test
