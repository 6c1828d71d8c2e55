// SPDX-License-Identifier: MIT
// The facility-location engine: brute-force optima, agreement between greedy variants and
// evaluation modes, weights, numerics, memory budget, callbacks, determinism.
#include <algorithm>
#include <cmath>
#include <coreset/detail/distances.hpp>
#include <coreset/facility_location.hpp>
#include <limits>
#include <numeric>
#include <set>
#include <vector>

#include "test_support.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace coreset;
using coreset_test::gaussian;
using coreset_test::message_is;

namespace {

// Direct evaluation of the objective, in double, from the definition.
struct Direct {
    Eigen::MatrixXd d;  // pairwise distances
    Eigen::VectorXd mass;
    double c = 0;

    template <class M>
    Direct(const M& x, Metric metric, Eigen::VectorXd w = Eigen::VectorXd()) {
        const Eigen::MatrixXd xd = x.template cast<double>();
        const Eigen::Index n = xd.rows();
        mass = w.size() ? w : Eigen::VectorXd::Ones(n);
        d.resize(n, n);
        for (Eigen::Index i = 0; i < n; ++i)
            for (Eigen::Index j = 0; j < n; ++j) {
                const double sq = (xd.row(i) - xd.row(j)).squaredNorm();
                if (metric == Metric::Euclidean) d(i, j) = std::sqrt(sq);
                if (metric == Metric::SquaredEuclidean) d(i, j) = sq;
                if (metric == Metric::Cosine) d(i, j) = 1 - xd.row(i).dot(xd.row(j)) / (xd.row(i).norm() * xd.row(j).norm());
                if (metric == Metric::ExpEuclidean) d(i, j) = 1 - std::exp(-std::sqrt(sq) / static_cast<double>(xd.cols()));
            }
        c = metric == Metric::ExpEuclidean ? 1.0 : d.maxCoeff();  // ExpEuclidean: F is the similarity sum
    }
    double f(const std::vector<Eigen::Index>& s, double cc) const {
        if (s.empty()) return 0;
        double total = 0;
        for (Eigen::Index i = 0; i < d.rows(); ++i) {
            double best = -std::numeric_limits<double>::infinity();
            for (auto j : s) best = std::max(best, cc - d(i, j));
            total += mass[i] * best;
        }
        return total;
    }
    double f(const std::vector<Eigen::Index>& s) const { return f(s, c); }
    // Plain greedy from the definition with constant cc (ties to the lowest index). Stops before
    // a step whose two best gains are within 1e-9 relative: there the order is decided by rounding
    // (the engine's integer gains and this double arithmetic round differently).
    std::vector<Eigen::Index> greedy(Eigen::Index k, double cc) const {
        std::vector<Eigen::Index> s;
        for (Eigen::Index t = 0; t < k; ++t) {
            double best_gain = -1, second = -1;
            Eigen::Index best = -1;
            const double base = f(s, cc);
            for (Eigen::Index j = 0; j < d.rows(); ++j) {
                if (std::find(s.begin(), s.end(), j) != s.end()) continue;
                auto s2 = s;
                s2.push_back(j);
                const double g = f(s2, cc) - base;
                if (g > best_gain) {
                    second = best_gain;
                    best_gain = g;
                    best = j;
                } else if (g > second) {
                    second = g;
                }
            }
            if (best_gain - second <= 1e-9 * std::abs(best_gain)) break;
            s.push_back(best);
        }
        return s;
    }
    static std::vector<Eigen::Index> prefix(const std::vector<Eigen::Index>& v, std::size_t n) {
        return std::vector<Eigen::Index>(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(n, v.size())));
    }
    // Weight of each pick: mass of rows whose nearest pick it is (earliest pick on ties).
    std::vector<double> weights(const std::vector<Eigen::Index>& s) const {
        std::vector<double> w(s.size(), 0.0);
        for (Eigen::Index i = 0; i < d.rows(); ++i) {
            std::size_t arg = 0;
            for (std::size_t t = 1; t < s.size(); ++t)
                if (d(i, s[t]) < d(i, s[arg])) arg = t;
            w[arg] += mass[i];
        }
        return w;
    }
};

FacilityLocationOptions opts(Greedy g, Evaluation e = Evaluation::Auto, Metric m = Metric::Euclidean) {
    FacilityLocationOptions o;
    o.greedy = g;
    o.evaluation = e;
    o.metric = m;
    return o;
}

// Small integer-valued data with many duplicated rows and exact ties.
Eigen::MatrixXd tied_data(Eigen::Index n, Eigen::Index d, std::uint64_t seed) {
    detail::Rng rng(seed);
    Eigen::MatrixXd x(n, d);
    for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index j = 0; j < d; ++j) x(i, j) = static_cast<double>(rng.below(3));
    return x;
}

template <class Scalar>
void require_same(const Coreset<Scalar>& a, const Coreset<Scalar>& b) {
    REQUIRE(a.indices == b.indices);
    REQUIRE(a.status == b.status);
    REQUIRE(a.weights == b.weights);
    REQUIRE(a.objective.size() == b.objective.size());
    for (std::size_t t = 0; t < a.objective.size(); ++t) REQUIRE(a.objective[t] == b.objective[t]);
}

}  // namespace

