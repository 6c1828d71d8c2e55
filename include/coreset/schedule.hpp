// SPDX-License-Identifier: MIT
/// \file schedule.hpp
/// \brief The reference trainers' recipes for using a coreset, as small functions: which epoch
/// trains on what (warm start, reselection interval), how the weights enter a mini-batch loss,
/// optional weight clipping, and the seeded shuffles of the per-batch variants. The library still
/// trains nothing: the trainer asks and acts.
///
/// \code{.cpp}
/// coreset::Schedule plan({/*epochs*/ 200, /*reselect_every*/ 20, /*warm_fraction*/ 0.5,
///                         /*budget_fraction*/ 0.1});
/// for (Eigen::Index e = 0; e < plan.epochs(); ++e) {
///     switch (plan.at(e)) {
///         case coreset::EpochPlan::Full: train(all_rows); break;
///         case coreset::EpochPlan::Skip: break;                    // the warm start's compute is paid back
///         case coreset::EpochPlan::Select: subset = select(model); [[fallthrough]];
///         case coreset::EpochPlan::Reuse: train(subset, coreset::epoch_permutation(subset.size(), seed, e)); break;
///     }
///     lr_schedule.step();                                           // every epoch, trained or not
/// }
/// // in train(): loss = sum_j b[j] * loss_j with b = coreset::batch_loss_weights(w_of_batch)
/// \endcode
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "core.hpp"
#include "detail/checks.hpp"
#include "detail/rng.hpp"

namespace coreset {

/// What one epoch of a coreset training run does (Schedule::at).
enum class EpochPlan {
    Full,    ///< Train on the full data (the warm start).
    Skip,    ///< Train on nothing: the warm start's extra cost is paid back (GRAD-MATCH "-Warm").
    Select,  ///< Select a new subset with the current model, then train on it.
    Reuse    ///< Train on the subset selected last.
};

inline const char* to_string(EpochPlan p) noexcept {
    switch (p) {
        case EpochPlan::Full: return "Full";
        case EpochPlan::Skip: return "Skip";
        case EpochPlan::Select: return "Select";
        case EpochPlan::Reuse: return "Reuse";
    }
    return "unknown EpochPlan";
}
inline std::ostream& operator<<(std::ostream& os, EpochPlan v) { return os << to_string(v); }

/// Options of Schedule. The defaults select once per epoch with no warm start (CRAIG's reference).
struct ScheduleOptions {
    /// Total epochs T of the run, >= 1.
    Eigen::Index epochs = 1;
    /// R: a new subset every R subset epochs, >= 1 (CORDS' `select_every`; GRAD-MATCH uses 20,
    /// CRAIG's reference 1).
    Eigen::Index reselect_every = 1;
    /// kappa in [0, 1): the warm start of GRAD-MATCH "-Warm" (CORDS' AdaptiveDSSDataLoader). The
    /// first floor(kappa T) epochs cost what ceil(floor(kappa T) k / n) full epochs cost: that many
    /// epochs train on the full data, the rest of them are skipped; subset training starts at
    /// epoch floor(kappa T). 0 (the default): no warm start. CORDS' warm configurations use 0.5.
    double warm_fraction = 0.0;
    /// k / n in (0, 1], the subset's share of the data (sets the length of the warm start).
    double budget_fraction = 1.0;

    /// \throws std::invalid_argument naming the first field out of range.
    void validate() const {
        const char* where = "ScheduleOptions::validate()";
        detail::check_option(epochs >= 1, epochs, where, "epochs", "epochs >= 1");
        detail::check_option(reselect_every >= 1, reselect_every, where, "reselect_every", "reselect_every >= 1");
        detail::check_option(warm_fraction >= 0.0 && warm_fraction < 1.0, warm_fraction, where, "warm_fraction",
                             "0 <= warm_fraction < 1");
        detail::check_option(budget_fraction > 0.0 && budget_fraction <= 1.0, budget_fraction, where,
                             "budget_fraction", "0 < budget_fraction <= 1");
    }
};

/// Which epoch trains on what: the warm start (Full, then Skip), then subset epochs, a new
/// selection (Select) every `reselect_every`-th of them and the last subset (Reuse) otherwise.
class Schedule {
public:
    /// \throws std::invalid_argument if `options` is invalid.
    explicit Schedule(ScheduleOptions options = {}) : options_(options) {
        options_.validate();
        first_subset_ = static_cast<Eigen::Index>(
            std::floor(options_.warm_fraction * static_cast<double>(options_.epochs)));
        full_ = static_cast<Eigen::Index>(
            std::ceil(static_cast<double>(first_subset_) * options_.budget_fraction - 1e-12));
        if (full_ < 0) full_ = 0;
    }

    const ScheduleOptions& options() const noexcept { return options_; }
    Eigen::Index epochs() const noexcept { return options_.epochs; }
    /// Epochs on the full data at the start: ceil(floor(kappa T) k / n).
    Eigen::Index full_epochs() const noexcept { return full_; }
    /// The first subset epoch (a Select): floor(kappa T).
    Eigen::Index first_subset_epoch() const noexcept { return first_subset_; }
    /// Number of Select epochs in the run.
    Eigen::Index selections() const noexcept {
        const Eigen::Index subset_epochs = options_.epochs - first_subset_;
        return (subset_epochs + options_.reselect_every - 1) / options_.reselect_every;
    }
    /// The run's training cost in full-data epochs: full_epochs() + (subset epochs) k / n
    /// (selections not counted).
    double data_passes() const noexcept {
        return static_cast<double>(full_) +
               static_cast<double>(options_.epochs - first_subset_) * options_.budget_fraction;
    }

