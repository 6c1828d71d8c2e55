// SPDX-License-Identifier: MIT
/// \file grad_match.hpp
/// \brief GRAD-MATCH (Killamsetty et al., ICML 2021): a weighted subset whose weighted gradient
/// sum matches a target, by non-negative ridge orthogonal matching pursuit.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <ostream>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "core.hpp"
#include "detail/checks.hpp"
#include "detail/class_split.hpp"
#include "detail/nnls.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"


namespace coreset {

/// How GRAD-MATCH keeps the weights non-negative after each OMP pick.
enum class NonNegativity {
    /// Exact non-negative ridge least squares on the support (Lawson-Hanson active set,
    /// warm-started from the previous solution). The default.
    ActiveSet,
    /// CORDS' rule: while some unconstrained weight is <= 0, drop the most negative atom and
    /// re-solve. Cheaper per drop, not an exact non-negative solution.
    DropMostNegative
};

inline const char* to_string(NonNegativity v) noexcept {
    switch (v) {
        case NonNegativity::ActiveSet: return "ActiveSet";
        case NonNegativity::DropMostNegative: return "DropMostNegative";
    }
    return "unknown NonNegativity";
}
inline std::ostream& operator<<(std::ostream& os, NonNegativity v) { return os << to_string(v); }

/// Options of GradMatch. Defaults are the paper's (workshop version, App. A.3.3).
struct GradMatchOptions {
    /// Ridge parameter \f$\lambda \ge 0\f$ of \f$\|\sum_j w_j g_j - t\|^2 + \lambda\|w\|^2\f$.
    /// CORDS' per-batch configuration and its CPU path use 0; DeepCore hard-wires 1.
    double lambda = 0.5;
    /// Stop when \f$\|r\| / \|t\| <\f$ tolerance (Status::ToleranceReached); >= 0, 0 = never.
    double tolerance = 1e-10;
    /// Non-negativity policy applied after each pick.
    NonNegativity nonnegativity = NonNegativity::ActiveSet;
    /// Pick by \f$g_j^T r / \|g_j\|\f$ instead of \f$g_j^T r\f$ (textbook OMP; no reference
    /// implementation normalises, so large-norm gradients are favoured by default).
    bool normalize = false;
    /// How the per-class overload splits the budget over classes (ClassBudget::Ceil: CORDS'
    /// ceil(k n_c / n), which can give more than k rows in all).
    ClassBudget class_budget = ClassBudget::Proportional;
    /// Threads of the selector's own OpenMP regions (and of the Eigen products it runs outside
    /// them), >= 0; 0 (the default) = OpenMP's default (OMP_NUM_THREADS, else the number of
    /// cores). Bounds only the library's work: the caller's code and other threads are unaffected.
    /// Results do not depend on it.
    int num_threads = 0;

    /// \name CORDS compatibility (all off by default; GradMatchOptions::cords() turns them on)
    /// @{
    /// A row whose weight reached 0 and left the support may be picked again (CORDS removes it from
    /// its index list, so its arg-max can return it). Default false: it leaves for good.
    bool repick_dropped = false;
    /// The budget counts OMP iterations (picks, whatever is dropped after them; CORDS'
    /// `for i in range(nnz)`), so fewer than `budget` atoms may remain; Status::BudgetReached after
    /// `budget` picks. Default false: it counts atoms with positive weight.
    bool budget_counts_iterations = false;
    /// The arg-max is taken over all rows, and selection stops (Status::Exhausted) when it falls
    /// on a row of the support, or on a dropped row while repick_dropped is false (CORDS'
    /// `if index in indices: break`; with lambda > 0 a support row keeps the correlation
    /// lambda w_j > 0, so this often ends near d atoms whatever the budget).
    /// Default false: the arg-max is over the rows never picked (or dropped, with repick_dropped).
    bool stop_on_reselect = false;
    /// The first atom of an empty support gets the unregularised weight \f$g^T t / \|g\|^2\f$
    /// (CORDS) instead of the ridge solution \f$g^T t / (\|g\|^2 + \lambda)\f$; every later pick
    /// re-solves the ridge problem on the whole support. Default false.
    bool unregularized_first_atom = false;
    /// When fewer than `budget` rows were selected, add uniformly drawn unselected rows with weight
    /// 1 until there are `budget` (CORDS' GradMatchStrategy, after merging the classes). Their
    /// weight is not on the scale of the others (about n / k) and they have no objective entry.
    /// Default false.
    bool random_fill = false;
    /// Seed of random_fill's draws (the library's own generator). Default 0.
    std::uint64_t seed = 0;
    /// @}

    /// CORDS' GRAD-MATCH (decile-team/cords `OrthogonalMP_REG` inside `GradMatchStrategy`, with the
    /// configuration files' lambda = 0.5 and eps = 1e-100): DropMostNegative, no normalisation,
    /// ClassBudget::Ceil, and every option of the group above on, random_fill included (the
    /// strategy always fills). Set random_fill = false for the solver's own output.
    static GradMatchOptions cords() {
        GradMatchOptions o;
        o.lambda = 0.5;
        o.tolerance = 1e-100;
        o.nonnegativity = NonNegativity::DropMostNegative;
        o.normalize = false;
        o.class_budget = ClassBudget::Ceil;
        o.repick_dropped = true;
        o.budget_counts_iterations = true;
        o.stop_on_reselect = true;
        o.unregularized_first_atom = true;
        o.random_fill = true;
        return o;
    }

