// SPDX-License-Identifier: MIT
/// \file detail/distances.hpp
/// \brief Pairwise distances between the rows of a ground set, computed in tiles from norms and
/// GEMM products, either once into a dense m x m matrix or on demand for chosen rows (blocked).
/// Not part of the public API.
///
/// Numerics: the rows are first made well scaled, which changes no greedy decision: Euclidean and
/// squared-Euclidean rows are multiplied by a power of two that brings the largest magnitude into
/// [0.5, 1) (exact, and it keeps 1e-30 and 1e30 inputs from under- or overflowing in float) and
/// then centred (distances are translation invariant); cosine rows are normalised to unit length.
/// A squared distance obtained as |a|^2 + |b|^2 - 2 a.b that falls below 2^-8 (|a|^2 + |b|^2)
/// has lost most of its digits to cancellation and is recomputed directly as |a - b|^2, so equal
/// rows are exactly 0 apart. `unit()` converts the distances back to the caller's scale.
///
/// Metric::ExpEuclidean is the Euclidean distance transformed to 1 - exp(-|g_i - g_j| / d) in
/// double (then rounded to Scalar once): prepared rows are scaled and centred as for Euclidean, and
/// the power of two goes into the transform's factor 2^e / d, so these distances are already in
/// the caller's units (unit() = 1). The transform is monotone, so the leaf bounds on the Euclidean
/// distance carry over through it (with margins for its rounding).
///
/// Factored rows e_i (x) h_i (FactoredGradients) are never expanded: a Gram tile is the Hadamard
/// product of the two factors' tiles, (E_I E_J^T) o (H_I H_J^T), computed with the same padding and
/// chunking, and |g_i|^2 = |e_i|^2 |h_i|^2. Each factor is scaled by its own power of two (cosine:
/// each factor row normalised, since |e (x) h| = |e| |h|); the rows cannot be centred (the mean of
/// outer products is not one), so the cancellation repair fires for rows closer than about 9 % of
/// their length, and recomputes |e_i (x) h_i - e_j (x) h_j|^2 directly in O(C E).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>
#if defined(__SSE2__) || defined(__AVX__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../core.hpp"
#include "../factored.hpp"
#include "checks.hpp"
#include "parallel.hpp"

namespace coreset {
namespace detail {

template <class Scalar>
class PairwiseDistances {
public:
    /// Tile geometry, fixed so that no distance depends on the thread count or on which rows were
    /// requested together. Both GEMM factors are padded with zero rows to multiples of 48, and tiles
    /// are multiples of 48 in both directions: 48 is a multiple of every register-block size
    /// Eigen's GEMM kernel uses on x86 and Arm, so every entry is computed by the same sequence of
    /// fused multiply-adds wherever it sits in a tile, whether its row is computed alone, in a
    /// block or in the full matrix, and whichever of the two rows is the left factor (measured:
    /// with 256-wide tiles the last 16 columns of a tile round differently under AVX-512). Every
    /// GEMM call is a whole tile (96 rows, zero-padded), because with a large d Eigen's depth
    /// blocking depends on the shape (measured at d = 1500). Column tiles are 240 wide, the last
    /// one taking the remainder.
    static constexpr Eigen::Index row_quantum = 48;
    static constexpr Eigen::Index tile_rows = 2 * row_quantum;
    static constexpr Eigen::Index tile_cols = 5 * row_quantum;
    /// Takes the ground set (m x d, row-major) by value and prepares it. Throws for a zero row
    /// under the cosine metric.
    PairwiseDistances(RowMatrix<Scalar> x, Metric metric, const char* where) : x_(std::move(x)), metric_(metric) {
        if (metric_ == Metric::Cosine) {
            check_no_zero_row(x_, where, "gradients");
            for (Eigen::Index i = 0; i < x_.rows(); ++i) normalise_row(x_.row(i));
            unit_ = 1.0;
        } else {
            // Scale first (exact), then centre, so that neither step can overflow.
            const int e = scale_to_unit(x_);
            const Eigen::Matrix<double, 1, Eigen::Dynamic> mean = x_.template cast<double>().colwise().mean();
            x_.rowwise() -= mean.template cast<Scalar>();
            set_units(e, x_.cols());
        }
        sq_ = x_.rowwise().squaredNorm();
        rhs_ = padded_copy(x_);
    }

    /// Factored ground set: rows e_i (x) h_i. Throws for a zero row under the cosine metric.
    PairwiseDistances(const FactoredGradients<Scalar>& g, Metric metric, const char* where)
        : e_(g.errors()), h_(g.activations()), metric_(metric), factored_(true) {
        const Eigen::Index m = e_.rows();
        if (metric_ == Metric::Cosine) {
            check_no_zero_row(g, where, "gradients");
            for (Eigen::Index i = 0; i < m; ++i) {
                normalise_row(e_.row(i));
                normalise_row(h_.row(i));
            }
            unit_ = 1.0;
        } else {
            const int ee = scale_to_unit(e_), eh = scale_to_unit(h_);
            set_units(ee + eh, e_.cols() * h_.cols());
        }
        sq_ = (e_.rowwise().squaredNorm().array() * h_.rowwise().squaredNorm().array()).matrix();
        rhs_e_ = padded_copy(e_);
        rhs_h_ = padded_copy(h_);
    }

