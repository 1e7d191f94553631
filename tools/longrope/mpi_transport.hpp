// The evaluator protocol over MPI (docs/evaluators.md): rank 0 runs the search
// and sends request lines to the evaluator ranks (tag 1; a rank answering in
// well under 1 ms gets several queued, like the process pool's pipelining, a
// slow one one at a time); evaluator ranks answer with reply lines (tag 2), in
// order; shutdown goes to every rank at the end. An
// MPMD job: mpirun -np 1 longrope search --mpi ... : -np N <evaluator> --mpi.
// Compiled only when CMake found MPI (LONGROPE_HAVE_MPI); otherwise every entry
// point throws a clear error.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <longrope/evaluator_protocol.hpp>

#include "evaluator_pool.hpp"

namespace longrope_cli {

/// True when this binary was built with MPI.
bool mpi_available() noexcept;

/// Rank 0's transport: initialises MPI (MPI_Init) on construction, handshakes
/// with every other rank, sends shutdown and finalises on destruction. A rank
/// that exceeds timeout_seconds is dropped (MPI cannot restart it) and its
/// request re-queued to another rank; with no rank left the batch throws.
/// A rank that crashes ends the whole job (MPI's model): resume from the
/// coordinator's checkpoint.
std::unique_ptr<evaluator_transport> make_mpi_transport(double timeout_seconds);

/// An evaluator rank's loop: answers hello and evaluate messages from rank 0
/// with f until shutdown; MPI_Init / MPI_Finalize inside. Returns 0.
int mpi_serve(const std::function<double(const longrope::eval_request&)>& f, const std::string& name);

}  // namespace longrope_cli
