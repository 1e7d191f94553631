// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search/driver.hpp
/// evolutionary_search, the elitist loop of the paper as an ask/tell state
/// machine, with run() (batch fitness) and run_parallel() (a std::thread pool
/// that lives for the whole run), checkpoint and resume.
/// Part of <longrope/search.hpp>.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "operators.hpp"
#include "options.hpp"
#include "parallel.hpp"
#include "seeds.hpp"
#include "space.hpp"
#include "strategy.hpp"
#include "surrogate.hpp"

namespace longrope {

/// The elitist loop of the paper, as a state machine:
///
///     pending = unique(seeds) + mutations of seeds, up to P     (generation 0)
///     loop:  ask() -> pending;  tell(scores)  -> cache, population = rank(elite + pending)
///            stop? (T generations, patience, budgets, cancel)
///            elite = top k of population
///            pending = N1 mutations (parent uniform in elite, each pair resampled w.p. p,
///                      n_hat w.p. n_hat_probability)
///                    + N2 crossovers (two distinct elite parents)
///            every child new: not in the cache, not already pending (else redrawn,
///            up to max_attempts; then the slot stays empty)
///
/// All random draws of a generation happen before it is handed out, and ranking
/// uses a total order, so the result depends only on options.seed and the
/// scores, never on threads or on the order evaluations finish in. A candidate
/// is never evaluated twice. Not thread-safe: drive one object from one thread
/// (the fitness may use any number of threads).
class evolutionary_search {
 public:
  /// Starts a search: validates space and options, draws generation 0 from the
  /// seeds (see make_seeds). Throws longrope::error ("longrope.search") on
  /// invalid options, no seeds, or an invalid seed candidate.
  /// O(P * pairs * max_attempts) worst case.
  evolutionary_search(const search_space& space, const search_options& options, const std::vector<candidate>& seeds);

  /// Convenience: seeds from make_seeds(space, target, seeds).
  evolutionary_search(const search_space& space, const search_options& options, const search_target& target,
                      const search_seeds& seeds = {});

  /// Resumes from a checkpoint (validated: every candidate must be valid in its
  /// space). Continuing gives exactly the result of the uninterrupted search.
  /// Throws longrope::error ("longrope.search") on an inconsistent checkpoint.
  explicit evolutionary_search(const search_checkpoint& checkpoint);

  /// The candidates to score now (empty once done()). Calling ask() again
  /// before tell() returns the same candidates.
  const std::vector<candidate>& ask() const noexcept { return st_.pending; }
  /// ask() converted to factor vectors for a fitness function.
  std::vector<search_point> ask_points() const;

  /// Scores for ask(), in order. NaN counts as +inf. Ranks, checks the
  /// stopping rules and draws the next generation. Throws longrope::error
  /// ("longrope.search") on a size mismatch or when done().
  void tell(const std::vector<double>& scores);

  /// True once a stopping rule fired (see status()).
  bool done() const noexcept { return st_.status != stop_reason::running; }
  stop_reason status() const noexcept { return st_.status; }
  /// Stops the search (status cancelled). The state stays resumable: a
  /// checkpoint taken before cancel() continues normally.
  void cancel() noexcept {
    if (!done()) st_.status = stop_reason::cancelled;
  }

  /// Evaluates with f until done(); progress(cb) after every generation.
  search_result run(const batch_fitness& f, const progress_callback& cb = {});
  /// Evaluates each candidate of a generation with f on options.threads
  /// threads (the calling thread included, the others a std::thread pool
  /// that lives for this call, so thread_local state in f is set up once per
  /// thread), then as run(). Candidates are handed out dynamically, so uneven
  /// evaluation costs balance. The first exception thrown by f is rethrown
  /// once the generation's other evaluations stop.
  search_result run_parallel(const point_fitness& f, const progress_callback& cb = {});

  /// The best candidate so far with its score (precondition: one generation told).
  const scored_candidate& best() const;
  /// Current progress (as passed to the callback).
  search_progress progress() const;
  /// The result so far (complete once done()).
  search_result result() const;
  /// The complete state, for checkpoint and resume. O(cache size * pairs).
  search_checkpoint checkpoint() const;

  const search_space& space() const noexcept { return space_; }
  const search_options& options() const noexcept { return opt_; }
  /// Every evaluated candidate and its score.
  const std::map<candidate, double>& cache() const noexcept { return cache_; }

 private:
  void generate_initial(const std::vector<candidate>& seeds);
  void generate_next();
  void generate_sampled();  // random, gaussian (search/strategy.hpp) and surrogate (search/surrogate.hpp)
  void set_pending(std::vector<candidate> v);
  bool seen(const candidate& c, const std::set<candidate>& fresh) const {
    return cache_.count(c) != 0 || fresh.count(c) != 0;
  }
  double elapsed() const;

