// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file search.hpp
/// The LongRoPE evolutionary search (Ding et al. 2024, Algorithm 1): find the
/// per-pair rescale factors lambda_i (and the start-token cutoff n_hat) that
/// minimise a caller-supplied fitness, typically a model's perplexity at the
/// target length L = s * L0. See docs/search.md for the algorithm and a
/// complete example.
///
/// Pieces, from the bottom up:
///   search_rng, random_u64, uniform_index, bernoulli
///       a serialisable engine and distributions whose output is fixed by this
///       header (std:: distributions are implementation-defined).
///   search_space
///       the grid lambda_min + k * step (k = grid index), the monotone
///       constraint lambda_i <= lambda_{i+1}, the n_hat value set and the
///       frozen pairs (LongRoPE2). Candidates are integer grid indices, so
///       equality and caching are exact.
///   mutate, mutate_n_hat, crossover, repair, snap
///       the genetic operators, templated on any UniformRandomBitGenerator.
///       Every one returns a candidate on the grid that satisfies the constraint.
///   baseline_factors, make_seeds
///       the PI / NTK / YaRN seed vectors, from rope_frequencies itself.
///   evolutionary_search
///       the elitist driver: ask()/tell() for evaluation anywhere (other
///       processes, machines), run() with a batch fitness, run_parallel() with
///       a per-candidate fitness on a built-in std::thread pool. Deterministic
///       for a seed whatever the thread count or evaluation order; checkpoint()
///       captures the whole state (<longrope/search_json.hpp> writes it as JSON).
///   longrope_factors, search_stage, run_progressive
///       progressive extension: stages at growing scales, a callback between
///       stages (fine-tuning in the paper), a short-window stage for
///       short_factor, and the resulting rope_config.
///
/// Scores: lower is better (perplexity). NaN scores count as +infinity. The
/// ranking is a total order: (score, candidate) lexicographically, so ties
///
/// Layout: this umbrella includes the parts, each readable on its own:
///   search/rng.hpp          random engine and distributions
///   search/space.hpp        target, grid, constraint, candidates
///   search/operators.hpp    mutate, crossover, repair, snap
///   search/seeds.hpp        PI / NTK / YaRN seeds, frozen pairs
///   search/strategy.hpp     how a generation is drawn: evolution (paper), random, gaussian
///   search/options.hpp      options, progress, result, checkpoint
///   search/parallel.hpp     evaluating a batch on threads
///   search/driver.hpp       evolutionary_search (ask/tell, run, run_parallel)
///   search/progressive.hpp  progressive stages
///   search/longrope2.hpp    LongRoPE2: critical dimensions, NTK-derived pairs, mscale stage

#include "search/rng.hpp"
#include "search/space.hpp"
#include "search/operators.hpp"
#include "search/seeds.hpp"
#include "search/strategy.hpp"
#include "search/options.hpp"
#include "search/parallel.hpp"
#include "search/driver.hpp"
#include "search/progressive.hpp"
#include "search/longrope2.hpp"
