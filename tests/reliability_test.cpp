// SPDX-License-Identifier: MIT
// Reliability across every public entry point: a validation sweep with exact messages (empty
// shapes, NaN and infinities at every position, budgets, labels, options at and past their
// bounds), degenerate but valid inputs (identical and duplicated rows, budget == n, one class, a
// single-row class, d = 1, sparse label ids, huge and tiny magnitudes in float), the memory budget,
// bit-identical results for 1, 2 and 3 OpenMP threads, and exception safety (a selector that threw
// is still usable; a rejected call changes no state). docs/errors.md is checked separately
// (errors_doc_test.cpp); results with and without OpenMP by tests/reliability/.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <coreset/coreset.hpp>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_support.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace coreset;
using coreset_test::message_is;

namespace {

using Index = Eigen::Index;
template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
template <class Scalar>
using Vec = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
using IndexVector = Eigen::Matrix<Index, Eigen::Dynamic, 1>;

// ------------------------------------------------------------------------------------ helpers

/// The invariants of every result: indices unique and in [0, n), weights positive and finite,
/// one weight per index, at most `budget` rows.
template <class Scalar>
void require_valid(const Coreset<Scalar>& c, Index n, Index budget) {
    INFO("size " << c.size() << ", n " << n << ", budget " << budget);
    REQUIRE(c.size() <= budget);
    REQUIRE(c.weights.size() == c.size());
    std::set<Index> seen;
    for (Index j = 0; j < c.size(); ++j) {
        const Index i = c.indices[static_cast<std::size_t>(j)];
        REQUIRE(i >= 0);
        REQUIRE(i < n);
        REQUIRE(seen.insert(i).second);
        REQUIRE(std::isfinite(static_cast<double>(c.weights[j])));
        REQUIRE(c.weights[j] > Scalar(0));
    }
}

/// Same bytes (memcmp is not called on empty ranges, whose data pointers may be null).
bool same_bytes(const void* a, const void* b, std::size_t n) { return n == 0 || std::memcmp(a, b, n) == 0; }

/// Bit-identical results: indices, status, every bit of the weights and the objective.
template <class Scalar>
bool same_bits(const Coreset<Scalar>& a, const Coreset<Scalar>& b) {
    return a.indices == b.indices && a.status == b.status && a.weights.size() == b.weights.size() &&
           same_bytes(a.weights.data(), b.weights.data(), sizeof(Scalar) * static_cast<std::size_t>(a.weights.size())) &&
           a.objective.size() == b.objective.size() &&
           same_bytes(a.objective.data(), b.objective.data(), sizeof(double) * a.objective.size());
}

std::string text(double v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
}

/// Runs fn with the given number of OpenMP threads (once, unchanged, without OpenMP).
template <class Fn>
auto with_threads(int threads, Fn fn) {
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    try {
        auto result = fn();
        omp_set_num_threads(saved);
        return result;
    } catch (...) {
        omp_set_num_threads(saved);
        throw;
    }
#else
    (void)threads;
    return fn();
#endif
}

/// The same result for 1, 2 and 3 threads, bit for bit.
template <class Fn>
void require_thread_independent(Fn fn) {
    const auto one = with_threads(1, fn);
    for (int threads : {2, 3}) {
        INFO(threads << " threads");
        const auto other = with_threads(threads, fn);
        REQUIRE(same_bits(one, other));
    }
}

IndexVector labels_from(std::initializer_list<Index> v) {
    IndexVector y(static_cast<Index>(v.size()));
    Index i = 0;
    for (Index x : v) y[i++] = x;
    return y;
}

/// Every row of x repeated `times` times in a row: row i of x becomes rows times*i .. times*i+times-1.
template <class Scalar>
Mat<Scalar> repeat_rows(const Mat<Scalar>& x, Index times) {
    Mat<Scalar> out(x.rows() * times, x.cols());
    for (Index i = 0; i < out.rows(); ++i) out.row(i) = x.row(i / times);
    return out;
}

/// A selector entry point seen as (gradients, budget) -> coreset, with the name of the function
/// and of the matrix parameter in its messages.
template <class Scalar>
struct EntryPoint {
    const char* name;
    const char* where;
    const char* matrix;
    bool has_budget;  // takes a budget (the budget sweep applies)
    bool values;      // the matrix reaches the value checks (the NaN sweep applies)
    bool shapes;      // an empty matrix is reported under `matrix` (the shape sweep applies)
    std::function<void(const Mat<Scalar>&, Index)> call;
};

template <class Scalar>
std::vector<EntryPoint<Scalar>> entry_points() {
    using M = Mat<Scalar>;
    using V = Vec<Scalar>;
    std::vector<EntryPoint<Scalar>> e;
    e.push_back({"facility_location", "coreset::facility_location()", "gradients", true, true, true,
                 [](const M& g, Index k) { facility_location(g, k); }});
    e.push_back({"weighted_facility_location", "coreset::weighted_facility_location()", "gradients", true, true, true,
                 [](const M& g, Index k) { weighted_facility_location(g, V::Ones(g.rows()), k); }});
    e.push_back({"Craig", "Craig::select()", "gradients", true, true, true,
                 [](const M& g, Index k) { Craig().select(g, k); }});
    e.push_back({"Craig per class", "Craig::select()", "gradients", true, true, true,
                 [](const M& g, Index k) { Craig().select(g, Eigen::VectorXi::Zero(g.rows()), k); }});
    e.push_back({"Craig per batch", "Craig::select_batches()", "gradients", true, true, true,
                 [](const M& g, Index k) { Craig().select_batches(g, 2, k); }});
    e.push_back({"GradMatch", "GradMatch::select()", "gradients", true, true, true,
                 [](const M& g, Index k) { GradMatch().select(g, k); }});
    e.push_back({"GradMatch target", "GradMatch::select()", "gradients", true, true, true,
                 [](const M& g, Index k) { GradMatch().select(g, Target(V::Ones(g.cols())), k); }});
    e.push_back({"GradMatch per class", "GradMatch::select()", "gradients", true, true, true,
                 [](const M& g, Index k) { GradMatch().select(g, Eigen::VectorXi::Zero(g.rows()), k); }});
    e.push_back({"GradMatch per batch", "GradMatch::select_batches()", "gradients", true, true, true,
                 [](const M& g, Index k) { GradMatch().select_batches(g, 2, k); }});
    e.push_back({"AdaCore update (gradients)", "AdaCore::update()", "gradients", false, true, true,
                 [](const M& g, Index) {
                     AdaCore<Scalar> a(std::max<Index>(g.rows(), 1));
                     a.update(g, M::Ones(g.rows(), g.cols()));
                 }});
    // (An empty hessian_diag comes with an empty gradients here, which is reported first.)
    e.push_back({"AdaCore update (hessian_diag)", "AdaCore::update()", "hessian_diag", false, true, false,
                 [](const M& h, Index) {
                     AdaCore<Scalar> a(std::max<Index>(h.rows(), 1));
                     a.update(M::Ones(h.rows(), h.cols()), h);
                 }});
    e.push_back({"AdaCore listed update", "AdaCore::update()", "gradients", false, true, true,
                 [](const M& g, Index) {
                     AdaCore<Scalar> a(std::max<Index>(g.rows(), 1));
                     std::vector<Index> rows(static_cast<std::size_t>(g.rows()));
                     for (Index i = 0; i < g.rows(); ++i) rows[static_cast<std::size_t>(i)] = i;
                     a.update(rows, g, M::Ones(g.rows(), g.cols()));
                 }});
    e.push_back({"AdaCore select", "AdaCore::select()", "gradients", true, false, false, [](const M& g, Index k) {
                     AdaCore<Scalar> a(g.rows());
                     a.update(g, M::Ones(g.rows(), g.cols()));
                     a.select(k);
                 }});
    // One random subset of every row: candidate j is row j.
    e.push_back({"Crest select", "Crest::select()", "candidate_gradients", false, true, false,
                 [](const M& g, Index) {
                     CrestOptions o;
                     o.subset_fraction = 1.0;
                     o.initial_coresets = 1;
                     Crest c(Eigen::VectorXi::Zero(g.rows()), o);
                     REQUIRE(c.candidates().size() == g.rows());
                     c.select(g, V::Ones(g.rows()));
                 }});
    return e;
}

}  // namespace

// ============================================================================ validation sweep

TEMPLATE_TEST_CASE("reliability: empty matrices are rejected by every entry point", "[reliability][validation]", float,
                   double) {
    using M = Mat<TestType>;
    for (const auto& e : entry_points<TestType>()) {
        if (!e.shapes) continue;
        INFO(e.name);
        for (const auto& shape : {std::pair<Index, Index>{0, 3}, {4, 0}, {0, 0}}) {
            const std::string expected = std::string(e.where) + ": " + e.matrix +
                                         " must have at least one row and one column (got " +
                                         std::to_string(shape.first) + " x " + std::to_string(shape.second) + ")";
            REQUIRE_THROWS_MATCHES(e.call(M(shape.first, shape.second), 1), std::invalid_argument,
                                   message_is(expected));
        }
    }
    // Crest: a candidate matrix without columns.
    CrestOptions o;
    o.subset_fraction = 1.0;
    o.initial_coresets = 1;
    Crest c(Eigen::VectorXi::Zero(4), o);
    c.candidates();
    REQUIRE_THROWS_MATCHES(c.select(M(4, 0), Vec<TestType>::Ones(4)), std::invalid_argument,
                           message_is("Crest::select(): candidate_gradients must have at least one column (got 0)"));
}

