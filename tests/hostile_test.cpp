// SPDX-License-Identifier: MIT
// Issue 20: a hostile test of the public API. Every integer label type checked before narrowing
// and labels from std::vector / contiguous ranges; GRAD-MATCH's answer invariant under power-of-two
// scaling; no NaN or infinity from finite input; messages with the caller's value; exceptions from
// callbacks inside OpenMP regions; one selector from several threads; memory estimates;
// factored GRAD-MATCH independent of the thread count. docs/reliability.md lists each finding.
#include <Eigen/Core>
#include <array>
#include <cfloat>
#include <cmath>
#include <coreset/coreset.hpp>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace coreset;
using coreset_test::message_is;
using Catch::Matchers::Contains;

namespace {

using Index = Eigen::Index;

template <class Scalar>
bool same(const Coreset<Scalar>& a, const Coreset<Scalar>& b) {
    return a.indices == b.indices && a.status == b.status && a.weights == b.weights && a.objective == b.objective;
}

template <class Fn>
auto with_threads(int threads, Fn fn) {
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    auto result = fn();
    omp_set_num_threads(saved);
    return result;
#else
    (void)threads;
    return fn();
#endif
}

/// A minimal contiguous range (as std::span): data() and size() only.
struct LabelSpan {
    const int* p;
    std::size_t n;
    const int* data() const { return p; }
    std::size_t size() const { return n; }
};

struct CallbackError : std::runtime_error {
    CallbackError() : std::runtime_error("callback") {}
};
struct ThrowAt {
    Index at;
    bool on_step(const StepInfo& info) {
        if (info.step == at) throw CallbackError();
        return false;
    }
};

}  // namespace

// ------------------------------------------------------------------------- 1, 7: labels

TEMPLATE_TEST_CASE("hostile: every integer label type is checked in its own type, classes are the distinct labels",
                   "[hostile][labels]", std::int8_t, std::uint8_t, std::int16_t, std::uint16_t, std::int32_t,
                   std::uint32_t, std::int64_t, std::uint64_t) {
    using T = TestType;
    const Index n = 40;
    const Eigen::MatrixXd x = coreset_test::gaussian<double>(n, 4, 3);
    Eigen::VectorXi compact(n);
    Eigen::Matrix<T, Eigen::Dynamic, 1> y(n);
    const T big = std::numeric_limits<T>::max();
    for (Index i = 0; i < n; ++i) {
        compact[i] = static_cast<int>(i % 3);
        y[i] = i % 3 == 0 ? T(0) : (i % 3 == 1 ? T(1) : big);  // labels 0, 1, max: three classes
    }
    const auto reference = Craig().select(x, compact, 9);
    CHECK(same(Craig().select(x, y, 9), reference));
    CHECK(same(GradMatch().select(x, y, 9), GradMatch().select(x, compact, 9)));
    AdaCore<double> ada(n);
    ada.update(x, Eigen::MatrixXd::Ones(n, 4));
    CHECK(same(ada.select(y, 9), ada.select(compact, 9)));
    CHECK_NOTHROW(Crest(y));

    // label = max of T against C = 3 columns of scores: rejected with the value as given.
    const Eigen::MatrixXd z = coreset_test::gaussian<double>(n, 3, 4);
    const std::string value = std::to_string(static_cast<std::conditional_t<std::is_signed<T>::value, long long,
                                                                            unsigned long long>>(big));
    const std::string tail = ", the number of columns of scores (got " + value + " at index 2)";
    CHECK_THROWS_MATCHES(logit_gradients(z, y), std::invalid_argument,
                         message_is("coreset::logit_gradients(): labels must be < C = 3" + tail));
    CHECK_THROWS_MATCHES(cross_entropy(z, y), std::invalid_argument,
                         message_is("coreset::cross_entropy(): labels must be < C = 3" + tail));
    const Eigen::MatrixXd e = coreset_test::gaussian<double>(n, 2, 5);
    CHECK_THROWS_MATCHES(last_layer_gradients(z, y, e), std::invalid_argument,
                         message_is("coreset::last_layer_gradients(): labels must be < C = 3" + tail));
    CHECK_THROWS_MATCHES(factored_last_layer_gradients(z, y, e), std::invalid_argument,
                         message_is("coreset::factored_last_layer_gradients(): labels must be < C = 3" + tail));
    CHECK_THROWS_MATCHES(class_gradients(z, y, e, 0), std::invalid_argument,
                         message_is("coreset::class_gradients(): labels must be < C = 3" + tail));
    if constexpr (std::is_signed<T>::value) {
        y.setZero();
        y[7] = T(-1);
        CHECK_THROWS_MATCHES(Craig().select(x, y, 9), std::invalid_argument,
                             message_is("Craig::select(): labels must be >= 0 (got -1 at index 7)"));
        CHECK_THROWS_MATCHES(logit_gradients(z, y), std::invalid_argument,
                             message_is("coreset::logit_gradients(): labels must be >= 0 (got -1 at index 7)"));
    }
}

