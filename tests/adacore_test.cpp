// SPDX-License-Identifier: MIT
// adacore.hpp: per-example moving averages, preconditioning, selection through Craig.
#include <cmath>
#include <coreset/adacore.hpp>
#include <limits>
#include <set>
#include <vector>

#include "test_support.hpp"

using namespace coreset;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using coreset_test::gaussian;
using coreset_test::message_is;

namespace {

template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

template <class Scalar>
void require_same(const Coreset<Scalar>& a, const Coreset<Scalar>& b) {
    REQUIRE(a.indices == b.indices);
    REQUIRE(a.weights == b.weights);
    REQUIRE(a.objective == b.objective);
    REQUIRE(a.status == b.status);
}

AdaCoreOptions plain_options() {
    AdaCoreOptions o;
    o.beta1 = 0;
    o.beta2 = 0;
    o.eps = 0;
    return o;
}

// Slow reference for one row: the explicit sums of the paper's Eq. 7 and 9.
struct Reference {
    std::vector<Eigen::VectorXd> g, h;  // observations, oldest first
    Eigen::VectorXd g_bar(double b1) const {
        const auto t = static_cast<int>(g.size());
        Eigen::VectorXd s = Eigen::VectorXd::Zero(g[0].size());
        for (int tau = 1; tau <= t; ++tau)
            s += (1 - b1) * std::pow(b1, t - tau) * g[static_cast<std::size_t>(tau - 1)];
        return s / (1 - std::pow(b1, t));
    }
    Eigen::VectorXd h_bar(double b2) const {
        const auto t = static_cast<int>(h.size());
        Eigen::VectorXd s = Eigen::VectorXd::Zero(h[0].size());
        for (int tau = 1; tau <= t; ++tau) {
            const Eigen::VectorXd& x = h[static_cast<std::size_t>(tau - 1)];
            s += (1 - b2) * std::pow(b2, t - tau) * x.cwiseProduct(x);
        }
        return (s / (1 - std::pow(b2, t))).cwiseSqrt();
    }
};

struct StopAt {
    Eigen::Index at;
    bool on_step(const StepInfo& info) const { return info.step + 1 >= at; }
};

}  // namespace

TEST_CASE("adacore: the state and the Scalar default to float", "[adacore]") {
    AdaCore ada(5);
    STATIC_REQUIRE(std::is_same<decltype(ada), AdaCore<float>>::value);
    CHECK(ada.size() == 5);
    CHECK(ada.dim() == 0);
    CHECK(ada.steps() == std::vector<std::int64_t>(5, 0));
    const AdaCoreOptions o;
    CHECK(o.beta1 == 0.9);
    CHECK(o.beta2 == 0.999);
    CHECK(o.eps == 1e-4);
    CHECK(o.hessian_power == 1.0);
    const CraigOptions c;
    CHECK(o.metric == c.metric);
    CHECK(o.greedy == c.greedy);
    CHECK(o.epsilon == c.epsilon);
    CHECK(o.memory_budget_bytes == c.memory_budget_bytes);
    CHECK(o.class_budget == c.class_budget);
}

TEMPLATE_TEST_CASE("adacore: with beta1 = beta2 = eps = 0 and unit curvature it is Craig", "[adacore]", float,
                   double) {
    const Mat<TestType> g = coreset_test::blobs<TestType>(120, 6, 5, 0.7, 81);
    const Mat<TestType> ones = Mat<TestType>::Ones(120, 6);
    const Eigen::VectorXi labels = coreset_test::round_robin_labels(120, 3);
    for (Greedy greedy : {Greedy::Lazy, Greedy::Naive, Greedy::Stochastic}) {
        for (Metric metric : {Metric::Euclidean, Metric::SquaredEuclidean, Metric::Cosine}) {
            AdaCoreOptions o = plain_options();
            o.greedy = greedy;
            o.metric = metric;
            o.seed = 5;
            AdaCore<TestType> ada(120, o);
            ada.update(g, ones);
            INFO("greedy " << greedy << ", metric " << metric);
            REQUIRE(ada.preconditioned() == g);
            const Craig craig(o.craig_options());
            require_same(ada.select(17), craig.select(g, 17));
            require_same(ada.select(labels, 17), craig.select(g, labels, 17));
        }
    }
}

