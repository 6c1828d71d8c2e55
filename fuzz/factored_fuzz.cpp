// SPDX-License-Identifier: MIT
// libFuzzer harness: factored gradients (factored.hpp) through Craig (plain, per class, per batch),
// GradMatch (column sum, user target, per class, per batch) and AdaCore::update. Bytes decode into
// a scalar type, n, C, E, the two factors, a selector, an overload, options and a budget.
//
// Factors that are empty, not finite or of different row counts must make construction throw
// std::invalid_argument naming FactoredGradients::FactoredGradients(), and nothing else. A product
// e_ic h_ik past the scalar's range (1e30 * 1e30 in float) is still a valid factored input for Craig
// and GradMatch, which never form it. Otherwise invalid inputs (budget, labels, target, batch size,
// options, a zero factor row under Metric::Cosine for Craig) must throw invalid_argument naming the
// selector; valid ones must give a valid coreset (unique indices in range, positive finite weights,
// at most `budget` rows; Craig: weights summing to the represented mass, objective finite unless it
// may pass double's range; GradMatch: the last objective is the residual of the returned weights)
// or, only for Craig with a memory budget too small, an invalid_argument saying so. Per batch, a
// batch mean past the scalar's range (an explicit row) must be rejected as such.
//
// GradMatch must also make its first pick whenever some row correlates clearly positively with the
// target (among rows within the scalar's dynamic range of the largest): a correlation pass that
// overflows must not hide them all.
//
// Differential check (double, every product of nonzero factor entries within [1e-10, 1e10]): the
// same selection on g.dense() must have the same outcome (both throw or both succeed, except for
// the representation-dependent memory need and zero batch means under Metric::Cosine), and Craig
// under Naive or Lazy greedy the same weight sum. Indices may differ on near-ties (the factored and
// explicit distances and correlations round differently): such differences are printed
// ("factored differential: ...", with both results) and are not failures, but where the picks
// first differ the two choices must have been a near-tie: Craig's objectives there agree to the
// gain quantisation, GradMatch's two rows score within 1e-6 |g| |r| against the residual r of
// that step. AdaCore's factored update must leave the state of the dense update bit for bit, and
// throw exactly when dense() is not finite.
#include <coreset/adacore.hpp>
#include <coreset/craig.hpp>
#include <coreset/factored.hpp>
#include <coreset/grad_match.hpp>

#include <map>
#include <optional>

#include "fuzz_support.hpp"

using namespace coreset;
using namespace coreset_fuzz;

