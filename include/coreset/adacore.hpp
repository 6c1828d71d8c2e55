// SPDX-License-Identifier: MIT
/// \file adacore.hpp
/// \brief AdaCore (Pooladzandi, Davini and Mirzasoleiman, "Adaptive Second Order Coresets for
/// Data-efficient Machine Learning", ICML 2022): CRAIG on Hessian-preconditioned gradients, with
/// per-example Adam-style moving averages of the gradient and of the Hessian diagonal.
///
/// No reference implementation was released; the choices this one makes where the paper is silent
/// are listed in docs/adacore.md and on AdaCore below.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core.hpp"
#include "craig.hpp"
#include "factored.hpp"
#include "detail/checks.hpp"
#include "detail/parallel.hpp"
#include "gradients.hpp"

namespace coreset {

/// Options of AdaCore: the moving-average and preconditioning constants, then the facility-location
/// fields shared with Craig (same meaning, same defaults; see CraigOptions).
struct AdaCoreOptions {
    /// Decay of the gradient average g_bar (Adam's beta1), 0 <= beta1 < 1. Default 0.9 (AdaHessian).
    double beta1 = 0.9;
    /// Decay of the average of the squared Hessian diagonal (Adam's beta2), 0 <= beta2 < 1.
    /// Default 0.999 (AdaHessian).
    double beta2 = 0.999;
    /// Added to the denominator: u = g_bar / (h_bar^hessian_power + eps), eps >= 0. Default 1e-4
    /// (AdaHessian). It bounds |u| by |g_bar| / eps where the curvature vanishes (for the softmax
    /// proxy: confidently wrong examples), so eps = 0 is only safe with positive curvature.
    double eps = 1e-4;
    /// Power k of the curvature, 0 <= k <= 1 (AdaHessian's range): 1 is the full Newton-like
    /// scaling, 0 ignores the curvature (u = g_bar / (1 + eps)). Default 1.
    double hessian_power = 1.0;
    /// Distance between preconditioned rows. Default: Craig's (Euclidean).
    Metric metric = CraigOptions{}.metric;
    /// Greedy variant. Default: Craig's (Lazy).
    Greedy greedy = CraigOptions{}.greedy;
    /// Stochastic greedy's epsilon, in (0, 1). Default: Craig's (0.01).
    double epsilon = CraigOptions{}.epsilon;
    /// Seed of the stochastic sampler. Default: Craig's (0).
    std::uint64_t seed = CraigOptions{}.seed;
    /// Bytes the engine may allocate per ground set. Default: Craig's (1 GiB).
    std::size_t memory_budget_bytes = CraigOptions{}.memory_budget_bytes;
    /// Dense, blocked or automatic distance evaluation. Default: Craig's (Auto).
    Evaluation evaluation = CraigOptions{}.evaluation;
    /// Split of the budget over classes for `select(labels, budget)`. Default: Craig's (Proportional).
    ClassBudget class_budget = CraigOptions{}.class_budget;
    /// Threads of the selector's own OpenMP regions (and of the Eigen products it runs outside
    /// them), >= 0; 0 (the default) = OpenMP's default (OMP_NUM_THREADS, else the number of
    /// cores). Bounds only the library's work: the caller's code and other threads are unaffected.
    /// Results do not depend on it.
    int num_threads = 0;

    /// Checks beta1, beta2, eps and hessian_power here and the shared fields with
    /// CraigOptions::validate() (messages then name AdaCoreOptions::validate()).
    /// \throws std::invalid_argument naming the first out-of-range field.
    void validate() const {
        const char* where = "AdaCoreOptions::validate()";
        detail::check_option(beta1 >= 0.0 && beta1 < 1.0, beta1, where, "beta1", "0 <= beta1 < 1");
        detail::check_option(beta2 >= 0.0 && beta2 < 1.0, beta2, where, "beta2", "0 <= beta2 < 1");
        detail::check_option(eps >= 0.0 && std::isfinite(eps), eps, where, "eps", "0 <= eps < inf");
        detail::check_option(hessian_power >= 0.0 && hessian_power <= 1.0, hessian_power, where,
                             "hessian_power", "0 <= hessian_power <= 1");
        try {
            craig_options().validate();
        } catch (const std::invalid_argument& e) {
            std::string message = e.what();
            const std::string craig = "CraigOptions::validate()";
            if (message.compare(0, craig.size(), craig) == 0) message.replace(0, craig.size(), where);
            detail::raise(message);
        }
    }