    /// \throws std::invalid_argument naming the first option out of range.
    void validate() const {
        constexpr const char* where = "GradMatchOptions::validate()";
        detail::check_option(lambda >= 0, lambda, where, "lambda", "lambda >= 0");
        detail::require(std::isfinite(lambda), where, "lambda must be finite (got ", lambda, ")");
        detail::check_option(tolerance >= 0, tolerance, where, "tolerance", "tolerance >= 0");
        detail::require(std::isfinite(tolerance), where, "tolerance must be finite (got ", tolerance, ")");
        detail::require(nonnegativity == NonNegativity::ActiveSet || nonnegativity == NonNegativity::DropMostNegative,
                        where, "nonnegativity must be ActiveSet or DropMostNegative (got ",
                        static_cast<int>(nonnegativity), ")");
        detail::require(detail::is_class_budget(class_budget), where,
                        "class_budget must be Proportional, Equal, Ceil or EqualCeil (got ", static_cast<int>(class_budget),
                        ")");
        detail::check_option(num_threads >= 0, num_threads, where, "num_threads", "num_threads >= 0");
    }
};

namespace detail {

/// Rows per block of the correlation pass. Fixed (not per thread) so that every row's dot
/// product is computed by the same kernel path whatever the number of threads.
constexpr Eigen::Index kGradMatchBlock = 256;

/// The working layout of the gradients: column-major, so that c = G r is d contiguous axpy
/// passes (4x faster than row-wise dot products at d = 10, equal at d = 512). A column-major
/// input is used in place; any other is copied once.
template <class Scalar>
using GradRef = Eigen::Ref<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>>;

/// Column sums of a matrix, accumulated in double.
template <class Derived>
Eigen::VectorXd column_sum(const Eigen::MatrixBase<Derived>& x) {
    Eigen::VectorXd t(x.cols());
    for (Eigen::Index j = 0; j < x.cols(); ++j) t[j] = x.col(j).template cast<double>().sum();
    return t;
}

/// Row norms of the working copy, in double.
template <class Scalar>
Eigen::VectorXd row_norms(const GradRef<Scalar>& g) {
    Eigen::VectorXd norms = Eigen::VectorXd::Zero(g.rows());
    for (Eigen::Index j = 0; j < g.cols(); ++j) norms += g.col(j).template cast<double>().cwiseAbs2();
    return norms.cwiseSqrt();
}

/// Correlations of rows [lo, lo + out.size()) with r: a block of G r.
template <class Scalar, class Out>
void correlate(const GradRef<Scalar>& g, Eigen::Index lo, const Vector<Scalar>& r, Out&& out) {
    out.noalias() = g.middleRows(lo, out.size()) * r;
}
/// Factored rows: e_i^T R h_i with R the C x E reshaping of r, as one product per block.
template <class Scalar, class Out>
void correlate(const FactoredGradients<Scalar>& g, Eigen::Index lo, const Vector<Scalar>& r, Out&& out) {
    const Eigen::Index len = out.size(), C = g.errors().cols(), E = g.activations().cols();
    const Eigen::Map<const RowMatrix<Scalar>> R(r.data(), C, E);
    RowMatrix<Scalar> er;
    eigen_single_threaded([&] { er.noalias() = g.errors().middleRows(lo, len) * R; });  // any thread count
    out = er.cwiseProduct(g.activations().middleRows(lo, len)).rowwise().sum();
}

/// The rows the correlation pass runs on, divided by 2^shift: a matrix as it is (shift 0);
/// factored rows balanced (balance_rows), then each factor scaled by the power of two that brings
/// its largest magnitude into [0.5, 1), so that e_i^T R h_i stays inside Scalar's range where the
/// products e_ic h_ik do not (1e30 * 1e30 in float: the scores were inf and NaN, and the arg-max
/// missed every positive row). Every score is divided by the same 2^shift, so the arg-max is
/// unchanged (up to rows 2^shift smaller than the largest, which underflow as in dense()).
template <class Scalar>
const GradRef<Scalar>& correlation_rows(const GradRef<Scalar>& g, int& shift) {
    shift = 0;
    return g;
}
template <class Scalar>
FactoredGradients<Scalar> correlation_rows(const FactoredGradients<Scalar>& g, int& shift) {
    RowMatrix<Scalar> e = g.errors(), h = g.activations();
    balance_rows(e, h);
    int a = 0, b = 0;
    std::frexp(e.cwiseAbs().maxCoeff(), &a);
    std::frexp(h.cwiseAbs().maxCoeff(), &b);
    e = e.unaryExpr([a](Scalar v) { return std::ldexp(v, -a); });
    h = h.unaryExpr([b](Scalar v) { return std::ldexp(v, -b); });
    shift = a + b;
    return FactoredGradients<Scalar>(std::move(e), std::move(h));
}

/// Row e of the gradients as a double vector.
template <class Scalar>
void load_row(const GradRef<Scalar>& g, Eigen::Index e, Eigen::VectorXd& atom) {
    atom = g.row(e).transpose().template cast<double>();
}
template <class Scalar>
void load_row(const FactoredGradients<Scalar>& g, Eigen::Index e, Eigen::VectorXd& atom) {
    const Eigen::Index C = g.errors().cols(), E = g.activations().cols();
    for (Eigen::Index c = 0; c < C; ++c)
        atom.segment(c * E, E) = static_cast<double>(g.errors()(e, c)) * g.activations().row(e).transpose().template cast<double>();
}

/// The correlation pass c = G r and the arg-max over rows not yet picked.
template <class Scalar>
class CorrelationPass {
public:
    CorrelationPass(Eigen::Index n, const Vector<Scalar>* inv_norm)
        : c_(n), inv_norm_(inv_norm), best_(blocks(n)), score_(blocks(n)) {}

