// SPDX-License-Identifier: MIT
// AdaCore: update (one observation of every example) and per-class selection, against Craig on the
// same shape. n = 60 000 examples, 10 classes, budget 10 % (6 000), float.
//   d = 10:  the paper's proxy, g = p - onehot(y) and h = p (1 - p) from the logits of a random
//            linear model (logit_gradients / logit_hessian_diagonal);
//   d = 128: the peers' synthetic workload (bench_support.hpp: 20 Gaussian clusters, lognormal row
//            norms) as gradient rows, with positive curvature |N(0, 1)| + 0.1.
// BM_AdaCore_Preconditioned times u = g_bar / (h_bar + eps) alone (the O(n d) part of select);
// BM_AdaCore_Select runs AdaCore::select(labels, k) on a warm state (preconditioning + Craig);
// BM_Craig_SameRows runs Craig on the already preconditioned rows (the same picks: the overhead of
// AdaCore is the difference); BM_Craig_RawGradients runs Craig on the raw gradients of the same
// shape (other rows, so another greedy trajectory).
// GCC 12 with -march=native (AVX-512) reports a false -Wmaybe-uninitialized inside Eigen's GEMM
// packing (avx512fintrin.h `__m512 __Y = __Y;`); the build uses -Werror.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cmath>
#include <coreset/adacore.hpp>
#include <coreset/craig.hpp>
#include <coreset/detail/rng.hpp>
#include <coreset/gradients.hpp>

#include "bench_support.hpp"

namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr Eigen::Index kClasses = 10;

using coreset_bench::normal;

struct Data {
    Matrix gradients, hessian;
    Eigen::VectorXi labels;
};

// Fixed-seed inputs, built once per shape.
const Data& data(Eigen::Index n, Eigen::Index d) {
    static Data cache[2];
    Data& out = cache[d == 10 ? 0 : 1];
    if (out.gradients.rows() == n) return out;
    coreset::detail::Rng rng(20220717 + static_cast<std::uint64_t>(d));
    out.labels.resize(n);
    for (Eigen::Index i = 0; i < n; ++i) out.labels[i] = static_cast<int>(i % kClasses);
    if (d == 10) {
        Matrix logits(n, kClasses);
        for (Eigen::Index i = 0; i < n; ++i)
            for (Eigen::Index k = 0; k < kClasses; ++k)
                logits(i, k) = static_cast<float>(2.0 * normal(rng) + (k == out.labels[i] ? 1.5 : 0.0));
        out.gradients = coreset::logit_gradients(logits, out.labels);
        out.hessian = coreset::logit_hessian_diagonal(logits);
    } else {
        out.gradients = coreset_bench::synthetic_clusters<float>(n, d);
        out.hessian.resize(n, d);
        for (Eigen::Index i = 0; i < n; ++i)
            for (Eigen::Index j = 0; j < d; ++j)
                out.hessian(i, j) = static_cast<float>(std::abs(normal(rng)) + 0.1);
    }
    return out;
}

void context(benchmark::State& state, Eigen::Index n, Eigen::Index d, Eigen::Index k) {
    state.counters["n"] = static_cast<double>(n);
    state.counters["d"] = static_cast<double>(d);
    state.counters["budget"] = static_cast<double>(k);
    state.counters["classes"] = static_cast<double>(kClasses);
    state.counters["peak_rss_MiB"] = coreset_bench::peak_rss_mib();
}

void BM_AdaCore_Update(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1);
    const Data& x = data(n, d);
    coreset::AdaCore<float> ada(n);
    ada.update(x.gradients, x.hessian);
    for (auto _ : state) {
        ada.update(x.gradients, x.hessian);
        benchmark::ClobberMemory();
    }
    context(state, n, d, 0);
    state.SetBytesProcessed(state.iterations() * n * d * static_cast<std::int64_t>(4 * sizeof(float)));
}

void BM_AdaCore_Preconditioned(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1);
    const Data& x = data(n, d);
    coreset::AdaCore<float> ada(n);
    ada.update(x.gradients, x.hessian);
    for (auto _ : state) {
        auto u = ada.preconditioned();
        benchmark::DoNotOptimize(u.data());
    }
    context(state, n, d, 0);
}

void BM_AdaCore_Select(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1), k = n / 10;
    const Data& x = data(n, d);
    coreset::AdaCore<float> ada(n);
    ada.update(x.gradients, x.hessian);
    for (auto _ : state) {
        auto subset = ada.select(x.labels, k);
        benchmark::DoNotOptimize(subset);
    }
    context(state, n, d, k);
}

void BM_AdaCore_UpdateSelect(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1), k = n / 10;
    const Data& x = data(n, d);
    coreset::AdaCore<float> ada(n);
    for (auto _ : state) {
        ada.update(x.gradients, x.hessian);
        auto subset = ada.select(x.labels, k);
        benchmark::DoNotOptimize(subset);
    }
    context(state, n, d, k);
}

void BM_Craig_SameRows(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1), k = n / 10;
    const Data& x = data(n, d);
    coreset::AdaCore<float> ada(n);
    ada.update(x.gradients, x.hessian);
    const Matrix u = ada.preconditioned();
    const coreset::Craig craig(ada.options().craig_options());
    for (auto _ : state) {
        auto subset = craig.select(u, x.labels, k);
        benchmark::DoNotOptimize(subset);
    }
    context(state, n, d, k);
}

void BM_Craig_RawGradients(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1), k = n / 10;
    const Data& x = data(n, d);
    const coreset::Craig craig;
    for (auto _ : state) {
        auto subset = craig.select(x.gradients, x.labels, k);
        benchmark::DoNotOptimize(subset);
    }
    context(state, n, d, k);
}

void shapes(benchmark::internal::Benchmark* b) {
    b->Args({60000, 10})
        ->Args({60000, 128})
        ->ArgNames({"n", "d"})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

}  // namespace

BENCHMARK(BM_AdaCore_Update)->Apply(shapes);
BENCHMARK(BM_AdaCore_Preconditioned)->Apply(shapes);
BENCHMARK(BM_AdaCore_Select)->Apply(shapes);
BENCHMARK(BM_AdaCore_UpdateSelect)->Apply(shapes);
BENCHMARK(BM_Craig_SameRows)->Apply(shapes);
BENCHMARK(BM_Craig_RawGradients)->Apply(shapes);

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    coreset_bench::add_flags_context();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
