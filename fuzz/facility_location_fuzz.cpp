// SPDX-License-Identifier: MIT
// libFuzzer harness: the facility-location engine and Craig (plain, weighted, per class, per batch).
// Bytes decode into a scalar type, a shape, values, options, a budget and labels, multiplicities
// or a batch size. Invalid inputs must throw std::invalid_argument naming the function; valid ones
// must give a valid coreset (unique indices in range, positive finite weights, at most `budget`
// rows, weights summing to the ground set's mass) or, only for a memory budget too small, an
// invalid_argument saying so. Naive and Lazy, and Dense and Blocked, must agree bit for bit, and
// the rows times a power of two must give the same picks.
#include <coreset/craig.hpp>
#include <coreset/facility_location.hpp>

#include <map>

#include "fuzz_support.hpp"

using namespace coreset;
using namespace coreset_fuzz;

namespace {

template <class Scalar>
bool same_bits(const Coreset<Scalar>& a, const Coreset<Scalar>& b) {
    return a.indices == b.indices && a.status == b.status && a.weights.size() == b.weights.size() &&
           (a.weights.size() == 0 || std::memcmp(a.weights.data(), b.weights.data(),
                                                 sizeof(Scalar) * static_cast<std::size_t>(a.weights.size())) == 0) &&
           a.objective == b.objective;
}

bool has_zero_row(const Eigen::MatrixXd& x) {
    for (Index i = 0; i < x.rows(); ++i)
        if (!(x.row(i).cwiseAbs().maxCoeff() > 0)) return true;
    return false;
}

template <class Scalar>
void run(Bytes& in, bool bad_allowed) {
    using M = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
    using V = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
    const int mode = in.byte() % 4;  // 0 engine, 1 weighted engine, 2 Craig per class, 3 Craig per batch
    const Index n = in.rarely(40) ? 0 : in.range(1, 40);
    const Index d = in.rarely(40) ? 0 : in.range(1, 5);
    bool bad = false;  // some input is invalid: an exception is required
    const M x = in.matrix<Scalar>(n, d, bad_allowed, bad);
    if (n == 0 || d == 0) bad = true;

    FacilityLocationOptions o;
    o.metric = static_cast<Metric>(in.byte() % 3);
    o.greedy = static_cast<Greedy>(in.byte() % 3);
    const double eps[] = {0.01, 0.5, 1e-9, 0.999};
    o.epsilon = eps[in.byte() % 4];
    o.seed = in.word(8);
    if (in.flag()) o.memory_budget_bytes = std::size_t(1) << in.range(8, 22);
    o.evaluation = static_cast<Evaluation>(in.byte() % 3);
    if (bad_allowed && in.rarely(8)) {
        switch (in.byte() % 5) {
            case 0: o.metric = static_cast<Metric>(4 + in.byte()); break;  // past ExpEuclidean
            case 1: o.greedy = static_cast<Greedy>(-1); break;
            case 2: o.epsilon = in.flag() ? 0.0 : std::numeric_limits<double>::quiet_NaN(); break;
            case 3: o.memory_budget_bytes = 0; break;
            default: o.evaluation = static_cast<Evaluation>(7); break;
        }
        bad = true;
    }
    Index budget = in.range(1, std::max<Index>(n, 1));
    if (bad_allowed && in.rarely(12)) {
        const Index choices[] = {0, -1, n + 1, std::numeric_limits<Index>::min(), std::numeric_limits<Index>::max()};
        budget = choices[in.byte() % 5];
        bad = true;
    }
    note(std::string(sizeof(Scalar) == 4 ? "float" : "double") + " mode " + std::to_string(mode) + ", " +
         std::to_string(n) + " x " + std::to_string(d) + ", metric " + to_string(o.metric) + ", greedy " +
         to_string(o.greedy) + ", epsilon " + std::to_string(o.epsilon) + ", memory " +
         std::to_string(o.memory_budget_bytes) + ", evaluation " + to_string(o.evaluation) + ", budget " +
         std::to_string(budget) + (bad ? ", invalid" : ""));
    if (verbose()) note(show(x));
    const Eigen::MatrixXd xd = x.template cast<double>();
    const bool cosine_zero = o.metric == Metric::Cosine && n > 0 && d > 0 && has_zero_row(xd);

    Coreset<Scalar> c;
    bool threw = false;
    std::string message;
    Eigen::Matrix<Index, Eigen::Dynamic, 1> labels;  // mode 2
    Index max_size = budget;
    double mass = static_cast<double>(n);
    if (mode == 0) {
        if (cosine_zero) bad = true;
        message = run_checked([&] { c = facility_location(x, budget, o); }, "coreset::facility_location(): ", threw);
    } else if (mode == 1) {
        V m(n);
        for (Index i = 0; i < n; ++i) {
            bool b = false;
            double v = std::abs(in.value(false, b));
            if (std::is_same<Scalar, float>::value && v > 3e38) v = 3e38;
            m[i] = static_cast<Scalar>(v);
            if (!(m[i] > Scalar(0))) m[i] = Scalar(1);
        }
        if (bad_allowed && n > 0 && in.rarely(6)) {
            const Index at = in.range(0, n - 1);
            const Scalar choices[] = {Scalar(0), Scalar(-1), std::numeric_limits<Scalar>::quiet_NaN(),
                                      std::numeric_limits<Scalar>::infinity()};
            m[at] = choices[in.byte() % 4];
            bad = true;
        }
        V mm = m;
        if (bad_allowed && in.rarely(16)) {
            mm = V::Ones(n + 1);
            bad = true;
        }
        mass = m.template cast<double>().sum();
        if (verbose()) note("multiplicities\n" + show(mm));
        if (!(mass <= static_cast<double>(std::numeric_limits<Scalar>::max()))) bad = true;
        if (cosine_zero) bad = true;
        message = run_checked([&] { c = weighted_facility_location(x, mm, budget, o); },
                              "coreset::weighted_facility_location(): ", threw);
    } else {
        CraigOptions co;
        co.metric = o.metric;
        co.greedy = o.greedy;
        co.epsilon = o.epsilon;
        co.seed = o.seed;
        co.memory_budget_bytes = o.memory_budget_bytes;
        co.evaluation = o.evaluation;
        co.class_budget = static_cast<ClassBudget>(in.byte() % 2);
        if (mode == 2) {
            bool bad_labels = false;
            Eigen::Matrix<Index, Eigen::Dynamic, 1> y = in.labels(n, in.range(1, 5), bad_allowed, bad_labels);
            labels = y;
            if (bad_allowed && in.rarely(16)) {
                y = Eigen::Matrix<Index, Eigen::Dynamic, 1>::Zero(n + 1);
                bad_labels = true;
            }
            if (bad_labels || cosine_zero) bad = true;
            if (verbose()) note("labels\n" + show(y));
            message = run_checked([&] { c = Craig(co).select(x, y, budget); }, "Craig", threw);
        } else {
            Index bs = in.range(1, n + 2);
            if (in.rarely(16)) bs = std::numeric_limits<Index>::max() - in.byte();
            if (bad_allowed && in.rarely(16)) {
                bs = -static_cast<Index>(in.byte());
                bad = true;
            }
            note("batch_size " + std::to_string(bs));
            if (bs >= 1 && budget >= 1) {
                const Index batches = (budget - 1) / bs + 1;
                max_size = batches > n / bs + 1 ? n : std::min(n, batches * bs);
            }
            message = run_checked([&] { c = Craig(co).select_batches(x, bs, budget); }, "Craig", threw);
            // A zero batch mean under the cosine metric depends on the rounding of the means.
            if (threw && o.metric == Metric::Cosine && contains(message, "must have no zero row")) return;
        }
    }
    if (bad) {
        expect(threw, "an invalid input was accepted");
        return;
    }
    if (threw) {
        expect(contains(message, "memory_budget_bytes must be at least"), "a valid input was rejected: " + message);
        return;
    }
    // The objective is in the caller's units: near the top of double's range its true value (up to
    // n * max multiplicity * max distance) can exceed double, and is then +inf.
    const double big = xd.cwiseAbs().maxCoeff();
    const double far = o.metric == Metric::Cosine            ? 2.0
                       : o.metric == Metric::Euclidean ? 2 * big * std::sqrt(static_cast<double>(d))
                                                       : 4 * big * big * static_cast<double>(d);
    const bool may_overflow = !(far * std::max(mass, 1.0) * static_cast<double>(n) < 1e300);
    check_coreset(c, n, max_size, "facility location", may_overflow);
    expect(c.size() >= 1, "no row selected");
    for (std::size_t t = 1; t < c.objective.size(); ++t)
        expect(c.objective[t] >= c.objective[t - 1], "objective decreased");
    const double total = c.weights.template cast<double>().sum();
    const double tol = std::is_same<Scalar, float>::value ? 1e-5 : 1e-12;
    if (mode == 2) {
        // Per class, each class with picks is represented in full (a budget below the number of
        // classes leaves some classes out).
        std::map<Index, double> size;
        for (Index i = 0; i < n; ++i) size[labels[i]] += 1;
        std::set<Index> picked;
        for (Index i : c.indices) picked.insert(labels[i]);
        mass = 0;
        for (Index l : picked) mass += size[l];
    }
    if (mode != 3) expect(std::abs(total - mass) <= tol * mass, "weights do not sum to the represented mass");
    if (mode == 0 || mode == 2) expect(c.status != Status::BudgetReached || c.size() == budget, "BudgetReached early");

    // Differential: the evaluation mode and (for the exact variants) Naive vs Lazy change nothing.
    if (mode == 0) {
        FacilityLocationOptions a = o, b = o;
        a.memory_budget_bytes = b.memory_budget_bytes = std::size_t(1) << 30;
        a.evaluation = Evaluation::Dense;
        b.evaluation = Evaluation::Blocked;
        if (o.greedy != Greedy::Stochastic) {
            a.greedy = Greedy::Naive;
            b.greedy = Greedy::Lazy;
        }
        expect(same_bits(facility_location(x, budget, a), c), "dense (naive) differs");
        expect(same_bits(facility_location(x, budget, b), c), "blocked (lazy) differs");

        // Scaled copy (issue 20): the rows times 2^k give the same picks, weights and status, and
        // objectives times 2^k (Euclidean) or 4^k (squared), wherever the copy is exact.
        const int k = (static_cast<int>(in.byte()) - 128) * (sizeof(Scalar) == 4 ? 1 : 8);
        const M xs = x.unaryExpr([k](Scalar v) { return std::ldexp(v, k); });
        if (M(xs.unaryExpr([k](Scalar v) { return std::ldexp(v, -k); })) == x && o.metric != Metric::Cosine) {
            const auto cs = facility_location(xs, budget, o);
            expect(cs.indices == c.indices && cs.weights == c.weights && cs.status == c.status,
                   "the rows times 2^" + std::to_string(k) + " gave other picks, weights or status");
            const int e = o.metric == Metric::SquaredEuclidean ? 2 * k : k;
            for (std::size_t t = 0; t < c.objective.size() && t < cs.objective.size(); ++t)
                expect(!(std::isfinite(cs.objective[t]) && std::isfinite(std::ldexp(c.objective[t], e))) ||
                           cs.objective[t] == std::ldexp(c.objective[t], e),
                       "the rows times 2^" + std::to_string(k) + " gave an objective not scaled by 2^" + std::to_string(e));
        }
    }
}

}  // namespace

CORESET_FUZZ_ENTRY(run)