    /// c = G r, then the row with the largest score among those with `picked[i] == 0`
    /// (ties: lowest index); -1 when every row is picked.
    template <class G>
    Eigen::Index run(const G& g, const Vector<Scalar>& r, const std::vector<unsigned char>& picked) {
        const Eigen::Index n = g.rows();
        const auto nb = static_cast<std::ptrdiff_t>(best_.size());
        const bool parallel = nb > 1 && n * g.cols() >= (Eigen::Index(1) << 16);
        (void)parallel;
        CORESET_OMP(omp parallel for schedule(static) if (parallel))
        for (std::ptrdiff_t b = 0; b < nb; ++b) {
            note_team();
            const Eigen::Index lo = static_cast<Eigen::Index>(b) * kGradMatchBlock;
            const Eigen::Index len = std::min(kGradMatchBlock, n - lo);
            correlate(g, lo, r, c_.segment(lo, len));
            const auto bu = static_cast<std::size_t>(b);
            best_[bu] = scan(lo, lo + len, picked, score_[bu]);
        }
        Eigen::Index best = -1;
        Scalar top = 0;
        for (std::size_t b = 0; b < best_.size(); ++b)
            if (best_[b] >= 0 && (best < 0 || score_[b] > top)) {
                best = best_[b];
                top = score_[b];
            }
        return best;
    }

    /// The arg-max again over the last correlations (after more rows were marked picked).
    Eigen::Index rescan(const std::vector<unsigned char>& picked) const {
        Scalar top = 0;
        return scan(0, c_.size(), picked, top);
    }

private:
    static std::size_t blocks(Eigen::Index n) {
        return static_cast<std::size_t>((n + kGradMatchBlock - 1) / kGradMatchBlock);
    }
    Eigen::Index scan(Eigen::Index lo, Eigen::Index hi, const std::vector<unsigned char>& picked, Scalar& top) const {
        Eigen::Index best = -1;
        for (Eigen::Index i = lo; i < hi; ++i) {
            if (picked[static_cast<std::size_t>(i)]) continue;
            const Scalar s = inv_norm_ ? c_[i] * (*inv_norm_)[i] : c_[i];
            if (best < 0 || s > top) {
                best = i;
                top = s;
            }
        }
        return best;
    }

