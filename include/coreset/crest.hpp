// SPDX-License-Identifier: MIT
/// \file crest.hpp
/// \brief CREST (Yang, Kang and Mirzasoleiman, ICML 2023): a stateful companion to a trainer's SGD
/// loop. It proposes random subsets, picks one mini-batch coreset from each with facility location,
/// keeps a quadratic model of the loss while the trainer reports its steps, says when the model has
/// drifted (re-selection), adapts the check interval and the number of coresets, and drops examples
/// the model has learned. It never trains and never needs a pass over the full data.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "core.hpp"
#include "craig.hpp"
#include "detail/checks.hpp"
#include "detail/class_split.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"

namespace coreset {

/// How Crest::next_batch() serves a round's mini-batch coresets.
enum class CrestServing {
    InTurn,        ///< One coreset per step, in turn: 0, 1, ..., P - 1, 0, ... (the paper's reading).
    ShuffledUnion  ///< The reference code's: the union of the P coresets, shuffled, served in batches of
                   ///< batch_size rows (the last one smaller), reshuffled when it is used up.
};

/// Which examples Crest counts as learned, and how it drops them.
enum class CrestLearnedRule {
    /// An example is learned when its last `watch_window` recorded losses are all below alpha; the
    /// guards are partial (a class keeps s rows, the pool ceil(min_pool_fraction n)), the smallest
    /// last losses leave first.
    Streak,
    /// The reference code's: a table of `watch_window` loss slots per example indexed by
    /// epoch % watch_window (stale slots keep old values); at a drop every active example with no
    /// stored loss > alpha leaves, except that never-evaluated ones stay, a class whose survivors
    /// would number <= s keeps its whole pool, and nothing changes unless the pool left is larger
    /// than min_pool_fraction n (all-or-nothing guards).
    LossTable
};

inline const char* to_string(CrestServing v) noexcept {
    switch (v) {
        case CrestServing::InTurn: return "InTurn";
        case CrestServing::ShuffledUnion: return "ShuffledUnion";
    }
    return "unknown CrestServing";
}
inline const char* to_string(CrestLearnedRule v) noexcept {
    switch (v) {
        case CrestLearnedRule::Streak: return "Streak";
        case CrestLearnedRule::LossTable: return "LossTable";
    }
    return "unknown CrestLearnedRule";
}
inline std::ostream& operator<<(std::ostream& os, CrestServing v) { return os << to_string(v); }
inline std::ostream& operator<<(std::ostream& os, CrestLearnedRule v) { return os << to_string(v); }

/// Options of Crest. Symbols are those of the paper's Algorithm 1; where the paper and the
/// reference code (BigML-CS-UCLA/CREST) disagree the default follows the paper and the field says
/// what the code uses (docs/crest.md lists every difference).
struct CrestOptions {
    /// m: rows per mini-batch coreset (paper and code: 128). A random subset smaller than m gives
    /// a coreset of its own size.
    Eigen::Index batch_size = 128;
    /// r / n: size of one random subset as a fraction of n, drawn per class:
    /// ceil(subset_fraction * n / C) rows of each of the C classes (paper and code: 0.01).
    /// Range (0, 1].
    double subset_fraction = 0.01;
    /// P for the first selection round: number of random subsets, hence of mini-batch coresets
    /// (code: 5). Range [1, max_coresets].
    Eigen::Index initial_coresets = 5;
    /// Upper bound on P (the code bounds it by its steps per pseudo-epoch, 40 on CIFAR-10).
    Eigen::Index max_coresets = 40;
    /// b: after each region, P = min(ceil(b * T1), max_coresets) (paper and code: 5). Range > 0.
    double batch_num_mul = 5;
    /// h: the check interval is T1 = ceil(h * ||h_0|| / ||h_l||) (paper: 1 on CIFAR-10, 10 on
    /// CIFAR-100; code: 1). Range > 0.
    double interval_mul = 1;
    /// tau: re-select when |L_true - L_model| > tau * L_true (paper: 0.05 on CIFAR-10; code: 0.1).
    /// Range >= 0.
    double tau = 0.05;
    /// Track learned examples and drop them from the active pool (paper: on; code: off).
    bool drop_learned = true;
    /// alpha: an example is learned when its last `watch_window` recorded losses are all below
    /// alpha (paper and code: 0.1). Range >= 0.
    double alpha = 0.1;
    /// T2: learned examples are dropped after every `drop_interval`-th selection round (code: every
    /// 20 pseudo-epochs). Range >= 1.
    Eigen::Index drop_interval = 20;
    /// Number of recorded losses an example needs, all below alpha, to count as learned (code: a
    /// window of 5 pseudo-epochs). Range >= 1.
    Eigen::Index watch_window = 5;
    /// The active pool never shrinks below ceil(min_pool_fraction * n) rows (code: 40 000 of
    /// CIFAR-10's 50 000). Range [0, 1].
    double min_pool_fraction = 0.8;
    /// Distance between last-layer gradient proxies; Euclidean is the paper's Eq. 11 (C - distance).
    /// The code uses submodlib's similarity exp(-distance / d): Metric::ExpEuclidean.
    Metric metric = Metric::Euclidean;
    /// Greedy maximiser of the facility-location objective. Naive and Lazy (the code's) make the
    /// same picks; on CREST's small per-class ground sets (s rows) Naive is the faster one.
    Greedy greedy = Greedy::Naive;
    /// Stochastic greedy's epsilon (only with Greedy::Stochastic). Range (0, 1).
    double epsilon = 0.01;
    /// Split of m over the classes present in a random subset (code: equal, ceil(m / C) each).
    ClassBudget class_budget = ClassBudget::Equal;
    /// Seed of the random subsets (and of stochastic greedy and of the ShuffledUnion order).
    std::uint64_t seed = 0;
    /// Threads of the selector's own OpenMP regions (and of the Eigen products it runs outside
    /// them), >= 0; 0 (the default) = OpenMP's default (OMP_NUM_THREADS, else the number of
    /// cores). Bounds only the library's work: the caller's code and other threads are unaffected.
    /// Results do not depend on it.
    int num_threads = 0;