  search_space space_;
  search_options opt_;
  search_rng rng_;
  search_checkpoint st_;  // population, pending, counters; cache lives in cache_ (st_.cache stays empty)
  std::map<candidate, double> cache_;
  std::chrono::steady_clock::time_point start_;
};

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

inline bool ranked_before(const scored_candidate& a, const scored_candidate& b) noexcept {
  if (a.score != b.score) return a.score < b.score;
  return a.c < b.c;
}

inline double normalize_score(double s) noexcept { return std::isnan(s) ? std::numeric_limits<double>::infinity() : s; }

}  // namespace detail

inline evolutionary_search::evolutionary_search(const search_space& space, const search_options& options,
                                                const std::vector<candidate>& seeds)
    : space_(space), opt_(options), rng_(options.seed), start_(std::chrono::steady_clock::now()) {
  opt_.validate();
  if (seeds.empty()) detail::search_fail("evolutionary_search: no seeds");
  for (const auto& s : seeds) space_.check(s, "evolutionary_search: seed");
  st_.space = space_.config();
  st_.options = opt_;
  generate_initial(seeds);
}

inline evolutionary_search::evolutionary_search(const search_space& space, const search_options& options,
                                                const search_target& target, const search_seeds& seeds)
    : evolutionary_search(space, options, make_seeds(space, target, seeds)) {}

inline evolutionary_search::evolutionary_search(const search_checkpoint& cp)
    : space_(cp.space), opt_(cp.options), start_(std::chrono::steady_clock::now()) {
  using detail::search_fail;
  opt_.validate();
  rng_.set_state(cp.rng);
  st_ = cp;
  st_.cache.clear();
  for (const auto& e : cp.cache) {
    if (!space_.is_valid(e.c)) search_fail("checkpoint.cache: a candidate is not valid in the space");
    if (!cache_.emplace(e.c, e.score).second) search_fail("checkpoint.cache: duplicate candidate");
  }
  for (const auto& e : cp.population) {
    auto it = cache_.find(e.c);
    if (it == cache_.end()) search_fail("checkpoint.population: candidate missing from the cache");
    if (!(it->second == e.score || (std::isnan(it->second) && std::isnan(e.score)))) {
      search_fail("checkpoint.population: score differs from the cache");
    }
  }
  if (!std::is_sorted(st_.population.begin(), st_.population.end(), detail::ranked_before)) {
    search_fail("checkpoint.population: not ranked");
  }
  {
    std::set<candidate> seen;
    for (const auto& c : cp.pending) {
      if (!space_.is_valid(c)) search_fail("checkpoint.pending: a candidate is not valid in the space");
      if (cache_.count(c) != 0) search_fail("checkpoint.pending: candidate already evaluated");
      if (!seen.insert(c).second) search_fail("checkpoint.pending: duplicate candidate");
    }
  }
  if (cp.iteration < 0 || cp.evaluations < 0 || cp.stale_generations < 0) {
    search_fail("checkpoint: negative counter");
  }
  if (static_cast<std::int64_t>(cache_.size()) != cp.evaluations) {
    search_fail("checkpoint.evaluations: " + std::to_string(cp.evaluations) + " but the cache holds " +
                std::to_string(cache_.size()) + " candidates");
  }
  if (!cp.initial_done && !cp.population.empty()) search_fail("checkpoint: population before the initial generation");
  // A resumed search continues: a cancelled status (the callback asked to
  // stop) is lifted; a search stopped by a rule stays done.
  if (st_.status == stop_reason::cancelled) st_.status = stop_reason::running;
  if (st_.status == stop_reason::running && st_.pending.empty()) {
    search_fail("checkpoint: a running search must have pending candidates");
  }
}