    /// The options of the Craig selector that AdaCore runs on the preconditioned rows.
    CraigOptions craig_options() const {
        CraigOptions c;
        c.metric = metric;
        c.greedy = greedy;
        c.epsilon = epsilon;
        c.seed = seed;
        c.memory_budget_bytes = memory_budget_bytes;
        c.evaluation = evaluation;
        c.class_budget = class_budget;
        c.num_threads = num_threads;
        return c;
    }
};

/// AdaCore selector: a stateful CRAIG on Hessian-preconditioned gradients.
///
/// It keeps, for each of n examples, Adam-style moving averages of what the trainer reports:
/// \f[ m_i \leftarrow \beta_1 m_i + (1 - \beta_1) g_i, \qquad
///     v_i \leftarrow \beta_2 v_i + (1 - \beta_2)\, h_i \odot h_i, \f]
/// with bias corrections by the row's own step count t_i,
/// \f$\bar g_i = m_i / (1 - \beta_1^{t_i})\f$ and \f$\bar h_i = \sqrt{v_i / (1 - \beta_2^{t_i})}\f$,
/// and selects by facility location (Craig, same engine and options) on
/// \f[ u_i = \bar g_i \oslash (\bar h_i^{\,k} + \epsilon) \f]
/// (element-wise, k = hessian_power): the diagonal-Newton direction of each example. Weights are
/// cluster sizes (they sum to n, or to each class's size per class).
///
/// Choices where the paper is silent (docs/adacore.md has the reasoning):
/// - state is per example (each row has its own averages and step count), not one global
///   preconditioner; a global curvature is obtained by passing the same hessian_diag row for every
///   example;
/// - the curvature must live in the space of the gradient rows: for the C-dimensional proxy
///   p - onehot(y) (`logit_gradients`) that is the logit-space diagonal p (1 - p)
///   (`logit_hessian_diagonal`, Hutchinson's expectation there); for full last-layer rows,
///   `last_layer_hessian_diagonal`;
/// - eps is added after the power, as in AdaHessian;
/// - the state (m and sqrt(v)) is stored in `Scalar`; every update and every output is computed in
///   double and rounded once. sqrt(v) is stored rather than v, so v never overflows.
///
/// `update` is not thread-safe; the const members may run concurrently with each other.
///
/// \tparam Scalar float (default) or double: the precision of the state and of the results. Updates
///         accept gradients and curvatures of either precision.
///
/// \code{.cpp}
/// coreset::AdaCore<float> ada(n);                            // beta1 0.9, beta2 0.999, eps 1e-4
/// // every R epochs, after a forward pass over the data (logits n x C, labels n):
/// ada.update(coreset::logit_gradients(logits, labels), coreset::logit_hessian_diagonal(logits));
/// auto subset = ada.select(labels, n / 10);                  // per class, 10% of the rows
/// \endcode
template <class Scalar = float>
class AdaCore {
    static_assert(std::is_floating_point<Scalar>::value, "coreset: AdaCore's Scalar must be float or double");

public:
    using Matrix = detail::RowMatrix<Scalar>;  ///< n x d, row-major.

    /// State for `n` examples; no observation yet.
    /// \throws std::invalid_argument if n < 1 or `options` is invalid.
    explicit AdaCore(Eigen::Index n, AdaCoreOptions options = {}) : n_(n), options_(options) {
        detail::check_option(n >= 1, n, "AdaCore::AdaCore()", "n", "n >= 1");
        options_.validate();
        steps_.assign(static_cast<std::size_t>(n), 0);
    }

    const AdaCoreOptions& options() const noexcept { return options_; }
    /// Number of examples n.
    Eigen::Index size() const noexcept { return n_; }
    /// Width d of the observations (set by the first update; 0 before).
    Eigen::Index dim() const noexcept { return d_; }
    /// Number of updates each row has received (its bias-correction step count t_i).
    const std::vector<std::int64_t>& steps() const noexcept { return steps_; }