    Eigen::Index size() const noexcept { return factored_ ? e_.rows() : x_.rows(); }
    /// Width of one left-hand row: d, or C + E for factored rows.
    Eigen::Index dim() const noexcept { return factored_ ? e_.cols() + h_.cols() : x_.cols(); }
    /// |row|^2 of the prepared rows (in the current order).
    const Vector<Scalar>& squared_norms() const noexcept { return sq_; }
    /// Multiply a distance by this to get it in the caller's units.
    double unit() const noexcept { return unit_; }
    /// `v * unit()` without forming unit() (which overflows for squared distances of rows near
    /// 1e154 and beyond): exact, and +inf only when the product itself is out of range.
    double to_caller(double v) const noexcept { return std::ldexp(v, unit_exponent_); }
    /// Bytes held (the prepared copy of the rows and their norms).
    std::size_t bytes() const noexcept {
        return static_cast<std::size_t>(x_.size() + rhs_.size() + sq_.size() + e_.size() + h_.size() +
                                        rhs_e_.size() + rhs_h_.size()) *
               sizeof(Scalar);
    }

    /// Bytes cluster() needs on top of bytes(): a transient copy of the rows, and per leaf a
    /// bounding ball.
    std::size_t cluster_bytes() const noexcept {
        return static_cast<std::size_t>(size()) * (static_cast<std::size_t>(dim()) * sizeof(Scalar) + 2 * sizeof(Scalar)) +
               static_cast<std::size_t>(leaves()) * static_cast<std::size_t>(dim() + 3) * sizeof(double);
    }

    /// Bytes of scratch one call of compute() uses for `r` rows, besides `out`.
    std::size_t scratch_bytes(Eigen::Index r, int threads) const noexcept {
        const Eigen::Index padded = (r + tile_rows - 1) / tile_rows * tile_rows;
        const Eigen::Index tiles = factored_ ? 2 : 1;  // factored: one Gram tile per factor
        return static_cast<std::size_t>(padded * dim() + threads * tiles * tile_rows * (2 * tile_cols)) * sizeof(Scalar);
    }

    /// Distances from rows `ids[0..r)` to every row: `out` is r x m, row-major (row t = ids[t]).
    /// Tiles run in parallel when `parallel` is true.
    void compute(const Eigen::Index* ids, Eigen::Index r, Scalar* out, bool parallel) const {
        const Eigen::Index m = size();
        // Whole tiles only: every GEMM call has the same shape (tile_rows x d times d x width), so
        // that Eigen's depth blocking, which depends on the shape when d is large, never differs.
        const Eigen::Index padded = (r + tile_rows - 1) / tile_rows * tile_rows;
        const Lhs lhs = make_lhs(ids, r, padded);
        const Eigen::Index row_tiles = (padded + tile_rows - 1) / tile_rows;
        const Eigen::Index col_tiles = std::max<Eigen::Index>(1, m / tile_cols);
        const Eigen::Index tiles = row_tiles * col_tiles;
        // On the team whenever there are several tiles, however small: outside an active parallel
        // region Eigen splits each tile's GEMM over threads itself, which costs far more than a
        // small tile's work.
        const bool par = parallel && tiles > 1;
        (void)par;
        RegionExceptions errors;  // std::bad_alloc of a tile reaches the caller
        CORESET_OMP(omp parallel for schedule(dynamic, 1) if (par))
        for (Eigen::Index t = 0; t < tiles; ++t) errors.run(t, [&] {
            note_team();
            const Eigen::Index r0 = (t / col_tiles) * tile_rows, ct = t % col_tiles, c0 = ct * tile_cols;
            const Eigen::Index rn = std::min(tile_rows, padded - r0);
            const Eigen::Index cn = ct + 1 == col_tiles ? m - c0 : tile_cols;
            const Eigen::Index cp = ct + 1 == col_tiles ? padded_rows() - c0 : tile_cols;
            RowMatrix<Scalar> gram(rn, cp);
            gram_tile(lhs, r0, rn, c0, cp, gram);
            const Eigen::Index live = std::min(rn, r - r0);
            for (Eigen::Index a = 0; a < live; ++a)
                finish_row(ids[r0 + a], c0, cn, gram.row(a).data(), out + (r0 + a) * m + c0);
        });
        errors.rethrow();
    }

