// The process pool of evaluator_pool.hpp: fork/exec, non-blocking pipes, one
// poll loop, no threads.
#include "evaluator_pool.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <deque>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>

namespace longrope_cli {

volatile std::sig_atomic_t g_interrupt_signal = 0;

namespace {
extern "C" void on_interrupt(int sig) { g_interrupt_signal = sig; }

using clock_type = std::chrono::steady_clock;

void set_nonblocking(int fd) {
  const int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
}

constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: poll/sleep return EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A parent may have started us with them blocked (then they would never
  // arrive); one already pending is delivered now, to the handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

enum class child_state { dead, greeting, idle, busy, given_up };

// Requests are pipelined: a child holds up to window() of them (at most
// pool_options::max_pipeline; answers come back in order, docs/evaluators.md),
// so a fast evaluator is not held up by a round trip per candidate, while a slow one (the real case: seconds to
// minutes per candidate) gets one at a time and the children stay balanced.
constexpr double kQueuedWorkSeconds = 1e-3;  // about this much work queued per child

struct process_pool::child {
  int slot = 0;
  pid_t pid = -1;
  int to_child = -1, from_child = -1;
  child_state state = child_state::dead;
  std::string inbuf, outbuf;
  std::deque<std::size_t> inflight;  // request indices sent, oldest (being evaluated) first
  clock_type::time_point deadline{};
  clock_type::time_point last_answer{};
  double service_seconds = std::numeric_limits<double>::infinity();  // moving average per answer
  int start_failures = 0;
  std::string name;

  std::size_t window(std::size_t cap) const {
    if (!(service_seconds < kQueuedWorkSeconds)) return 1;
    const double w = kQueuedWorkSeconds / std::max(service_seconds, 1e-9);
    return std::max<std::size_t>(1, std::min(cap, static_cast<std::size_t>(w)));
  }
};

process_pool::process_pool(pool_options opt) : opt_(std::move(opt)) {
  if (opt_.children < 1) throw std::invalid_argument("--evaluators: must be >= 1");
  if (opt_.command.empty()) throw std::invalid_argument("--evaluator: empty command");
  std::signal(SIGPIPE, SIG_IGN);
  children_.resize(static_cast<std::size_t>(opt_.children));
  for (std::size_t i = 0; i < children_.size(); ++i) children_[i].slot = static_cast<int>(i);
}

process_pool::~process_pool() {
  for (auto& c : children_) stop(c, true);
}

void process_pool::log(const std::string& s) const {
  if (opt_.log) {
    opt_.log(s);
  } else {
    std::fprintf(stderr, "evaluator: %s\n", s.c_str());
  }
}

void process_pool::start(child& c) {
  int in[2], out[2];
  if (pipe(in) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  if (pipe(out) != 0) {
    close(in[0]);
    close(in[1]);
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  const std::string sh_cmd = "exec " + opt_.command;
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Child: stdin from in[0], stdout to out[1]; stderr stays the coordinator's.
    dup2(in[0], 0);
    dup2(out[1], 1);
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    std::signal(SIGPIPE, SIG_DFL);
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    // Which slot this is (0..N-1), e.g. to pick a GPU: stable across restarts.
    setenv("LONGROPE_EVALUATOR_INDEX", std::to_string(c.slot).c_str(), 1);
    execl("/bin/sh", "sh", "-c", sh_cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  c.pid = pid;
  c.to_child = in[1];
  c.from_child = out[0];
  set_nonblocking(c.to_child);
  set_nonblocking(c.from_child);
  c.inbuf.clear();
  c.inflight.clear();
  c.service_seconds = std::numeric_limits<double>::infinity();
  c.outbuf = longrope::encode_hello_request();
  c.state = child_state::greeting;
  c.deadline = opt_.timeout_seconds > 0
                   ? clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>(opt_.timeout_seconds))
                   : clock_type::time_point::max();
}

void process_pool::stop(child& c, bool graceful) {
  if (c.pid <= 0) return;
  // Only an idle child gets a grace period: a busy or greeting one may be
  // stuck in a long evaluation or in loading its model.
  graceful = graceful && c.state == child_state::idle;
  if (graceful && c.to_child >= 0) {
    // Best effort: the shutdown line, then EOF on stdin; SIGKILL after 2 s.
    const std::string bye = longrope::encode_shutdown();
    [[maybe_unused]] const auto n = write(c.to_child, bye.data(), bye.size());
  }
  if (c.to_child >= 0) close(c.to_child);
  if (c.from_child >= 0) close(c.from_child);
  c.to_child = c.from_child = -1;
  int status = 0;
  bool reaped = false;
  if (graceful) {
    for (int i = 0; i < 200 && !reaped; ++i) {
      const pid_t r = waitpid(c.pid, &status, WNOHANG);
      if (r == c.pid || r < 0) reaped = true;
      else usleep(10000);
    }
  }
  if (!reaped) {
    kill(c.pid, SIGKILL);
    while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  c.pid = -1;
  if (c.state != child_state::given_up) c.state = child_state::dead;
}

void process_pool::fail(child& c, const std::string& why, std::vector<std::size_t>& queue, std::vector<int>& attempts,
                        std::vector<double>& scores, std::vector<char>& done, std::size_t& remaining,
                        const std::vector<longrope::eval_request>& requests) {
  const bool was_busy = c.state == child_state::busy && !c.inflight.empty();
  const std::size_t task = was_busy ? c.inflight.front() : 0;
  // The oldest request is the one it was evaluating; the others it had not
  // started go back to the queue without counting as a failed attempt.
  for (std::size_t i = 1; i < c.inflight.size(); ++i) queue.push_back(c.inflight[i]);
  c.inflight.clear();
  log("child " + std::to_string(c.slot) + " (pid " + std::to_string(c.pid) + "): " + why + "; restarting");
  stop(c, false);
  ++stats_.restarts;
  if (was_busy) {
    c.start_failures = 0;
    if (++attempts[task] > opt_.max_retries) {
      log("candidate id " + std::to_string(requests[task].id) + ": " + std::to_string(attempts[task]) +
          " failed attempts, scored +inf");
      scores[task] = kInf;
      done[task] = 1;
      --remaining;
      ++stats_.error_fitness;
    } else {
      ++stats_.retries;
      queue.push_back(task);  // re-queued (order of service never changes the result)
    }
  } else if (++c.start_failures >= opt_.max_start_failures) {
    log("child " + std::to_string(c.slot) + ": " + std::to_string(c.start_failures) +
        " failed starts in a row, giving this slot up");
    c.state = child_state::given_up;
  }
}

std::vector<double> process_pool::evaluate(const std::vector<longrope::eval_request>& requests) {
  const std::size_t n = requests.size();
  std::vector<double> scores(n, kInf);
  std::vector<char> done(n, 0);
  std::vector<int> attempts(n, 0);
  std::vector<std::size_t> queue;  // used as a FIFO via `head`
  queue.reserve(n);
  for (std::size_t i = 0; i < n; ++i) queue.push_back(i);
  std::size_t head = 0, remaining = n;
  std::vector<pollfd> fds;
  std::vector<child*> owner;
  while (remaining > 0) {
    if (g_interrupt_signal != 0) throw interrupted(g_interrupt_signal);
    // Start dead children; hand queued requests to idle ones.
    bool any_alive = false;
    for (auto& c : children_) {
      if (c.state == child_state::dead) start(c);
      if ((c.state == child_state::idle || c.state == child_state::busy) && head < queue.size()) {
        const std::size_t w = c.window(static_cast<std::size_t>(std::clamp(opt_.max_pipeline, 1, 1 << 20)));
        if (c.inflight.empty() && head < queue.size()) {
          c.deadline = opt_.timeout_seconds > 0
                           ? clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                                     std::chrono::duration<double>(opt_.timeout_seconds))
                           : clock_type::time_point::max();
          c.last_answer = clock_type::now();
        }
        while (c.inflight.size() < w && head < queue.size()) {
          c.inflight.push_back(queue[head++]);
          c.outbuf += longrope::encode_request(requests[c.inflight.back()]);  // one write for them all
        }
        c.state = child_state::busy;
      }
      if (c.state != child_state::given_up) any_alive = true;
    }
    if (!any_alive) {
      throw longrope::error("longrope.evaluator", "every evaluator slot failed to start " +
                                                      std::to_string(opt_.max_start_failures) +
                                                      " times in a row (command: " + opt_.command + ")");
    }
    fds.clear();
    owner.clear();
    auto now = clock_type::now();
    int wait_ms = 100;  // bounded, so a signal between the check and poll is seen soon
    for (auto& c : children_) {
      if (c.pid <= 0) continue;
      short ev = POLLIN;
      if (!c.outbuf.empty()) ev |= POLLOUT;
      fds.push_back({c.from_child, ev, 0});
      owner.push_back(&c);
      if (c.state == child_state::busy || c.state == child_state::greeting) {
        if (c.deadline != clock_type::time_point::max()) {
          const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now).count();
          wait_ms = static_cast<int>(std::max<long long>(0, std::min<long long>(wait_ms, ms + 1)));
        }
      }
    }
    // POLLOUT is polled on the write end: add those separately.
    const std::size_t nread = fds.size();
    for (std::size_t i = 0; i < nread; ++i) {
      if (!owner[i]->outbuf.empty()) {
        fds.push_back({owner[i]->to_child, POLLOUT, 0});
        owner.push_back(owner[i]);
      }
      fds[i].events = POLLIN;
    }
    const int r = poll(fds.data(), static_cast<nfds_t>(fds.size()), wait_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
    }
    // Writes first (they never block: non-blocking fds, the rest stays buffered).
    for (std::size_t i = nread; i < fds.size(); ++i) {
      child& c = *owner[i];
      if (c.pid <= 0 || c.to_child != fds[i].fd || fds[i].revents == 0) continue;
      const ssize_t w = write(c.to_child, c.outbuf.data(), c.outbuf.size());
      if (w > 0) {
        c.outbuf.erase(0, static_cast<std::size_t>(w));
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        fail(c, std::string("write failed (") + std::strerror(errno) + ")", queue, attempts, scores, done, remaining,
             requests);
      }
    }
    char buf[65536];
    for (std::size_t i = 0; i < nread; ++i) {
      child& c = *owner[i];
      if (c.pid <= 0 || c.from_child != fds[i].fd || fds[i].revents == 0) continue;
      const ssize_t got = read(c.from_child, buf, sizeof buf);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        fail(c, "exited or closed its stdout", queue, attempts, scores, done, remaining, requests);
        continue;
      }
      if (got < 0) continue;
      c.inbuf.append(buf, static_cast<std::size_t>(got));
      std::size_t pos;
      while (c.pid > 0 && (pos = c.inbuf.find('\n')) != std::string::npos) {
        std::string line = c.inbuf.substr(0, pos);
        c.inbuf.erase(0, pos + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        try {
          if (c.state == child_state::greeting) {
            c.name = longrope::decode_hello_reply(line);
            c.state = child_state::idle;
            c.start_failures = 0;
            c.deadline = clock_type::time_point::max();
          } else if (c.state == child_state::busy && !c.inflight.empty()) {
            const std::size_t task = c.inflight.front();
            const auto rep = longrope::decode_reply(line);
            if (rep.id != requests[task].id) {
              throw longrope::error("longrope.protocol", "answered id " + std::to_string(rep.id) + ", expected " +
                                                             std::to_string(requests[task].id));
            }
            c.inflight.pop_front();
            if (rep.fitness) {
              scores[task] = *rep.fitness;
            } else {
              log("candidate id " + std::to_string(rep.id) + ": evaluator error: " + rep.error + "; scored +inf");
              scores[task] = kInf;
              ++stats_.error_fitness;
            }
            done[task] = 1;
            --remaining;
            ++stats_.evaluations;
            const auto t = clock_type::now();
            const double took = std::chrono::duration<double>(t - c.last_answer).count();
            c.service_seconds = std::isfinite(c.service_seconds) ? 0.75 * c.service_seconds + 0.25 * took : took;
            c.last_answer = t;
            if (c.inflight.empty()) {
              c.state = child_state::idle;
              c.deadline = clock_type::time_point::max();
            } else if (opt_.timeout_seconds > 0) {  // the next one's time starts now
              c.deadline = t + std::chrono::duration_cast<clock_type::duration>(
                                   std::chrono::duration<double>(opt_.timeout_seconds));
            }
          } else {
            throw longrope::error("longrope.protocol", "an answer nobody asked for");
          }
        } catch (const longrope::error& e) {
          fail(c, std::string("garbage answer: ") + e.what(), queue, attempts, scores, done, remaining, requests);
        }
      }
      if (c.pid > 0 && c.inbuf.size() >= longrope::evaluator_max_line) {
        fail(c, "answer line longer than " + std::to_string(longrope::evaluator_max_line) + " bytes", queue, attempts,
             scores, done, remaining, requests);
      }
    }
    now = clock_type::now();
    for (auto& c : children_) {
      if (c.pid > 0 && (c.state == child_state::busy || c.state == child_state::greeting) && now >= c.deadline) {
        fail(c, "no answer within --eval-timeout " + std::to_string(opt_.timeout_seconds) + " s", queue, attempts,
             scores, done, remaining, requests);
      }
    }
  }
  return scores;
}

}  // namespace longrope_cli
