// SPDX-License-Identifier: MIT
// core.hpp, detail/checks.hpp, detail/rng.hpp and detail/class_split.hpp.
#include <algorithm>
#include <coreset/core.hpp>
#include <coreset/detail/checks.hpp>
#include <coreset/detail/class_split.hpp>
#include <coreset/detail/rng.hpp>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "test_support.hpp"

using namespace coreset;
using coreset_test::message_is;

TEST_CASE("checks: empty matrices are rejected with their shape", "[checks]") {
    Eigen::MatrixXf none(0, 3), flat(4, 0);
    REQUIRE_THROWS_MATCHES(detail::check_matrix(none, "Craig::select()", "gradients"), std::invalid_argument,
                           message_is("Craig::select(): gradients must have at least one row and one column (got 0 x 3)"));
    REQUIRE_THROWS_MATCHES(detail::check_matrix(flat, "Craig::select()", "gradients"), std::invalid_argument,
                           message_is("Craig::select(): gradients must have at least one row and one column (got 4 x 0)"));
}

TEMPLATE_TEST_CASE("checks: non-finite values are reported with their position", "[checks]", float, double) {
    using M = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    M g = M::Ones(3, 2);
    REQUIRE_NOTHROW(detail::check_matrix(g, "X::f()", "gradients"));
    g(2, 1) = std::numeric_limits<TestType>::quiet_NaN();
    REQUIRE_THROWS_MATCHES(detail::check_matrix(g, "X::f()", "gradients"), std::invalid_argument,
                           message_is("X::f(): gradients must be finite (got nan at row 2, column 1)"));
    g(2, 1) = 1;
    g(0, 1) = -std::numeric_limits<TestType>::infinity();
    REQUIRE_THROWS_MATCHES(detail::check_matrix(g, "X::f()", "gradients"), std::invalid_argument,
                           message_is("X::f(): gradients must be finite (got -inf at row 0, column 1)"));
    Eigen::Matrix<TestType, Eigen::Dynamic, 1> v = Eigen::Matrix<TestType, Eigen::Dynamic, 1>::Zero(4);
    v[3] = std::numeric_limits<TestType>::infinity();
    REQUIRE_THROWS_MATCHES(detail::check_finite(v, "X::f()", "target"), std::invalid_argument,
                           message_is("X::f(): target must be finite (got inf at index 3)"));
}

TEST_CASE("checks: huge finite values are accepted", "[checks]") {
    Eigen::MatrixXf g = Eigen::MatrixXf::Constant(3, 3, 3e38f);
    REQUIRE_NOTHROW(detail::check_finite(g, "X::f()", "gradients"));
}

TEST_CASE("checks: budget outside [1, n] names budget and n", "[checks]") {
    REQUIRE_NOTHROW(detail::check_budget(1, 5, "Craig::select()"));
    REQUIRE_NOTHROW(detail::check_budget(5, 5, "Craig::select()"));
    REQUIRE_THROWS_MATCHES(detail::check_budget(0, 5, "Craig::select()"), std::invalid_argument,
                           message_is("Craig::select(): budget must satisfy 1 <= budget <= n (got budget = 0, n = 5)"));
    REQUIRE_THROWS_MATCHES(detail::check_budget(6, 5, "Craig::select()"), std::invalid_argument,
                           message_is("Craig::select(): budget must satisfy 1 <= budget <= n (got budget = 6, n = 5)"));
    REQUIRE_THROWS_MATCHES(detail::check_budget(-3, 5, "GradMatch::select()"), std::invalid_argument,
                           message_is("GradMatch::select(): budget must satisfy 1 <= budget <= n (got budget = -3, n = 5)"));
}