    /// The full m x m distance matrix into `out` (row-major), computing only the tiles that touch
    /// the lower triangle (about half the GEMM work) and mirroring the rest. Every entry is
    /// bit-identical to what compute() gives for its row: a distance is symmetric to the last bit,
    /// since both orders of a pair run the same fused multiply-adds on the same operands.
    void compute_all(Scalar* out, bool parallel) const {
        const Eigen::Index m = size(), d = dim();
        const Eigen::Index padded = (m + tile_rows - 1) / tile_rows * tile_rows;
        const Lhs lhs = make_lhs(nullptr, m, padded);
        const Eigen::Index row_tiles = (padded + tile_rows - 1) / tile_rows;
        const Eigen::Index col_tiles = std::max<Eigen::Index>(1, m / tile_cols);
        // Columns [0, covered(rt)) of row tile rt are computed: every column tile starting before
        // the tile's last row.
        auto covered = [&](Eigen::Index rt) {
            const Eigen::Index last = std::min(m, (rt + 1) * tile_rows) - 1;
            const Eigen::Index ct = std::min(col_tiles - 1, last / tile_cols);
            return ct + 1 == col_tiles ? m : (ct + 1) * tile_cols;
        };
        std::vector<std::pair<Eigen::Index, Eigen::Index>> tiles;
        for (Eigen::Index rt = 0; rt < row_tiles && rt * tile_rows < m; ++rt)
            for (Eigen::Index ct = 0; ct < col_tiles && ct * tile_cols < covered(rt); ++ct) tiles.emplace_back(rt, ct);
        const auto count = static_cast<Eigen::Index>(tiles.size());
        const bool par = parallel && count > 1 && static_cast<double>(m) * static_cast<double>(m) * static_cast<double>(d + 8) > 4e5;
        (void)par;
        RegionExceptions errors;
        CORESET_OMP(omp parallel if (par))
        {
            note_team();
            CORESET_OMP(omp for schedule(dynamic, 1))
            for (Eigen::Index t = 0; t < count; ++t) errors.run(t, [&] {
                const Eigen::Index rt = tiles[static_cast<std::size_t>(t)].first, ct = tiles[static_cast<std::size_t>(t)].second;
                const Eigen::Index r0 = rt * tile_rows, c0 = ct * tile_cols;
                const Eigen::Index rn = std::min(tile_rows, padded - r0);
                const Eigen::Index cn = ct + 1 == col_tiles ? m - c0 : tile_cols;
                const Eigen::Index cp = ct + 1 == col_tiles ? padded_rows() - c0 : tile_cols;
                RowMatrix<Scalar> gram(rn, cp);
                gram_tile(lhs, r0, rn, c0, cp, gram);
                const Eigen::Index live = std::min(rn, m - r0);
                for (Eigen::Index a = 0; a < live; ++a) finish_row(r0 + a, c0, cn, gram.row(a).data(), out + (r0 + a) * m + c0);
            });
            // Mirror: out(i, j) = out(j, i) for the columns row i's tile did not compute, in 64 x 64
            // blocks so that the transposed reads stay in cache.
            const Eigen::Index bs = 64, blocks = (m + bs - 1) / bs;
            CORESET_OMP(omp for schedule(dynamic, 1))
            for (Eigen::Index bi = 0; bi < blocks; ++bi) {
                const Eigen::Index i0 = bi * bs, i1 = std::min(m, i0 + bs);
                for (Eigen::Index j0 = 0; j0 < m; j0 += bs) {
                    const Eigen::Index j1 = std::min(m, j0 + bs);
                    for (Eigen::Index i = i0; i < i1; ++i) {
                        const Eigen::Index from = std::max(j0, covered(i / tile_rows));
                        for (Eigen::Index j = from; j < j1; ++j) out[i * m + j] = out[j * m + i];
                    }
                }
            }
        }
        errors.rethrow();
    }

    /// Leaves: the ground rows in consecutive groups of `leaf_width` (the last one takes the
    /// remainder, fewer than 2 leaf_width rows). The fused kernel (visit()) uses them as column
    /// tiles; after cluster() each leaf is a compact group of rows with a bounding ball, which
    /// lets the engine skip (candidate, leaf) pairs that provably contribute nothing.
    static constexpr Eigen::Index leaf_width = 4 * row_quantum;
    Eigen::Index leaves() const noexcept { return std::max<Eigen::Index>(1, size() / leaf_width); }
    Eigen::Index leaf_begin(Eigen::Index l) const noexcept { return l * leaf_width; }
    Eigen::Index leaf_end(Eigen::Index l) const noexcept { return l + 1 == leaves() ? size() : (l + 1) * leaf_width; }
    /// True once cluster() has reordered the rows and computed the leaves' bounding balls.
    bool clustered() const noexcept { return radius_.size() > 0; }

