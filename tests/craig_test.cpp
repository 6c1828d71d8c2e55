// SPDX-License-Identifier: MIT
// Craig: the selector over the shared engine, per class, per batch, options and errors.
#include <algorithm>
#include <coreset/craig.hpp>
#include <limits>
#include <map>
#include <set>

#include "test_support.hpp"

using namespace coreset;
using coreset_test::gaussian;
using coreset_test::message_is;

TEMPLATE_TEST_CASE("craig: the plain overload is the engine with Craig's options", "[craig]", float, double) {
    const auto x = coreset_test::blobs<TestType>(300, 5, 6, 1.0, 1);
    CraigOptions o;
    o.metric = Metric::SquaredEuclidean;
    o.greedy = Greedy::Naive;
    const auto a = Craig(o).select(x, 30);
    const auto b = facility_location(x, 30, o.engine());
    REQUIRE(a.indices == b.indices);
    REQUIRE(a.weights == b.weights);
    REQUIRE(a.objective == b.objective);
    REQUIRE(a.weights.sum() == TestType(300));
    // Six well-separated blobs: the first six picks cover one blob each.
    std::set<Eigen::Index> blobs;
    for (std::size_t t = 0; t < 6; ++t) blobs.insert(a.indices[t] % 6);
    REQUIRE(blobs.size() == 6);
}

TEMPLATE_TEST_CASE("craig: per class selects each class independently with the split budget", "[craig]", float,
                   double) {
    const Eigen::Index n = 400;
    const auto x = gaussian<TestType>(n, 4, 3);
    Eigen::VectorXi y(n);
    for (Eigen::Index i = 0; i < n; ++i) y[i] = static_cast<int>((i * 7) % 13 < 2 ? 0 : ((i * 7) % 13 < 6 ? 1 : 2));
    for (auto policy : {ClassBudget::Proportional, ClassBudget::Equal, ClassBudget::Ceil, ClassBudget::EqualCeil}) {
        CraigOptions o;
        o.class_budget = policy;
        const auto r = Craig(o).select(x, y, 37);
        const auto groups = detail::class_labels(y, n, "Craig::select()").groups;
        std::vector<Eigen::Index> sizes;
        for (const auto& g : groups) sizes.push_back(static_cast<Eigen::Index>(g.size()));
        const auto budgets = detail::split_budget(sizes, 37, policy);
        const Eigen::Index picks = budgets[0] + budgets[1] + budgets[2];
        if (policy == ClassBudget::Ceil)  // the reference's ceil(k n_c / n): more than k in all here
            for (std::size_t c = 0; c < 3; ++c) REQUIRE(budgets[c] == (37 * sizes[c] + n - 1) / n);
        if (policy == ClassBudget::EqualCeil)  // ceil(37 / 3) = 13 each: no class is smaller
            for (std::size_t c = 0; c < 3; ++c) REQUIRE(budgets[c] == 13);
        if (policy == ClassBudget::Ceil || policy == ClassBudget::EqualCeil) REQUIRE(picks > 37);
        REQUIRE(r.size() == picks);
        std::set<Eigen::Index> unique(r.indices.begin(), r.indices.end());
        REQUIRE(static_cast<Eigen::Index>(unique.size()) == picks);
        // Class by class: each block equals a selection on that class's rows alone, mapped back.
        std::size_t pos = 0;
        double offset = 0;
        for (std::size_t c = 0; c < 3; ++c) {
            Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic> rows(sizes[c], 4);
            for (std::size_t t = 0; t < groups[c].size(); ++t) rows.row(static_cast<Eigen::Index>(t)) = x.row(groups[c][t]);
            const auto alone = Craig(o).select(rows, budgets[c]);
            TestType class_weight = 0;
            for (Eigen::Index t = 0; t < alone.size(); ++t, ++pos) {
                REQUIRE(r.indices[pos] == groups[c][static_cast<std::size_t>(alone.indices[static_cast<std::size_t>(t)])]);
                REQUIRE(y[r.indices[pos]] == static_cast<int>(c));
                REQUIRE(r.weights[static_cast<Eigen::Index>(pos)] == alone.weights[t]);
                REQUIRE_THAT(r.objective[pos], Catch::Matchers::WithinRel(offset + alone.objective[static_cast<std::size_t>(t)], 1e-12));
                class_weight += alone.weights[t];
            }
            offset += alone.objective.back();
            REQUIRE(class_weight == static_cast<TestType>(sizes[c]));  // each class's weights sum to its size
        }
        REQUIRE(r.status == Status::BudgetReached);
    }
}

