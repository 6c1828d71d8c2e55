// SPDX-License-Identifier: MIT
// Factored gradients (factored.hpp): every selector and overload gives the same picks and weights
// on FactoredGradients as on the explicit n x C E matrix they stand for, without forming it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <coreset/coreset.hpp>
#include <coreset/detail/distances.hpp>
#include <numeric>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "test_support.hpp"

using coreset::AdaCore;
using coreset::ClassBudget;
using coreset::Coreset;
using coreset::Craig;
using coreset::CraigOptions;
using coreset::Evaluation;
using coreset::FactoredGradients;
using coreset::GradMatch;
using coreset::GradMatchOptions;
using coreset::Greedy;
using coreset::Metric;
using coreset::NonNegativity;
using Eigen::Index;
using RowMatrixD = coreset::detail::RowMatrix<double>;

namespace {

// A random factored problem: errors that sum to 0 per row (as p - onehot(y)) and non-negative,
// uncentred activations with a bias column (as ReLU features), so that the factored distances
// run through the cancellation repair as they would on real last layers.
FactoredGradients<double> problem(Index n, Index C, Index E, std::uint64_t seed) {
    coreset::detail::Rng rng(seed);
    RowMatrixD e(n, C), h(n, E);
    for (Index i = 0; i < n; ++i) {
        const Index y = static_cast<Index>(rng.below(static_cast<std::uint64_t>(C)));
        double sum = 0;
        for (Index c = 0; c < C; ++c) sum += (e(i, c) = rng.uniform() * (1 + static_cast<double>(i % 5)));
        for (Index c = 0; c < C; ++c) e(i, c) /= sum;
        e(i, y) -= 1.0;
        h(i, 0) = 1.0;
        for (Index k = 1; k < E; ++k) h(i, k) = std::max(0.0, coreset_test::normal(rng) + 0.5);
    }
    return FactoredGradients<double>(e, h);
}

Eigen::VectorXi labels_of(Index n, int classes) { return coreset_test::round_robin_labels(n, classes); }

// Same indices, weights within 1e-6 relative, objectives within 1e-9 relative.
template <class Scalar>
void check_same(const Coreset<Scalar>& factored, const Coreset<Scalar>& dense, double weight_rel = 1e-6) {
    REQUIRE(factored.indices == dense.indices);
    CHECK(factored.status == dense.status);
    REQUIRE(factored.weights.size() == dense.weights.size());
    for (Index j = 0; j < dense.weights.size(); ++j)
        CHECK_THAT(static_cast<double>(factored.weights[j]),
                   Catch::Matchers::WithinRel(static_cast<double>(dense.weights[j]), weight_rel));
    REQUIRE(factored.objective.size() == dense.objective.size());
    for (std::size_t t = 0; t < dense.objective.size(); ++t)
        CHECK_THAT(factored.objective[t], Catch::Matchers::WithinRel(dense.objective[t], 1e-9) ||
                                              Catch::Matchers::WithinAbs(dense.objective[t], 1e-9));
}

template <class Fn>
auto with_threads(int threads, Fn&& fn) {
#ifdef _OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    auto out = fn();
    omp_set_num_threads(before);
    return out;
#else
    (void)threads;
    return fn();
#endif
}

}  // namespace

TEST_CASE("factored: dense() is the row-major flattening of e_i h_i^T", "[factored]") {
    const auto g = problem(7, 3, 4, 1);
    const RowMatrixD d = g.dense();
    REQUIRE(d.rows() == 7);
    REQUIRE(d.cols() == 12);
    CHECK(g.cols() == 12);
    for (Index i = 0; i < 7; ++i)
        for (Index c = 0; c < 3; ++c)
            for (Index k = 0; k < 4; ++k) {
                CHECK(d(i, c * 4 + k) == g.errors()(i, c) * g.activations()(i, k));
                CHECK(g.coeff(i, c * 4 + k) == d(i, c * 4 + k));
            }
    // factored() deduces the scalar and copies any expression.
    const auto f = coreset::factored(g.errors().topRows(3), g.activations().topRows(3));
    CHECK(f.dense() == d.topRows(3));
}

