// SPDX-License-Identifier: MIT
/// \file craig.hpp
/// \brief CRAIG (Mirzasoleiman, Bilmes and Leskovec, "Coresets for Data-efficient Training of
/// Machine Learning Models", ICML 2020): facility location on gradient rows, weights = cluster sizes.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <type_traits>

#include "core.hpp"
#include "detail/checks.hpp"
#include "detail/class_split.hpp"
#include "factored.hpp"
#include "facility_location.hpp"

namespace coreset {

/// Options of Craig. Every field has a default; `validate()` checks ranges.
struct CraigOptions {
    /// Distance between gradient rows. Default Euclidean (the CRAIG reference code); CORDS and
    /// apricot use SquaredEuclidean.
    Metric metric = Metric::Euclidean;
    /// Greedy variant; Naive and Lazy give identical picks. Default Lazy.
    Greedy greedy = Greedy::Lazy;
    /// Stochastic greedy's epsilon, in (0, 1). Default 0.01.
    double epsilon = 0.01;
    /// Seed of the stochastic sampler. Default 0.
    std::uint64_t seed = 0;
    /// Bytes the engine may allocate per ground set (per class for per-class selection). Default 1 GiB.
    std::size_t memory_budget_bytes = std::size_t(1) << 30;
    /// Dense, blocked or automatic distance evaluation. Default Auto.
    Evaluation evaluation = Evaluation::Auto;
    /// Split of the budget over classes for the per-class overload. Default Proportional.
    /// ClassBudget::Ceil is the CRAIG reference's default split (ceil(k n_c / n)), EqualCeil its
    /// `equal_num` split; both can return more (EqualCeil also fewer) than `budget` rows.
    ClassBudget class_budget = ClassBudget::Proportional;
    /// Threads of the selector's own OpenMP regions (and of the Eigen products it runs outside
    /// them), >= 0; 0 (the default) = OpenMP's default (OMP_NUM_THREADS, else the number of
    /// cores). Bounds only the library's work: the caller's code and other threads are unaffected.
    /// Results do not depend on it.
    int num_threads = 0;

    /// \throws std::invalid_argument naming the first out-of-range field.
    void validate() const {
        engine().validate_as("CraigOptions::validate()");
        detail::check_option(detail::is_class_budget(class_budget), static_cast<int>(class_budget),
                             "CraigOptions::validate()", "class_budget", "a ClassBudget enumerator");
    }
    /// The facility-location engine's options.
    FacilityLocationOptions engine() const {
        return FacilityLocationOptions{metric, greedy, epsilon, seed, memory_budget_bytes, evaluation, num_threads};
    }
};

/// CRAIG selector: greedy facility location (greedy k-medoids) in gradient space.
///
/// Rows are per-example gradients (n x d): raw features for convex models, last-layer gradients such
/// as p - onehot(y) for networks. The weight of a pick is the number of rows it represents (rows
/// whose most similar pick it is), so weights sum to n; use coreset::mean_one for mean-1 weights.
///
/// \code{.cpp}
/// coreset::Craig craig;                                // Euclidean, lazy greedy
/// auto subset = craig.select(gradients, labels, 600);  // per class, 600 rows in all
/// // train on gradients.row(subset.indices[j]) with step multiplier subset.weights[j]
/// \endcode
class Craig {
public:
    /// \throws std::invalid_argument if `options` is invalid.
    explicit Craig(CraigOptions options = {}) : options_(options) { options_.validate(); }

    const CraigOptions& options() const noexcept { return options_; }

    /// Selects `budget` rows of `gradients` (n x d) as one ground set.
    /// \return picks in greedy order, weights summing to n, objective[t] = F after pick t.
    /// \throws std::invalid_argument for empty or non-finite gradients, budget outside [1, n], a zero
    ///         row under Metric::Cosine, or a memory budget too small for n.
    template <class Derived, class... Callbacks>
    Coreset<typename Derived::Scalar> select(const Eigen::MatrixBase<Derived>& gradients, Eigen::Index budget,
                                             Callbacks&&... callbacks) const {
        using Scalar = typename Derived::Scalar;
        static_assert(std::is_floating_point<Scalar>::value, "coreset: gradients must be float or double");
        return detail::run_facility_location<Scalar>(gradients, nullptr, budget, options_.engine(),
                                                     "Craig::select()", callbacks...);
    }

    /// Per-class selection: the budget is split over classes by `options().class_budget`, each
    /// class is selected independently (classes run in parallel under OpenMP) and the results are
    /// merged class by class. Indices are rows of `gradients`; each class's weights sum to its
    /// size; objective is F of the union after each pick in the merged order.
    /// With callbacks, the classes run one after the other (each on the whole team): the
    /// callbacks see global row indices, a step count over all classes and the objective of the
    /// union, from one thread at a time; a stop skips the classes not yet selected.
    /// \param labels length n, values >= 0: an Eigen integer vector of any integer type or a
    ///        contiguous integer range (std::vector<int>, std::span, ...); classes are the distinct
    ///        labels, in ascending order.
    template <class Derived, class L, class... Callbacks, class = std::enable_if_t<detail::is_labels<L>::value>>
    Coreset<typename Derived::Scalar> select(const Eigen::MatrixBase<Derived>& gradients, const L& labels,
                                             Eigen::Index budget, Callbacks&&... callbacks) const {
        using Scalar = typename Derived::Scalar;
        static_assert(std::is_floating_point<Scalar>::value, "coreset: gradients must be float or double");
        detail::check_matrix(gradients, "Craig::select()", "gradients");
        return select_classes<Scalar>(gradients, labels, budget, callbacks...);
    }