    // Behaviours of the reference code (BigML-CS-UCLA/CREST) that differ from this library's; the
    // defaults keep this library's, reference() sets the code's.

    /// Per-class coreset sizes. false (default): min(m, |V_p|) rows split over the subset's classes
    /// by class_budget. true (the code's `equal_num`): every class present in V_p gets
    /// min(ceil(m / C_p), |class|) picks, C_p the classes present, so a coreset can have up to
    /// C_p ceil(m / C_p) >= m rows (130 for m = 128 on CIFAR-10).
    bool ceil_class_sizes = false;
    /// How next_batch() serves the coresets. Default InTurn; the code: ShuffledUnion.
    CrestServing serving = CrestServing::InTurn;
    /// T1 of the first region. 0 (default): ceil(interval_mul), the formula of later regions at
    /// h = h_0, and P = min(ceil(b T1), max_coresets) from the next round. >= 1 (the code: its
    /// `check_interval` argument, 1): that many steps, and the first region leaves P as it is (the
    /// second round draws initial_coresets subsets). Range >= 0.
    Eigen::Index first_interval = 0;
    /// Learned-example rule (only with drop_learned). Default Streak; the code: LossTable (which
    /// needs watch_window <= 64: it keeps one bit per slot and example).
    CrestLearnedRule learned_rule = CrestLearnedRule::Streak;

    /// The reference code's behaviour with its default arguments (utils/arguments.py): tau = 0.1,
    /// drop_learned = false (its `--drop_learned` is drop_learned = true, which then uses its
    /// LossTable rule), Metric::ExpEuclidean, lazy greedy, ceil(m / C) rows per class, the
    /// shuffled union served in batches, first_interval = 1. Every other field keeps its default,
    /// which is the code's (max_coresets = 40 is its steps per pseudo-epoch on CIFAR-10 with a 10 %
    /// budget; min_pool_fraction = 0.8 its 40 000 of 50 000). docs/crest.md lists what is not
    /// reproduced.
    static CrestOptions reference() {
        CrestOptions o;
        o.tau = 0.1;
        o.drop_learned = false;
        o.metric = Metric::ExpEuclidean;
        o.greedy = Greedy::Lazy;
        o.ceil_class_sizes = true;
        o.serving = CrestServing::ShuffledUnion;
        o.first_interval = 1;
        o.learned_rule = CrestLearnedRule::LossTable;
        return o;
    }

    /// Throws std::invalid_argument naming the first option out of range.
    void validate() const {
        const char* where = "CrestOptions::validate()";
        detail::check_option(batch_size >= 1, batch_size, where, "batch_size", "batch_size >= 1");
        detail::check_option(subset_fraction > 0 && subset_fraction <= 1, subset_fraction, where,
                             "subset_fraction", "0 < subset_fraction <= 1");
        detail::check_option(initial_coresets >= 1, initial_coresets, where, "initial_coresets",
                             "initial_coresets >= 1");
        detail::check_option(max_coresets >= initial_coresets, max_coresets, where, "max_coresets",
                             "max_coresets >= initial_coresets");
        detail::check_option(batch_num_mul > 0 && std::isfinite(batch_num_mul), batch_num_mul, where,
                             "batch_num_mul", "0 < batch_num_mul < inf");
        detail::check_option(interval_mul > 0 && std::isfinite(interval_mul), interval_mul, where,
                             "interval_mul", "0 < interval_mul < inf");
        detail::check_option(tau >= 0 && std::isfinite(tau), tau, where, "tau", "0 <= tau < inf");
        detail::check_option(alpha >= 0 && std::isfinite(alpha), alpha, where, "alpha", "0 <= alpha < inf");
        detail::check_option(drop_interval >= 1, drop_interval, where, "drop_interval", "drop_interval >= 1");
        detail::check_option(watch_window >= 1, watch_window, where, "watch_window", "watch_window >= 1");
        detail::check_option(min_pool_fraction >= 0 && min_pool_fraction <= 1, min_pool_fraction, where,
                             "min_pool_fraction", "0 <= min_pool_fraction <= 1");
        detail::check_option(epsilon > 0 && epsilon < 1, epsilon, where, "epsilon", "0 < epsilon < 1");
        detail::check_option(num_threads >= 0, num_threads, where, "num_threads", "num_threads >= 0");
        detail::check_option(learned_rule != CrestLearnedRule::LossTable || watch_window <= 64, watch_window, where,
                             "watch_window", "watch_window <= 64 under CrestLearnedRule::LossTable");
        detail::check_option(first_interval >= 0, first_interval, where, "first_interval", "first_interval >= 0");
        detail::check_option(serving == CrestServing::InTurn || serving == CrestServing::ShuffledUnion,
                             static_cast<int>(serving), where, "serving", "a CrestServing enumerator");
        detail::check_option(learned_rule == CrestLearnedRule::Streak || learned_rule == CrestLearnedRule::LossTable,
                             static_cast<int>(learned_rule), where, "learned_rule", "a CrestLearnedRule enumerator");
        detail::check_option(metric == Metric::Euclidean || metric == Metric::SquaredEuclidean ||
                                 metric == Metric::Cosine || metric == Metric::ExpEuclidean,
                             static_cast<int>(metric), where, "metric", "a Metric enumerator");
        detail::check_option(greedy == Greedy::Naive || greedy == Greedy::Lazy || greedy == Greedy::Stochastic,
                             static_cast<int>(greedy), where, "greedy", "a Greedy enumerator");
        detail::check_option(detail::is_class_budget(class_budget), static_cast<int>(class_budget), where,
                             "class_budget", "a ClassBudget enumerator");
    }

    /// The options of the facility-location selection run on each random subset.
    CraigOptions engine() const {
        CraigOptions o;
        o.metric = metric;
        o.greedy = greedy;
        o.epsilon = epsilon;
        o.seed = seed;
        o.class_budget = class_budget;
        o.num_threads = num_threads;
        return o;
    }
};

/// One selection round's random subsets, as returned by Crest::candidates().
struct CrestCandidates {
    /// The P random subsets: global row indices, class by class (ascending class), in draw order.
    std::vector<std::vector<Eigen::Index>> subsets;
    /// The subsets concatenated: the "candidate order". Row j of the gradients and entry j of the
    /// losses passed to Crest::select() belong to example `indices[j]`. An example may appear in
    /// several subsets (they are drawn independently).
    std::vector<Eigen::Index> indices;