TEMPLATE_TEST_CASE("facility location: greedy meets (1 - 1/e) of the brute-force optimum", "[facility_location]", float,
                   double) {
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
        const Eigen::Index n = 6 + static_cast<Eigen::Index>(seed % 7);  // 6..12
        const Eigen::Index k = 1 + static_cast<Eigen::Index>(seed % 4);
        const auto metric = static_cast<Metric>(seed % 4);
        const auto x = gaussian<TestType>(n, 3, seed);
        const Direct ref(x, metric);
        // Exact optimum over all k-subsets.
        double opt = 0;
        std::vector<int> mask(static_cast<std::size_t>(n), 0);
        std::fill(mask.end() - k, mask.end(), 1);
        do {
            std::vector<Eigen::Index> s;
            for (Eigen::Index i = 0; i < n; ++i)
                if (mask[static_cast<std::size_t>(i)]) s.push_back(i);
            opt = std::max(opt, ref.f(s));
        } while (std::next_permutation(mask.begin(), mask.end()));
        for (auto g : {Greedy::Naive, Greedy::Lazy}) {
            const auto r = facility_location(x, k, opts(g, Evaluation::Auto, metric));
            INFO("seed " << seed << " n " << n << " k " << k << " metric " << metric << " greedy " << g);
            REQUIRE(r.size() == k);
            REQUIRE(r.objective.back() >= (1 - std::exp(-1.0)) * opt * (1 - 1e-5));
            REQUIRE(r.objective.back() <= opt * (1 + 1e-5) + 1e-9);
            // Objective after every pick matches the formula; gains are non-increasing.
            std::vector<Eigen::Index> prefix;
            double last_gain = std::numeric_limits<double>::infinity();
            for (std::size_t t = 0; t < r.indices.size(); ++t) {
                const double before = ref.f(prefix);
                prefix.push_back(r.indices[t]);
                REQUIRE_THAT(r.objective[t], Catch::Matchers::WithinRel(ref.f(prefix), 1e-4) ||
                                                 Catch::Matchers::WithinAbs(ref.f(prefix), 1e-5));
                const double gain = ref.f(prefix) - before;
                REQUIRE(gain <= last_gain * (1 + 1e-4) + 1e-6);
                last_gain = gain;
            }
        }
    }
}

TEMPLATE_TEST_CASE("facility location: picks equal a from-scratch greedy, whatever C", "[facility_location]", float,
                   double) {
    for (std::uint64_t seed = 1; seed <= 10; ++seed) {
        for (const Metric metric : {static_cast<Metric>(seed % 3), Metric::ExpEuclidean}) {
            const auto x = gaussian<TestType>(40, 4, seed * 7);
            const Direct ref(x, metric);
            const auto r = facility_location(x, 8, opts(Greedy::Naive, Evaluation::Auto, metric));
            INFO("seed " << seed << " metric " << metric);
            const auto expect = ref.greedy(8, ref.c);
            REQUIRE(expect.size() >= 4);  // near-ties are rare on Gaussian data
            REQUIRE(Direct::prefix(r.indices, expect.size()) == expect);
            const auto shifted = ref.greedy(8, 3 * ref.c + 5);  // the order does not depend on C
            REQUIRE(Direct::prefix(r.indices, shifted.size()) == shifted);
            // Weights: the direct nearest-pick count.
            const auto w = ref.weights(r.indices);
            for (Eigen::Index t = 0; t < r.size(); ++t) REQUIRE(r.weights[t] == static_cast<TestType>(w[static_cast<std::size_t>(t)]));
        }
    }
}

TEST_CASE("facility location: lazy == naive == full-sample stochastic on ties and duplicates", "[facility_location]") {
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
        const Eigen::Index n = 20 + static_cast<Eigen::Index>(seed % 50), d = 1 + static_cast<Eigen::Index>(seed % 4);
        const Eigen::MatrixXd x = tied_data(n, d, seed);
        const Eigen::Index k = 1 + static_cast<Eigen::Index>((seed * 13) % static_cast<std::uint64_t>(n));
        for (auto metric : {Metric::Euclidean, Metric::SquaredEuclidean}) {
            INFO("seed " << seed << " n " << n << " d " << d << " k " << k << " metric " << metric);
            const auto naive = facility_location(x, k, opts(Greedy::Naive, Evaluation::Dense, metric));
            const auto lazy = facility_location(x, k, opts(Greedy::Lazy, Evaluation::Dense, metric));
            auto so = opts(Greedy::Stochastic, Evaluation::Dense, metric);
            so.epsilon = 1e-300;  // sample size (n / k) * 690 >= n: every row is evaluated
            const auto stochastic = facility_location(x, std::min<Eigen::Index>(k, 600), so);
            require_same(naive, lazy);
            if (k <= 600) require_same(naive, stochastic);
            // Distinct picks, weights >= 1, summing to n.
            std::set<Eigen::Index> unique(naive.indices.begin(), naive.indices.end());
            REQUIRE(unique.size() == naive.indices.size());
            REQUIRE(naive.weights.minCoeff() >= 1.0);
            REQUIRE(naive.weights.sum() == static_cast<double>(n));
        }
    }
}

TEST_CASE("facility location: exhausted only when every remaining row duplicates a pick", "[facility_location]") {
    Eigen::MatrixXd x(7, 2);
    x << 0, 0, 1, 1, 0, 0, 1, 1, 5, 5, 0, 0, 1, 1;  // three distinct rows
    for (auto g : {Greedy::Naive, Greedy::Lazy, Greedy::Stochastic})
        for (auto e : {Evaluation::Dense, Evaluation::Blocked}) {
            const auto r = facility_location(x, 6, opts(g, e));
            INFO(g << " " << e);
            REQUIRE(r.status == Status::Exhausted);
            REQUIRE(r.size() == 3);
            REQUIRE(r.weights.sum() == 7.0);
            std::set<Eigen::Index> distinct;
            for (auto i : r.indices) distinct.insert(static_cast<Eigen::Index>(x(i, 0)));
            REQUIRE(distinct == std::set<Eigen::Index>{0, 1, 5});
            const auto r3 = facility_location(x, 3, opts(g, e));
            REQUIRE(r3.status == Status::BudgetReached);
            if (g != Greedy::Stochastic) REQUIRE(r3.indices == r.indices);  // the sample size depends on k
        }
    // All rows identical: one pick carries all the weight.
    const Eigen::MatrixXf same = Eigen::MatrixXf::Constant(5, 3, 2.5f);
    const auto r = facility_location(same, 4);
    REQUIRE(r.status == Status::Exhausted);
    REQUIRE(r.indices == std::vector<Eigen::Index>{0});
    REQUIRE(r.weights[0] == 5.0f);
    REQUIRE(r.objective[0] == 0.0);
}

