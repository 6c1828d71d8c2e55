// SPDX-License-Identifier: MIT
/// \file facility_location.hpp
/// \brief The facility-location maximiser shared by CRAIG, AdaCore and CREST.
///
/// Maximises \f$F(S) = \sum_i m_i \max_{j \in S} s(i, j)\f$ over \f$|S| \le k\f$ with
/// \f$s = C - \mathrm{dist}\f$, C the largest pairwise distance of the ground set, so that
/// \f$F(\emptyset) = 0\f$ and F is monotone submodular. (Metric::ExpEuclidean: dist = 1 - exp(-|g_i -
/// g_j| / d) and C = 1, so that s is submodlib's similarity exp(-|g_i - g_j| / d) and F its
/// objective.) Equivalently, greedy k-medoids: with
/// \f$b_i = \min_{j \in S} \mathrm{dist}(i, j)\f$ (C while S is empty), the gain of a candidate e is
/// \f$\sum_i m_i \max(0, b_i - \mathrm{dist}(i, e))\f$, and the greedy order does not depend on C.
///
/// Exactness. Gains are sums of integers: every term \f$t = m_i (b_i - d_{ie}) > 0\f$ is mapped to
/// the integer \f$\lfloor t \cdot q \rfloor + 1\f$ by a fixed monotone quantiser (q chosen so
/// that a term is at most \f$2^{30}\f$, a resolution of \f$2^{-30} C\f$), and the integers are
/// added in 64 bits. A gain is therefore the same number whether it is
/// summed from scratch, kept up to date incrementally, or summed by several threads in any order. Hence Lazy returns exactly Naive's
/// picks, Stochastic with a sample covering every row returns Naive's picks, and no result depends
/// on the thread count. Monotone quantisation keeps diminishing returns exact, which lazy greedy
/// relies on.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <queue>
#include <utility>
#include <vector>

#include "core.hpp"
#include "detail/checks.hpp"
#include "detail/distances.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"
#include "factored.hpp"

namespace coreset {

/// How pairwise distances are evaluated by the facility-location engine.
enum class Evaluation {
    Auto,    ///< Dense when the m x m matrix fits `memory_budget_bytes`, blocked otherwise.
    Dense,   ///< The m x m distance matrix is built once (one tiled GEMM pass); fastest.
    Blocked  ///< Distances are recomputed in row blocks when needed; memory O(m * block), never m x m.
};

inline const char* to_string(Evaluation e) noexcept {
    switch (e) {
        case Evaluation::Auto: return "Auto";
        case Evaluation::Dense: return "Dense";
        case Evaluation::Blocked: return "Blocked";
    }
    return "unknown Evaluation";
}
inline std::ostream& operator<<(std::ostream& os, Evaluation v) { return os << to_string(v); }

/// Options of the facility-location engine (and of every selector built on it).
struct FacilityLocationOptions {
    /// Distance between rows. Default: Euclidean, the CRAIG reference.
    Metric metric = Metric::Euclidean;
    /// Greedy variant. Naive and Lazy return identical picks. Default: Lazy.
    Greedy greedy = Greedy::Lazy;
    /// Stochastic greedy only: each step evaluates ceil((m / k) ln(1 / epsilon)) random remaining
    /// rows; the expected objective is >= (1 - 1/e - epsilon) OPT. Range (0, 1). Default 0.01.
    double epsilon = 0.01;
    /// Seed of the stochastic sampler (unused by Naive and Lazy). Default 0.
    std::uint64_t seed = 0;
    /// Upper bound on the bytes the engine allocates for one ground set (dense matrix, or blocks).
    /// Default 1 GiB.
    std::size_t memory_budget_bytes = std::size_t(1) << 30;
    /// Dense, blocked, or chosen by the budget (default).
    Evaluation evaluation = Evaluation::Auto;
    /// Threads of the selector's own OpenMP regions (and of the Eigen products it runs outside
    /// them), >= 0; 0 (the default) = OpenMP's default (OMP_NUM_THREADS, else the number of
    /// cores). Bounds only the library's work: the caller's code and other threads are unaffected.
    /// Results do not depend on it.
    int num_threads = 0;

