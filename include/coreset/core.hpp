// SPDX-License-Identifier: MIT
/// \file core.hpp
/// \brief The result type, status codes, option enums and callback hooks every selector shares.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/checks.hpp"

namespace coreset {

/// Distance between two gradient rows used by the facility-location methods (CRAIG, AdaCore, CREST).
enum class Metric {
    Euclidean,         ///< \f$\|g_i - g_j\|\f$: the CRAIG reference code (baharanm/craig).
    SquaredEuclidean,  ///< \f$\|g_i - g_j\|^2\f$: apricot and CORDS.
    Cosine,            ///< \f$1 - \cos(g_i, g_j)\f$; every row must be non-zero.
    /// \f$1 - \exp(-\|g_i - g_j\| / d)\f$, d the number of columns: submodlib's "euclidean"
    /// similarity \f$\exp(-\|g_i - g_j\| / d)\f$ (the CREST reference code) as a distance. The
    /// facility-location constant is then C = 1, so F(S) is the sum of the rows' largest
    /// similarities to S, submodlib's objective.
    ExpEuclidean
};

/// Greedy maximiser of the facility-location objective.
enum class Greedy {
    Naive,      ///< Exact greedy (gains kept up to date incrementally).
    Lazy,       ///< Lazy greedy (Minoux): the same picks as Naive, fewer gain evaluations.
    Stochastic  ///< Stochastic greedy (Mirzasoleiman et al. 2015): a random sample per step.
};

/// How a total budget k is split over classes by the per-class overloads (n rows, class c has n_c,
/// C = number of non-empty classes).
enum class ClassBudget {
    Proportional,  ///< Largest-remainder split proportional to class sizes, >= 1 per non-empty class.
    Equal,         ///< k / C per class; the shortfall of small classes goes to the others.
    /// ceil(k n_c / n) per class (CORDS' GRAD-MATCH and CRAIG, baharanm/craig without `equal_num`):
    /// the total can exceed k (by at most C - 1); never more than n_c.
    Ceil,
    /// baharanm/craig's `equal_num`: ceil(k / C) per class; when some classes have fewer rows than
    /// that, each other class gets ceil(shortfall / number of such classes) more. Every class is
    /// clamped to n_c; the total can differ from k.
    EqualCeil
};

/// Why a selection stopped.
enum class Status {
    BudgetReached,     ///< The budget was used in full.
    ToleranceReached,  ///< GRAD-MATCH: the relative residual fell below the tolerance.
    Exhausted,         ///< No remaining candidate can improve the objective.
    StoppedByCallback  ///< A callback's `on_step` returned true.
};

inline const char* to_string(Metric m) noexcept {
    switch (m) {
        case Metric::Euclidean: return "Euclidean";
        case Metric::SquaredEuclidean: return "SquaredEuclidean";
        case Metric::Cosine: return "Cosine";
        case Metric::ExpEuclidean: return "ExpEuclidean";
    }
    return "unknown Metric";
}
inline const char* to_string(Greedy g) noexcept {
    switch (g) {
        case Greedy::Naive: return "Naive";
        case Greedy::Lazy: return "Lazy";
        case Greedy::Stochastic: return "Stochastic";
    }
    return "unknown Greedy";
}
inline const char* to_string(ClassBudget c) noexcept {
    switch (c) {
        case ClassBudget::Proportional: return "Proportional";
        case ClassBudget::Equal: return "Equal";
        case ClassBudget::Ceil: return "Ceil";
        case ClassBudget::EqualCeil: return "EqualCeil";
    }
    return "unknown ClassBudget";
}
inline const char* to_string(Status s) noexcept {
    switch (s) {
        case Status::BudgetReached: return "BudgetReached";
        case Status::ToleranceReached: return "ToleranceReached";
        case Status::Exhausted: return "Exhausted";
        case Status::StoppedByCallback: return "StoppedByCallback";
    }
    return "unknown Status";
}
inline std::ostream& operator<<(std::ostream& os, Metric v) { return os << to_string(v); }
inline std::ostream& operator<<(std::ostream& os, Greedy v) { return os << to_string(v); }
inline std::ostream& operator<<(std::ostream& os, ClassBudget v) { return os << to_string(v); }
inline std::ostream& operator<<(std::ostream& os, Status v) { return os << to_string(v); }

/// A weighted subset of the rows of a gradient matrix.
///
/// \tparam Scalar float or double, deduced from the gradients.
template <class Scalar>
struct Coreset {
    static_assert(std::is_floating_point<Scalar>::value, "coreset: Scalar must be float or double");
    /// Rows of the input, in selection order; no index appears twice.
    std::vector<Eigen::Index> indices;
    /// `weights[j]` belongs to `indices[j]`; every weight is > 0 and finite.
    Eigen::Matrix<Scalar, Eigen::Dynamic, 1> weights;
    /// The method's objective after each pick (see each method's documentation).
    std::vector<double> objective;
    /// Why the selection stopped.
    Status status = Status::BudgetReached;

