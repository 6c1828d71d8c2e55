// SPDX-License-Identifier: MIT
// docs/errors.md against the code. Every row of the document's generated block is produced here by
// triggering the check and recording the exception it throws; the test fails when the document
// and the code disagree (a message, an exception type, a row added or removed), and when a check
// in the headers (a `where` string, a message fragment, a check_option constraint) appears in no
// row. To rewrite the block after changing a check:
//   CORESET_WRITE_ERRORS_DOC=1 build/tests/coreset_tests "[errors_doc]"
#include <Eigen/Core>
#include <algorithm>
#include <cctype>
#include <coreset/coreset.hpp>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "test_support.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace coreset;

namespace {

using Index = Eigen::Index;
using M = Eigen::MatrixXd;
using V = Eigen::VectorXd;
using Vi = Eigen::VectorXi;

/// One documented check: the header it belongs to, the failing input in words, and a call that
/// fails it.
struct ErrorCase {
    const char* header;
    const char* input;
    std::function<void()> trigger;
};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

M data(Index n = 5, Index d = 3) { return coreset_test::gaussian<double>(n, d, 17); }
M with(M x, Index i, Index j, double v) {
    x(i, j) = v;
    return x;
}
V vec(std::initializer_list<double> v) {
    V out(static_cast<Index>(v.size()));
    Index i = 0;
    for (double x : v) out[i++] = x;
    return out;
}
Vi ivec(std::initializer_list<int> v) {
    Vi out(static_cast<Index>(v.size()));
    Index i = 0;
    for (int x : v) out[i++] = x;
    return out;
}
template <class T, class F>
T with_field(F set) {
    T o;
    set(o);
    return o;
}

// Crest in a given state: labels 0/1 alternating over 20 rows, small subsets.
CrestOptions crest_options() {
    CrestOptions o;
    o.batch_size = 4;
    o.subset_fraction = 0.2;
    o.initial_coresets = 2;
    o.max_coresets = 4;
    return o;
}
Crest crest_fresh() { return Crest(coreset_test::round_robin_labels(20, 2), crest_options()); }
Crest crest_selected() {
    Crest c = crest_fresh();
    const Index R = c.candidates().size();
    c.select(coreset_test::gaussian<double>(R, 3, 5), V::Ones(R));
    return c;
}
Crest crest_in_region() {
    Crest c = crest_selected();
    c.begin_region(1.0, V::Ones(4), V::Ones(4));
    return c;
}

AdaCore<double> adacore_updated(Index n = 4, Index d = 3) {
    AdaCore<double> a(n);
    a.update(data(n, d), M::Ones(n, d));
    return a;
}

std::vector<ErrorCase> cases() {
    std::vector<ErrorCase> c;
    auto add = [&](const char* header, const char* input, std::function<void()> fn) {
        c.push_back({header, input, std::move(fn)});
    };
    const M x = data();
    const Vi y = ivec({0, 1, 0, 1, 0});
    using FLO = FacilityLocationOptions;

    // ---------------------------------------------------------------- core.hpp
    add("core.hpp", "empty weights", [] { mean_one(V(0)); });
    add("core.hpp", "a NaN weight", [] { mean_one(vec({1, kNaN})); });
    add("core.hpp", "weights summing to 0", [] { mean_one(vec({1, -1})); });

    // ---------------------------------------------------------------- factored.hpp
    using FG = FactoredGradients<double>;
    add("factored.hpp", "errors 0 x 2", [] { FG(M(0, 2), M(0, 3)); });
    add("factored.hpp", "activations 5 x 0", [] { FG(data(5, 2), M(5, 0)); });
    add("factored.hpp", "a NaN activation", [] { FG(data(5, 2), with(data(5, 3), 3, 1, kNaN)); });
    add("factored.hpp", "4 activation rows for 5 error rows", [] { FG(data(5, 2), data(4, 3)); });
    add("factored.hpp", "Craig: budget = 7 > n", [] { Craig().select(factored(data(5, 2), data(5, 3)), 7); });
    add("factored.hpp", "Craig per class: a zero row (zero activations) under Metric::Cosine", [y] {
        M h = data(5, 3);
        h.row(4).setZero();
        Craig(with_field<CraigOptions>([](CraigOptions& o) { o.metric = Metric::Cosine; }))
            .select(factored(data(5, 2), h), y, 2);
    });
    add("factored.hpp", "GradMatch: target of length 5 for C E = 6",
        [] { GradMatch().select(factored(data(5, 2), data(5, 3)), Target(V::Ones(5)), 2); });
    add("factored.hpp", "Craig per batch: float products past the range of float (a batch mean of inf)", [] {
        const Eigen::MatrixXf big = Eigen::MatrixXf::Constant(4, 2, 1e30f);
        Craig().select_batches(factored(big, big), 2, 2);
    });
    add("factored.hpp", "GradMatch per batch: batch_size = 0",
        [] { GradMatch().select_batches(factored(data(5, 2), data(5, 3)), 0, 2); });
    add("factored.hpp", "AdaCore: an error times an activation past float",
        [] {
            AdaCore<float> a(2);
            const Eigen::MatrixXf big = Eigen::MatrixXf::Constant(2, 2, 1e30f);
            a.update(factored(big, big), factored(big, Eigen::MatrixXf::Ones(2, 2)));
        });
    add("factored.hpp", "factored_last_layer_gradients: a label 3 with C = 3",
        [] { factored_last_layer_gradients(data(4, 3), ivec({0, 3, 1, 1}), data(4, 2)); });
    add("factored.hpp", "factored_last_layer_hessian_diagonal: 3 embedding rows for 4",
        [] { factored_last_layer_hessian_diagonal(data(4, 3), data(3, 2)); });

    // ---------------------------------------------------------------- facility_location.hpp
    add("facility_location.hpp", "metric = 7", [] { with_field<FLO>([](FLO& o) { o.metric = static_cast<Metric>(7); }).validate(); });
    add("facility_location.hpp", "greedy = 7", [] { with_field<FLO>([](FLO& o) { o.greedy = static_cast<Greedy>(7); }).validate(); });
    add("facility_location.hpp", "epsilon = 0", [] { with_field<FLO>([](FLO& o) { o.epsilon = 0; }).validate(); });
    add("facility_location.hpp", "epsilon = NaN", [] { with_field<FLO>([](FLO& o) { o.epsilon = kNaN; }).validate(); });
    add("facility_location.hpp", "memory_budget_bytes = 0",
        [] { with_field<FLO>([](FLO& o) { o.memory_budget_bytes = 0; }).validate(); });
    add("facility_location.hpp", "evaluation = 7",
        [] { with_field<FLO>([](FLO& o) { o.evaluation = static_cast<Evaluation>(7); }).validate(); });
    add("facility_location.hpp", "num_threads = -1",
        [] { with_field<FLO>([](FLO& o) { o.num_threads = -1; }).validate(); });
    add("facility_location.hpp", "invalid options (checked first, as validate())",
        [x] { facility_location(x, 2, with_field<FLO>([](FLO& o) { o.epsilon = 1; })); });
    add("facility_location.hpp", "0 x 3 rows", [] { facility_location(M(0, 3), 1); });
    add("facility_location.hpp", "5 x 0 rows", [] { facility_location(M(5, 0), 1); });
    add("facility_location.hpp", "an infinite entry", [x] { facility_location(with(x, 3, 1, kInf), 2); });
    add("facility_location.hpp", "budget = 0", [x] { facility_location(x, 0); });
    add("facility_location.hpp", "budget = n + 1", [x] { facility_location(x, 6); });
    add("facility_location.hpp", "a zero row under Metric::Cosine", [x] {
        M z = x;
        z.row(2).setZero();
        facility_location(z, 2, with_field<FLO>([](FLO& o) { o.metric = Metric::Cosine; }));
    });
    add("facility_location.hpp", "Evaluation::Dense, memory_budget_bytes = 1000", [x] {
        facility_location(x, 2, with_field<FLO>([](FLO& o) {
                              o.evaluation = Evaluation::Dense;
                              o.memory_budget_bytes = 1000;
                          }));
    });
    add("facility_location.hpp", "memory_budget_bytes = 1000 (not even one distance row fits)", [x] {
        facility_location(x, 2, with_field<FLO>([](FLO& o) { o.memory_budget_bytes = 1000; }));
    });
    add("facility_location.hpp", "multiplicities 5 x 2", [x] { weighted_facility_location(x, M::Ones(5, 2), 2); });
    add("facility_location.hpp", "4 multiplicities for 5 rows", [x] { weighted_facility_location(x, V::Ones(4), 2); });
    add("facility_location.hpp", "a NaN multiplicity",
        [x] { weighted_facility_location(x, vec({1, 1, kNaN, 1, 1}), 2); });
    add("facility_location.hpp", "a zero multiplicity", [x] { weighted_facility_location(x, vec({1, 0, 1, 1, 1}), 2); });
    add("facility_location.hpp", "float multiplicities summing past FLT_MAX", [x] {
        const Eigen::VectorXf m = Eigen::VectorXf::Constant(5, 1e38f);
        weighted_facility_location(Eigen::MatrixXf(x.cast<float>()), m, 2);
    });
    add("facility_location.hpp", "budget = 0 (the engine's checks, as facility_location())",
        [x] { weighted_facility_location(x, V::Ones(5), 0); });

    // ---------------------------------------------------------------- craig.hpp
    add("craig.hpp", "epsilon = 1 (engine fields as FacilityLocationOptions)",
        [] { Craig(with_field<CraigOptions>([](CraigOptions& o) { o.epsilon = 1; })); });
    add("craig.hpp", "class_budget = 7", [] {
        Craig(with_field<CraigOptions>([](CraigOptions& o) { o.class_budget = static_cast<ClassBudget>(7); }));
    });
    add("craig.hpp", "0 x 3 gradients", [] { Craig().select(M(0, 3), 1); });
    add("craig.hpp", "a NaN gradient", [x] { Craig().select(with(x, 0, 2, kNaN), 2); });
    add("craig.hpp", "budget = -1", [x] { Craig().select(x, -1); });
    add("craig.hpp", "Evaluation::Dense, memory_budget_bytes = 1000", [x] {
        Craig(with_field<CraigOptions>([](CraigOptions& o) {
            o.evaluation = Evaluation::Dense;
            o.memory_budget_bytes = 1000;
        })).select(x, 2);
    });
    add("craig.hpp", "per class: 5 x 0 gradients", [y] { Craig().select(M(5, 0), y, 2); });
    add("craig.hpp", "per class: a NaN gradient", [x, y] { Craig().select(with(x, 4, 0, kNaN), y, 2); });
    add("craig.hpp", "per class: 4 labels for 5 rows", [x] { Craig().select(x, ivec({0, 1, 0, 1}), 2); });
    add("craig.hpp", "per class: a label -1", [x] { Craig().select(x, ivec({0, 1, -1, 1, 0}), 2); });
    add("craig.hpp", "per class: budget = 6 > n", [x, y] { Craig().select(x, y, 6); });
    add("craig.hpp", "per class: a zero row under Metric::Cosine", [x, y] {
        M z = x;
        z.row(1).setZero();
        Craig(with_field<CraigOptions>([](CraigOptions& o) { o.metric = Metric::Cosine; })).select(z, y, 2);
    });
    add("craig.hpp", "per batch: 0 x 3 gradients", [] { Craig().select_batches(M(0, 3), 2, 1); });
    add("craig.hpp", "per batch: batch_size = 0", [x] { Craig().select_batches(x, 0, 2); });
    add("craig.hpp", "per batch: budget = 0", [x] { Craig().select_batches(x, 2, 0); });
    add("craig.hpp", "per batch: a zero batch mean under Metric::Cosine", [x] {
        M z = x;
        z.row(2) = -z.row(3);
        Craig(with_field<CraigOptions>([](CraigOptions& o) { o.metric = Metric::Cosine; })).select_batches(z, 2, 2);
    });

    // ---------------------------------------------------------------- grad_match.hpp
    using GMO = GradMatchOptions;
    add("grad_match.hpp", "lambda = -1", [] { GradMatch(with_field<GMO>([](GMO& o) { o.lambda = -1; })); });
    add("grad_match.hpp", "lambda = inf", [] { GradMatch(with_field<GMO>([](GMO& o) { o.lambda = kInf; })); });
    add("grad_match.hpp", "tolerance = NaN", [] { GradMatch(with_field<GMO>([](GMO& o) { o.tolerance = kNaN; })); });
    add("grad_match.hpp", "tolerance = inf", [] { GradMatch(with_field<GMO>([](GMO& o) { o.tolerance = kInf; })); });
    add("grad_match.hpp", "nonnegativity = 7", [] {
        GradMatch(with_field<GMO>([](GMO& o) { o.nonnegativity = static_cast<NonNegativity>(7); }));
    });
    add("grad_match.hpp", "class_budget = 7",
        [] { GradMatch(with_field<GMO>([](GMO& o) { o.class_budget = static_cast<ClassBudget>(7); })); });
    add("grad_match.hpp", "num_threads = -2", [] { GradMatch(with_field<GMO>([](GMO& o) { o.num_threads = -2; })); });
    add("grad_match.hpp", "5 x 0 gradients", [] { GradMatch().select(M(5, 0), 2); });
    add("grad_match.hpp", "an infinite gradient", [x] { GradMatch().select(with(x, 1, 1, -kInf), 2); });
    add("grad_match.hpp", "budget = 0", [x] { GradMatch().select(x, 0); });
    add("grad_match.hpp", "target: 0 x 3 gradients", [] { GradMatch().select(M(0, 3), Target(V::Ones(3)), 1); });
    add("grad_match.hpp", "target: a 3 x 2 matrix", [x] { GradMatch().select(x, Target(M::Ones(3, 2)), 2); });
    add("grad_match.hpp", "target: length 2 for d = 3", [x] { GradMatch().select(x, Target(V::Ones(2)), 2); });
    add("grad_match.hpp", "target: a NaN entry", [x] { GradMatch().select(x, Target(vec({1, kNaN, 1})), 2); });
    add("grad_match.hpp", "target: budget = 6 > n", [x] { GradMatch().select(x, Target(V::Ones(3)), 6); });
    add("grad_match.hpp", "labels: a NaN gradient", [x, y] { GradMatch().select(with(x, 0, 0, kNaN), y, 2); });
    add("grad_match.hpp", "labels: 6 labels for 5 rows", [x] { GradMatch().select(x, ivec({0, 1, 0, 1, 0, 1}), 2); });
    add("grad_match.hpp", "labels: a label -3", [x] { GradMatch().select(x, ivec({0, 1, 0, -3, 0}), 2); });
    add("grad_match.hpp", "labels: budget = 7 > n", [x, y] { GradMatch().select(x, y, 7); });
    add("grad_match.hpp", "per batch: a NaN gradient", [x] { GradMatch().select_batches(with(x, 2, 2, kNaN), 2, 2); });
    add("grad_match.hpp", "per batch: batch_size = -2", [x] { GradMatch().select_batches(x, -2, 2); });
    add("grad_match.hpp", "per batch: budget = 6 > n", [x] { GradMatch().select_batches(x, 2, 6); });

    // ---------------------------------------------------------------- adacore.hpp
    using AO = AdaCoreOptions;
    add("adacore.hpp", "beta1 = 1", [] { AdaCore<double>(4, with_field<AO>([](AO& o) { o.beta1 = 1; })); });
    add("adacore.hpp", "beta2 = -0.5", [] { AdaCore<double>(4, with_field<AO>([](AO& o) { o.beta2 = -0.5; })); });
    add("adacore.hpp", "eps = inf", [] { AdaCore<double>(4, with_field<AO>([](AO& o) { o.eps = kInf; })); });
    add("adacore.hpp", "hessian_power = 2", [] { AdaCore<double>(4, with_field<AO>([](AO& o) { o.hessian_power = 2; })); });
    add("adacore.hpp", "epsilon = 0 (the Craig fields, named as AdaCoreOptions)",
        [] { AdaCore<double>(4, with_field<AO>([](AO& o) { o.epsilon = 0; })); });
    add("adacore.hpp", "class_budget = 7",
        [] { AdaCore<double>(4, with_field<AO>([](AO& o) { o.class_budget = static_cast<ClassBudget>(7); })); });
    add("adacore.hpp", "n = 0", [] { AdaCore<double>(0); });
    add("adacore.hpp", "0 x 3 gradients", [] {
        AdaCore<double> a(4);
        a.update(M(0, 3), M(0, 3));
    });
    add("adacore.hpp", "4 x 0 hessian_diag", [] {
        AdaCore<double> a(4);
        a.update(M::Ones(4, 3), M(4, 0));
    });
    add("adacore.hpp", "hessian_diag 4 x 2 for gradients 4 x 3", [] {
        AdaCore<double> a(4);
        a.update(M::Ones(4, 3), M::Ones(4, 2));
    });
    add("adacore.hpp", "d = 2 after an update with d = 3", [] {
        AdaCore<double> a = adacore_updated();
        a.update(M::Ones(4, 2), M::Ones(4, 2));
    });
    add("adacore.hpp", "a NaN gradient", [] {
        AdaCore<double> a(4);
        a.update(with(M::Ones(4, 3), 2, 0, kNaN), M::Ones(4, 3));
    });
    add("adacore.hpp", "an infinite curvature", [] {
        AdaCore<double> a(4);
        a.update(M::Ones(4, 3), with(M::Ones(4, 3), 1, 1, kInf));
    });
    add("adacore.hpp", "3 rows for n = 4", [] {
        AdaCore<double> a(4);
        a.update(M::Ones(3, 3), M::Ones(3, 3));
    });
    add("adacore.hpp", "listed: 2 indices for 3 rows", [] {
        AdaCore<double> a(4);
        a.update(std::vector<int>{0, 1}, M::Ones(3, 3), M::Ones(3, 3));
    });
    add("adacore.hpp", "listed: index 4 for n = 4", [] {
        AdaCore<double> a(4);
        a.update(ivec({0, 4}), M::Ones(2, 3), M::Ones(2, 3));
    });
    add("adacore.hpp", "listed: index 1 twice", [] {
        AdaCore<double> a(4);
        a.update(ivec({1, 2, 1}), M::Ones(3, 3), M::Ones(3, 3));
    });
    add("adacore.hpp", "before any update", [] { AdaCore<double>(4).smoothed_gradients(); });
    add("adacore.hpp", "a row never updated", [] {
        AdaCore<double> a(4);
        a.update(ivec({0, 1, 2}), M::Ones(3, 3), M::Ones(3, 3));
        a.smoothed_curvature();
    });
    add("adacore.hpp", "eps = 0 and a zero curvature", [] {
        AdaCore<double> a(4, with_field<AO>([](AO& o) { o.eps = 0; }));
        a.update(M::Ones(4, 3), M::Zero(4, 3));
        a.preconditioned();
    });
    add("adacore.hpp", "budget = 5 > n", [] { adacore_updated().select(5); });
    add("adacore.hpp", "select before any update", [] { AdaCore<double>(4).select(2); });
    add("adacore.hpp", "Metric::Cosine and a zero averaged gradient", [] {
        AdaCore<double> a(4, with_field<AO>([](AO& o) { o.metric = Metric::Cosine; }));
        M g = M::Ones(4, 3);
        g.row(2).setZero();
        a.update(g, M::Ones(4, 3));
        a.select(2);
    });
    add("adacore.hpp", "Evaluation::Dense, memory_budget_bytes = 1000", [] {
        AdaCore<double> a(4, with_field<AO>([](AO& o) {
                              o.evaluation = Evaluation::Dense;
                              o.memory_budget_bytes = 1000;
                          }));
        a.update(data(4, 3), M::Ones(4, 3));
        a.select(2);
    });
    add("adacore.hpp", "labels: 3 labels for n = 4", [] { adacore_updated().select(ivec({0, 1, 0}), 2); });
    add("adacore.hpp", "labels: budget = 0", [] { adacore_updated().select(ivec({0, 1, 0, 1}), 0); });

    // ---------------------------------------------------------------- crest.hpp
    using CO = CrestOptions;
    auto crest_with = [](std::function<void(CO&)> set) {
        CO o;
        set(o);
        Crest(Vi::Zero(10), o);
    };
    add("crest.hpp", "batch_size = 0", [=] { crest_with([](CO& o) { o.batch_size = 0; }); });
    add("crest.hpp", "num_threads = -1", [=] { crest_with([](CO& o) { o.num_threads = -1; }); });
    add("crest.hpp", "subset_fraction = 1.5", [=] { crest_with([](CO& o) { o.subset_fraction = 1.5; }); });
    add("crest.hpp", "initial_coresets = 0", [=] { crest_with([](CO& o) { o.initial_coresets = 0; }); });
    add("crest.hpp", "max_coresets = 4 < initial_coresets = 5", [=] { crest_with([](CO& o) { o.max_coresets = 4; }); });
    add("crest.hpp", "batch_num_mul = 0", [=] { crest_with([](CO& o) { o.batch_num_mul = 0; }); });
    add("crest.hpp", "interval_mul = inf", [=] { crest_with([](CO& o) { o.interval_mul = kInf; }); });
    add("crest.hpp", "tau = -1", [=] { crest_with([](CO& o) { o.tau = -1; }); });
    add("crest.hpp", "alpha = NaN", [=] { crest_with([](CO& o) { o.alpha = kNaN; }); });
    add("crest.hpp", "drop_interval = 0", [=] { crest_with([](CO& o) { o.drop_interval = 0; }); });
    add("crest.hpp", "watch_window = 0", [=] { crest_with([](CO& o) { o.watch_window = 0; }); });
    add("crest.hpp", "min_pool_fraction = 2", [=] { crest_with([](CO& o) { o.min_pool_fraction = 2; }); });
    add("crest.hpp", "epsilon = 1", [=] { crest_with([](CO& o) { o.epsilon = 1; }); });
    add("crest.hpp", "watch_window = 65 under LossTable", [=] {
        crest_with([](CO& o) {
            o.learned_rule = CrestLearnedRule::LossTable;
            o.watch_window = 65;
        });
    });
    add("crest.hpp", "first_interval = -1", [=] { crest_with([](CO& o) { o.first_interval = -1; }); });
    add("crest.hpp", "serving = 5", [=] { crest_with([](CO& o) { o.serving = static_cast<CrestServing>(5); }); });
    add("crest.hpp", "learned_rule = 5",
        [=] { crest_with([](CO& o) { o.learned_rule = static_cast<CrestLearnedRule>(5); }); });
    add("crest.hpp", "no labels", [] { Crest(Vi(0)); });
    add("crest.hpp", "a label -1", [] { Crest(ivec({0, 1, -1})); });
    add("crest.hpp", "select before candidates()", [] {
        Crest c = crest_fresh();
        c.select(M::Ones(4, 2), V::Ones(4));
    });
    add("crest.hpp", "one row too few", [] {
        Crest c = crest_fresh();
        const Index R = c.candidates().size();
        c.select(M::Ones(R - 1, 2), V::Ones(R));
    });
    add("crest.hpp", "R x 0 gradients", [] {
        Crest c = crest_fresh();
        const Index R = c.candidates().size();
        c.select(M(R, 0), V::Ones(R));
    });
    add("crest.hpp", "one loss too many", [] {
        Crest c = crest_fresh();
        const Index R = c.candidates().size();
        c.select(M::Ones(R, 2), V::Ones(R + 1));
    });
    add("crest.hpp", "a NaN gradient", [] {
        Crest c = crest_fresh();
        const Index R = c.candidates().size();
        c.select(with(M::Ones(R, 2), 1, 1, kNaN), V::Ones(R));
    });
    add("crest.hpp", "epoch = -1", [] {
        Crest c = crest_fresh();
        const Index R = c.candidates().size();
        c.select(M::Ones(R, 2), V::Ones(R), -1);
    });
    add("crest.hpp", "an infinite loss", [] {
        Crest c = crest_fresh();
        const Index R = c.candidates().size();
        V l = V::Ones(R);
        l[2] = kInf;
        c.select(M::Ones(R, 2), l);
    });
    add("crest.hpp", "a zero row under Metric::Cosine", [] {
        CO o = crest_options();
        o.metric = Metric::Cosine;
        Crest c(coreset_test::round_robin_labels(20, 2), o);
        const Index R = c.candidates().size();
        M g = M::Ones(R, 2);
        g.row(1).setZero();
        c.select(g, V::Ones(R));
    });
    add("crest.hpp", "next_batch before select()", [] { crest_fresh().next_batch(); });
    add("crest.hpp", "begin_region before select()", [] { crest_fresh().begin_region(1.0, V::Ones(2), V::Ones(2)); });
    add("crest.hpp", "loss0 = -1", [] { crest_selected().begin_region(-1.0, V::Ones(2), V::Ones(2)); });
    add("crest.hpp", "an empty gradient", [] { crest_selected().begin_region(1.0, V(0), V(0)); });
    add("crest.hpp", "hessian_diag of length 3 for 2", [] { crest_selected().begin_region(1.0, V::Ones(2), V::Ones(3)); });
    add("crest.hpp", "D = 3 after a first region with D = 4", [] { crest_in_region().begin_region(1.0, V::Ones(3), V::Ones(3)); });
    add("crest.hpp", "a NaN gradient entry",
        [] { crest_selected().begin_region(1.0, vec({1, kNaN}), V::Ones(2)); });
    add("crest.hpp", "an infinite curvature entry",
        [] { crest_selected().begin_region(1.0, V::Ones(2), vec({kInf, 1})); });
    add("crest.hpp", "a zero curvature", [] { crest_selected().begin_region(1.0, V::Ones(2), V::Zero(2)); });
    add("crest.hpp", "record_update outside a region", [] { crest_selected().record_update(V::Ones(4)); });
    add("crest.hpp", "delta_w of length 3 for D = 4", [] { crest_in_region().record_update(V::Ones(3)); });
    add("crest.hpp", "a NaN step", [] { crest_in_region().record_update(vec({0, 0, kNaN, 0})); });
    add("crest.hpp", "model_loss outside a region", [] { crest_selected().model_loss(); });
    add("crest.hpp", "check_indices before select()", [] { crest_fresh().check_indices(); });
    add("crest.hpp", "check outside a region", [] { crest_selected().check(1.0); });
    add("crest.hpp", "true_loss = NaN", [] { crest_in_region().check(kNaN); });
    add("crest.hpp", "i = 20 for n = 20", [] { crest_fresh().is_active(20); });

    // ---------------------------------------------------------------- gradients.hpp
    const M z = data(4, 3);
    const Vi yz = ivec({0, 1, 2, 1});
    const M e = data(4, 2);
    add("gradients.hpp", "0 x 3 logits", [] { softmax(M(0, 3)); });
    add("gradients.hpp", "a NaN logit", [z] { softmax(with(z, 1, 2, kNaN)); });
    add("gradients.hpp", "a probability 1.5",
        [] { logit_hessian_diagonal(M(vec({1.5, -0.5}).transpose()), ModelOutput::Probabilities); });
    add("gradients.hpp", "probabilities summing to 0.5",
        [] { logit_hessian_diagonal(M(vec({0.25, 0.25}).transpose()), ModelOutput::Probabilities); });
    add("gradients.hpp", "3 labels for 4 rows", [z] { cross_entropy(z, ivec({0, 1, 2})); });
    add("gradients.hpp", "a label -1", [z] { cross_entropy(z, ivec({0, 1, -1, 1})); });
    add("gradients.hpp", "a label 3 with C = 3", [z] { cross_entropy(z, ivec({0, 3, 1, 1})); });
    add("gradients.hpp", "a label 3 with C = 3", [z] { logit_gradients(z, ivec({0, 1, 3, 1})); });
    add("gradients.hpp", "4 x 0 embeddings", [z, yz] { last_layer_gradients(z, yz, M(4, 0)); });
    add("gradients.hpp", "an infinite embedding", [z, yz, e] { last_layer_gradients(z, yz, with(e, 0, 1, kInf)); });
    add("gradients.hpp", "3 embedding rows for 4", [z, yz] { last_layer_gradients(z, yz, data(3, 2)); });
    add("gradients.hpp", "cls = 3 with C = 3", [z, yz, e] { class_gradients(z, yz, e, 3); });
    add("gradients.hpp", "a label 5 with C = 3", [z, e] { class_gradients(z, ivec({0, 5, 1, 1}), e, 0); });
    add("gradients.hpp", "3 embedding rows for 4", [z] { last_layer_hessian_diagonal(z, data(3, 2)); });
    const auto identity = [](const V& v) -> V { return v; };
    add("gradients.hpp", "dim = 0", [identity] { hutchinson_diagonal(identity, 0, 1); });
    add("gradients.hpp", "samples = 0", [identity] { hutchinson_diagonal(identity, 3, 0); });
    add("gradients.hpp", "hvp returns length 2 for dim = 3",
        [] { hutchinson_diagonal([](const V&) -> V { return V::Ones(2); }, 3, 1); });
    add("gradients.hpp", "hvp returns a NaN",
        [] { hutchinson_diagonal([](const V&) -> V { return vec({1, kNaN, 1}); }, 3, 1); });
    add("gradients.hpp", "mu = 0", [] { sherman_morrison_solve(0.0, 1.0, V::Ones(3), V::Ones(3)); });
    add("gradients.hpp", "s = -1", [] { sherman_morrison_solve(1.0, -1.0, V::Ones(3), V::Ones(3)); });
    add("gradients.hpp", "x a 2 x 2 matrix", [] { sherman_morrison_solve(1.0, 1.0, M::Ones(2, 2), V::Ones(4)); });
    add("gradients.hpp", "v a 2 x 2 matrix", [] { sherman_morrison_solve(1.0, 1.0, V::Ones(4), M::Ones(2, 2)); });
    add("gradients.hpp", "an empty x", [] { sherman_morrison_solve(1.0, 1.0, V(0), V(0)); });
    add("gradients.hpp", "a NaN in v", [] { sherman_morrison_solve(1.0, 1.0, V::Ones(3), vec({1, kNaN, 1})); });
    add("gradients.hpp", "v of length 2 for 3", [] { sherman_morrison_solve(1.0, 1.0, V::Ones(3), V::Ones(2)); });
    add("gradients.hpp", "rows: mu = NaN", [] { sherman_morrison_solve_rows(kNaN, V::Ones(2), M::Ones(2, 3), M::Ones(2, 3)); });
    add("gradients.hpp", "rows: 0 x 3 x", [] { sherman_morrison_solve_rows(1.0, V(0), M(0, 3), M(0, 3)); });
    add("gradients.hpp", "rows: v 2 x 2 for x 2 x 3",
        [] { sherman_morrison_solve_rows(1.0, V::Ones(2), M::Ones(2, 3), M::Ones(2, 2)); });
    add("gradients.hpp", "rows: 3 coefficients for 2 rows",
        [] { sherman_morrison_solve_rows(1.0, V::Ones(3), M::Ones(2, 3), M::Ones(2, 3)); });
    add("gradients.hpp", "rows: s_1 = -2",
        [] { sherman_morrison_solve_rows(1.0, vec({1, -2}), M::Ones(2, 3), M::Ones(2, 3)); });
    // Issue 20: hostile inputs.
    add("core.hpp", "mean-1 weights past float: {1e30, -1e30, 1e-10}",
        [] { mean_one(Eigen::Vector3f(1e30f, -1e30f, 1e-10f)); });
    add("facility_location.hpp", "a double multiplicity 1e-50 for float rows", [] {
        V m = V::Ones(5);
        m[1] = 1e-50;
        weighted_facility_location(Eigen::MatrixXf(data().cast<float>()), m, 2);
    });
    add("adacore.hpp", "a double gradient 1e300 for float state", [] {
        AdaCore<float> a(2);
        a.update(M::Constant(2, 1, 1e300), M::Ones(2, 1));
    });
    add("adacore.hpp", "a double curvature 1e300 for float state", [] {
        AdaCore<float> a(2);
        a.update(M::Ones(2, 1), M::Constant(2, 1, 1e300));
    });
    add("crest.hpp", "metric = Metric(7)", [] { Crest(Vi::Zero(3), with_field<CrestOptions>([](CrestOptions& o) { o.metric = static_cast<Metric>(7); })); });
    add("crest.hpp", "greedy = Greedy(7)", [] { Crest(Vi::Zero(3), with_field<CrestOptions>([](CrestOptions& o) { o.greedy = static_cast<Greedy>(7); })); });
    add("crest.hpp", "class_budget = ClassBudget(7)",
        [] { Crest(Vi::Zero(3), with_field<CrestOptions>([](CrestOptions& o) { o.class_budget = static_cast<ClassBudget>(7); })); });
    add("crest.hpp", "steps of 1e308 that overflow delta", [] {
        Crest c = crest_in_region();
        c.record_update(V::Constant(4, 1e308));
        c.record_update(V::Constant(4, 1e308));
    });
    add("crest.hpp", "labels a 3 x 2 matrix", [] { Crest(Eigen::MatrixXi::Zero(3, 2)); });
    add("gradients.hpp", "output = ModelOutput(7)", [] { logit_gradients(M::Zero(2, 2), Vi::Zero(2), static_cast<ModelOutput>(7)); });
    add("gradients.hpp", "labels a 2 x 2 matrix", [] { logit_gradients(M::Zero(4, 2), Eigen::MatrixXi::Zero(2, 2)); });
    add("gradients.hpp", "a label 2^64 - 1", [] {
        Eigen::Matrix<std::uint64_t, Eigen::Dynamic, 1> y(2);
        y << 0, ~std::uint64_t(0);
        logit_gradients(M::Zero(2, 3), y);
    });
    add("gradients.hpp", "a solution past double (mu = 1e-300, v = 1e300)",
        [] { sherman_morrison_solve(1e-300, 0.0, V::Ones(1), V::Constant(1, 1e300)); });
    add("craig.hpp", "labels a 5 x 2 matrix", [x] { Craig().select(x, Eigen::MatrixXi::Zero(5, 2), 2); });
    add("adacore.hpp", "an index 2^64 - 1", [] {
        AdaCore<double> a(3);
        Eigen::Matrix<std::uint64_t, Eigen::Dynamic, 1> i(1);
        i << ~std::uint64_t(0);
        a.update(i, M::Ones(1, 2), M::Ones(1, 2));
    });

    // ---------------------------------------------------------------- schedule.hpp
    add("schedule.hpp", "epochs = 0", [] { Schedule({0, 1, 0.0, 1.0}); });
    add("schedule.hpp", "reselect_every = 0", [] { Schedule({5, 0, 0.0, 1.0}); });
    add("schedule.hpp", "warm_fraction = 1", [] { Schedule({5, 1, 1.0, 1.0}); });
    add("schedule.hpp", "budget_fraction = 0", [] { Schedule({5, 1, 0.0, 0.0}); });
    add("schedule.hpp", "epoch 5 of 5", [] { Schedule({5, 1, 0.0, 1.0}).at(5); });
    add("schedule.hpp", "empty batch weights", [] { batch_loss_weights(V(0)); });
    add("schedule.hpp", "a NaN batch weight", [] { batch_loss_weights(vec({1, kNaN})); });
    add("schedule.hpp", "a batch weight 0", [] { batch_loss_weights(vec({1, 0})); });
    add("schedule.hpp", "max_ratio = 0.5", [] { clip_weights(V::Ones(2), 0.5); });
    add("schedule.hpp", "n = -1", [] { epoch_permutation(-1, 0, 0); });
    add("schedule.hpp", "epoch = -1", [] { epoch_permutation(3, 0, -1); });
    return c;
}

/// The outcome of one case: the exception's type name and message ("" when nothing was thrown).
struct Outcome {
    std::string type, message;
};
Outcome run(const ErrorCase& c) {
    try {
        c.trigger();
    } catch (const std::invalid_argument& e) {
        return {"invalid_argument", e.what()};
    } catch (const std::logic_error& e) {
        return {"logic_error", e.what()};
    } catch (const std::exception& e) {
        return {std::string("unexpected ") + typeid(e).name(), e.what()};
    }
    return {"nothing thrown", ""};
}

std::string escape(const std::string& s) {
    std::string out;
    for (char ch : s) {
        if (ch == '|') out += '\\';
        out += ch;
    }
    return out;
}

/// Function and parameter: "Where(): parameter ..." -> ("Where()", "parameter").
std::pair<std::string, std::string> split_message(const std::string& m) {
    const auto colon = m.find("(): ");
    if (colon == std::string::npos) return {"?", "?"};
    const std::string where = m.substr(0, colon + 2);
    const std::string rest = m.substr(colon + 4);
    return {where, rest.substr(0, rest.find(' '))};
}

/// The memory checks report a minimum that includes per-thread scratch: the table is generated
/// with one thread, so that it does not depend on the machine.
struct OneThread {
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    OneThread() { omp_set_num_threads(1); }
    ~OneThread() { omp_set_num_threads(saved); }
#endif
};

std::string render(const std::vector<ErrorCase>& all) {
    const OneThread one;
    std::ostringstream os;
    std::string header;
    for (const auto& c : all) {
        if (c.header != header) {
            header = c.header;
            os << "\n### " << header << "\n\n";
            os << "| Function | Parameter | Failing input | Exception | Message |\n";
            os << "|---|---|---|---|---|\n";
        }
        const Outcome o = run(c);
        const auto wp = split_message(o.message);
        const std::string parameter = o.type == "logic_error" ? "(call order)" : "`" + wp.second + "`";
        os << "| `" << wp.first << "` | " << parameter << " | " << escape(c.input) << " | `std::" << o.type
           << "` | `" << escape(o.message) << "` |\n";
    }
    return os.str();
}

std::string source_dir() {
    std::string file = __FILE__;  // <root>/tests/errors_doc_test.cpp (CMake passes absolute paths)
    for (int up = 0; up < 2; ++up) file = file.substr(0, file.find_last_of("/\\"));
    return file;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

const char* const kBegin = "<!-- BEGIN GENERATED by tests/errors_doc_test.cpp: do not edit by hand -->\n";
const char* const kEnd = "<!-- END GENERATED -->";

/// String literals of C++ source outside comments and static_assert(...), with a flag saying
/// whether each was an argument of check_option (then `owner` is that call's index).
struct Literal {
    std::string text;
    int check_option_call;  // -1 when not inside check_option(...)
};
std::vector<Literal> literals(const std::string& src) {
    std::vector<Literal> out;
    int call = -1, calls = 0, depth = 0, skip_depth = -1, option_depth = -1;
    std::string ident;
    for (std::size_t i = 0; i < src.size(); ++i) {
        const char ch = src[i];
        if (ch == '/' && i + 1 < src.size() && src[i + 1] == '/') {
            i = src.find('\n', i);
            if (i == std::string::npos) break;
            continue;
        }
        if (ch == '/' && i + 1 < src.size() && src[i + 1] == '*') {
            i = src.find("*/", i + 2) + 1;
            continue;
        }
        if (ch == '\'') {  // character literal: '"', '\\', 'x'
            i += (src[i + 1] == '\\') ? 3 : 2;
            continue;
        }
        if (ch == '"') {
            std::string text;
            for (++i; i < src.size() && src[i] != '"'; ++i) {
                if (src[i] == '\\') ++i;
                text += src[i];
            }
            if (skip_depth < 0) out.push_back({text, option_depth >= 0 ? call : -1});
            continue;
        }
        if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_') {
            ident += ch;
            continue;
        }
        if (ch == '(') {
            ++depth;
            if (ident == "static_assert" && skip_depth < 0) skip_depth = depth;
            if (ident == "check_option" && option_depth < 0) {
                option_depth = depth;
                call = calls++;
            }
        } else if (ch == ')') {
            if (depth == skip_depth) skip_depth = -1;
            if (depth == option_depth) option_depth = -1;
            --depth;
        }
        if (!std::isspace(static_cast<unsigned char>(ch))) ident.clear();
    }
    return out;
}

std::string trim(std::string s) {
    const auto got = s.find("(got");
    if (got != std::string::npos) s = s.substr(0, got);
    const char* junk = " :,";
    const auto b = s.find_first_not_of(junk);
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(junk) - b + 1);
}

}  // namespace