TEST_CASE("craig: per class with one class, a single-row class, and an empty label value", "[craig]") {
    const auto x = gaussian<double>(50, 3, 4);
    const Eigen::VectorXi one = Eigen::VectorXi::Zero(50);
    const auto all = Craig().select(x, 10);
    const auto per = Craig().select(x, one, 10);
    REQUIRE(per.indices == all.indices);
    REQUIRE(per.weights == all.weights);
    Eigen::VectorXi y = Eigen::VectorXi::Constant(50, 2);  // label 0 absent, label 1 on one row
    y[17] = 1;
    const auto r = Craig().select(x, y, 5);
    REQUIRE(r.size() == 5);
    REQUIRE(std::count(r.indices.begin(), r.indices.end(), Eigen::Index(17)) == 1);
    REQUIRE(r.weights.sum() == 50.0);
    const auto whole = Craig().select(x, y, 50);  // budget == n: every row, weight 1
    REQUIRE(whole.size() == 50);
    REQUIRE((whole.weights.array() == 1.0).all());
}

TEMPLATE_TEST_CASE("craig: per batch represents batches by their means and expands members", "[craig]", float, double) {
    const Eigen::Index n = 103, b = 10;  // 11 batches, the last of 3 rows
    const auto x = coreset_test::blobs<TestType>(n, 3, 4, 0.5, 2);
    const auto r = Craig().select_batches(x, b, 35);  // ceil(35 / 10) = 4 batches
    // The batch-level problem: means with multiplicity = size.
    detail::RowMatrix<TestType> means;
    detail::Vector<TestType> sizes;
    detail::batch_means(x, b, means, sizes);
    const auto batches = weighted_facility_location(means, sizes, 4);
    std::vector<Eigen::Index> expect;
    for (auto bi : batches.indices)
        for (Eigen::Index i = bi * b; i < std::min(n, (bi + 1) * b); ++i) expect.push_back(i);
    REQUIRE(r.indices == expect);
    Eigen::Index pos = 0;
    for (Eigen::Index t = 0; t < batches.size(); ++t) {
        const Eigen::Index bi = batches.indices[static_cast<std::size_t>(t)];
        const Eigen::Index len = std::min(n, (bi + 1) * b) - bi * b;
        for (Eigen::Index i = 0; i < len; ++i, ++pos)
            REQUIRE_THAT(r.weights[pos], Catch::Matchers::WithinRel(batches.weights[t] / TestType(len), TestType(1e-6)));
    }
    REQUIRE_THAT(r.weights.sum(), Catch::Matchers::WithinRel(TestType(n), TestType(1e-5)));
    REQUIRE_THROWS_MATCHES(Craig().select_batches(x, 0, 5), std::invalid_argument,
                           message_is("Craig::select_batches(): batch_size must satisfy batch_size >= 1 (got 0)"));
}

TEMPLATE_TEST_CASE("craig: batch means of rows near the largest value are finite", "[craig]", float, double) {
    // Found by the fuzzer: nine rows of 0.5 * max summed past the type's range before dividing, so a
    // valid input was rejected as non-finite. The means are now summed from the rows divided first.
    using M = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    const TestType big = std::numeric_limits<TestType>::max() / 2;
    M x = M::Constant(9, 2, big);
    x(4, 1) = -big;
    detail::RowMatrix<TestType> means;
    detail::Vector<TestType> sizes;
    detail::batch_means(x, 9, means, sizes);
    REQUIRE(means.allFinite());
    CHECK_THAT(static_cast<double>(means(0, 0)), Catch::Matchers::WithinRel(static_cast<double>(big), 1e-6));
    CHECK_THAT(static_cast<double>(means(0, 1)), Catch::Matchers::WithinRel(7.0 / 9.0 * static_cast<double>(big), 1e-6));
    for (Eigen::Index bs : {Eigen::Index(3), std::numeric_limits<Eigen::Index>::max()}) {
        const auto r = Craig().select_batches(x, bs, 1);
        CHECK(r.weights.sum() == TestType(9));
    }
}

