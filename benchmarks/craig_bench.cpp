// SPDX-License-Identifier: MIT
// CRAIG and its facility-location engine: the peers' workloads, a size grid, the distance
// phase against a plain Eigen GEMM of the same shape, and peak memory.
//
//   build/benchmarks/craig_bench --benchmark_filter=Peer --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true  (one command line)
#include <coreset/craig.hpp>
#include <coreset/detail/distances.hpp>
#include <numeric>

#include "bench_support.hpp"

using namespace coreset;
using coreset_bench::peak_rss_mib;
using coreset_bench::synthetic_clusters;

namespace {

CraigOptions craig_options(Greedy g, Evaluation e) {
    CraigOptions o;
    o.greedy = g;
    o.evaluation = e;
    return o;
}

void report(benchmark::State& state, const Coreset<float>& r, Eigen::Index n) {
    state.counters["n"] = static_cast<double>(n);
    state.counters["k"] = static_cast<double>(r.size());
    state.counters["objective"] = r.objective.empty() ? 0.0 : r.objective.back();
    state.counters["peak_MiB"] = peak_rss_mib();
}

// ---- The peers' workloads (apricot and submodlib, measured on the project machine) -------------

void BM_Peer_FashionMNIST_Class0(benchmark::State& state) {
    const Eigen::MatrixXf x = coreset_bench::rows_of_class(coreset_bench::fashion_mnist(), 0);
    const Craig craig(craig_options(static_cast<Greedy>(state.range(0)), Evaluation::Auto));
    Coreset<float> r;
    for (auto _ : state) benchmark::DoNotOptimize(r = craig.select(x, x.rows() / 10));
    report(state, r, x.rows());
}
BENCHMARK(BM_Peer_FashionMNIST_Class0)->ArgName("greedy")->DenseRange(0, 2)->Unit(benchmark::kMillisecond);

void BM_Peer_FashionMNIST_PerClass(benchmark::State& state) {
    const auto& ds = coreset_bench::fashion_mnist();
    const Craig craig(craig_options(static_cast<Greedy>(state.range(0)), Evaluation::Auto));
    Coreset<float> r;
    for (auto _ : state) benchmark::DoNotOptimize(r = craig.select(ds.x, ds.y, ds.x.rows() / 10));
    report(state, r, ds.x.rows());
}
BENCHMARK(BM_Peer_FashionMNIST_PerClass)->ArgName("greedy")->DenseRange(0, 2)->Unit(benchmark::kMillisecond);

void BM_Peer_Synthetic(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1);
    const Eigen::MatrixXf x = synthetic_clusters<float>(n, d);
    CraigOptions o = craig_options(static_cast<Greedy>(state.range(2)), static_cast<Evaluation>(state.range(3)));
    o.memory_budget_bytes = n > 20000 ? (std::size_t(11) << 30) : (std::size_t(1) << 30);
    if (o.evaluation == Evaluation::Blocked) o.memory_budget_bytes = std::size_t(1) << 30;
    const Craig craig(o);
    Coreset<float> r;
    for (auto _ : state) benchmark::DoNotOptimize(r = craig.select(x, n / 10));
    report(state, r, n);
}
BENCHMARK(BM_Peer_Synthetic)
    ->ArgNames({"n", "d", "greedy", "eval"})
    ->Args({10000, 100, 1, 0})
    ->Args({10000, 100, 0, 0})
    ->Args({10000, 100, 2, 0})
    ->Args({10000, 10, 1, 0})
    ->Args({10000, 10, 0, 0})
    ->Args({10000, 10, 2, 0})
    ->Unit(benchmark::kMillisecond);

// n = 50 000, d = 100: dense (10 GB of float distances, budget 11 GiB) and blocked (1 GiB). Slow:
// run explicitly with --benchmark_filter=Large (excluded from the default Peer filter).
void BM_Large_Synthetic(benchmark::State& state) { BM_Peer_Synthetic(state); }
BENCHMARK(BM_Large_Synthetic)
    ->ArgNames({"n", "d", "greedy", "eval"})
    ->Args({50000, 100, 1, 1})
    ->Args({50000, 100, 2, 2})
    ->Args({50000, 100, 1, 2})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// ---- The grid: n x d, k = n / 10, each greedy, dense vs blocked --------------------------------

void BM_Craig_Grid(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1);
    const Eigen::MatrixXf x = synthetic_clusters<float>(n, d);
    const Craig craig(craig_options(static_cast<Greedy>(state.range(2)), static_cast<Evaluation>(state.range(3))));
    Coreset<float> r;
    for (auto _ : state) benchmark::DoNotOptimize(r = craig.select(x, n / 10));
    report(state, r, n);
}
BENCHMARK(BM_Craig_Grid)
    ->ArgNames({"n", "d", "greedy", "eval"})
    ->ArgsProduct({{2000, 10000}, {10, 128, 784}, {0, 1, 2}, {1, 2}})
    ->Unit(benchmark::kMillisecond);

// Per class on 10 equal classes (n / 10 rows each).
void BM_Craig_PerClass(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1);
    const Eigen::MatrixXf x = synthetic_clusters<float>(n, d);
    Eigen::VectorXi y(n);
    for (Eigen::Index i = 0; i < n; ++i) y[i] = static_cast<int>(i % 10);
    const Craig craig(craig_options(static_cast<Greedy>(state.range(2)), Evaluation::Auto));
    Coreset<float> r;
    for (auto _ : state) benchmark::DoNotOptimize(r = craig.select(x, y, n / 10));
    report(state, r, n);
}
BENCHMARK(BM_Craig_PerClass)
    ->ArgNames({"n", "d", "greedy"})
    ->ArgsProduct({{2000, 10000, 60000}, {10, 128, 784}, {1, 2}})
    ->Unit(benchmark::kMillisecond);

// ---- The distance phase against the machine's GEMM ----------------------------------------------

// Fills the dense m x m distance matrix (what Evaluation::Dense does first): 2 m^2 d flops of GEMM
// plus the fused norm/sqrt pass.
void BM_Distances_Dense(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1);
    const detail::RowMatrix<float> x = synthetic_clusters<float>(n, d);
    const detail::PairwiseDistances<float> dist(x, Metric::Euclidean, "bench");
    std::vector<Eigen::Index> ids(static_cast<std::size_t>(n));
    std::iota(ids.begin(), ids.end(), Eigen::Index(0));
    std::vector<float> out(static_cast<std::size_t>(n * n));
    for (auto _ : state) {
        dist.compute(ids.data(), n, out.data(), true);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.counters["GFLOPs"] = benchmark::Counter(2.0 * double(n) * double(n) * double(d) * 1e-9,
                                                  benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Distances_Dense)->ArgNames({"n", "d"})->ArgsProduct({{2000, 6000, 10000}, {10, 100, 784}})->Unit(benchmark::kMillisecond);

void BM_Gemm_Reference(benchmark::State& state) { coreset_bench::gemm_reference<float>(state); }
BENCHMARK(BM_Gemm_Reference)->ArgNames({"n", "d"})->ArgsProduct({{2000, 6000, 10000}, {10, 100, 784}})->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    coreset_bench::add_flags_context();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