    /// Forgets every observation (dim() becomes 0 again); options are kept.
    void reset() {
        m_.resize(0, 0);
        r_.resize(0, 0);
        d_ = 0;
        std::fill(steps_.begin(), steps_.end(), std::int64_t(0));
    }

    /// Folds one observation of every example into the averages.
    ///
    /// \param gradients n x d gradient rows g_i (float or double), e.g. `logit_gradients(...)`.
    /// \param hessian_diag n x d Hessian diagonals h_i in the same coordinates, e.g.
    ///        `logit_hessian_diagonal(...)` or Hutchinson estimates; the sign is irrelevant (h^2 is
    ///        averaged).
    /// \throws std::invalid_argument if either is empty or not finite, the shapes differ, the row
    ///         count is not n, or d differs from earlier updates. A rejected update leaves the
    ///         state unchanged.
    template <class DerivedG, class DerivedH>
    void update(const Eigen::MatrixBase<DerivedG>& gradients,
                const Eigen::MatrixBase<DerivedH>& hessian_diag) {
        const char* where = "AdaCore::update()";
        check_observation(gradients, hessian_diag, where);
        detail::require(gradients.rows() == n_, where, "gradients must have one row per example (got ",
                        gradients.rows(), " rows for n = ", n_, ")");
        commit(nullptr, gradients, hessian_diag);
    }

    /// Folds one observation of the listed examples only (e.g. a mini-batch); row j of the
    /// matrices belongs to example `indices[j]`. Other rows keep their averages and step counts.
    ///
    /// \param indices distinct example indices in [0, n): std::vector or Eigen vector of integers.
    /// \param gradients m x d, m = number of indices.
    /// \param hessian_diag m x d.
    /// \throws std::invalid_argument as the full update, for an index count other than m, an index
    ///         outside [0, n), or a repeated index. A rejected update leaves the state unchanged.
    template <class DerivedI, class DerivedG, class DerivedH,
              class = std::enable_if_t<std::is_integral<typename DerivedI::Scalar>::value>>
    void update(const Eigen::MatrixBase<DerivedI>& indices, const Eigen::MatrixBase<DerivedG>& gradients,
                const Eigen::MatrixBase<DerivedH>& hessian_diag) {
        check_observation(gradients, hessian_diag, "AdaCore::update()");
        update_listed(detail::row_indices(indices.derived(), n_, "AdaCore::update()"), gradients, hessian_diag);
    }
    /// \copydoc update(const Eigen::MatrixBase<DerivedI>&, const Eigen::MatrixBase<DerivedG>&, const
    /// Eigen::MatrixBase<DerivedH>&)
    template <class Index, class DerivedG, class DerivedH>
    void update(const std::vector<Index>& indices, const Eigen::MatrixBase<DerivedG>& gradients,
                const Eigen::MatrixBase<DerivedH>& hessian_diag) {
        static_assert(std::is_integral<Index>::value, "coreset: indices must be integers");
        check_observation(gradients, hessian_diag, "AdaCore::update()");
        update_listed(detail::row_indices(indices, n_, "AdaCore::update()"), gradients, hessian_diag);
    }

    /// \name Factored observations
    /// The updates above with gradients and curvatures given as factors (factored.hpp), e.g.
    /// `factored_last_layer_gradients` and `factored_last_layer_hessian_diagonal`: the same state as
    /// updating with their `dense()` matrices (bit for bit), without forming those. The state
    /// itself is n x C E: an average of outer products over several updates is not an outer
    /// product, so it cannot stay factored. Errors name the rows as the dense overloads do.
    /// @{
    template <class Sg, class Sh>
    void update(const FactoredGradients<Sg>& gradients, const FactoredGradients<Sh>& hessian_diag) {
        update(detail::outer_product_rows(gradients), detail::outer_product_rows(hessian_diag));
    }
    template <class DerivedI, class Sg, class Sh,
              class = std::enable_if_t<std::is_integral<typename DerivedI::Scalar>::value>>
    void update(const Eigen::MatrixBase<DerivedI>& indices, const FactoredGradients<Sg>& gradients,
                const FactoredGradients<Sh>& hessian_diag) {
        update(indices, detail::outer_product_rows(gradients), detail::outer_product_rows(hessian_diag));
    }
    template <class Index, class Sg, class Sh>
    void update(const std::vector<Index>& indices, const FactoredGradients<Sg>& gradients,
                const FactoredGradients<Sh>& hessian_diag) {
        update(indices, detail::outer_product_rows(gradients), detail::outer_product_rows(hessian_diag));
    }
    /// @}

