// SPDX-License-Identifier: MIT
// GRAD-MATCH (non-negative ridge OMP): the peers' synthetic workloads, the size grid, the
// policies and variants, and the correlation pass G r that bounds every pick from below.
//
//   build-bench/benchmarks/grad_match_bench --benchmark_filter=Peer --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true  (one command line)
#include <chrono>
#include <coreset/grad_match.hpp>

#include "bench_support.hpp"

using namespace coreset;
using coreset_bench::peak_rss_mib;
using coreset_bench::synthetic_clusters;

namespace {

GradMatchOptions options(NonNegativity policy = NonNegativity::ActiveSet, double lambda = 0.5) {
    GradMatchOptions o;
    o.lambda = lambda;
    o.nonnegativity = policy;
    return o;
}

// Runs `select` once per iteration and reports: k = rows returned; picks = OMP iterations
// (k + dropped atoms); ms_per_pick (wall clock); rel_residual = ||r|| / ||t||; status as its enum
// value (0 BudgetReached, 1 ToleranceReached, 2 Exhausted).
template <class Scalar, class Select>
void run(benchmark::State& state, Select&& select, Eigen::Index n, double tnorm) {
    Coreset<Scalar> r;
    double seconds = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        benchmark::DoNotOptimize(r = select());
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    const double picks = static_cast<double>(r.objective.size());
    state.counters["n"] = static_cast<double>(n);
    state.counters["k"] = static_cast<double>(r.size());
    state.counters["picks"] = picks;
    state.counters["ms_per_pick"] = picks > 0 ? 1e3 * seconds / (picks * static_cast<double>(state.iterations())) : 0.0;
    state.counters["rel_residual"] = r.objective.empty() ? 1.0 : r.objective.back() / tnorm;
    state.counters["status"] = static_cast<double>(static_cast<int>(r.status));
    state.counters["peak_MiB"] = peak_rss_mib();
}

template <class Scalar>
double target_norm(const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& x) {
    return x.template cast<double>().colwise().sum().norm();
}

// ---- The peers' workloads (as measured for CORDS on the project machine) --------------------

// float32, target = column sum, lambda = 0.5, ActiveSet. args: n, d, budget.
void BM_Peer_Synthetic(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1), budget = state.range(2);
    const Eigen::MatrixXf x = synthetic_clusters<float>(n, d);
    const GradMatch gm(options());
    run<float>(state, [&] { return gm.select(x, budget); }, n, target_norm(x));
}
// The budgets (n / 10), and the number of atoms CORDS' numpy OMP returned on the same
// workload (397 and 403: it stops when its arg-max atom is already selected), for a like-for-like
// total time.
BENCHMARK(BM_Peer_Synthetic)
    ->ArgNames({"n", "d", "budget"})
    ->Args({10000, 512, 1000})
    ->Args({10000, 512, 397})
    ->Args({50000, 512, 5000})
    ->Args({50000, 512, 403})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// The non-negativity policies and the normalised pick on the first workload.
void BM_Peer_Synthetic_Policy(benchmark::State& state) {
    const Eigen::MatrixXf x = synthetic_clusters<float>(10000, 512);
    GradMatchOptions o = options(static_cast<NonNegativity>(state.range(0)));
    o.normalize = state.range(1) != 0;
    const GradMatch gm(o);
    run<float>(state, [&] { return gm.select(x, 1000); }, 10000, target_norm(x));
}
BENCHMARK(BM_Peer_Synthetic_Policy)
    ->ArgNames({"policy", "normalize"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// ---- The grid: n x d x budget (1 %, 10 % of n), float and double ---------------------------------

template <class Scalar>
void BM_GradMatch_Grid(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1), budget = n * state.range(2) / 100;
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> x = synthetic_clusters<Scalar>(n, d);
    const GradMatch gm(options());
    run<Scalar>(state, [&] { return gm.select(x, budget); }, n, target_norm(x));
}
BENCHMARK_TEMPLATE(BM_GradMatch_Grid, float)
    ->ArgNames({"n", "d", "pct"})
    ->ArgsProduct({{2000, 10000, 60000}, {10, 128, 512}, {1, 10}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_GradMatch_Grid, double)
    ->ArgNames({"n", "d", "pct"})
    ->ArgsProduct({{2000, 10000, 60000}, {10, 128, 512}, {1, 10}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// ---- Variants -------------------------------------------------------------------------------------

// Per class on 10 equal classes, and per batch (batch 32), n = 10 000, d = 512, budget 1 000.
void BM_GradMatch_PerClass(benchmark::State& state) {
    const Eigen::MatrixXf x = synthetic_clusters<float>(10000, 512);
    Eigen::VectorXi y(x.rows());
    for (Eigen::Index i = 0; i < y.size(); ++i) y[i] = static_cast<int>(i % 10);
    const GradMatch gm(options());
    run<float>(state, [&] { return gm.select(x, y, 1000); }, x.rows(), target_norm(x));
}
BENCHMARK(BM_GradMatch_PerClass)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_GradMatch_PerBatch(benchmark::State& state) {
    const Eigen::MatrixXf x = synthetic_clusters<float>(10000, 512);
    const GradMatch gm(options(NonNegativity::ActiveSet, 0.0));  // CORDS' GradMatchPB uses lambda = 0
    run<float>(state, [&] { return gm.select_batches(x, 32, 1000); }, x.rows(), target_norm(x));
}
BENCHMARK(BM_GradMatch_PerBatch)->Iterations(1)->Unit(benchmark::kMillisecond);

// ---- The lower bound of a pick: one correlation pass c = G r (column-major, as the kernel) -----

template <class Scalar>
void BM_Correlation_Pass(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1);
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> g = synthetic_clusters<Scalar>(n, d);
    const detail::Vector<Scalar> r = g.colwise().sum().transpose();
    detail::CorrelationPass<Scalar> pass(n, nullptr);
    const std::vector<unsigned char> picked(static_cast<std::size_t>(n), 0);
    const detail::GradRef<Scalar> ref(g);  // maps g, no copy
    for (auto _ : state) benchmark::DoNotOptimize(pass.run(ref, r, picked));
    state.counters["GBps"] = benchmark::Counter(double(n) * double(d) * sizeof(Scalar) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_TEMPLATE(BM_Correlation_Pass, float)
    ->ArgNames({"n", "d"})
    ->ArgsProduct({{2000, 10000, 50000, 60000}, {10, 128, 512}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_Correlation_Pass, double)
    ->ArgNames({"n", "d"})
    ->ArgsProduct({{10000, 60000}, {512}})
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    coreset_bench::add_flags_context();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
