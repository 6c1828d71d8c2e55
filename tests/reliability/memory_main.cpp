// SPDX-License-Identifier: MIT
// The facility-location engine stays within its memory budget, measured from outside: the growth
// of the process's peak resident set (getrusage) across one selection on 6000 x 16 floats, whose
// dense distance matrix would take 144 MB.
//   coreset_memory_peak blocked   budget 16 MiB: the engine must evaluate in blocks, and the peak
//                                 may grow by at most the budget plus 4 MiB of allocator slack;
//   coreset_memory_peak dense     budget 1 GiB: the dense matrix is built, and the peak must grow
//                                 by at least its size (the measurement sees what it should);
//   coreset_memory_peak factored  Craig and GradMatch on factored gradients of n = 500 rows with
//                                 C = 1000, E = 600 (ImageNet-sized errors): the explicit matrix
//                                 would take 1.2 GB; the peak may grow by at most 96 MiB.
//   coreset_memory_peak wide_dense / wide_blocked / blocked_large   issue 20 (see below).
// Not built under sanitizers, whose shadow memory and quarantine inflate the resident set.
#include <sys/resource.h>

#include <Eigen/Core>
#include <coreset/craig.hpp>
#include <coreset/facility_location.hpp>
#include <coreset/grad_match.hpp>
#include <coreset/detail/rng.hpp>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>

namespace {

long peak_kib() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;  // KiB on Linux
}

}  // namespace

// Factored gradients never form the n x C E matrix.
int factored() {
    const Eigen::Index n = 500, C = 1000, E = 600;
    coreset::detail::Rng rng(11);
    coreset::detail::RowMatrix<float> e(n, C), h(n, E);
    for (Eigen::Index i = 0; i < n; ++i) {
        for (Eigen::Index c = 0; c < C; ++c) e(i, c) = static_cast<float>(rng.uniform() * 1e-3);
        e(i, i % C) -= 1.0f;
        for (Eigen::Index k = 0; k < E; ++k) h(i, k) = static_cast<float>(rng.uniform() + (i % 7));
    }
    const coreset::FactoredGradients<float> g(std::move(e), std::move(h));
    coreset::Craig().select(coreset::factored(g.errors().topRows(50), g.activations().topRows(50)), 2);  // warm-up
    const double explicit_bytes = static_cast<double>(n) * static_cast<double>(C * E) * sizeof(float);
    const double limit = 96.0 * (1 << 20);
    const long before = peak_kib();
    const auto craig = coreset::Craig().select(g, 10);
    const auto gm = coreset::GradMatch().select(g, 3);
    const double grown = static_cast<double>(peak_kib() - before) * 1024.0;
    std::cout << "factored: explicit matrix " << explicit_bytes << " B, peak resident set grew by " << grown
              << " B (limit " << limit << " B), " << craig.size() << " Craig picks, " << gm.size()
              << " GradMatch picks\n";
    return craig.size() == 10 && gm.size() >= 1 && grown <= limit ? 0 : 1;
}

// The engine's minimum budget is true for wide rows (issue 20: m = 1200, d = 20000 floats, a 92 MiB
// input): the budget the engine asks for when refusing (Evaluation::Dense, or Blocked) is enough,
// measured, and the peak grows by at most that budget plus 4 MiB.
int wide(coreset::Evaluation evaluation) {
    const Eigen::Index m = 1200, d = 20000;
    coreset::detail::Rng rng(5);
    Eigen::MatrixXf x(m, d);
    for (Eigen::Index j = 0; j < d; ++j)
        for (Eigen::Index i = 0; i < m; ++i) x(i, j) = static_cast<float>(rng.uniform() + (i % 13));
    coreset::facility_location(x.topRows(100), 3);  // warm-up
    coreset::FacilityLocationOptions o;
    o.evaluation = evaluation;
    o.memory_budget_bytes = 1;
    std::size_t minimum = 0;
    try {
        coreset::facility_location(x, 5, o);
        return 1;
    } catch (const std::invalid_argument& e) {
        const std::string message = e.what();
        const std::size_t at = message.find("at least ");
        if (at == std::string::npos) return 1;
        minimum = std::stoull(message.substr(at + 9));
    }
    o.memory_budget_bytes = minimum;
    const long before = peak_kib();
    const auto c = coreset::facility_location(x, 5, o);
    const double grown = static_cast<double>(peak_kib() - before) * 1024.0;
    std::cout << "wide " << coreset::to_string(evaluation) << ": stated minimum budget " << minimum
              << " B, peak resident set grew by " << grown << " B, " << c.size() << " picks\n";
    return c.size() == 5 && grown <= static_cast<double>(minimum) + 4.0 * (1 << 20) ? 0 : 1;
}