TEST_CASE("hostile: labels from std::vector and contiguous ranges give the Eigen results", "[hostile][labels]") {
    const Index n = 30;
    const Eigen::MatrixXd x = coreset_test::gaussian<double>(n, 3, 8);
    const Eigen::VectorXi y = coreset_test::round_robin_labels(n, 3);
    const std::vector<int> v(y.data(), y.data() + n);
    const std::vector<std::uint64_t> v64(y.data(), y.data() + n);
    const LabelSpan span{v.data(), v.size()};
    CHECK(same(Craig().select(x, v, 6), Craig().select(x, y, 6)));
    CHECK(same(Craig().select(x, span, 6), Craig().select(x, y, 6)));
    CHECK(same(Craig().select(x, v64, 6), Craig().select(x, y, 6)));
    CHECK(same(GradMatch().select(x, v, 6), GradMatch().select(x, y, 6)));
    CHECK(same(GradMatch().select(x, span, 6), GradMatch().select(x, y, 6)));
    AdaCore<double> ada(n);
    ada.update(x, Eigen::MatrixXd::Ones(n, 3));
    CHECK(same(ada.select(v, 6), ada.select(y, 6)));
    CHECK(Crest(v).per_class_size() == Crest(y).per_class_size());
    const Eigen::MatrixXd z = coreset_test::gaussian<double>(n, 3, 9);
    CHECK(logit_gradients(z, v) == logit_gradients(z, y));
    CHECK(cross_entropy(z, span) == cross_entropy(z, y));
    const auto g = factored_last_layer_gradients(z, v, x);
    CHECK(same(Craig().select(g, v, 6), Craig().select(g, y, 6)));
    CHECK(same(GradMatch().select(g, v, 6), GradMatch().select(g, y, 6)));
}

TEST_CASE("hostile: a label matrix is rejected, and huge label values cost no per-class memory", "[hostile][labels]") {
    const Eigen::MatrixXd x = coreset_test::gaussian<double>(8, 3, 2);
    const Eigen::MatrixXi m = Eigen::MatrixXi::Zero(4, 2);
    CHECK_THROWS_MATCHES(Craig().select(x, m, 2), std::invalid_argument,
                         message_is("Craig::select(): labels must be a vector (got 4 x 2)"));
    CHECK_THROWS_MATCHES(GradMatch().select(x, m, 2), std::invalid_argument,
                         message_is("GradMatch::select(): labels must be a vector (got 4 x 2)"));
    CHECK_THROWS_MATCHES(logit_gradients(x, m), std::invalid_argument,
                         message_is("coreset::logit_gradients(): labels must be a vector (got 4 x 2)"));
    CHECK_THROWS_MATCHES(Crest(m), std::invalid_argument, message_is("Crest::Crest(): labels must be a vector (got 4 x 2)"));
    // 10^9 and 2^64 - 1 as class ids among n = 10 rows: two classes, as 0 and 1 would be.
    const Eigen::MatrixXd x10 = coreset_test::gaussian<double>(10, 3, 6);
    Eigen::Matrix<std::uint64_t, Eigen::Dynamic, 1> y(10);
    Eigen::VectorXi compact(10);
    for (Index i = 0; i < 10; ++i) {
        y[i] = i % 2 ? ~std::uint64_t(0) : std::uint64_t(1000000000);
        compact[i] = static_cast<int>(i % 2);
    }
    CHECK(same(Craig().select(x10, y, 4), Craig().select(x10, compact, 4)));
}