    /// Reorders the rows (explicit rows only; a no-op returning the identity for factored rows)
    /// so that every leaf is a compact group: recursive halving along the direction between two
    /// far-apart rows (each half a whole number of leaves), then a bounding ball per leaf,
    /// computed in double. Returns the order: position p now holds the caller's row order[p].
    /// Distances are unchanged to the last bit (the prepared values move as they are, and the tile
    /// geometry makes an entry independent of where it sits), so this changes no greedy decision.
    std::vector<Eigen::Index> cluster() {
        const Eigen::Index m = size(), L = leaves();
        std::vector<Eigen::Index> order(static_cast<std::size_t>(m));
        for (Eigen::Index p = 0; p < m; ++p) order[static_cast<std::size_t>(p)] = p;
        if (factored_ || L < 2) return order;
        std::vector<Scalar> proj(static_cast<std::size_t>(m));
        // The row of [lo, hi) farthest from row `ref` (ties to the lowest row).
        auto farthest = [&](Eigen::Index lo, Eigen::Index hi, Eigen::Index ref) {
            Eigen::Index best = order[static_cast<std::size_t>(lo)];
            Scalar far = -1;
            for (Eigen::Index t = lo; t < hi; ++t) {
                const Eigen::Index i = order[static_cast<std::size_t>(t)];
                const Scalar v = (x_.row(i) - x_.row(ref)).squaredNorm();
                if (v > far || (v == far && i < best)) {
                    far = v;
                    best = i;
                }
            }
            return best;
        };
        std::vector<std::pair<Eigen::Index, Eigen::Index>> todo{{0, L}};  // leaf ranges [a, b)
        while (!todo.empty()) {
            const Eigen::Index a = todo.back().first, b = todo.back().second;
            todo.pop_back();
            if (b - a < 2) continue;
            const Eigen::Index lo = leaf_begin(a), hi = leaf_end(b - 1), mid = (a + b) / 2;
            const Eigen::Index p = farthest(lo, hi, order[static_cast<std::size_t>(lo)]);
            const Eigen::Index q = farthest(lo, hi, p);
            const Eigen::Matrix<Scalar, 1, Eigen::Dynamic> dir = x_.row(q) - x_.row(p);
            for (Eigen::Index t = lo; t < hi; ++t) {
                const Eigen::Index i = order[static_cast<std::size_t>(t)];
                proj[static_cast<std::size_t>(i)] = x_.row(i).dot(dir);
            }
            const auto base = order.begin();
            std::nth_element(base + lo, base + leaf_begin(mid), base + hi, [&](Eigen::Index u, Eigen::Index v) {
                const Scalar pu = proj[static_cast<std::size_t>(u)], pv = proj[static_cast<std::size_t>(v)];
                return pu < pv || (pu == pv && u < v);
            });
            todo.emplace_back(a, mid);
            todo.emplace_back(mid, b);
        }
        RowMatrix<Scalar> moved(m, x_.cols());
        Vector<Scalar> sq(m);
        for (Eigen::Index p = 0; p < m; ++p) {
            moved.row(p) = x_.row(order[static_cast<std::size_t>(p)]);
            sq[p] = sq_[order[static_cast<std::size_t>(p)]];
        }
        x_ = std::move(moved);
        sq_ = std::move(sq);
        rhs_.resize(0, 0);
        rhs_ = padded_copy(x_);
        // Bounding balls in double: centre = mean of the leaf, radius = largest distance to it,
        // inflated past the rounding of these double computations.
        const Eigen::Index d = x_.cols();
        centres_.resize(L, d);
        radius_.resize(L);
        leaf_sq_.resize(L);
        for (Eigen::Index l = 0; l < L; ++l) {
            const Eigen::Index lo = leaf_begin(l), n = leaf_end(l) - lo;
            const Eigen::MatrixXd rows = x_.middleRows(lo, n).template cast<double>();
            centres_.row(l) = rows.colwise().mean();
            radius_[l] = std::sqrt((rows.rowwise() - centres_.row(l)).rowwise().squaredNorm().maxCoeff()) * (1 + 1e-12);
            leaf_sq_[l] = static_cast<double>(sq_.segment(lo, n).maxCoeff());
        }
        centre_sq_ = centres_.rowwise().squaredNorm();
        return order;
    }