// Blocked evaluation at n = 50000, d = 64 with a 64 MiB budget (issue 20).
int blocked_large() {
    const Eigen::Index m = 50000, d = 64;
    coreset::detail::Rng rng(9);
    Eigen::MatrixXf x(m, d);
    for (Eigen::Index j = 0; j < d; ++j)
        for (Eigen::Index i = 0; i < m; ++i) x(i, j) = static_cast<float>(rng.uniform() + (i % 13));
    coreset::facility_location(x.topRows(200), 3);  // warm-up
    coreset::FacilityLocationOptions o;
    o.memory_budget_bytes = std::size_t(64) << 20;
    const long before = peak_kib();
    const auto c = coreset::facility_location(x, 20, o);
    const double grown = static_cast<double>(peak_kib() - before) * 1024.0;
    std::cout << "blocked_large: budget " << o.memory_budget_bytes << " B, peak resident set grew by " << grown
              << " B, " << c.size() << " picks\n";
    return c.size() == 20 && grown <= static_cast<double>(o.memory_budget_bytes) + 4.0 * (1 << 20) ? 0 : 1;
}

int main(int argc, char** argv) {
    if (argc == 2 && std::strcmp(argv[1], "factored") == 0) return factored();
    if (argc == 2 && std::strcmp(argv[1], "wide_dense") == 0) return wide(coreset::Evaluation::Dense);
    if (argc == 2 && std::strcmp(argv[1], "wide_blocked") == 0) return wide(coreset::Evaluation::Blocked);
    if (argc == 2 && std::strcmp(argv[1], "blocked_large") == 0) return blocked_large();
    if (argc != 2 || (std::strcmp(argv[1], "blocked") != 0 && std::strcmp(argv[1], "dense") != 0)) {
        std::cerr << "usage: coreset_memory_peak blocked|dense|factored|wide_dense|wide_blocked|blocked_large\n";
        return 2;
    }
    const bool dense = std::strcmp(argv[1], "dense") == 0;
    const Eigen::Index m = 6000, d = 16;
    coreset::detail::Rng rng(7);
    Eigen::MatrixXf x(m, d);
    for (Eigen::Index j = 0; j < d; ++j)
        for (Eigen::Index i = 0; i < m; ++i) x(i, j) = static_cast<float>(rng.uniform() + (i % 13));
    // Warm up the thread pool and the allocator on a small input.
    coreset::facility_location(x.topRows(200), 3);

    coreset::FacilityLocationOptions o;
    o.memory_budget_bytes = dense ? std::size_t(1) << 30 : std::size_t(16) << 20;
    const double dense_bytes = static_cast<double>(m) * static_cast<double>(m) * sizeof(float);
    const long before = peak_kib();
    const auto c = coreset::facility_location(x, 5, o);
    const long after = peak_kib();
    const double grown = static_cast<double>(after - before) * 1024.0;
    std::cout << argv[1] << ": budget " << o.memory_budget_bytes << " B, dense matrix " << dense_bytes
              << " B, peak resident set grew by " << grown << " B, " << c.size() << " picks\n";
    if (c.size() != 5) return 1;
    if (dense) return grown >= 0.9 * dense_bytes ? 0 : 1;
    return grown <= static_cast<double>(o.memory_budget_bytes) + 4.0 * (1 << 20) ? 0 : 1;
}