TEST_CASE("checks: labels of the wrong length or negative", "[checks]") {
    Eigen::VectorXi y(4);
    y << 0, 2, 1, 2;
    REQUIRE(detail::class_labels(y, 4, "Craig::select()").classes() == 3);
    REQUIRE_THROWS_MATCHES(detail::class_labels(y, 5, "Craig::select()"), std::invalid_argument,
                           message_is("Craig::select(): labels must have one entry per row of gradients (got 4 labels for n = 5 rows)"));
    y[1] = -1;
    REQUIRE_THROWS_MATCHES(detail::class_labels(y, 4, "Craig::select()"), std::invalid_argument,
                           message_is("Craig::select(): labels must be >= 0 (got -1 at index 1)"));
    Eigen::Matrix<long, Eigen::Dynamic, 1> wide(2);
    wide << 0, 7;
    REQUIRE(detail::class_labels(wide, 2, "Craig::select()").classes() == 2);
}

TEST_CASE("checks: options and state use the same message shape", "[checks]") {
    REQUIRE_THROWS_MATCHES(detail::check_option(false, -0.5, "CraigOptions::validate()", "epsilon", "0 < epsilon < 1"),
                           std::invalid_argument,
                           message_is("CraigOptions::validate(): epsilon must satisfy 0 < epsilon < 1 (got -0.5)"));
    REQUIRE_THROWS_MATCHES(detail::require_state(false, "Crest::select()", "call candidates() first"), std::logic_error,
                           message_is("Crest::select(): call candidates() first"));
    REQUIRE_THROWS_MATCHES(detail::require(false, "A::b()", "x must be ", 3, " (got ", 4, ")"), std::invalid_argument,
                           message_is("A::b(): x must be 3 (got 4)"));
}

TEST_CASE("rng: fixed seed gives a fixed, platform-independent stream", "[rng]") {
    // xoshiro256** seeded through splitmix64(0): the first outputs, computed independently from the
    // published algorithms (a Python transcription), pinned so that any change of generator or of
    // the integer and real mappings is caught.
    detail::Rng a(0);
    REQUIRE(a.next() == 11091344671253066420ULL);
    REQUIRE(a.next() == 13793997310169335082ULL);
    REQUIRE(a.next() == 1900383378846508768ULL);
    detail::Rng b(42);
    REQUIRE(b.below(1000) == 83);
    REQUIRE(b.below(7) == 2);
    REQUIRE(b.uniform() == 0.68004341102813937);
    detail::Rng c(0), d(1);
    REQUIRE(c.next() != d.next());
}

TEST_CASE("rng: below() is uniform and in range", "[rng]") {
    detail::Rng rng(42);
    std::vector<int> counts(7, 0);
    const int draws = 70000;
    for (int i = 0; i < draws; ++i) {
        const auto v = rng.below(7);
        REQUIRE(v < 7);
        ++counts[v];
    }
    for (int c : counts) REQUIRE(std::abs(c - draws / 7) < 400);  // ~4.5 sigma
    REQUIRE(rng.below(1) == 0);
    // A bound above 2^63 still lands in range.
    const std::uint64_t big = (std::uint64_t(1) << 63) + 12345;
    for (int i = 0; i < 100; ++i) REQUIRE(rng.below(big) < big);
}

TEST_CASE("rng: uniform() is in the unit interval with the right mean, rademacher is +-1", "[rng]") {
    detail::Rng rng(7);
    double sum = 0, rsum = 0;
    for (int i = 0; i < 100000; ++i) {
        const double u = rng.uniform();
        REQUIRE(u >= 0.0);
        REQUIRE(u < 1.0);
        sum += u;
        const double r = rng.rademacher();
        REQUIRE(std::abs(r) == 1.0);
        rsum += r;
    }
    REQUIRE(std::abs(sum / 100000 - 0.5) < 0.005);
    REQUIRE(std::abs(rsum / 100000) < 0.015);
}