TEMPLATE_TEST_CASE("facility location: dense and blocked evaluation give the same result", "[facility_location]", float,
                   double) {
    for (std::uint64_t seed = 1; seed <= 4; ++seed) {
        const auto x = coreset_test::blobs<TestType>(700, 1 + static_cast<Eigen::Index>(seed * 5), 12, 1.0, seed);
        for (auto g : {Greedy::Naive, Greedy::Lazy, Greedy::Stochastic}) {
            auto o = opts(g, Evaluation::Dense, static_cast<Metric>(seed % 4));
            const auto dense = facility_location(x, 70, o);
            o.evaluation = Evaluation::Blocked;
            o.memory_budget_bytes = sizeof(TestType) == 4 ? 900000 : 1600000;  // about 50-150 rows per block
            const auto blocked = facility_location(x, 70, o);
            INFO("seed " << seed << " greedy " << g);
            REQUIRE(dense.indices == blocked.indices);
            REQUIRE(dense.weights == blocked.weights);
            for (std::size_t t = 0; t < dense.objective.size(); ++t)
                REQUIRE_THAT(blocked.objective[t], Catch::Matchers::WithinRel(dense.objective[t], 1e-12));
        }
    }
}

TEMPLATE_TEST_CASE("facility location: blocked equals dense on tight clusters, duplicates and outliers",
                   "[facility_location]", float, double) {
    // Tight, well-separated clusters, duplicated rows, multiplicities and rows far out (they set
    // C): lazy and stochastic greedy in blocked mode must give the dense result bit for bit, for
    // every metric, with and without multiplicities.
    auto x = coreset_test::blobs<TestType>(800, 6, 40, 0.05, 9);
    for (Eigen::Index i = 0; i < 40; ++i) x.row(700 + i) = x.row(i);
    x.row(7) *= TestType(25);
    x.row(8) *= TestType(-20);
    Eigen::Matrix<TestType, Eigen::Dynamic, 1> mass(800);
    for (Eigen::Index i = 0; i < 800; ++i) mass[i] = TestType(1 + i % 3);
    for (Metric metric : {Metric::Euclidean, Metric::SquaredEuclidean, Metric::Cosine, Metric::ExpEuclidean})
        for (auto g : {Greedy::Lazy, Greedy::Stochastic})
            for (bool weighted : {false, true}) {
                if (weighted && metric == Metric::Cosine) continue;
                auto o = opts(g, Evaluation::Dense, metric);
                o.epsilon = 0.1;
                const auto run = [&] {
                    return weighted ? weighted_facility_location(x, mass, 60, o) : facility_location(x, 60, o);
                };
                const auto dense = run();
                o.evaluation = Evaluation::Blocked;
                o.memory_budget_bytes = std::size_t(3) << 20;  // blocks of about 200 rows
                const auto blocked = run();
                INFO("metric " << metric << " greedy " << g << " weighted " << weighted);
                REQUIRE(dense.indices == blocked.indices);
                REQUIRE(dense.weights == blocked.weights);
                REQUIRE(dense.objective == blocked.objective);
            }
}

TEMPLATE_TEST_CASE("facility location: multiplicities act as repeated rows", "[facility_location]", float, double) {
    // Row i with multiplicity m_i behaves like m_i copies of row i.
    const auto base = gaussian<TestType>(25, 3, 99);
    Eigen::VectorXd mult(25);
    for (Eigen::Index i = 0; i < 25; ++i) mult[i] = 1 + static_cast<double>(i % 4);
    Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic> expanded(static_cast<Eigen::Index>(mult.sum()), 3);
    std::vector<Eigen::Index> origin;
    for (Eigen::Index i = 0, r = 0; i < 25; ++i)
        for (int c = 0; c < static_cast<int>(mult[i]); ++c, ++r) {
            expanded.row(r) = base.row(i);
            origin.push_back(i);
        }
    const Direct ref(base, Metric::Euclidean, mult);
    for (auto g : {Greedy::Naive, Greedy::Lazy}) {
        const auto w = weighted_facility_location(base, mult, 6, opts(g));
        const auto e = facility_location(expanded, 6, opts(g));
        std::vector<Eigen::Index> mapped;
        for (auto i : e.indices) mapped.push_back(origin[static_cast<std::size_t>(i)]);
        REQUIRE(w.indices == mapped);
        const auto expect = ref.greedy(6, ref.c);
        REQUIRE(Direct::prefix(w.indices, expect.size()) == expect);
        REQUIRE_THAT(static_cast<double>(w.weights.sum()), Catch::Matchers::WithinRel(mult.sum(), 1e-6));
        for (Eigen::Index t = 0; t < w.size(); ++t) REQUIRE(w.weights[t] == e.weights[t]);
        REQUIRE_THAT(w.objective.back(), Catch::Matchers::WithinRel(ref.f(w.indices), 1e-4));
    }
    REQUIRE_THROWS_MATCHES(weighted_facility_location(base, Eigen::VectorXd::Ones(24), 3), std::invalid_argument,
                           message_is("coreset::weighted_facility_location(): multiplicities must have one entry per row (got 24 for m = 25 rows)"));
    Eigen::VectorXd bad = Eigen::VectorXd::Ones(25);
    bad[7] = 0;
    REQUIRE_THROWS_MATCHES(weighted_facility_location(base, bad, 3), std::invalid_argument,
                           message_is("coreset::weighted_facility_location(): multiplicities must be > 0 (got 0 at index 7)"));
}

TEST_CASE("facility location: row permutation permutes the picks", "[facility_location]") {
    const auto x = gaussian<double>(60, 5, 5);
    std::vector<Eigen::Index> perm(60);
    std::iota(perm.begin(), perm.end(), 0);
    detail::Rng rng(8);
    rng.shuffle(perm);
    Eigen::MatrixXd y(60, 5);
    for (Eigen::Index i = 0; i < 60; ++i) y.row(i) = x.row(perm[static_cast<std::size_t>(i)]);
    const auto a = facility_location(x, 12);
    const auto b = facility_location(y, 12);
    for (std::size_t t = 0; t < 12; ++t) REQUIRE(perm[static_cast<std::size_t>(b.indices[t])] == a.indices[t]);
    REQUIRE(a.weights == b.weights);
}