TEMPLATE_TEST_CASE("adacore: bias correction recovers the observation and a constant stream", "[adacore]",
                   float, double) {
    const Mat<TestType> g = gaussian<TestType>(7, 3, 91);
    const Mat<TestType> h = gaussian<TestType>(7, 3, 92);  // negative entries too: h_bar = |h|
    // Rounding of the float state accumulates over the steps; a wrong bias correction is off by
    // factors like sqrt(1 - beta2^t), far outside this tolerance.
    const double tol = std::is_same<TestType, float>::value ? 1e-5 : 1e-13;
    AdaCore<TestType> ada(7);
    for (int t = 1; t <= 60; ++t) {
        ada.update(g, h);
        const auto gb = ada.smoothed_gradients();
        const auto hb = ada.smoothed_curvature();
        REQUIRE(ada.steps() == std::vector<std::int64_t>(7, t));
        for (Eigen::Index i = 0; i < 7; ++i)
            for (Eigen::Index k = 0; k < 3; ++k) {
                INFO("t = " << t << ", row " << i << ", column " << k);
                REQUIRE_THAT(static_cast<double>(gb(i, k)), WithinRel(static_cast<double>(g(i, k)), tol));
                REQUIRE_THAT(static_cast<double>(hb(i, k)),
                             WithinRel(static_cast<double>(std::abs(h(i, k))), tol));
            }
    }
}

TEST_CASE("adacore: averages follow the explicit sums, per row, with partial updates", "[adacore]") {
    AdaCoreOptions o;
    o.beta1 = 0.8;
    o.beta2 = 0.95;
    o.eps = 0.05;
    o.hessian_power = 0.7;
    const Eigen::Index n = 6, d = 4;
    AdaCore<double> ada(n, o);
    std::vector<Reference> ref(static_cast<std::size_t>(n));
    coreset::detail::Rng rng(3);
    for (int round = 0; round < 12; ++round) {
        // Alternate full updates and random subsets of rows (std::vector or Eigen indices).
        std::vector<Eigen::Index> rows;
        for (Eigen::Index i = 0; i < n; ++i)
            if (round % 3 == 0 || rng.uniform() < 0.5) rows.push_back(i);
        if (rows.empty()) rows.push_back(2);
        rng.shuffle(rows);
        const auto m = static_cast<Eigen::Index>(rows.size());
        const Eigen::MatrixXd g = gaussian<double>(m, d, 100 + static_cast<std::uint64_t>(round));
        const Eigen::MatrixXd h = gaussian<double>(m, d, 200 + static_cast<std::uint64_t>(round)).cwiseAbs();
        if (round % 3 == 0) {
            Eigen::MatrixXd gf(n, d), hf(n, d);
            for (Eigen::Index j = 0; j < m; ++j) {
                gf.row(rows[static_cast<std::size_t>(j)]) = g.row(j);
                hf.row(rows[static_cast<std::size_t>(j)]) = h.row(j);
            }
            ada.update(gf, hf);
        } else if (round % 3 == 1) {
            ada.update(rows, g, h);
        } else {
            Eigen::VectorXi idx(m);
            for (Eigen::Index j = 0; j < m; ++j) idx[j] = static_cast<int>(rows[static_cast<std::size_t>(j)]);
            ada.update(idx, g, h);
        }
        for (Eigen::Index j = 0; j < m; ++j) {
            auto& r = ref[static_cast<std::size_t>(rows[static_cast<std::size_t>(j)])];
            r.g.push_back(g.row(j).transpose());
            r.h.push_back(h.row(j).transpose());
        }
    }
    const auto gb = ada.smoothed_gradients();
    const auto hb = ada.smoothed_curvature();
    const auto u = ada.preconditioned();
    for (Eigen::Index i = 0; i < n; ++i) {
        const auto& r = ref[static_cast<std::size_t>(i)];
        REQUIRE(ada.steps()[static_cast<std::size_t>(i)] == static_cast<std::int64_t>(r.g.size()));
        const Eigen::VectorXd eg = r.g_bar(0.8), eh = r.h_bar(0.95);
        const Eigen::VectorXd eu = eg.array() / (eh.array().pow(0.7) + 0.05);
        for (Eigen::Index k = 0; k < d; ++k) {
            CHECK_THAT(gb(i, k), WithinRel(eg[k], 1e-12));
            CHECK_THAT(hb(i, k), WithinRel(eh[k], 1e-12));
            CHECK_THAT(u(i, k), WithinRel(eu[k], 1e-12));
        }
    }
}