TEST_CASE("rng: sample() draws distinct elements of the pool, shuffle permutes", "[rng]") {
    detail::Rng rng(3);
    std::vector<int> pool(50);
    std::iota(pool.begin(), pool.end(), 100);
    const auto s = rng.sample(pool, 20);
    REQUIRE(s.size() == 20);
    std::set<int> unique(s.begin(), s.end());
    REQUIRE(unique.size() == 20);
    for (int v : s) REQUIRE((v >= 100 && v < 150));
    auto all = rng.sample(pool, 50);
    std::sort(all.begin(), all.end());
    REQUIRE(all == pool);
    auto p = pool;
    rng.shuffle(p);
    REQUIRE(p != pool);
    std::sort(p.begin(), p.end());
    REQUIRE(p == pool);
}

namespace {
Eigen::Index total(const std::vector<Eigen::Index>& v) { return std::accumulate(v.begin(), v.end(), Eigen::Index(0)); }
}  // namespace

TEST_CASE("class budget: proportional split is the largest-remainder split", "[class_budget]") {
    using V = std::vector<Eigen::Index>;
    REQUIRE(detail::split_budget(V{50, 30, 20}, 10, ClassBudget::Proportional) == V{5, 3, 2});
    // quotas 3.33, 3.33, 3.33 -> remainders tie -> lowest class index first
    REQUIRE(detail::split_budget(V{10, 10, 10}, 10, ClassBudget::Proportional) == V{4, 3, 3});
    // quotas 0.9, 6.3, 2.8 -> floors 0, 6, 2; remainders .9, .3, .8 -> +1 to class 0
    REQUIRE(detail::split_budget(V{9, 63, 28}, 10, ClassBudget::Proportional) == V{1, 6, 3});
    // a tiny class still gets one: quotas 0.05, 4.95 -> 0, 5 -> min-1 rule takes one from class 1
    REQUIRE(detail::split_budget(V{1, 99}, 5, ClassBudget::Proportional) == V{1, 4});
    // empty classes get nothing
    REQUIRE(detail::split_budget(V{0, 10, 0, 10}, 4, ClassBudget::Proportional) == V{0, 2, 0, 2});
    // budget below the number of classes: the largest quotas win, sum is exact
    REQUIRE(detail::split_budget(V{5, 3, 2}, 1, ClassBudget::Proportional) == V{1, 0, 0});
}

TEST_CASE("class budget: properties on many random splits", "[class_budget]") {
    detail::Rng rng(11);
    for (int trial = 0; trial < 2000; ++trial) {
        const auto C = 1 + rng.below(12);
        std::vector<Eigen::Index> sizes(C);
        for (auto& s : sizes) s = static_cast<Eigen::Index>(rng.below(4) == 0 ? 0 : rng.below(200));
        const Eigen::Index n = total(sizes);
        if (n == 0) continue;
        const Eigen::Index budget = 1 + static_cast<Eigen::Index>(rng.below(static_cast<std::uint64_t>(n)));
        const Eigen::Index nonempty = std::count_if(sizes.begin(), sizes.end(), [](Eigen::Index s) { return s > 0; });
        for (auto policy : {ClassBudget::Proportional, ClassBudget::Equal}) {
            const auto a = detail::split_budget(sizes, budget, policy);
            INFO("trial " << trial << " policy " << policy << " budget " << budget);
            REQUIRE(total(a) == budget);
            for (std::size_t c = 0; c < C; ++c) {
                REQUIRE(a[c] >= 0);
                REQUIRE(a[c] <= sizes[c]);
                if (budget >= nonempty && sizes[c] > 0) REQUIRE(a[c] >= 1);
            }
            if (policy == ClassBudget::Proportional) {
                // Within one unit of the exact quota, except for the min-1 adjustment.
                for (std::size_t c = 0; c < C; ++c) {
                    const double quota = double(budget) * double(sizes[c]) / double(n);
                    REQUIRE(double(a[c]) <= std::ceil(quota) + 1e-9 + (a[c] == 1 ? 1 : 0));
                }
            } else {
                // Water-filling: a class below the level of another class must be full.
                for (std::size_t c = 0; c < C; ++c)
                    for (std::size_t e = 0; e < C; ++e)
                        if (a[c] + 1 < a[e]) REQUIRE(a[c] == sizes[c]);
            }
        }
    }
}

