// SPDX-License-Identifier: MIT
/// \file detail/parallel.hpp
/// \brief OpenMP plumbing: a pragma macro that vanishes without OpenMP, and the thread count.
/// Parallel loops in the library only split independent items or use order-independent
/// (integer or max) reductions, so results never depend on the number of threads.
/// Not part of the public API.
#pragma once

#include <cstddef>
#include <exception>

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

/// Carries exceptions out of an OpenMP region, where one must not escape (it would call
/// std::terminate): every item's work runs through run(item, fn), which catches what fn throws;
/// after the region, rethrow() rethrows the exception of the lowest item that threw, whatever the
/// threads' timing, so the caller sees the exception a serial loop would have thrown first (the
/// user's own exception type from a callback, std::bad_alloc, ...).
class RegionExceptions {
public:
    template <class Fn>
    void run(std::ptrdiff_t item, Fn&& fn) noexcept {
        try {
            fn();
        } catch (...) {
            CORESET_OMP(omp critical(coreset_region_exceptions))
            {
                if (item_ < 0 || item < item_) {
                    item_ = item;
                    error_ = std::current_exception();
                }
            }
        }
    }
    void rethrow() const {
        if (error_) std::rethrow_exception(error_);
    }

private:
    std::exception_ptr error_;
    std::ptrdiff_t item_ = -1;
};

/// Runs fn() so that the Eigen products in it are computed by one thread with the blocking of a
/// single-threaded product: outside an active parallel region Eigen splits a large GEMM over
/// omp_get_max_threads() threads and chooses its depth blocking for that count, so the same
/// product rounded differently with 1 and 2 threads (factored GRAD-MATCH's column sum E^T H at
/// C = E = 200 gave other weights with 2 threads). A one-thread region whose own thread count is
/// set to 1 (an ICV of that region's task only, no global state) makes Eigen take its serial path.
template <class Fn>
void eigen_single_threaded(Fn&& fn) {
#ifdef _OPENMP
    RegionExceptions errors;
    CORESET_OMP(omp parallel num_threads(1))
    {
        omp_set_num_threads(1);
        errors.run(0, fn);
    }
    errors.rethrow();
#else
    fn();
#endif
}

/// Runs fn(0), ..., fn(count - 1), on the OpenMP team when `parallel` is true (items must be
/// independent); an exception from fn reaches the caller (RegionExceptions). The test happens
/// outside the pragma: entering a parallel region costs a microsecond or two even when an `if`
/// clause turns it off, which adds up in greedy loops that call this once per candidate.
template <class Fn>
void parallel_for(std::ptrdiff_t count, bool parallel, Fn&& fn) {
#ifdef _OPENMP
    if (parallel && count > 1) {
        RegionExceptions errors;
        CORESET_OMP(omp parallel for schedule(dynamic, 1))
        for (std::ptrdiff_t t = 0; t < count; ++t)
            errors.run(t, [&] {
                note_team();
                fn(t);
            });
        errors.rethrow();
        return;
    }
#else
    (void)parallel;
#endif
    for (std::ptrdiff_t t = 0; t < count; ++t) fn(t);
}

}  // namespace detail
}  // namespace coreset