    /// \throws std::invalid_argument for an out-of-range field.
    void validate() const { validate_as("FacilityLocationOptions::validate()"); }
    /// The same checks, with messages prefixed by `where` (used by the selectors' options).
    void validate_as(const char* where) const {
        detail::check_option(metric == Metric::Euclidean || metric == Metric::SquaredEuclidean || metric == Metric::Cosine ||
                                 metric == Metric::ExpEuclidean,
                             static_cast<int>(metric), where, "metric", "a Metric enumerator");
        detail::check_option(greedy == Greedy::Naive || greedy == Greedy::Lazy || greedy == Greedy::Stochastic,
                             static_cast<int>(greedy), where, "greedy", "a Greedy enumerator");
        detail::check_option(epsilon > 0.0 && epsilon < 1.0, epsilon, where, "epsilon", "0 < epsilon < 1");
        detail::check_option(memory_budget_bytes > 0, memory_budget_bytes, where, "memory_budget_bytes",
                             "memory_budget_bytes > 0");
        detail::check_option(evaluation == Evaluation::Auto || evaluation == Evaluation::Dense ||
                                 evaluation == Evaluation::Blocked,
                             static_cast<int>(evaluation), where, "evaluation", "an Evaluation enumerator");
        detail::check_option(num_threads >= 0, num_threads, where, "num_threads", "num_threads >= 0");
    }
};

namespace detail {

/// Greedy facility-location maximiser over a prepared ground set (see the file comment).
///
/// Blocked evaluation never writes distance blocks for the lazy and stochastic variants: gains
/// are summed straight from each Gram tile (PairwiseDistances::visit()). For explicit rows the
/// ground set is first reordered into compact leaves (PairwiseDistances::cluster()); a
/// (candidate, leaf) pair is skipped when the triangle inequality proves that no row of the leaf
/// is closer to the candidate than to its current pick (every skipped term is exactly zero), and
/// the pass that finds C skips leaf pairs that cannot hold a larger distance. The per-row state
/// then lives in that order ("positions"); everything the caller sees (indices, tie-breaks,
/// the sampler's draws, the order in which the objective and the weights are summed) uses the
/// caller's row numbers, so results are bit-identical to dense evaluation.
template <class Scalar>
class FacilityLocationSolver {
public:
    FacilityLocationSolver(PairwiseDistances<Scalar>& dist, const Vector<Scalar>* mass, const FacilityLocationOptions& opt,
                           const char* where)
        : dist_(dist), mass_(mass), opt_(opt), m_(dist.size()) {
        const std::size_t S = sizeof(Scalar);
        const std::size_t um = static_cast<std::size_t>(m_);
        // State: the prepared rows, best distance, assignment, integer gains, flags, lazy heap.
        const std::size_t state = dist.bytes() + um * (S + 2 * sizeof(Eigen::Index) + 2 * sizeof(std::int64_t) + 8) +
                                  (mass ? um * S : 0);
        const std::size_t dense = um * um * S + dist.scratch_bytes(std::min<Eigen::Index>(m_, PairwiseDistances<Scalar>::tile_rows), max_threads());
        const std::size_t row = um * S;
        const std::size_t budget = opt.memory_budget_bytes;
        if (opt.evaluation == Evaluation::Dense) {
            if (state + dense > budget)
                raise(where, ": memory_budget_bytes must be at least ", state + dense,
                      " for Evaluation::Dense on this input (got ", budget, ", m = ", m_, ")");
            dense_ = true;
        } else if (opt.evaluation == Evaluation::Auto && state + dense <= budget) {
            dense_ = true;
        } else {
            // Blocked: the reordering's transient copy, the positions' maps, the pick's distance
            // row, and (naive greedy only) blocks of distance rows.
            const std::size_t fixed = state + dist.cluster_bytes() + um * (2 * sizeof(Eigen::Index) + S) + row;
            const std::size_t minimum = fixed + row + dist.scratch_bytes(1, max_threads());
            if (minimum > budget)
                raise(where, ": memory_budget_bytes must be at least ", minimum, " for this input (got ", budget,
                      ", m = ", m_, ")");
            // Rows per block: as many as fit, up to 1024, a multiple of 48 when possible (GEMM tiles
            // are padded to whole tiles).
            std::size_t fit = 1;
            while (fit < 1024 && fixed + (fit + 1) * row + dist.scratch_bytes(static_cast<Eigen::Index>(fit + 1), max_threads()) <= budget)
                ++fit;
            const auto q = static_cast<std::size_t>(PairwiseDistances<Scalar>::tile_rows);
            block_rows_ = static_cast<Eigen::Index>(fit >= q ? fit / q * q : fit);
        }
    }

    bool dense() const noexcept { return dense_; }