TEST_CASE("class budget: equal split redistributes the shortfall of small classes", "[class_budget]") {
    using V = std::vector<Eigen::Index>;
    REQUIRE(detail::split_budget(V{100, 100, 100}, 30, ClassBudget::Equal) == V{10, 10, 10});
    REQUIRE(detail::split_budget(V{2, 100, 100}, 30, ClassBudget::Equal) == V{2, 14, 14});
    REQUIRE(detail::split_budget(V{2, 100, 50}, 31, ClassBudget::Equal) == V{2, 15, 14});
    REQUIRE(detail::split_budget(V{0, 5, 5}, 10, ClassBudget::Equal) == V{0, 5, 5});
}

TEST_CASE("class budget: Ceil is ceil(k n_c / n) per class, in exact integers", "[class_budget]") {
    using V = std::vector<Eigen::Index>;
    REQUIRE(detail::split_budget(V{50, 30, 20}, 10, ClassBudget::Ceil) == V{5, 3, 2});   // exact quotas
    REQUIRE(detail::split_budget(V{10, 10, 10}, 10, ClassBudget::Ceil) == V{4, 4, 4});   // 3.33 each: 12 in all
    REQUIRE(detail::split_budget(V{9, 63, 28}, 10, ClassBudget::Ceil) == V{1, 7, 3});    // 0.9, 6.3, 2.8
    REQUIRE(detail::split_budget(V{0, 10, 0, 10}, 4, ClassBudget::Ceil) == V{0, 2, 0, 2});
    REQUIRE(detail::split_budget(V{1, 99}, 1, ClassBudget::Ceil) == V{1, 1});            // every non-empty class >= 1
    REQUIRE(detail::split_budget(V{5, 3, 2}, 10, ClassBudget::Ceil) == V{5, 3, 2});      // k = n: everything
    // 25 * 14 / 50 = 7 exactly; (14 / 50) * 25 in floating point is 7.000000000000001, whose ceil
    // (baharanm/craig's formula) would be 8.
    REQUIRE(detail::split_budget(V{14, 36}, 25, ClassBudget::Ceil) == V{7, 18});
}

TEST_CASE("class budget: EqualCeil is baharanm/craig's equal_num rule", "[class_budget]") {
    using V = std::vector<Eigen::Index>;
    REQUIRE(detail::split_budget(V{100, 100, 100}, 30, ClassBudget::EqualCeil) == V{10, 10, 10});
    REQUIRE(detail::split_budget(V{100, 100, 100}, 31, ClassBudget::EqualCeil) == V{11, 11, 11});
    // level 10; class 0 is 8 short, one minority class: the others get 10 + 8 each (38 in all).
    REQUIRE(detail::split_budget(V{2, 100, 100}, 30, ClassBudget::EqualCeil) == V{2, 18, 18});
    // C = 4, level 8; shortfall 6 + 5 = 11 over 2 minority classes: + ceil(11 / 2) = 6.
    REQUIRE(detail::split_budget(V{2, 3, 100, 100}, 30, ClassBudget::EqualCeil) == V{2, 3, 14, 14});
    // Empty classes do not count in C; the bonus is clamped to the class size.
    REQUIRE(detail::split_budget(V{0, 5, 5}, 10, ClassBudget::EqualCeil) == V{0, 5, 5});
    REQUIRE(detail::split_budget(V{1, 12, 100}, 30, ClassBudget::EqualCeil) == V{1, 12, 19});
    // Every class is a minority: each gets all its rows.
    REQUIRE(detail::split_budget(V{3, 3, 3}, 9, ClassBudget::EqualCeil) == V{3, 3, 3});
    // Fewer than k in all: 3 minority classes of 1 (shortfall 27, bonus 9) leave 19 to the last.
    REQUIRE(detail::split_budget(V{1, 1, 1, 100}, 40, ClassBudget::EqualCeil) == V{1, 1, 1, 19});
}