TEST_CASE("factored: the last-layer helpers hold the coordinates of last_layer_gradients and its Hessian",
          "[factored]") {
    const Index n = 9, C = 3, E = 4;
    const Eigen::MatrixXd logits = coreset_test::gaussian<double>(n, C, 3);
    const Eigen::MatrixXd emb = coreset_test::gaussian<double>(n, E, 4);
    const Eigen::VectorXi y = labels_of(n, 3);
    const RowMatrixD full = coreset::last_layer_gradients(logits, y, emb);
    const RowMatrixD hess = coreset::last_layer_hessian_diagonal(logits, emb);
    const auto fg = coreset::factored_last_layer_gradients(logits, y, emb);
    const auto fh = coreset::factored_last_layer_hessian_diagonal(logits, emb);
    const RowMatrixD dg = fg.dense(), dh = fh.dense();
    REQUIRE(dg.cols() == C * (1 + E));
    CHECK(fg.errors() == coreset::logit_gradients(logits, y));
    // dense column c (1 + E) is the bias of class c, c (1 + E) + 1 + j the weight (c, j); the CORDS
    // layout has them at c and C + c E + j.
    for (Index c = 0; c < C; ++c) {
        CHECK(dg.col(c * (1 + E)).isApprox(full.col(c), 1e-15));
        CHECK(dh.col(c * (1 + E)).isApprox(hess.col(c), 1e-15));
        for (Index j = 0; j < E; ++j) {
            CHECK(dg.col(c * (1 + E) + 1 + j).isApprox(full.col(C + c * E + j), 1e-14));
            CHECK(dh.col(c * (1 + E) + 1 + j).isApprox(hess.col(C + c * E + j), 1e-14));
        }
    }
}

TEMPLATE_TEST_CASE("factored: distances equal the explicit ones, symmetric, blocked == dense bit for bit",
                   "[factored]", float, double) {
    using S = TestType;
    using M = coreset::detail::RowMatrix<S>;
    const auto g64 = problem(150, 5, 61, 7);
    const M e = g64.errors().cast<S>(), h = g64.activations().cast<S>();
    const FactoredGradients<S> g(e, h);
    const M dense = g.dense();
    for (Metric metric : {Metric::Euclidean, Metric::SquaredEuclidean, Metric::Cosine, Metric::ExpEuclidean}) {
        INFO("metric " << metric);
        const coreset::detail::PairwiseDistances<S> fd(g, metric, "test");
        const coreset::detail::PairwiseDistances<S> xd(M(dense), metric, "test");
        const Index m = g.rows();
        M all(m, m), ref(m, m);
        fd.compute_all(all.data(), true);
        xd.compute_all(ref.data(), true);
        const double tol = std::is_same<S, float>::value ? 2e-3 : 1e-9;
        // In the caller's units: both use the same unit only by chance, so compare converted.
        const double scale = (ref.template cast<double>() * xd.unit()).cwiseAbs().maxCoeff();
        CHECK(((all.template cast<double>() * fd.unit()) - ref.template cast<double>() * xd.unit())
                  .cwiseAbs()
                  .maxCoeff() <= tol * scale);
        CHECK(all == all.transpose());
        for (Index i = 0; i < m; ++i) CHECK(all(i, i) == S(0));
        // A scrambled block of rows computed on demand is bit-identical to the full matrix.
        std::vector<Index> ids(m);
        std::iota(ids.begin(), ids.end(), Index(0));
        std::reverse(ids.begin(), ids.end());
        M some(101, m);
        fd.compute(ids.data(), 101, some.data(), true);
        for (Index t = 0; t < 101; ++t) CHECK(some.row(t) == all.row(ids[static_cast<std::size_t>(t)]));
        // direct() agrees with the tile path.
        for (Index i = 0; i < m; i += 17)
            for (Index j = 0; j < m; j += 13)
                CHECK(std::abs(static_cast<double>(fd.direct(i, j)) - static_cast<double>(all(i, j))) <=
                      tol * scale / fd.unit() + 1e-30);
    }
}