TEST_CASE("errors doc: docs/errors.md is the table this test generates from the code", "[errors_doc]") {
    const std::string generated = render(cases());
    const std::string path = source_dir() + "/docs/errors.md";
    std::string doc = read_file(path);
    const auto b = doc.find(kBegin), e = doc.find(kEnd);
    INFO("docs/errors.md must contain the markers\n" << kBegin << kEnd);
    REQUIRE(b != std::string::npos);
    REQUIRE(e != std::string::npos);
    const auto start = b + std::string(kBegin).size();
    const std::string current = doc.substr(start, e - start);
    if (std::getenv("CORESET_WRITE_ERRORS_DOC") && current != generated) {
        doc.replace(start, e - start, generated);
        std::ofstream(path, std::ios::binary) << doc;
        WARN("rewrote the generated block of " << path);
        return;
    }
    if (current != generated) {
        // Show the first line that differs.
        std::istringstream a(current), g(generated);
        std::string la, lg;
        int line = 0;
        while (true) {
            const bool ha = static_cast<bool>(std::getline(a, la)), hg = static_cast<bool>(std::getline(g, lg));
            ++line;
            if (!ha && !hg) break;
            if (!ha) la = "<end>";
            if (!hg) lg = "<end>";
            if (la != lg) break;
        }
        INFO("docs/errors.md has drifted from the code at line " << line << " of the generated block:\n  doc:  " << la
                                                                 << "\n  code: " << lg
                                                                 << "\nRegenerate: CORESET_WRITE_ERRORS_DOC=1 "
                                                                    "coreset_tests \"[errors_doc]\"");
        CHECK(current == generated);
    }
}