TEST_CASE("adacore: preconditioning for every hessian_power, and eps bounds confidently wrong rows",
          "[adacore]") {
    // Softmax proxy: row 0 confidently wrong, row 1 uncertain, row 2 confidently right.
    Eigen::MatrixXd z(3, 3);
    z << 0, 30, 0, 0.1, 0, -0.1, 30, 0, 0;
    Eigen::VectorXi y(3);
    y << 0, 0, 0;
    const auto g = logit_gradients(z, y);
    const auto h = logit_hessian_diagonal(z);
    for (double power : {0.0, 0.3, 0.5, 1.0}) {
        AdaCoreOptions o = plain_options();
        o.eps = 1e-4;
        o.hessian_power = power;
        AdaCore<double> ada(3, o);
        ada.update(g, h);
        const auto u = ada.preconditioned();
        for (Eigen::Index i = 0; i < 3; ++i)
            for (Eigen::Index k = 0; k < 3; ++k) {
                const double expect = g(i, k) / (std::pow(h(i, k), power) + 1e-4);
                INFO("power " << power << ", row " << i << ", column " << k);
                CHECK_THAT(u(i, k), WithinRel(expect, 1e-14));
                CHECK(std::abs(u(i, k)) <= std::abs(g(i, k)) / 1e-4);
            }
    }
    // Confidently wrong: p_y ~ e^-30, u_y ~ -1 / (p_y + eps) ~ -1e4, capped by eps.
    AdaCoreOptions o = plain_options();
    o.eps = 1e-4;
    AdaCore<double> ada(3, o);
    ada.update(g, h);
    CHECK_THAT(ada.preconditioned()(0, 0), WithinRel(-1e4, 1e-6));
}

TEMPLATE_TEST_CASE("adacore: curvature changes the picks when gradients coincide", "[adacore]", float,
                   double) {
    // Rows 0-3: the same gradient, curvature 1 or 100; rows 4-5 elsewhere. Craig sees three
    // points (one distinct point at g = 1, with 4 copies); AdaCore splits the copies by curvature.
    Mat<TestType> g(6, 1), h(6, 1);
    g << 1, 1, 1, 1, -3, -3.2;
    h << 1, 1, 100, 100, 1, 1;
    AdaCoreOptions o = plain_options();
    AdaCore<TestType> ada(6, o);
    ada.update(g, h);
    const auto a = ada.select(3);
    const std::set<Eigen::Index> picked(a.indices.begin(), a.indices.end());
    CHECK(picked.count(0) + picked.count(1) == 1);  // one representative of u = 1
    CHECK(picked.count(2) + picked.count(3) == 1);  // one of u = 0.01
    CHECK(picked.count(4) + picked.count(5) == 1);
    CHECK(a.weights == Eigen::Matrix<TestType, Eigen::Dynamic, 1>::Constant(3, TestType(2)));
    const auto c = Craig(o.craig_options()).select(g, 3);
    const std::set<Eigen::Index> craig_picked(c.indices.begin(), c.indices.end());
    CHECK(craig_picked.count(0) + craig_picked.count(1) + craig_picked.count(2) + craig_picked.count(3) == 1);
}