TEMPLATE_TEST_CASE("reliability: NaN and infinities anywhere are rejected with their position", "[reliability][validation]",
                   float, double) {
    using M = Mat<TestType>;
    const TestType bad[] = {std::numeric_limits<TestType>::quiet_NaN(), std::numeric_limits<TestType>::infinity(),
                            -std::numeric_limits<TestType>::infinity()};
    const char* shown[] = {"nan", "inf", "-inf"};
    const M base = coreset_test::gaussian<TestType>(4, 3, 11);
    for (const auto& e : entry_points<TestType>()) {
        if (!e.values) continue;
        INFO(e.name);
        for (int b = 0; b < 3; ++b)
            for (Index i = 0; i < base.rows(); ++i)
                for (Index j = 0; j < base.cols(); ++j) {
                    M x = base;
                    x(i, j) = bad[b];
                    const std::string expected = std::string(e.where) + ": " + e.matrix + " must be finite (got " +
                                                 shown[b] + " at row " + std::to_string(i) + ", column " +
                                                 std::to_string(j) + ")";
                    REQUIRE_THROWS_MATCHES(e.call(x, 2), std::invalid_argument, message_is(expected));
                }
    }
}

TEMPLATE_TEST_CASE("reliability: NaN and infinities in targets, multiplicities, losses and curvature vectors",
                   "[reliability][validation]", float, double) {
    using M = Mat<TestType>;
    using V = Vec<TestType>;
    const TestType nan = std::numeric_limits<TestType>::quiet_NaN(), inf = std::numeric_limits<TestType>::infinity();
    const M x = coreset_test::gaussian<TestType>(5, 3, 3);
    for (Index j = 0; j < 3; ++j) {
        V t = V::Ones(3);
        t[j] = nan;
        REQUIRE_THROWS_MATCHES(GradMatch().select(x, Target(t), 2), std::invalid_argument,
                               message_is("GradMatch::select(): target must be finite (got nan at index " +
                                          std::to_string(j) + ")"));
        REQUIRE_THROWS_MATCHES(GradMatch().select(x, Target(Eigen::RowVectorXd(t.transpose().template cast<double>())), 2),
                               std::invalid_argument,
                               message_is("GradMatch::select(): target must be finite (got nan at index " +
                                          std::to_string(j) + ")"));
    }
    for (Index i = 0; i < 5; ++i) {
        V m = V::Ones(5);
        m[i] = -inf;
        REQUIRE_THROWS_MATCHES(weighted_facility_location(x, m, 2), std::invalid_argument,
                               message_is("coreset::weighted_facility_location(): multiplicities must be finite (got "
                                          "-inf at index " +
                                          std::to_string(i) + ")"));
    }
    // Crest: losses, and the quadratic model's vectors.
    CrestOptions o;
    o.subset_fraction = 1.0;
    o.initial_coresets = 1;
    Crest c(Eigen::VectorXi::Zero(4), o);
    c.candidates();
    for (Index i = 0; i < 4; ++i) {
        V l = V::Ones(4);
        l[i] = nan;
        REQUIRE_THROWS_MATCHES(c.select(M::Ones(4, 2), l), std::invalid_argument,
                               message_is("Crest::select(): candidate_losses must be finite (got nan at index " +
                                          std::to_string(i) + ")"));
    }
    c.select(coreset_test::gaussian<TestType>(4, 2, 1), V::Ones(4));
    REQUIRE_THROWS_MATCHES(c.begin_region(std::numeric_limits<double>::infinity(), V::Ones(2), V::Ones(2)),
                           std::invalid_argument,
                           message_is("Crest::begin_region(): loss0 must be finite and >= 0 (got inf)"));
    c.begin_region(1.0, V::Ones(2), V::Ones(2));
    REQUIRE_THROWS_MATCHES(c.record_update(V::Constant(2, inf)), std::invalid_argument,
                           message_is("Crest::record_update(): delta_w must be finite (got inf at index 0)"));
    REQUIRE_THROWS_MATCHES(c.check(-1.0), std::invalid_argument,
                           message_is("Crest::check(): true_loss must be finite and >= 0 (got -1)"));
}

TEMPLATE_TEST_CASE("reliability: budgets <= 0 or > n are rejected by every entry point", "[reliability][validation]",
                   float, double) {
    const Mat<TestType> x = coreset_test::gaussian<TestType>(6, 2, 5);
    const Index n = x.rows();
    for (const auto& e : entry_points<TestType>()) {
        if (!e.has_budget) continue;
        INFO(e.name);
        for (Index budget : {Index(0), Index(-1), n + 1, std::numeric_limits<Index>::min(),
                             std::numeric_limits<Index>::max()}) {
            const std::string expected = std::string(e.where) + ": budget must satisfy 1 <= budget <= n (got budget = " +
                                         std::to_string(budget) + ", n = " + std::to_string(n) + ")";
            REQUIRE_THROWS_MATCHES(e.call(x, budget), std::invalid_argument, message_is(expected));
        }
        // The bounds themselves are accepted.
        REQUIRE_NOTHROW(e.call(x, 1));
        REQUIRE_NOTHROW(e.call(x, n));
    }
}

TEST_CASE("reliability: labels of the wrong length or negative are rejected by every per-class entry point",
          "[reliability][validation]") {
    const Eigen::MatrixXd x = coreset_test::gaussian<double>(5, 2, 9);
    AdaCore<double> ada(5);
    ada.update(x, Eigen::MatrixXd::Ones(5, 2));
    const std::vector<std::pair<const char*, std::function<void(const IndexVector&)>>> calls = {
        {"Craig::select()", [&](const IndexVector& y) { Craig().select(x, y, 2); }},
        {"GradMatch::select()", [&](const IndexVector& y) { GradMatch().select(x, y, 2); }},
        {"AdaCore::select()", [&](const IndexVector& y) { ada.select(y, 2); }},
    };
    for (const auto& c : calls) {
        INFO(c.first);
        for (Index len : {Index(0), Index(4), Index(6)})
            REQUIRE_THROWS_MATCHES(c.second(IndexVector::Zero(len)), std::invalid_argument,
                                   message_is(std::string(c.first) +
                                              ": labels must have one entry per row of gradients (got " +
                                              std::to_string(len) + " labels for n = 5 rows)"));
        for (Index at = 0; at < 5; ++at) {
            IndexVector y = IndexVector::Zero(5);
            y[at] = std::numeric_limits<Index>::min();
            REQUIRE_THROWS_MATCHES(c.second(y), std::invalid_argument,
                                   message_is(std::string(c.first) + ": labels must be >= 0 (got " +
                                              std::to_string(std::numeric_limits<Index>::min()) + " at index " +
                                              std::to_string(at) + ")"));
        }
    }
    REQUIRE_THROWS_MATCHES(Crest(labels_from({0, 1, -7})), std::invalid_argument,
                           message_is("Crest::Crest(): labels must be >= 0 (got -7 at index 2)"));
}