TEST_CASE("class budget: Ceil and EqualCeil properties on many random splits", "[class_budget]") {
    detail::Rng rng(12);
    for (int trial = 0; trial < 3000; ++trial) {
        const auto C = 1 + rng.below(12);
        std::vector<Eigen::Index> sizes(C);
        for (auto& s : sizes) s = static_cast<Eigen::Index>(rng.below(4) == 0 ? 0 : rng.below(rng.below(2) ? 20 : 300));
        const Eigen::Index n = total(sizes);
        if (n == 0) continue;
        const Eigen::Index budget = 1 + static_cast<Eigen::Index>(rng.below(static_cast<std::uint64_t>(n)));
        std::vector<std::size_t> nonempty;
        for (std::size_t c = 0; c < C; ++c)
            if (sizes[c] > 0) nonempty.push_back(c);
        const auto classes = static_cast<Eigen::Index>(nonempty.size());
        INFO("trial " << trial << " budget " << budget << " n " << n);

        const auto ceil = detail::split_budget(sizes, budget, ClassBudget::Ceil);
        REQUIRE(total(ceil) >= budget);
        REQUIRE(total(ceil) <= budget + classes - 1);
        for (std::size_t c = 0; c < C; ++c) {
            REQUIRE(ceil[c] >= 0);
            REQUIRE(ceil[c] <= sizes[c]);
            // The smallest integer a with a * n >= budget * n_c.
            const long long need = static_cast<long long>(budget) * sizes[c];
            REQUIRE(static_cast<long long>(ceil[c]) * n >= need);
            if (ceil[c] > 0) REQUIRE(static_cast<long long>(ceil[c] - 1) * n < need);
            if (sizes[c] > 0) REQUIRE(ceil[c] >= 1);
        }

        const auto eq = detail::split_budget(sizes, budget, ClassBudget::EqualCeil);
        const Eigen::Index level = (budget + classes - 1) / classes;
        Eigen::Index common = -1;  // the unclamped allocation of the non-minority classes
        for (std::size_t c = 0; c < C; ++c) {
            REQUIRE(eq[c] >= 0);
            REQUIRE(eq[c] <= sizes[c]);
            if (sizes[c] == 0) REQUIRE(eq[c] == 0);
            if (sizes[c] > 0 && sizes[c] < level) REQUIRE(eq[c] == sizes[c]);
            if (sizes[c] >= level) {
                REQUIRE(eq[c] >= level);
                if (eq[c] < sizes[c]) {
                    if (common < 0) common = eq[c];
                    REQUIRE(eq[c] == common);
                }
            }
        }
        // Without minority classes it is exactly ceil(k / C) for each (so level * C >= k in all).
        if (std::all_of(nonempty.begin(), nonempty.end(), [&](std::size_t c) { return sizes[c] >= level; })) {
            for (std::size_t c : nonempty) REQUIRE(eq[c] == level);
            REQUIRE(total(eq) >= budget);
        }
    }
}

TEST_CASE("per-class driver maps local picks to global rows", "[class_budget]") {
    Eigen::MatrixXd x(6, 1);
    x << 0, 1, 2, 3, 4, 5;
    Eigen::VectorXi y(6);
    y << 1, 0, 1, 0, 1, 1;
    const auto groups = detail::class_labels(y, 6, "Craig::select()").groups;
    REQUIRE(groups[0] == std::vector<Eigen::Index>{1, 3});
    REQUIRE(groups[1] == std::vector<Eigen::Index>{0, 2, 4, 5});
    const auto out = detail::per_class<double>(x, groups, {1, 2}, true, [](const auto& rows, Eigen::Index k, std::size_t) {
        Coreset<double> c;  // picks the last k local rows, weight = value of the row
        for (Eigen::Index j = 0; j < k; ++j) c.indices.push_back(rows.rows() - 1 - j);
        c.weights.resize(k);
        for (Eigen::Index j = 0; j < k; ++j) c.weights[j] = rows(rows.rows() - 1 - j, 0);
        c.objective.assign(static_cast<std::size_t>(k), 1.0);
        return c;
    });
    REQUIRE(out.indices == std::vector<Eigen::Index>{3, 5, 4});
    REQUIRE(out.weights[0] == 3.0);
    REQUIRE(out.weights[1] == 5.0);
    REQUIRE(out.weights[2] == 4.0);
    REQUIRE(out.status == Status::BudgetReached);
}

