// SPDX-License-Identifier: MIT
// Large n on one machine: facility location in blocked mode under a memory budget (no allocation
// grows with n^2), k = n / 100 rows of d = 64 floats (the peers' synthetic workload). Each run is
// one iteration (minutes each); run one configuration per process, because the peak RSS counter
// (VmHWM) is the process's peak so far:
//
//   OMP_NUM_THREADS=2 ./large_bench --benchmark_filter='Large/greedy:0/n:50000/'
//
// Arguments: greedy (0 Lazy, 1 Stochastic), n, budget_mib (the engine's memory_budget_bytes in
// MiB; the input matrix, 4 n d bytes, is the caller's and comes on top), eps_milli (stochastic
// epsilon x 1000), limit_s (a TimeLimit callback in seconds; -1 none, 0 stops after the first
// pick, which still pays for the pass that finds C). Counters: cpu_s (CPU seconds of all threads;
// the wall time on a shared machine depends on the other jobs), k, picks, peak_rss_mib (whole
// process, input included), input_mib, objective, status (0 BudgetReached, 2 Exhausted,
// 3 StoppedByCallback). CORESET_LARGE_PROGRESS=N in the environment prints a line every N picks.
#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <coreset/callbacks.hpp>
#include <coreset/facility_location.hpp>
#include <cstdlib>
#include <iostream>
#include <map>

#include "bench_support.hpp"

namespace {

// CPU seconds of the whole process (all threads) so far: on a shared machine the wall time depends
// on the other jobs, this much less.
double process_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

const Eigen::MatrixXf& data(Eigen::Index n) {
    static std::map<Eigen::Index, Eigen::MatrixXf> cache;
    auto it = cache.find(n);
    if (it == cache.end()) it = cache.emplace(n, coreset_bench::synthetic_clusters<float>(n, 64)).first;
    return it->second;
}

void BM_Large(benchmark::State& state) {
    const bool stochastic = state.range(0) == 1;
    const Eigen::Index n = state.range(1), k = std::max<Eigen::Index>(1, n / 100);
    const Eigen::MatrixXf& x = data(n);
    coreset::FacilityLocationOptions o;
    o.greedy = stochastic ? coreset::Greedy::Stochastic : coreset::Greedy::Lazy;
    o.evaluation = coreset::Evaluation::Blocked;
    o.memory_budget_bytes = static_cast<std::size_t>(state.range(2)) << 20;
    o.epsilon = static_cast<double>(state.range(3)) / 1000.0;
    const double limit = static_cast<double>(state.range(4));
    coreset::Coreset<float> s;
    const double cpu0 = process_cpu_seconds();
    // CORESET_LARGE_PROGRESS=N prints a progress line every N picks to stderr (hour-long runs).
    const char* every = std::getenv("CORESET_LARGE_PROGRESS");
    const Eigen::Index lines = every ? std::max<Eigen::Index>(1, std::atol(every)) : 0;
    for (auto _ : state) {
        coreset::PrintProgress progress(std::cerr, std::max<Eigen::Index>(1, lines), k);
        if (limit >= 0 && lines > 0)
            s = coreset::facility_location(x, k, o, coreset::TimeLimit(limit), progress);
        else if (limit >= 0)
            s = coreset::facility_location(x, k, o, coreset::TimeLimit(limit));
        else if (lines > 0)
            s = coreset::facility_location(x, k, o, progress);
        else
            s = coreset::facility_location(x, k, o);
        benchmark::DoNotOptimize(s.indices.data());
    }
    state.counters["cpu_s"] = process_cpu_seconds() - cpu0;
    state.counters["k"] = static_cast<double>(k);
    state.counters["picks"] = static_cast<double>(s.size());
    state.counters["peak_rss_mib"] = coreset_bench::peak_rss_mib();
    state.counters["input_mib"] = static_cast<double>(x.size()) * sizeof(float) / (1024.0 * 1024.0);
    state.counters["objective"] = s.objective.empty() ? 0.0 : s.objective.back();
    state.counters["status"] = static_cast<double>(static_cast<int>(s.status));
}

}  // namespace

// What was run for docs/benchmarks.md (section "Large n and GreeDi"), and the two large-n targets,
// which take far longer than the 10 minutes a run may take on the project's 2-core machine (see
// that section for the arithmetic): they are registered so that a larger machine can run them.
BENCHMARK(BM_Large)
    ->ArgNames({"greedy", "n", "budget_mib", "eps_milli", "limit_s"})
    ->Args({0, 50000, 2048, 10, -1})
    ->Args({1, 50000, 2048, 10, -1})
    ->Args({1, 200000, 2048, 10, 0})
    ->Args({0, 200000, 2048, 10, 0})
    ->Args({0, 200000, 2048, 10, -1})
    ->Args({1, 1000000, 1792, 10, -1})
    ->Args({1, 1000000, 2048, 10, -1})
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    coreset_bench::add_flags_context();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