namespace {

bool has_zero_row(const Eigen::MatrixXd& x) {
    for (Index i = 0; i < x.rows(); ++i)
        if (!(x.row(i).cwiseAbs().maxCoeff() > 0)) return true;
    return false;
}

/// The gradient matrix in double, each entry the double product of the two factors' entries (as
/// GradMatch's load_row computes it): finite for float factors, possibly infinite for double ones.
template <class Scalar>
Eigen::MatrixXd dense_in_double(const FactoredGradients<Scalar>& g) {
    const Index n = g.rows(), C = g.errors().cols(), E = g.activations().cols();
    Eigen::MatrixXd out(n, C * E);
    for (Index i = 0; i < n; ++i)
        for (Index c = 0; c < C; ++c)
            for (Index k = 0; k < E; ++k)
                out(i, c * E + k) =
                    static_cast<double>(g.errors()(i, c)) * static_cast<double>(g.activations()(i, k));
    return out;
}

std::string show_result(const char* who, const Coreset<double>& c) {
    std::string r = std::string(who) + ": " + to_string(c.status) + ", indices";
    for (Index i : c.indices) r += " " + std::to_string(i);
    r += ", weights";
    char buf[40];
    for (Index j = 0; j < c.weights.size(); ++j) {
        std::snprintf(buf, sizeof buf, " %.17g", c.weights[j]);
        r += buf;
    }
    if (!c.objective.empty()) {
        std::snprintf(buf, sizeof buf, ", objective %.17g", c.objective.back());
        r += buf;
    }
    return r;
}

/// The factors, for the printout of an index mismatch.
std::string& factors_text() {
    static std::string t;
    return t;
}
/// Counts and prints a differential run whose indices differ (not by itself a failure).
void report_mismatch(const Coreset<double>& f, const Coreset<double>& d) {
    static long count = 0;
    ++count;
    std::fprintf(stderr, "factored differential: indices differ (#%ld)\n%s%s%s\n%s\n", count, trace().c_str(),
                 verbose() ? "" : factors_text().c_str(), show_result("factored", f).c_str(),
                 show_result("dense", d).c_str());
}

/// Outcome of the same call on g.dense(): the class (threw or not) must match, unless either side
/// threw for a reason that legitimately depends on the representation. Returns whether both
/// succeeded with different indices. `craig_sum`: Craig under Naive or Lazy greedy (weight sums
/// and near-ties checked); `reach`: then the largest distance between rows in the metric's units,
/// which bounds every gain.
template <class Call>
bool differential(const std::optional<Coreset<double>>& mine, const std::string& my_message, Call&& on_dense,
                  const char* where, bool craig_sum, bool batches, double reach = 0) {
    Coreset<double> d;
    bool threw = false;
    const std::string message = run_checked([&] { d = on_dense(); }, where, threw);
    // The engine's memory need differs between the two forms (factors vs rows); a zero batch mean
    // under the cosine metric depends on how the means round.
    const auto representation = [&](const std::string& m) {
        return contains(m, "memory_budget_bytes must be at least") ||
               (batches && contains(m, "must have no zero row"));
    };
    if (representation(message) || representation(my_message)) return false;
    expect(threw == !mine.has_value(), std::string("factored and dense outcomes differ: factored ") +
                                           (mine ? "succeeded" : "threw " + my_message) + ", dense " +
                                           (threw ? "threw " + message : "succeeded"));
    if (!mine) return false;
    const Coreset<double>& f = *mine;
    if (craig_sum) {
        const double sf = f.weights.sum(), sd = d.weights.sum();
        if (batches)
            expect(std::abs(sf - sd) <= 1e-9 * std::max(1.0, std::abs(sd)), "weight sums differ (per batch)");
        else
            expect(sf == sd,
                   "weight sums differ: factored " + std::to_string(sf) + ", dense " + std::to_string(sd));
    }
    if (f.indices == d.indices) return false;
    report_mismatch(f, d);
    if (!craig_sum) return true;
    // Craig: where the picks first differ, the two gains must have been a near-tie (the objective
    // before that pick agrees, being the same picks), up to the engine's gain quantisation (2^-30
    // of the largest distance per row) and rounding; a factored distance that is plain wrong shows
    // up as a different objective.
    std::size_t t = 0;
    while (t < f.indices.size() && t < d.indices.size() && f.indices[t] == d.indices[t]) ++t;
    if (t >= f.objective.size() || t >= d.objective.size()) return true;
    const double of = f.objective[t], od = d.objective[t];
    const double tol =
        1e-6 * std::max(std::abs(of), std::abs(od)) +
        8 * reach * static_cast<double>(f.weights.size() > 0 ? f.weights.sum() : 1) * std::ldexp(1.0, -30);
    // One side's pick at t gained (next to) nothing: the other stopped there (Exhausted), or, per
    // class, moved on to the next class: a near-tie between a tiny gain and none. Rows parallel to
    // a pick are 0 apart under the cosine metric only up to the rounding of their normalisation.
    const double gf = of - (t > 0 ? f.objective[t - 1] : 0.0), gd = od - (t > 0 ? d.objective[t - 1] : 0.0);
    if (std::min(std::abs(gf), std::abs(gd)) <= tol) return true;
    expect(std::abs(of - od) <= tol, "Craig's factored and dense picks differ at step " + std::to_string(t) +
                                         " with objectives " + std::to_string(of) + " and " +
                                         std::to_string(od) + ": not a near-tie");
    return true;
}

/// Records GradMatch's picks; stops after step `stop` (when >= 0).
struct Picks {
    std::vector<Index>* picks;
    Index stop;
    bool on_step(const StepInfo& s) {
        if (picks) picks->push_back(s.picked);
        return stop >= 0 && s.step >= stop;
    }
};

/// A GradMatch index mismatch (plain or target): replays both forms recording their picks, and at
/// the first step where they differ prints how far apart the two rows' scores were against the
/// residual both had then (the dense run stopped just before that step). A near-tie is a gap at
/// rounding level, relative to |g| |r|; a gap above 1e-6 is a failure (a factored correlation that
/// is wrong).
template <class Target>
void grad_match_tie(const GradMatchOptions& o, const std::vector<Index>& pf, const Eigen::MatrixXd& x,
                    const Eigen::VectorXd& target, const Target* t, Index budget) {
    std::vector<Index> pd;
    GradMatch gm(o);
    Picks rec{&pd, -1};
    if (t)
        gm.select(x, coreset::Target(*t), budget, rec);
    else
        gm.select(x, budget, rec);
    std::size_t s = 0;
    while (s < pf.size() && s < pd.size() && pf[s] == pd[s]) ++s;
    if (s >= pf.size() || s >= pd.size()) {
        std::fprintf(stderr,
                     "factored differential: GradMatch same picks, different support (%zu and %zu picks)\n",
                     pf.size(), pd.size());
        return;
    }
    Eigen::VectorXd r = target;
    if (s > 0) {
        Picks stop{nullptr, static_cast<Index>(s) - 1};
        const Coreset<double> before = t ? gm.select(x, coreset::Target(*t), budget, stop) : gm.select(x, budget, stop);
        for (Index j = 0; j < before.size(); ++j)
            r -= before.weights[j] * x.row(before.indices[static_cast<std::size_t>(j)]).transpose();
    }
    const auto score = [&](Index i) {
        const double v = x.row(i).dot(r);
        return o.normalize ? v / x.row(i).norm() : v;
    };
    // Relative to the scale of a score's rounding, |g| |r| (|r| normalised): scores that are
    // themselves rounding noise (a residual orthogonal to every row) differ by any ratio.
    const double a = score(pf[s]), b = score(pd[s]);
    const double unit = r.norm() * (o.normalize ? 1.0 : std::max(x.row(pf[s]).norm(), x.row(pd[s]).norm()));
    const double gap = std::abs(a - b) / std::max(unit, 1e-300);
    std::fprintf(
        stderr,
        "factored differential: GradMatch first differs at step %zu: rows %ld and %ld, scores %.17g and "
        "%.17g, relative gap %.3g\n",
        s, static_cast<long>(pf[s]), static_cast<long>(pd[s]), a, b, gap);
    expect(gap <= 1e-6, "GradMatch's factored and dense picks differ at step " + std::to_string(s) +
                            ": not a near-tie (relative score gap " + std::to_string(gap) + ")");
}

template <class Scalar>
using Factor = typename FactoredGradients<Scalar>::Matrix;

// AdaCore: the factored update leaves the dense update's state bit for bit; both throw when a
// product is not finite in Scalar.
template <class Scalar>
void run_adacore(Bytes& in, const FactoredGradients<Scalar>& g) {
    const Index n = g.rows(), C = g.errors().cols(), E = g.activations().cols();
    bool bad = false;
    const Factor<Scalar> he = in.matrix<Scalar>(n, C, false, bad), hh = in.matrix<Scalar>(n, E, false, bad);
    const FactoredGradients<Scalar> hg(he, hh);
    AdaCoreOptions o;
    o.beta1 = in.flag() ? 0.9 : 0.0;
    o.beta2 = in.flag() ? 0.999 : 0.5;
    const int updates = 1 + in.byte() % 3;
    note("AdaCore, " + std::to_string(updates) + " updates");
    AdaCore<Scalar> fa(n, o), da(n, o);
    for (int u = 0; u < updates; ++u) {
        const Factor<Scalar> gd = g.dense(), hd = hg.dense();
        const bool finite = gd.allFinite() && hd.allFinite();
        bool threw_f = false, threw_d = false;
        const std::string mf = run_checked([&] { fa.update(g, hg); }, "AdaCore::update()", threw_f);
        const std::string md = run_checked([&] { da.update(gd, hd); }, "AdaCore::update()", threw_d);
        expect(threw_f == !finite, "factored AdaCore::update: threw " + std::to_string(threw_f) +
                                       " for dense " + (finite ? "finite" : "not finite") + ": " + mf);
        expect(threw_d == threw_f, "factored and dense AdaCore::update outcomes differ: " + mf + " / " + md);
        if (threw_f) return;
    }
    const Factor<Scalar> a = fa.smoothed_gradients(), b = da.smoothed_gradients();
    const Factor<Scalar> ah = fa.smoothed_curvature(), bh = da.smoothed_curvature();
    expect(std::memcmp(a.data(), b.data(), sizeof(Scalar) * static_cast<std::size_t>(a.size())) == 0 &&
               std::memcmp(ah.data(), bh.data(), sizeof(Scalar) * static_cast<std::size_t>(ah.size())) == 0,
           "factored AdaCore state differs from the dense one");
}

template <class Scalar>
void run(Bytes& in, bool bad_allowed) {
    using V = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
    const int selector = in.byte() % 5;  // 0, 1 Craig; 2, 3 GradMatch; 4 AdaCore
    const Index n = in.rarely(40) ? 0 : in.range(1, 40);
    const Index C = in.rarely(40) ? 0 : in.range(1, 6);
    const Index E = in.rarely(40) ? 0 : in.range(1, 8);
    bool bad_factors = false;  // construction must throw
    const Factor<Scalar> errors = in.matrix<Scalar>(n, C, bad_allowed, bad_factors);
    Index hrows = n;
    if (bad_allowed && in.rarely(24)) hrows = n + 1 + in.byte() % 2;
    const Factor<Scalar> activations = in.matrix<Scalar>(hrows, E, bad_allowed, bad_factors);
    if (n == 0 || C == 0 || E == 0 || hrows != n) bad_factors = true;
    const bool via_function = in.flag();
    note(std::string(sizeof(Scalar) == 4 ? "float" : "double") + " selector " + std::to_string(selector) +
         ", n " + std::to_string(n) + ", C " + std::to_string(C) + ", E " + std::to_string(E) +
         (hrows != n ? ", activations with " + std::to_string(hrows) + " rows" : "") +
         (bad_factors ? ", invalid factors" : ""));
    if (verbose()) note("errors\n" + show(errors) + "activations\n" + show(activations));

    std::optional<FactoredGradients<Scalar>> holder;
    bool threw = false;
    run_checked(
        [&] {
            if (via_function)
                holder.emplace(factored(errors, activations));
            else
                holder.emplace(Factor<Scalar>(errors), Factor<Scalar>(activations));
        },
        "FactoredGradients::FactoredGradients(): ", threw);
    if (bad_factors) {
        expect(threw, "invalid factors were accepted");
        return;
    }
    expect(!threw && holder.has_value(), "valid factors were rejected");
    const FactoredGradients<Scalar>& g = *holder;
    expect(g.rows() == n && g.cols() == C * E, "wrong shape");
    if (selector == 4) {
        run_adacore(in, g);
        return;
    }

    const Index d = C * E;
    const Eigen::MatrixXd ed = errors.template cast<double>(), hd = activations.template cast<double>();
    const Eigen::MatrixXd xd = dense_in_double(g);
    // The differential check runs where both forms are well conditioned: double, every entry of
    // dense() zero or of moderate magnitude.
    bool moderate = std::is_same<Scalar, double>::value && n <= 40;
    for (Index i = 0; i < n; ++i)
        for (Index j = 0; j < d; ++j) {
            // Zero only as the product of a zero factor entry (not by underflow).
            const double a = ed(i, j / E), b = hd(i, j % E), v = std::abs(xd(i, j));
            if (a != 0 && b != 0 && !(v >= 1e-10 && v <= 1e10)) moderate = false;
        }
    if (moderate) factors_text() = "errors\n" + show(ed) + "activations\n" + show(hd);
    const bool craig = selector < 2;
    const int mode =
        in.byte() % (craig ? 3 : 4);  // Craig: 0 plain, 1 per class, 2 per batch;
                                      // GradMatch: 0 column sum, 1 target, 2 per class, 3 per batch
    bool bad = false;
    Index budget = in.range(1, n);
    if (bad_allowed && in.rarely(12)) {
        const Index choices[] = {0, -1, n + 1, std::numeric_limits<Index>::min(),
                                 std::numeric_limits<Index>::max()};
        budget = choices[in.byte() % 5];
        bad = true;
    }
    Eigen::Matrix<Index, Eigen::Dynamic, 1> labels;
    Index bs = 1, max_size = budget;
    const auto decode_labels = [&] {
        bool bad_labels = false;
        labels = in.labels(n, in.range(1, 5), bad_allowed, bad_labels);
        if (bad_allowed && in.rarely(16)) {
            labels = Eigen::Matrix<Index, Eigen::Dynamic, 1>::Zero(n + 1);
            bad_labels = true;
        }
        if (bad_labels) bad = true;
        if (verbose()) note("labels\n" + show(labels));
    };
    const auto decode_batch = [&] {
        bs = in.range(1, n + 2);
        if (in.rarely(16)) bs = std::numeric_limits<Index>::max() - in.byte();
        if (bad_allowed && in.rarely(16)) {
            bs = -static_cast<Index>(in.byte());
            bad = true;
        }
        if (bs >= 1 && budget >= 1) {
            const Index batches = (budget - 1) / bs + 1;
            max_size = batches > n / bs + 1 ? n : std::min(n, batches * bs);
        }
        // A batch mean of products can pass Scalar's range (one product already can): then the
        // selection must refuse it. Computed as factored.hpp's batch_means does.
        bool overflow = false;
        if (bs >= 1)
            for (Index lo = 0; lo < n; lo += std::min(bs, n - lo)) {
                const Index len = std::min(bs, n - lo);
                const Factor<double> mean =
                    (g.errors().middleRows(lo, len).template cast<double>() / static_cast<double>(len))
                        .transpose() *
                    g.activations().middleRows(lo, len).template cast<double>();
                if (!mean.template cast<Scalar>().allFinite()) overflow = true;
            }
        if (overflow) bad = true;
        note("batch_size " + std::to_string(bs) + (overflow ? ", a batch mean past the scalar's range" : ""));
    };

    if (craig) {
        CraigOptions o;
        o.metric = static_cast<Metric>(in.byte() % 3);
        o.greedy = static_cast<Greedy>(in.byte() % 3);
        const double eps[] = {0.01, 0.5, 1e-9, 0.999};
        o.epsilon = eps[in.byte() % 4];
        o.seed = in.word(8);
        if (in.flag()) o.memory_budget_bytes = std::size_t(1) << in.range(8, 22);
        o.evaluation = static_cast<Evaluation>(in.byte() % 3);
        o.class_budget = static_cast<ClassBudget>(in.byte() % 2);
        if (bad_allowed && in.rarely(8)) {
            switch (in.byte() % 6) {
                case 0: o.metric = static_cast<Metric>(4 + in.byte()); break;  // past ExpEuclidean
                case 1: o.greedy = static_cast<Greedy>(-1); break;
                case 2: o.epsilon = in.flag() ? 0.0 : std::numeric_limits<double>::quiet_NaN(); break;
                case 3: o.memory_budget_bytes = 0; break;
                case 4: o.class_budget = static_cast<ClassBudget>(5); break;
                default: o.evaluation = static_cast<Evaluation>(7); break;
            }
            bad = true;
        }
        if (mode == 1) decode_labels();
        if (mode == 2) decode_batch();
        note("Craig mode " + std::to_string(mode) + ", metric " + to_string(o.metric) + ", greedy " +
             to_string(o.greedy) + ", epsilon " + std::to_string(o.epsilon) + ", memory " +
             std::to_string(o.memory_budget_bytes) + ", evaluation " + to_string(o.evaluation) + ", " +
             to_string(o.class_budget) + ", budget " + std::to_string(budget) + (bad ? ", invalid" : ""));
        // A gradient row is zero exactly when its error or its activation row is.
        if (o.metric == Metric::Cosine && mode != 2 && (has_zero_row(ed) || has_zero_row(hd))) bad = true;

        Coreset<Scalar> c;
        const auto call = [&](const auto& rows) {
            Craig craig_(o);
            if (mode == 0) return craig_.select(rows, budget);
            if (mode == 1) return craig_.select(rows, labels, budget);
            return craig_.select_batches(rows, bs, budget);
        };
        const std::string message = run_checked([&] { c = call(g); }, "Craig", threw);
        const bool cosine_batch =
            threw && mode == 2 && o.metric == Metric::Cosine && contains(message, "must have no zero row");
        if (bad) {
            expect(threw, "an invalid input was accepted");
        } else if (threw) {
            expect(contains(message, "memory_budget_bytes must be at least") || cosine_batch,
                   "a valid input was rejected: " + message);
        } else {
            // The objective is in the caller's units: its true value (up to n * the largest
            // distance) can exceed double, and is then +inf.
            const double big = ed.cwiseAbs().maxCoeff() * hd.cwiseAbs().maxCoeff();
            const double far = o.metric == Metric::Cosine      ? 2.0
                               : o.metric == Metric::Euclidean ? 2 * big * std::sqrt(static_cast<double>(d))
                                                               : 4 * big * big * static_cast<double>(d);
            const bool may_overflow = !(far * static_cast<double>(n) * static_cast<double>(n) < 1e300);
            check_coreset(c, n, max_size, "Craig", may_overflow);
            expect(c.size() >= 1, "no row selected");
            for (std::size_t t = 1; t < c.objective.size(); ++t)
                expect(c.objective[t] >= c.objective[t - 1], "objective decreased");
            const double total = c.weights.template cast<double>().sum();
            const double tol = std::is_same<Scalar, float>::value ? 1e-5 : 1e-12;
            double mass = static_cast<double>(n);
            if (mode == 1) {
                std::map<Index, double> size;
                for (Index i = 0; i < n; ++i) size[labels[i]] += 1;
                std::set<Index> picked;
                for (Index i : c.indices) picked.insert(labels[i]);
                mass = 0;
                for (Index l : picked) mass += size[l];
            }
            if (mode != 2) {
                expect(std::abs(total - mass) <= tol * mass, "weights do not sum to the represented mass");
                expect(c.status != Status::BudgetReached || c.size() == budget, "BudgetReached early");
            }
        }
        if constexpr (std::is_same<Scalar, double>::value) {
            if (moderate) {
                std::optional<Coreset<double>> mine;
                if (!threw) mine = c;
                const Eigen::MatrixXd x = g.dense();
                // The largest distance between rows (it bounds those between batch means too; the
                // cosine distance is at most 2).
                double reach = o.metric == Metric::Cosine ? 2.0 : 0.0;
                if (o.metric != Metric::Cosine)
                    for (Index i = 0; i < n; ++i)
                        for (Index j = 0; j < i; ++j) {
                            const double dist = (xd.row(i) - xd.row(j)).norm();
                            reach = std::max(reach, o.metric == Metric::Euclidean ? dist : dist * dist);
                        }
                differential(
                    mine, message, [&] { return call(x); }, "Craig", o.greedy != Greedy::Stochastic,
                    mode == 2, reach);
            }
        }
        return;
    }

    // GradMatch.
    const GradMatchOptions o = grad_match_options(in, bad_allowed, bad);
    Eigen::VectorXd target = Eigen::VectorXd::Zero(d);  // modes 0 and 1, in double
    for (Index i = 0; i < n; ++i) target += xd.row(i).transpose();
    V t;
    if (mode == 1) {
        bool bad_target = false;
        t = in.matrix<Scalar>(d, 1, bad_allowed, bad_target);
        if (bad_allowed && in.rarely(12)) {
            t = V::Ones(d + 1);
            bad_target = true;
        }
        if (bad_target) bad = true;
        target = t.template cast<double>();
        if (verbose()) note("target\n" + show(t));
    }
    if (mode == 2) decode_labels();
    if (mode == 3) decode_batch();
    note("GradMatch mode " + std::to_string(mode) + ", lambda " + std::to_string(o.lambda) + ", tolerance " +
         std::to_string(o.tolerance) + ", " + to_string(o.nonnegativity) +
         (o.normalize ? ", normalize" : "") + ", budget " + std::to_string(budget) +
         (bad ? ", invalid" : ""));
    Coreset<Scalar> c;
    const auto call = [&](const auto& rows) {
        GradMatch gm(o);
        if (mode == 0) return gm.select(rows, budget);
        if (mode == 1) return gm.select(rows, Target(t), budget);
        if (mode == 2) return gm.select(rows, labels, budget);
        return gm.select_batches(rows, bs, budget);
    };
    const std::string message = run_checked([&] { c = call(g); }, "GradMatch", threw);
    if constexpr (std::is_same<Scalar, double>::value) {
        if (moderate && (mode != 1 || target.cwiseAbs().maxCoeff() <= 1e10)) {
            std::optional<Coreset<double>> mine;
            if (!threw) mine = c;
            const Eigen::MatrixXd x = g.dense();
            if (differential(
                    mine, message, [&] { return call(x); }, "GradMatch", false, mode == 3) &&
                mode <= 1) {
                std::vector<Index> pf;  // the factored run's picks, replayed
                Picks rec{&pf, -1};
                GradMatch gm(o);
                if (mode == 0)
                    gm.select(g, budget, rec);
                else
                    gm.select(g, Target(t), budget, rec);
                grad_match_tie(o, pf, x, target, mode == 1 ? &t : nullptr, budget);
            }
        }
    }
    if (bad) {
        expect(threw, "an invalid input was accepted");
        return;
    }
    expect(!threw, "a valid input was rejected: " + message);
    if (verbose()) {
        std::string r = "result:";
        for (Index j = 0; j < c.size(); ++j)
            r += " " + std::to_string(c.indices[static_cast<std::size_t>(j)]) + ":" +
                 std::to_string(double(c.weights[j]));
        note(r);
    }
    // As grad_match_fuzz: with nonzero products outside [1e-100, 1e100] (only double factors make
    // them) GRAD-MATCH's unscaled double sums of squares can overflow; results stay valid but the
    // objective is not checked. Likewise with rows whose norms are more than 1e60 apart: the dual
    // (d x d) support solve factors lambda I + A^T A, conditioned as the square of that ratio, and
    // breaks down (residuals of 1e60, then inf, for atoms 1e89 apart; the explicit rows give the
    // same, bit for bit: a limit of GRAD-MATCH's solver, docs/reliability.md, not of the factors).
    bool beyond = false;
    const auto extreme = [](double v) { return v != 0 && !(std::abs(v) >= 1e-100 && std::abs(v) <= 1e100); };
    for (Index i = 0; i < xd.size(); ++i) beyond = beyond || extreme(xd.data()[i]);
    for (Index j = 0; j < target.size(); ++j) beyond = beyond || extreme(target[j]);
    {
        const Eigen::VectorXd norms = xd.rowwise().norm();
        double lo = std::numeric_limits<double>::infinity(), hi = 0;
        for (Index i = 0; i < n; ++i)
            if (norms[i] > 0) {
                lo = std::min(lo, norms[i]);
                hi = std::max(hi, norms[i]);
            }
        if (hi > 1e60 * lo) beyond = true;
    }
    check_grad_match(c, xd, target, n, max_size, budget, mode, o, beyond);
    if (beyond || mode >= 2) return;
    const double tnorm = target.norm();
    // The first pick: when some row correlates clearly positively with the target, GRAD-MATCH
    // must not stop before its first pick (Exhausted with no objective entry; an empty support
    // after picks is possible under DropMostNegative, which can drop every atom): a correlation
    // pass that overflows (products past float's range) must not hide every candidate. Only rows
    // whose products are within Scalar's dynamic range of the largest product count: the pass
    // works on one scale (the largest product near 1), where a row 1e-25 times smaller (float)
    // underflows, as it cannot be held next to the largest in dense() either.
    if (c.objective.empty() && tnorm > 0) {
        const double range = std::is_same<Scalar, float>::value ? 1e-25 : 1e-250;
        const Eigen::VectorXd size = xd.cwiseAbs().rowwise().maxCoeff();
        // Scores as the library ranks them: g.t / |g| normalised, else g.t against the largest |g|.
        const Eigen::VectorXd norms = xd.rowwise().norm();
        double best = 0;
        for (Index i = 0; i < n; ++i)
            if (norms[i] > 0 && size[i] >= range * size.maxCoeff())
                best = std::max(
                    best, xd.row(i).dot(target) / ((o.normalize ? norms[i] : norms.maxCoeff()) * tnorm));
        expect(!(best > 1e-3), "no row picked although row correlation / (|g| |t|) reaches " +
                                   std::to_string(best) + " (status " + to_string(c.status) + ")");
    }
}

}  // namespace

CORESET_FUZZ_ENTRY(run)