TEST_CASE("hostile: AdaCore::update names an index of 2^64 - 1 as given", "[hostile][labels]") {
    AdaCore<double> ada(3);
    Eigen::Matrix<std::uint64_t, Eigen::Dynamic, 1> i(1);
    i << ~std::uint64_t(0);
    CHECK_THROWS_MATCHES(ada.update(i, Eigen::MatrixXd::Ones(1, 2), Eigen::MatrixXd::Ones(1, 2)), std::invalid_argument,
                         message_is("AdaCore::update(): indices must satisfy 0 <= index < n = 3 (got "
                                    "18446744073709551615 at position 0)"));
    const std::vector<std::uint64_t> v{~std::uint64_t(0)};
    CHECK_THROWS_MATCHES(ada.update(v, Eigen::MatrixXd::Ones(1, 2), Eigen::MatrixXd::Ones(1, 2)), std::invalid_argument,
                         message_is("AdaCore::update(): indices must satisfy 0 <= index < n = 3 (got "
                                    "18446744073709551615 at position 0)"));
}

TEST_CASE("hostile: out-of-range enumerators are rejected", "[hostile][labels]") {
    const Eigen::MatrixXd z = coreset_test::gaussian<double>(3, 3, 1);
    const Eigen::VectorXi y = Eigen::VectorXi::Zero(3);
    CHECK_THROWS_MATCHES(logit_gradients(z, y, static_cast<ModelOutput>(7)), std::invalid_argument,
                         message_is("coreset::logit_gradients(): output must be ModelOutput::Logits or "
                                    "ModelOutput::Probabilities (got 7)"));
    CrestOptions o;
    o.metric = static_cast<Metric>(7);
    CHECK_THROWS_MATCHES(o.validate(), std::invalid_argument,
                         message_is("CrestOptions::validate(): metric must satisfy a Metric enumerator (got 7)"));
    o = CrestOptions{};
    o.greedy = static_cast<Greedy>(9);
    CHECK_THROWS_MATCHES(Crest(y, o), std::invalid_argument,
                         message_is("CrestOptions::validate(): greedy must satisfy a Greedy enumerator (got 9)"));
    o = CrestOptions{};
    o.class_budget = static_cast<ClassBudget>(5);
    CHECK_THROWS_MATCHES(o.validate(), std::invalid_argument,
                         message_is("CrestOptions::validate(): class_budget must satisfy a ClassBudget enumerator (got 5)"));
}

// ------------------------------------------------------------------------- 2: GRAD-MATCH scale

TEMPLATE_TEST_CASE("hostile: GRAD-MATCH gives the same rows and weights for every power-of-two scale (lambda = 0)",
                   "[hostile][scale]", float, double) {
    using Scalar = TestType;
    const int top = std::is_same<Scalar, float>::value ? 122 : 996;  // 1e37 / 1e300
    const Eigen::Matrix<Scalar, -1, -1> x = coreset_test::gaussian<Scalar>(60, 7, 12);
    const Eigen::VectorXi y = coreset_test::round_robin_labels(60, 3);
    GradMatchOptions o;
    o.lambda = 0;
    const GradMatch gm(o);
    const auto base = gm.select(x, 6), per_class = gm.select(x, y, 6), batches = gm.select_batches(x, 4, 12);
    REQUIRE(base.size() == 6);
    for (int k = -top; k <= top; k += 7) {
        INFO("scale 2^" << k);
        const Eigen::Matrix<Scalar, -1, -1> xs = x.unaryExpr([k](Scalar v) { return std::ldexp(v, k); });
        const auto c = gm.select(xs, 6);
        CHECK(c.indices == base.indices);
        CHECK(c.status == base.status);
        // Bit for bit wherever the scaled copy is exact (no entry subnormal).
        const Eigen::Matrix<Scalar, -1, -1> back = xs.unaryExpr([k](Scalar v) { return std::ldexp(v, -k); });
        if (back == x) {
            CHECK(c.weights == base.weights);
            REQUIRE(c.objective.size() == base.objective.size());
            for (std::size_t t = 0; t < c.objective.size(); ++t) CHECK(c.objective[t] == std::ldexp(base.objective[t], k));
        }
        CHECK(gm.select(xs, y, 6).indices == per_class.indices);
        CHECK(gm.select_batches(xs, 4, 12).indices == batches.indices);
    }
}