TEST_CASE("reliability: options past their bounds are rejected, the bounds themselves accepted",
          "[reliability][validation]") {
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    // field name, bad values, good values, setter: one table per options struct.
    struct Field {
        const char* name;
        std::vector<double> bad, good;
    };
    auto sweep = [&](const char* where, const std::vector<Field>& fields, auto make, auto set) {
        for (const auto& f : fields) {
            INFO(where << " " << f.name);
            for (double v : f.bad) {
                auto o = make();
                set(o, f.name, v);
                bool threw = false;
                try {
                    o.validate();
                } catch (const std::invalid_argument& e) {
                    threw = true;
                    const std::string m = e.what();
                    INFO(m);
                    CHECK(m.rfind(std::string(where) + ": " + f.name + " must ", 0) == 0);
                    CHECK(m.find("(got " + text(v)) != std::string::npos);
                }
                INFO("value " << v);
                CHECK(threw);
            }
            for (double v : f.good) {
                auto o = make();
                set(o, f.name, v);
                INFO("value " << v);
                CHECK_NOTHROW(o.validate());
            }
        }
    };
    const std::vector<Field> engine = {{"epsilon", {0, 1, -0.5, 2, nan, inf}, {1e-300, 0.5, 1 - 1e-16}},
                                       {"memory_budget_bytes", {0}, {1, 1e18}}};
    auto set_engine = [](auto& o, const std::string& name, double v) {
        if (name == "epsilon") o.epsilon = v;
        if (name == "memory_budget_bytes") o.memory_budget_bytes = static_cast<std::size_t>(v);
    };
    sweep("FacilityLocationOptions::validate()", engine, [] { return FacilityLocationOptions{}; }, set_engine);
    sweep("CraigOptions::validate()", engine, [] { return CraigOptions{}; }, set_engine);

    std::vector<Field> ada = {{"beta1", {1, -1e-300, 1.5, nan, inf}, {0, 0.999999}},
                              {"beta2", {1, -0.1, nan}, {0, 0.5}},
                              {"eps", {-1e-300, inf, nan}, {0, 1e300}},
                              {"hessian_power", {-0.1, 1.0000001, nan, inf}, {0, 0.5, 1}}};
    for (const auto& f : engine) ada.push_back(f);
    sweep("AdaCoreOptions::validate()", ada, [] { return AdaCoreOptions{}; }, [&](AdaCoreOptions& o, const std::string& name, double v) {
        if (name == "beta1") o.beta1 = v;
        if (name == "beta2") o.beta2 = v;
        if (name == "eps") o.eps = v;
        if (name == "hessian_power") o.hessian_power = v;
        set_engine(o, name, v);
    });

    sweep("GradMatchOptions::validate()",
          {{"lambda", {-1e-300, nan, inf, -inf}, {0, 1e300}}, {"tolerance", {-1, nan, inf}, {0, 1}}},
          [] { return GradMatchOptions{}; }, [](GradMatchOptions& o, const std::string& name, double v) {
              if (name == "lambda") o.lambda = v;
              if (name == "tolerance") o.tolerance = v;
          });

    sweep("CrestOptions::validate()",
          {{"batch_size", {0, -1}, {1, 1e9}},
           {"subset_fraction", {0, -0.5, 1.0000001, nan, inf}, {1e-300, 1}},
           {"initial_coresets", {0, -3}, {1, 40}},
           {"batch_num_mul", {0, -1, nan, inf}, {1e-300, 1e300}},
           {"interval_mul", {0, nan, inf}, {1e-3, 10}},
           {"tau", {-1e-300, nan, inf}, {0, 1e300}},
           {"alpha", {-1, nan, inf}, {0, 5}},
           {"drop_interval", {0, -1}, {1}},
           {"watch_window", {0}, {1, 1e6}},
           {"min_pool_fraction", {-1e-300, 1.0000001, nan}, {0, 1}},
           {"epsilon", {0, 1, nan}, {0.5}}},
          [] { return CrestOptions{}; }, [](CrestOptions& o, const std::string& name, double v) {
              if (name == "batch_size") o.batch_size = static_cast<Index>(v);
              if (name == "subset_fraction") o.subset_fraction = v;
              if (name == "initial_coresets") {
                  o.initial_coresets = static_cast<Index>(v);
                  o.max_coresets = std::max<Index>(o.initial_coresets, 1);
              }
              if (name == "batch_num_mul") o.batch_num_mul = v;
              if (name == "interval_mul") o.interval_mul = v;
              if (name == "tau") o.tau = v;
              if (name == "alpha") o.alpha = v;
              if (name == "drop_interval") o.drop_interval = static_cast<Index>(v);
              if (name == "watch_window") o.watch_window = static_cast<Index>(v);
              if (name == "min_pool_fraction") o.min_pool_fraction = v;
              if (name == "epsilon") o.epsilon = v;
          });

    // Enumerations outside their enumerators, through every options struct that carries them.
    auto bad_enum = [](auto o, const char* where) {
        using O = decltype(o);
        O a = o, b = o, c = o;
        a.metric = static_cast<Metric>(-1);
        b.greedy = static_cast<Greedy>(3);
        c.class_budget = static_cast<ClassBudget>(7);
        REQUIRE_THROWS_MATCHES(a.validate(), std::invalid_argument,
                               message_is(std::string(where) + ": metric must satisfy a Metric enumerator (got -1)"));
        REQUIRE_THROWS_MATCHES(b.validate(), std::invalid_argument,
                               message_is(std::string(where) + ": greedy must satisfy a Greedy enumerator (got 3)"));
        REQUIRE_THROWS_MATCHES(c.validate(), std::invalid_argument,
                               message_is(std::string(where) + ": class_budget must satisfy a ClassBudget enumerator (got 7)"));
    };
    bad_enum(CraigOptions{}, "CraigOptions::validate()");
    bad_enum(AdaCoreOptions{}, "AdaCoreOptions::validate()");
    // Selectors validate their options on construction.
    CraigOptions co;
    co.epsilon = nan;
    REQUIRE_THROWS_MATCHES(Craig(co), std::invalid_argument,
                           message_is("CraigOptions::validate(): epsilon must satisfy 0 < epsilon < 1 (got nan)"));
    CrestOptions cr;
    cr.tau = nan;
    REQUIRE_THROWS_MATCHES(Crest(labels_from({0, 1}), cr), std::invalid_argument,
                           message_is("CrestOptions::validate(): tau must satisfy 0 <= tau < inf (got nan)"));
}

TEST_CASE("reliability: methods called out of order throw std::logic_error naming the call",
          "[reliability][validation]") {
    // AdaCore: nothing before the first update; nothing while a row has never been updated.
    AdaCore<double> a(3);
    const Eigen::MatrixXd g = coreset_test::gaussian<double>(3, 2, 1);
    for (const auto& call : std::vector<std::pair<std::string, std::function<void()>>>{
             {"AdaCore::smoothed_gradients()", [&] { a.smoothed_gradients(); }},
             {"AdaCore::smoothed_curvature()", [&] { a.smoothed_curvature(); }},
             {"AdaCore::preconditioned()", [&] { a.preconditioned(); }},
             {"AdaCore::select()", [&] { a.select(1); }},
             {"AdaCore::select()", [&] { a.select(labels_from({0, 0, 1}), 1); }}}) {
        INFO(call.first);
        REQUIRE_THROWS_MATCHES(call.second(), std::logic_error,
                               message_is(call.first + ": call update() first (no observation yet)"));
        // ... and it is not an invalid_argument (callers can tell the two apart).
        bool invalid_argument = false;
        try {
            call.second();
        } catch (const std::invalid_argument&) {
            invalid_argument = true;
        } catch (const std::logic_error&) {
        }
        REQUIRE_FALSE(invalid_argument);
    }
    a.update(std::vector<int>{0, 2}, g.topRows(2), g.topRows(2));
    REQUIRE_THROWS_MATCHES(
        a.select(1), std::logic_error,
        message_is("AdaCore::select(): every example must have been updated at least once (row 1 has no update)"));
    a.update(std::vector<int>{1}, g.topRows(1), g.topRows(1));
    REQUIRE_NOTHROW(a.select(1));
    a.reset();
    REQUIRE_THROWS_AS(a.select(1), std::logic_error);

    // Crest: every call before its prerequisite.
    Crest c(coreset_test::round_robin_labels(20, 2));
    const Eigen::VectorXd one = Eigen::VectorXd::Ones(2);
    REQUIRE_THROWS_MATCHES(c.select(Eigen::MatrixXd::Ones(2, 2), one), std::logic_error,
                           message_is("Crest::select(): call candidates() first"));
    REQUIRE_THROWS_MATCHES(c.next_batch(), std::logic_error, message_is("Crest::next_batch(): call select() first"));
    REQUIRE_THROWS_MATCHES(c.begin_region(1.0, one, one), std::logic_error,
                           message_is("Crest::begin_region(): call select() first"));
    REQUIRE_THROWS_MATCHES(c.check_indices(), std::logic_error,
                           message_is("Crest::check_indices(): call select() first"));
    REQUIRE_THROWS_MATCHES(c.record_update(one), std::logic_error,
                           message_is("Crest::record_update(): no active region: call begin_region() first"));
    REQUIRE_THROWS_MATCHES(c.model_loss(), std::logic_error,
                           message_is("Crest::model_loss(): no active region: call begin_region() first"));
    REQUIRE_THROWS_MATCHES(c.check(1.0), std::logic_error,
                           message_is("Crest::check(): no active region: call begin_region() first"));
    CHECK_FALSE(c.should_check());
    // select() consumes the candidates: a second select() needs new ones.
    const Index R = c.candidates().size();
    c.select(coreset_test::gaussian<double>(R, 2, 2), Eigen::VectorXd::Ones(R));
    REQUIRE_THROWS_MATCHES(c.select(coreset_test::gaussian<double>(R, 2, 2), Eigen::VectorXd::Ones(R)),
                           std::logic_error, message_is("Crest::select(): call candidates() first"));
}

TEST_CASE("reliability: oversized batch sizes and sparse label ids need no memory of their size",
          "[reliability][validation]") {
    const Eigen::MatrixXd x = coreset_test::gaussian<double>(7, 3, 4);
    // batch_size beyond n: one batch of every row (no overflow in the batch arithmetic).
    for (Index bs : {Index(7), Index(8), std::numeric_limits<Index>::max() / 2, std::numeric_limits<Index>::max()}) {
        INFO("batch_size " << bs);
        const auto c = Craig().select_batches(x, bs, 3);
        require_valid(c, 7, 7);
        CHECK(c.size() == 7);
        CHECK(same_bits(c, Craig().select_batches(x, 7, 3)));
        const auto g = GradMatch().select_batches(x, bs, 3);
        CHECK(same_bits(g, GradMatch().select_batches(x, 7, 3)));
    }
    // Label ids are names, not counts: huge ids select exactly as their ranks do.
    const IndexVector sparse = labels_from({2000000000, 5, std::numeric_limits<Index>::max(), 5, 2000000000, 0, 5});
    const IndexVector dense = labels_from({2, 1, 3, 1, 2, 0, 1});
    CHECK(same_bits(Craig().select(x, sparse, 4), Craig().select(x, dense, 4)));
    CHECK(same_bits(GradMatch().select(x, sparse, 4), GradMatch().select(x, dense, 4)));
    AdaCore<double> a(7);
    a.update(x, Eigen::MatrixXd::Ones(7, 3));
    CHECK(same_bits(a.select(sparse, 4), a.select(dense, 4)));
    // Crest draws the same random subsets and coresets whatever the ids are.
    CrestOptions co;
    co.subset_fraction = 0.5;
    co.initial_coresets = 2;
    co.batch_size = 3;
    Crest cs(sparse, co), cd(dense, co);
    const auto ks = cs.candidates(), kd = cd.candidates();
    CHECK(ks.indices == kd.indices);
    Eigen::MatrixXd g(ks.size(), 3);
    for (Index j = 0; j < ks.size(); ++j) g.row(j) = x.row(ks.indices[static_cast<std::size_t>(j)]);
    cs.select(g, Eigen::VectorXd::Ones(ks.size()));
    cd.select(g, Eigen::VectorXd::Ones(ks.size()));
    for (std::size_t p = 0; p < cs.coresets().size(); ++p) CHECK(cs.coresets()[p].indices == cd.coresets()[p].indices);
    // Equal split too (empty label values get nothing and cost nothing).
    CraigOptions eq;
    eq.class_budget = ClassBudget::Equal;
    CHECK(same_bits(Craig(eq).select(x, sparse, 5), Craig(eq).select(x, dense, 5)));
}

