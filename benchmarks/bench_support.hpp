// SPDX-License-Identifier: MIT
// Shared benchmark inputs (fixed seeds) and the machine's reference kernels.
#pragma once

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cmath>
#include <coreset/core.hpp>
#include <coreset/detail/rng.hpp>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "../examples/idx.hpp"

#ifndef CORESET_BENCH_FLAGS
#define CORESET_BENCH_FLAGS "unknown"
#endif

namespace coreset_bench {

inline double normal(coreset::detail::Rng& rng) {
    double u1 = rng.uniform();
    while (u1 <= 0.0) u1 = rng.uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * rng.uniform());
}

/// The peers' "synthetic" workload (as the peers were measured on the project machine): rows from 20 Gaussian clusters with
/// Dirichlet(1, ..., 1) proportions, centres N(0, I), within-cluster noise N(0, 0.25^2 I), each row
/// then scaled by a lognormal factor exp(0.75 z). n x d, column-major (what users hold), seeded by
/// (n, d) unless a seed is given.
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> synthetic_clusters(Eigen::Index n, Eigen::Index d,
                                                                         std::uint64_t seed = 0) {
    coreset::detail::Rng rng(seed ? seed : static_cast<std::uint64_t>(n) * 1000003ULL + static_cast<std::uint64_t>(d));
    const int k = 20;
    std::vector<double> p(k);
    double total = 0;
    for (auto& v : p) total += (v = -std::log(1.0 - rng.uniform()));  // Gamma(1) draws -> Dirichlet(1)
    Eigen::MatrixXd centres(k, d);
    for (Eigen::Index c = 0; c < k; ++c)
        for (Eigen::Index j = 0; j < d; ++j) centres(c, j) = normal(rng);
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> x(n, d);
    for (Eigen::Index i = 0; i < n; ++i) {
        double u = rng.uniform() * total, acc = 0;
        int c = 0;
        while (c + 1 < k && (acc += p[static_cast<std::size_t>(c)]) < u) ++c;
        const double scale = std::exp(0.75 * normal(rng));
        for (Eigen::Index j = 0; j < d; ++j) x(i, j) = static_cast<Scalar>(scale * (centres(c, j) + 0.25 * normal(rng)));
    }
    return x;
}

/// Fashion-MNIST training pixels (60000 x 784, [0, 1]) and labels, loaded once per process.
inline const coreset_examples::Dataset& fashion_mnist() {
    static const coreset_examples::Dataset ds = coreset_examples::load_fashion_mnist("train");
    return ds;
}

/// Rows of one class.
inline Eigen::MatrixXf rows_of_class(const coreset_examples::Dataset& ds, int label) {
    std::vector<Eigen::Index> rows;
    for (Eigen::Index i = 0; i < ds.y.size(); ++i)
        if (ds.y[i] == label) rows.push_back(i);
    Eigen::MatrixXf out(static_cast<Eigen::Index>(rows.size()), ds.x.cols());
    for (std::size_t r = 0; r < rows.size(); ++r) out.row(static_cast<Eigen::Index>(r)) = ds.x.row(rows[r]);
    return out;
}

/// Peak resident set size of this process so far, in MiB (VmHWM from /proc/self/status).
inline double peak_rss_mib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    return 0.0;
}

/// Current resident set of this process, in MiB (VmRSS).
inline double rss_mib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    return 0.0;
}

/// Resets the peak resident set (VmHWM) to the current one (Linux >= 4.0: "5" > clear_refs), so
/// that peak_rss_mib() afterwards is the peak of what follows. Returns false where unsupported.
inline bool reset_peak_rss() {
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
    return static_cast<bool>(out.flush());
}

/// Records the build flags in the benchmark context (printed in the header and in JSON output).
inline void add_flags_context() { benchmark::AddCustomContext("coreset_flags", CORESET_BENCH_FLAGS); }

/// The machine's reference: a plain Eigen product A * A^T of an n x d row-major matrix (the shape of
/// a similarity computation), reported as GFLOP/s (2 n^2 d flops).
template <class Scalar>
void gemm_reference(benchmark::State& state) {
    const Eigen::Index n = state.range(0), d = state.range(1);
    const coreset::detail::RowMatrix<Scalar> a = coreset::detail::RowMatrix<Scalar>::Random(n, d);
    coreset::detail::RowMatrix<Scalar> c(n, n);
    for (auto _ : state) {
        c.noalias() = a * a.transpose();
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    state.counters["GFLOPs"] = benchmark::Counter(2.0 * double(n) * double(n) * double(d) * 1e-9,
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace coreset_bench