TEST_CASE("errors doc: every case throws a std::invalid_argument or std::logic_error of the documented form",
          "[errors_doc]") {
    // invalid_argument: "Where(): parameter <constraint> (got <value>)"; logic_error: "Where(): ...".
    const std::regex bad_input(R"(^[A-Za-z_][A-Za-z_0-9]*(::[A-Za-z_~][A-Za-z_0-9]*)+\(\): [A-Za-z_][A-Za-z_0-9()]* .*\(got .*\)$)");
    const std::regex call_order(R"(^[A-Za-z_][A-Za-z_0-9]*(::[A-Za-z_~][A-Za-z_0-9]*)+\(\): .+$)");
    const OneThread one;
    std::set<std::string> messages;
    for (const auto& c : cases()) {
        const Outcome o = run(c);
        INFO(c.header << ": " << c.input << " -> " << o.type << ": " << o.message);
        if (o.type == "invalid_argument")
            CHECK(std::regex_match(o.message, bad_input));
        else
            CHECK((o.type == "logic_error" && std::regex_match(o.message, call_order)));
        CHECK(messages.insert(o.message).second);  // each row documents a distinct message
    }
}

TEST_CASE("errors doc: every check in the headers appears in docs/errors.md", "[errors_doc]") {
    const OneThread one;
    std::vector<std::string> messages;
    for (const auto& c : cases()) messages.push_back(run(c).message);
    const auto documented = [&](const std::string& fragment) {
        return std::any_of(messages.begin(), messages.end(),
                           [&](const std::string& m) { return m.find(fragment) != std::string::npos; });
    };
    const std::regex where(R"(^[A-Za-z_][A-Za-z_0-9]*(::[A-Za-z_~][A-Za-z_0-9]*)+\(\)$)");
    std::vector<std::string> headers;
    for (const char* h : {"core.hpp", "facility_location.hpp", "craig.hpp", "grad_match.hpp", "adacore.hpp",
                          "crest.hpp", "gradients.hpp", "detail/checks.hpp", "detail/class_split.hpp",
                          "detail/distances.hpp", "detail/nnls.hpp", "detail/rng.hpp", "detail/parallel.hpp",
                          "schedule.hpp"})
        headers.push_back(h);
    std::size_t wheres = 0, fragments = 0, options = 0;
    for (const auto& h : headers) {
        const std::string src = read_file(source_dir() + "/include/coreset/" + h);
        REQUIRE(!src.empty());
        const auto lits = literals(src);
        std::map<int, std::vector<std::string>> option_args;
        for (const auto& l : lits) {
            if (l.check_option_call >= 0) option_args[l.check_option_call].push_back(l.text);
            if (std::regex_match(l.text, where)) {
                ++wheres;
                INFO(h << ": no documented message comes from " << l.text);
                CHECK(documented(l.text + ": "));
            } else if (l.text.find("must") != std::string::npos || l.text.find(" first") != std::string::npos) {
                const std::string f = trim(l.text);
                if (f.size() < 4) continue;
                ++fragments;
                INFO(h << ": no documented message contains \"" << f << "\"");
                CHECK(documented(f));
            }
        }
        for (const auto& kv : option_args) {
            if (kv.second.size() < 2) continue;  // the generic helper itself
            const std::string f = kv.second[kv.second.size() - 2] + " must satisfy " + kv.second.back();
            ++options;
            INFO(h << ": no documented message contains \"" << f << "\"");
            CHECK(documented(f));
        }
    }
    // The scan found what it is meant to find (a broken scanner must not pass silently).
    CHECK(wheres >= 40);
    CHECK(fragments >= 40);
    CHECK(options >= 30);
}
