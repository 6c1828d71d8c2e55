// SPDX-License-Identifier: MIT
// GreeDi benchmark: time and peak memory per rank of GreeDi::select on synthetic rows that each
// rank generates for itself (row i depends only on i and the seed, so no rank ever holds the whole
// data), and the objective against the centralised greedy. One report, printed by rank 0.
//
//   mpirun -np 4 --oversubscribe greedi_bench --n 50000 --d 64 [--k 500] [--greedy lazy|stochastic]
//          [--epsilon 0.01] [--budget-mib 2048] [--central | --save FILE | --compare FILE]
//          [--progress N] [--time-limit S]
//
// --central   also runs the centralised greedy on rank 0 (the others wait without spinning) and
//             prints the ratios; it needs the whole data on rank 0.
// --save F    writes the medoid cost and C to F; a one-rank run is the centralised greedy, so
//             `-np 1 ... --save F` and then `-np 4 ... --compare F` gives the ratios without running
//             the centralised greedy again.
#include <mpi.h>
#include <sys/resource.h>

#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <coreset/callbacks.hpp>
#include <coreset/facility_location.hpp>
#include <coreset/mpi.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "../../benchmarks/bench_support.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using RowMatrix = coreset::detail::RowMatrix<float>;

// The peers' synthetic workload (as benchmarks/bench_support.hpp's synthetic_clusters: 20 Gaussian
// clusters with Dirichlet(1) proportions, centres N(0, I), noise N(0, 0.25^2 I), lognormal row
// scale exp(0.75 z)), but row i drawn from its own stream, so that any block of rows can be made
// anywhere.
struct Synthetic {
    Eigen::Index d;
    std::uint64_t seed;
    std::vector<double> cumulative;
    Eigen::MatrixXd centres;

    Synthetic(Eigen::Index dim, std::uint64_t s) : d(dim), seed(s), centres(20, dim) {
        coreset::detail::Rng rng(seed);
        double total = 0;
        for (int c = 0; c < 20; ++c) cumulative.push_back(total += -std::log(1.0 - rng.uniform()));
        for (auto& v : cumulative) v /= total;
        for (Eigen::Index c = 0; c < 20; ++c)
            for (Eigen::Index j = 0; j < d; ++j) centres(c, j) = coreset_bench::normal(rng);
    }
    RowMatrix rows(Eigen::Index first, Eigen::Index count) const {
        RowMatrix x(count, d);
        for (Eigen::Index t = 0; t < count; ++t) {
            coreset::detail::Rng rng(seed * 0x9e3779b97f4a7c15ULL + static_cast<std::uint64_t>(first + t) + 1);
            const double u = rng.uniform();
            int c = 0;
            while (c + 1 < 20 && cumulative[static_cast<std::size_t>(c)] < u) ++c;
            const double scale = std::exp(0.75 * coreset_bench::normal(rng));
            for (Eigen::Index j = 0; j < d; ++j)
                x(t, j) = static_cast<float>(scale * (centres(c, j) + 0.25 * coreset_bench::normal(rng)));
        }
        return x;
    }
};

// Sum over rows of the distance to the nearest pick, in double (Euclidean).
double medoid_cost(const RowMatrix& x, const std::vector<Eigen::Index>& picks) {
    Eigen::MatrixXd p(static_cast<Eigen::Index>(picks.size()), x.cols());
    for (std::size_t t = 0; t < picks.size(); ++t) p.row(static_cast<Eigen::Index>(t)) = x.row(picks[t]).cast<double>();
    const Eigen::VectorXd pn = p.rowwise().squaredNorm();
    double total = 0;
    const Eigen::Index block = 4096;
    for (Eigen::Index a = 0; a < x.rows(); a += block) {
        const Eigen::Index r = std::min(block, x.rows() - a);
        const Eigen::MatrixXd xb = x.middleRows(a, r).cast<double>();
        Eigen::MatrixXd d2 = (-2.0 * xb * p.transpose()).rowwise() + pn.transpose();
        d2.colwise() += xb.rowwise().squaredNorm();
        for (Eigen::Index i = 0; i < r; ++i) total += std::sqrt(std::max(0.0, d2.row(i).minCoeff()));
    }
    return total;
}