    /// need[t * leaves() + l] = 0 when no row i of leaf l can have dist(ids[t], i) < best_max[l]
    /// (the engine's computed distance, rounding included), 1 otherwise. By the triangle
    /// inequality dist(c, i) >= |c - centre| - radius; the margins cover the rounding of the
    /// Gram-based float distances (at most (2 d + 4) u (|c|^2 + |i|^2) on the squared distance)
    /// and of the double arithmetic here. Requires clustered().
    void needed_leaves(const Eigen::Index* ids, Eigen::Index r, const Scalar* best_max, std::vector<char>& need) const {
        const Eigen::Index L = leaves(), d = x_.cols();
        need.assign(static_cast<std::size_t>(r * L), 1);
        Eigen::MatrixXd cand(r, d);
        for (Eigen::Index t = 0; t < r; ++t) cand.row(t) = x_.row(ids[t]).template cast<double>();
        const Eigen::VectorXd cn = cand.rowwise().squaredNorm();
        const Eigen::MatrixXd dots = cand * centres_.transpose();  // r x L
        const double tol = static_cast<double>(2 * d + 16) * static_cast<double>(std::numeric_limits<Scalar>::epsilon());
        const double grow = 1 + 16 * static_cast<double>(std::numeric_limits<Scalar>::epsilon());
        for (Eigen::Index l = 0; l < L; ++l) {
            const double b = static_cast<double>(best_max[l]);
            double threshold = 0;  // the squared distance every row of the leaf must reach
            switch (metric_) {
                case Metric::Euclidean: threshold = b * b * grow; break;
                case Metric::SquaredEuclidean: threshold = b * grow; break;
                case Metric::Cosine: threshold = 2 * b * grow; break;
                case Metric::ExpEuclidean: {
                    const double x = exp_inverse(b);  // the Euclidean distance that guarantees b
                    threshold = x * x * grow;
                    break;
                }
            }
            for (Eigen::Index t = 0; t < r; ++t) {
                const double c2 = cn[t] + centre_sq_[l] - 2 * dots(t, l) - 1e-12 * (cn[t] + centre_sq_[l]);
                if (c2 <= 0) continue;
                const double lb = std::sqrt(c2) * (1 - 1e-15) - radius_[l];
                if (lb <= 0) continue;
                const double reach = lb * lb * (1 - 1e-12) - tol * (static_cast<double>(sq_[ids[t]]) + leaf_sq_[l]);
                if (reach >= threshold) need[static_cast<std::size_t>(t * L + l)] = 0;
            }
        }
    }

    /// Leaves l2 <= l1 whose largest computed distance to leaf l1 could exceed `floor`: out[l2]
    /// = 1 (the bound |c1 - c2| + r1 + r2, with the margins of needed_leaves()). Requires
    /// clustered().
    void leaves_above(Eigen::Index l1, Scalar floor, std::vector<char>& out) const {
        const Eigen::Index d = x_.cols();
        out.assign(static_cast<std::size_t>(l1 + 1), 1);
        const Eigen::VectorXd dots = centres_.topRows(l1 + 1) * centres_.row(l1).transpose();
        const double tol = static_cast<double>(2 * d + 16) * static_cast<double>(std::numeric_limits<Scalar>::epsilon());
        const double grow = 1 + 16 * static_cast<double>(std::numeric_limits<Scalar>::epsilon());
        const double f = static_cast<double>(floor);
        for (Eigen::Index l2 = 0; l2 <= l1; ++l2) {
            const double c2 = std::max(0.0, centre_sq_[l1] + centre_sq_[l2] - 2 * dots[l2]) +
                              1e-12 * (centre_sq_[l1] + centre_sq_[l2]);
            double ub = std::sqrt(c2) * (1 + 1e-15) + radius_[l1] + radius_[l2];
            // Centred rows (Euclidean and squared): |a - b| <= |a| + |b|.
            if (metric_ != Metric::Cosine)
                ub = std::min(ub, (std::sqrt(leaf_sq_[l1]) + std::sqrt(leaf_sq_[l2])) * (1 + 1e-12));
            double top = (ub * ub * (1 + 1e-12) + tol * (leaf_sq_[l1] + leaf_sq_[l2])) * grow;  // squared
            switch (metric_) {
                case Metric::Euclidean: top = std::sqrt(top) * grow; break;
                case Metric::SquaredEuclidean: break;
                case Metric::Cosine: top *= 0.5; break;
                case Metric::ExpEuclidean: top = exp_upper(std::sqrt(top) * grow); break;
            }
            if (top < f) out[static_cast<std::size_t>(l2)] = 0;
        }
    }