TEST_CASE("facility location: float and double agree on well-separated data", "[facility_location]") {
    const auto xd = coreset_test::blobs<double>(400, 6, 10, 0.5, 3);
    const Eigen::MatrixXf xf = xd.cast<float>();
    const auto a = facility_location(xd, 10);
    const auto b = facility_location(xf, 10);
    REQUIRE(a.indices == b.indices);
    for (Eigen::Index t = 0; t < 10; ++t) REQUIRE(static_cast<double>(b.weights[t]) == a.weights[t]);
}

TEST_CASE("facility location: huge and tiny magnitudes in float", "[facility_location]") {
    const Eigen::MatrixXf x = coreset_test::blobs<float>(200, 4, 5, 0.3, 4);
    const auto ref = facility_location(x, 15);
    for (float s : {1e30f, 1e-30f, 1e-38f}) {
        const Eigen::MatrixXf y = x * s;
        const auto r = facility_location(y, 15);
        INFO("scale " << s);
        REQUIRE(r.indices == ref.indices);
        REQUIRE(r.weights == ref.weights);
        REQUIRE(std::isfinite(r.objective.back()));
        REQUIRE_THAT(r.objective.back() / static_cast<double>(s), Catch::Matchers::WithinRel(ref.objective.back(), 1e-3));
    }
    // d = 1 and a single row.
    const Eigen::MatrixXf one = Eigen::MatrixXf::Constant(1, 1, 3.0f);
    const auto r1 = facility_location(one, 1);
    REQUIRE(r1.indices == std::vector<Eigen::Index>{0});
    REQUIRE(r1.weights[0] == 1.0f);
}

TEST_CASE("facility location: stochastic greedy is seeded and close to greedy", "[facility_location]") {
    const auto x = coreset_test::blobs<float>(2000, 8, 20, 1.0, 6);
    auto o = opts(Greedy::Stochastic);
    o.epsilon = 0.1;
    const auto a = facility_location(x, 100, o);
    const auto b = facility_location(x, 100, o);
    require_same(a, b);
    o.seed = 1;
    const auto c = facility_location(x, 100, o);
    REQUIRE(a.indices != c.indices);
    const auto greedy = facility_location(x, 100);
    REQUIRE(a.objective.back() >= 0.98 * greedy.objective.back());
    REQUIRE(a.weights.sum() == 2000.0f);
}

TEST_CASE("facility location: a callback observes every pick and may stop", "[facility_location]") {
    struct Recorder {
        std::vector<StepInfo> steps;
        bool on_step(const StepInfo& s) {
            steps.push_back(s);
            return s.step == 4;
        }
    } rec;
    const auto x = gaussian<double>(50, 3, 2);
    const auto r = facility_location(x, 10, FacilityLocationOptions{}, rec);
    REQUIRE(r.status == Status::StoppedByCallback);
    REQUIRE(r.size() == 5);
    REQUIRE(rec.steps.size() == 5);
    for (std::size_t t = 0; t < 5; ++t) {
        REQUIRE(rec.steps[t].picked == r.indices[t]);
        REQUIRE(rec.steps[t].objective == r.objective[t]);
    }
    REQUIRE_THAT(rec.steps[1].gain, Catch::Matchers::WithinRel(r.objective[1] - r.objective[0], 1e-12));
    REQUIRE_THAT(r.weights.sum(), Catch::Matchers::WithinRel(50.0, 1e-12));
}

namespace {
std::size_t minimum_from(const std::string& message) {
    const auto at = message.find("at least ") + 9;
    return static_cast<std::size_t>(std::stoull(message.substr(at)));
}
}  // namespace

TEST_CASE("facility location: the memory budget is honoured or refused up front", "[facility_location]") {
    const auto x = gaussian<float>(300, 4, 1);
    auto o = opts(Greedy::Lazy, Evaluation::Dense);
    o.memory_budget_bytes = 100000;  // 300 x 300 floats alone need 360000 bytes
    std::string dense_message, blocked_message;
    try {
        (void)facility_location(x, 5, o);
    } catch (const std::invalid_argument& e) {
        dense_message = e.what();
    }
    REQUIRE(dense_message.find("coreset::facility_location(): memory_budget_bytes must be at least ") == 0);
    REQUIRE(dense_message.find("for Evaluation::Dense on this input (got 100000, m = 300)") != std::string::npos);
    const std::size_t dense_minimum = minimum_from(dense_message);
    REQUIRE(dense_minimum > 360000);
    o.memory_budget_bytes = dense_minimum;  // exactly enough
    const auto dense = facility_location(x, 5, o);
    o.evaluation = Evaluation::Auto;
    o.memory_budget_bytes = dense_minimum - 1;  // falls back to blocked evaluation
    REQUIRE(facility_location(x, 5, o).indices == dense.indices);
    o.memory_budget_bytes = 1000;
    try {
        (void)facility_location(x, 5, o);
    } catch (const std::invalid_argument& e) {
        blocked_message = e.what();
    }
    REQUIRE(blocked_message.find("coreset::facility_location(): memory_budget_bytes must be at least ") == 0);
    REQUIRE(blocked_message.find("for this input (got 1000, m = 300)") != std::string::npos);
    const std::size_t blocked_minimum = minimum_from(blocked_message);
    o.memory_budget_bytes = blocked_minimum;  // one row per block
    REQUIRE(facility_location(x, 5, o).indices == dense.indices);
    o.memory_budget_bytes = blocked_minimum - 1;
    REQUIRE_THROWS_AS(facility_location(x, 5, o), std::invalid_argument);
}