// ============================================================================ degenerate inputs

TEMPLATE_TEST_CASE("reliability: all rows identical", "[reliability][degenerate]", float, double) {
    using M = Mat<TestType>;
    const Index n = 6;
    const M x = M::Constant(n, 3, TestType(0.75));
    for (Greedy greedy : {Greedy::Naive, Greedy::Lazy, Greedy::Stochastic}) {
        INFO(to_string(greedy));
        CraigOptions o;
        o.greedy = greedy;
        // One row stands for all: a single pick of weight n, then nothing can improve.
        const auto c = Craig(o).select(x, 3);
        require_valid(c, n, 3);
        REQUIRE(c.size() == 1);
        CHECK(c.weights[0] == TestType(n));
        CHECK(c.status == Status::Exhausted);
        const auto pc = Craig(o).select(x, labels_from({0, 1, 0, 1, 0, 1}), 4);
        require_valid(pc, n, 4);
        CHECK(pc.size() == 2);  // one per class
        CHECK(pc.weights.sum() == TestType(n));
        const auto pb = Craig(o).select_batches(x, 2, 4);
        require_valid(pb, n, 4);
        CHECK(pb.weights.sum() == TestType(n));
    }
    // GRAD-MATCH without ridge: one row at weight n matches the column sum exactly.
    GradMatchOptions go;
    go.lambda = 0;
    const auto g = GradMatch(go).select(x, 3);
    require_valid(g, n, 3);
    REQUIRE(g.size() == 1);
    CHECK_THAT(static_cast<double>(g.weights[0]), Catch::Matchers::WithinRel(double(n), 1e-6));
    CHECK(g.status == Status::ToleranceReached);
    require_valid(GradMatch().select(x, 3), n, 3);  // with ridge: any valid subset
    require_valid(GradMatch().select(x, labels_from({0, 1, 0, 1, 0, 1}), 3), n, 3);
    require_valid(GradMatch().select_batches(x, 4, 3), n, 6);
    // AdaCore: identical observations give identical preconditioned rows.
    AdaCore<TestType> a(n);
    a.update(x, M::Ones(n, 3));
    const auto ac = a.select(2);
    require_valid(ac, n, 2);
    CHECK(ac.size() == 1);
    CHECK(ac.weights[0] == TestType(n));
    // Crest: a coreset per subset, each of one row standing for all of its subset.
    CrestOptions co;
    co.subset_fraction = 0.5;
    co.initial_coresets = 2;
    co.batch_size = 3;
    Crest cr(Eigen::VectorXi::Zero(n), co);
    const auto cand = cr.candidates();
    cr.select(M::Constant(cand.size(), 3, TestType(2)), Eigen::VectorXd::Ones(cand.size()));
    for (const auto& b : cr.coresets()) {
        CHECK(b.size() == 1);
        CHECK(std::isfinite(b.weights[0]));
        CHECK(b.weights[0] > 0);
    }
}

TEMPLATE_TEST_CASE("reliability: duplicated rows act as one row of double weight", "[reliability][degenerate]", float,
                   double) {
    using M = Mat<TestType>;
    const M x = coreset_test::blobs<TestType>(12, 3, 4, 0.5, 21);
    const M twice = repeat_rows(x, 2);
    for (Greedy greedy : {Greedy::Naive, Greedy::Lazy}) {
        INFO(to_string(greedy));
        CraigOptions o;
        o.greedy = greedy;
        const auto once = Craig(o).select(x, 5);
        const auto dup = Craig(o).select(twice, 5);
        require_valid(dup, 24, 5);
        REQUIRE(dup.size() == once.size());
        for (Index j = 0; j < once.size(); ++j) {
            // The first copy is picked (ties go to the lowest index), never both copies.
            CHECK(dup.indices[static_cast<std::size_t>(j)] == 2 * once.indices[static_cast<std::size_t>(j)]);
            CHECK(dup.weights[j] == 2 * once.weights[j]);
        }
    }
    // GRAD-MATCH, AdaCore and Crest on duplicated rows: valid results.
    require_valid(GradMatch().select(twice, 8), 24, 8);
    require_valid(GradMatch().select(twice, coreset_test::round_robin_labels(24, 3), 8), 24, 8);
    AdaCore<TestType> a(24);
    a.update(twice, M::Ones(24, 3));
    const auto ac = a.select(5);
    CHECK(same_bits(ac, Craig().select(a.preconditioned(), 5)));
}

TEMPLATE_TEST_CASE("reliability: budget == n selects every distinct row", "[reliability][degenerate]", float, double) {
    using M = Mat<TestType>;
    const Index n = 9;
    const M x = coreset_test::gaussian<TestType>(n, 4, 8);
    for (Greedy greedy : {Greedy::Naive, Greedy::Lazy, Greedy::Stochastic}) {
        CraigOptions o;
        o.greedy = greedy;
        const auto c = Craig(o).select(x, n);
        require_valid(c, n, n);
        CHECK(c.size() == n);
        CHECK(c.status == Status::BudgetReached);
        CHECK((c.weights.array() == TestType(1)).all());  // every row represents itself
        const auto pc = Craig(o).select(x, coreset_test::round_robin_labels(n, 2), n);
        CHECK(pc.size() == n);
        CHECK((pc.weights.array() == TestType(1)).all());
        const auto pb = Craig(o).select_batches(x, 2, n);
        CHECK(pb.size() == n);
    }
    const auto g = GradMatch().select(x, n);
    require_valid(g, n, n);
    const auto gb = GradMatch().select_batches(x, 4, n);
    require_valid(gb, n, n);
    AdaCore<TestType> a(n);
    a.update(x, M::Ones(n, 4));
    CHECK(a.select(n).size() == n);
}

TEMPLATE_TEST_CASE("reliability: one class, and a class with a single row", "[reliability][degenerate]", float,
                   double) {
    using M = Mat<TestType>;
    const M x = coreset_test::gaussian<TestType>(10, 3, 12);
    const Eigen::VectorXi one_class = Eigen::VectorXi::Constant(10, 4);
    // One class: the per-class overloads are the plain ones.
    CHECK(same_bits(Craig().select(x, one_class, 4), Craig().select(x, 4)));
    CHECK(same_bits(GradMatch().select(x, one_class, 4), GradMatch().select(x, 4)));
    AdaCore<TestType> a(10);
    a.update(x, M::Ones(10, 3));
    CHECK(same_bits(a.select(one_class, 4), a.select(4)));
    // A class of one row: that row is selected with weight 1 (Proportional gives every class one).
    IndexVector y = IndexVector::Zero(10);
    y[7] = 1;
    for (Index budget : {Index(2), Index(5), Index(10)}) {
        const auto c = Craig().select(x, y, budget);
        require_valid(c, 10, budget);
        const auto at = std::find(c.indices.begin(), c.indices.end(), Index(7));
        REQUIRE(at != c.indices.end());
        CHECK(c.weights[at - c.indices.begin()] == TestType(1));
        const auto g = GradMatch().select(x, y, budget);
        require_valid(g, 10, budget);
        const auto ac = a.select(y, budget);
        REQUIRE(std::find(ac.indices.begin(), ac.indices.end(), Index(7)) != ac.indices.end());
    }
    // Crest with a single-row class: that row is in every random subset and in every coreset.
    CrestOptions co;
    co.subset_fraction = 0.5;
    co.initial_coresets = 3;
    co.batch_size = 4;
    Crest cr(y, co);
    const auto cand = cr.candidates();
    cr.select(coreset_test::gaussian<TestType>(cand.size(), 3, 2), Eigen::VectorXd::Ones(cand.size()));
    for (const auto& b : cr.coresets())
        CHECK(std::find(b.indices.begin(), b.indices.end(), Index(7)) != b.indices.end());
}