TEMPLATE_TEST_CASE("adacore: per-class selection is Craig per class on the preconditioned rows", "[adacore]",
                   float, double) {
    const Eigen::Index n = 90;
    Eigen::MatrixXd z = gaussian<double>(n, 4, 301) * 2.0;
    const Eigen::VectorXi y = coreset_test::round_robin_labels(n, 4);
    AdaCore<TestType> ada(n);
    for (int t = 0; t < 3; ++t) {
        z += gaussian<double>(n, 4, 400 + static_cast<std::uint64_t>(t)) * 0.1;
        ada.update(logit_gradients(z, y), logit_hessian_diagonal(z));  // double into float state too
    }
    const auto u = ada.preconditioned();
    const auto picked = ada.select(y, 20);
    require_same(picked, Craig(ada.options().craig_options()).select(u, y, 20));
    REQUIRE(picked.size() == 20);
    std::vector<TestType> class_weight(4, 0);
    for (Eigen::Index j = 0; j < picked.size(); ++j)
        class_weight[static_cast<std::size_t>(y[picked.indices[static_cast<std::size_t>(j)]])] +=
            picked.weights[j];
    for (int c = 0; c < 4; ++c) {
        const auto size = static_cast<TestType>((y.array() == c).count());
        CHECK(class_weight[static_cast<std::size_t>(c)] == size);
    }
}

TEST_CASE("adacore: callbacks reach the engine", "[adacore]") {
    AdaCore<double> ada(40);
    ada.update(gaussian<double>(40, 3, 5), gaussian<double>(40, 3, 6));
    const auto r = ada.select(10, StopAt{4});
    CHECK(r.size() == 4);
    CHECK(r.status == Status::StoppedByCallback);
    const auto full = ada.select(10);
    CHECK(std::vector<Eigen::Index>(full.indices.begin(), full.indices.begin() + 4) == r.indices);
}

TEST_CASE("adacore: option checks name the field and value", "[adacore]") {
    const auto invalid = [](auto mutate) {
        AdaCoreOptions o;
        mutate(o);
        return o;
    };
    REQUIRE_THROWS_MATCHES(
        invalid([](AdaCoreOptions& o) { o.beta1 = 1.0; }).validate(), std::invalid_argument,
        message_is("AdaCoreOptions::validate(): beta1 must satisfy 0 <= beta1 < 1 (got 1)"));
    REQUIRE_THROWS_MATCHES(
        invalid([](AdaCoreOptions& o) { o.beta1 = -0.1; }).validate(), std::invalid_argument,
        message_is(
            "AdaCoreOptions::validate(): beta1 must satisfy 0 <= beta1 < 1 (got -0.10000000000000001)"));
    REQUIRE_THROWS_MATCHES(
        invalid([](AdaCoreOptions& o) { o.beta2 = 1.5; }).validate(), std::invalid_argument,
        message_is("AdaCoreOptions::validate(): beta2 must satisfy 0 <= beta2 < 1 (got 1.5)"));
    REQUIRE_THROWS_MATCHES(
        invalid([](AdaCoreOptions& o) { o.beta2 = std::numeric_limits<double>::quiet_NaN(); }).validate(),
        std::invalid_argument,
        message_is("AdaCoreOptions::validate(): beta2 must satisfy 0 <= beta2 < 1 (got nan)"));
    REQUIRE_THROWS_MATCHES(
        invalid([](AdaCoreOptions& o) { o.eps = -1e-4; }).validate(), std::invalid_argument,
        message_is("AdaCoreOptions::validate(): eps must satisfy 0 <= eps < inf (got -0.0001)"));
    REQUIRE_THROWS_MATCHES(
        invalid([](AdaCoreOptions& o) { o.hessian_power = 2; }).validate(), std::invalid_argument,
        message_is("AdaCoreOptions::validate(): hessian_power must satisfy 0 <= hessian_power <= 1 "
                   "(got 2)"));
    // The shared fields are checked by CraigOptions::validate, reported under AdaCoreOptions.
    REQUIRE_THROWS_MATCHES(
        invalid([](AdaCoreOptions& o) { o.epsilon = 0; }).validate(), std::invalid_argument,
        message_is("AdaCoreOptions::validate(): epsilon must satisfy 0 < epsilon < 1 (got 0)"));
    REQUIRE_THROWS_MATCHES(
        AdaCore<float>(4, invalid([](AdaCoreOptions& o) { o.eps = -1; })), std::invalid_argument,
        message_is("AdaCoreOptions::validate(): eps must satisfy 0 <= eps < inf (got -1)"));
    REQUIRE_THROWS_MATCHES(AdaCore<float>(0), std::invalid_argument,
                           message_is("AdaCore::AdaCore(): n must satisfy n >= 1 (got 0)"));
    REQUIRE_NOTHROW(invalid([](AdaCoreOptions& o) {
                        o.beta1 = 0;
                        o.beta2 = 0;
                        o.eps = 0;
                        o.hessian_power = 0;
                    }).validate());
}