    /// Per-batch selection (CRAIG-PB): rows are grouped into consecutive mini-batches of
    /// `batch_size` (the last may be smaller), each represented by its mean row with multiplicity =
    /// its size; greedy picks ceil(budget / batch_size) batches and every member of a picked batch
    /// inherits the batch's weight divided by the batch size. Returns member indices (batch order,
    /// rows in order), so the size is about `budget` (exactly, when batches are full). Callbacks
    /// see batch indices.
    template <class Derived, class... Callbacks>
    Coreset<typename Derived::Scalar> select_batches(const Eigen::MatrixBase<Derived>& gradients,
                                                     Eigen::Index batch_size, Eigen::Index budget,
                                                     Callbacks&&... callbacks) const {
        using Scalar = typename Derived::Scalar;
        static_assert(std::is_floating_point<Scalar>::value, "coreset: gradients must be float or double");
        detail::check_matrix(gradients, "Craig::select_batches()", "gradients");
        return select_batches_of<Scalar>(gradients, batch_size, budget, callbacks...);
    }

    /// \name Factored gradients
    /// The same three selections on rows g_i = e_i (x) h_i given by their factors (factored.hpp):
    /// the same picks and weights as on `gradients.dense()`, up to rounding, without forming it.
    /// Distances come from the factored Gram (E E^T) o (H H^T); per batch, each batch mean is
    /// E_b^T H_b / |b| (explicit, one C x E matrix per batch).
    /// @{
    template <class Scalar, class... Callbacks>
    Coreset<Scalar> select(const FactoredGradients<Scalar>& gradients, Eigen::Index budget,
                           Callbacks&&... callbacks) const {
        return detail::run_facility_location<Scalar>(detail::balanced_rows(gradients), nullptr, budget,
                                                     options_.engine(), "Craig::select()", callbacks...);
    }
    template <class Scalar, class L, class... Callbacks, class = std::enable_if_t<detail::is_labels<L>::value>>
    Coreset<Scalar> select(const FactoredGradients<Scalar>& gradients, const L& labels, Eigen::Index budget,
                           Callbacks&&... callbacks) const {
        return select_classes<Scalar>(detail::balanced_rows(gradients), labels, budget, callbacks...);
    }
    template <class Scalar, class... Callbacks>
    Coreset<Scalar> select_batches(const FactoredGradients<Scalar>& gradients, Eigen::Index batch_size,
                                   Eigen::Index budget, Callbacks&&... callbacks) const {
        return select_batches_of<Scalar>(gradients, batch_size, budget, callbacks...);
    }
    /// @}

private:
    // Per class, on a checked Eigen matrix or factored gradients.
    template <class Scalar, class G, class L, class... Callbacks>
    Coreset<Scalar> select_classes(const G& gradients, const L& labels, Eigen::Index budget,
                                   Callbacks&... callbacks) const {
        const char* where = "Craig::select()";
        const detail::ThreadScope threads(options_.num_threads);
        const auto groups = detail::class_labels(labels, gradients.rows(), where).groups;
        detail::check_budget(budget, gradients.rows(), where);
        if (options_.metric == Metric::Cosine) detail::check_no_zero_row(gradients, where, "gradients");
        std::vector<Eigen::Index> sizes;
        for (const auto& g : groups) sizes.push_back(static_cast<Eigen::Index>(g.size()));
        const auto budgets = detail::split_budget(sizes, budget, options_.class_budget);
        const FacilityLocationOptions engine = options_.engine();
        return detail::per_class_observed<Scalar>(
            gradients, groups, budgets, detail::ObjectiveMerge::Cumulative,
            [&](const auto& rows, Eigen::Index k, auto&... relay) {
                return detail::run_facility_location<Scalar>(rows, nullptr, k, engine, where, relay...);
            },
            callbacks...);
    }

    // Per batch, on a checked Eigen matrix or factored gradients.
    template <class Scalar, class G, class... Callbacks>
    Coreset<Scalar> select_batches_of(const G& gradients, Eigen::Index batch_size, Eigen::Index budget,
                                      Callbacks&... callbacks) const {
        const char* where = "Craig::select_batches()";
        detail::check_option(batch_size >= 1, batch_size, where, "batch_size", "batch_size >= 1");
        detail::check_budget(budget, gradients.rows(), where);
        detail::RowMatrix<Scalar> means;
        detail::Vector<Scalar> sizes;
        detail::batch_means(gradients, batch_size, means, sizes);
        // Means of finite rows are finite; a factored batch mean (of products e_i h_i^T) can pass
        // Scalar's range, and cannot be selected on.
        detail::check_finite(means, where, "batch means");
        if (options_.metric == Metric::Cosine) detail::check_no_zero_row(means, where, "gradients");
        const Eigen::Index batches = (budget - 1) / batch_size + 1;  // ceil, without overflow
        const auto picked =
            detail::run_facility_location<Scalar>(means, &sizes, batches, options_.engine(), where, callbacks...);
        return detail::expand_batches(picked, gradients.rows(), batch_size);
    }

    CraigOptions options_;
};

}  // namespace coreset