    Vector<Scalar> c_;
    const Vector<Scalar>* inv_norm_;
    std::vector<Eigen::Index> best_;
    std::vector<Scalar> score_;
};

/// Non-negative ridge OMP on the rows of `g` (n x d) towards `target` (length d), up to `budget`
/// atoms with positive weight. The kernel behind every GradMatch overload; indices are rows of `g`
/// (GradRef<Scalar> or FactoredGradients<Scalar>).
template <class Scalar, class G, class... Callbacks>
Coreset<Scalar> grad_match_omp(const G& g, const Eigen::VectorXd& target,
                               Eigen::Index budget, const GradMatchOptions& options, Callbacks&... callbacks) {
    const Eigen::Index n = g.rows(), d = g.cols();
    // Largest finite Scalar: 1 / norm of a subnormal float row, and the weight such a row needs,
    // are clamped to it rather than becoming infinite.
    const double largest = static_cast<double>(std::numeric_limits<Scalar>::max());
    const double tnorm = norm_of(target);
    const Eigen::VectorXd norms = row_norms(g);
    // The pass correlates rows divided by 2^shift (factored rows: see correlation_rows).
    int shift = 0;
    const auto& pass_rows = correlation_rows(g, shift);
    Vector<Scalar> inv_norm;
    if (options.normalize) {
        inv_norm.resize(n);
        for (Eigen::Index i = 0; i < n; ++i)
            inv_norm[i] = norms[i] > 0
                              ? static_cast<Scalar>(std::min(std::ldexp(1.0 / norms[i], shift), largest))
                              : Scalar(0);
    }
    // "Positive correlation" means above the rounding floor of a double dot product.
    const double floor = NonNegativeRidge::kPositive * tnorm * (options.normalize ? 1.0 : norms.maxCoeff());
    const auto tolerance_met = [&](double rnorm) {
        return tnorm > 0 ? rnorm < options.tolerance * tnorm : options.tolerance > 0;
    };

    NonNegativeRidge solver(target, options.lambda, options.nonnegativity == NonNegativity::ActiveSet,
                            std::min(budget, d) + 1);
    CorrelationPass<Scalar> pass(n, options.normalize ? &inv_norm : nullptr);
    // Row states: never picked, in the support, dropped from it, refused as dependent.
    enum : unsigned char { kFresh = 0, kSupport = 1, kDropped = 2, kRefused = 3 };
    std::vector<unsigned char> state(static_cast<std::size_t>(n), kFresh);
    // Rows the arg-max skips: by default every row ever picked; with repick_dropped, the support and
    // the refused rows; with stop_on_reselect, none (the arg-max is over all rows).
    std::vector<unsigned char> picked(static_cast<std::size_t>(n), 0);
    const auto skips = [&](unsigned char st) {
        if (options.stop_on_reselect) return false;
        if (options.repick_dropped) return st == kSupport || st == kRefused;
        return st != kFresh;
    };
    const auto set_state = [&](Eigen::Index i, unsigned char st) {
        state[static_cast<std::size_t>(i)] = st;
        picked[static_cast<std::size_t>(i)] = skips(st) ? 1 : 0;
    };
    std::vector<Eigen::Index> pick_step(static_cast<std::size_t>(n), 0);
    Vector<Scalar> rs(d);
    Eigen::VectorXd atom(d);

    Coreset<Scalar> out;
    double rnorm = tnorm;
    if (tolerance_met(rnorm)) {
        out.status = Status::ToleranceReached;
    } else {
        for (Eigen::Index step = 0;; ++step) {
            // The arg-max does not change under a positive scale of r: a power of two that brings
            // max |r| into [0.5, 1) (exact) keeps G r inside float's range for huge (1e30) and tiny
            // (1e-30) gradients alike.
            int exponent = 0;
            std::frexp(solver.residual().cwiseAbs().maxCoeff(), &exponent);
            rs = (solver.residual() * std::ldexp(1.0, -exponent)).template cast<Scalar>();
            Eigen::Index e = pass.run(pass_rows, rs, picked);
            bool accepted = false;
            while (e >= 0) {
                const unsigned char st = state[static_cast<std::size_t>(e)];
                // stop_on_reselect: the arg-max over all rows is not eligible.
                if (st == kSupport || st == kRefused || (st == kDropped && !options.repick_dropped)) break;
                load_row(g, e, atom);
                double score = atom.dot(solver.residual());
                if (options.normalize) score = norms[e] > 0 ? score / norms[e] : 0.0;
                if (!(score > floor)) break;
                pick_step[static_cast<std::size_t>(e)] = step;
                const auto outcome = solver.add(e, atom, options.unregularized_first_atom && solver.size() == 0);
                if (outcome.accepted) {
                    set_state(e, kSupport);
                    for (Eigen::Index id : outcome.dropped) set_state(id, kDropped);
                    accepted = true;
                    break;
                }
                set_state(e, kRefused);
                // A numerically dependent atom: the next best on the same correlations (with
                // stop_on_reselect, the arg-max over all rows is this row again: stop).
                if (options.stop_on_reselect) break;
                e = pass.rescan(picked);
            }
            if (!accepted) {
                out.status = Status::Exhausted;
                break;
            }
            const double now = norm_of(solver.residual());
            out.objective.push_back(now);
            const bool stop = notify_step(StepInfo{step, e, rnorm - now, now}, callbacks...);
            rnorm = now;
            if (stop) {
                out.status = Status::StoppedByCallback;
                break;
            }
            if (options.budget_counts_iterations ? step + 1 >= budget : solver.size() >= budget) {
                out.status = Status::BudgetReached;
                break;
            }
            if (tolerance_met(now)) {
                out.status = Status::ToleranceReached;
                break;
            }
        }
    }

    // The support in pick order.
    const auto& ids = solver.ids();
    std::vector<std::size_t> order(ids.size());
    for (std::size_t p = 0; p < order.size(); ++p) order[p] = p;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return pick_step[static_cast<std::size_t>(ids[a])] < pick_step[static_cast<std::size_t>(ids[b])];
    });
    out.weights.resize(static_cast<Eigen::Index>(order.size()));
    for (std::size_t j = 0; j < order.size(); ++j) {
        out.indices.push_back(ids[order[j]]);
        // Rounded into Scalar's positive finite range (a subnormal atom can need a weight past it;
        // a NaN from a numerical breakdown, possible only for atoms scaled 1e100 apart, becomes
        // the smallest).
        const double raw = solver.weights()[static_cast<Eigen::Index>(order[j])];
        const double w = raw > 0 ? raw : 0.0;
        out.weights[static_cast<Eigen::Index>(j)] =
            static_cast<Scalar>(std::min(std::max(w, static_cast<double>(std::numeric_limits<Scalar>::min())), largest));
    }
    return out;
}

/// GradMatchOptions::random_fill: appends uniformly drawn rows of [0, n) not in `out` with weight 1
/// until it has `budget` rows (nothing when it has as many already); objective and status unchanged.
template <class Scalar>
void random_fill(Coreset<Scalar>& out, Eigen::Index n, Eigen::Index budget, std::uint64_t seed) {
    if (out.size() >= budget) return;
    std::vector<unsigned char> taken(static_cast<std::size_t>(n), 0);
    for (Eigen::Index i : out.indices) taken[static_cast<std::size_t>(i)] = 1;
    std::vector<Eigen::Index> pool;
    pool.reserve(static_cast<std::size_t>(n - out.size()));
    for (Eigen::Index i = 0; i < n; ++i)
        if (!taken[static_cast<std::size_t>(i)]) pool.push_back(i);
    Rng rng(seed);
    const auto extra = rng.sample(std::move(pool), static_cast<std::size_t>(budget - out.size()));
    const Eigen::Index old = out.size();
    out.weights.conservativeResize(old + static_cast<Eigen::Index>(extra.size()));
    for (std::size_t j = 0; j < extra.size(); ++j) {
        out.indices.push_back(extra[j]);
        out.weights[old + static_cast<Eigen::Index>(j)] = Scalar(1);
    }
}

/// Forwards the kernel's steps to the user's callbacks in the caller's units: the kernel ran on
/// rows and target divided by 2^shift (grad_match_scaled), so gain and objective are multiplied back.
template <class... Callbacks>
struct UnscaledSteps {
    std::tuple<Callbacks&...> callbacks;
    int shift;

