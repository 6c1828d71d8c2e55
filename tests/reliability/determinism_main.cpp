// SPDX-License-Identifier: MIT
// Runs every selector on fixed inputs and prints one line per result: a name and a 64-bit hash of
// every bit of the result (indices, weights, objective, status). Built twice, with OpenMP and
// without (see CMakeLists.txt); compare.cmake runs the OpenMP build with 1 and 3 threads and the
// serial build, and requires identical output. The inputs are large enough that every parallel
// loop of the library actually runs in parallel.
//
// Every selector gets `num_threads` = $CORESET_TEST_NUM_THREADS (default 0). A third build defines
// CORESET_OBSERVE_TEAMS: the library then reports the team of each of its parallel regions
// (CORESET_TEAM_OBSERVER), and the program prints the largest on stderr ("largest team N"), so
// that compare.cmake can check that no region used more threads than asked. Every build checks
// that the caller's OpenMP thread count is the same after the selections as before.
#include <atomic>
#include <cstdlib>

#ifdef CORESET_OBSERVE_TEAMS
namespace {
std::atomic<int> largest_team{0};
void observe_team(int team) {
    int seen = largest_team.load();
    while (team > seen && !largest_team.compare_exchange_weak(seen, team)) {
    }
}
}  // namespace
#define CORESET_TEAM_OBSERVER(team) observe_team(team)
#endif

#include <Eigen/Core>
#include <cmath>
#include <coreset/coreset.hpp>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace coreset;
using Index = Eigen::Index;

namespace {

struct Hash {
    std::uint64_t h = 1469598103934665603ULL;
    void bytes(const void* p, std::size_t n) {
        const auto* b = static_cast<const unsigned char*>(p);
        for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
    }
    template <class T>
    void value(const T& v) {
        bytes(&v, sizeof v);
    }
};

template <class Scalar>
void print(const std::string& name, const Coreset<Scalar>& c) {
    Hash h;
    for (Index i : c.indices) h.value(i);
    h.bytes(c.weights.data(), sizeof(Scalar) * static_cast<std::size_t>(c.weights.size()));
    h.bytes(c.objective.data(), sizeof(double) * c.objective.size());
    h.value(static_cast<int>(c.status));
    std::cout << name << ' ' << c.size() << ' ' << std::hex << h.h << std::dec << '\n';
}

// Normal draws from the library's generator (Box-Muller), shifted into `clusters` blobs.
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> blobs(Index n, Index d, Index clusters, std::uint64_t seed) {
    detail::Rng rng(seed);
    auto normal = [&] {
        double u = rng.uniform();
        while (u <= 0) u = rng.uniform();
        return std::sqrt(-2 * std::log(u)) * std::cos(6.283185307179586 * rng.uniform());
    };
    Eigen::MatrixXd centres(clusters, d);
    for (Index i = 0; i < clusters; ++i)
        for (Index j = 0; j < d; ++j) centres(i, j) = 8 * normal();
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> x(n, d);
    for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < d; ++j) x(i, j) = static_cast<Scalar>(centres(i % clusters, j) + normal());
    return x;
}

Eigen::VectorXi labels(Index n, int classes) {
    Eigen::VectorXi y(n);
    for (Index i = 0; i < n; ++i) y[i] = static_cast<int>((i * 7) % classes);
    return y;
}

// The num_threads option every selector gets.
int requested_threads() {
    const char* v = std::getenv("CORESET_TEST_NUM_THREADS");
    return v ? std::atoi(v) : 0;
}