TEST_CASE("factored: Craig gives the explicit matrix's picks and weights for every overload", "[factored][craig]") {
    const auto g = problem(420, 4, 33, 11);
    const RowMatrixD dense = g.dense();
    const Eigen::VectorXi y = labels_of(420, 3);
    for (Metric metric : {Metric::Euclidean, Metric::SquaredEuclidean, Metric::Cosine, Metric::ExpEuclidean})
        for (Greedy greedy : {Greedy::Lazy, Greedy::Naive, Greedy::Stochastic}) {
            INFO("metric " << metric << ", greedy " << greedy);
            CraigOptions o;
            o.metric = metric;
            o.greedy = greedy;
            o.seed = 3;
            const Craig craig(o);
            check_same(craig.select(g, 25), craig.select(dense, 25));
            check_same(craig.select(g, y, 31), craig.select(dense, y, 31));
            check_same(craig.select_batches(g, 8, 40), craig.select_batches(dense, 8, 40), 1e-12);
        }
    // Blocked evaluation of factored rows is bit-identical to dense evaluation.
    CraigOptions dense_o, blocked_o;
    dense_o.evaluation = Evaluation::Dense;
    blocked_o.evaluation = Evaluation::Blocked;
    blocked_o.memory_budget_bytes = 4000000;
    const auto a = Craig(dense_o).select(g, 30), b = Craig(blocked_o).select(g, 30);
    CHECK(a.indices == b.indices);
    CHECK(a.weights == b.weights);
    CHECK(a.objective == b.objective);
}

TEST_CASE("factored: GradMatch gives the explicit matrix's picks and weights for every overload",
          "[factored][grad_match]") {
    const auto g = problem(300, 4, 26, 13);
    const RowMatrixD dense = g.dense();
    const Eigen::VectorXi y = labels_of(300, 3);
    Eigen::VectorXd target = dense.colwise().sum().transpose();
    target.head(20) *= 0.3;  // a target that is not the column sum
    for (NonNegativity policy : {NonNegativity::ActiveSet, NonNegativity::DropMostNegative})
        for (double lambda : {0.0, 0.5}) {
            INFO("policy " << static_cast<int>(policy) << ", lambda " << lambda);
            GradMatchOptions o;
            o.nonnegativity = policy;
            o.lambda = lambda;
            const GradMatch gm(o);
            check_same(gm.select(g, 40), gm.select(dense, 40));
            check_same(gm.select(g, coreset::Target(target), 40), gm.select(dense, coreset::Target(target), 40));
            check_same(gm.select(g, y, 45), gm.select(dense, y, 45));
            check_same(gm.select_batches(g, 6, 60), gm.select_batches(dense, 6, 60));
        }
    // Past d = C E atoms (the d x d form of the support solve).
    const auto small = problem(120, 2, 3, 17);
    GradMatchOptions o;
    o.lambda = 0.1;
    check_same(GradMatch(o).select(small, 30), GradMatch(o).select(small.dense(), 30));
}

TEST_CASE("factored: AdaCore updates to the state of the dense observations, bit for bit", "[factored][adacore]") {
    const Index n = 160, C = 4, E = 9;
    const Eigen::MatrixXd logits = coreset_test::gaussian<double>(n, C, 21);
    const Eigen::MatrixXd emb = coreset_test::gaussian<double>(n, E, 22).cwiseAbs();
    const Eigen::VectorXi y = labels_of(n, 4);
    const auto fg = coreset::factored_last_layer_gradients(logits, y, emb);
    const auto fh = coreset::factored_last_layer_hessian_diagonal(logits, emb);
    AdaCore<double> a(n), b(n);
    a.update(fg, fh);
    b.update(fg.dense(), fh.dense());
    // A listed update (a mini-batch) with both index containers.
    std::vector<Index> rows = {5, 3, 9};
    const auto part = coreset::detail::gather_rows(fg, rows);
    const auto part_h = coreset::detail::gather_rows(fh, rows);
    a.update(rows, part, part_h);
    b.update(rows, part.dense(), part_h.dense());
    const Eigen::VectorXi more = (Eigen::VectorXi(2) << 7, 1).finished();
    const auto part2 = coreset::detail::gather_rows(fg, {7, 1});
    const auto part2_h = coreset::detail::gather_rows(fh, {7, 1});
    a.update(more, part2, part2_h);
    b.update(more, part2.dense(), part2_h.dense());
    CHECK(a.steps() == b.steps());
    CHECK(a.preconditioned() == b.preconditioned());
    const auto sa = a.select(y, 20), sb = b.select(y, 20);
    CHECK(sa.indices == sb.indices);
    CHECK(sa.weights == sb.weights);
}