    /// Number of candidate rows (sum of the subset sizes).
    Eigen::Index size() const noexcept { return static_cast<Eigen::Index>(indices.size()); }
};

/// A weighted mini-batch to train on, as returned by Crest::next_batch(). The trainer's loss is
/// mean_j(weights[j] * loss(indices[j])), as in the reference code.
struct CrestBatch {
    /// Global row indices, no index twice (CrestServing::ShuffledUnion: an example that two of the
    /// round's coresets picked can appear twice, once with each weight).
    std::vector<Eigen::Index> indices;
    /// weights[j] belongs to indices[j]: cluster sizes in the random subset, rescaled so that the
    /// weights of all P coresets of the round have mean 1.
    Eigen::VectorXd weights;
    /// Which of the round's coresets this is (0 .. P - 1); -1 for a batch of the shuffled union
    /// (CrestServing::ShuffledUnion).
    Eigen::Index coreset = 0;

    /// Number of rows.
    Eigen::Index size() const noexcept { return static_cast<Eigen::Index>(indices.size()); }
};

/// What a user plots: counters and the current schedule.
struct CrestStats {
    Eigen::Index selections = 0;    ///< select() calls so far.
    Eigen::Index checks = 0;        ///< check() calls so far.
    Eigen::Index reselections = 0;  ///< check() calls that asked for a re-selection.
    Eigen::Index steps = 0;         ///< record_update() calls so far, all regions.
    Eigen::Index region_steps = 0;  ///< record_update() calls since the last begin_region().
    Eigen::Index interval = 1;      ///< T1: steps between checks in the current region.
    Eigen::Index coresets = 0;      ///< P: random subsets the next candidates() draws.
    Eigen::Index pool_size = 0;     ///< Examples still active.
    Eigen::Index dropped = 0;       ///< Examples dropped as learned so far.
    double last_rho =
        std::numeric_limits<double>::quiet_NaN();  ///< |L_true - L_model| / L_true at the last check.
    double last_true_loss = std::numeric_limits<double>::quiet_NaN();   ///< L_true at the last check.
    double last_model_loss = std::numeric_limits<double>::quiet_NaN();  ///< L_model at the last check.
};

/// CREST's state machine. The trainer's loop, with the calls in the order they must come:
///
/// 1. `candidates()`: P random subsets (per class, from the active pool).
/// 2. `select(gradients, losses)`: the trainer's last-layer gradient proxies (rows in candidate
///    order, any width d) and per-example losses of the candidates; one mini-batch coreset of m
///    rows per subset, the losses recorded for learned-example tracking.
/// 3. `begin_region(L0, g, h)`: anchors the quadratic model in the trainer's parameter space.
/// 4. Every step: train on `next_batch()`, then `record_update(delta_w)`.
/// 5. When `should_check()`: measure the loss on `check_indices()` and call `check(L_true)`; when it
///    returns true, go back to 1.
///
/// Out-of-order calls throw std::logic_error naming the call; bad arguments throw
/// std::invalid_argument. A call that throws leaves the state unchanged. Not thread-safe: one
/// trainer drives one Crest.
class Crest {
public:
    /// \param labels class of every training example, length n >= 1, values >= 0: an Eigen integer
    ///        vector of any integer type or a contiguous integer range (std::vector<int>, ...);
    ///        the classes are the distinct labels, in ascending order.
    /// \param options see CrestOptions; validated here.
    /// \throws std::invalid_argument for empty or negative labels or bad options.
    template <class L, class = std::enable_if_t<detail::is_labels<L>::value>>
    explicit Crest(const L& labels, CrestOptions options = {})
        : options_(std::move(options)), rng_(options_.seed) {
        options_.validate();
        const char* where = "Crest::Crest()";
        const Eigen::Index count = detail::integer_count(labels);
        detail::require(count > 0, where, "labels must not be empty (got size 0)");
        // Class c = the c-th smallest label present (O(n) memory whatever the label values).
        detail::ClassLabels classes = detail::class_labels(labels, count, where);
        n_ = count;
        pools_ = std::move(classes.groups);
        labels_ = std::move(classes.class_of);
        Eigen::Index present = 0;
        for (const auto& p : pools_) present += p.empty() ? 0 : 1;
        per_class_ = static_cast<Eigen::Index>(
            std::ceil(options_.subset_fraction * static_cast<double>(n_) / static_cast<double>(present)));
        per_class_ = std::max<Eigen::Index>(per_class_, 1);
        min_pool_ =
            static_cast<Eigen::Index>(std::ceil(options_.min_pool_fraction * static_cast<double>(n_)));
        active_.assign(static_cast<std::size_t>(n_), 1);
        pool_size_ = n_;
        streak_.assign(static_cast<std::size_t>(n_), 0);
        last_loss_.assign(static_cast<std::size_t>(n_), std::numeric_limits<float>::infinity());
        stamp_.assign(static_cast<std::size_t>(n_), -1);
        if (options_.drop_learned && options_.learned_rule == CrestLearnedRule::LossTable)
            high_.assign(static_cast<std::size_t>(n_), 0);
        coresets_p_ = options_.initial_coresets;
    }

    /// Draws the round's P random subsets: from each class c, min(s, |active_c|) distinct rows
    /// of the active pool, s = ceil(subset_fraction * n / C). Replaces candidates drawn earlier
    /// and not yet passed to select().
    /// \return the subsets and their concatenation (the row order select() expects).
    CrestCandidates candidates() {
        CrestCandidates out;
        out.subsets.resize(static_cast<std::size_t>(coresets_p_));
        for (auto& subset : out.subsets) {
            for (auto& pool : pools_) {
                const std::size_t k = std::min(pool.size(), static_cast<std::size_t>(per_class_));
                // Partial Fisher-Yates in place: the pool's order is arbitrary, only its content matters.
                for (std::size_t t = 0; t < k; ++t) {
                    std::swap(pool[t], pool[t + static_cast<std::size_t>(rng_.below(pool.size() - t))]);
                    subset.push_back(pool[t]);
                }
            }
            out.indices.insert(out.indices.end(), subset.begin(), subset.end());
        }
        pending_ = out;
        has_pending_ = true;
        return out;
    }

