// SPDX-License-Identifier: MIT
// gradients.hpp: softmax cross-entropy closed forms, Hutchinson, Sherman-Morrison.
#include <Eigen/Dense>
#include <cmath>
#include <coreset/gradients.hpp>
#include <limits>

#include "test_support.hpp"

using namespace coreset;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using coreset_test::gaussian;
using coreset_test::message_is;

namespace {

// Reference loss of one row, written naively (moderate logits only).
double naive_loss(const Eigen::VectorXd& z, Eigen::Index y) {
    double s = 0;
    for (Eigen::Index k = 0; k < z.size(); ++k) s += std::exp(z[k]);
    return std::log(s) - z[y];
}

// Loss of one example as a function of the last-layer parameters theta = [b (C) | W row-major (C x E)]
// (the CORDS layout), with embedding e.
double layer_loss(const Eigen::VectorXd& theta, const Eigen::VectorXd& e, Eigen::Index C, Eigen::Index y) {
    const Eigen::Index E = e.size();
    Eigen::VectorXd z(C);
    for (Eigen::Index c = 0; c < C; ++c) z[c] = theta[c] + theta.segment(C + c * E, E).dot(e);
    return naive_loss(z, y);
}

Eigen::VectorXi labels_for(Eigen::Index n, int classes, std::uint64_t seed) {
    coreset::detail::Rng rng(seed);
    Eigen::VectorXi y(n);
    for (Eigen::Index i = 0; i < n; ++i)
        y[i] = static_cast<int>(rng.below(static_cast<std::uint64_t>(classes)));
    return y;
}

}  // namespace

TEMPLATE_TEST_CASE("gradients: softmax matches the naive formula and survives huge logits", "[gradients]",
                   float, double) {
    using M = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    const M z = gaussian<TestType>(7, 4, 11) * TestType(3);
    const auto p = softmax(z);
    REQUIRE(p.rows() == 7);
    REQUIRE(p.cols() == 4);
    for (Eigen::Index i = 0; i < 7; ++i) {
        const Eigen::VectorXd zi = z.row(i).transpose().template cast<double>();
        const Eigen::VectorXd ref = zi.array().exp() / zi.array().exp().sum();
        for (Eigen::Index k = 0; k < 4; ++k)
            CHECK_THAT(static_cast<double>(p(i, k)),
                       WithinRel(ref[k], coreset_test::Tolerance<TestType>::rel));
        CHECK_THAT(static_cast<double>(p.row(i).sum()), WithinAbs(1.0, 1e-6));
    }
    M big(1, 3);
    big << TestType(1000), TestType(1001), TestType(-1000);
    const auto q = softmax(big);
    CHECK_THAT(static_cast<double>(q(0, 0)), WithinRel(1.0 / (1.0 + std::exp(1.0)), 1e-6));
    CHECK_THAT(static_cast<double>(q(0, 1)), WithinRel(std::exp(1.0) / (1.0 + std::exp(1.0)), 1e-6));
    CHECK(q(0, 2) == TestType(0));
}

TEMPLATE_TEST_CASE("gradients: cross_entropy is stable for large and tiny losses", "[gradients]", float,
                   double) {
    using M = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    const M z = gaussian<TestType>(9, 5, 3);
    const Eigen::VectorXi y = labels_for(9, 5, 4);
    const auto loss = cross_entropy(z, y);
    REQUIRE(loss.size() == 9);
    for (Eigen::Index i = 0; i < 9; ++i)
        CHECK_THAT(static_cast<double>(loss[i]),
                   WithinRel(naive_loss(z.row(i).transpose().template cast<double>(), y[i]),
                             coreset_test::Tolerance<TestType>::rel));
    M extreme(3, 2);
    extreme << TestType(1000), TestType(0),  // wrong by 1000: loss 1000 (naive exp overflows)
        TestType(50), TestType(0),           // right with margin 50: loss log1p(e^-50) ~ 1.9e-22
        TestType(0), TestType(0);
    Eigen::VectorXi ey(3);
    ey << 1, 0, 1;
    const auto el = cross_entropy(extreme, ey);
    CHECK_THAT(static_cast<double>(el[0]), WithinRel(1000.0, 1e-6));
    CHECK_THAT(static_cast<double>(el[1]), WithinRel(std::exp(-50.0), 1e-5));
    CHECK_THAT(static_cast<double>(el[2]), WithinRel(std::log(2.0), 1e-6));
    // From probabilities: -log p_y.
    const auto lp = cross_entropy(softmax(z), y, ModelOutput::Probabilities);
    for (Eigen::Index i = 0; i < 9; ++i)
        CHECK_THAT(static_cast<double>(lp[i]), WithinRel(static_cast<double>(loss[i]), 1e-4));
}