    template <class... Callbacks>
    Coreset<Scalar> run(Eigen::Index budget, Callbacks&... cbs) {
        prepare();
        Coreset<Scalar> out;
        out.status = Status::BudgetReached;
        double objective = 0.0;
        std::vector<std::int64_t> gains;
        Heap heap;
        std::vector<Eigen::Index> rest;  // stochastic: candidates still worth sampling (caller's rows)
        std::vector<Eigen::Index> all(static_cast<std::size_t>(m_));  // every position
        for (Eigen::Index j = 0; j < m_; ++j) all[static_cast<std::size_t>(j)] = j;
        if (opt_.greedy == Greedy::Naive) {
            gains.assign(static_cast<std::size_t>(m_), 0);
            fresh_gains(all, gains.data());
        } else if (opt_.greedy == Greedy::Lazy) {
            std::vector<std::int64_t> g(static_cast<std::size_t>(m_));
            fresh_gains(all, g.data());
            std::vector<Entry> entries;
            entries.reserve(static_cast<std::size_t>(m_));
            for (Eigen::Index j = 0; j < m_; ++j) entries.push_back(Entry{g[static_cast<std::size_t>(pos(j))], j, 0});
            heap = Heap(EntryLess{}, std::move(entries));
        } else {
            rest = all;
        }
        Rng rng(opt_.seed);
        const double log_term = std::log(1.0 / opt_.epsilon);
        const auto sample_size = static_cast<std::size_t>(
            std::min(static_cast<double>(m_), std::ceil(static_cast<double>(m_) / static_cast<double>(budget) * log_term)));

        for (Eigen::Index step = 0; step < budget; ++step) {
            Eigen::Index e = -1;  // a position
            std::int64_t g = -1;
            if (opt_.greedy == Greedy::Naive) {
                for (Eigen::Index j = 0; j < m_; ++j) {  // the caller's order: ties to the lowest row
                    const Eigen::Index p = pos(j);
                    if (alive(p) && gains[static_cast<std::size_t>(p)] > g) g = gains[static_cast<std::size_t>(e = p)];
                }
            } else if (opt_.greedy == Greedy::Lazy) {
                pick_lazy(heap, step, e, g);
            } else {
                pick_stochastic(rest, sample_size, rng, e, g);
            }
            if (e < 0 || (g <= 0 && step > 0)) {
                out.status = Status::Exhausted;
                break;
            }
            const double gain = dist_.to_caller(apply_pick(e));
            objective += gain;
            out.indices.push_back(caller_row(e));
            out.objective.push_back(objective);
            if (opt_.greedy == Greedy::Naive && step + 1 < budget) update_gains(gains, all);
            if (notify_step(StepInfo{step, caller_row(e), gain, objective}, cbs...)) {
                out.status = Status::StoppedByCallback;
                break;
            }
        }
        // Weights: the mass of the rows each pick represents (ties went to the earliest pick).
        // Summed in double, in the caller's row order: multiplicities need not be integers.
        std::vector<double> w(static_cast<std::size_t>(m_), 0.0);
        for (Eigen::Index j = 0; j < m_; ++j) {
            const Eigen::Index p = pos(j);
            w[static_cast<std::size_t>(assign_[static_cast<std::size_t>(p)])] += static_cast<double>(mass(p));
        }
        out.weights.resize(out.size());
        for (Eigen::Index t = 0; t < out.size(); ++t)
            out.weights[t] = static_cast<Scalar>(w[static_cast<std::size_t>(pos(out.indices[static_cast<std::size_t>(t)]))]);
        return out;
    }

private:
    struct Entry {
        std::int64_t gain;
        Eigen::Index index;  // the caller's row
        Eigen::Index stamp;  // the step at which `gain` was computed
    };
    struct EntryLess {  // max-heap on gain, ties to the lowest index
        bool operator()(const Entry& a, const Entry& b) const noexcept {
            return a.gain < b.gain || (a.gain == b.gain && a.index > b.index);
        }
    };
    using Heap = std::priority_queue<Entry, std::vector<Entry>, EntryLess>;

    // Position of the caller's row j, and the caller's row at position p (identity unless the
    // blocked engine reordered the rows).
    Eigen::Index pos(Eigen::Index j) const noexcept { return pos_.empty() ? j : pos_[static_cast<std::size_t>(j)]; }
    Eigen::Index caller_row(Eigen::Index p) const noexcept { return order_.empty() ? p : order_[static_cast<std::size_t>(p)]; }

    Scalar mass(Eigen::Index p) const { return mass_ ? pmass_[p] : Scalar(1); }

    // A candidate (position) can still be picked: not selected and not at distance 0 from a
    // selected row (such a row duplicates a pick; its gain is 0 in exact arithmetic).
    bool alive(Eigen::Index p) const {
        return !selected_[static_cast<std::size_t>(p)] && (picks_ == 0 || best_[static_cast<std::size_t>(p)] > Scalar(0));
    }