TEMPLATE_TEST_CASE("reliability: d = 1 picks what a greedy written from the definition picks",
                   "[reliability][degenerate]", float, double) {
    using M = Mat<TestType>;
    const Index n = 14, k = 6;
    const M x = coreset_test::gaussian<TestType>(n, 1, 31);
    // Greedy k-medoids on the line, in double: gain(e) = sum_i max(0, b_i - |x_i - x_e|). On a line
    // exact ties are common (two points covering the same interval), so every pick of the engine
    // must have the largest gain up to rounding (1e-6 relative), and the reference follows it.
    auto dist = [&](Index i, Index j) { return std::abs(double(x(i, 0)) - double(x(j, 0))); };
    double c = 0;
    for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < n; ++j) c = std::max(c, dist(i, j));
    for (Greedy greedy : {Greedy::Naive, Greedy::Lazy}) {
        INFO(to_string(greedy));
        CraigOptions o;
        o.greedy = greedy;
        const auto got = Craig(o).select(x, k);
        require_valid(got, n, k);
        REQUIRE(got.size() == k);
        std::vector<double> best(static_cast<std::size_t>(n), c);
        std::vector<Index> owner(static_cast<std::size_t>(n), -1);
        for (Index step = 0; step < k; ++step) {
            auto gain = [&](Index e) {
                double g = 0;
                for (Index i = 0; i < n; ++i) g += std::max(0.0, best[static_cast<std::size_t>(i)] - dist(i, e));
                return g;
            };
            double top = 0;
            for (Index e = 0; e < n; ++e) top = std::max(top, gain(e));
            const Index pick = got.indices[static_cast<std::size_t>(step)];
            INFO("step " << step << ": pick " << pick << " gains " << gain(pick) << ", best " << top);
            CHECK(gain(pick) >= top * (1 - 1e-6));
            CHECK_THAT(got.objective[static_cast<std::size_t>(step)] -
                           (step ? got.objective[static_cast<std::size_t>(step - 1)] : 0.0),
                       Catch::Matchers::WithinRel(gain(pick), 1e-5));
            for (Index i = 0; i < n; ++i)
                if (dist(i, pick) < best[static_cast<std::size_t>(i)] || owner[static_cast<std::size_t>(i)] < 0) {
                    if (dist(i, pick) < best[static_cast<std::size_t>(i)]) best[static_cast<std::size_t>(i)] = dist(i, pick);
                    owner[static_cast<std::size_t>(i)] = pick;
                }
        }
        // Weights: the rows nearest to each pick (ties to the earliest pick).
        for (Index j = 0; j < k; ++j) {
            const Index pick = got.indices[static_cast<std::size_t>(j)];
            CHECK(double(got.weights[j]) == double(std::count(owner.begin(), owner.end(), pick)));
        }
    }
    // GRAD-MATCH on one column without ridge: the largest positive row alone matches the sum.
    GradMatchOptions go;
    go.lambda = 0;
    M y(4, 1);
    y << TestType(1), TestType(-2), TestType(3), TestType(0.5);
    const auto g = GradMatch(go).select(y, 2);
    REQUIRE(g.size() == 1);
    CHECK(g.indices[0] == 2);
    CHECK_THAT(static_cast<double>(g.weights[0]), Catch::Matchers::WithinRel(2.5 / 3.0, 1e-6));
    CHECK(g.status == Status::ToleranceReached);
    // AdaCore and Crest with d = 1: valid.
    AdaCore<TestType> a(n);
    a.update(x, M::Ones(n, 1));
    require_valid(a.select(k), n, k);
}

TEMPLATE_TEST_CASE("reliability: huge (1e30) and tiny (1e-30) magnitudes give the unscaled picks",
                   "[reliability][degenerate]", float, double) {
    using M = Mat<TestType>;
    const M x = coreset_test::blobs<TestType>(40, 4, 5, 1.0, 41);
    const IndexVector y = coreset_test::round_robin_labels(40, 3).template cast<Index>();
    // Powers of two near 1e30 and 1e-30: the scaled data is exact, so every decision must match.
    for (int e : {100, -100}) {
        INFO("scale 2^" << e);
        const auto s = static_cast<TestType>(std::ldexp(1.0, e));
        const M xs = x * s;
        const auto c = Craig().select(x, 8), cs = Craig().select(xs, 8);
        CHECK(cs.indices == c.indices);
        CHECK(cs.weights == c.weights);
        for (std::size_t t = 0; t < c.objective.size(); ++t)
            CHECK_THAT(cs.objective[t], Catch::Matchers::WithinRel(c.objective[t] * std::ldexp(1.0, e), 1e-12));
        CHECK(Craig().select(xs, y, 8).indices == Craig().select(x, y, 8).indices);
        CHECK(Craig().select_batches(xs, 4, 8).indices == Craig().select_batches(x, 4, 8).indices);
        GradMatchOptions go;
        go.lambda = 0;  // the ridge term is not scale-free; without it GRAD-MATCH is
        const auto g = GradMatch(go).select(x, 6), gs = GradMatch(go).select(xs, 6);
        CHECK(gs.indices == g.indices);
        REQUIRE(gs.weights.size() == g.weights.size());
        for (Index j = 0; j < g.weights.size(); ++j)
            CHECK_THAT(double(gs.weights[j]), Catch::Matchers::WithinRel(double(g.weights[j]), 1e-5));
        CHECK(GradMatch(go).select(xs, y, 6).indices == GradMatch(go).select(x, y, 6).indices);
        AdaCore<TestType> a(40), as(40);
        a.update(x, M::Ones(40, 4));
        as.update(xs, M::Ones(40, 4));
        CHECK(as.select(8).indices == a.select(8).indices);
    }
    // Decimal 1e30 and 1e-30: valid results, and float picks what double picks.
    for (double scale : {1e30, 1e-30}) {
        INFO("scale " << scale);
        const M xs = (x.template cast<double>() * scale).template cast<TestType>();
        const Eigen::MatrixXd xd = xs.template cast<double>();
        const auto c = Craig().select(xs, 5);  // one per blob: no near-ties between float and double
        require_valid(c, 40, 5);
        CHECK(c.indices == Craig().select(xd, 5).indices);
        GradMatchOptions go;
        go.lambda = 0;
        const auto g = GradMatch(go).select(xs, 3);
        require_valid(g, 40, 3);
        CHECK(g.indices == GradMatch(go).select(xd, 3).indices);
        require_valid(GradMatch().select(xs, 6), 40, 6);
    }
}

TEMPLATE_TEST_CASE("reliability: fractional and huge multiplicities give exact positive weights",
                   "[reliability][degenerate]", float, double) {
    using M = Mat<TestType>;
    using V = Vec<TestType>;
    const M x = coreset_test::blobs<TestType>(12, 2, 3, 0.5, 7);
    const auto plain = facility_location(x, 4);
    // Equal multiplicities c change nothing but the scale of the weights, for any c: exactly for
    // powers of two (down to about 1e-30 and up to about 1e37); other values round the gains
    // differently and may swap near-ties, so for them only the weights are checked.
    for (double c : {0.25, 0.5, std::ldexp(1.0, -100), std::ldexp(1.0, 100), std::ldexp(1.0, 123)}) {
        INFO("multiplicity " << c);
        const auto w = weighted_facility_location(x, V::Constant(12, static_cast<TestType>(c)), 4);
        require_valid(w, 12, 4);
        CHECK(w.indices == plain.indices);
        for (Index j = 0; j < w.size(); ++j)
            CHECK_THAT(double(w.weights[j]),
                       Catch::Matchers::WithinRel(double(static_cast<TestType>(c)) * double(plain.weights[j]), 1e-6));
    }
    for (double c : {3.0, 1e-30, 1e30, 1e37}) {
        INFO("multiplicity " << c);
        const auto w = weighted_facility_location(x, V::Constant(12, static_cast<TestType>(c)), 4);
        require_valid(w, 12, 4);
        CHECK_THAT(double(w.weights.sum()), Catch::Matchers::WithinRel(12 * double(static_cast<TestType>(c)), 1e-6));
    }
    // Mixed fractional multiplicities: the weights add up to their sum.
    V m(12);
    for (Index i = 0; i < 12; ++i) m[i] = static_cast<TestType>(0.125 * double(i + 1));
    const auto w = weighted_facility_location(x, m, 5);
    require_valid(w, 12, 5);
    CHECK_THAT(double(w.weights.sum()), Catch::Matchers::WithinRel(double(m.sum()), 1e-6));
}

TEST_CASE("reliability: subnormal float rows keep GRAD-MATCH's weights finite", "[reliability][degenerate]") {
    // Found by fuzz/grad_match_fuzz.cpp: with normalize, 1 / |g| of a subnormal row overflowed float
    // and won every pick, and the weight it needs (about 6e69) overflowed too.
    Eigen::VectorXf x(6);
    x << -4.25f, 1.38708333e-36f, 3.58732407e-43f, 6.875f, 2.13254515e+27f, 0.0f;
    for (bool normalize : {false, true})
        for (double lambda : {0.0, 0.5}) {
            INFO("normalize " << normalize << ", lambda " << lambda);
            GradMatchOptions o;
            o.normalize = normalize;
            o.lambda = lambda;
            o.tolerance = 0;
            const Eigen::MatrixXf g = x;
            require_valid(GradMatch(o).select(g, 3), 6, 3);
            require_valid(GradMatch(o).select(g, Eigen::VectorXi::Zero(6), 3), 6, 3);
            // Unnormalised, the row that carries the sum is picked first (normalised, every positive
            // row of one column ties, so rounding decides).
            if (!normalize) CHECK(GradMatch(o).select(g, 3).indices.front() == 4);
        }
}