TEST_CASE("adacore: bad updates are rejected and leave the state unchanged", "[adacore]") {
    AdaCore<double> ada(4);
    const Eigen::MatrixXd g = gaussian<double>(4, 3, 11), h = gaussian<double>(4, 3, 12);
    ada.update(g, h);
    ada.update(std::vector<int>{1, 3}, g.topRows(2), h.topRows(2));
    const auto gb = ada.smoothed_gradients();
    const auto hb = ada.smoothed_curvature();
    const auto steps = ada.steps();
    const auto unchanged = [&] {
        REQUIRE(ada.smoothed_gradients() == gb);
        REQUIRE(ada.smoothed_curvature() == hb);
        REQUIRE(ada.steps() == steps);
        REQUIRE(ada.dim() == 3);
    };

    REQUIRE_THROWS_MATCHES(
        ada.update(g, h.leftCols(2)), std::invalid_argument,
        message_is("AdaCore::update(): hessian_diag must have the shape of gradients (got 4 x 2 "
                   "for 4 x 3)"));
    unchanged();
    REQUIRE_THROWS_MATCHES(
        ada.update(g.topRows(3), h.topRows(3)), std::invalid_argument,
        message_is("AdaCore::update(): gradients must have one row per example (got 3 rows for "
                   "n = 4)"));
    unchanged();
    const Eigen::MatrixXd wide = Eigen::MatrixXd::Ones(4, 5);
    REQUIRE_THROWS_MATCHES(
        ada.update(wide, wide), std::invalid_argument,
        message_is("AdaCore::update(): gradients must have d = 3 columns, as in earlier updates "
                   "(got 5)"));
    unchanged();
    Eigen::MatrixXd bad = h;
    bad(3, 2) = std::numeric_limits<double>::infinity();
    REQUIRE_THROWS_MATCHES(
        ada.update(g, bad), std::invalid_argument,
        message_is("AdaCore::update(): hessian_diag must be finite (got inf at row 3, column 2)"));
    unchanged();
    REQUIRE_THROWS_MATCHES(
        ada.update(std::vector<Eigen::Index>{0, 4}, g.topRows(2), h.topRows(2)), std::invalid_argument,
        message_is("AdaCore::update(): indices must satisfy 0 <= index < n = 4 (got 4 at position "
                   "1)"));
    unchanged();
    Eigen::VectorXi dup(3);
    dup << 2, 0, 2;
    REQUIRE_THROWS_MATCHES(
        ada.update(dup, g.topRows(3), h.topRows(3)), std::invalid_argument,
        message_is("AdaCore::update(): indices must be unique (got 2 at positions 0 and 2)"));
    unchanged();
    REQUIRE_THROWS_MATCHES(
        ada.update(std::vector<int>{0, 1}, g.topRows(3), h.topRows(3)), std::invalid_argument,
        message_is("AdaCore::update(): indices must have one entry per row of gradients (got 2 "
                   "indices for 3 rows)"));
    unchanged();
    REQUIRE_THROWS_MATCHES(
        ada.update(std::vector<int>{-1}, g.topRows(1), h.topRows(1)), std::invalid_argument,
        message_is("AdaCore::update(): indices must satisfy 0 <= index < n = 4 (got -1 at position "
                   "0)"));
    unchanged();
    const Eigen::MatrixXd none(0, 3);
    REQUIRE_THROWS_MATCHES(
        ada.update(std::vector<int>{}, none, none), std::invalid_argument,
        message_is("AdaCore::update(): gradients must have at least one row and one column (got 0 "
                   "x 3)"));
    unchanged();
    // Bad select arguments.
    REQUIRE_THROWS_MATCHES(
        ada.select(5), std::invalid_argument,
        message_is("AdaCore::select(): budget must satisfy 1 <= budget <= n (got budget = 5, n = 4)"));
    const Eigen::VectorXi short_labels = Eigen::VectorXi::Zero(3);
    REQUIRE_THROWS_MATCHES(
        ada.select(short_labels, 2), std::invalid_argument,
        message_is("AdaCore::select(): labels must have one entry per row of gradients (got 3 "
                   "labels for n = 4 rows)"));
}