inline double evolutionary_search::elapsed() const {
  return st_.elapsed_seconds +
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

inline void evolutionary_search::set_pending(std::vector<candidate> v) {
  if (opt_.max_evaluations > 0) {
    const std::int64_t left = opt_.max_evaluations - st_.evaluations;
    if (left <= 0) {
      v.clear();
      st_.status = stop_reason::evaluation_budget;
    } else if (static_cast<std::int64_t>(v.size()) > left) {
      v.resize(static_cast<std::size_t>(left));
    }
  }
  if (v.empty() && st_.status == stop_reason::running) st_.status = stop_reason::exhausted;
  st_.pending = std::move(v);
}

inline void evolutionary_search::generate_initial(const std::vector<candidate>& seeds) {
  std::vector<candidate> gen;
  std::set<candidate> fresh;
  for (const auto& s : seeds) {
    if (static_cast<int>(gen.size()) >= opt_.population) break;
    if (fresh.insert(s).second) gen.push_back(s);
  }
  const std::size_t n_seeds = gen.size();
  const auto target = static_cast<std::size_t>(opt_.population);
  // Fill with mutations of the seeds; max_attempts draws per empty slot.
  const std::size_t slots = target > gen.size() ? target - gen.size() : 0;
  for (std::size_t slot = 0; slot < slots; ++slot) {
    for (int attempt = 0; attempt < opt_.max_attempts; ++attempt) {
      candidate child;
      if (opt_.strategy == search_strategy::random) {  // random search: uniform draws, not mutations
        child = detail::random_candidate(space_, rng_);
      } else {
        const auto& parent = gen[static_cast<std::size_t>(uniform_index(rng_, n_seeds))];
        child = mutate(space_, parent, opt_.mutation_probability, rng_, opt_.mutation_radius, opt_.mutation);
        mutate_n_hat(space_, child, opt_.n_hat_probability, rng_);
      }
      if (fresh.insert(child).second) {
        gen.push_back(std::move(child));
        break;
      }
    }
  }
  set_pending(std::move(gen));
}

inline void evolutionary_search::generate_next() {
  if (opt_.strategy != search_strategy::evolution) {
    generate_sampled();
    return;
  }
  const std::size_t k = std::min(static_cast<std::size_t>(opt_.top_k), st_.population.size());
  std::vector<candidate> gen;
  std::set<candidate> fresh;
  for (int j = 0; j < opt_.mutations; ++j) {
    for (int attempt = 0; attempt < opt_.max_attempts; ++attempt) {
      const auto& parent = st_.population[static_cast<std::size_t>(uniform_index(rng_, k))].c;
      candidate child = mutate(space_, parent, opt_.mutation_probability, rng_, opt_.mutation_radius, opt_.mutation);
      mutate_n_hat(space_, child, opt_.n_hat_probability, rng_);
      if (!seen(child, fresh)) {
        fresh.insert(child);
        gen.push_back(std::move(child));
        break;
      }
    }
  }
  if (k >= 2) {
    for (int j = 0; j < opt_.crossovers; ++j) {
      for (int attempt = 0; attempt < opt_.max_attempts; ++attempt) {
        const auto ia = static_cast<std::size_t>(uniform_index(rng_, k));
        auto ib = static_cast<std::size_t>(uniform_index(rng_, k - 1));
        if (ib >= ia) ++ib;  // two distinct parents
        auto child = crossover(space_, st_.population[ia].c, st_.population[ib].c, rng_, opt_.crossover);
        if (child && !seen(*child, fresh)) {
          fresh.insert(*child);
          gen.push_back(std::move(*child));
          break;
        }
      }
    }
  }
  set_pending(std::move(gen));
}

inline void evolutionary_search::generate_sampled() {
  std::vector<const candidate*> elite;
  const std::size_t k = std::min(static_cast<std::size_t>(opt_.top_k), st_.population.size());
  for (std::size_t i = 0; i < k; ++i) elite.push_back(&st_.population[i].c);
  if (opt_.strategy == search_strategy::surrogate) {
    set_pending(detail::surrogate_generation(space_, elite, cache_, opt_.mutations + opt_.crossovers, opt_.max_attempts,
                                             opt_.n_hat_probability, rng_,
                                             [this](const candidate& c) { return cache_.count(c) != 0; }));
    return;
  }
  set_pending(detail::sampled_generation(space_, opt_.strategy, elite, opt_.mutations + opt_.crossovers,
                                         opt_.max_attempts, opt_.n_hat_probability, rng_,
                                         [this](const candidate& c) { return cache_.count(c) != 0; }));
}

inline std::vector<search_point> evolutionary_search::ask_points() const {
  std::vector<search_point> pts;
  pts.reserve(st_.pending.size());
  for (const auto& c : st_.pending) pts.push_back(space_.point(c));
  return pts;
}

inline void evolutionary_search::tell(const std::vector<double>& scores) {
  if (done()) detail::search_fail(std::string("tell: the search is done (") + to_string(st_.status) + ")");
  if (scores.size() != st_.pending.size()) {
    detail::search_fail("tell: expected " + std::to_string(st_.pending.size()) + " scores (one per ask()), got " +
                        std::to_string(scores.size()));
  }
  const std::size_t k = std::min(static_cast<std::size_t>(opt_.top_k), st_.population.size());
  std::vector<scored_candidate> next(st_.population.begin(), st_.population.begin() + static_cast<std::ptrdiff_t>(k));
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const double s = detail::normalize_score(scores[i]);
    cache_.emplace(st_.pending[i], s);
    next.push_back({std::move(st_.pending[i]), s});
  }
  st_.evaluations += static_cast<std::int64_t>(scores.size());
  st_.generation_evaluations = static_cast<std::int64_t>(scores.size());
  st_.pending.clear();
  std::sort(next.begin(), next.end(), detail::ranked_before);
  st_.population = std::move(next);

  const double best = st_.population.front().score;
  if (!st_.initial_done) {
    st_.best_score = best;
  } else {
    ++st_.iteration;
    if (best < st_.best_score - opt_.tolerance) {
      st_.best_score = best;
      st_.stale_generations = 0;
    } else {
      ++st_.stale_generations;
    }
  }
  st_.initial_done = true;
  const double now = elapsed();
  st_.elapsed_seconds = now;
  start_ = std::chrono::steady_clock::now();

  if (st_.iteration >= opt_.iterations) {
    st_.status = stop_reason::iterations;
  } else if (opt_.patience > 0 && st_.stale_generations >= opt_.patience) {
    st_.status = stop_reason::converged;
  } else if (opt_.max_evaluations > 0 && st_.evaluations >= opt_.max_evaluations) {
    st_.status = stop_reason::evaluation_budget;
  } else if (opt_.max_seconds > 0.0 && now >= opt_.max_seconds) {
    st_.status = stop_reason::time_budget;
  } else {
    generate_next();
  }
}

