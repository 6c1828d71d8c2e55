// SPDX-License-Identifier: MIT
// CREST: the selection overhead of one round against one Craig selection over the whole data.
// Fashion-MNIST scale: n = 60 000 examples, 10 classes, d = 10 last-layer proxies p - onehot(y)
// from the logits of a fixed random linear model (float), m = 128, r = 0.01 n = 600 (60 per class).
// BM_Crest_Round: candidates() + gathering the P * 600 candidate rows and losses (what the
//   trainer hands over) + select() (P facility-location selections of 128 of 600 rows, weights,
//   loss recording; with the default drop_interval = 20 every 20th round also scans the pool for
//   learned examples). P = 5 .. 25 is held fixed (no regions are begun). naive: 1 = Greedy::Naive (the
//   default), 0 = Greedy::Lazy (the reference code's); both make the same picks.
// BM_Crest_Step: record_update() + should_check() for a D-parameter model (D = 7 850: a linear
//   Fashion-MNIST classifier), the per-step cost CREST adds to training.
// BM_Craig_Full: Craig(per class, lazy).select over all 60 000 rows, budget 128 (one mini-batch),
//   640 (the rows of a P = 5 round) and 3 200 (P = 25); us_per_batch = time / (budget / 128).
// GCC 12 with -march=native (AVX-512) reports a false -Wmaybe-uninitialized inside Eigen's GEMM
// packing; the build uses -Werror.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cmath>
#include <coreset/craig.hpp>
#include <coreset/crest.hpp>
#include <coreset/detail/rng.hpp>
#include <coreset/gradients.hpp>

namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr Eigen::Index kN = 60000, kClasses = 10, kBatch = 128;

double normal(coreset::detail::Rng& rng) {
    double u1 = rng.uniform();
    while (u1 <= 0.0) u1 = rng.uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * rng.uniform());
}

struct Data {
    Matrix gradients;        // n x 10: p - onehot(y)
    Eigen::VectorXf losses;  // n cross-entropies
    Eigen::VectorXi labels;
};

// Fixed-seed inputs, built once.
const Data& data() {
    static const Data d = [] {
        Data out;
        coreset::detail::Rng rng(20230723);
        out.labels.resize(kN);
        for (Eigen::Index i = 0; i < kN; ++i) out.labels[i] = static_cast<int>(i % kClasses);
        Matrix logits(kN, kClasses);
        for (Eigen::Index i = 0; i < kN; ++i)
            for (Eigen::Index k = 0; k < kClasses; ++k)
                logits(i, k) = static_cast<float>(2.0 * normal(rng) + (k == out.labels[i] ? 1.5 : 0.0));
        out.gradients = coreset::logit_gradients(logits, out.labels);
        out.losses = coreset::cross_entropy(logits, out.labels);
        return out;
    }();
    return d;
}

void BM_Crest_Round(benchmark::State& state) {
    const Eigen::Index P = state.range(0);
    const Data& x = data();
    coreset::CrestOptions options;  // m = 128, r = 0.01 n, Euclidean, Equal split
    options.greedy = state.range(1) ? coreset::Greedy::Naive : coreset::Greedy::Lazy;
    options.initial_coresets = P;
    options.max_coresets = P;
    coreset::Crest crest(x.labels, options);
    Matrix rows;
    Eigen::VectorXf losses;
    for (auto _ : state) {
        const coreset::CrestCandidates cand = crest.candidates();
        rows.resize(cand.size(), x.gradients.cols());
        losses.resize(cand.size());
        for (Eigen::Index j = 0; j < cand.size(); ++j) {
            const Eigen::Index i = cand.indices[static_cast<std::size_t>(j)];
            rows.row(j) = x.gradients.row(i);
            losses[j] = x.losses[i];
        }
        crest.select(rows, losses);
        benchmark::DoNotOptimize(crest.coresets().data());
    }
    state.counters["P"] = static_cast<double>(P);
    state.counters["r"] = static_cast<double>(crest.per_class_size() * kClasses);
    state.counters["m"] = static_cast<double>(kBatch);
    state.counters["candidate_rows"] = static_cast<double>(P * crest.per_class_size() * kClasses);
    state.counters["us_per_round"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * 1e-6,
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.counters["us_per_batch"] =
        benchmark::Counter(static_cast<double>(state.iterations() * P) * 1e-6,
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_Crest_Step(benchmark::State& state) {
    const Eigen::Index D = state.range(0);
    const Data& x = data();
    coreset::CrestOptions options;
    options.tau = 1e30;  // never re-select
    coreset::Crest crest(x.labels, options);
    const coreset::CrestCandidates cand = crest.candidates();
    Matrix rows(cand.size(), x.gradients.cols());
    for (Eigen::Index j = 0; j < cand.size(); ++j)
        rows.row(j) = x.gradients.row(cand.indices[static_cast<std::size_t>(j)]);
    crest.select(rows, Eigen::VectorXf::Ones(cand.size()));
    crest.begin_region(1.0, Eigen::VectorXf::Constant(D, 0.01f), Eigen::VectorXf::Constant(D, 1.0f));
    const Eigen::VectorXf delta = Eigen::VectorXf::Constant(D, 1e-7f);
    for (auto _ : state) {
        crest.record_update(delta);
        if (crest.should_check()) benchmark::DoNotOptimize(crest.check(1.0));
    }
    state.counters["D"] = static_cast<double>(D);
}

void BM_Craig_Full(benchmark::State& state) {
    const Eigen::Index k = state.range(0);
    const Data& x = data();
    const coreset::Craig craig;  // Euclidean, lazy greedy, per class (Proportional)
    for (auto _ : state) {
        auto subset = craig.select(x.gradients, x.labels, k);
        benchmark::DoNotOptimize(subset);
    }
    state.counters["n"] = static_cast<double>(kN);
    state.counters["budget"] = static_cast<double>(k);
    state.counters["us_per_batch"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * 1e-6 * static_cast<double>(k) / kBatch,
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace

BENCHMARK(BM_Crest_Round)
    ->ArgsProduct({{5, 10, 15, 20, 25}, {0, 1}})
    ->ArgNames({"P", "naive"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Crest_Step)->Arg(7850)->ArgNames({"D"})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Craig_Full)
    ->Arg(128)
    ->Arg(640)
    ->Arg(3200)
    ->ArgNames({"budget"})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("flags", CORESET_BENCH_FLAGS);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