TEST_CASE("facility location: bad input and options", "[facility_location]") {
    const auto x = gaussian<double>(10, 2, 1);
    REQUIRE_THROWS_MATCHES(facility_location(x, 0), std::invalid_argument,
                           message_is("coreset::facility_location(): budget must satisfy 1 <= budget <= n (got budget = 0, n = 10)"));
    REQUIRE_THROWS_MATCHES(facility_location(x, 11), std::invalid_argument,
                           message_is("coreset::facility_location(): budget must satisfy 1 <= budget <= n (got budget = 11, n = 10)"));
    REQUIRE_THROWS_MATCHES(facility_location(Eigen::MatrixXd(0, 2), 1), std::invalid_argument,
                           message_is("coreset::facility_location(): gradients must have at least one row and one column (got 0 x 2)"));
    Eigen::MatrixXd nan = x;
    nan(3, 1) = std::numeric_limits<double>::quiet_NaN();
    REQUIRE_THROWS_MATCHES(facility_location(nan, 2), std::invalid_argument,
                           message_is("coreset::facility_location(): gradients must be finite (got nan at row 3, column 1)"));
    Eigen::MatrixXd zero = x;
    zero.row(4).setZero();
    REQUIRE_THROWS_MATCHES(facility_location(zero, 2, opts(Greedy::Lazy, Evaluation::Auto, Metric::Cosine)),
                           std::invalid_argument,
                           message_is("coreset::facility_location(): gradients must have no zero row under Metric::Cosine (got a zero row at index 4)"));
    FacilityLocationOptions o;
    o.epsilon = 1.0;
    REQUIRE_THROWS_MATCHES(o.validate(), std::invalid_argument,
                           message_is("FacilityLocationOptions::validate(): epsilon must satisfy 0 < epsilon < 1 (got 1)"));
    o.epsilon = std::numeric_limits<double>::quiet_NaN();
    REQUIRE_THROWS_MATCHES(o.validate(), std::invalid_argument,
                           message_is("FacilityLocationOptions::validate(): epsilon must satisfy 0 < epsilon < 1 (got nan)"));
    o = FacilityLocationOptions{};
    o.greedy = static_cast<Greedy>(7);
    REQUIRE_THROWS_MATCHES(o.validate(), std::invalid_argument,
                           message_is("FacilityLocationOptions::validate(): greedy must satisfy a Greedy enumerator (got 7)"));
    o = FacilityLocationOptions{};
    o.memory_budget_bytes = 0;
    REQUIRE_THROWS_MATCHES(o.validate(), std::invalid_argument,
                           message_is("FacilityLocationOptions::validate(): memory_budget_bytes must satisfy memory_budget_bytes > 0 (got 0)"));
    // The caller's matrix is untouched.
    const Eigen::MatrixXd copy = x;
    (void)facility_location(x, 3, opts(Greedy::Lazy, Evaluation::Auto, Metric::Cosine));
    REQUIRE(x == copy);
}

#ifdef _OPENMP
TEST_CASE("facility location: results do not depend on the thread count", "[facility_location][determinism]") {
    const auto x = coreset_test::blobs<float>(1500, 40, 15, 1.0, 9);
    const int saved = omp_get_max_threads();
    std::vector<Coreset<float>> runs;
    std::vector<std::vector<float>> distances;
    for (int threads : {1, 2, 3}) {
        omp_set_num_threads(threads);
        for (auto g : {Greedy::Naive, Greedy::Lazy, Greedy::Stochastic})
            for (auto e : {Evaluation::Dense, Evaluation::Blocked}) {
                auto o = opts(g, e);
                if (e == Evaluation::Blocked) o.memory_budget_bytes = 3 << 20;  // block size depends on threads
                runs.push_back(facility_location(x, 150, o));
            }
        detail::PairwiseDistances<float> dist(detail::RowMatrix<float>(x), Metric::Euclidean, "test");
        std::vector<Eigen::Index> ids(1500);
        std::iota(ids.begin(), ids.end(), 0);
        std::vector<float> all(1500 * 1500);
        dist.compute(ids.data(), 1500, all.data(), true);
        distances.push_back(all);
    }
    omp_set_num_threads(saved);
    for (std::size_t r = 6; r < runs.size(); ++r) require_same(runs[r % 6], runs[r]);
    REQUIRE(distances[0] == distances[1]);
    REQUIRE(distances[0] == distances[2]);
}
#endif

TEST_CASE("facility location: distances are symmetric, zero on the diagonal, exact for duplicates", "[facility_location]") {
    Eigen::MatrixXf x = coreset_test::blobs<float>(300, 30, 4, 0.01, 12);
    x.row(17) = x.row(250);
    detail::PairwiseDistances<float> dist(detail::RowMatrix<float>(x), Metric::Euclidean, "test");
    std::vector<Eigen::Index> ids(300);
    std::iota(ids.begin(), ids.end(), 0);
    std::vector<float> d(300 * 300);
    dist.compute(ids.data(), 300, d.data(), true);
    REQUIRE(d[17 * 300 + 250] == 0.0f);
    REQUIRE(d[250 * 300 + 17] == 0.0f);
    double worst = 0;
    for (Eigen::Index i = 0; i < 300; ++i) {
        REQUIRE(d[static_cast<std::size_t>(i * 300 + i)] == 0.0f);
        for (Eigen::Index j = 0; j < 300; ++j) {
            const double exact = static_cast<double>((x.row(i).cast<double>() - x.row(j).cast<double>()).norm());
            const double got = static_cast<double>(d[static_cast<std::size_t>(i * 300 + j)]) * dist.unit();
            worst = std::max(worst, std::abs(got - exact) / std::max(exact, 1e-3));
        }
    }
    REQUIRE(worst < 1e-3);  // relative, even for points 0.01 apart in a cloud at distance ~30 from 0
}