    /// The fused kernel: for every row ids[t] and every leaf l with need[t * stride + l] != 0
    /// (all leaves when need is null), computes the distances from ids[t] to the leaf's rows
    /// [c0, c0 + cn) exactly as compute() does (bit for bit) into a small buffer and calls
    /// fn(t, c0, cn, distances). No r x m block is written. Tiles (96 rows x one leaf) run on the
    /// OpenMP team when `parallel` is true; fn is then called concurrently for different tiles
    /// (detail::thread_id(), below max_threads(), tells the caller's thread) and must only do
    /// order-independent work.
    /// `stride` is leaves() for a per-row mask, or 0 for one mask of leaves() entries shared by
    /// every row.
    template <class Fn>
    void visit(const Eigen::Index* ids, Eigen::Index r, const char* need, Eigen::Index stride, bool parallel,
               Fn&& fn) const {
        const Eigen::Index L = leaves();
        const Eigen::Index padded = (r + tile_rows - 1) / tile_rows * tile_rows;
        const Eigen::Index row_tiles = padded / tile_rows;
        const int team = max_threads();  // callers size per-thread state by max_threads()
        (void)team;
        // A tile is needed when one of its rows needs the leaf.
        auto needed = [&](Eigen::Index rt, Eigen::Index l) {
            if (need == nullptr) return true;
            const Eigen::Index r0 = rt * tile_rows, live = std::min(tile_rows, r - r0);
            for (Eigen::Index a = 0; a < live; ++a)
                if (need[(r0 + a) * stride + l] != 0) return true;
            return false;
        };
        // One work item per leaf with a needed tile: its row tiles run back to back on one thread,
        // so the leaf's rows come from memory once, not once per row tile.
        std::vector<Eigen::Index> work;
        for (Eigen::Index l = 0; l < L; ++l)
            for (Eigen::Index rt = 0; rt < row_tiles; ++rt)
                if (needed(rt, l)) {
                    work.push_back(l);
                    break;
                }
        if (work.empty()) return;
        const Lhs lhs = make_lhs(ids, r, padded);
        const auto count = static_cast<Eigen::Index>(work.size());
        const bool par = parallel && count > 1;  // see compute()
        (void)par;
        RegionExceptions errors;  // from fn, or std::bad_alloc
        CORESET_OMP(omp parallel if (par) num_threads(team))
        {
            note_team();
            RowMatrix<Scalar> gram;
            std::vector<Scalar> buf;
            CORESET_OMP(omp for schedule(dynamic, 1))
            for (Eigen::Index w = 0; w < count; ++w) errors.run(w, [&] {
                if (buf.empty()) buf.resize(static_cast<std::size_t>(2 * leaf_width));
                const Eigen::Index l = work[static_cast<std::size_t>(w)];
                const Eigen::Index c0 = leaf_begin(l), cn = leaf_end(l) - c0;
                const Eigen::Index cp = l + 1 == L ? padded_rows() - c0 : leaf_width;
                for (Eigen::Index rt = 0; rt < row_tiles; ++rt) {
                    if (!needed(rt, l)) continue;
                    const Eigen::Index r0 = rt * tile_rows, live = std::min(tile_rows, r - r0);
                    gram.resize(tile_rows, cp);
                    gram_tile(lhs, r0, tile_rows, c0, cp, gram);
                    for (Eigen::Index a = 0; a < live; ++a) {
                        if (need != nullptr && need[(r0 + a) * stride + l] == 0) continue;
                        finish_row(ids[r0 + a], c0, cn, gram.row(a).data(), buf.data());
                        fn(r0 + a, c0, cn, static_cast<const Scalar*>(buf.data()));
                    }
                }
            });
        }
        errors.rethrow();
    }

    /// The distance between rows i and j computed directly (a reference for tests).
    Scalar direct(Eigen::Index i, Eigen::Index j) const { return transform(direct_squared(i, j)); }

private:
    /// m *= 2^k. A factor 2^k past Scalar's range (2^149 brings subnormal floats to 1, and does
    /// not fit a float) is applied in two halves; each step is exact wherever the result is normal.
    template <class M>
    static void scale_by_power_of_two(M&& m, int k) {
        if (k > -std::numeric_limits<Scalar>::max_exponent + 2 && k < std::numeric_limits<Scalar>::max_exponent - 1) {
            m *= std::ldexp(Scalar(1), k);
            return;
        }
        m *= std::ldexp(Scalar(1), k / 2);
        m *= std::ldexp(Scalar(1), k - k / 2);
    }

    /// Depth handed to one GEMM call: small enough that Eigen never splits the depth itself (its
    /// split depends on the shape and the cache sizes); deeper rows are summed over fixed chunks.
    static constexpr Eigen::Index depth_chunk = 128;

    /// The left-hand factor(s) of a batch of rows, zero-padded to whole tiles.
    struct Lhs {
        RowMatrix<Scalar> x, e, h;
    };
    // Rows ids[0..r) (or 0..r when ids is null) of `src`, padded with zero rows to `padded`.
    static RowMatrix<Scalar> gather(const RowMatrix<Scalar>& src, const Eigen::Index* ids, Eigen::Index r,
                                    Eigen::Index padded) {
        RowMatrix<Scalar> out(padded, src.cols());
        for (Eigen::Index t = 0; t < r; ++t) out.row(t) = src.row(ids ? ids[t] : t);
        out.bottomRows(padded - r).setZero();
        return out;
    }
    Lhs make_lhs(const Eigen::Index* ids, Eigen::Index r, Eigen::Index padded) const {
        Lhs lhs;
        if (factored_) {
            lhs.e = gather(e_, ids, r, padded);
            lhs.h = gather(h_, ids, r, padded);
        } else {
            lhs.x = gather(x_, ids, r, padded);
        }
        return lhs;
    }
    // The rows padded with zero rows to a multiple of 48: the right-hand factor of every GEMM, so
    // that no column of a tile falls in a narrower (differently accumulated) kernel edge.
    // Column-major: Eigen packs the ground rows of a tile as its left-hand panel (it evaluates
    // the row-major Gram tile as its transpose), and packing reads one contiguous run per feature
    // from a column-major block instead of gathering across rows (measured: packing took a quarter
    // of a blocked run at d = 64 with the row-major copy). The packed panel, hence every distance,
    // is the same.
    using RhsMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
    static RhsMatrix padded_copy(const RowMatrix<Scalar>& x) {
        const Eigen::Index padded = (x.rows() + row_quantum - 1) / row_quantum * row_quantum;
        RhsMatrix out(padded, x.cols());
        out.topRows(x.rows()) = x;
        out.bottomRows(padded - x.rows()).setZero();
        return out;
    }
    Eigen::Index padded_rows() const noexcept { return factored_ ? rhs_e_.rows() : rhs_.rows(); }