TEST_CASE("reliability: objectives near the top of double's range are exact or +inf, never NaN",
          "[reliability][degenerate]") {
    // Found by fuzz/facility_location_fuzz.cpp: for squared distances the caller's unit 2^(2e)
    // overflowed for entries past 1e154, and 0 * inf gave a NaN objective.
    FacilityLocationOptions sq;
    sq.metric = Metric::SquaredEuclidean;
    Eigen::MatrixXd one(1, 4);
    one << -7.625, 2.0079198e+209, 0, 2.5;
    const auto c1 = facility_location(one, 1, sq);
    REQUIRE(c1.objective.size() == 1);
    CHECK(c1.objective[0] == 0.0);
    // Entries near 1e155, 1e150 apart: the squared distance 1e300 is representable.
    Eigen::MatrixXd close(2, 1);
    close << 1e155, 1e155 - 1e150;
    const auto c2 = facility_location(close, 1, sq);
    CHECK_THAT(c2.objective[0], Catch::Matchers::WithinRel(std::pow(close(0, 0) - close(1, 0), 2), 1e-6));
    // 1e200 apart: the true objective 1e400 is not representable, and is +inf.
    Eigen::MatrixXd far(2, 1);
    far << 1e200, 0;
    const auto c3 = facility_location(far, 2, sq);
    require_valid(c3, 2, 2);
    for (double o : c3.objective) CHECK(o == std::numeric_limits<double>::infinity());
    CHECK(facility_location(far, 2).objective.back() == 2e200);  // Euclidean: F = 2 C, exact
}

TEST_CASE("reliability: GRAD-MATCH's objective is the residual of its weights after dropping a dominant atom",
          "[reliability][degenerate]") {
    // Found by fuzz/grad_match_fuzz.cpp: in the dual (d x d) form, downdating the factor by an atom
    // 1e30 times larger than the rest cancelled the rest away; the reported residual was 5.7e28
    // while the returned weights left 2.1e30.
    const double b = 1.2676506002282294e+30;
    Eigen::MatrixXd x(18, 2);
    x << 2.5625, 2.5625, 2.5625, 2.5625, 2.5625, 2.5625, 2.5625, 2.5625, 2.5625, 2.5625, 2.5625, 2.5625, 2.5625, 0,
        0, 0, 0, -5.4375, -5.4375, -5.4375, -5.4375, -5.4375, -5.4375, -5.4375, -2.9286461106330063e-29,
        -2.9286461106330063e-29, 0, 5.8854535501642317e-44, 0.625, b, b, b, b, b, b, b;
    for (NonNegativity nn : {NonNegativity::ActiveSet, NonNegativity::DropMostNegative})
        for (bool normalize : {false, true}) {
            INFO(to_string(nn) << (normalize ? ", normalize" : ""));
            GradMatchOptions o;
            o.lambda = 0.5;
            o.tolerance = 0;
            o.nonnegativity = nn;
            o.normalize = normalize;
            const auto c = GradMatch(o).select(x, 5);
            require_valid(c, 18, 5);
            Eigen::VectorXd r = x.colwise().sum().transpose();
            double scale = r.norm();
            for (Index j = 0; j < c.size(); ++j) {
                r -= c.weights[j] * x.row(c.indices[static_cast<std::size_t>(j)]).transpose();
                scale += c.weights[j] * x.row(c.indices[static_cast<std::size_t>(j)]).norm();
            }
            REQUIRE_FALSE(c.objective.empty());
            CHECK(std::abs(r.norm() - c.objective.back()) <= 1e-9 * scale);
        }
}

TEST_CASE("reliability: subnormal float rows are distances like any others", "[reliability][degenerate]") {
    // Found by fuzz/facility_location_fuzz.cpp: scaling rows whose largest entry is below 2^-126
    // needs a factor past float's range (2^143 here), which became inf; dense and blocked
    // evaluation then disagreed on NaN distances.
    Eigen::MatrixXf x(6, 2);
    x << 8.54792063e-44f, 0, 2, 0, 0.125f, -0.0625f, -0.0625f, 3.58732407e-43f, -4.25f, 9.99999968e+37f, -0.0625f, -3;
    for (Metric metric : {Metric::Cosine, Metric::Euclidean, Metric::SquaredEuclidean}) {
        INFO(to_string(metric));
        FacilityLocationOptions dense, blocked;
        dense.metric = blocked.metric = metric;
        dense.evaluation = Evaluation::Dense;
        dense.greedy = Greedy::Naive;
        blocked.evaluation = Evaluation::Blocked;
        const auto a = facility_location(x, 4, dense), b = facility_location(x, 4, blocked);
        require_valid(a, 6, 4);
        CHECK(same_bits(a, b));
        for (double o : a.objective) CHECK(std::isfinite(o));
    }
    // A matrix of subnormals only picks exactly as the same matrix scaled up by 2^100 (exact).
    Eigen::MatrixXf tiny = coreset_test::gaussian<float>(20, 3, 77) * std::ldexp(1.0f, -130);
    REQUIRE(tiny.cwiseAbs().maxCoeff() < std::numeric_limits<float>::min());
    const Eigen::MatrixXf up = tiny * std::ldexp(1.0f, 100);
    for (Metric metric : {Metric::Cosine, Metric::Euclidean}) {
        FacilityLocationOptions o;
        o.metric = metric;
        const auto a = facility_location(tiny, 5, o), b = facility_location(up, 5, o);
        CHECK(a.indices == b.indices);
        CHECK(a.weights == b.weights);
    }
}

TEST_CASE("reliability: nearly parallel rows under the cosine metric", "[reliability][degenerate]") {
    // Found by fuzz/facility_location_fuzz.cpp: the largest distance C was subnormal, the gain
    // quantiser's scale 2^30 / C overflowed to inf, and inf was converted to int.
    Eigen::MatrixXf x(2, 3);
    x << 2.9847657290118604e-43f, 4.0310792256793703e-28f, 0, 0, 3, 8.6880504788138658e-44f;
    for (Greedy greedy : {Greedy::Naive, Greedy::Lazy, Greedy::Stochastic}) {
        CraigOptions o;
        o.metric = Metric::Cosine;
        o.greedy = greedy;
        const auto c = Craig(o).select(x, 2);
        require_valid(c, 2, 2);
        CHECK(c.weights.sum() == 2.0f);
        for (double v : c.objective) CHECK(std::isfinite(v));
    }
}

TEST_CASE("reliability: GRAD-MATCH's objective is the residual of its weights for atoms 27 orders apart",
          "[reliability][degenerate]") {
    // Found by fuzz/grad_match_fuzz.cpp: with more atoms than columns (the dual form) and norms from
    // 2 to 2.5e27, lambda I + A^T A is too ill-conditioned for lambda X^-1 t to be the residual of
    // the weights: it reported 5.7e-28 where the weights left 2.5e27.
    const float a = 2.471044375292302e+27f, b = -1.2379400392853803e+27f;
    Eigen::MatrixXf x(5, 4);
    x << -7.4375f, -7.4375f, -7.4375f, 0, -1.75f, -1.75f, 0, 0, 0, 0, 2.875f, a, 0, b, b, b, b, 2, 2, 2;
    for (NonNegativity nn : {NonNegativity::ActiveSet, NonNegativity::DropMostNegative})
        for (bool normalize : {false, true}) {
            INFO(to_string(nn) << (normalize ? ", normalize" : ""));
            GradMatchOptions o;
            o.nonnegativity = nn;
            o.normalize = normalize;
            o.tolerance = 0;
            const auto c = GradMatch(o).select(x, 5);
            require_valid(c, 5, 5);
            const Eigen::MatrixXd xd = x.cast<double>();
            Eigen::VectorXd r = xd.colwise().sum().transpose();
            double scale = r.norm();
            for (Index j = 0; j < c.size(); ++j) {
                r -= double(c.weights[j]) * xd.row(c.indices[static_cast<std::size_t>(j)]).transpose();
                scale += double(c.weights[j]) * xd.row(c.indices[static_cast<std::size_t>(j)]).norm();
            }
            REQUIRE_FALSE(c.objective.empty());
            CHECK(std::abs(r.norm() - c.objective.back()) <= 1e-6 * scale);
        }
}

// ============================================================================ memory

TEST_CASE("reliability: the memory budget chooses blocked evaluation or refuses up front", "[reliability][memory]") {
    const Eigen::MatrixXf x = coreset_test::blobs<float>(300, 6, 7, 1.0, 3);
    FacilityLocationOptions dense;
    dense.evaluation = Evaluation::Dense;
    const auto reference = facility_location(x, 10, dense);
    // A budget below the dense matrix (300 x 300 floats = 360 kB) but above the blocked minimum:
    // Auto evaluates in blocks, with the same picks, weights and objective.
    FacilityLocationOptions tight;
    tight.memory_budget_bytes = 300 * 1024;
    CHECK(same_bits(with_threads(1, [&] { return facility_location(x, 10, tight); }), reference));
    CraigOptions co;
    co.memory_budget_bytes = tight.memory_budget_bytes;
    CHECK(same_bits(with_threads(1, [&] { return Craig(co).select(x, 10); }), reference));
    // Dense on request, over budget: refused with the amount needed, before any distance is computed.
    dense.memory_budget_bytes = tight.memory_budget_bytes;
    CHECK_THROWS_WITH(facility_location(x, 10, dense),
                      Catch::Matchers::StartsWith("coreset::facility_location(): memory_budget_bytes must be at least ") &&
                          Catch::Matchers::Contains(" for Evaluation::Dense on this input (got 307200, m = 300)"));
}