TEMPLATE_TEST_CASE("facility location: tiled distances are exactly symmetric and mode-independent", "[facility_location]",
                   float, double) {
    // The greedy's exactness (lazy == naive, dense == blocked) needs d(i, j) == d(j, i) to the last
    // bit and the same value whichever rows are computed together.
    for (Eigen::Index d : {1, 11, 64, 300, 1500}) {
        const Eigen::Index m = d > 100 ? 300 : 517;
        const auto x = coreset_test::blobs<TestType>(m, d, 7, 1.0, static_cast<std::uint64_t>(d));
        for (auto metric : {Metric::Euclidean, Metric::SquaredEuclidean, Metric::Cosine, Metric::ExpEuclidean}) {
            detail::PairwiseDistances<TestType> dist(detail::RowMatrix<TestType>(x), metric, "test");
            std::vector<TestType> all(static_cast<std::size_t>(m * m)), rows(static_cast<std::size_t>(m * m));
            dist.compute_all(all.data(), true);
            std::vector<Eigen::Index> ids(static_cast<std::size_t>(m));
            std::iota(ids.begin(), ids.end(), Eigen::Index(0));
            detail::Rng rng(static_cast<std::uint64_t>(d));
            rng.shuffle(ids);  // rows in a scrambled order, in blocks of 37
            for (Eigen::Index a = 0; a < m; a += 37) {
                const Eigen::Index r = std::min<Eigen::Index>(37, m - a);
                std::vector<TestType> block(static_cast<std::size_t>(r * m));
                dist.compute(ids.data() + a, r, block.data(), true);
                for (Eigen::Index t = 0; t < r; ++t)
                    std::copy(block.begin() + t * m, block.begin() + (t + 1) * m,
                              rows.begin() + ids[static_cast<std::size_t>(a + t)] * m);
            }
            INFO("d " << d << " metric " << metric);
            REQUIRE(all == rows);
            std::size_t asymmetric = 0;
            for (Eigen::Index i = 0; i < m; ++i)
                for (Eigen::Index j = 0; j < i; ++j)
                    asymmetric += all[static_cast<std::size_t>(i * m + j)] != all[static_cast<std::size_t>(j * m + i)];
            REQUIRE(asymmetric == 0);
        }
    }
}

namespace {
// Rows on rays through the origin at log-normal scales (the benchmarks' workload, smaller): some
// leaves are tight, some wide, norms spread over two orders of magnitude.
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> rays(Eigen::Index n, Eigen::Index d, std::uint64_t seed) {
    const Eigen::MatrixXd centres = gaussian<double>(7, d, seed ^ 0xabcULL);
    detail::Rng rng(seed);
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> x(n, d);
    for (Eigen::Index i = 0; i < n; ++i) {
        const double scale = std::exp(0.75 * coreset_test::normal(rng));
        for (Eigen::Index j = 0; j < d; ++j)
            x(i, j) = static_cast<Scalar>(scale * (centres(i % 7, j) + 0.25 * coreset_test::normal(rng)));
    }
    return x;
}
}  // namespace

TEMPLATE_TEST_CASE("facility location: blocked (reordered, pruned, fused) equals dense on many leaves",
                   "[facility_location][blocked]", float, double) {
    // m = 2 500 rows make 13 leaves, the last one wider; pruning skips most (candidate, leaf)
    // pairs late in the run. Every variant, metric and weighting must match dense evaluation bit
    // for bit (indices, weights, objective), including non-integer multiplicities, whose sums
    // depend on the order in which they are added.
    const auto x = rays<TestType>(2500, 12, 4);
    Eigen::Matrix<TestType, Eigen::Dynamic, 1> mass(2500);
    for (Eigen::Index i = 0; i < 2500; ++i) mass[i] = TestType(0.3 + 0.37 * static_cast<double>(i % 5));
    for (Metric metric : {Metric::Euclidean, Metric::SquaredEuclidean, Metric::Cosine, Metric::ExpEuclidean})
        for (auto g : {Greedy::Naive, Greedy::Lazy, Greedy::Stochastic})
            for (bool weighted : {false, true}) {
                if (g == Greedy::Naive && metric != Metric::Euclidean) continue;  // slow; the engine is shared
                auto o = opts(g, Evaluation::Dense, metric);
                o.memory_budget_bytes = std::size_t(256) << 20;
                o.epsilon = 0.05;
                o.seed = 11;
                const auto run = [&] {
                    return weighted ? weighted_facility_location(x, mass, 120, o) : facility_location(x, 120, o);
                };
                const auto dense = run();
                o.evaluation = Evaluation::Blocked;
                const auto blocked = run();
                INFO("metric " << metric << " greedy " << g << " weighted " << weighted);
                REQUIRE(dense.size() == 120);
                REQUIRE(dense.indices == blocked.indices);
                REQUIRE(dense.weights == blocked.weights);
                REQUIRE(dense.objective == blocked.objective);
            }
}