TEST_CASE("hostile: GRAD-MATCH with the default lambda at 1e200 and 1e-200 fills the budget", "[hostile][scale]") {
    const Eigen::MatrixXd x = coreset_test::gaussian<double>(40, 6, 21);
    for (double s : {1e200, 1e-200, 1e300, 1e-300}) {
        INFO("scale " << s);
        const auto c = GradMatch().select(x * s, 5);
        CHECK(c.size() == 5);
        CHECK(c.status == Status::BudgetReached);
    }
    // lambda > 0 with the ridge scaled as the square of the data: the same problem, the same answer.
    GradMatchOptions o;
    o.lambda = 0.5;
    const auto base = GradMatch(o).select(x, 5);
    for (int k : {-300, -40, 40, 300}) {
        GradMatchOptions s = o;
        s.lambda = std::ldexp(0.5, 2 * k);
        const auto c = GradMatch(s).select(Eigen::MatrixXd(x * std::ldexp(1.0, k)), 5);
        CHECK(c.indices == base.indices);
        CHECK(c.weights == base.weights);
    }
    const Eigen::MatrixXf xf = x.cast<float>();
    GradMatchOptions z;
    z.lambda = 0;
    CHECK(GradMatch(z).select(Eigen::MatrixXf(xf * (FLT_MAX / 64)), 5).indices == GradMatch(z).select(xf, 5).indices);
}

TEST_CASE("hostile: GRAD-MATCH with a target whose sum of squares underflows is not a zero target", "[hostile][scale]") {
    // A fuzzer find: |t| was computed as sqrt(sum t_j^2), 0 for t = 1e-262, so GRAD-MATCH stopped
    // at once with ToleranceReached; the fit is the one of the unscaled target, scaled.
    const Eigen::MatrixXd x = coreset_test::gaussian<double>(30, 5, 8);
    const Eigen::VectorXd t = x.colwise().sum().transpose();
    GradMatchOptions o;
    o.lambda = 0;
    const auto base = GradMatch(o).select(x, Target(t), 4);
    for (int k : {-600, -800}) {
        INFO("target times 2^" << k);
        const auto c = GradMatch(o).select(x, Target(Eigen::VectorXd(t * std::ldexp(1.0, k))), 4);
        CHECK(c.status == base.status);
        CHECK(c.indices == base.indices);
        for (Eigen::Index j = 0; j < c.size() && c.size() == base.size(); ++j)
            CHECK(c.weights[j] == Approx(std::ldexp(base.weights[j], k)).epsilon(1e-12));
    }
    // Zero rows: nothing correlates, whatever the target's size (Exhausted, not ToleranceReached).
    const Eigen::MatrixXd zero = Eigen::MatrixXd::Zero(1, 1);
    for (double v : {1.1875, std::ldexp(1.1875, -872)}) {
        INFO("target " << v);
        const auto c = GradMatch(o).select(zero, Target(Eigen::VectorXd::Constant(1, v)), 1);
        CHECK(c.size() == 0);
        CHECK(c.status == Status::Exhausted);
    }
}

// ------------------------------------------------------------------------- 3, 7: non-finite results

