// Coordinator side of the evaluator protocol (include/longrope/evaluator_protocol.hpp):
// transports that score a batch of requests on external evaluators and return
// one fitness per request, in request order, whatever order the answers come
// in. POSIX only (fork/exec, pipes, poll). Used by `longrope search
// --evaluator` and bench/bench_evaluators.cpp.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <longrope/evaluator_protocol.hpp>

namespace longrope_cli {

/// Set by the SIGINT/SIGTERM handler of install_interrupt_handlers(); the
/// transports check it while waiting and throw interrupted.
extern volatile std::sig_atomic_t g_interrupt_signal;
/// SIGINT and SIGTERM set g_interrupt_signal (no SA_RESTART, so waits return);
/// unblocks both, so one pending since before exec is delivered here.
void install_interrupt_handlers();

/// Thrown from a wait when a SIGINT/SIGTERM arrived (signal number inside).
struct interrupted : std::runtime_error {
  explicit interrupted(int sig) : std::runtime_error("interrupted by signal " + std::to_string(sig)), signal(sig) {}
  int signal;
};

/// Counters of what went wrong, for the log and the result.
struct transport_stats {
  std::int64_t evaluations = 0;   ///< answers folded in (fitness or error).
  std::int64_t restarts = 0;      ///< evaluator processes restarted.
  std::int64_t retries = 0;       ///< candidates re-queued after a failure.
  std::int64_t error_fitness = 0; ///< candidates given the error fitness (+inf).
};

/// A batch scorer: scores[i] for requests[i]; +inf for a candidate that could
/// not be scored (an {id, error} answer, or retries exhausted).
class evaluator_transport {
 public:
  virtual ~evaluator_transport() = default;
  virtual std::vector<double> evaluate(const std::vector<longrope::eval_request>& requests) = 0;
  const transport_stats& stats() const noexcept { return stats_; }

 protected:
  transport_stats stats_;
};

struct pool_options {
  std::string command;           ///< run as /bin/sh -c "exec COMMAND"
  int children = 1;              ///< N evaluator processes.
  double timeout_seconds = 0.0;  ///< per answer (hello included); 0: none.
  int max_retries = 2;           ///< failures of one candidate before it gets the error fitness.
  /// Consecutive failed starts (exit, garbage or timeout before or at hello)
  /// after which a child slot is given up; when every slot is given up the
  /// batch throws.
  int max_start_failures = 3;
  /// Requests a child may hold at once (answers come back in order): the
  /// pool keeps about 1 ms of work queued per child, measured from its answer
  /// rate, up to this many; 1: one request at a time (a round trip each).
  int max_pipeline = 64;
  std::function<void(const std::string&)> log;  ///< one line per event (default: stderr).
};

/// N child evaluators over pipes. A child gets one request at a time while
/// its answers take more than ~1 ms (real evaluators), several pipelined
/// (written in one go, up to max_pipeline) when they come faster; a free child
/// takes the next queued requests. A child that exits, answers
/// garbage (invalid JSON, a wrong id, a line over evaluator_max_line) or
/// exceeds the timeout is killed (SIGKILL), reaped and restarted, and its
/// request re-queued; after max_retries failures the request scores +inf.
/// SIGPIPE is ignored while a pool exists (a dead child gives EPIPE).
class process_pool final : public evaluator_transport {
 public:
  explicit process_pool(pool_options opt);
  ~process_pool() override;
  process_pool(const process_pool&) = delete;
  process_pool& operator=(const process_pool&) = delete;

  std::vector<double> evaluate(const std::vector<longrope::eval_request>& requests) override;

 private:
  struct child;
  void start(child& c);
  void stop(child& c, bool graceful);
  void fail(child& c, const std::string& why, std::vector<std::size_t>& queue, std::vector<int>& attempts,
            std::vector<double>& scores, std::vector<char>& done, std::size_t& remaining,
            const std::vector<longrope::eval_request>& requests);
  void log(const std::string& s) const;

  pool_options opt_;
  std::vector<child> children_;
};

}  // namespace longrope_cli