TEST_CASE("reliability: an impossible request is an invalid_argument, never std::bad_alloc",
          "[reliability][memory]") {
    // 200 000 rows: the dense matrix would take 160 GB. Asking for it is refused at once.
    const Eigen::MatrixXf x = Eigen::MatrixXf::Zero(200000, 1);
    FacilityLocationOptions o;
    o.evaluation = Evaluation::Dense;
    CHECK_THROWS_WITH(facility_location(x, 1, o),
                      Catch::Matchers::StartsWith("coreset::facility_location(): memory_budget_bytes must be at least "));
    // Per class, the class that does not fit is named by its size; the others do not matter.
    CraigOptions co;
    co.evaluation = Evaluation::Dense;
    co.memory_budget_bytes = 4 << 20;
    Eigen::VectorXi y = Eigen::VectorXi::Zero(2500);
    y.head(2000).setOnes();
    const Eigen::MatrixXf g = coreset_test::gaussian<float>(2500, 2, 1);
    CHECK_THROWS_WITH(Craig(co).select(g, y, 10), Catch::Matchers::Contains("(got 4194304, m = 2000)"));
    // A budget below what even blocked evaluation needs.
    CraigOptions tiny;
    tiny.memory_budget_bytes = 1024;
    CHECK_THROWS_WITH(Craig(tiny).select(g, 10), Catch::Matchers::StartsWith("Craig::select(): memory_budget_bytes must be at least ") &&
                                                     Catch::Matchers::Contains(" for this input (got 1024, m = 2500)"));
}

// ============================================================================ determinism

TEMPLATE_TEST_CASE("reliability: the engine and Craig give bit-identical results for 1, 2 and 3 threads",
                   "[reliability][determinism]", float, double) {
    using M = Mat<TestType>;
    const M x = coreset_test::blobs<TestType>(500, 16, 9, 2.0, 5);
    const Eigen::VectorXi y = coreset_test::round_robin_labels(500, 4);
    for (Greedy greedy : {Greedy::Naive, Greedy::Lazy, Greedy::Stochastic}) {
        for (Evaluation evaluation : {Evaluation::Dense, Evaluation::Blocked}) {
            INFO(to_string(greedy) << ", " << to_string(evaluation));
            CraigOptions o;
            o.greedy = greedy;
            o.evaluation = evaluation;
            o.seed = 99;
            const Craig craig(o);
            require_thread_independent([&] { return craig.select(x, 25); });
            require_thread_independent([&] { return craig.select(x, y, 25); });
            require_thread_independent([&] { return craig.select_batches(x, 8, 40); });
            require_thread_independent([&] {
                return weighted_facility_location(x, Vec<TestType>::LinSpaced(500, TestType(0.5), TestType(3)), 20,
                                                  o.engine());
            });
        }
    }
}

TEMPLATE_TEST_CASE("reliability: GradMatch gives bit-identical results for 1, 2 and 3 threads",
                   "[reliability][determinism]", float, double) {
    using M = Mat<TestType>;
    const M x = coreset_test::gaussian<TestType>(1200, 64, 6);
    const Eigen::VectorXi y = coreset_test::round_robin_labels(1200, 3);
    for (NonNegativity nn : {NonNegativity::ActiveSet, NonNegativity::DropMostNegative}) {
        GradMatchOptions o;
        o.nonnegativity = nn;
        o.normalize = nn == NonNegativity::DropMostNegative;
        const GradMatch gm(o);
        require_thread_independent([&] { return gm.select(x, 30); });
        require_thread_independent([&] { return gm.select(x, y, 30); });
        require_thread_independent([&] { return gm.select(x, Target(Vec<TestType>::Ones(64)), 30); });
        require_thread_independent([&] { return gm.select_batches(x, 16, 160); });
    }
}

TEMPLATE_TEST_CASE("reliability: AdaCore gives bit-identical state and results for 1, 2 and 3 threads",
                   "[reliability][determinism]", float, double) {
    using M = Mat<TestType>;
    const Index n = 1200, d = 32;
    const Eigen::VectorXi y = coreset_test::round_robin_labels(n, 3);
    auto run = [&] {
        AdaCoreOptions o;
        o.hessian_power = 0.5;
        AdaCore<TestType> a(n, o);
        for (int t = 0; t < 3; ++t)
            a.update(coreset_test::gaussian<TestType>(n, d, 10 + static_cast<std::uint64_t>(t)),
                     coreset_test::gaussian<TestType>(n, d, 20 + static_cast<std::uint64_t>(t)));
        Coreset<TestType> c = a.select(y, 40);
        // Fold the state into the result so that it is compared too.
        const M u = a.preconditioned();
        for (Index i = 0; i < n; i += 97) c.objective.push_back(static_cast<double>(u(i, i % d)));
        return c;
    };
    require_thread_independent(run);
}

TEST_CASE("reliability: Crest gives bit-identical rounds for 1, 2 and 3 threads", "[reliability][determinism]") {
    const Index n = 2000;
    const Eigen::VectorXi labels = coreset_test::round_robin_labels(n, 4);
    const Eigen::MatrixXf gradients = coreset_test::blobs<float>(n, 10, 12, 1.0, 8);
    auto run = [&] {
        CrestOptions o;
        o.subset_fraction = 0.1;
        o.initial_coresets = 4;
        o.batch_size = 24;
        o.drop_interval = 2;
        o.watch_window = 1;
        o.alpha = 0.5;
        o.seed = 3;
        Crest c(labels, o);
        Coreset<float> all;  // every batch of every round, concatenated
        std::vector<float> w;
        for (int round = 0; round < 4; ++round) {
            const auto cand = c.candidates();
            Eigen::MatrixXf g(cand.size(), 10);
            Eigen::VectorXf loss(cand.size());
            for (Index j = 0; j < cand.size(); ++j) {
                g.row(j) = gradients.row(cand.indices[static_cast<std::size_t>(j)]);
                loss[j] = static_cast<float>(cand.indices[static_cast<std::size_t>(j)] % 7) * 0.1f;
            }
            c.select(g, loss);
            for (const auto& b : c.coresets()) {
                all.indices.insert(all.indices.end(), b.indices.begin(), b.indices.end());
                for (Index j = 0; j < b.size(); ++j) w.push_back(static_cast<float>(b.weights[j]));
            }
            c.begin_region(1.0, Eigen::VectorXd::Ones(3), Eigen::VectorXd::Constant(3, 0.5 + round));
            for (Index s = 0; s < 3; ++s) c.record_update(Eigen::VectorXd::Constant(3, -0.01));
            all.objective.push_back(c.model_loss());
            c.check(2.0);
        }
        const auto active = c.active();
        all.indices.insert(all.indices.end(), active.begin(), active.end());
        all.weights = Eigen::Map<Eigen::VectorXf>(w.data(), static_cast<Index>(w.size()));
        return all;
    };
    require_thread_independent(run);
}

// ============================================================================ exception safety

TEST_CASE("reliability: a selector that threw is still usable and gives the same results", "[reliability][safety]") {
    const Eigen::MatrixXd x = coreset_test::blobs<double>(400, 5, 6, 1.0, 2);
    Eigen::VectorXi y = Eigen::VectorXi::Zero(400);
    y.tail(20).setOnes();
    // A budget that fits the small class densely but not the large one: the large class throws
    // from inside the parallel per-class loop, the exception reaches the caller intact.
    CraigOptions o;
    o.evaluation = Evaluation::Dense;
    o.memory_budget_bytes = 2 << 20;
    const Craig craig(o);
    const auto before = with_threads(1, [&] { return craig.select(x.topRows(300), 10); });
    Eigen::VectorXi big_small = Eigen::VectorXi::Zero(820);
    big_small.tail(20).setOnes();
    const Eigen::MatrixXd many = coreset_test::blobs<double>(820, 5, 6, 1.0, 2);
    CHECK_THROWS_WITH(with_threads(2, [&] { return craig.select(many, big_small, 10); }),
                      Catch::Matchers::StartsWith("Craig::select(): memory_budget_bytes must be at least ") &&
                          Catch::Matchers::EndsWith(" for Evaluation::Dense on this input (got 2097152, m = 800)"));
    CHECK_THROWS_AS(craig.select(x, -3), std::invalid_argument);
    CHECK(same_bits(with_threads(1, [&] { return craig.select(x.topRows(300), 10); }), before));
    CHECK(same_bits(with_threads(2, [&] { return craig.select(x, y, 10); }),
                    with_threads(1, [&] { return Craig(o).select(x, y, 10); })));

    // A callback that throws: the exception propagates unchanged; the selector is unaffected.
    struct Boom {
        int after;
        bool on_step(const StepInfo& info) {
            if (info.step == after) throw std::runtime_error("boom");
            return false;
        }
    };
    const Craig plain;
    CHECK_THROWS_WITH(plain.select(x, 10, Boom{3}), "boom");
    CHECK(same_bits(plain.select(x, 10), Craig().select(x, 10)));
    const GradMatch gm;
    const auto g0 = gm.select(x, 10);
    CHECK_THROWS_WITH(gm.select(x, 10, Boom{2}), "boom");
    CHECK_THROWS_WITH(gm.select(x, y, 10, Boom{5}), "boom");
    CHECK_THROWS_AS(gm.select(x, Target(Eigen::VectorXd::Ones(4)), 10), std::invalid_argument);
    CHECK(same_bits(gm.select(x, 10), g0));
}

