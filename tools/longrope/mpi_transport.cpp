// The MPI transport of mpi_transport.hpp.
#include "mpi_transport.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#ifdef LONGROPE_HAVE_MPI
#include <mpi.h>
#endif

namespace longrope_cli {

#ifndef LONGROPE_HAVE_MPI

bool mpi_available() noexcept { return false; }

std::unique_ptr<evaluator_transport> make_mpi_transport(double) {
  throw std::invalid_argument("--mpi: this longrope was built without MPI (install libopenmpi-dev and reconfigure)");
}

int mpi_serve(const std::function<double(const longrope::eval_request&)>&, const std::string&) {
  throw std::invalid_argument("--mpi: this longrope was built without MPI (install libopenmpi-dev and reconfigure)");
}

#else

namespace {
constexpr int kTagRequest = 1;
constexpr int kTagReply = 2;
using clock_type = std::chrono::steady_clock;

void ensure_init() {
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) MPI_Init(nullptr, nullptr);
}

void send_line(const std::string& line, int dest, int tag) {
  // Without the trailing newline; MPI frames the message.
  const std::size_t n = !line.empty() && line.back() == '\n' ? line.size() - 1 : line.size();
  MPI_Send(line.data(), static_cast<int>(n), MPI_CHAR, dest, tag, MPI_COMM_WORLD);
}

// Receives a probed message; over-long ones are drained and reported as such.
std::string recv_line(const MPI_Status& st, bool& too_long) {
  int count = 0;
  MPI_Get_count(&st, MPI_CHAR, &count);
  too_long = count < 0 || static_cast<std::size_t>(count) >= longrope::evaluator_max_line;
  std::string s(too_long ? 0 : static_cast<std::size_t>(count), '\0');
  if (too_long) {
    std::vector<char> sink(static_cast<std::size_t>(std::max(count, 0)));
    MPI_Recv(sink.data(), count, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  } else {
    MPI_Recv(s.data(), count, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
  return s;
}

// Waits for a message (any source, `tag`), polling so that timeouts and
// signals are seen; returns false when `deadline` passed first.
bool wait_message(int source, int tag, MPI_Status& st, clock_type::time_point deadline) {
  int spins = 0;
  for (;;) {
    int flag = 0;
    MPI_Iprobe(source, tag, MPI_COMM_WORLD, &flag, &st);
    if (flag) return true;
    if (g_interrupt_signal != 0) throw interrupted(g_interrupt_signal);
    if (clock_type::now() >= deadline) return false;
    if (++spins > 2000) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

class mpi_transport final : public evaluator_transport {
 public:
  explicit mpi_transport(double timeout) : timeout_(timeout) {
    ensure_init();
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0) throw std::invalid_argument("--mpi: the coordinator must be rank 0 (mpirun -np 1 longrope search ... : ...)");
    if (size_ < 2) throw std::invalid_argument("--mpi: no evaluator ranks (run under mpirun with at least 2 ranks)");
    alive_.assign(static_cast<std::size_t>(size_), 1);
    alive_[0] = 0;
    last_answer_.assign(static_cast<std::size_t>(size_), clock_type::now());
    service_.assign(static_cast<std::size_t>(size_), std::numeric_limits<double>::infinity());
    const std::string hello = longrope::encode_hello_request();
    for (int r = 1; r < size_; ++r) send_line(hello, r, kTagRequest);
    for (int r = 1; r < size_; ++r) {
      MPI_Status st;
      if (!wait_message(r, kTagReply, st, deadline())) {
        throw longrope::error("longrope.evaluator", "MPI rank " + std::to_string(r) + ": no hello within --eval-timeout");
      }
      bool too_long = false;
      const std::string line = recv_line(st, too_long);
      if (too_long) throw longrope::error("longrope.protocol", "MPI rank " + std::to_string(r) + ": over-long hello");
      try {
        longrope::decode_hello_reply(line);
      } catch (const longrope::error& e) {
        throw longrope::error("longrope.protocol", "MPI rank " + std::to_string(r) + ": " + e.what());
      }
    }
  }

  ~mpi_transport() override {
    const std::string bye = longrope::encode_shutdown();
    for (int r = 1; r < size_; ++r) {
      if (alive_[static_cast<std::size_t>(r)]) send_line(bye, r, kTagRequest);
    }
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
  }

  // Requests are pipelined as in the process pool (evaluator_pool.cpp): a rank
  // holds up to window() of them, about 1 ms of its measured work (at most 64),
  // so a fast evaluator is not held up by one round trip per candidate, while a
  // slow one (the real case) gets one at a time and the ranks stay balanced.
  // MPI delivers one sender's messages in order, so a rank's answer is for the
  // oldest request it holds; each result lands in its request's slot, so the
  // scores do not depend on which rank answered when.
  std::vector<double> evaluate(const std::vector<longrope::eval_request>& requests) override {
    const std::size_t n = requests.size();
    std::vector<double> scores(n, std::numeric_limits<double>::infinity());
    std::vector<std::size_t> queue(n);
    for (std::size_t i = 0; i < n; ++i) queue[i] = i;
    std::size_t head = 0, remaining = n;
    const auto ranks = static_cast<std::size_t>(size_);
    std::vector<std::deque<std::size_t>> inflight(ranks);
    std::vector<clock_type::time_point> due(ranks, clock_type::time_point::max());
    while (remaining > 0) {
      bool any = false;
      for (std::size_t r = 1; r < ranks; ++r) {
        if (!alive_[r]) continue;
        any = true;
        if (inflight[r].empty() && head < queue.size()) last_answer_[r] = clock_type::now();
        const std::size_t w = window(service_[r]);
        while (inflight[r].size() < w && head < queue.size()) {
          inflight[r].push_back(queue[head++]);
          send_line(longrope::encode_request(requests[inflight[r].back()]), static_cast<int>(r), kTagRequest);
        }
        if (!inflight[r].empty() && due[r] == clock_type::time_point::max()) due[r] = deadline();
      }
      if (!any) throw longrope::error("longrope.evaluator", "every MPI evaluator rank timed out");
      auto first_due = clock_type::time_point::max();
      for (std::size_t r = 1; r < ranks; ++r) {
        if (!inflight[r].empty()) first_due = std::min(first_due, due[r]);
      }
      MPI_Status st;
      if (!wait_message(MPI_ANY_SOURCE, kTagReply, st, first_due)) {
        const auto now = clock_type::now();
        for (std::size_t r = 1; r < ranks; ++r) {
          if (!inflight[r].empty() && now >= due[r]) {
            log_line("MPI rank " + std::to_string(r) + ": no answer within --eval-timeout; dropping the rank");
            alive_[r] = 0;
            for (std::size_t t : inflight[r]) queue.push_back(t);
            stats_.retries += static_cast<std::int64_t>(inflight[r].size());
            inflight[r].clear();
            due[r] = clock_type::time_point::max();
          }
        }
        continue;
      }
      const auto src = static_cast<std::size_t>(st.MPI_SOURCE);
      bool too_long = false;
      const std::string line = recv_line(st, too_long);
      if (src >= ranks || !alive_[src] || inflight[src].empty()) continue;  // a late answer of a dropped rank
      const std::size_t t = inflight[src].front();
      inflight[src].pop_front();
      const auto now = clock_type::now();
      const double took = std::chrono::duration<double>(now - last_answer_[src]).count();
      service_[src] = std::isfinite(service_[src]) ? 0.75 * service_[src] + 0.25 * took : took;
      last_answer_[src] = now;
      due[src] = inflight[src].empty() ? clock_type::time_point::max() : deadline();
      try {
        if (too_long) throw longrope::error("longrope.protocol", "over-long answer");
        const auto rep = longrope::decode_reply(line);
        if (rep.id != requests[t].id) throw longrope::error("longrope.protocol", "answered another id");
        if (rep.fitness) {
          scores[t] = *rep.fitness;
        } else {
          log_line("candidate id " + std::to_string(rep.id) + ": evaluator error: " + rep.error + "; scored +inf");
          ++stats_.error_fitness;
        }
      } catch (const longrope::error& e) {
        log_line("MPI rank " + std::to_string(src) + ": garbage answer (" + e.what() + "); candidate scored +inf");
        ++stats_.error_fitness;
      }
      --remaining;
      ++stats_.evaluations;
    }
    return scores;
  }

 private:
  clock_type::time_point deadline() const {
    if (timeout_ <= 0) return clock_type::time_point::max();
    return clock_type::now() + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(timeout_));
  }
  static void log_line(const std::string& s) { std::fprintf(stderr, "evaluator: %s\n", s.c_str()); }
  // Requests to keep at a rank whose answers take `service` seconds each.
  static std::size_t window(double service) {
    constexpr double kQueuedWorkSeconds = 1e-3;
    constexpr std::size_t kMaxPipeline = 64;
    if (!(service < kQueuedWorkSeconds)) return 1;
    const double w = kQueuedWorkSeconds / std::max(service, 1e-9);
    return std::max<std::size_t>(1, std::min(kMaxPipeline, static_cast<std::size_t>(w)));
  }

  double timeout_;
  int size_ = 0;
  std::vector<char> alive_;
  std::vector<clock_type::time_point> last_answer_;  // per rank: its last answer, or when it got work while idle
  std::vector<double> service_;                      // per rank: moving average of the time per answer
};
}  // namespace

bool mpi_available() noexcept { return true; }

std::unique_ptr<evaluator_transport> make_mpi_transport(double timeout_seconds) {
  return std::make_unique<mpi_transport>(timeout_seconds);
}

int mpi_serve(const std::function<double(const longrope::eval_request&)>& f, const std::string& name) {
  ensure_init();
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    MPI_Finalize();
    throw std::invalid_argument("--mpi: an evaluator cannot be rank 0 (the coordinator is)");
  }
  for (;;) {
    MPI_Status st;
    MPI_Probe(0, kTagRequest, MPI_COMM_WORLD, &st);
    bool too_long = false;
    const std::string line = recv_line(st, too_long);
    longrope::eval_message m;
    try {
      if (too_long) throw longrope::error("longrope.protocol", "over-long request");
      m = longrope::decode_message(line);
    } catch (const longrope::error& e) {
      send_line(longrope::encode_reply({0, std::nullopt, e.what()}), 0, kTagReply);
      continue;
    }
    if (m.type == longrope::eval_message_type::shutdown) break;
    if (m.type == longrope::eval_message_type::hello) {
      send_line(longrope::encode_hello_reply(name), 0, kTagReply);
      continue;
    }
    longrope::eval_reply rep;
    rep.id = m.request.id;
    try {
      const double v = f(m.request);
      if (std::isfinite(v)) {
        rep.fitness = v;
      } else {
        rep.error = "fitness is not finite";
      }
    } catch (const std::exception& e) {
      rep.error = e.what();
    } catch (...) {
      send_line("this is not {json", 0, kTagReply);
      continue;
    }
    send_line(longrope::encode_reply(rep), 0, kTagReply);
  }
  MPI_Finalize();
  return 0;
}

#endif

}  // namespace longrope_cli