TEMPLATE_TEST_CASE("facility location: leaf bounds never skip a distance that matters", "[facility_location][blocked]",
                   float, double) {
    // After cluster(), the rows keep their distances bit for bit (permuted), and the two pruning
    // tests are sound against the engine's own computed distances: a (row, leaf) pair marked
    // unneeded has every distance >= the leaf's threshold, and a leaf pair marked below a floor
    // has every distance < the floor. Thresholds are taken from the distances themselves (the
    // hardest cases: exactly at a distance) as well as from quantiles.
    for (Metric metric : {Metric::Euclidean, Metric::SquaredEuclidean, Metric::Cosine, Metric::ExpEuclidean}) {
        INFO("metric " << metric);
        const auto x = rays<TestType>(1000, 9, 21);
        detail::PairwiseDistances<TestType> before(detail::RowMatrix<TestType>(x), metric, "test");
        detail::PairwiseDistances<TestType> dist(detail::RowMatrix<TestType>(x), metric, "test");
        const Eigen::Index m = 1000;
        std::vector<TestType> d0(static_cast<std::size_t>(m * m)), d1(d0.size());
        before.compute_all(d0.data(), false);
        const std::vector<Eigen::Index> order = dist.cluster();
        REQUIRE(dist.clustered());
        REQUIRE(dist.leaves() == 5);
        std::vector<Eigen::Index> sorted = order;
        std::sort(sorted.begin(), sorted.end());
        for (Eigen::Index i = 0; i < m; ++i) REQUIRE(sorted[static_cast<std::size_t>(i)] == i);
        dist.compute_all(d1.data(), false);
        std::size_t moved = 0;  // distances that changed in the reordering
        for (Eigen::Index p = 0; p < m; ++p)
            for (Eigen::Index q = 0; q < m; ++q)
                moved += d1[static_cast<std::size_t>(p * m + q)] !=
                         d0[static_cast<std::size_t>(order[static_cast<std::size_t>(p)] * m + order[static_cast<std::size_t>(q)])];
        REQUIRE(moved == 0);

        const Eigen::Index L = dist.leaves();
        std::vector<Eigen::Index> all(static_cast<std::size_t>(m));
        std::iota(all.begin(), all.end(), Eigen::Index(0));
        std::vector<TestType> sorted_d(d1);
        std::sort(sorted_d.begin(), sorted_d.end());
        detail::Rng rng(5);
        std::size_t skipped = 0, wrong = 0;
        for (int trial = 0; trial < 40; ++trial) {
            std::vector<TestType> best(static_cast<std::size_t>(L));
            for (auto& b : best)  // a quantile, or exactly one of the distances
                b = trial % 2 ? sorted_d[static_cast<std::size_t>(rng.below(sorted_d.size() / 4))]
                              : d1[static_cast<std::size_t>(rng.below(d1.size()))];
            std::vector<char> need;
            dist.needed_leaves(all.data(), m, best.data(), need);
            for (Eigen::Index i = 0; i < m; ++i)
                for (Eigen::Index l = 0; l < L; ++l) {
                    if (need[static_cast<std::size_t>(i * L + l)]) continue;
                    ++skipped;
                    for (Eigen::Index j = dist.leaf_begin(l); j < dist.leaf_end(l); ++j)
                        wrong += d1[static_cast<std::size_t>(i * m + j)] < best[static_cast<std::size_t>(l)];
                }
        }
        REQUIRE(skipped > 0);  // the test exercises the pruning
        REQUIRE(wrong == 0);
        std::size_t below = 0;
        for (TestType floor : {sorted_d[d1.size() / 2], sorted_d[d1.size() * 9 / 10], sorted_d.back()}) {
            for (Eigen::Index l1 = 0; l1 < L; ++l1) {
                std::vector<char> out;
                dist.leaves_above(l1, floor, out);
                REQUIRE(out.size() == static_cast<std::size_t>(l1 + 1));
                for (Eigen::Index l2 = 0; l2 <= l1; ++l2) {
                    if (out[static_cast<std::size_t>(l2)]) continue;
                    ++below;
                    for (Eigen::Index i = dist.leaf_begin(l1); i < dist.leaf_end(l1); ++i)
                        for (Eigen::Index j = dist.leaf_begin(l2); j < dist.leaf_end(l2); ++j)
                            wrong += !(d1[static_cast<std::size_t>(i * m + j)] < floor);
                }
            }
        }
        REQUIRE(below > 0);
        REQUIRE(wrong == 0);
    }
}

TEST_CASE("facility location: the fused kernel gives compute()'s distances", "[facility_location][blocked]") {
    // visit() hands out, leaf by leaf, exactly the entries compute() writes, for any subset of
    // rows and any mask.
    const auto x = rays<float>(1300, 20, 8);
    detail::PairwiseDistances<float> dist(detail::RowMatrix<float>(x), Metric::Euclidean, "test");
    dist.cluster();
    const Eigen::Index m = 1300, L = dist.leaves();
    std::vector<Eigen::Index> ids{5, 1299, 0, 640, 7, 7, 333};
    for (Eigen::Index i = 100; i < 300; i += 3) ids.push_back(i);
    const auto r = static_cast<Eigen::Index>(ids.size());
    std::vector<float> ref(static_cast<std::size_t>(r * m)), got(ref.size(), -1.0f);
    dist.compute(ids.data(), r, ref.data(), true);
    std::vector<char> need(static_cast<std::size_t>(r * L));
    for (std::size_t t = 0; t < need.size(); ++t) need[t] = static_cast<char>(t % 3 != 1);
    dist.visit(ids.data(), r, need.data(), L, true, [&](Eigen::Index t, Eigen::Index c0, Eigen::Index cn, const float* d) {
        std::copy(d, d + cn, got.data() + t * m + c0);
    });
    std::size_t wrong = 0;
    for (Eigen::Index t = 0; t < r; ++t)
        for (Eigen::Index l = 0; l < L; ++l)
            for (Eigen::Index j = dist.leaf_begin(l); j < dist.leaf_end(l); ++j) {
                const float want = need[static_cast<std::size_t>(t * L + l)] ? ref[static_cast<std::size_t>(t * m + j)] : -1.0f;
                wrong += got[static_cast<std::size_t>(t * m + j)] != want;
            }
    REQUIRE(wrong == 0);
}