TEST_CASE("factored: results do not depend on the thread count", "[factored]") {
    const auto g = problem(500, 5, 40, 23);
    const Eigen::VectorXi y = labels_of(500, 2);
    const auto run = [&] {
        return std::make_pair(Craig().select(g, y, 30), GradMatch().select(g, y, 30));
    };
    const auto one = with_threads(1, run), two = with_threads(2, run);
    CHECK(one.first.indices == two.first.indices);
    CHECK(one.first.weights == two.first.weights);
    CHECK(one.first.objective == two.first.objective);
    CHECK(one.second.indices == two.second.indices);
    CHECK(one.second.weights == two.second.weights);
}

TEST_CASE("factored: invalid factors and inputs are rejected with the selector's message", "[factored]") {
    using coreset_test::message_is;
    const RowMatrixD e = coreset_test::gaussian<double>(5, 2, 1), h = coreset_test::gaussian<double>(5, 3, 2);
    CHECK_THROWS_MATCHES(FactoredGradients<double>(e, h.topRows(4)), std::invalid_argument,
                         message_is("FactoredGradients::FactoredGradients(): activations must have one row per "
                                    "row of errors (got 4 rows for n = 5)"));
    RowMatrixD bad = h;
    bad(2, 1) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_MATCHES(FactoredGradients<double>(e, bad), std::invalid_argument,
                         message_is("FactoredGradients::FactoredGradients(): activations must be finite (got inf "
                                    "at row 2, column 1)"));
    const FactoredGradients<double> g(e, h);
    CHECK_THROWS_MATCHES(Craig().select(g, 0), std::invalid_argument,
                         message_is("Craig::select(): budget must satisfy 1 <= budget <= n (got budget = 0, n = 5)"));
    CHECK_THROWS_MATCHES(GradMatch().select(g, coreset::Target(Eigen::VectorXd::Ones(5)), 2), std::invalid_argument,
                         message_is("GradMatch::select(): target must have one entry per column of gradients (got 5 "
                                    "entries for d = 6 columns)"));
    RowMatrixD zero = e;
    zero.row(3).setZero();
    CraigOptions cosine;
    cosine.metric = Metric::Cosine;
    CHECK_THROWS_MATCHES(Craig(cosine).select(FactoredGradients<double>(zero, h), 2), std::invalid_argument,
                         message_is("Craig::select(): gradients must have no zero row under Metric::Cosine (got a "
                                    "zero row at index 3)"));
    // A product past float's range is caught where AdaCore sees the dense rows.
    AdaCore<float> ada(2);
    const Eigen::MatrixXf big = Eigen::MatrixXf::Constant(2, 2, 1e30f);
    CHECK_THROWS_MATCHES(ada.update(coreset::factored(big, big), coreset::factored(big, big)), std::invalid_argument,
                         message_is("AdaCore::update(): gradients must be finite (got inf at row 0, column 0)"));
    CHECK(ada.dim() == 0);
}