    // The integer a gain term counts for; branch-free 32-bit conversions, so that the loops
    // vectorise (the sum is a 64-bit integer reduction, which compilers may reorder freely).
    std::int32_t quantise(Scalar t) const noexcept {
        const Scalar positive = t > Scalar(0) ? t : Scalar(0);
        return static_cast<std::int32_t>(positive * scale_) + static_cast<std::int32_t>(t > Scalar(0));
    }
    // The gain terms of positions [c0, c0 + cn) given their distances `d` to a candidate.
    std::int64_t gain_terms(Eigen::Index c0, Eigen::Index cn, const Scalar* d) const {
        std::int64_t g = 0;
        const Scalar* best = best_.data() + c0;
        if (mass_) {
            const Scalar* w = qmass_.data() + c0;
            for (Eigen::Index b = 0; b < cn; ++b) g += quantise(w[b] * (best[b] - d[b]));
        } else {
            for (Eigen::Index b = 0; b < cn; ++b) g += quantise(best[b] - d[b]);
        }
        return g;
    }

    // Blocked, naive greedy only: distance rows for positions ids[0..r) into buffer_.
    void fetch(const Eigen::Index* ids, Eigen::Index r, std::vector<const Scalar*>& rows) {
        rows.resize(static_cast<std::size_t>(r));
        if (dense_) {
            for (Eigen::Index t = 0; t < r; ++t) rows[static_cast<std::size_t>(t)] = full_.get() + ids[t] * m_;
            return;
        }
        buffer_.resize(static_cast<std::size_t>(r * m_));
        dist_.compute(ids, r, buffer_.data(), true);
        for (Eigen::Index t = 0; t < r; ++t) rows[static_cast<std::size_t>(t)] = buffer_.data() + t * m_;
    }
    Eigen::Index chunk() const noexcept { return dense_ ? m_ : block_rows_; }

    // Metric::ExpEuclidean: distances 1 - similarity lie in [0, 1] and C is 1, not the largest
    // distance, so that F is the sum of similarities (submodlib's objective; the picks are the
    // same with either C, see the file comment).
    bool fixed_c() const noexcept { return opt_.metric == Metric::ExpEuclidean; }

    // C (the largest distance), the quantiser scale and the initial state.
    void prepare() {
        const auto um = static_cast<std::size_t>(m_);
        Scalar c = 0;
        if (dense_) {
            full_.reset(new Scalar[um * um]);  // not zero-filled: compute_all writes every entry
            dist_.compute_all(full_.get(), true);
            if (!fixed_c())
                c = Eigen::Map<const Vector<Scalar>>(full_.get(), static_cast<Eigen::Index>(um * um)).maxCoeff();
        } else {
            order_ = dist_.cluster();
            pos_.assign(um, 0);
            for (Eigen::Index p = 0; p < m_; ++p) pos_[static_cast<std::size_t>(order_[static_cast<std::size_t>(p)])] = p;
            if (!fixed_c()) c = largest_distance();
        }
        if (fixed_c()) c = Scalar(1);
        c_ = c;
        if (mass_) {
            pmass_.resize(m_);
            for (Eigen::Index p = 0; p < m_; ++p) pmass_[p] = (*mass_)[caller_row(p)];
        }
        // Gains use the multiplicities times a power of two that brings the largest into [0.5, 1):
        // exact, so no greedy decision changes, and m_i (b_i - d) cannot overflow Scalar however
        // large the multiplicities are.
        Scalar wmax = 1;
        if (mass_) {
            int e = 0;
            std::frexp(static_cast<double>(pmass_.maxCoeff()), &e);
            qmass_ = (pmass_.template cast<double>() * std::ldexp(1.0, -e)).template cast<Scalar>();
            wmax = qmass_.maxCoeff();
        }
        // Quantiser: a term m_i (b_i - d) <= max(m) C maps to at most 2^30 (+1), so a 32-bit
        // conversion cannot overflow, even after the rounding of the product.
        // (Clamped to the largest Scalar: a subnormal C, e.g. nearly parallel rows under the cosine
        // metric, would make the scale infinite; a smaller scale keeps every term within 2^30.)
        scale_ = c_ > Scalar(0) ? static_cast<Scalar>(std::min(std::ldexp(1.0, 30) / (static_cast<double>(c_) * static_cast<double>(wmax)),
                                                               static_cast<double>(std::numeric_limits<Scalar>::max())))
                                : Scalar(1);
        best_.assign(um, c_);
        assign_.assign(um, 0);
        assigned_.assign(um, 0);
        selected_.assign(um, 0);
        if (!dense_) leaf_best_.assign(static_cast<std::size_t>(dist_.leaves()), c_);
    }