TEST_CASE("batches: means, sizes and expansion to members", "[batches]") {
    Eigen::MatrixXd x(5, 2);
    x << 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;
    detail::RowMatrix<double> means;
    detail::Vector<double> sizes;
    detail::batch_means(x, 2, means, sizes);
    REQUIRE(means.rows() == 3);
    REQUIRE(means(0, 0) == 2.0);
    REQUIRE(means(1, 1) == 7.0);
    REQUIRE(means(2, 0) == 9.0);
    REQUIRE(sizes[2] == 1.0);
    Coreset<double> b;
    b.indices = {2, 0};
    b.weights.resize(2);
    b.weights << 3.0, 4.0;
    const auto m = detail::expand_batches(b, 5, 2);
    REQUIRE(m.indices == std::vector<Eigen::Index>{4, 0, 1});
    REQUIRE(m.weights[0] == 3.0);
    REQUIRE(m.weights[1] == 2.0);
    REQUIRE(m.weights[2] == 2.0);
}

TEST_CASE("mean_one rescales to mean 1 and rejects bad weights", "[core]") {
    Eigen::VectorXf w(4);
    w << 1, 2, 3, 6;
    const Eigen::VectorXf m = mean_one(w);
    REQUIRE_THAT(m.mean(), Catch::Matchers::WithinRel(1.0f, 1e-6f));
    REQUIRE_THAT(m[3] / m[0], Catch::Matchers::WithinRel(6.0f, 1e-6f));
    REQUIRE_THROWS_MATCHES(mean_one(Eigen::VectorXf()), std::invalid_argument,
                           message_is("coreset::mean_one(): weights must not be empty (got size 0)"));
    REQUIRE_THROWS_MATCHES(mean_one(Eigen::VectorXf::Zero(3)), std::invalid_argument,
                           message_is("coreset::mean_one(): weights must have a positive sum (got 0)"));
}

TEST_CASE("callbacks: on_step hooks are found and may stop", "[core]") {
    struct Stopper {
        int seen = 0;
        bool on_step(const StepInfo& s) { ++seen; return s.step >= 2; }
    };
    struct Watcher {
        int seen = 0;
        void on_step(const StepInfo&) { ++seen; }
    };
    struct Nothing {};
    Stopper s;
    Watcher w;
    Nothing none;
    REQUIRE_FALSE(detail::notify_step(StepInfo{0, 0, 0, 0}, s, w, none));
    REQUIRE(detail::notify_step(StepInfo{2, 0, 0, 0}, s, w, none));
    REQUIRE(s.seen == 2);
    REQUIRE(w.seen == 2);
    REQUIRE(to_string(Status::Exhausted) == std::string("Exhausted"));
    REQUIRE(to_string(ClassBudget::Ceil) == std::string("Ceil"));
    REQUIRE(to_string(ClassBudget::EqualCeil) == std::string("EqualCeil"));
    REQUIRE(to_string(static_cast<ClassBudget>(9)) == std::string("unknown ClassBudget"));
    REQUIRE(detail::is_class_budget(ClassBudget::EqualCeil));
    REQUIRE_FALSE(detail::is_class_budget(static_cast<ClassBudget>(4)));
}