// Regressions from the factored fuzzer (fuzz/regressions/factored/).
TEST_CASE("factored: a factor row far larger than its product sets no scale (Craig, GradMatch)",
          "[factored]") {
    // Row 2's error is 1.6e202 but its activation row is zero: it once set the scale of E in the
    // distance oracle, flushing row 0 (4.3) to zero, and Craig picked row 0 with objective 0.
    RowMatrixD e(4, 2), h(4, 5);
    e << -3, 0, 2.8025969286496341e-45, 0.1875, -2.0092262013617436e+32, -1.5868539640586041e+202, -1.4375,
        -1.4375;
    h.setZero();
    h.row(0) << -1.4375, -1.4375, 0, 0, 0;
    const FactoredGradients<double> g(e, h);
    for (const Greedy greedy : {Greedy::Naive, Greedy::Lazy}) {
        for (const Evaluation evaluation : {Evaluation::Dense, Evaluation::Blocked}) {
            CraigOptions o;
            o.greedy = greedy;
            o.evaluation = evaluation;
            const auto f = Craig(o).select(g, 1), d = Craig(o).select(g.dense(), 1);
            CHECK(f.indices == d.indices);
            CHECK(f.indices == std::vector<Index>{1});
            CHECK(f.weights.sum() == 4.0);
            REQUIRE(f.objective.size() == 1);
            CHECK_THAT(f.objective[0], Catch::Matchers::WithinRel(d.objective[0], 1e-9));
            CHECK(f.objective[0] > 18);
            const Eigen::Matrix<Index, Eigen::Dynamic, 1> labels =
                Eigen::Matrix<Index, Eigen::Dynamic, 1>::Zero(4);
            CHECK(Craig(o).select(g, labels, 1).indices == std::vector<Index>{1});
        }
    }
    // Row 0's error is zero and its activations reach 1.6e202: |e_0| |h_0| = 0 * inf was NaN, the
    // positivity floor of GRAD-MATCH's correlations became NaN, and it returned nothing.
    RowMatrixD e2(2, 2), h2(2, 7);
    const double big = -1.5868081802949822e+202;
    e2 << 0, 0, 2, -1.4375;
    h2 << big, big, -6, -6, -6, -6, 2.5625, -6, -6, -6, -6, -6, -6, -6;
    const FactoredGradients<double> g2(e2, h2);
    GradMatchOptions go;
    go.lambda = 0;
    go.tolerance = 0;
    for (const bool normalize : {false, true}) {
        go.normalize = normalize;
        const auto f = GradMatch(go).select(g2, 1), d = GradMatch(go).select(g2.dense(), 1);
        CHECK(f.indices == std::vector<Index>{1});
        CHECK(f.indices == d.indices);
        CHECK(f.status == d.status);
        REQUIRE(f.weights.size() == 1);
        CHECK_THAT(f.weights[0], Catch::Matchers::WithinRel(d.weights[0], 1e-12));
        CHECK(GradMatch(go).select(g2, coreset::Target(Eigen::VectorXd(g2.dense().row(1).transpose())), 1).indices ==
              std::vector<Index>{1});
        CHECK(GradMatch(go).select(g2, Eigen::VectorXi::Zero(2), 1).indices == std::vector<Index>{1});
    }
}

TEST_CASE("factored: a batch mean past the scalar's range is rejected, not selected on", "[factored]") {
    // One float row whose products reach 1.2e64: plain selection works on the factors, but a
    // batch mean is an explicit float row. GradMatch::select_batches returned an empty coreset.
    using coreset_test::message_is;
    coreset::detail::RowMatrix<float> e(3, 1), h(3, 2);
    e << 1.0965178e32f, 1, 2;
    h << 1.0965178e32f, 1, 1, 2, 3, 1;
    const FactoredGradients<float> g(e, h);
    CHECK(Craig().select(g, 2).size() == 2);
    CHECK(GradMatch().select(g, 2).size() >= 1);
    for (const Index bs : {1, 2}) {
        CHECK_THROWS_MATCHES(
            Craig().select_batches(g, bs, 2), std::invalid_argument,
            message_is("Craig::select_batches(): batch means must be finite (got inf at row 0, "
                       "column 0)"));
        CHECK_THROWS_MATCHES(
            GradMatch().select_batches(g, bs, 2), std::invalid_argument,
            message_is("GradMatch::select_batches(): batch means must be finite (got inf at row 0, "
                       "column 0)"));
    }
    // Batches that avoid the large row are fine.
    const FactoredGradients<float> small(e.bottomRows(2), h.bottomRows(2));
    CHECK(Craig().select_batches(small, 1, 2).size() == 2);
    CHECK(GradMatch().select_batches(small, 1, 2).size() >= 1);
}