    // Blocked: the largest distance, leaf l1 against leaves l2 <= l1 (distances are symmetric to
    // the last bit), skipping leaf pairs whose bound cannot beat the largest distance so far. The
    // first guess is the row farthest from the centre (rows are centred) against every row.
    Scalar largest_distance() {
        const Eigen::Index L = dist_.leaves();
        const int threads = max_threads();
        std::vector<Scalar> top(static_cast<std::size_t>(threads), Scalar(0));
        auto keep_max = [&](Eigen::Index, Eigen::Index, Eigen::Index cn, const Scalar* d) {
            Scalar& t = top[static_cast<std::size_t>(thread_id())];
            t = std::max(t, Eigen::Map<const Vector<Scalar>>(d, cn).maxCoeff());
        };
        auto gather = [&] { return *std::max_element(top.begin(), top.end()); };
        Scalar c = 0;
        if (dist_.clustered()) {
            Eigen::Index far = 0;
            dist_.squared_norms().maxCoeff(&far);
            dist_.visit(&far, 1, nullptr, 0, true, keep_max);
            c = gather();
        }
        std::vector<char> need;
        std::vector<Eigen::Index> ids;
        for (Eigen::Index l1 = 0; l1 < L; ++l1) {
            if (dist_.clustered()) {
                dist_.leaves_above(l1, c, need);
            } else {
                need.assign(static_cast<std::size_t>(l1 + 1), 1);
            }
            need.resize(static_cast<std::size_t>(L), 0);  // leaves after l1: their pairs come later
            const Eigen::Index lo = dist_.leaf_begin(l1), hi = dist_.leaf_end(l1);
            ids.resize(static_cast<std::size_t>(hi - lo));
            for (Eigen::Index p = lo; p < hi; ++p) ids[static_cast<std::size_t>(p - lo)] = p;
            dist_.visit(ids.data(), hi - lo, need.data(), 0, true, keep_max);
            c = gather();
        }
        return c;
    }

    // gains[t] = gain of the candidate at position cand[t] given the current best distances.
    void fresh_gains(const std::vector<Eigen::Index>& cand, std::int64_t* out) {
        const auto total = static_cast<Eigen::Index>(cand.size());
        if (dense_) {
            std::vector<const Scalar*> rows;
            for (Eigen::Index a = 0; a < total; a += chunk()) {
                const Eigen::Index r = std::min(chunk(), total - a);
                fetch(cand.data() + a, r, rows);
                const bool par = static_cast<double>(r) * static_cast<double>(m_) > 1e5;
                parallel_for(r, par, [&](std::ptrdiff_t t) { out[a + t] = gain_terms(0, m_, rows[static_cast<std::size_t>(t)]); });
            }
            return;
        }
        // Blocked: candidates in position order (each tile of them is then compact, which lets
        // whole tiles skip leaves), summed straight from the Gram tiles in integers per thread.
        std::vector<std::size_t> slot(cand.size());
        for (std::size_t t = 0; t < slot.size(); ++t) slot[t] = t;
        std::sort(slot.begin(), slot.end(), [&](std::size_t a, std::size_t b) { return cand[a] < cand[b]; });
        std::vector<Eigen::Index> ids(cand.size());
        for (std::size_t t = 0; t < slot.size(); ++t) ids[t] = cand[slot[t]];
        const Eigen::Index per = 10 * PairwiseDistances<Scalar>::tile_rows, L = dist_.leaves();
        const auto threads = static_cast<std::size_t>(max_threads());
        std::vector<std::int64_t> partial;
        std::vector<char> need;
        for (Eigen::Index a = 0; a < total; a += per) {
            const Eigen::Index r = std::min(per, total - a);
            const Eigen::Index* batch = ids.data() + a;
            const bool prune = picks_ > 0 && dist_.clustered();
            if (prune) dist_.needed_leaves(batch, r, leaf_best_.data(), need);
            partial.assign(threads * static_cast<std::size_t>(r), 0);
            dist_.visit(batch, r, prune ? need.data() : nullptr, L, true,
                        [&](Eigen::Index t, Eigen::Index c0, Eigen::Index cn, const Scalar* d) {
                            partial[static_cast<std::size_t>(thread_id()) * static_cast<std::size_t>(r) + static_cast<std::size_t>(t)] +=
                                gain_terms(c0, cn, d);
                        });
            for (Eigen::Index t = 0; t < r; ++t) {
                std::int64_t g = 0;
                for (std::size_t th = 0; th < threads; ++th) g += partial[th * static_cast<std::size_t>(r) + static_cast<std::size_t>(t)];
                out[slot[static_cast<std::size_t>(a + t)]] = g;
            }
        }
    }