// CPU seconds of this process (all threads) so far.
double process_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Waits at a barrier without spinning (so that a rank computing alone keeps its core).
void quiet_barrier(MPI_Comm comm) {
    MPI_Request req;
    MPI_Ibarrier(comm, &req);
    int done = 0;
    while (!done) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    Eigen::Index n = 50000, d = 64, k = 0, progress = 0;
    std::string greedy = "lazy", save, compare;
    double epsilon = 0.01, budget_mib = 2048, time_limit = -1;
    bool central = false;
    for (int a = 1; a < argc; ++a) {
        const std::string arg = argv[a];
        auto next = [&]() -> std::string {
            if (a + 1 >= argc) {
                if (rank == 0) std::cerr << "greedi_bench: " << arg << " needs a value\n";
                MPI_Abort(MPI_COMM_WORLD, 2);
            }
            return argv[++a];
        };
        if (arg == "--n") n = std::stol(next());
        else if (arg == "--d") d = std::stol(next());
        else if (arg == "--k") k = std::stol(next());
        else if (arg == "--greedy") greedy = next();
        else if (arg == "--epsilon") epsilon = std::stod(next());
        else if (arg == "--budget-mib") budget_mib = std::stod(next());
        else if (arg == "--central") central = true;
        else if (arg == "--save") save = next();
        else if (arg == "--compare") compare = next();
        else if (arg == "--progress") progress = std::stol(next());
        else if (arg == "--time-limit") time_limit = std::stod(next());
        else {
            if (rank == 0) std::cerr << "greedi_bench: unknown option " << arg << "\n";
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
    }
    if (k == 0) k = std::max<Eigen::Index>(1, n / 100);
    coreset::GreeDiOptions o;
    o.greedy = greedy == "stochastic" ? coreset::Greedy::Stochastic : coreset::Greedy::Lazy;
    o.epsilon = epsilon;
    o.memory_budget_bytes = static_cast<std::size_t>(budget_mib * 1024 * 1024);
    const Synthetic gen(d, 12345);
    const Eigen::Index first = n * rank / size, count = n * (rank + 1) / size - first;
    const RowMatrix local = gen.rows(first, count);
    const double data_mib = coreset_bench::peak_rss_mib();

    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime(), cpu0 = process_cpu_seconds();
    coreset::Coreset<float> s;
    const std::string label = "rank " + std::to_string(rank) + ": ";
    coreset::PrintProgress print(std::cerr, progress > 0 ? progress : 1, 0, label);
    coreset::TimeLimit limit(time_limit >= 0 ? time_limit : 1e300);
    struct Observe {
        coreset::PrintProgress* print;
        coreset::TimeLimit* limit;
        bool on_step(const coreset::StepInfo& info) {
            if (print) print->on_step(info);
            return limit->on_step(info);
        }
    } observe{progress > 0 ? &print : nullptr, &limit};
    s = coreset::GreeDi(o).select(MPI_COMM_WORLD, local, k, observe);
    const double mine = MPI_Wtime() - t0, cpu = process_cpu_seconds() - cpu0;
    std::vector<double> cpus(static_cast<std::size_t>(size));
    MPI_Gather(&cpu, 1, MPI_DOUBLE, cpus.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    double slowest = 0;
    MPI_Reduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    const double peak = coreset_bench::peak_rss_mib();
    std::vector<double> peaks(static_cast<std::size_t>(size)), datas(static_cast<std::size_t>(size));
    MPI_Gather(&peak, 1, MPI_DOUBLE, peaks.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    MPI_Gather(&data_mib, 1, MPI_DOUBLE, datas.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    if (rank == 0) {
        std::printf("greedi: %d ranks x %d threads, n %ld, d %ld, k %ld, %s (epsilon %g), budget %.0f MiB: %.2f s, "
                    "status %s, objective %.6g\n",
                    size, threads, static_cast<long>(n), static_cast<long>(d), static_cast<long>(k), greedy.c_str(),
                    epsilon, budget_mib, slowest, coreset::to_string(s.status), s.objective.empty() ? 0.0 : s.objective.back());
        std::printf("peak RSS per rank (MiB; of which the rank's own rows and startup):");
        for (int r = 0; r < size; ++r) std::printf(" %.0f (%.0f)", peaks[static_cast<std::size_t>(r)], datas[static_cast<std::size_t>(r)]);
        std::printf("\nCPU seconds per rank (all threads; MPI waits spin, so they count):");
        for (int r = 0; r < size; ++r) std::printf(" %.1f", cpus[static_cast<std::size_t>(r)]);
        std::printf("\nflags: %s\n", CORESET_BENCH_FLAGS);
        std::fflush(stdout);
    }
    if (rank == 0 && !save.empty()) {
        // With one rank the picks are the centralised greedy's: keep their medoid cost and C (the
        // objective is n C - cost, C the largest distance from a row to a pick).
        const RowMatrix all = size == 1 ? local : gen.rows(0, n);
        const double cost = medoid_cost(all, s.indices);
        std::ofstream out(save);
        out.precision(17);
        out << cost << ' ' << (s.objective.back() + cost) / static_cast<double>(n) << '\n';
        std::printf("saved the medoid cost %.6g of %zu picks to %s\n", cost, s.indices.size(), save.c_str());
    }
    if (rank == 0 && !compare.empty()) {
        std::ifstream in(compare);
        double cost_ref = 0, c_ref = 0;
        in >> cost_ref >> c_ref;
        const RowMatrix all = gen.rows(0, n);
        const double cost = medoid_cost(all, s.indices);
        // F = n C - cost with one C for both: the larger of the two runs' C (each is the largest
        // distance from a row to its candidates, a lower bound of the largest pairwise distance).
        const double c = std::max(c_ref, (s.objective.back() + cost) / static_cast<double>(n));
        const double nc = static_cast<double>(n) * c;
        std::printf("medoid cost: GreeDi %.6g, centralised %.6g: ratio %.4f (lower is better); objective ratio "
                    "F(GreeDi) / F(central) = %.6f (C = %.6g)\n",
                    cost, cost_ref, cost / cost_ref, (nc - cost) / (nc - cost_ref), c);
    }
    if (central) {
        if (rank == 0) {
            const RowMatrix all = gen.rows(0, n);
            coreset::FacilityLocationOptions fo = o.engine();
            const double c0 = MPI_Wtime(), cc0 = process_cpu_seconds();
            const auto c = coreset::facility_location(all, k, fo);
            const double ct = MPI_Wtime() - c0, cct = process_cpu_seconds() - cc0;
            const double lc = medoid_cost(all, c.indices), lg = medoid_cost(all, s.indices);
            // The engine's objective is n C - cost with C the largest pairwise distance.
            const double nc = c.objective.back() + lc;
            std::printf("central: %.2f s (%.1f CPU s); objective ratio F(GreeDi) / F(central) = %.6f with C the largest pairwise "
                        "distance; medoid cost ratio %.4f (lower is better)\n",
                        ct, cct, (nc - lg) / (nc - lc), lg / lc);
        }
        quiet_barrier(MPI_COMM_WORLD);
    }
    MPI_Finalize();
    return 0;
}