    // gram = a[r0 .. r0 + rn) * b[c0 .. c0 + cp)^T, summed over fixed depth chunks.
    static void product_tile(const RowMatrix<Scalar>& a, const RhsMatrix& b, Eigen::Index r0, Eigen::Index rn,
                             Eigen::Index c0, Eigen::Index cp, RowMatrix<Scalar>& gram) {
        const Eigen::Index d = a.cols();
        for (Eigen::Index k0 = 0; k0 < d; k0 += depth_chunk) {
            const Eigen::Index kn = std::min(depth_chunk, d - k0);
            const auto ab = a.block(r0, k0, rn, kn);
            const auto bb = b.block(c0, k0, cp, kn);
            if (k0 == 0)
                gram.noalias() = ab * bb.transpose();
            else
                gram.noalias() += ab * bb.transpose();
        }
    }
    // The Gram tile of rows [r0, r0 + rn) of the left-hand side against ground rows [c0, c0 + cp):
    // one product, or for factored rows the Hadamard product of the two factors' products.
    void gram_tile(const Lhs& lhs, Eigen::Index r0, Eigen::Index rn, Eigen::Index c0, Eigen::Index cp,
                   RowMatrix<Scalar>& gram) const {
        if (!factored_) {
            product_tile(lhs.x, rhs_, r0, rn, c0, cp, gram);
            return;
        }
        product_tile(lhs.e, rhs_e_, r0, rn, c0, cp, gram);
        RowMatrix<Scalar> other(rn, cp);
        product_tile(lhs.h, rhs_h_, r0, rn, c0, cp, other);
        gram.array() *= other.array();
    }

    // |g_i - g_j|^2 computed from the rows themselves (no cancellation): O(d), or O(C E) factored.
    Scalar direct_squared(Eigen::Index i, Eigen::Index j) const {
        if (!factored_) return (x_.row(i) - x_.row(j)).squaredNorm();
        Scalar s = 0;
        for (Eigen::Index c = 0; c < e_.cols(); ++c) s += (e_(i, c) * h_.row(i) - e_(j, c) * h_.row(j)).squaredNorm();
        return s;
    }

    // Scales x by the power of two that brings its largest magnitude into [0.5, 1); returns the
    // exponent e removed (x_caller = x * 2^e).
    static int scale_to_unit(RowMatrix<Scalar>& x) {
        const Scalar big = x.size() > 0 ? x.cwiseAbs().maxCoeff() : Scalar(0);
        int e = 0;
        if (big > Scalar(0)) std::frexp(big, &e);
        scale_by_power_of_two(x, -e);
        return e;
    }
    // A non-zero row scaled (exactly) then divided by its norm.
    template <class Row>
    static void normalise_row(Row&& row) {
        const Scalar big = row.cwiseAbs().maxCoeff();
        int e = 0;
        std::frexp(big, &e);
        scale_by_power_of_two(row, -e);
        row /= row.norm();
    }