    /// Selects one mini-batch coreset from each pending random subset, with weights = cluster
    /// sizes normalised to mean 1 over the round's coresets, and records the candidates' losses.
    /// Every `drop_interval`-th round then drops learned examples. The same as
    /// `select(candidate_gradients, candidate_losses, stats().selections)`: the round number is
    /// the epoch.
    ///
    /// Per subset V_p: min(m, |V_p|) rows split over its classes by `class_budget` (or
    /// min(ceil(m / C_p), |class|) per class with `ceil_class_sizes`), facility
    /// location per class with the shared engine (the picks of
    /// `Craig(options.engine()).select(rows, labels, budget)`); subsets run in parallel under
    /// OpenMP, with the same result for any thread count. A class of identical rows gets one row
    /// standing for all; a coreset can have fewer than m rows when its subset has fewer distinct
    /// rows. The raw weights of V_p sum to |V_p| (less when m < number of classes).
    /// \param candidate_gradients R x d, row j = last-layer gradient proxy of candidate j
    ///        (R = candidates().size(), candidate order), finite.
    /// \param candidate_losses length R, the candidates' current losses, finite.
    /// \throws std::logic_error without pending candidates; std::invalid_argument for shapes or
    ///         non-finite values.
    template <class DerivedG, class DerivedL>
    void select(const Eigen::MatrixBase<DerivedG>& candidate_gradients,
                const Eigen::MatrixBase<DerivedL>& candidate_losses) {
        select(candidate_gradients, candidate_losses, selections_);
    }

    /// select() in the trainer's epoch (the reference code's pseudo-epoch, training step / steps
    /// per pseudo-epoch): learned examples are dropped after a select() whose epoch e has
    /// (e + 1) % drop_interval == 0, and CrestLearnedRule::LossTable stores the losses in slot
    /// e % watch_window. Several select() calls may share an epoch.
    /// \param epoch >= 0.
    /// \throws as select(), and std::invalid_argument for a negative epoch.
    template <class DerivedG, class DerivedL>
    void select(const Eigen::MatrixBase<DerivedG>& candidate_gradients,
                const Eigen::MatrixBase<DerivedL>& candidate_losses, Eigen::Index epoch) {
        using Scalar = typename DerivedG::Scalar;
        static_assert(std::is_floating_point<Scalar>::value,
                      "Crest::select(): gradients must be float or double");
        static_assert(std::is_floating_point<typename DerivedL::Scalar>::value,
                      "Crest::select(): losses must be float or double");
        const char* where = "Crest::select()";
        const detail::ThreadScope threads(options_.num_threads);
        detail::require_state(has_pending_, where, "call candidates() first");
        detail::require(epoch >= 0, where, "epoch must be >= 0 (got ", epoch, ")");
        const Eigen::Index R = pending_.size();
        detail::require(candidate_gradients.rows() == R, where,
                        "candidate_gradients must have one row per candidate (got ",
                        candidate_gradients.rows(), " rows for ", R, " candidates)");
        detail::require(candidate_gradients.cols() >= 1, where,
                        "candidate_gradients must have at least one column (got 0)");
        detail::require(candidate_losses.size() == R, where,
                        "candidate_losses must have one entry per candidate (got ", candidate_losses.size(),
                        " entries for ", R, " candidates)");
        detail::check_finite(candidate_gradients, where, "candidate_gradients");
        detail::check_finite(candidate_losses, where, "candidate_losses");

        if (options_.metric == Metric::Cosine)
            detail::check_no_zero_row(candidate_gradients, where, "candidate_gradients");

        // Everything below builds new state in locals; the members change only at the end.
        const Eigen::Ref<const detail::RowMatrix<Scalar>> g_ref = candidate_gradients.derived();
        std::vector<Coreset<Scalar>> parts(pending_.subsets.size());
        std::vector<Eigen::Index> offsets(pending_.subsets.size() + 1, 0);
        for (std::size_t p = 0; p < pending_.subsets.size(); ++p)
            offsets[p + 1] = offsets[p] + static_cast<Eigen::Index>(pending_.subsets[p].size());
        const auto P = static_cast<std::ptrdiff_t>(pending_.subsets.size());
        detail::RegionExceptions errors;  // the lowest subset's is rethrown
        // Subsets in parallel, the classes of a subset serially (their ground sets are small).
        CORESET_OMP(omp parallel for schedule(dynamic, 1) if (P > 1))
        for (std::ptrdiff_t p = 0; p < P; ++p) {
            errors.run(p, [&] {
                detail::note_team();
                const auto pu = static_cast<std::size_t>(p);
                parts[pu] = select_subset(g_ref.middleRows(offsets[pu], offsets[pu + 1] - offsets[pu]),
                                          pending_.subsets[pu], static_cast<std::uint64_t>(p));
            });
        }
        errors.rethrow();

        Eigen::Index total = 0;
        for (const auto& part : parts) total += part.size();
        Eigen::VectorXd raw(total);
        Eigen::Index pos = 0;
        for (const auto& part : parts) {
            raw.segment(pos, part.size()) = part.weights.template cast<double>();
            pos += part.size();
        }
        const Eigen::VectorXd w = mean_one(raw);
        std::vector<CrestBatch> batches(parts.size());
        pos = 0;
        for (std::size_t p = 0; p < parts.size(); ++p) {
            batches[p].coreset = static_cast<Eigen::Index>(p);
            batches[p].weights = w.segment(pos, parts[p].size());
            pos += parts[p].size();
            for (Eigen::Index local : parts[p].indices)
                batches[p].indices.push_back(pending_.subsets[p][static_cast<std::size_t>(local)]);
        }
        // Commit (nothing below throws except std::bad_alloc). One recording per example and
        // round: the largest of its losses in the round.
        const Eigen::Index round = selections_;
        std::vector<Eigen::Index> check;
        check.reserve(static_cast<std::size_t>(R));
        for (Eigen::Index j = 0; j < R; ++j) {
            const Eigen::Index i = pending_.indices[static_cast<std::size_t>(j)];
            const auto iu = static_cast<std::size_t>(i);
            const auto loss = static_cast<float>(candidate_losses.derived().coeff(j));
            if (stamp_[iu] != round) {
                stamp_[iu] = round;
                last_loss_[iu] = loss;
                check.push_back(i);
            } else {
                last_loss_[iu] = std::max(last_loss_[iu], loss);
            }
        }
        for (Eigen::Index i : check) {
            auto& s = streak_[static_cast<std::size_t>(i)];
            s = static_cast<double>(last_loss_[static_cast<std::size_t>(i)]) < options_.alpha
                    ? std::min<std::uint32_t>(s + 1, std::numeric_limits<std::uint32_t>::max() - 1)
                    : 0;
        }
        if (!high_.empty()) {  // LossTable: slot epoch % watch_window holds a loss > alpha, or not
            const std::uint64_t bit = std::uint64_t(1) << static_cast<unsigned>(epoch % options_.watch_window);
            for (Eigen::Index i : check) {
                auto& h = high_[static_cast<std::size_t>(i)];
                h = static_cast<double>(last_loss_[static_cast<std::size_t>(i)]) > options_.alpha ? (h | bit) : (h & ~bit);
            }
        }
        // The union, ascending: a scan of the round stamps when it covers much of the data,
        // a sort otherwise.
        if (static_cast<Eigen::Index>(check.size()) > n_ / 32) {
            check.clear();
            for (Eigen::Index i = 0; i < n_; ++i)
                if (stamp_[static_cast<std::size_t>(i)] == round) check.push_back(i);
        } else {
            std::sort(check.begin(), check.end());
        }
        coresets_ = std::move(batches);
        check_indices_ = std::move(check);
        cursor_ = 0;
        if (options_.serving == CrestServing::ShuffledUnion) {
            union_.clear();
            for (const CrestBatch& b : coresets_)
                for (Eigen::Index j = 0; j < b.size(); ++j) union_.emplace_back(b.indices[static_cast<std::size_t>(j)], b.weights[j]);
            serve_rng_.shuffle(union_);
        }
        has_pending_ = false;
        pending_ = CrestCandidates{};
        ++selections_;
        if (options_.drop_learned && epoch % options_.drop_interval == options_.drop_interval - 1) {
            if (options_.learned_rule == CrestLearnedRule::LossTable)
                drop_learned_table();
            else
                drop_learned();
        }
    }