TEST_CASE("gradients: logit gradient and Hessian diagonal match central finite differences", "[gradients]") {
    const Eigen::MatrixXd z = gaussian<double>(6, 4, 21) * 2.0;
    const Eigen::VectorXi y = labels_for(6, 4, 22);
    const auto g = logit_gradients(z, y);
    const auto h = logit_hessian_diagonal(z);
    for (Eigen::Index i = 0; i < z.rows(); ++i) {
        const Eigen::VectorXd zi = z.row(i).transpose();
        const double l0 = naive_loss(zi, y[i]);
        for (Eigen::Index k = 0; k < z.cols(); ++k) {
            Eigen::VectorXd up = zi, dn = zi;
            const double hg = 1e-5;
            up[k] += hg;
            dn[k] -= hg;
            const double fd_g = (naive_loss(up, y[i]) - naive_loss(dn, y[i])) / (2 * hg);
            CHECK_THAT(g(i, k), WithinAbs(fd_g, 1e-6));
            const double hh = 1e-4;
            up = zi;
            dn = zi;
            up[k] += hh;
            dn[k] -= hh;
            const double fd_h = (naive_loss(up, y[i]) - 2 * l0 + naive_loss(dn, y[i])) / (hh * hh);
            CHECK_THAT(h(i, k), WithinAbs(fd_h, 1e-6));
        }
        CHECK_THAT(g.row(i).sum(), WithinAbs(0.0, 1e-15));
    }
}

TEST_CASE("gradients: last-layer gradient and Hessian diagonal match finite differences in the CORDS layout",
          "[gradients]") {
    const Eigen::Index n = 4, C = 3, E = 5;
    const Eigen::MatrixXd W = gaussian<double>(C, E, 31) * 0.7;
    const Eigen::VectorXd b = gaussian<double>(C, 1, 32).col(0);
    const Eigen::MatrixXd emb = gaussian<double>(n, E, 33);
    const Eigen::VectorXi y = labels_for(n, static_cast<int>(C), 34);
    const Eigen::MatrixXd z = (emb * W.transpose()).rowwise() + b.transpose();
    Eigen::VectorXd theta(C * (1 + E));
    theta.head(C) = b;
    for (Eigen::Index c = 0; c < C; ++c) theta.segment(C + c * E, E) = W.row(c).transpose();

    const auto g = last_layer_gradients(z, y, emb);
    const auto h = last_layer_hessian_diagonal(z, emb);
    REQUIRE(g.rows() == n);
    REQUIRE(g.cols() == C * (1 + E));
    REQUIRE(h.cols() == C * (1 + E));
    for (Eigen::Index i = 0; i < n; ++i) {
        const Eigen::VectorXd e = emb.row(i).transpose();
        const double l0 = layer_loss(theta, e, C, y[i]);
        for (Eigen::Index j = 0; j < theta.size(); ++j) {
            Eigen::VectorXd up = theta, dn = theta;
            up[j] += 1e-5;
            dn[j] -= 1e-5;
            const double fd_g = (layer_loss(up, e, C, y[i]) - layer_loss(dn, e, C, y[i])) / 2e-5;
            CHECK_THAT(g(i, j), WithinAbs(fd_g, 1e-6));
            up = theta;
            dn = theta;
            up[j] += 1e-4;
            dn[j] -= 1e-4;
            const double fd_h = (layer_loss(up, e, C, y[i]) - 2 * l0 + layer_loss(dn, e, C, y[i])) / 1e-8;
            CHECK_THAT(h(i, j), WithinAbs(fd_h, 1e-6));
        }
    }
}

TEMPLATE_TEST_CASE("gradients: the class slice is the class's columns of the full last-layer gradient",
                   "[gradients]", float, double) {
    using M = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    const Eigen::Index n = 8, C = 4, E = 3;
    const M z = gaussian<TestType>(n, C, 41);
    const M emb = gaussian<TestType>(n, E, 42);
    const Eigen::VectorXi y = labels_for(n, static_cast<int>(C), 43);
    const auto full = last_layer_gradients(z, y, emb);
    for (Eigen::Index c = 0; c < C; ++c) {
        const auto slice = class_gradients(z, y, emb, c);
        REQUIRE(slice.rows() == n);
        REQUIRE(slice.cols() == 1 + E);
        CHECK(slice.col(0) == full.col(c));
        CHECK(slice.rightCols(E) == full.middleCols(C + c * E, E));
    }
    // The first C columns are p - onehot(y).
    CHECK(full.leftCols(C) == logit_gradients(z, y));
}