inline const scored_candidate& evolutionary_search::best() const {
  if (st_.population.empty()) detail::search_fail("best: no generation has been scored yet");
  return st_.population.front();
}

inline search_progress evolutionary_search::progress() const {
  search_progress p;
  p.iteration = st_.iteration;
  p.iterations = opt_.iterations;
  p.best_score = st_.population.empty() ? std::numeric_limits<double>::infinity() : st_.population.front().score;
  p.evaluations = st_.evaluations;
  p.elapsed_seconds = elapsed();
  p.status = st_.status;
  p.generation_evaluations = st_.generation_evaluations;
  if (done()) {
    p.seconds_left = 0.0;
  } else if (st_.evaluations == 0) {
    p.seconds_left = std::numeric_limits<double>::quiet_NaN();
  } else {
    // Mean time per evaluation (the fitness dominates) times the evaluations
    // the remaining generations will need at most, capped by the budgets.
    const double per_eval = st_.elapsed_seconds / static_cast<double>(st_.evaluations);
    double evals_left = static_cast<double>(opt_.iterations - st_.iteration) *
                        static_cast<double>(opt_.mutations + opt_.crossovers);
    if (opt_.max_evaluations > 0) {
      evals_left = std::min(evals_left, static_cast<double>(opt_.max_evaluations - st_.evaluations));
    }
    double left = per_eval * std::max(0.0, evals_left);
    if (opt_.max_seconds > 0.0) left = std::min(left, std::max(0.0, opt_.max_seconds - p.elapsed_seconds));
    p.seconds_left = left;
  }
  return p;
}

inline search_result evolutionary_search::result() const {
  search_result r;
  if (!st_.population.empty()) {
    r.best_candidate = st_.population.front().c;
    r.best_score = st_.population.front().score;
    r.best = space_.point(r.best_candidate);
  } else {
    r.best_score = std::numeric_limits<double>::infinity();
  }
  r.population = st_.population;
  r.evaluations = st_.evaluations;
  r.iterations = st_.iteration;
  r.elapsed_seconds = elapsed();
  r.reason = st_.status;
  return r;
}

inline search_checkpoint evolutionary_search::checkpoint() const {
  search_checkpoint cp = st_;
  cp.rng = rng_.state();
  cp.elapsed_seconds = elapsed();
  cp.cache.reserve(cache_.size());
  for (const auto& e : cache_) cp.cache.push_back({e.first, e.second});
  return cp;
}

inline search_result evolutionary_search::run(const batch_fitness& f, const progress_callback& cb) {
  if (!f) detail::search_fail("run: empty fitness function");
  while (!done()) {
    const std::vector<double> scores = f(ask_points());
    tell(scores);
    if (cb && !cb(progress())) cancel();
  }
  return result();
}

inline search_result evolutionary_search::run_parallel(const point_fitness& f, const progress_callback& cb) {
  if (!f) detail::search_fail("run_parallel: empty fitness function");
  // One pool for the whole run: per-thread state in f is set up once.
  const unsigned n = detail::search_threads(opt_.threads, static_cast<std::size_t>(
                                                              std::max({opt_.population, opt_.mutations + opt_.crossovers, 1})));
  std::optional<detail::search_pool> pool;
  if (n > 1) pool.emplace(n);
  detail::search_pool* p = pool ? &*pool : nullptr;
  return run([&](const std::vector<search_point>& pts) { return detail::evaluate_on(p, f, pts); }, cb);
}

}  // namespace longrope