TEST_CASE("hostile: no NaN or infinity from finite input", "[hostile][finite]") {
    Eigen::VectorXd a(1);
    a << 1e200;
    const Eigen::VectorXd u = sherman_morrison_solve(1, 1, a, a);  // 1e200 / (1 + 1e400)
    CHECK(std::abs(u[0] - 1e-200) <= 1e-14 * 1e-200);
    a << 1e10;
    const Eigen::VectorXd w = sherman_morrison_solve(1, 1, a, a);  // 1e10 / (1 + 1e20)
    CHECK(std::abs(w[0] - 1e10 / (1 + 1e20)) <= 1e-15 * 1e-10);
    Eigen::MatrixXd xr(1, 1);
    xr << 1e10;
    CHECK(std::abs(sherman_morrison_solve_rows(1, Eigen::VectorXd::Ones(1), xr, xr)(0, 0) - 1e-10) <= 1e-24);
    CHECK_THROWS_MATCHES(sherman_morrison_solve(1e-300, 0, a, Eigen::VectorXd::Constant(1, 1e300)), std::invalid_argument,
                         message_is("coreset::sherman_morrison_solve(): v / mu must have a solution within the "
                                    "scalar type's range (got a solution of magnitude inf for mu = 1e-300, "
                                    "max |v| = 1.0000000000000001e+300)"));

    Eigen::VectorXf big(2), tiny(2);
    big << 3e38f, 3e38f;
    tiny << 1e-40f, 1e-40f;
    CHECK(mean_one(big) == Eigen::VectorXf::Ones(2));
    CHECK(mean_one(tiny) == Eigen::VectorXf::Ones(2));
    Eigen::VectorXd huge(2);
    huge << DBL_MAX, DBL_MAX / 2;
    CHECK(mean_one(huge).isApprox(Eigen::Vector2d(4.0 / 3, 2.0 / 3)));

    AdaCore<float> ada(2);
    CHECK_THROWS_MATCHES(ada.update(Eigen::MatrixXd::Constant(2, 1, 1e300), Eigen::MatrixXd::Ones(2, 1)),
                         std::invalid_argument,
                         message_is("AdaCore::update(): gradients must satisfy |value| <= 3.40282347e+38, the largest "
                                    "value of the state's scalar type (got 1.0000000000000001e+300 at row 0, column 0)"));
    ada.update(Eigen::MatrixXf::Constant(2, 1, FLT_MAX), Eigen::MatrixXf::Ones(2, 1));
    CHECK(ada.smoothed_gradients().allFinite());

    const auto h = hutchinson_diagonal<double>([](const Eigen::VectorXd& v) { return Eigen::VectorXd(v * 1.5e308); }, 3, 4);
    CHECK(h == Eigen::VectorXd::Constant(3, 1.5e308));
}

TEST_CASE("hostile: Crest keeps its model finite and measures curvatures of 1e-200 and 1e200", "[hostile][finite]") {
    CrestOptions o;
    o.batch_size = 4;
    o.subset_fraction = 0.2;
    Crest c(coreset_test::round_robin_labels(20, 2), o);
    const Index R = c.candidates().size();
    c.select(coreset_test::gaussian<double>(R, 3, 5), Eigen::VectorXd::Ones(R));
    c.begin_region(1.0, Eigen::VectorXd::Ones(3), Eigen::VectorXd::Constant(3, 1e200));  // h0
    CHECK(c.stats().interval == 1);
    c.begin_region(1.0, Eigen::VectorXd::Ones(3), Eigen::VectorXd::Constant(3, 1e-200));
    CHECK(c.stats().interval == 1000000000000000);  // 1e400, capped at 1e15
    c.record_update(Eigen::VectorXd::Constant(3, 1e100));
    const double before = c.model_loss();
    CHECK(std::isfinite(before));
    CHECK_THROWS_WITH(c.record_update(Eigen::VectorXd::Constant(3, 1e308)),
                      Contains("Crest::record_update(): delta_w must keep delta and the model loss F(delta) finite"));
    CHECK(c.model_loss() == before);
    CHECK(c.stats().steps == 1);
}

// ------------------------------------------------------------------------- 4: messages

TEST_CASE("hostile: messages print the caller's value", "[hostile][messages]") {
    const Eigen::MatrixXf x = coreset_test::gaussian<float>(4, 2, 1);
    Eigen::VectorXd m = Eigen::VectorXd::Ones(4);
    m[1] = 1e-50;
    CHECK_THROWS_MATCHES(weighted_facility_location(x, m, 2), std::invalid_argument,
                         message_is("coreset::weighted_facility_location(): multiplicities must be representable in "
                                    "the scalar type of rows, between 1.40129846e-45 and 3.40282347e+38 (got "
                                    "1e-50 at index 1)"));
    m[1] = -1e-50;
    CHECK_THROWS_MATCHES(weighted_facility_location(x, m, 2), std::invalid_argument,
                         message_is("coreset::weighted_facility_location(): multiplicities must be > 0 (got "
                                    "-1e-50 at index 1)"));
}

// ------------------------------------------------------------------------- 5: callbacks