TEMPLATE_TEST_CASE("gradients: probabilities give the same closed forms as logits", "[gradients]", float,
                   double) {
    using M = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    const M z = gaussian<TestType>(10, 3, 51);
    const M emb = gaussian<TestType>(10, 2, 52);
    const Eigen::VectorXi y = labels_for(10, 3, 53);
    const auto p = softmax(z);
    const double tol = 1e-5;
    CHECK(logit_gradients(p, y, ModelOutput::Probabilities).isApprox(logit_gradients(z, y), TestType(tol)));
    CHECK(logit_hessian_diagonal(p, ModelOutput::Probabilities)
              .isApprox(logit_hessian_diagonal(z), TestType(tol)));
    CHECK(last_layer_gradients(p, y, emb, ModelOutput::Probabilities)
              .isApprox(last_layer_gradients(z, y, emb), TestType(tol)));
    CHECK(last_layer_hessian_diagonal(p, emb, ModelOutput::Probabilities)
              .isApprox(last_layer_hessian_diagonal(z, emb), TestType(tol)));
    CHECK(class_gradients(p, y, emb, 2, ModelOutput::Probabilities)
              .isApprox(class_gradients(z, y, emb, 2), TestType(tol)));
}

TEST_CASE("gradients: confident examples keep their tiny gradient and curvature", "[gradients]") {
    Eigen::MatrixXd z(2, 3);
    z << 40, 0, 0,  // correct and confident: p_y - 1 = -2 e^-40 / (1 + 2 e^-40)
        0, 40, 0;   // confidently wrong (label 0): p_0 = e^-40 / (1 + 2 e^-40)
    Eigen::VectorXi y(2);
    y << 0, 0;
    const double t = std::exp(-40.0), s = 1 + 2 * t;
    const auto g = logit_gradients(z, y);
    const auto h = logit_hessian_diagonal(z);
    CHECK_THAT(g(0, 0), WithinRel(-2 * t / s, 1e-12));
    CHECK_THAT(h(0, 0), WithinRel((1 / s) * (2 * t / s), 1e-12));
    CHECK_THAT(h(0, 1), WithinRel((t / s) * (1 - t / s), 1e-12));
    CHECK_THAT(g(1, 0), WithinRel(t / s - 1, 1e-12));
    CHECK_THAT(g(1, 1), WithinRel(1 / s, 1e-12));
    CHECK_THAT(h(1, 1), WithinRel((1 / s) * (2 * t / s), 1e-12));
    // Single precision: the same small values, not 0.
    const Eigen::MatrixXf zf = z.cast<float>();
    CHECK_THAT(static_cast<double>(logit_gradients(zf, y)(0, 0)), WithinRel(-2 * t / s, 1e-6));
    CHECK_THAT(static_cast<double>(logit_hessian_diagonal(zf)(0, 0)), WithinRel(2 * t / s / s, 1e-6));
}