    // Adds the pick at position e: updates best distances and assignments, returns the exact
    // objective gain in scaled units, and records the changed rows for the naive gain update.
    double apply_pick(Eigen::Index e) {
        changed_.clear();
        old_.clear();
        const Eigen::Index L = dense_ ? 1 : dist_.leaves();
        std::vector<char> visited(static_cast<std::size_t>(L), 1);
        const Scalar* de = nullptr;
        if (dense_) {
            de = full_.get() + e * m_;
        } else {
            // The pick's distances to the leaves it can change (all of them for the first pick,
            // which assigns every row).
            row_.resize(static_cast<std::size_t>(m_));
            std::vector<char> need;
            const bool prune = picks_ > 0 && dist_.clustered();
            if (prune) {
                dist_.needed_leaves(&e, 1, leaf_best_.data(), need);
                visited = need;
            }
            dist_.visit(&e, 1, prune ? need.data() : nullptr, L, true,
                        [&](Eigen::Index, Eigen::Index c0, Eigen::Index cn, const Scalar* d) {
                            std::copy(d, d + cn, row_.data() + c0);
                        });
            de = row_.data();
        }
        for (Eigen::Index l = 0; l < L; ++l) {
            if (!visited[static_cast<std::size_t>(l)]) continue;
            const Eigen::Index lo = dense_ ? 0 : dist_.leaf_begin(l), hi = dense_ ? m_ : dist_.leaf_end(l);
            Scalar top = 0;
            for (Eigen::Index i = lo; i < hi; ++i) {
                const auto iu = static_cast<std::size_t>(i);
                if (de[i] < best_[iu]) {
                    changed_.push_back(i);
                    old_.push_back(best_[iu]);
                    best_[iu] = de[i];
                    assign_[iu] = e;
                    assigned_[iu] = 1;
                } else if (!assigned_[iu]) {  // at distance C from the first pick: a tie, earliest pick
                    assign_[iu] = e;
                    assigned_[iu] = 1;
                }
                top = std::max(top, best_[iu]);
            }
            if (!dense_) leaf_best_[static_cast<std::size_t>(l)] = top;
        }
        selected_[static_cast<std::size_t>(e)] = 1;
        ++picks_;
        // The gain, summed in the caller's row order (so that it does not depend on the reordering).
        std::vector<std::size_t> by_row(changed_.size());
        for (std::size_t t = 0; t < by_row.size(); ++t) by_row[t] = t;
        if (!order_.empty())
            std::sort(by_row.begin(), by_row.end(), [&](std::size_t a, std::size_t b) { return caller_row(changed_[a]) < caller_row(changed_[b]); });
        double gain = 0;
        for (const std::size_t t : by_row) {
            const Eigen::Index i = changed_[t];
            gain += static_cast<double>(mass(i)) * (static_cast<double>(old_[t]) - static_cast<double>(best_[static_cast<std::size_t>(i)]));
        }
        return gain;
    }

    // Naive greedy: brings every gain up to date after a pick. Each changed row i (best distance
    // old -> new) changes the gain of candidate j by q(new - d_ij) - q(old - d_ij): one contiguous
    // read of row i (distances are symmetric). When most rows changed, recomputing is cheaper.
    void update_gains(std::vector<std::int64_t>& gains, const std::vector<Eigen::Index>& all) {
        const auto nc = static_cast<Eigen::Index>(changed_.size());
        if (2 * nc > m_) {
            fresh_gains(all, gains.data());
            return;
        }
        std::vector<const Scalar*> rows;
        for (Eigen::Index a = 0; a < nc; a += chunk()) {
            const Eigen::Index r = std::min(chunk(), nc - a);
            fetch(changed_.data() + a, r, rows);
            const Eigen::Index width = 2048, blocks = (m_ + width - 1) / width;
            const bool par = static_cast<double>(r) * static_cast<double>(m_) > 1e5;
            parallel_for(blocks, par, [&](std::ptrdiff_t b) {
                const Eigen::Index j0 = b * width, j1 = std::min(m_, j0 + width);
                for (Eigen::Index t = 0; t < r; ++t) {
                    const Scalar* row = rows[static_cast<std::size_t>(t)];
                    const Eigen::Index i = changed_[static_cast<std::size_t>(a + t)];
                    const Scalar w = mass_ ? qmass_[i] : Scalar(1), nw = best_[static_cast<std::size_t>(i)], od = old_[static_cast<std::size_t>(a + t)];
                    for (Eigen::Index j = j0; j < j1; ++j) {
                        if (row[j] >= od) continue;  // contributed nothing before, nothing now
                        gains[static_cast<std::size_t>(j)] +=
                            static_cast<std::int64_t>(quantise(w * (nw - row[j]))) - quantise(w * (od - row[j]));
                    }
                }
            });
        }
    }