TEST_CASE("factored: rows rebalanced between their factors keep their products", "[factored]") {
    // Subnormal float factors (from the fuzzer): shrinking a row whose largest entry would become
    // subnormal lost a significant part of its products (1e-45 / 16 = 0), and GRAD-MATCH's
    // residual no longer matched its weights. Only entries far below the row's largest may round.
    using RowMatrixF = coreset::detail::RowMatrix<float>;
    const float dm = std::numeric_limits<float>::denorm_min();
    RowMatrixF e(6, 3), h(6, 2);
    e << 0, 0, 256 * dm, 256 * dm, 256 * dm, dm, 1e30f, -2e10f, 3, 1e38f, 0, 1e-38f, 7, 0, 0, -8.6e33f,
        256 * dm, 256 * dm;
    h << dm, 5, dm, dm, 1e-30f, 4e-20f, 1e-35f, 0, 0, 0, 256 * dm, dm;
    const FactoredGradients<float> g(e, h);
    const FactoredGradients<float> b = coreset::detail::balanced_rows(g);
    const auto product = [](const FactoredGradients<float>& x, Index i, Index j) {
        return static_cast<double>(x.errors()(i, j / 2)) * static_cast<double>(x.activations()(i, j % 2));
    };
    for (Index i = 0; i < g.rows(); ++i) {
        const double largest =
            static_cast<double>(e.row(i).cwiseAbs().maxCoeff()) * h.row(i).cwiseAbs().maxCoeff();
        for (Index j = 0; j < g.cols(); ++j) {
            INFO("row " << i << ", column " << j);
            CHECK(std::abs(product(b, i, j) - product(g, i, j)) <= 0x1p-24 * largest);
            // Row 1 is subnormal throughout: it is left as it is, every product exact.
            if (i == 1) CHECK(product(b, i, j) == product(g, i, j));
        }
    }
    // Row 2's factors reach 1e30 and 4e-20: balanced, both are near the square root of the
    // largest product (2e5).
    CHECK(b.errors().row(2).cwiseAbs().maxCoeff() < 1e6f);
    CHECK(b.activations().row(2).cwiseAbs().maxCoeff() > 1e4f);
    // Row 5's largest product is 3e-9: its error factor (8.6e33) comes down to 1e-4 or so.
    CHECK(b.errors().row(5).cwiseAbs().maxCoeff() < 1);
    // A row with a zero factor is zero in both.
    CHECK(b.errors().row(4).isZero());
    CHECK(b.activations().row(4).isZero());
}

TEST_CASE("factored: GradMatch correlates float factors whose products pass float's range or span it",
          "[factored]") {
    // Products of 1e38 * 1e38 (from the fuzzer): the float correlation pass gave inf and, times
    // the float 1 / |g_i| (which underflowed to 0), NaN scores; the arg-max took row 0, whose
    // correlation is no real one, and GRAD-MATCH stopped with nothing picked. Double factors hold
    // the same products: the picks must agree.
    using RowMatrixF = coreset::detail::RowMatrix<float>;
    const float b = 9.9999996802856925e+37f;
    RowMatrixF e(2, 6), h(2, 2);
    e << 2, b, b, 2, b, b, b, b, b, b, b, b;
    h << b, b, b, b;
    Eigen::VectorXf t(12);
    t << b, b, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2;
    const FactoredGradients<float> gf(e, h);
    const FactoredGradients<double> gd(e.cast<double>(), h.cast<double>());
    for (const bool normalize : {false, true}) {
        for (const NonNegativity nn : {NonNegativity::ActiveSet, NonNegativity::DropMostNegative}) {
            GradMatchOptions o;
            o.tolerance = 0;
            o.normalize = normalize;
            o.nonnegativity = nn;
            const auto f = GradMatch(o).select(gf, coreset::Target(t), 2);
            const auto d = GradMatch(o).select(gd, coreset::Target(Eigen::VectorXd(t.cast<double>())), 2);
            INFO("normalize " << normalize << ", " << nn);
            REQUIRE(f.size() >= 1);
            CHECK(f.indices == d.indices);
            CHECK(f.indices[0] == (normalize ? 1 : d.indices[0]));
            CHECK(GradMatch(o).select(gf, 2).size() >= 1);
        }
    }
    // Rows whose largest factor entry (8.6e33, 4.3e37) sits beside subnormal ones, products 3e-9
    // and 1.5e-5: unbalanced, they set the scales of E and H, and the pass flushed the rows that
    // matter (products near 17) to zero.
    const float s = 3.5873240686715317e-43f, t1 = 1.4012984643248171e-45f, t2 = 6.0255833965967134e-44f;
    RowMatrixF e2(5, 3), h2(5, 3);
    e2 << -8.6403064911556116e+33f, s, s, s, s, s, 0, 0, -2.75f, 6.9375f, 2, 4.0625f, -3.375f, s, s;
    h2 << s, s, t1, 4.3199909863009766e+37f, -0.75f, t2, t2, 6.4375f, 1.639519203260036e-43f, 2.375f, 0, 0, 0,
        0, 0;
    const FactoredGradients<float> g2(e2, h2);
    const FactoredGradients<double> g2d(e2.cast<double>(), h2.cast<double>());
    GradMatchOptions o;
    o.lambda = 0;
    o.tolerance = 0;
    const auto f = GradMatch(o).select(g2, 1);
    const auto d = GradMatch(o).select(g2d, 1);
    CHECK(f.indices == std::vector<Index>{3});
    CHECK(f.indices == d.indices);
}