    bool on_step(const StepInfo& info) {
        StepInfo caller = info;
        caller.gain = std::ldexp(info.gain, shift);
        caller.objective = std::ldexp(info.objective, shift);
        return std::apply([&](auto&... cbs) { return notify_step(caller, cbs...); }, callbacks);
    }
};

/// Divides every entry by 2^shift (exact unless the result is subnormal).
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> scaled_copy(const GradRef<Scalar>& g, int shift) {
    return g.unaryExpr([shift](Scalar v) { return std::ldexp(v, -shift); });
}
/// Factored rows balanced (balance_rows, so that no factor row far larger than its product sets
/// a factor's scale), then each factor divided by 2^a and 2^b, a and b the largest exponents of
/// the factors' rows whose product is nonzero; shift = a + b (0 for zero rows).
template <class Scalar>
FactoredGradients<Scalar> scaled_copy(const FactoredGradients<Scalar>& g, int& shift) {
    RowMatrix<Scalar> e = g.errors(), h = g.activations();
    balance_rows(e, h);  // zero products: both factor rows zero
    int a = std::numeric_limits<int>::min(), b = std::numeric_limits<int>::min();
    for (Eigen::Index i = 0; i < e.rows(); ++i) {
        const Scalar me = e.row(i).cwiseAbs().maxCoeff(), mh = h.row(i).cwiseAbs().maxCoeff();
        if (!(me > 0) || !(mh > 0)) continue;
        int ea = 0, eh = 0;
        std::frexp(me, &ea);
        std::frexp(mh, &eh);
        a = std::max(a, ea);
        b = std::max(b, eh);
    }
    if (a == std::numeric_limits<int>::min()) a = b = 0;
    shift = a + b;
    e = e.unaryExpr([a](Scalar v) { return std::ldexp(v, -a); });
    h = h.unaryExpr([b](Scalar v) { return std::ldexp(v, -b); });
    return FactoredGradients<Scalar>(std::move(e), std::move(h));
}

/// The exponent s with max |g| in [2^(s-1), 2^s) (0 for a zero matrix).
template <class Scalar>
int scale_exponent(const GradRef<Scalar>& g) {
    int s = 0;
    std::frexp(g.cwiseAbs().maxCoeff(), &s);
    return s;
}
/// The kernel on rows and target divided by 2^s, s = scale_exponent(g), with lambda divided by
/// 2^(2s): the objective ||G^T w - t||^2 + lambda ||w||^2 is then divided by 2^(2s) exactly, so
/// the picks and weights are those of the caller's problem, and the same rows and weights come
/// back for G and t scaled together by any power of two (lambda = 0), from 1e-300 to 1e300 in
/// double and 1e-37 to 1e37 in float (without it, norms and correlations overflowed or underflowed
/// there: an empty set, Exhausted or ToleranceReached). Objectives and callbacks are in the
/// caller's units. `target` null: the column sum of the rows (computed on the scaled rows).
/// Costs one scaled copy of the rows unless max |g| is already in [0.5, 1).
/// grad_match_scaled's second half: the kernel on rows already divided by 2^s.
template <class Scalar, class Rows, class... Callbacks>
Coreset<Scalar> grad_match_on_scaled(const Rows& rows, int s, const Eigen::VectorXd* target, Eigen::Index budget,
                                     const GradMatchOptions& options, Callbacks&... callbacks) {
    GradMatchOptions scaled = options;
    // lambda / 2^(2s), kept finite: for rows near 1e-300 the ridge dominates (the picks are then
    // those of the target's correlations) and the exact weights are below double's range anyway.
    scaled.lambda = std::min(std::ldexp(options.lambda, -2 * s), std::ldexp(1.0, 600));
    const Eigen::VectorXd t = target ? Eigen::VectorXd(target->unaryExpr([s](double v) { return std::ldexp(v, -s); }))
                                     : column_sum(rows);
    Coreset<Scalar> out;
    if constexpr (sizeof...(Callbacks) == 0) {
        out = grad_match_omp<Scalar>(rows, t, budget, scaled);
    } else {
        UnscaledSteps<Callbacks...> relay{std::tuple<Callbacks&...>(callbacks...), s};
        out = grad_match_omp<Scalar>(rows, t, budget, scaled, relay);
    }
    for (double& v : out.objective) v = std::ldexp(v, s);
    return out;
}

/// The kernel on rows and target divided by 2^s, s = scale_exponent(g), with lambda divided by
/// 2^(2s): the objective ||G^T w - t||^2 + lambda ||w||^2 is then divided by 2^(2s) exactly, so
/// the picks and weights are those of the caller's problem, and the same rows and weights come
/// back for G and t scaled together by any power of two (lambda = 0), from 1e-300 to 1e300 in
/// double and 1e-37 to 1e37 in float (without it, norms and correlations overflowed or underflowed
/// there: an empty set, Exhausted or ToleranceReached). Objectives and callbacks are in the
/// caller's units. `target` null: the column sum of the rows (computed on the scaled rows).
/// Costs one scaled copy of the rows unless they need no scaling (s = 0).
template <class Scalar, class G, class... Callbacks>
Coreset<Scalar> grad_match_scaled(const G& g, const Eigen::VectorXd* target, Eigen::Index budget,
                                  const GradMatchOptions& options, Callbacks&... callbacks) {
    if constexpr (is_factored<G>::value) {
        int s = 0;
        const FactoredGradients<Scalar> rows = scaled_copy(g, s);
        if (s == 0) return grad_match_omp<Scalar>(g, target ? *target : column_sum(g), budget, options, callbacks...);
        return grad_match_on_scaled<Scalar>(rows, s, target, budget, options, callbacks...);
    } else {
        const int s = scale_exponent(g);
        if (s == 0) return grad_match_omp<Scalar>(g, target ? *target : column_sum(g), budget, options, callbacks...);
        const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> rows = scaled_copy(g, s);
        return grad_match_on_scaled<Scalar>(GradRef<Scalar>(rows), s, target, budget, options, callbacks...);
    }
}

}  // namespace detail