    void pick_lazy(Heap& heap, Eigen::Index step, Eigen::Index& e, std::int64_t& g) {
        // Dense: re-evaluate one stale entry at a time (a row read). Blocked: a GEMM tile's worth
        // of the best stale entries at once (a tile costs the same for 1 row or 96).
        const Eigen::Index batch = dense_ ? 1 : PairwiseDistances<Scalar>::tile_rows;
        std::vector<Eigen::Index> stale, rows;
        std::vector<std::int64_t> fresh;
        while (!heap.empty()) {
            const Entry top = heap.top();
            if (!alive(pos(top.index))) {
                heap.pop();
                continue;
            }
            if (top.stamp == step) {
                heap.pop();
                e = pos(top.index);
                g = top.gain;
                return;
            }
            stale.clear();
            rows.clear();
            while (!heap.empty() && static_cast<Eigen::Index>(stale.size()) < batch) {
                const Entry s = heap.top();
                if (s.stamp == step) break;
                heap.pop();
                if (alive(pos(s.index))) {
                    stale.push_back(pos(s.index));
                    rows.push_back(s.index);
                }
            }
            fresh.resize(stale.size());
            fresh_gains(stale, fresh.data());
            for (std::size_t t = 0; t < stale.size(); ++t)
                if (fresh[t] > 0 || step == 0) heap.push(Entry{fresh[t], rows[t], step});  // a zero gain stays zero
        }
    }

    // `rest` holds the caller's rows, so that the draws do not depend on the reordering.
    void pick_stochastic(std::vector<Eigen::Index>& rest, std::size_t sample_size, Rng& rng, Eigen::Index& e,
                         std::int64_t& g) {
        rest.erase(std::remove_if(rest.begin(), rest.end(), [&](Eigen::Index j) { return !alive(pos(j)); }), rest.end());
        std::vector<std::int64_t> fresh;
        Eigen::Index best_row = -1;
        for (int round = 0; round < 2 && !rest.empty(); ++round) {
            // Round 0: a random sample; round 1 (only if the sample had no positive gain): everyone.
            std::vector<Eigen::Index> cand;
            if (round == 0 && sample_size < rest.size()) {
                for (std::size_t t = 0; t < sample_size; ++t) std::swap(rest[t], rest[t + rng.below(rest.size() - t)]);
                cand.assign(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(sample_size));
            } else {
                cand = rest;
                round = 1;
            }
            std::vector<Eigen::Index> at(cand.size());
            for (std::size_t t = 0; t < cand.size(); ++t) at[t] = pos(cand[t]);
            fresh.resize(cand.size());
            fresh_gains(at, fresh.data());
            for (std::size_t t = 0; t < cand.size(); ++t)
                if (fresh[t] > g || (fresh[t] == g && cand[t] < best_row)) {
                    g = fresh[t];
                    best_row = cand[t];
                }
            if (best_row >= 0) e = pos(best_row);
            if (g > 0 || picks_ == 0) return;
        }
    }