TEST_CASE("craig: mean_one turns cluster sizes into mean-1 weights", "[craig]") {
    const auto x = gaussian<float>(200, 3, 9);
    const auto r = Craig().select(x, 20);
    const Eigen::VectorXf w = mean_one(r.weights);
    REQUIRE_THAT(w.mean(), Catch::Matchers::WithinRel(1.0f, 1e-5f));
    for (Eigen::Index j = 0; j < 20; ++j)
        REQUIRE_THAT(w[j], Catch::Matchers::WithinRel(r.weights[j] * 20.0f / 200.0f, 1e-5f));
}

TEST_CASE("craig: accepts any dense Eigen expression and leaves it untouched", "[craig]") {
    const Eigen::MatrixXd x = gaussian<double>(80, 4, 5);
    const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rm = x;
    const Eigen::Map<const Eigen::MatrixXd> map(x.data(), 80, 4);
    const auto a = Craig().select(x, 8);
    REQUIRE(Craig().select(rm, 8).indices == a.indices);
    REQUIRE(Craig().select(map, 8).indices == a.indices);
    const auto top = Craig().select(x.topRows(40), 4);
    const Eigen::MatrixXd first = x.topRows(40);
    REQUIRE(top.indices == Craig().select(first, 4).indices);
    REQUIRE(x == rm);
}

TEST_CASE("craig: bad options and inputs throw with the parameter named", "[craig]") {
    CraigOptions o;
    o.epsilon = 0;
    REQUIRE_THROWS_MATCHES(Craig(o), std::invalid_argument,
                           message_is("CraigOptions::validate(): epsilon must satisfy 0 < epsilon < 1 (got 0)"));
    o = CraigOptions{};
    o.class_budget = static_cast<ClassBudget>(5);
    REQUIRE_THROWS_MATCHES(Craig(o), std::invalid_argument,
                           message_is("CraigOptions::validate(): class_budget must satisfy a ClassBudget enumerator (got 5)"));
    o = CraigOptions{};
    o.metric = static_cast<Metric>(-1);
    REQUIRE_THROWS_MATCHES(Craig(o), std::invalid_argument,
                           message_is("CraigOptions::validate(): metric must satisfy a Metric enumerator (got -1)"));

    const auto x = gaussian<float>(20, 3, 1);
    const Craig craig;
    REQUIRE_THROWS_MATCHES(craig.select(x, 0), std::invalid_argument,
                           message_is("Craig::select(): budget must satisfy 1 <= budget <= n (got budget = 0, n = 20)"));
    REQUIRE_THROWS_MATCHES(craig.select(x, 21), std::invalid_argument,
                           message_is("Craig::select(): budget must satisfy 1 <= budget <= n (got budget = 21, n = 20)"));
    Eigen::MatrixXf inf = x;
    inf(0, 2) = std::numeric_limits<float>::infinity();
    REQUIRE_THROWS_MATCHES(craig.select(inf, 3), std::invalid_argument,
                           message_is("Craig::select(): gradients must be finite (got inf at row 0, column 2)"));
    REQUIRE_THROWS_MATCHES(craig.select(Eigen::MatrixXf(5, 0), 1), std::invalid_argument,
                           message_is("Craig::select(): gradients must have at least one row and one column (got 5 x 0)"));
    Eigen::VectorXi y = Eigen::VectorXi::Zero(19);
    REQUIRE_THROWS_MATCHES(craig.select(x, y, 3), std::invalid_argument,
                           message_is("Craig::select(): labels must have one entry per row of gradients (got 19 labels for n = 20 rows)"));
    y = Eigen::VectorXi::Zero(20);
    y[4] = -2;
    REQUIRE_THROWS_MATCHES(craig.select(x, y, 3), std::invalid_argument,
                           message_is("Craig::select(): labels must be >= 0 (got -2 at index 4)"));
    y[4] = 0;
    REQUIRE_THROWS_MATCHES(craig.select(x, y, 0), std::invalid_argument,
                           message_is("Craig::select(): budget must satisfy 1 <= budget <= n (got budget = 0, n = 20)"));
    Eigen::MatrixXf zero = x;
    zero.row(11).setZero();
    CraigOptions cos;
    cos.metric = Metric::Cosine;
    REQUIRE_THROWS_MATCHES(Craig(cos).select(zero, y, 3), std::invalid_argument,
                           message_is("Craig::select(): gradients must have no zero row under Metric::Cosine (got a zero row at index 11)"));
    // A selector that threw is still usable.
    REQUIRE(craig.select(x, 3).size() == 3);
}