/// A target for GradMatch::select (for example the gradient sum of a validation set): the wrapper
/// says "this vector is a target", so that a vector of labels, whatever its scalar type, is never
/// taken for one. Holds a copy in double (the solver works in double); its shape and values are
/// checked by the select() it is passed to.
///
/// \code{.cpp}
/// auto s = coreset::GradMatch().select(g, coreset::Target(val_g.colwise().sum()), 100);
/// \endcode
struct Target {
    template <class Derived>
    explicit Target(const Eigen::MatrixBase<Derived>& vector) : value(vector.template cast<double>()) {
        static_assert(std::is_floating_point<typename Derived::Scalar>::value,
                      "coreset::Target: a target must be a float or double vector");
    }
    Eigen::MatrixXd value;  ///< The target, in the shape it was given (a vector of length d).
};

/// GRAD-MATCH: a weighted subset S of the rows of a gradient matrix G (n x d, row i = example i)
/// whose weighted sum matches a target t,
/// \f[ \min_{w \ge 0,\ |S| \le k} \Big\|\sum_{j \in S} w_j g_j - t\Big\|^2 + \lambda \|w\|^2 , \f]
/// by orthogonal matching pursuit: pick the unpicked row with the largest positive correlation
/// \f$g_j^T r\f$ with the residual \f$r = t - \sum_S w_j g_j\f$, re-solve the non-negative ridge
/// problem on the support (incremental Cholesky), repeat. An atom whose weight reaches 0 leaves
/// the support for good; a row is never picked twice and the subset is never padded (unless the
/// CORDS options say otherwise: GradMatchOptions::cords(), docs/grad_match.md).
///
/// After each pick it stops when a callback asks (StoppedByCallback), when k atoms have positive
/// weight (BudgetReached) or when \f$\|r\|/\|t\| <\f$ tolerance (ToleranceReached), checked in
/// that order; and before a pick when no unpicked row has a positive correlation (Exhausted;
/// with stop_on_reselect also when the arg-max over all rows is not eligible).
/// With the target at zero the empty set is returned (ToleranceReached if tolerance > 0).
/// `objective[s]` = \f$\|r\|\f$ after pick s (one entry per
/// pick, so more entries than rows when atoms were dropped). Weights are on the scale of the
/// target: with t = column sum they are around n / k each.
///
/// Precision: correlations are computed in the input's scalar type; the winner's correlation,
/// the factorisation, the weights and the residual are computed in double.
///
/// \code{.cpp}
/// coreset::GradMatch gm;                        // lambda = 0.5, ActiveSet
/// auto cs = gm.select(gradients, 100);          // target = column sum of gradients
/// auto per_class = gm.select(gradients, labels, 100);
/// auto towards_val = gm.select(gradients, val_gradients.colwise().sum(), 100);
/// \endcode
class GradMatch {
public:
    /// \throws std::invalid_argument when the options are out of range (GradMatchOptions::validate).
    explicit GradMatch(GradMatchOptions options = {}) : options_(options) { options_.validate(); }

    /// The options in use.
    const GradMatchOptions& options() const noexcept { return options_; }

    /// Matches the column sum of `gradients`.
    /// \param gradients n x d, finite, float or double.
    /// \param budget 1 <= budget <= n: at most this many rows with positive weight.
    /// \param callbacks optional objects with `on_step(const StepInfo&)` (returning bool = stop,
    ///        or void); gain = decrease of \f$\|r\|\f$, objective = \f$\|r\|\f$.
    /// \return rows in pick order, weights > 0.
    /// \throws std::invalid_argument for empty or non-finite gradients or a budget out of range.
    template <class Derived, class... Callbacks>
    Coreset<typename Derived::Scalar> select(const Eigen::MatrixBase<Derived>& gradients, Eigen::Index budget,
                                             Callbacks&&... callbacks) const {
        const detail::ThreadScope threads(options_.num_threads);
        using Scalar = typename Derived::Scalar;
        static_assert(std::is_floating_point<Scalar>::value, "coreset: gradients must be float or double");
        constexpr const char* where = "GradMatch::select()";
        detail::check_matrix(gradients, where, "gradients");
        detail::check_budget(budget, gradients.rows(), where);
        const detail::GradRef<Scalar> g(gradients.derived());
        return finish(detail::grad_match_scaled<Scalar>(g, nullptr, budget, options_, callbacks...), gradients.rows(),
                      budget);
    }