    /// The bias-corrected gradient averages \f$\bar g_i = m_i / (1 - \beta_1^{t_i})\f$, n x d.
    /// \throws std::logic_error before the first update or while some row has never been updated.
    Matrix smoothed_gradients() const {
        return compute("AdaCore::smoothed_gradients()", [](double g, double) { return g; });
    }

    /// The bias-corrected curvature \f$\bar h_i = \sqrt{v_i / (1 - \beta_2^{t_i})}\f$, n x d (>= 0).
    /// \throws std::logic_error as smoothed_gradients().
    Matrix smoothed_curvature() const {
        return compute("AdaCore::smoothed_curvature()", [](double, double h) { return h; });
    }

    /// The preconditioned rows \f$u_i = \bar g_i \oslash (\bar h_i^{\,k} + \epsilon)\f$, n x d: what
    /// `select` runs facility location on.
    /// \throws std::logic_error as smoothed_gradients(); std::invalid_argument if some u is not
    ///         finite (a zero curvature with eps = 0, or an overflow of Scalar).
    Matrix preconditioned() const { return precondition("AdaCore::preconditioned()"); }

    /// Selects `budget` examples by facility location on `preconditioned()`, one ground set:
    /// `Craig(options().craig_options()).select(preconditioned(), budget, callbacks...)`.
    /// \return picks in greedy order, weights = cluster sizes (sum n), objective[t] = F after pick t.
    /// \throws std::logic_error as smoothed_gradients(); std::invalid_argument for a budget outside
    ///         [1, n] or a failure of preconditioned() or of the engine (see Craig::select).
    template <class... Callbacks>
    Coreset<Scalar> select(Eigen::Index budget, Callbacks&&... callbacks) const {
        const char* where = "AdaCore::select()";
        detail::check_budget(budget, n_, where);
        const Matrix u = precondition(where);
        return as_adacore(where, [&] { return Craig(options_.craig_options()).select(u, budget, callbacks...); });
    }

    /// Per-class selection on `preconditioned()` (the paper selects per class): the budget is split
    /// by `options().class_budget` and each class is selected independently, as
    /// `Craig::select(gradients, labels, budget)`. Indices are example indices; each class's weights
    /// sum to its size.
    /// \param labels length n, values >= 0: an Eigen integer vector or a contiguous integer range
    ///        (as Craig::select).
    /// \throws as select(budget), and for labels of the wrong length or negative.
    template <class L, class... Callbacks, class = std::enable_if_t<detail::is_labels<L>::value>>
    Coreset<Scalar> select(const L& labels, Eigen::Index budget, Callbacks&&... callbacks) const {
        const char* where = "AdaCore::select()";
        detail::class_labels(labels, n_, where);
        detail::check_budget(budget, n_, where);
        const Matrix u = precondition(where);
        return as_adacore(where, [&] { return Craig(options_.craig_options()).select(u, labels, budget, callbacks...); });
    }

private:
    // Runs Craig on the preconditioned rows and reports its errors (a zero row under
    // Metric::Cosine, a memory budget too small) as errors of `where`, the function the caller
    // called, naming the rows as `preconditioned()` does.
    template <class Fn>
    static auto as_adacore(const char* where, Fn&& fn) -> decltype(fn()) {
        try {
            return fn();
        } catch (const std::invalid_argument& e) {
            std::string message = e.what();
            const std::string craig = "Craig::select(): ", rows = "gradients ";
            if (message.compare(0, craig.size(), craig) != 0) throw;
            message.replace(0, craig.size(), std::string(where) + ": ");
            const std::size_t at = std::string(where).size() + 2;
            if (message.compare(at, rows.size(), rows) == 0)
                message.replace(at, rows.size(), "u = g_bar / (h_bar^hessian_power + eps) ");
            detail::raise(message);
        }
    }