    // Turns Gram entries g[b] = <x_i, x_{c0+b}> into the metric's distances (see the file comment),
    // in three vectorisable passes: expand the norms, repair the few cancelled entries, transform.
    void finish_row(Eigen::Index i, Eigen::Index c0, Eigen::Index cn, const Scalar* g, Scalar* out) const {
        const Scalar si = sq_[i];
        const Scalar* sq = sq_.data() + c0;
        // Branch-free first pass (it vectorises); the repair pass runs only for rows that need it.
        for (Eigen::Index b = 0; b < cn; ++b) out[b] = si + sq[b] - Scalar(2) * g[b];
        int cancelled = 0;
        for (Eigen::Index b = 0; b < cn; ++b) cancelled += out[b] < (si + sq[b]) * Scalar(1.0 / 256);
        if (cancelled > 0)
            for (Eigen::Index b = 0; b < cn; ++b)
                if (out[b] < (si + sq[b]) * Scalar(1.0 / 256)) out[b] = direct_squared(i, c0 + b);
        if (i >= c0 && i < c0 + cn) out[i - c0] = Scalar(0);
        switch (metric_) {
            case Metric::Euclidean:
                sqrt_in_place(out, cn);
                break;
            case Metric::SquaredEuclidean:
                break;
            case Metric::Cosine:  // 1 - cos(a, b) = |a - b|^2 / 2 for unit rows
                for (Eigen::Index b = 0; b < cn; ++b) out[b] *= Scalar(0.5);
                break;
            case Metric::ExpEuclidean:
                sqrt_in_place(out, cn);
                for (Eigen::Index b = 0; b < cn; ++b) out[b] = exp_distance(out[b]);
                break;
        }
    }
    // v[b] = sqrt(v[b]), correctly rounded like std::sqrt, which compilers keep scalar unless
    // -fno-math-errno. The SIMD square roots are IEEE-exact too (unlike Eigen's packet sqrt under
    // EIGEN_FAST_MATH, a reciprocal estimate plus a Newton step), so an entry's value does not
    // depend on whether it falls in a vector or in the scalar tail.
    static void sqrt_in_place(Scalar* v, Eigen::Index n) {
        constexpr bool single = std::is_same<Scalar, float>::value;
        Eigen::Index b = 0;
#if defined(__AVX512F__)
        // The zero-masking forms with every lane enabled: the same square roots, and no
        // _mm512_undefined_*() pass-through, on which GCC 12 warns -Wmaybe-uninitialized.
        if constexpr (single)
            for (; b + 16 <= n; b += 16)
                _mm512_storeu_ps(v + b, _mm512_maskz_sqrt_ps(static_cast<__mmask16>(0xFFFF), _mm512_loadu_ps(v + b)));
        else
            for (; b + 8 <= n; b += 8)
                _mm512_storeu_pd(v + b, _mm512_maskz_sqrt_pd(static_cast<__mmask8>(0xFF), _mm512_loadu_pd(v + b)));
#elif defined(__AVX__)
        if constexpr (single)
            for (; b + 8 <= n; b += 8) _mm256_storeu_ps(v + b, _mm256_sqrt_ps(_mm256_loadu_ps(v + b)));
        else
            for (; b + 4 <= n; b += 4) _mm256_storeu_pd(v + b, _mm256_sqrt_pd(_mm256_loadu_pd(v + b)));
#elif defined(__SSE2__)
        if constexpr (single)
            for (; b + 4 <= n; b += 4) _mm_storeu_ps(v + b, _mm_sqrt_ps(_mm_loadu_ps(v + b)));
        else
            for (; b + 2 <= n; b += 2) _mm_storeu_pd(v + b, _mm_sqrt_pd(_mm_loadu_pd(v + b)));
#endif
        (void)single;
        for (; b < n; ++b) v[b] = std::sqrt(v[b]);
    }
    Scalar transform(Scalar d2) const {
        switch (metric_) {
            case Metric::Euclidean: return std::sqrt(d2);
            case Metric::SquaredEuclidean: return d2;
            case Metric::Cosine: return Scalar(0.5) * d2;  // 1 - cos(a, b) = |a - b|^2 / 2 for unit rows
            case Metric::ExpEuclidean: return exp_distance(std::sqrt(d2));
        }
        return d2;
    }

    // Units of the Euclidean metrics for rows scaled by 2^-e, of `width` caller columns.
    void set_units(int e, Eigen::Index width) {
        if (metric_ == Metric::ExpEuclidean) {
            exp_factor_ = std::ldexp(1.0, e) / static_cast<double>(width);
            return;  // already in the caller's units
        }
        unit_exponent_ = metric_ == Metric::SquaredEuclidean ? 2 * e : e;
        unit_ = std::ldexp(1.0, unit_exponent_);
    }
    // ExpEuclidean: 1 - exp(-x 2^e / d) for a prepared Euclidean distance x, in double, rounded once.
    Scalar exp_distance(Scalar x) const {
        return static_cast<Scalar>(-std::expm1(-static_cast<double>(x) * exp_factor_));
    }
    // ExpEuclidean bounds, with margins of 8 epsilon for the rounding of the factor, of expm1 and
    // of the final rounding to Scalar (each a few units in the last place). exp_inverse(b): a
    // prepared distance x such that every computed distance at x or beyond is >= b (+inf when no
    // distance below 1 can guarantee it); exp_upper(x): a bound >= every computed distance at x or
    // below.
    double exp_inverse(double b) const {
        const double eps = 8 * static_cast<double>(std::numeric_limits<Scalar>::epsilon());
        const double target = b * (1 + eps);
        if (!(target < 1)) return std::numeric_limits<double>::infinity();
        return -std::log1p(-target) / exp_factor_ * (1 + eps);
    }
    double exp_upper(double x) const {
        const double eps = 8 * static_cast<double>(std::numeric_limits<Scalar>::epsilon());
        return -std::expm1(-x * exp_factor_ * (1 + eps)) * (1 + eps);
    }

    RowMatrix<Scalar> x_;                  // explicit rows
    RhsMatrix rhs_;                        // and their padded copy
    RowMatrix<Scalar> e_, h_;              // factored rows: the two factors
    RhsMatrix rhs_e_, rhs_h_;              // and their padded copies
    Vector<Scalar> sq_;
    Eigen::MatrixXd centres_;  // after cluster(): each leaf's bounding ball (double)
    Eigen::VectorXd radius_, centre_sq_, leaf_sq_;  // its radius, |centre|^2, largest |row|^2
    Metric metric_;
    bool factored_ = false;
    double unit_ = 1.0;
    int unit_exponent_ = 0;
    double exp_factor_ = 1.0;  // ExpEuclidean: 2^e / d
};

}  // namespace detail
}  // namespace coreset