namespace {
// submodlib's dense "euclidean" kernel and greedy, written from their definitions in double:
// s(i, j) = exp(-|x_i - x_j| / d), F(S) = sum_i max_{j in S} s(i, j), F({}) = 0, plain greedy
// with ties to the lowest row, stopping before a step whose two best gains are within 1e-9
// relative (rounding decides there). Weights: each row counts for its most similar pick (the
// earliest on ties) when that similarity is > 0, and a pick that nobody counts for gets 1.
struct ExpKernel {
    Eigen::MatrixXd s;
    template <class M>
    explicit ExpKernel(const M& x) {
        const Eigen::MatrixXd xd = x.template cast<double>();
        const Eigen::Index n = xd.rows();
        s.resize(n, n);
        for (Eigen::Index i = 0; i < n; ++i)
            for (Eigen::Index j = 0; j < n; ++j)
                s(i, j) = std::exp(-(xd.row(i) - xd.row(j)).norm() / static_cast<double>(xd.cols()));
    }
    double f(const std::vector<Eigen::Index>& picks) const {
        double total = 0;
        for (Eigen::Index i = 0; i < s.rows(); ++i) {
            double best = 0;
            for (auto j : picks) best = std::max(best, s(i, j));
            total += best;
        }
        return total;
    }
    std::vector<Eigen::Index> greedy(Eigen::Index k) const {
        std::vector<Eigen::Index> picks;
        for (Eigen::Index t = 0; t < k; ++t) {
            double best_gain = -1, second = -1;
            Eigen::Index best = -1;
            const double base = f(picks);
            for (Eigen::Index j = 0; j < s.rows(); ++j) {
                if (std::find(picks.begin(), picks.end(), j) != picks.end()) continue;
                auto more = picks;
                more.push_back(j);
                const double g = f(more) - base;
                if (g > best_gain) {
                    second = best_gain;
                    best_gain = g;
                    best = j;
                } else if (g > second) {
                    second = g;
                }
            }
            if (best_gain - second <= 1e-9 * std::abs(best_gain)) break;
            picks.push_back(best);
        }
        return picks;
    }
    std::vector<double> weights(const std::vector<Eigen::Index>& picks) const {
        std::vector<double> w(picks.size(), 0.0);
        for (Eigen::Index i = 0; i < s.rows(); ++i) {
            std::size_t arg = 0;
            for (std::size_t t = 1; t < picks.size(); ++t)
                if (s(i, picks[t]) > s(i, picks[arg])) arg = t;
            if (s(i, picks[arg]) > 0) w[arg] += 1;
        }
        for (auto& v : w)
            if (v == 0) v = 1;
        return w;
    }
};
}  // namespace

TEMPLATE_TEST_CASE("facility location: ExpEuclidean is submodlib's exp(-|x_i - x_j| / d) greedy, objective and weights",
                   "[facility_location][exp_euclidean]", float, double) {
    const double tol = std::is_same<TestType, float>::value ? 1e-5 : 1e-12;
    for (std::uint64_t seed = 1; seed <= 12; ++seed) {
        const Eigen::Index n = 20 + static_cast<Eigen::Index>(seed * 7 % 40), d = 1 + static_cast<Eigen::Index>(seed % 6);
        // Clusters at a spread of scales: similarities from ~1 down to ~1e-4.
        auto x = coreset_test::blobs<TestType>(n, d, 4, 0.5, seed);
        x *= static_cast<TestType>(1 + seed % 4);
        const Eigen::Index k = std::min<Eigen::Index>(n, 4 + static_cast<Eigen::Index>(seed % 9));
        const ExpKernel ref(x);
        const auto expect = ref.greedy(k);
        INFO("seed " << seed << " n " << n << " d " << d << " k " << k);
        REQUIRE(expect.size() >= 3);  // near-ties are rare on this data
        const auto naive = facility_location(x, k, opts(Greedy::Naive, Evaluation::Dense, Metric::ExpEuclidean));
        const auto lazy = facility_location(x, k, opts(Greedy::Lazy, Evaluation::Dense, Metric::ExpEuclidean));
        auto bo = opts(Greedy::Lazy, Evaluation::Blocked, Metric::ExpEuclidean);
        const auto blocked = facility_location(x, k, bo);
        require_same(naive, lazy);
        require_same(naive, blocked);
        REQUIRE(Direct::prefix(naive.indices, expect.size()) == expect);
        // objective[t] = F after pick t, as the similarity sum (F({}) = 0, C = 1).
        std::vector<Eigen::Index> prefix;
        for (std::size_t t = 0; t < naive.indices.size(); ++t) {
            prefix.push_back(naive.indices[t]);
            REQUIRE_THAT(naive.objective[t], Catch::Matchers::WithinRel(ref.f(prefix), tol));
        }
        // Weights: submodlib's rule (CREST's faciliy_location_order), counts >= 1, sum n.
        const auto w = ref.weights(naive.indices);
        for (Eigen::Index t = 0; t < naive.size(); ++t)
            REQUIRE(naive.weights[t] == static_cast<TestType>(w[static_cast<std::size_t>(t)]));
        REQUIRE(naive.weights.template cast<double>().sum() == static_cast<double>(n));
    }
}

TEMPLATE_TEST_CASE("facility location: ExpEuclidean distances are 1 - exp(-|x_i - x_j| / d) in the caller's units",
                   "[facility_location][exp_euclidean]", float, double) {
    // Rows far from 1 in magnitude: the power of two the rows are scaled by goes into the
    // transform, so the distances do not depend on it.
    for (double scale : {1.0, 1e-3, 37.0}) {
        const Eigen::Index m = 120, d = 7;
        const Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic> x =
            (coreset_test::gaussian<double>(m, d, 5) * scale).template cast<TestType>();
        detail::PairwiseDistances<TestType> dist(detail::RowMatrix<TestType>(x), Metric::ExpEuclidean, "test");
        REQUIRE(dist.unit() == 1.0);
        std::vector<TestType> all(static_cast<std::size_t>(m * m));
        dist.compute_all(all.data(), false);
        const Eigen::MatrixXd xd = x.template cast<double>();
        double worst = 0;
        for (Eigen::Index i = 0; i < m; ++i)
            for (Eigen::Index j = 0; j < m; ++j) {
                const double exact = 1 - std::exp(-(xd.row(i) - xd.row(j)).norm() / static_cast<double>(d));
                const double got = static_cast<double>(all[static_cast<std::size_t>(i * m + j)]);
                REQUIRE(got >= 0);
                REQUIRE(got <= 1);
                worst = std::max(worst, std::abs(got - exact) / std::max(exact, 1e-6));
                REQUIRE(all[static_cast<std::size_t>(i * m + j)] == all[static_cast<std::size_t>(j * m + i)]);
            }
        INFO("scale " << scale);
        REQUIRE(worst < (std::is_same<TestType, float>::value ? 1e-3 : 1e-9));
        for (Eigen::Index i = 0; i < m; ++i) REQUIRE(all[static_cast<std::size_t>(i * m + i)] == TestType(0));
    }
}