template <class Scalar>
void selectors(const char* tag) {
    const int threads = requested_threads();
    using M = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
    const std::string t = tag;
    const M x = blobs<Scalar>(600, 24, 9, 1);
    const Eigen::VectorXi y = labels(600, 4);
    for (Greedy greedy : {Greedy::Naive, Greedy::Lazy, Greedy::Stochastic})
        for (Evaluation evaluation : {Evaluation::Dense, Evaluation::Blocked}) {
            CraigOptions o;
            o.greedy = greedy;
            o.evaluation = evaluation;
            o.seed = 5;
            o.num_threads = threads;
            const std::string name = t + ".craig." + to_string(greedy) + "." + to_string(evaluation);
            print(name, Craig(o).select(x, 30));
            print(name + ".classes", Craig(o).select(x, y, 30));
            print(name + ".batches", Craig(o).select_batches(x, 8, 48));
            print(name + ".weighted",
                  weighted_facility_location(x, Eigen::Matrix<Scalar, Eigen::Dynamic, 1>::LinSpaced(600, 1, 4), 20,
                                             o.engine()));
        }
    const M g = blobs<Scalar>(1500, 64, 5, 2);
    const Eigen::VectorXi yg = labels(1500, 3);
    for (NonNegativity nn : {NonNegativity::ActiveSet, NonNegativity::DropMostNegative}) {
        GradMatchOptions o;
        o.nonnegativity = nn;
        o.num_threads = threads;
        const std::string name = t + ".gradmatch." + to_string(nn);
        print(name, GradMatch(o).select(g, 40));
        print(name + ".classes", GradMatch(o).select(g, yg, 40));
        print(name + ".target", GradMatch(o).select(g, Target(Eigen::Matrix<Scalar, Eigen::Dynamic, 1>::Ones(64)), 40));
        print(name + ".batches", GradMatch(o).select_batches(g, 16, 200));
    }
    {
        AdaCoreOptions ao;
        ao.num_threads = threads;
        AdaCore<Scalar> a(1500, ao);
        for (std::uint64_t s = 0; s < 3; ++s) a.update(blobs<Scalar>(1500, 32, 6, 10 + s), blobs<Scalar>(1500, 32, 3, 20 + s));
        print(t + ".adacore", a.select(40));
        print(t + ".adacore.classes", a.select(yg, 40));
    }
    {
        CrestOptions o;
        o.subset_fraction = 0.1;
        o.initial_coresets = 4;
        o.batch_size = 32;
        o.drop_interval = 1;
        o.watch_window = 1;
        o.alpha = 0.3;
        o.num_threads = threads;
        const M all = blobs<Scalar>(3000, 10, 12, 3);
        Crest crest(labels(3000, 5), o);
        for (int round = 0; round < 3; ++round) {
            const auto cand = crest.candidates();
            M cg(cand.size(), 10);
            Eigen::VectorXd loss(cand.size());
            for (Index j = 0; j < cand.size(); ++j) {
                cg.row(j) = all.row(cand.indices[static_cast<std::size_t>(j)]);
                loss[j] = 0.1 * static_cast<double>(cand.indices[static_cast<std::size_t>(j)] % 5);
            }
            crest.select(cg, loss);
            for (const auto& b : crest.coresets()) {
                Coreset<double> c{b.indices, b.weights, {}, {}};
                print(t + ".crest.round" + std::to_string(round) + ".coreset" + std::to_string(b.coreset), c);
            }
            crest.begin_region(1.0, Eigen::VectorXd::Ones(4), Eigen::VectorXd::Constant(4, 0.5 + round));
            crest.record_update(Eigen::VectorXd::Constant(4, -0.1));
            crest.check(3.0);
        }
        Coreset<double> pool{crest.active(), {}, {}, {}};
        print(t + ".crest.pool", pool);
    }
}

}  // namespace

int main() {
#ifdef _OPENMP
    const int before = omp_get_max_threads();
    std::cerr << "OpenMP, " << before << " threads, num_threads " << requested_threads() << "\n";
#else
    std::cerr << "no OpenMP, num_threads " << requested_threads() << "\n";
#endif
    selectors<float>("float");
    selectors<double>("double");
#ifdef _OPENMP
    if (omp_get_max_threads() != before) {
        std::cerr << "the caller's thread count changed: " << before << " before, " << omp_get_max_threads()
                  << " after\n";
        return 1;
    }
#endif
#ifdef CORESET_OBSERVE_TEAMS
    std::cerr << "largest team " << largest_team.load() << "\n";
#endif
    return 0;
}
