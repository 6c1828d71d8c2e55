// SPDX-License-Identifier: MIT
// The facility-location engine stays within its memory budget, measured from outside: the growth
// of the process's peak resident set (getrusage) across one selection on 6000 x 16 floats, whose
// dense distance matrix would take 144 MB.
//   coreset_memory_peak blocked   budget 16 MiB: the engine must evaluate in blocks, and the peak
//                                 may grow by at most the budget plus 4 MiB of allocator slack;
//   coreset_memory_peak dense     budget 1 GiB: the dense matrix is built, and the peak must grow
//                                 by at least its size (the measurement sees what it should).
// Not built under sanitizers, whose shadow memory and quarantine inflate the resident set.
#include <sys/resource.h>

#include <Eigen/Core>
#include <coreset/facility_location.hpp>
#include <coreset/detail/rng.hpp>
#include <cstring>
#include <iostream>

namespace {

long peak_kib() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;  // KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2 || (std::strcmp(argv[1], "blocked") != 0 && std::strcmp(argv[1], "dense") != 0)) {
        std::cerr << "usage: coreset_memory_peak blocked|dense\n";
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
