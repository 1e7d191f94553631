// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once
#if !defined(LONGROPE_INTERNAL_INCLUDE)
#error "longrope/detail/search_pool.hpp is internal: include <longrope/search.hpp> or <longrope/longrope.hpp>"
#endif

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace longrope::detail {

// A fixed set of worker threads that lives for a whole search, so a fitness
// keeping per-thread state (thread_local scratch buffers, a model replica per
// thread) sets it up once, not once per generation. run() hands out indices
// dynamically (an atomic counter): evaluations of uneven cost balance, and the
// result cannot depend on who ran what because each index writes its own slot.
class search_pool {
 public:
  // `threads` counts the calling thread, which works too: threads - 1 are spawned.
  explicit search_pool(unsigned threads) {
    workers_.reserve(threads > 1 ? threads - 1 : 0);
    for (unsigned t = 1; t < threads; ++t) workers_.emplace_back([this] { worker_loop(); });
  }
  search_pool(const search_pool&) = delete;
  search_pool& operator=(const search_pool&) = delete;
  ~search_pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  // fn(i) for every i in [0, n), on all threads; returns when all are done and
  // rethrows the first exception (the remaining indices are skipped).
  void run(std::size_t n, const std::function<void(std::size_t)>& fn) {
    {
      std::lock_guard<std::mutex> lock(m_);
      job_ = &fn;
      n_ = n;
      next_ = 0;
      failed_ = false;
      error_ = nullptr;
      busy_ = workers_.size();
      ++round_;
    }
    wake_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(m_);
    idle_.wait(lock, [this] { return busy_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void work() {
    for (;;) {
      const std::size_t i = next_.fetch_add(1);
      if (i >= n_ || failed_.load()) return;
      try {
        (*job_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m_);
        if (!error_) error_ = std::current_exception();
        failed_ = true;
      }
    }
  }

  void worker_loop() {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m_);
        wake_.wait(lock, [&] { return stop_ || round_ != seen; });
        if (stop_) return;
        seen = round_;
      }
      work();
      {
        std::lock_guard<std::mutex> lock(m_);
        --busy_;
      }
      idle_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable wake_, idle_;
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t n_ = 0;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
  std::size_t busy_ = 0;
  std::uint64_t round_ = 0;
  bool stop_ = false;
};

}  // namespace longrope::detail