    /// The next mini-batch to train on: the round's coresets in turn (0, 1, ..., P - 1, 0, ...),
    /// or with CrestServing::ShuffledUnion the next batch_size entries of the shuffled union of
    /// the round's coresets (each entry an example and its weight; the last batch of a pass may be
    /// smaller, and the union is reshuffled for the next pass, like a shuffling data loader).
    /// \throws std::logic_error before the first select().
    CrestBatch next_batch() {
        detail::require_state(!coresets_.empty(), "Crest::next_batch()", "call select() first");
        if (options_.serving == CrestServing::ShuffledUnion) {
            if (cursor_ >= union_.size()) {
                serve_rng_.shuffle(union_);
                cursor_ = 0;
            }
            const std::size_t count =
                std::min(union_.size() - cursor_, static_cast<std::size_t>(options_.batch_size));
            CrestBatch b;
            b.coreset = -1;
            b.weights.resize(static_cast<Eigen::Index>(count));
            for (std::size_t t = 0; t < count; ++t) {
                b.indices.push_back(union_[cursor_ + t].first);
                b.weights[static_cast<Eigen::Index>(t)] = union_[cursor_ + t].second;
            }
            cursor_ += count;
            return b;
        }
        const CrestBatch& b = coresets_[cursor_];
        cursor_ = (cursor_ + 1) % coresets_.size();
        return b;
    }

    /// Anchors the quadratic model F(delta) = L0 + g^T delta + 1/2 delta^T diag(h) delta at the
    /// current parameters, in any parameter space of dimension D the trainer chooses (the whole
    /// network or the last layer; the same D in every region). Starts a region: the step count
    /// and delta restart from 0, T1 = ceil(interval_mul * ||h_0|| / ||h||) (h_0: the first
    /// region's curvature; T1 = ceil(interval_mul) in the first region, or first_interval when
    /// that is >= 1, which also leaves P unchanged), and the next round draws
    /// P = min(ceil(batch_num_mul * T1), max_coresets) subsets.
    /// \param loss0 L0, the loss at the anchor, finite and >= 0.
    /// \param gradient g, length D, finite.
    /// \param hessian_diag h, length D, finite, ||h|| > 0 (e.g. a Hutchinson estimate or the exact
    ///        softmax diagonal; the reference code uses AdaHessian's smoothed |z * Hz|).
    /// \throws std::logic_error before the first select(); std::invalid_argument for bad values.
    template <class DerivedG, class DerivedH>
    void begin_region(double loss0, const Eigen::MatrixBase<DerivedG>& gradient,
                      const Eigen::MatrixBase<DerivedH>& hessian_diag) {
        const char* where = "Crest::begin_region()";
        detail::require_state(selections_ > 0, where, "call select() first");
        detail::require(std::isfinite(loss0) && loss0 >= 0, where, "loss0 must be finite and >= 0 (got ",
                        loss0, ")");
        detail::require(gradient.size() >= 1, where, "gradient must not be empty (got size 0)");
        detail::require(hessian_diag.size() == gradient.size(), where,
                        "hessian_diag must have the length of gradient (got ", hessian_diag.size(), " for ",
                        gradient.size(), ")");
        detail::require(dim_ == 0 || gradient.size() == dim_, where,
                        "gradient must have the dimension of the first region (got ", gradient.size(),
                        ", expected ", dim_, ")");
        detail::check_finite(gradient, where, "gradient");
        detail::check_finite(hessian_diag, where, "hessian_diag");
        Eigen::VectorXd h = flatten(hessian_diag);
        // ||h|| = norm * 2^exponent, scaled so that neither 1e-200 nor 1e200 leaves double's range.
        int exponent = 0;
        const double norm = scaled_norm(h, exponent);
        detail::require(norm > 0, where, "hessian_diag must have a finite positive norm (got ", norm, ")");

        const bool first = dim_ == 0;
        if (first) {
            dim_ = gradient.size();
            h0_norm_ = norm;
            h0_exponent_ = exponent;
        }
        loss0_ = loss0;
        g_ = flatten(gradient);
        h_ = std::move(h);
        delta_.setZero(dim_);
        region_ = true;
        region_steps_ = 0;
        checked_at_ = 0;
        if (first && options_.first_interval > 0) {  // the reference code: T1 and P as they were
            interval_ = options_.first_interval;
            return;
        }
        const double ratio = std::min(std::ldexp(options_.interval_mul * h0_norm_ / norm, h0_exponent_ - exponent), 1e15);
        interval_ = std::max<Eigen::Index>(1, static_cast<Eigen::Index>(std::ceil(ratio)));
        const double p = std::ceil(options_.batch_num_mul * static_cast<double>(interval_));
        coresets_p_ = p >= static_cast<double>(options_.max_coresets)
                          ? options_.max_coresets
                          : std::max<Eigen::Index>(1, static_cast<Eigen::Index>(p));
    }