TEST_CASE("gradients: bad inputs are rejected with the function, parameter and value", "[gradients]") {
    Eigen::MatrixXd z = Eigen::MatrixXd::Zero(3, 3);
    Eigen::VectorXi y(3);
    y << 0, 3, 1;
    REQUIRE_THROWS_MATCHES(
        logit_gradients(z, y), std::invalid_argument,
        message_is("coreset::logit_gradients(): labels must be < C = 3, the number of columns "
                   "of scores (got 3 at index 1)"));
    y << 0, -1, 1;
    REQUIRE_THROWS_MATCHES(cross_entropy(z, y), std::invalid_argument,
                           message_is("coreset::cross_entropy(): labels must be >= 0 (got -1 at index 1)"));
    const Eigen::VectorXi y2 = Eigen::VectorXi::Zero(2);
    REQUIRE_THROWS_MATCHES(
        cross_entropy(z, y2), std::invalid_argument,
        message_is("coreset::cross_entropy(): labels must have one entry per row of gradients "
                   "(got 2 labels for n = 3 rows)"));
    const Eigen::VectorXi y0 = Eigen::VectorXi::Zero(3);
    const Eigen::MatrixXd emb = Eigen::MatrixXd::Ones(2, 4);
    REQUIRE_THROWS_MATCHES(
        last_layer_gradients(z, y0, emb), std::invalid_argument,
        message_is("coreset::last_layer_gradients(): embeddings must have one row per row of "
                   "scores (got 2 rows for n = 3)"));
    const Eigen::MatrixXd emb3 = Eigen::MatrixXd::Ones(3, 4);
    REQUIRE_THROWS_MATCHES(class_gradients(z, y0, emb3, 3), std::invalid_argument,
                           message_is("coreset::class_gradients(): cls must satisfy 0 <= cls < C (got 3)"));
    z(2, 1) = std::numeric_limits<double>::quiet_NaN();
    REQUIRE_THROWS_MATCHES(
        softmax(z), std::invalid_argument,
        message_is("coreset::softmax(): scores must be finite (got nan at row 2, column 1)"));
    const Eigen::MatrixXd none(0, 3);
    REQUIRE_THROWS_MATCHES(
        logit_hessian_diagonal(none), std::invalid_argument,
        message_is("coreset::logit_hessian_diagonal(): scores must have at least one row and "
                   "one column (got 0 x 3)"));
    Eigen::MatrixXd p(2, 2);
    p << 0.5, 0.5, 1.25, -0.25;
    REQUIRE_THROWS_MATCHES(
        logit_hessian_diagonal(p, ModelOutput::Probabilities), std::invalid_argument,
        message_is("coreset::logit_hessian_diagonal(): scores must satisfy 0 <= p <= 1 for "
                   "ModelOutput::Probabilities (got 1.25 at row 1, column 0)"));
    p << 0.5, 0.5, 0.25, 0.25;
    REQUIRE_THROWS_MATCHES(
        logit_hessian_diagonal(p, ModelOutput::Probabilities), std::invalid_argument,
        message_is("coreset::logit_hessian_diagonal(): scores must have rows summing to 1 +- "
                   "1e-3 for ModelOutput::Probabilities (got 0.5 at row 1)"));
}

TEMPLATE_TEST_CASE("gradients: Hutchinson is exact for a diagonal matrix with one sample",
                   "[gradients][hutchinson]", float, double) {
    using V = Eigen::Matrix<TestType, Eigen::Dynamic, 1>;
    V d(5);
    d << TestType(3), TestType(-1), TestType(0.5), TestType(0), TestType(7);
    int calls = 0;
    const auto est = hutchinson_diagonal<TestType>(
        [&](const V& v) -> V {
            ++calls;
            return d.cwiseProduct(v);
        },
        5, 1, 99);
    CHECK(calls == 1);
    CHECK(est == d);
}

TEST_CASE("gradients: Hutchinson error on a random symmetric matrix shrinks like 1/sqrt(samples)",
          "[gradients][hutchinson]") {
    const Eigen::Index dim = 40;
    const Eigen::MatrixXd a = gaussian<double>(dim, dim, 61);
    const Eigen::MatrixXd H = (a + a.transpose()) / 2;
    const auto hvp = [&](const Eigen::VectorXd& v) { return H * v; };
    // Expected squared error after s samples: sum_{k != j} H_kj^2 / s.
    const double off = H.squaredNorm() - H.diagonal().squaredNorm();
    const auto error = [&](Eigen::Index s) {
        return (hutchinson_diagonal(hvp, dim, s, 7) - H.diagonal()).norm();
    };
    const double e16 = error(16), e1024 = error(1024);
    INFO("error(16) = " << e16 << ", error(1024) = " << e1024 << ", sqrt(off/16) = " << std::sqrt(off / 16));
    CHECK(e16 <= 2 * std::sqrt(off / 16));
    CHECK(e1024 <= 2 * std::sqrt(off / 1024));
    CHECK(e1024 < e16 / 4);  // ideal ratio sqrt(1024 / 16) = 8
    // Same seed, same estimate; another seed, another one.
    CHECK(hutchinson_diagonal(hvp, dim, 16, 7) == hutchinson_diagonal(hvp, dim, 16, 7));
    CHECK(hutchinson_diagonal(hvp, dim, 16, 8) != hutchinson_diagonal(hvp, dim, 16, 7));
}