    /// Per class: `labels` is an integer vector of length n (values >= 0); every class matches
    /// its own gradient sum with its share of the budget (GradMatchOptions::class_budget);
    /// results are merged class by class, objectives concatenated. Classes run in parallel unless
    /// callbacks are given; callbacks then see global row indices and a step count over all
    /// classes, and a stop skips the remaining classes. A floating-point vector here is a compile
    /// error: a target is passed as coreset::Target(x) (overload below).
    /// \param gradients n x d, finite.
    /// \param labels integer vector of length n.
    /// \param budget 1 <= budget <= n.
    /// \throws std::invalid_argument for bad gradients, labels of the wrong length or negative, or
    ///         a budget out of range.
    /// Labels may also be a contiguous integer range (std::vector<int>, std::span, ...).
    template <class Derived, class L, class... Callbacks,
              class = std::enable_if_t<detail::is_eigen<L>::value || detail::is_integer_range<L>::value>>
    Coreset<typename Derived::Scalar> select(const Eigen::MatrixBase<Derived>& gradients, const L& labels,
                                             Eigen::Index budget, Callbacks&&... callbacks) const {
        const detail::ThreadScope threads(options_.num_threads);
        using Scalar = typename Derived::Scalar;
        static_assert(std::is_floating_point<Scalar>::value, "coreset: gradients must be float or double");
        static_assert(detail::is_labels<L>::value,
                      "GradMatch::select(): labels must be integers; pass a target as coreset::Target(x)");
        detail::check_matrix(gradients, "GradMatch::select()", "gradients");
        return finish(select_classes<Scalar>(gradients, labels, budget, callbacks...), gradients.rows(), budget);
    }

    /// Matches a given target (e.g. the gradient sum of a validation set) instead of the column
    /// sum of `gradients`.
    /// \param gradients n x d, finite.
    /// \param target coreset::Target of a vector of length d (row or column), finite.
    /// \param budget 1 <= budget <= n.
    /// \throws std::invalid_argument for bad gradients, a target that is not a vector, of the
    ///         wrong length or not finite, or a budget out of range.
    template <class Derived, class... Callbacks>
    Coreset<typename Derived::Scalar> select(const Eigen::MatrixBase<Derived>& gradients, const Target& target,
                                             Eigen::Index budget, Callbacks&&... callbacks) const {
        const detail::ThreadScope threads(options_.num_threads);
        using Scalar = typename Derived::Scalar;
        static_assert(std::is_floating_point<Scalar>::value, "coreset: gradients must be float or double");
        detail::check_matrix(gradients, "GradMatch::select()", "gradients");
        return select_target<Scalar>(gradients, target.value, budget, callbacks...);
    }

    /// Per-batch GRAD-MATCH (GRAD-MATCH-PB): the rows are cut into consecutive mini-batches of
    /// `batch_size` (the last may be smaller), OMP runs on the batch mean gradients towards the
    /// column sum of all rows and picks up to ceil(budget / batch_size) batches (as
    /// Craig::select_batches); every member of batch b gets \f$w_b / |b|\f$, so
    /// \f$\sum_i w_i g_i = \sum_b w_b \bar g_b\f$ (the same scale as select()). Callbacks see
    /// batch indices.
    /// \param gradients n x d, finite.
    /// \param batch_size rows per batch, >= 1.
    /// \param budget rows, 1 <= budget <= n.
    /// \return member rows, batch by batch in pick order, members in row order.
    template <class Derived, class... Callbacks>
    Coreset<typename Derived::Scalar> select_batches(const Eigen::MatrixBase<Derived>& gradients,
                                                     Eigen::Index batch_size, Eigen::Index budget,
                                                     Callbacks&&... callbacks) const {
        const detail::ThreadScope threads(options_.num_threads);
        using Scalar = typename Derived::Scalar;
        static_assert(std::is_floating_point<Scalar>::value, "coreset: gradients must be float or double");
        detail::check_matrix(gradients, "GradMatch::select_batches()", "gradients");
        return select_batches_of<Scalar>(gradients, batch_size, budget, callbacks...);
    }

    /// \name Factored gradients
    /// Every overload above on rows g_i = e_i (x) h_i given by their factors (factored.hpp): the
    /// same picks and weights as on `gradients.dense()`, up to rounding, without forming it. A
    /// correlation is e_i^T R h_i with R the residual as a C x E matrix (one n x C by C x E product
    /// per pass); the default target is the flattening of E^T H; a target is a vector of length
    /// C E in the layout of `dense()`; per batch, each batch mean is E_b^T H_b / |b|. Atoms that
    /// enter the support are expanded (k rows of C E doubles).
    /// @{
    template <class Scalar, class... Callbacks>
    Coreset<Scalar> select(const FactoredGradients<Scalar>& gradients, Eigen::Index budget,
                           Callbacks&&... callbacks) const {
        const detail::ThreadScope threads(options_.num_threads);
        detail::check_budget(budget, gradients.rows(), "GradMatch::select()");
        return finish(detail::grad_match_scaled<Scalar>(gradients, nullptr, budget, options_, callbacks...),
                      gradients.rows(), budget);
    }
    template <class Scalar, class L, class... Callbacks,
              class = std::enable_if_t<detail::is_eigen<L>::value || detail::is_integer_range<L>::value>>
    Coreset<Scalar> select(const FactoredGradients<Scalar>& gradients, const L& labels, Eigen::Index budget,
                           Callbacks&&... callbacks) const {
        const detail::ThreadScope threads(options_.num_threads);
        static_assert(detail::is_labels<L>::value,
                      "GradMatch::select(): labels must be integers; pass a target as coreset::Target(x)");
        return finish(select_classes<Scalar>(gradients, labels, budget, callbacks...), gradients.rows(), budget);
    }
    template <class Scalar, class... Callbacks>
    Coreset<Scalar> select(const FactoredGradients<Scalar>& gradients, const Target& target, Eigen::Index budget,
                           Callbacks&&... callbacks) const {
        const detail::ThreadScope threads(options_.num_threads);
        return select_target<Scalar>(gradients, target.value, budget, callbacks...);
    }
    /// @}