    /// Adds one training step's parameter change to delta (same space and dimension D as
    /// begin_region(); for plain SGD, -lr * the weighted mini-batch gradient).
    /// \throws std::logic_error outside a region; std::invalid_argument for the wrong length or
    ///         non-finite values.
    template <class Derived>
    void record_update(const Eigen::MatrixBase<Derived>& delta_w) {
        const char* where = "Crest::record_update()";
        detail::require_state(region_, where, "no active region: call begin_region() first");
        detail::require(delta_w.size() == dim_, where,
                        "delta_w must have the dimension of begin_region()'s gradient (got ", delta_w.size(),
                        ", expected ", dim_, ")");
        detail::check_finite(delta_w, where, "delta_w");
        Eigen::VectorXd next = delta_ + flatten(delta_w);
        // The model must stay finite: a NaN or infinite F(delta) would make check() meaningless.
        const double model = model_at(next);
        if (!std::isfinite(next.cwiseAbs().maxCoeff()) || !std::isfinite(model))
            detail::raise(where, ": delta_w must keep delta and the model loss F(delta) finite (got F = ", model,
                          ", max |delta| = ", next.cwiseAbs().maxCoeff(), " after this step)");
        delta_.swap(next);
        ++region_steps_;
        ++steps_;
    }

    /// F(delta) = L0 + g^T delta + 1/2 delta^T diag(h) delta for the steps recorded in this region.
    /// \throws std::logic_error outside a region.
    double model_loss() const {
        detail::require_state(region_, "Crest::model_loss()", "no active region: call begin_region() first");
        return model_at(delta_);
    }

    /// True every T1 steps of the region (T1, 2 T1, ...) until check() is called at that step.
    /// False outside a region (a trainer that never calls begin_region() is never asked to check).
    bool should_check() const noexcept {
        return region_ && region_steps_ > 0 && region_steps_ % interval_ == 0 && checked_at_ != region_steps_;
    }

    /// The rows on which the trainer measures L_true for check(): the union of the last round's
    /// random subsets, ascending, each once (examples dropped at the end of that round included).
    /// \throws std::logic_error before the first select().
    const std::vector<Eigen::Index>& check_indices() const {
        detail::require_state(selections_ > 0, "Crest::check_indices()", "call select() first");
        return check_indices_;
    }

    /// Compares the model with the trainer's loss on check_indices() (unweighted mean, current
    /// parameters). May be called at any step of a region; should_check() says when the method
    /// calls for it. rho = |L_true - F(delta)| / L_true is kept in stats().
    /// \param true_loss L_true, finite and >= 0.
    /// \return true when |L_true - F(delta)| > tau * L_true: the region ends and the trainer should
    ///         re-select (candidates(), select(), begin_region()).
    /// \throws std::logic_error outside a region; std::invalid_argument for a bad loss.
    bool check(double true_loss) {
        const char* where = "Crest::check()";
        detail::require_state(region_, where, "no active region: call begin_region() first");
        detail::require(std::isfinite(true_loss) && true_loss >= 0, where,
                        "true_loss must be finite and >= 0 (got ", true_loss, ")");
        const double model = model_loss();
        const double gap = std::abs(true_loss - model);
        stats_rho_ =
            true_loss > 0 ? gap / true_loss : (gap == 0 ? 0.0 : std::numeric_limits<double>::infinity());
        stats_true_ = true_loss;
        stats_model_ = model;
        ++checks_;
        checked_at_ = region_steps_;
        const bool reselect = gap > options_.tau * true_loss;
        if (reselect) {
            ++reselections_;
            region_ = false;
        }
        return reselect;
    }

    /// The active pool: rows not dropped as learned, ascending.
    std::vector<Eigen::Index> active() const {
        std::vector<Eigen::Index> out;
        out.reserve(static_cast<std::size_t>(pool_size_));
        for (Eigen::Index i = 0; i < n_; ++i)
            if (active_[static_cast<std::size_t>(i)]) out.push_back(i);
        return out;
    }

    /// Whether row i is still in the active pool. \throws std::invalid_argument unless 0 <= i < n.
    bool is_active(Eigen::Index i) const {
        detail::require(i >= 0 && i < n_, "Crest::is_active()", "i must satisfy 0 <= i < n (got i = ", i,
                        ", n = ", n_, ")");
        return active_[static_cast<std::size_t>(i)] != 0;
    }

    /// The coresets of the last round (empty before the first select()).
    const std::vector<CrestBatch>& coresets() const noexcept { return coresets_; }