    PairwiseDistances<Scalar>& dist_;
    const Vector<Scalar>* mass_;
    Vector<Scalar> pmass_;  // the multiplicities by position
    Vector<Scalar> qmass_;  // the same, scaled for the gains (see prepare())
    FacilityLocationOptions opt_;
    Eigen::Index m_;
    bool dense_ = false;
    Eigen::Index block_rows_ = 0;
    std::unique_ptr<Scalar[]> full_;  // dense: m x m distances, row-major
    std::vector<Scalar> buffer_;  // blocked, naive: distance rows of the current block
    std::vector<Scalar> row_;  // blocked: the pick's distances (the leaves it can change)
    std::vector<Eigen::Index> order_, pos_;  // blocked: position -> caller's row, and back
    std::vector<Scalar> leaf_best_;  // blocked: the largest best distance of each leaf
    Scalar c_ = 0, scale_ = 1;
    std::vector<Scalar> best_;
    std::vector<Eigen::Index> assign_;
    std::vector<char> assigned_, selected_;
    Eigen::Index picks_ = 0;
    std::vector<Eigen::Index> changed_;
    std::vector<Scalar> old_;
};

/// The engine's ground set: an Eigen matrix is copied into the row-major working layout, factored
/// gradients are used as they are (PairwiseDistances keeps them factored).
template <class Scalar, class Derived>
RowMatrix<Scalar> ground_set(const Eigen::MatrixBase<Derived>& rows) {
    return RowMatrix<Scalar>(rows);
}
template <class Scalar>
const FactoredGradients<Scalar>& ground_set(const FactoredGradients<Scalar>& rows) {
    return rows;
}

/// Validates and runs the engine on `rows`: an Eigen matrix or FactoredGradients<Scalar>.
template <class Scalar, class Rows, class... Callbacks>
Coreset<Scalar> run_facility_location(const Rows& rows, const Vector<Scalar>* mass, Eigen::Index budget,
                                      const FacilityLocationOptions& options, const char* where, Callbacks&... cbs) {
    options.validate_as(where);
    const ThreadScope threads(options.num_threads);
    check_gradients(rows, where);
    check_budget(budget, rows.rows(), where);
    PairwiseDistances<Scalar> dist(ground_set<Scalar>(rows), options.metric, where);
    FacilityLocationSolver<Scalar> solver(dist, mass, options, where);
    return solver.run(budget, cbs...);
}

}  // namespace detail

/// Greedy facility location on the rows of `rows` (m x d, float or double).
///
/// \param rows      ground set, one row per element; not modified.
/// \param budget    number of picks k, 1 <= k <= m.
/// \param options   metric, greedy variant, memory budget (see FacilityLocationOptions).
/// \param callbacks optional observers with `on_step(const StepInfo&)` (returning true stops).
/// \return picks in greedy order (row indices), weights = number of rows whose most similar pick
///         it is (they sum to m), objective[t] = F after pick t (in the caller's distance units).
/// \throws std::invalid_argument for empty or non-finite rows, a budget outside [1, m], invalid
///         options, a zero row under Metric::Cosine, or a memory budget too small for the input.
template <class Derived, class... Callbacks>
Coreset<typename Derived::Scalar> facility_location(const Eigen::MatrixBase<Derived>& rows, Eigen::Index budget,
                                                    const FacilityLocationOptions& options = {},
                                                    Callbacks&&... callbacks) {
    using Scalar = typename Derived::Scalar;
    static_assert(std::is_floating_point<Scalar>::value, "coreset: gradients must be float or double");
    return detail::run_facility_location<Scalar>(rows, nullptr, budget, options, "coreset::facility_location()",
                                                 callbacks...);
}

/// Facility location with row multiplicities: row i stands for `multiplicities[i]` (> 0) elements.
/// F(S) = sum_i m_i max_{j in S} s(i, j); weights then sum to sum_i m_i.
/// \throws std::invalid_argument as facility_location(), and for multiplicities of the wrong
///         length, non-finite or not > 0.
template <class Derived, class DerivedM, class... Callbacks>
Coreset<typename Derived::Scalar> weighted_facility_location(const Eigen::MatrixBase<Derived>& rows,
                                                             const Eigen::MatrixBase<DerivedM>& multiplicities,
                                                             Eigen::Index budget,
                                                             const FacilityLocationOptions& options = {},
                                                             Callbacks&&... callbacks) {
    using Scalar = typename Derived::Scalar;
    static_assert(std::is_floating_point<Scalar>::value, "coreset: gradients must be float or double");
    const char* where = "coreset::weighted_facility_location()";
    detail::require(multiplicities.rows() == 1 || multiplicities.cols() == 1, where,
                    "multiplicities must be a vector (got ", multiplicities.rows(), " x ", multiplicities.cols(), ")");
    detail::require(multiplicities.size() == rows.rows(), where,
                    "multiplicities must have one entry per row (got ", multiplicities.size(), " for m = ", rows.rows(),
                    " rows)");
    // Checked in the caller's type before the conversion to Scalar (a double 1e-50 is 0 in float).
    if constexpr (std::is_floating_point<typename DerivedM::Scalar>::value)
        detail::check_finite(multiplicities, where, "multiplicities");
    for (Eigen::Index i = 0; i < multiplicities.size(); ++i) {
        const auto v = multiplicities.derived().coeff(i);
        detail::require(v > 0, where, "multiplicities must be > 0 (got ", v, " at index ", i, ")");
        const Scalar m = static_cast<Scalar>(v);
        detail::require(m > Scalar(0) && m <= std::numeric_limits<Scalar>::max(), where,
                        "multiplicities must be representable in the scalar type of rows, between ",
                        std::numeric_limits<Scalar>::denorm_min(), " and ", std::numeric_limits<Scalar>::max(),
                        " (got ", v, " at index ", i, ")");
    }
    const detail::Vector<Scalar> mass = multiplicities.template cast<Scalar>();
    // A weight is a sum of multiplicities: their total must be representable.
    const double total = mass.template cast<double>().sum();
    detail::require(total <= static_cast<double>(std::numeric_limits<Scalar>::max()), where,
                    "multiplicities must have a sum <= ", std::numeric_limits<Scalar>::max(),
                    ", the largest value of the scalar type (got ", total, ")");
    return detail::run_facility_location<Scalar>(rows, &mass, budget, options, where, callbacks...);
}

}  // namespace coreset