    template <class DerivedG, class DerivedH>
    void check_observation(const Eigen::MatrixBase<DerivedG>& g, const Eigen::MatrixBase<DerivedH>& h,
                           const char* where) const {
        static_assert(std::is_floating_point<typename DerivedG::Scalar>::value,
                      "coreset: gradients must be float or double");
        static_assert(std::is_floating_point<typename DerivedH::Scalar>::value,
                      "coreset: hessian_diag must be float or double");
        detail::check_nonempty(g, where, "gradients");
        detail::check_nonempty(h, where, "hessian_diag");
        detail::require(h.rows() == g.rows() && h.cols() == g.cols(), where,
                        "hessian_diag must have the shape of gradients (got ", h.rows(), " x ", h.cols(),
                        " for ", g.rows(), " x ", g.cols(), ")");
        if (d_ != 0)
            detail::require(g.cols() == d_, where, "gradients must have d = ", d_,
                            " columns, as in earlier updates (got ", g.cols(), ")");
        detail::check_finite(g, where, "gradients");
        detail::check_finite(h, where, "hessian_diag");
        check_state_range(g, where, "gradients");
        check_state_range(h, where, "hessian_diag");
    }

    // The state is stored in Scalar: an observation past Scalar's range (a double 1e300 into float
    // state) would make the averages infinite, so it is rejected with the caller's value.
    template <class Derived>
    static void check_state_range(const Eigen::MatrixBase<Derived>& x, const char* where, const char* name) {
        if constexpr (sizeof(typename Derived::Scalar) > sizeof(Scalar)) {
            const double largest = static_cast<double>(std::numeric_limits<Scalar>::max());
            for (Eigen::Index j = 0; j < x.cols(); ++j)
                for (Eigen::Index i = 0; i < x.rows(); ++i) {
                    const auto v = x.derived().coeff(i, j);
                    if (!(std::abs(static_cast<double>(v)) <= largest))
                        detail::raise(where, ": ", name, " must satisfy |value| <= ", std::numeric_limits<Scalar>::max(),
                                      ", the largest value of the state's scalar type (got ", v, " at row ", i,
                                      ", column ", j, ")");
                }
        }
    }

    template <class DerivedG, class DerivedH>
    void update_listed(const std::vector<Eigen::Index>& rows, const Eigen::MatrixBase<DerivedG>& gradients,
                       const Eigen::MatrixBase<DerivedH>& hessian_diag) {
        const char* where = "AdaCore::update()";
        const auto m = static_cast<Eigen::Index>(rows.size());
        detail::require(m == gradients.rows(), where,
                        "indices must have one entry per row of gradients (got ", m, " indices for ",
                        gradients.rows(), " rows)");
        std::vector<std::pair<Eigen::Index, Eigen::Index>> sorted(rows.size());  // (index, position)
        for (Eigen::Index j = 0; j < m; ++j) sorted[static_cast<std::size_t>(j)] = {rows[static_cast<std::size_t>(j)], j};
        std::sort(sorted.begin(), sorted.end());
        for (std::size_t t = 1; t < sorted.size(); ++t)
            if (sorted[t].first == sorted[t - 1].first)
                detail::raise(where, ": indices must be unique (got ", sorted[t].first, " at positions ",
                              sorted[t - 1].second, " and ", sorted[t].second, ")");
        commit(&rows, gradients, hessian_diag);
    }