    /// Counters and schedule.
    CrestStats stats() const noexcept {
        CrestStats s;
        s.selections = selections_;
        s.checks = checks_;
        s.reselections = reselections_;
        s.steps = steps_;
        s.region_steps = region_steps_;
        s.interval = interval_;
        s.coresets = coresets_p_;
        s.pool_size = pool_size_;
        s.dropped = n_ - pool_size_;
        s.last_rho = stats_rho_;
        s.last_true_loss = stats_true_;
        s.last_model_loss = stats_model_;
        return s;
    }

    /// Number of training examples n.
    Eigen::Index size() const noexcept { return n_; }
    /// Rows drawn per class and subset: s = ceil(subset_fraction * n / C), C = non-empty classes.
    Eigen::Index per_class_size() const noexcept { return per_class_; }
    /// The smallest pool the drops may leave: ceil(min_pool_fraction * n).
    Eigen::Index min_pool_size() const noexcept { return min_pool_; }
    /// True between begin_region() and a check() that asked for re-selection.
    bool in_region() const noexcept { return region_; }
    /// The options, validated.
    const CrestOptions& options() const noexcept { return options_; }

private:
    // ||x|| as norm * 2^exponent (norm in [0.5, sqrt(D)] unless x = 0): x is scaled by the power of
    // two that brings max |x| into [0.5, 1) first, so that squares neither overflow nor underflow.
    static double scaled_norm(const Eigen::VectorXd& x, int& exponent) {
        const double top = x.cwiseAbs().maxCoeff();
        exponent = 0;
        if (!(top > 0)) return 0.0;
        std::frexp(top, &exponent);
        return x.unaryExpr([exponent](double v) { return std::ldexp(v, -exponent); }).norm();
    }

    // F(delta) = L0 + g^T delta + 1/2 delta^T diag(h) delta; when a product leaves double's range,
    // again from power-of-two-scaled factors (+-inf only when a term itself exceeds double).
    double model_at(const Eigen::VectorXd& delta) const {
        const double plain = loss0_ + g_.dot(delta) + 0.5 * delta.dot(h_.cwiseProduct(delta));
        if (std::isfinite(plain)) return plain;
        int ed = 0, eg = 0, eh = 0;
        std::frexp(delta.cwiseAbs().maxCoeff(), &ed);
        std::frexp(g_.cwiseAbs().maxCoeff(), &eg);
        std::frexp(h_.cwiseAbs().maxCoeff(), &eh);
        const auto scaled = [](const Eigen::VectorXd& x, int e) {
            return Eigen::VectorXd(x.unaryExpr([e](double v) { return std::ldexp(v, -e); }));
        };
        const Eigen::VectorXd ds = scaled(delta, ed);
        const double linear = std::ldexp(scaled(g_, eg).dot(ds), ed + eg);
        const double quadratic = std::ldexp(0.5 * ds.dot(scaled(h_, eh).cwiseProduct(ds)), 2 * ed + eh);
        return loss0_ + linear + quadratic;
    }

    // Any vector or matrix as a double vector, column by column (whatever its storage order).
    template <class Derived>
    static Eigen::VectorXd flatten(const Eigen::MatrixBase<Derived>& x) {
        // Column-major order, either orientation of a vector. A coefficient loop, not an Eigen
        // assignment: GCC 12 at -march=native reports a false -Warray-bounds when Eigen's packet
        // path is inlined for a small fixed-size argument (Eigen::Vector3d).
        Eigen::VectorXd flat(x.size());
        Eigen::Index at = 0;
        for (Eigen::Index c = 0; c < x.cols(); ++c)
            for (Eigen::Index r = 0; r < x.rows(); ++r) flat[at++] = static_cast<double>(x.derived().coeff(r, c));
        return flat;
    }

    // One mini-batch coreset of min(m, |V_p|) rows of one random subset: the budget split over the
    // subset's classes by ClassBudget, facility location per class (the shared engine, exactly what
    // Craig(options.engine()).select(rows, labels, budget) computes), local row indices.
    template <class Derived>
    Coreset<typename Derived::Scalar> select_subset(const Eigen::MatrixBase<Derived>& rows,
                                                    const std::vector<Eigen::Index>& subset,
                                                    std::uint64_t p) const {
        using Scalar = typename Derived::Scalar;
        const auto size = static_cast<Eigen::Index>(subset.size());
        std::vector<std::vector<Eigen::Index>> groups(pools_.size());
        for (Eigen::Index j = 0; j < size; ++j)
            groups[static_cast<std::size_t>(label(subset[static_cast<std::size_t>(j)]))].push_back(j);
        std::vector<Eigen::Index> sizes;
        for (const auto& g : groups) sizes.push_back(static_cast<Eigen::Index>(g.size()));
        std::vector<Eigen::Index> budgets;
        if (options_.ceil_class_sizes) {  // the reference code's equal_num: ceil(m / C_p) per class
            Eigen::Index present = 0;
            for (Eigen::Index c : sizes) present += c > 0 ? 1 : 0;
            const Eigen::Index m = options_.batch_size;
            const Eigen::Index each = m / present + (m % present != 0 ? 1 : 0);
            for (Eigen::Index c : sizes) budgets.push_back(std::min(each, c));
        } else {
            budgets = detail::split_budget(sizes, std::min(options_.batch_size, size), options_.class_budget);
        }
        CraigOptions craig = options_.engine();
        craig.seed = subset_seed(selections_, p);
        const FacilityLocationOptions engine = craig.engine();
        return detail::per_class<Scalar>(
            rows, groups, budgets, false,
            [&](const detail::RowMatrix<Scalar>& class_rows, Eigen::Index k, std::size_t) {
                Coreset<Scalar> c = facility_location(class_rows, k, engine);
                if (c.size() == 0) {
                    // The engine picks nothing when all rows are identical (every distance is 0,
                    // e.g. p - onehot(y) of one class at a zero initialisation); one row stands
                    // for all of them, as a single pick would.
                    c.indices.push_back(0);
                    c.weights = detail::Vector<Scalar>::Constant(1, static_cast<Scalar>(class_rows.rows()));
                    c.objective.push_back(0.0);
                }
                return c;
            },
            detail::ObjectiveMerge::Cumulative);
    }

    Eigen::Index label(Eigen::Index i) const noexcept { return labels_[static_cast<std::size_t>(i)]; }