    /// Number of selected rows.
    Eigen::Index size() const noexcept { return static_cast<Eigen::Index>(indices.size()); }
};

/// Rescales weights to mean 1: \f$w_j |S| / \sum_s w_s\f$. This is the scale the reference trainers
/// use for networks (loss = mean of w_i * loss_i over a mini-batch); the raw scale (weights summing
/// to n, cluster sizes) is the one for convex models trained with per-example step sizes.
template <class Derived>
Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> mean_one(const Eigen::MatrixBase<Derived>& weights) {
    using Scalar = typename Derived::Scalar;
    detail::require(weights.size() > 0, "coreset::mean_one()", "weights must not be empty (got size 0)");
    detail::check_finite(weights, "coreset::mean_one()", "weights");
    // In double, on weights scaled by the power of two that brings max |w| into [0.5, 1): the sum
    // can neither overflow (3e38f + 3e38f) nor make n / sum overflow (1e-40f + 1e-40f).
    const Eigen::VectorXd w = weights.template cast<double>();
    int e = 0;
    std::frexp(w.cwiseAbs().maxCoeff(), &e);
    const Eigen::VectorXd ws = w.unaryExpr([e](double v) { return std::ldexp(v, -e); });
    const double total = ws.sum();
    detail::require(total > 0, "coreset::mean_one()", "weights must have a positive sum (got ", std::ldexp(total, e),
                    ")");
    const Eigen::VectorXd out = ws * (static_cast<double>(weights.size()) / total);
    const double largest = static_cast<double>(std::numeric_limits<Scalar>::max());
    detail::require(out.cwiseAbs().maxCoeff() <= largest, "coreset::mean_one()",
                    "weights must have mean-1 values within the scalar type's range (got a largest |w| * n / sum of ",
                    out.cwiseAbs().maxCoeff(), ")");
    return out.template cast<Scalar>();
}

/// What a callback's `on_step` sees after each pick.
struct StepInfo {
    Eigen::Index step;    ///< 0-based number of the pick.
    Eigen::Index picked;  ///< Row picked at this step (in the matrix the selector is working on).
    double gain;          ///< Objective improvement of this pick.
    double objective;     ///< Objective after the pick.
};

namespace detail {

template <class C, class = void>
struct has_on_step : std::false_type {};
template <class C>
struct has_on_step<C, std::void_t<decltype(std::declval<C&>().on_step(std::declval<const StepInfo&>()))>>
    : std::true_type {};

/// Calls `on_step` on every callback that has one; true when any of them asks to stop.
template <class... Callbacks>
bool notify_step(const StepInfo& info, Callbacks&... cbs) {
    bool stop = false;
    auto one = [&](auto& cb) {
        using C = std::decay_t<decltype(cb)>;
        if constexpr (has_on_step<C>::value) {
            using R = decltype(cb.on_step(info));
            if constexpr (std::is_convertible<R, bool>::value) {
                if (cb.on_step(info)) stop = true;
            } else {
                cb.on_step(info);
            }
        }
    };
    (one(cbs), ...);
    (void)one;
    return stop;
}

/// Row-major dense matrix: the layout the kernels work on (row i = example i, contiguous).
template <class Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

}  // namespace detail
}  // namespace coreset