    /// \name Factored gradients, per batch
    /// @{
    template <class Scalar, class... Callbacks>
    Coreset<Scalar> select_batches(const FactoredGradients<Scalar>& gradients, Eigen::Index batch_size,
                                   Eigen::Index budget, Callbacks&&... callbacks) const {
        const detail::ThreadScope threads(options_.num_threads);
        return select_batches_of<Scalar>(gradients, batch_size, budget, callbacks...);
    }
    /// @}

private:
    // The last step of every overload: GradMatchOptions::random_fill.
    template <class Scalar>
    Coreset<Scalar> finish(Coreset<Scalar> out, Eigen::Index n, Eigen::Index budget) const {
        if (options_.random_fill && out.status != Status::StoppedByCallback)
            detail::random_fill(out, n, budget, options_.seed);
        return out;
    }

    // The kernel's working form of a class's rows: the column-major copy for a matrix, the
    // factors as they are.
    template <class Scalar, class Rows, class Fn>
    static Coreset<Scalar> with_working(const Rows& rows, Fn&& fn) {
        if constexpr (detail::is_factored<Rows>::value) {
            return fn(rows);
        } else {
            const detail::GradRef<Scalar> g(rows);
            return fn(g);
        }
    }

    // Per batch, on a checked Eigen matrix or factored gradients.
    template <class Scalar, class G, class... Callbacks>
    Coreset<Scalar> select_batches_of(const G& gradients, Eigen::Index batch_size, Eigen::Index budget,
                                      Callbacks&... callbacks) const {
        constexpr const char* where = "GradMatch::select_batches()";
        detail::check_option(batch_size >= 1, batch_size, where, "batch_size", "batch_size >= 1");
        detail::check_budget(budget, gradients.rows(), where);
        const Eigen::Index batches = (budget - 1) / batch_size + 1;  // ceil, without overflow
        detail::RowMatrix<Scalar> means;
        detail::Vector<Scalar> sizes;
        detail::batch_means(gradients, batch_size, means, sizes);
        // Means of finite rows are finite; a factored batch mean (of products e_i h_i^T) can pass
        // Scalar's range, and cannot be selected on.
        detail::check_finite(means, where, "batch means");
        const Eigen::VectorXd target = detail::column_sum(gradients);
        const Coreset<Scalar> picked = detail::grad_match_scaled<Scalar>(detail::GradRef<Scalar>(means), &target,
                                                                         batches, options_, callbacks...);
        return finish(detail::expand_batches(picked, gradients.rows(), batch_size), gradients.rows(), budget);
    }

    // Towards a given target, on a checked Eigen matrix or factored gradients.
    template <class Scalar, class G, class DerivedT, class... Callbacks>
    Coreset<Scalar> select_target(const G& gradients, const Eigen::MatrixBase<DerivedT>& target, Eigen::Index budget,
                                  Callbacks&... callbacks) const {
        constexpr const char* where = "GradMatch::select()";
        detail::require(target.rows() == 1 || target.cols() == 1, where, "target must be a vector (got ",
                        target.rows(), " x ", target.cols(), ")");
        detail::require(target.size() == gradients.cols(), where,
                        "target must have one entry per column of gradients (got ", target.size(),
                        " entries for d = ", gradients.cols(), " columns)");
        detail::check_finite(target.derived().reshaped(), where, "target");  // entries by index
        detail::check_budget(budget, gradients.rows(), where);
        Eigen::VectorXd t(target.size());
        for (Eigen::Index j = 0; j < t.size(); ++j) t[j] = static_cast<double>(target.derived().coeff(j));
        return finish(with_working<Scalar>(gradients,
                                           [&](const auto& g) {
                                               return detail::grad_match_scaled<Scalar>(g, &t, budget, options_,
                                                                                        callbacks...);
                                           }),
                      gradients.rows(), budget);
    }

    // Per class, on a checked Eigen matrix or factored gradients.
    template <class Scalar, class G, class L, class... Callbacks>
    Coreset<Scalar> select_classes(const G& gradients, const L& labels, Eigen::Index budget,
                                   Callbacks&... callbacks) const {
        constexpr const char* where = "GradMatch::select()";
        const auto groups = detail::class_labels(labels, gradients.rows(), where).groups;
        detail::check_budget(budget, gradients.rows(), where);
        std::vector<Eigen::Index> sizes;
        for (const auto& grp : groups) sizes.push_back(static_cast<Eigen::Index>(grp.size()));
        const auto budgets = detail::split_budget(sizes, budget, options_.class_budget);
        const GradMatchOptions& opts = options_;
        return detail::per_class_observed<Scalar>(
            gradients, groups, budgets, detail::ObjectiveMerge::Concatenate,
            [&](const auto& rows, Eigen::Index k, auto&... relay) {
                return with_working<Scalar>(rows, [&](const auto& g) {
                    return detail::grad_match_scaled<Scalar>(g, nullptr, k, opts, relay...);
                });
            },
            callbacks...);
    }

    GradMatchOptions options_;
};

}  // namespace coreset
