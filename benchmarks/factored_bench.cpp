// SPDX-License-Identifier: MIT
// Factored last-layer gradients: Craig per class and GradMatch per class on the factors
// (errors n x C, activations n x (1 + E)) against the same selections on the explicit
// n x C (1 + E) matrix, n = 60 000, C = 10, 10 balanced classes, budget 1 % (600 rows).
// The gradients come from random logits and ReLU-like embeddings through
// factored_last_layer_gradients; the explicit matrix is its dense(), built before the timer starts.
//
// Memory: input_MiB = the gradient input (factors or explicit matrix); selection_MiB = the peak
// resident set during the selection minus the resident set before it (the peak is reset first
// through /proc/self/clear_refs), i.e. what the selection allocates. Run one configuration per
// process so that peak_MiB (the whole process) is meaningful too:
//   for f in 'Craig.*/0/128' 'Craig.*/1/128' ...; do
//     build-bench/benchmarks/factored_bench --benchmark_filter="$f"; done
// (scripts/bench factored does this loop).
#include <chrono>
#include <coreset/craig.hpp>
#include <coreset/gradients.hpp>
#include <coreset/grad_match.hpp>

#include "bench_support.hpp"

using namespace coreset;
using coreset_bench::peak_rss_mib;

namespace {

constexpr Eigen::Index kRows = 60000, kClasses = 10, kBudget = 600;

// Logits, labels and embeddings of a 10-class problem: labels round-robin, logits favour the
// label (a partly trained model), embeddings max(0, N(0.5, 1)).
struct Problem {
    Eigen::MatrixXf logits;
    Eigen::VectorXi labels;
    Eigen::MatrixXf embeddings;
};

Problem make_problem(Eigen::Index E) {
    detail::Rng rng(2026);
    Problem p;
    p.logits.resize(kRows, kClasses);
    p.labels.resize(kRows);
    p.embeddings.resize(kRows, E);
    for (Eigen::Index i = 0; i < kRows; ++i) {
        p.labels[i] = static_cast<int>(i % kClasses);
        for (Eigen::Index c = 0; c < kClasses; ++c) p.logits(i, c) = static_cast<float>(coreset_bench::normal(rng));
        p.logits(i, p.labels[i]) += 2.0f;
        for (Eigen::Index k = 0; k < E; ++k)
            p.embeddings(i, k) = static_cast<float>(std::max(0.0, coreset_bench::normal(rng) + 0.5));
    }
    return p;
}

// args: form (0 explicit, 1 factored), E. Reports seconds of the selection alone, the peak
// resident set of the process (MiB), the bytes of the gradient input and picks.
template <class Select>
void run(benchmark::State& state, const char* method, Select&& select) {
    const bool factored_form = state.range(0) == 1;
    const Eigen::Index E = state.range(1);
    const Problem p = make_problem(E);
    const FactoredGradients<float> fg = factored_last_layer_gradients(p.logits, p.labels, p.embeddings);
    detail::RowMatrix<float> dense;
    if (!factored_form) dense = fg.dense();
    Coreset<float> out;
    double seconds = 0;
    const bool reset = coreset_bench::reset_peak_rss();
    const double resident = coreset_bench::rss_mib();
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        out = factored_form ? select(fg, p.labels) : select(dense, p.labels);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        benchmark::DoNotOptimize(out.weights.data());
    }
    const double input = factored_form
                             ? static_cast<double>(fg.errors().size() + fg.activations().size()) * sizeof(float)
                             : static_cast<double>(dense.size()) * sizeof(float);
    state.SetLabel(std::string(method) + (factored_form ? " factored" : " explicit"));
    state.counters["seconds"] = seconds / static_cast<double>(state.iterations());
    state.counters["input_MiB"] = input / (1 << 20);
    // The selection's own peak above what was resident before it (inputs included in `resident`).
    state.counters["selection_MiB"] = reset ? peak_rss_mib() - resident : -1.0;
    state.counters["peak_MiB"] = peak_rss_mib();
    state.counters["k"] = static_cast<double>(out.size());
    state.counters["F_or_residual"] = out.objective.empty() ? 0.0 : out.objective.back();
}

void BM_Craig_PerClass(benchmark::State& state) {
    const Craig craig;
    run(state, "Craig per class", [&](const auto& g, const Eigen::VectorXi& y) { return craig.select(g, y, kBudget); });
}
BENCHMARK(BM_Craig_PerClass)
    ->ArgNames({"factored", "E"})
    ->ArgsProduct({{0, 1}, {128, 512}})
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

void BM_GradMatch_PerClass(benchmark::State& state) {
    const GradMatch gm;
    run(state, "GradMatch per class", [&](const auto& g, const Eigen::VectorXi& y) { return gm.select(g, y, kBudget); });
}
BENCHMARK(BM_GradMatch_PerClass)
    ->ArgNames({"factored", "E"})
    ->ArgsProduct({{0, 1}, {128, 512}})
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

// The distance phase alone: the factored Gram (two products of depth C and 1 + E, then a Hadamard
// product) against the explicit one (depth C (1 + E)), one class of 6000 rows, against a plain
// Eigen GEMM of the explicit shape as the machine's reference. args: form, E.
void BM_Distances_OneClass(benchmark::State& state) {
    const bool factored_form = state.range(0) == 1;
    const Eigen::Index E = state.range(1), m = kRows / kClasses;
    const Problem p = make_problem(E);
    const FactoredGradients<float> all = factored_last_layer_gradients(p.logits, p.labels, p.embeddings);
    std::vector<Eigen::Index> rows;
    for (Eigen::Index i = 0; i < kRows; i += kClasses) rows.push_back(i);
    const FactoredGradients<float> fg = detail::gather_rows(all, rows);
    std::vector<float> out(static_cast<std::size_t>(m * m));
    if (factored_form) {
        const detail::PairwiseDistances<float> d(fg, Metric::Euclidean, "bench");
        for (auto _ : state) d.compute_all(out.data(), true);
    } else {
        const detail::PairwiseDistances<float> d(fg.dense(), Metric::Euclidean, "bench");
        for (auto _ : state) d.compute_all(out.data(), true);
    }
    state.SetLabel(factored_form ? "factored" : "explicit");
    const double explicit_flops = static_cast<double>(m) * static_cast<double>(m) * static_cast<double>(fg.cols());
    state.counters["explicit_GFLOPs_equiv"] =
        benchmark::Counter(explicit_flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Distances_OneClass)
    ->ArgNames({"factored", "E"})
    ->ArgsProduct({{0, 1}, {128, 512}})
    ->Unit(benchmark::kMillisecond);

// The machine's reference for the explicit distance phase: A A^T, 6000 x C (1 + E) float.
void BM_GEMM_Reference(benchmark::State& state) { coreset_bench::gemm_reference<float>(state); }
BENCHMARK(BM_GEMM_Reference)->ArgNames({"n", "d"})->Args({6000, 1290})->Args({6000, 5130})->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    coreset_bench::add_flags_context();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
}
