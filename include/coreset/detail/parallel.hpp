// SPDX-License-Identifier: MIT
/// \file detail/parallel.hpp
/// \brief OpenMP plumbing: a pragma macro that vanishes without OpenMP, and the thread count.
/// Parallel loops in the library only split independent items or use order-independent
/// (integer or max) reductions, so results never depend on the number of threads.
/// Not part of the public API.
#pragma once

#include <cstddef>

#ifdef _OPENMP
#include <omp.h>
#define CORESET_OMP(directive) _Pragma(#directive)
#else
#define CORESET_OMP(directive)
#endif

// A test hook: called with the team size at the start of every parallel region of the library
// (tests/reliability/threads_main.cpp defines it to check the num_threads options). Defining it
// in some translation units of a program and not in others breaks the one-definition rule.
#ifndef CORESET_TEAM_OBSERVER
#define CORESET_TEAM_OBSERVER(team) ((void)0)
#endif

namespace coreset {
namespace detail {

/// Reports the current team to CORESET_TEAM_OBSERVER (nothing unless a test defines it).
inline void note_team() noexcept {
#ifdef _OPENMP
    CORESET_TEAM_OBSERVER(omp_get_num_threads());
#else
    CORESET_TEAM_OBSERVER(1);
#endif
}

/// Bounds, for its lifetime, the OpenMP team of every parallel region the library opens on the
/// calling thread (and of the Eigen products it runs outside them, unless the program has called
/// Eigen::setNbThreads) to `threads`; 0 leaves OpenMP's default (OMP_NUM_THREADS or the number
/// of cores). It sets the calling thread's own nthreads ICV with omp_set_num_threads and restores
/// the previous value on exit, exceptions included: other threads, and the caller's code after
/// the call, see no change. Inside an active parallel region it does nothing (the library's
/// regions then run on one thread). Results never depend on the count (see the file comment).
class ThreadScope {
public:
    explicit ThreadScope(int threads) noexcept {
#ifdef _OPENMP
        if (threads > 0 && !omp_in_parallel()) {
            saved_ = omp_get_max_threads();
            omp_set_num_threads(threads);
        }
#else
        (void)threads;
#endif
    }
    ~ThreadScope() {
#ifdef _OPENMP
        if (saved_ > 0) omp_set_num_threads(saved_);
#endif
    }
    ThreadScope(const ThreadScope&) = delete;
    ThreadScope& operator=(const ThreadScope&) = delete;

private:
    [[maybe_unused]] int saved_ = 0;  // unused without OpenMP
};

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

/// Runs fn(0), ..., fn(count - 1), on the OpenMP team when `parallel` is true (items must be
/// independent). The test happens outside the pragma: entering a parallel region costs a
/// microsecond or two even when an `if` clause turns it off, which adds up in greedy loops that
/// call this once per candidate.
template <class Fn>
void parallel_for(std::ptrdiff_t count, bool parallel, Fn&& fn) {
#ifdef _OPENMP
    if (parallel && count > 1) {
        CORESET_OMP(omp parallel for schedule(dynamic, 1))
        for (std::ptrdiff_t t = 0; t < count; ++t) {
            note_team();
            fn(t);
        }
        return;
    }
#else
    (void)parallel;
#endif
    for (std::ptrdiff_t t = 0; t < count; ++t) fn(t);
}

}  // namespace detail
}  // namespace coreset