TEST_CASE("reliability: a rejected AdaCore update leaves the averages unchanged", "[reliability][safety]") {
    const Index n = 6, d = 3;
    AdaCore<double> a(n), control(n);
    const Eigen::MatrixXd g = coreset_test::gaussian<double>(n, d, 1), h = coreset_test::gaussian<double>(n, d, 2);
    a.update(g, h);
    control.update(g, h);
    Eigen::MatrixXd nan_last = g;
    nan_last(n - 1, d - 1) = std::numeric_limits<double>::quiet_NaN();
    const std::vector<std::function<void()>> rejected = {
        [&] { a.update(nan_last, h); },
        [&] { a.update(g, nan_last); },
        [&] { a.update(Eigen::MatrixXd::Ones(n, d + 1), Eigen::MatrixXd::Ones(n, d + 1)); },
        [&] { a.update(g.topRows(n - 1), h.topRows(n - 1)); },
        [&] { a.update(std::vector<Index>{0, 1, 0}, g.topRows(3), h.topRows(3)); },
        [&] { a.update(std::vector<Index>{0, n}, g.topRows(2), h.topRows(2)); },
        [&] { a.update(std::vector<Index>{0, -1}, g.topRows(2), h.topRows(2)); },
        [&] { a.update(std::vector<Index>{5, 4, 3}, nan_last.bottomRows(3), h.bottomRows(3)); },
        [&] { a.select(n + 1); },
        [&] { a.select(labels_from({0, 1}), 2); },
    };
    for (std::size_t r = 0; r < rejected.size(); ++r) {
        INFO("rejected call " << r);
        REQUIRE_THROWS_AS(rejected[r](), std::invalid_argument);
        REQUIRE(a.dim() == control.dim());
        REQUIRE(a.steps() == control.steps());
        REQUIRE(a.smoothed_gradients() == control.smoothed_gradients());
        REQUIRE(a.smoothed_curvature() == control.smoothed_curvature());
    }
    // And it goes on exactly as one that never saw them.
    a.update(std::vector<Index>{2, 4}, g.topRows(2), h.topRows(2));
    control.update(std::vector<Index>{2, 4}, g.topRows(2), h.topRows(2));
    CHECK(same_bits(a.select(3), control.select(3)));
    // A rejected first update leaves no dimension behind.
    AdaCore<double> fresh(n);
    CHECK_THROWS_AS(fresh.update(nan_last, h), std::invalid_argument);
    CHECK(fresh.dim() == 0);
    fresh.update(Eigen::MatrixXd::Ones(n, 5), Eigen::MatrixXd::Ones(n, 5));
    CHECK(fresh.dim() == 5);
}

TEST_CASE("reliability: rejected Crest calls leave its state machine exactly as it was", "[reliability][safety]") {
    // Two Crests in lock step; `a` also receives every kind of rejected call at every stage. Both
    // must agree on everything observable, including the random subsets drawn afterwards.
    const Index n = 60, d = 4;
    const Eigen::VectorXi labels = coreset_test::round_robin_labels(n, 3);
    const Eigen::MatrixXd all = coreset_test::blobs<double>(n, d, 5, 1.0, 4);
    CrestOptions o;
    o.subset_fraction = 0.3;
    o.initial_coresets = 2;
    o.max_coresets = 6;
    o.batch_size = 5;
    o.drop_interval = 1;
    o.watch_window = 1;
    o.alpha = 0.35;
    o.min_pool_fraction = 0.5;
    Crest a(labels, o), b(labels, o);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::size_t rejected = 0;
    auto reject = [&](const std::function<void()>& call) {
        bool threw = false;
        try {
            call();
        } catch (const std::logic_error&) {  // invalid_argument included
            threw = true;
        }
        REQUIRE(threw);
        ++rejected;
    };
    auto same_state = [&] {
        const CrestStats sa = a.stats(), sb = b.stats();
        REQUIRE(sa.selections == sb.selections);
        REQUIRE(sa.checks == sb.checks);
        REQUIRE(sa.reselections == sb.reselections);
        REQUIRE(sa.steps == sb.steps);
        REQUIRE(sa.region_steps == sb.region_steps);
        REQUIRE(sa.interval == sb.interval);
        REQUIRE(sa.coresets == sb.coresets);
        REQUIRE(sa.pool_size == sb.pool_size);
        REQUIRE(std::memcmp(&sa.last_rho, &sb.last_rho, sizeof(double)) == 0);
        REQUIRE(a.active() == b.active());
        REQUIRE(a.in_region() == b.in_region());
        REQUIRE(a.should_check() == b.should_check());
        REQUIRE(a.coresets().size() == b.coresets().size());
        for (std::size_t p = 0; p < a.coresets().size(); ++p) {
            REQUIRE(a.coresets()[p].indices == b.coresets()[p].indices);
            REQUIRE(a.coresets()[p].weights == b.coresets()[p].weights);
        }
        if (a.in_region()) REQUIRE(a.model_loss() == b.model_loss());
    };
    auto gradients_of = [&](const CrestCandidates& c) {
        Eigen::MatrixXd g(c.size(), d);
        for (Index j = 0; j < c.size(); ++j) g.row(j) = all.row(c.indices[static_cast<std::size_t>(j)]);
        return g;
    };
    auto losses_of = [&](const CrestCandidates& c, int round) {
        Eigen::VectorXd l(c.size());
        for (Index j = 0; j < c.size(); ++j) l[j] = 0.1 * static_cast<double>((c.indices[static_cast<std::size_t>(j)] + round) % 5);
        return l;
    };

    // Before anything.
    reject([&] { a.select(Eigen::MatrixXd::Ones(3, d), Eigen::VectorXd::Ones(3)); });
    reject([&] { a.next_batch(); });
    reject([&] { a.begin_region(1.0, Eigen::VectorXd::Ones(2), Eigen::VectorXd::Ones(2)); });
    reject([&] { a.check(1.0); });
    reject([&] { a.record_update(Eigen::VectorXd::Ones(2)); });
    reject([&] { a.is_active(n); });
    same_state();
    for (int round = 0; round < 4; ++round) {
        INFO("round " << round);
        const auto ca = a.candidates(), cb = b.candidates();
        REQUIRE(ca.indices == cb.indices);
        const Eigen::MatrixXd g = gradients_of(ca);
        const Eigen::VectorXd l = losses_of(ca, round);
        const Index R = ca.size();
        // Bad selections: shapes and values.
        Eigen::MatrixXd g_nan = g;
        g_nan(R - 1, d - 1) = nan;
        Eigen::VectorXd l_nan = l;
        l_nan[R / 2] = nan;
        reject([&] { a.select(g.topRows(R - 1), l); });
        reject([&] { a.select(g, l.head(R - 1)); });
        reject([&] { a.select(g_nan, l); });
        reject([&] { a.select(g, l_nan); });
        reject([&] { a.select(Eigen::MatrixXd(R, 0), l); });
        same_state();
        a.select(g, l);
        b.select(g, l);
        same_state();
        REQUIRE(a.check_indices() == b.check_indices());
        // Training batches agree.
        for (int s = 0; s < 3; ++s) {
            const auto ba = a.next_batch(), bb = b.next_batch();
            REQUIRE(ba.indices == bb.indices);
        }
        // A region, with bad anchors and bad steps in between.
        const Eigen::VectorXd grad = Eigen::VectorXd::LinSpaced(3, 0.5, 1.5);
        const Eigen::VectorXd curv = Eigen::VectorXd::Constant(3, 0.2 + 0.3 * round);
        reject([&] { a.begin_region(-1.0, grad, curv); });
        reject([&] { a.begin_region(1.0, grad, Eigen::VectorXd::Zero(3)); });
        reject([&] { a.begin_region(1.0, Eigen::VectorXd::Constant(3, nan), curv); });
        if (round > 0) reject([&] { a.begin_region(1.0, Eigen::VectorXd::Ones(4), Eigen::VectorXd::Ones(4)); });
        same_state();
        a.begin_region(1.0 + round, grad, curv);
        b.begin_region(1.0 + round, grad, curv);
        for (int s = 0; s < 4 && a.in_region(); ++s) {
            reject([&] { a.record_update(Eigen::VectorXd::Ones(2)); });
            reject([&] { a.record_update(Eigen::VectorXd::Constant(3, nan)); });
            reject([&] { a.check(nan); });
            reject([&] { a.check(-2.0); });
            same_state();
            a.record_update(Eigen::VectorXd::Constant(3, -0.05 * (s + 1)));
            b.record_update(Eigen::VectorXd::Constant(3, -0.05 * (s + 1)));
            same_state();
            if (a.should_check()) {
                const double truth = 1.0 + round - 0.02 * s;
                REQUIRE(a.check(truth) == b.check(truth));
                same_state();
            }
        }
        if (a.in_region()) {
            REQUIRE(a.check(100.0) == b.check(100.0));  // far from the model: re-select
        }
        REQUIRE_FALSE(a.in_region());
        reject([&] { a.record_update(Eigen::VectorXd::Ones(3)); });
        same_state();
    }
    CHECK(a.stats().dropped > 0);  // the drop path ran under the rejected calls too
    CHECK(a.candidates().indices == b.candidates().indices);
    CHECK(rejected > 50);
}