TEST_CASE("gradients: Hutchinson rejects bad arguments and bad products", "[gradients][hutchinson]") {
    const auto id = [](const Eigen::VectorXd& v) { return v; };
    REQUIRE_THROWS_MATCHES(hutchinson_diagonal(id, 0, 3), std::invalid_argument,
                           message_is("coreset::hutchinson_diagonal(): dim must satisfy dim >= 1 (got 0)"));
    REQUIRE_THROWS_MATCHES(
        hutchinson_diagonal(id, 3, 0), std::invalid_argument,
        message_is("coreset::hutchinson_diagonal(): samples must satisfy samples >= 1 (got 0)"));
    const auto shorter = [](const Eigen::VectorXd& v) { return v.head(v.size() - 1).eval(); };
    REQUIRE_THROWS_MATCHES(
        hutchinson_diagonal(shorter, 3, 2), std::invalid_argument,
        message_is("coreset::hutchinson_diagonal(): hvp(v) must return a vector of length dim "
                   "= 3 (got 2)"));
    const auto nan = [](const Eigen::VectorXd& v) {
        Eigen::VectorXd r = v;
        r[1] = std::numeric_limits<double>::quiet_NaN();
        return r;
    };
    REQUIRE_THROWS_MATCHES(
        hutchinson_diagonal(nan, 3, 2), std::invalid_argument,
        message_is("coreset::hutchinson_diagonal(): hvp(v) must be finite (got nan at index 1)"));
}

TEMPLATE_TEST_CASE("gradients: Sherman-Morrison agrees with a dense inverse", "[gradients][sherman]", float,
                   double) {
    using V = Eigen::Matrix<TestType, Eigen::Dynamic, 1>;
    const Eigen::Index d = 6;
    const V x = gaussian<TestType>(d, 1, 71).col(0);
    const V v = gaussian<TestType>(d, 1, 72).col(0);
    for (double s : {0.0, 0.2, 5.0}) {
        for (double mu : {1e-3, 1.0}) {
            const Eigen::VectorXd xd = x.template cast<double>();
            const Eigen::MatrixXd H = mu * Eigen::MatrixXd::Identity(d, d) + s * xd * xd.transpose();
            const Eigen::VectorXd ref = H.inverse() * v.template cast<double>();
            const V u = sherman_morrison_solve(mu, s, x, v);
            INFO("s = " << s << ", mu = " << mu);
            CHECK(u.template cast<double>().isApprox(ref, 1e3 * coreset_test::Tolerance<TestType>::rel));
        }
    }
    // Row-wise version: each row with its own coefficient.
    const Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic> X = gaussian<TestType>(4, d, 73);
    const Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic> R = gaussian<TestType>(4, d, 74);
    Eigen::Matrix<TestType, Eigen::Dynamic, 1> s(4);
    s << TestType(0), TestType(0.25), TestType(0.1), TestType(3);
    const auto U = sherman_morrison_solve_rows(0.01, s, X, R);
    for (Eigen::Index i = 0; i < 4; ++i) {
        const V xi = X.row(i).transpose(), ri = R.row(i).transpose();
        CHECK(U.row(i).transpose() == sherman_morrison_solve(0.01, static_cast<double>(s[i]), xi, ri));
    }
}

TEST_CASE("gradients: Sherman-Morrison rejects bad arguments", "[gradients][sherman]") {
    const Eigen::VectorXd x = Eigen::VectorXd::Ones(3), v3 = Eigen::VectorXd::Ones(3),
                          v2 = Eigen::VectorXd::Ones(2);
    REQUIRE_THROWS_MATCHES(
        sherman_morrison_solve(0.0, 1.0, x, v3), std::invalid_argument,
        message_is("coreset::sherman_morrison_solve(): mu must satisfy 0 < mu < inf (got 0)"));
    REQUIRE_THROWS_MATCHES(
        sherman_morrison_solve(1.0, -0.5, x, v3), std::invalid_argument,
        message_is("coreset::sherman_morrison_solve(): s must satisfy 0 <= s < inf (got -0.5)"));
    REQUIRE_THROWS_MATCHES(
        sherman_morrison_solve(1.0, 1.0, x, v2), std::invalid_argument,
        message_is("coreset::sherman_morrison_solve(): v must have the length of x (got 2 for "
                   "length 3)"));
    const Eigen::MatrixXd X = Eigen::MatrixXd::Ones(3, 2);
    Eigen::VectorXd s(3);
    s << 1, -2, 0;
    REQUIRE_THROWS_MATCHES(
        sherman_morrison_solve_rows(1.0, s, X, X), std::invalid_argument,
        message_is("coreset::sherman_morrison_solve_rows(): s must satisfy 0 <= s_i < inf (got "
                   "-2 at index 1)"));
    REQUIRE_THROWS_MATCHES(
        sherman_morrison_solve_rows(1.0, s.head(2), X, X), std::invalid_argument,
        message_is("coreset::sherman_morrison_solve_rows(): s must be a vector with one entry "
                   "per row of x (got 2 x 1 for n = 3)"));
}