    /// What epoch `epoch` (0-based) does.
    /// \throws std::invalid_argument for an epoch outside [0, epochs).
    EpochPlan at(Eigen::Index epoch) const {
        detail::require(epoch >= 0 && epoch < options_.epochs, "Schedule::at()",
                        "epoch must satisfy 0 <= epoch < epochs (got epoch = ", epoch, ", epochs = ", options_.epochs,
                        ")");
        if (epoch < full_) return EpochPlan::Full;
        if (epoch < first_subset_) return EpochPlan::Skip;
        return (epoch - first_subset_) % options_.reselect_every == 0 ? EpochPlan::Select : EpochPlan::Reuse;
    }

private:
    ScheduleOptions options_;
    Eigen::Index first_subset_ = 0;
    Eigen::Index full_ = 0;
};

/// The weights of one mini-batch's per-example losses, as the reference trainers for networks
/// use them (CORDS, DeepCore): loss = sum_j w_j l_j / sum_j w_j, so this returns w / sum(w). The
/// batch loss is then on the scale of a plain mean whatever the weights' scale (raw cluster sizes,
/// GRAD-MATCH's coefficients, mean_one()), and a batch of large weights cannot blow up the step.
/// \param batch_weights the weights of the batch's members, each > 0 and finite.
/// \throws std::invalid_argument for an empty vector, a non-finite weight or one <= 0.
template <class Derived>
Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> batch_loss_weights(
    const Eigen::MatrixBase<Derived>& batch_weights) {
    using Scalar = typename Derived::Scalar;
    static_assert(std::is_floating_point<Scalar>::value, "coreset: weights must be float or double");
    const char* where = "coreset::batch_loss_weights()";
    detail::require(batch_weights.size() > 0, where, "batch_weights must not be empty (got size 0)");
    detail::check_finite(batch_weights.derived().reshaped(), where, "batch_weights");
    double total = 0.0;
    for (Eigen::Index j = 0; j < batch_weights.size(); ++j) {
        const double w = static_cast<double>(batch_weights.derived().reshaped()[j]);
        detail::require(w > 0.0, where, "batch_weights must be > 0 (got ", w, " at index ", j, ")");
        total += w;
    }
    Eigen::Matrix<Scalar, Eigen::Dynamic, 1> out(batch_weights.size());
    for (Eigen::Index j = 0; j < out.size(); ++j)
        out[j] = static_cast<Scalar>(static_cast<double>(batch_weights.derived().reshaped()[j]) / total);
    return out;
}

/// Weights clipped to at most `max_ratio` times their mean, then rescaled to mean 1: an option
/// for mini-batch SGD with CRAIG's cluster sizes (one medoid standing for 300 rows otherwise
/// takes a 300x step). Not in the papers: a stabiliser, off unless the trainer calls it.
/// \param weights every weight > 0 and finite.
/// \param max_ratio >= 1.
/// \throws std::invalid_argument for empty or non-finite weights, a weight <= 0, max_ratio < 1 or NaN.
template <class Derived>
Eigen::Matrix<typename Derived::Scalar, Eigen::Dynamic, 1> clip_weights(const Eigen::MatrixBase<Derived>& weights,
                                                                       double max_ratio) {
    using Scalar = typename Derived::Scalar;
    const char* where = "coreset::clip_weights()";
    detail::check_option(max_ratio >= 1.0 && std::isfinite(max_ratio), max_ratio, where, "max_ratio",
                         "1 <= max_ratio < inf");
    const Eigen::Matrix<Scalar, Eigen::Dynamic, 1> b = batch_loss_weights(weights);  // w / sum(w), checked
    const double n = static_cast<double>(b.size()), cap = max_ratio / n;
    Eigen::Matrix<Scalar, Eigen::Dynamic, 1> out(b.size());
    double total = 0.0;
    for (Eigen::Index j = 0; j < b.size(); ++j) total += std::min(static_cast<double>(b[j]), cap);
    for (Eigen::Index j = 0; j < b.size(); ++j)
        out[j] = static_cast<Scalar>(std::min(static_cast<double>(b[j]), cap) * (n / total));
    return out;
}

/// A random permutation of 0, ..., n - 1 for epoch `epoch` of a run seeded with `seed`: the
/// shuffled loader the per-batch variants (CRAIG-PB, GRAD-MATCH-PB) need, so that batches are
/// fresh every epoch and the same for the same seed on every platform (the library's generator).
/// \throws std::invalid_argument for n < 0 or epoch < 0.
inline std::vector<Eigen::Index> epoch_permutation(Eigen::Index n, std::uint64_t seed, Eigen::Index epoch) {
    const char* where = "coreset::epoch_permutation()";
    detail::check_option(n >= 0, n, where, "n", "n >= 0");
    detail::check_option(epoch >= 0, epoch, where, "epoch", "epoch >= 0");
    std::vector<Eigen::Index> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), Eigen::Index(0));
    detail::Rng rng(seed ^ (0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(epoch) + 1)));
    rng.shuffle(order);
    return order;
}

}  // namespace coreset