    std::uint64_t subset_seed(Eigen::Index round, std::uint64_t p) const noexcept {
        detail::Rng mix(options_.seed ^ (0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(round) + 1)) ^
                        (0xd1b54a32d192ed03ULL * (p + 1)));
        return mix.next();
    }

    // Drops active examples with a full window of losses below alpha. Per class at most
    // |active_c| - s go (a class keeps what one random subset needs), in all at most
    // pool - min_pool; when a guard binds, the examples with the smallest last loss go first
    // (ties: lower index).
    void drop_learned() {
        const auto window = static_cast<std::uint32_t>(
            std::min<Eigen::Index>(options_.watch_window, std::numeric_limits<std::uint32_t>::max() - 1));
        auto lower = [&](Eigen::Index a, Eigen::Index b) {
            const float la = last_loss_[static_cast<std::size_t>(a)],
                        lb = last_loss_[static_cast<std::size_t>(b)];
            return la < lb || (la == lb && a < b);
        };
        std::vector<Eigen::Index> chosen;
        for (const auto& pool : pools_) {
            std::vector<Eigen::Index> eligible;
            for (Eigen::Index i : pool)
                if (streak_[static_cast<std::size_t>(i)] >= window) eligible.push_back(i);
            const auto room = static_cast<std::size_t>(
                std::max<Eigen::Index>(0, static_cast<Eigen::Index>(pool.size()) - per_class_));
            if (eligible.size() > room) {
                std::sort(eligible.begin(), eligible.end(), lower);
                eligible.resize(room);
            }
            chosen.insert(chosen.end(), eligible.begin(), eligible.end());
        }
        const auto room = static_cast<std::size_t>(std::max<Eigen::Index>(0, pool_size_ - min_pool_));
        if (chosen.size() > room) {
            std::sort(chosen.begin(), chosen.end(), lower);
            chosen.resize(room);
        }
        if (chosen.empty()) return;
        for (Eigen::Index i : chosen) active_[static_cast<std::size_t>(i)] = 0;
        for (auto& pool : pools_)
            pool.erase(std::remove_if(pool.begin(), pool.end(),
                                      [&](Eigen::Index i) { return !active_[static_cast<std::size_t>(i)]; }),
                       pool.end());
        pool_size_ -= static_cast<Eigen::Index>(chosen.size());
    }

    // CrestLearnedRule::LossTable (the reference code's rule): an active example stays when a slot
    // of its table holds a loss > alpha or when it was never evaluated; a class whose stayers
    // number <= s keeps its whole pool; the drop happens only when the pool left is larger than
    // min_pool_fraction * n.
    void drop_learned_table() {
        std::vector<std::vector<Eigen::Index>> next(pools_.size());
        std::size_t total = 0;
        for (std::size_t c = 0; c < pools_.size(); ++c) {
            for (Eigen::Index i : pools_[c]) {
                const auto iu = static_cast<std::size_t>(i);
                if (stamp_[iu] < 0 || high_[iu] != 0) next[c].push_back(i);
            }
            if (static_cast<Eigen::Index>(next[c].size()) <= per_class_) next[c] = pools_[c];
            total += next[c].size();
        }
        const auto kept = static_cast<Eigen::Index>(total);
        if (kept == pool_size_ ||
            !(static_cast<double>(kept) > options_.min_pool_fraction * static_cast<double>(n_)))
            return;
        for (std::size_t c = 0; c < pools_.size(); ++c) {
            for (Eigen::Index i : next[c]) active_[static_cast<std::size_t>(i)] = 2;  // mark the stayers
            for (Eigen::Index i : pools_[c]) {
                auto& a = active_[static_cast<std::size_t>(i)];
                a = a == 2 ? 1 : 0;
            }
            pools_[c] = std::move(next[c]);
        }
        pool_size_ = kept;
    }

    CrestOptions options_;
    detail::Rng rng_;
    Eigen::Index n_ = 0;
    std::vector<Eigen::Index> labels_;
    std::vector<std::vector<Eigen::Index>> pools_;  // active rows of each class (order arbitrary)
    std::vector<char> active_;
    Eigen::Index pool_size_ = 0;
    Eigen::Index per_class_ = 1;
    Eigen::Index min_pool_ = 0;
    // Learned-example tracking: the number of consecutive recorded losses below alpha (equivalent
    // to a ring of the last watch_window losses being all below alpha), the last recorded loss,
    // and the round in which it was recorded.
    std::vector<std::uint32_t> streak_;
    std::vector<float> last_loss_;
    std::vector<Eigen::Index> stamp_;
    // LossTable: bit k of high_[i] says that slot k of example i's loss table holds a loss > alpha
    // (allocated only with drop_learned under LossTable).
    std::vector<std::uint64_t> high_;

    CrestCandidates pending_;
    bool has_pending_ = false;
    std::vector<CrestBatch> coresets_;
    std::size_t cursor_ = 0;  // InTurn: the next coreset; ShuffledUnion: the next entry of union_
    std::vector<std::pair<Eigen::Index, double>> union_;  // ShuffledUnion: (example, weight), shuffled
    detail::Rng serve_rng_{options_.seed ^ 0x5ca1ab1e0ddba11ULL};
    std::vector<Eigen::Index> check_indices_;
    Eigen::Index selections_ = 0;
    Eigen::Index coresets_p_ = 1;

    // Quadratic model.
    bool region_ = false;
    Eigen::Index dim_ = 0;
    double h0_norm_ = 0;  // ||h_0|| = h0_norm_ * 2^h0_exponent_
    int h0_exponent_ = 0;
    double loss0_ = 0;
    Eigen::VectorXd g_, h_, delta_;
    Eigen::Index region_steps_ = 0;
    Eigen::Index checked_at_ = 0;
    Eigen::Index interval_ = 1;
    Eigen::Index steps_ = 0;
    Eigen::Index checks_ = 0;
    Eigen::Index reselections_ = 0;
    double stats_rho_ = std::numeric_limits<double>::quiet_NaN();
    double stats_true_ = std::numeric_limits<double>::quiet_NaN();
    double stats_model_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace coreset