TEST_CASE("adacore: call order and degenerate curvature", "[adacore]") {
    AdaCore<float> ada(3);
    REQUIRE_THROWS_MATCHES(ada.preconditioned(), std::logic_error,
                           message_is("AdaCore::preconditioned(): call update() first (no observation yet)"));
    REQUIRE_THROWS_MATCHES(ada.select(1), std::logic_error,
                           message_is("AdaCore::select(): call update() first (no observation yet)"));
    const Eigen::MatrixXf g = Eigen::MatrixXf::Ones(2, 2);
    ada.update(std::vector<int>{2, 0}, g, g);
    REQUIRE_THROWS_MATCHES(
        ada.smoothed_gradients(), std::logic_error,
        message_is("AdaCore::smoothed_gradients(): every example must have been updated at least "
                   "once (row 1 has no update)"));
    ada.update(std::vector<int>{1}, g.topRows(1), g.topRows(1));
    REQUIRE(ada.steps() == std::vector<std::int64_t>{1, 1, 1});
    ada.reset();
    CHECK(ada.dim() == 0);
    CHECK(ada.steps() == std::vector<std::int64_t>(3, 0));
    ada.update(Eigen::MatrixXf::Ones(3, 5), Eigen::MatrixXf::Ones(3, 5));  // a new width after reset
    CHECK(ada.dim() == 5);

    // eps = 0 with a zero curvature coordinate: u is not finite and is reported.
    AdaCore<double> flat(2, plain_options());
    Eigen::MatrixXd h = Eigen::MatrixXd::Ones(2, 2);
    h(1, 0) = 0;
    flat.update(Eigen::MatrixXd::Ones(2, 2), h);
    REQUIRE_THROWS_MATCHES(
        flat.preconditioned(), std::invalid_argument,
        message_is("AdaCore::preconditioned(): u = g_bar / (h_bar^hessian_power + eps) must be "
                   "finite (got inf at row 1, column 0)"));
}

TEST_CASE("adacore: huge curvature does not overflow the double state", "[adacore]") {
    AdaCore<double> ada(1);
    const double big = 1e200;
    Eigen::MatrixXd g(1, 1), h(1, 1);
    g << 1;
    h << big;
    for (int t = 0; t < 3; ++t) ada.update(g, h);
    CHECK_THAT(ada.smoothed_curvature()(0, 0), WithinRel(big, 1e-12));
    CHECK_THAT(ada.preconditioned()(0, 0), WithinRel(1 / big, 1e-12));
}
