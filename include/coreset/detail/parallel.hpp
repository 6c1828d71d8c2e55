// SPDX-License-Identifier: MIT
/// \file detail/parallel.hpp
/// \brief OpenMP plumbing: a pragma macro that vanishes without OpenMP, and the thread count.
/// Parallel loops in the library only split independent items or use order-independent
/// (integer or max) reductions, so results never depend on the number of threads.
/// Not part of the public API.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#define CORESET_OMP(directive) _Pragma(#directive)
#else
#define CORESET_OMP(directive)
#endif

namespace coreset {
namespace detail {

/// Threads a parallel region would use here (1 without OpenMP or inside a parallel region).
inline int max_threads() noexcept {
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

/// This thread's number and the team size inside a parallel region (0 and 1 outside).
inline int thread_id() noexcept {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
inline int team_size() noexcept {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

}  // namespace detail
}  // namespace coreset