TEST_CASE("hostile: a callback's exception reaches the caller from per-class and blocked selections",
          "[hostile][callbacks]") {
    const Eigen::MatrixXd x = coreset_test::gaussian<double>(600, 5, 4);
    const Eigen::VectorXi y = coreset_test::round_robin_labels(600, 4);
    const GradMatch gm;
    const auto before = gm.select(x, y, 20);
    CHECK_THROWS_AS(gm.select(x, y, 20, ThrowAt{7}), CallbackError);
    CHECK(same(gm.select(x, y, 20), before));  // still usable
    CHECK_THROWS_AS(gm.select(x, 20, ThrowAt{3}), CallbackError);

    FacilityLocationOptions o;
    o.evaluation = Evaluation::Blocked;
    o.memory_budget_bytes = std::size_t(1) << 20;
    for (Greedy g : {Greedy::Naive, Greedy::Lazy, Greedy::Stochastic}) {
        o.greedy = g;
        const auto ref = facility_location(x, 10, o);
        CHECK_THROWS_AS(facility_location(x, 10, o, ThrowAt{4}), CallbackError);
        CHECK(same(facility_location(x, 10, o), ref));
    }
    CraigOptions co;
    co.evaluation = Evaluation::Blocked;
    co.memory_budget_bytes = std::size_t(1) << 20;
    CHECK_THROWS_AS(Craig(co).select(x, 10, ThrowAt{2}), CallbackError);
}

// ------------------------------------------------------------------------- 6: threads and memory

TEST_CASE("hostile: one selector used from 4 threads at once gives the serial results", "[hostile][threads]") {
    const Eigen::MatrixXd x = coreset_test::gaussian<double>(400, 6, 31);
    const Eigen::VectorXi y = coreset_test::round_robin_labels(400, 3);
    const Craig craig;
    const GradMatch gm;
    AdaCore<double> ada(400);
    ada.update(x, Eigen::MatrixXd::Ones(400, 6));
    const auto c0 = craig.select(x, y, 30), g0 = gm.select(x, y, 30), a0 = ada.select(y, 30), f0 = craig.select(x, 30);
    std::vector<Coreset<double>> c(4), g(4), a(4), f(4);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int rep = 0; rep < 3; ++rep) {
                c[t] = craig.select(x, y, 30);
                g[t] = gm.select(x, y, 30);
                a[t] = ada.select(y, 30);
                f[t] = craig.select(x, 30);
            }
        });
    for (auto& th : threads) th.join();
    for (std::size_t t = 0; t < 4; ++t) {
        CHECK(same(c[t], c0));
        CHECK(same(g[t], g0));
        CHECK(same(a[t], a0));
        CHECK(same(f[t], f0));
    }
}

TEST_CASE("hostile: forced dense evaluation at n = 70000 is refused with its size, before allocating",
          "[hostile][memory]") {
    const Eigen::MatrixXf x = Eigen::MatrixXf::Zero(70000, 1);  // the check runs before any distance
    CraigOptions o;
    o.evaluation = Evaluation::Dense;
    o.memory_budget_bytes = std::size_t(16) << 30;
    try {
        Craig(o).select(x, 3);
        FAIL("no exception");
    } catch (const std::invalid_argument& e) {
        const std::string m = e.what();
        const std::string head = "Craig::select(): memory_budget_bytes must be at least ";
        REQUIRE(m.compare(0, head.size(), head) == 0);
        const double needed = std::stod(m.substr(head.size()));
        CHECK(needed >= 70000.0 * 70000.0 * 4.0);
        CHECK_THAT(m, Contains("for Evaluation::Dense on this input (got 17179869184, m = 70000)"));
    }
}

// ------------------------------------------------------------------------- 7: factored determinism

TEST_CASE("hostile: factored GRAD-MATCH with C = E = 200 is bit-identical for 1 and 2 threads", "[hostile][threads]") {
    const Index n = 800, C = 200, E = 200;  // differed from n = 600 on: Eigen split E^T H over threads
    const Eigen::MatrixXd e = coreset_test::gaussian<double>(n, C, 41), h = coreset_test::gaussian<double>(n, E, 42);
    const FactoredGradients<double> g(e, h);
    const Eigen::VectorXi y = coreset_test::round_robin_labels(n, 2);
    const auto run = [&] { return GradMatch().select(g, 8); };
    const auto per_class = [&] { return GradMatch().select(g, y, 8); };
    const auto batches = [&] { return GradMatch().select_batches(g, 50, 200); };
    CHECK(same(with_threads(1, run), with_threads(2, run)));
    CHECK(same(with_threads(1, per_class), with_threads(2, per_class)));
    CHECK(same(with_threads(1, batches), with_threads(2, batches)));
}