    // Everything that can fail has been checked; only allocation of the first update can throw, and
    // it happens before any member changes.
    template <class DerivedG, class DerivedH>
    void commit(const std::vector<Eigen::Index>* rows, const Eigen::MatrixBase<DerivedG>& g,
                const Eigen::MatrixBase<DerivedH>& h) {
        const detail::ThreadScope threads(options_.num_threads);
        if (d_ == 0) {
            Matrix m = Matrix::Zero(n_, g.cols());
            Matrix r = Matrix::Zero(n_, g.cols());
            m_.swap(m);
            r_.swap(r);
            d_ = g.cols();
        }
        const double a1 = options_.beta1, b1 = 1.0 - options_.beta1;
        const double a2 = options_.beta2, b2 = 1.0 - options_.beta2;
        const Eigen::Index count = g.rows(), d = d_;
        CORESET_OMP(omp parallel for schedule(static) if (count * d >= 32768))
        for (Eigen::Index j = 0; j < count; ++j) {
            const Eigen::Index i = rows ? (*rows)[static_cast<std::size_t>(j)] : j;
            detail::note_team();
            for (Eigen::Index k = 0; k < d; ++k) {
                const double gv = static_cast<double>(g.derived().coeff(j, k));
                const double hv = static_cast<double>(h.derived().coeff(j, k));
                const double mv = static_cast<double>(m_(i, k)), rv = static_cast<double>(r_(i, k));
                m_(i, k) = static_cast<Scalar>(a1 * mv + b1 * gv);
                double root = std::sqrt(a2 * rv * rv + b2 * hv * hv);
                // Only double state can overflow here; the root itself is <= max(|r|, |h|).
                if (!std::isfinite(root)) root = std::hypot(std::sqrt(a2) * rv, std::sqrt(b2) * hv);
                r_(i, k) = static_cast<Scalar>(root);
            }
            ++steps_[static_cast<std::size_t>(i)];
        }
    }

    // 1 - beta^t, accurate for beta near 1 and small t.
    static double correction(double beta, std::int64_t t) {
        if (beta == 0.0) return 1.0;
        return -std::expm1(static_cast<double>(t) * std::log(beta));
    }

    void require_observed(const char* where) const {
        detail::require_state(d_ > 0, where, "call update() first (no observation yet)");
        for (std::size_t i = 0; i < steps_.size(); ++i)
            detail::require_state(steps_[i] > 0, where,
                                  "every example must have been updated at least once (row ", i,
                                  " has no update)");
    }

    // out(i, k) = fn(g_bar(i, k), h_bar(i, k)), in double, rounded once.
    template <class Fn>
    Matrix compute(const char* where, Fn fn) const {
        const detail::ThreadScope threads(options_.num_threads);
        require_observed(where);
        Matrix out(n_, d_);
        const Eigen::Index n = n_, d = d_;
        const double largest = static_cast<double>(std::numeric_limits<Scalar>::max());
        const double slack = sizeof(Scalar) < sizeof(double) ? largest * (1 + 1e-6) : largest;
        CORESET_OMP(omp parallel for schedule(static) if (n * d >= 32768))
        for (Eigen::Index i = 0; i < n; ++i) {
            const std::int64_t t = steps_[static_cast<std::size_t>(i)];
            detail::note_team();
            const double c1 = correction(options_.beta1, t), c2 = std::sqrt(correction(options_.beta2, t));
            for (Eigen::Index k = 0; k < d; ++k) {
                double v = fn(static_cast<double>(m_(i, k)) / c1, static_cast<double>(r_(i, k)) / c2);
                // An average of values <= Scalar's largest is <= it: an excess of a few units in the
                // last place is the rounding of the stored state, not an overflow.
                if (std::abs(v) > largest && std::abs(v) <= slack) v = std::copysign(largest, v);
                out(i, k) = static_cast<Scalar>(v);
            }
        }
        return out;
    }

    Matrix precondition(const char* where) const {
        const double power = options_.hessian_power, eps = options_.eps;
        Matrix u;
        if (power == 1.0)
            u = compute(where, [eps](double g, double h) { return g / (h + eps); });
        else if (power == 0.5)
            u = compute(where, [eps](double g, double h) { return g / (std::sqrt(h) + eps); });
        else
            u = compute(where, [eps, power](double g, double h) { return g / (std::pow(h, power) + eps); });
        detail::check_finite(u, where, "u = g_bar / (h_bar^hessian_power + eps)");
        return u;
    }

    Eigen::Index n_;
    AdaCoreOptions options_;
    Eigen::Index d_ = 0;
    Matrix m_;                         // EMA of g, not bias-corrected
    Matrix r_;                         // sqrt of the EMA of h^2, not bias-corrected
    std::vector<std::int64_t> steps_;  // updates per row
};

}  // namespace coreset
