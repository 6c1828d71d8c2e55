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
#include <vector>

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
            unit_exponent_ = metric_ == Metric::SquaredEuclidean ? 2 * e : e;
            unit_ = std::ldexp(1.0, unit_exponent_);
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
            unit_exponent_ = metric_ == Metric::SquaredEuclidean ? 2 * (ee + eh) : ee + eh;
            unit_ = std::ldexp(1.0, unit_exponent_);
        }
        sq_ = (e_.rowwise().squaredNorm().array() * h_.rowwise().squaredNorm().array()).matrix();
        rhs_e_ = padded_copy(e_);
        rhs_h_ = padded_copy(h_);
    }

    Eigen::Index size() const noexcept { return factored_ ? e_.rows() : x_.rows(); }
    /// Width of one left-hand row: d, or C + E for factored rows.
    Eigen::Index dim() const noexcept { return factored_ ? e_.cols() + h_.cols() : x_.cols(); }
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

    /// Bytes of scratch one call of compute() uses for `r` rows, besides `out`.
    std::size_t scratch_bytes(Eigen::Index r, int threads) const noexcept {
        const Eigen::Index padded = (r + tile_rows - 1) / tile_rows * tile_rows;
        const Eigen::Index tiles = factored_ ? 2 : 1;  // factored: one Gram tile per factor
        return static_cast<std::size_t>(padded * dim() + threads * tiles * tile_rows * (2 * tile_cols)) * sizeof(Scalar);
    }

    /// Distances from rows `ids[0..r)` to every row: `out` is r x m, row-major (row t = ids[t]).
    /// Tiles run in parallel when `parallel` is true.
    void compute(const Eigen::Index* ids, Eigen::Index r, Scalar* out, bool parallel) const {
        const Eigen::Index m = size(), d = dim();
        // Whole tiles only: every GEMM call has the same shape (tile_rows x d times d x width), so
        // that Eigen's depth blocking, which depends on the shape when d is large, never differs.
        const Eigen::Index padded = (r + tile_rows - 1) / tile_rows * tile_rows;
        const Lhs lhs = make_lhs(ids, r, padded);
        const Eigen::Index row_tiles = (padded + tile_rows - 1) / tile_rows;
        const Eigen::Index col_tiles = std::max<Eigen::Index>(1, m / tile_cols);
        const Eigen::Index tiles = row_tiles * col_tiles;
        const bool par = parallel && tiles > 1 && static_cast<double>(r) * static_cast<double>(m) * static_cast<double>(d + 8) > 2e5;
        (void)par;
        CORESET_OMP(omp parallel for schedule(dynamic, 1) if (par))
        for (Eigen::Index t = 0; t < tiles; ++t) {
            const Eigen::Index r0 = (t / col_tiles) * tile_rows, ct = t % col_tiles, c0 = ct * tile_cols;
            const Eigen::Index rn = std::min(tile_rows, padded - r0);
            const Eigen::Index cn = ct + 1 == col_tiles ? m - c0 : tile_cols;
            const Eigen::Index cp = ct + 1 == col_tiles ? padded_rows() - c0 : tile_cols;
            RowMatrix<Scalar> gram(rn, cp);
            gram_tile(lhs, r0, rn, c0, cp, gram);
            const Eigen::Index live = std::min(rn, r - r0);
            for (Eigen::Index a = 0; a < live; ++a)
                finish_row(ids[r0 + a], c0, cn, gram.row(a).data(), out + (r0 + a) * m + c0);
        }
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
        CORESET_OMP(omp parallel if (par))
        {
            std::vector<Eigen::Index> ids(static_cast<std::size_t>(tile_rows));
            CORESET_OMP(omp for schedule(dynamic, 1))
            for (Eigen::Index t = 0; t < count; ++t) {
                const Eigen::Index rt = tiles[static_cast<std::size_t>(t)].first, ct = tiles[static_cast<std::size_t>(t)].second;
                const Eigen::Index r0 = rt * tile_rows, c0 = ct * tile_cols;
                const Eigen::Index rn = std::min(tile_rows, padded - r0);
                const Eigen::Index cn = ct + 1 == col_tiles ? m - c0 : tile_cols;
                const Eigen::Index cp = ct + 1 == col_tiles ? padded_rows() - c0 : tile_cols;
                RowMatrix<Scalar> gram(rn, cp);
                gram_tile(lhs, r0, rn, c0, cp, gram);
                const Eigen::Index live = std::min(rn, m - r0);
                for (Eigen::Index a = 0; a < live; ++a) finish_row(r0 + a, c0, cn, gram.row(a).data(), out + (r0 + a) * m + c0);
            }
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
    static RowMatrix<Scalar> padded_copy(const RowMatrix<Scalar>& x) {
        const Eigen::Index padded = (x.rows() + row_quantum - 1) / row_quantum * row_quantum;
        RowMatrix<Scalar> out(padded, x.cols());
        out.topRows(x.rows()) = x;
        out.bottomRows(padded - x.rows()).setZero();
        return out;
    }
    Eigen::Index padded_rows() const noexcept { return factored_ ? rhs_e_.rows() : rhs_.rows(); }

    // gram = a[r0 .. r0 + rn) * b[c0 .. c0 + cp)^T, summed over fixed depth chunks.
    static void product_tile(const RowMatrix<Scalar>& a, const RowMatrix<Scalar>& b, Eigen::Index r0, Eigen::Index rn,
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
        for (Eigen::Index b = 0; b < cn; ++b) out[b] = si + sq[b] - Scalar(2) * g[b];
        for (Eigen::Index b = 0; b < cn; ++b)
            if (out[b] < (si + sq[b]) * Scalar(1.0 / 256)) out[b] = direct_squared(i, c0 + b);
        if (i >= c0 && i < c0 + cn) out[i - c0] = Scalar(0);
        switch (metric_) {
            case Metric::Euclidean:
                for (Eigen::Index b = 0; b < cn; ++b) out[b] = std::sqrt(out[b]);
                break;
            case Metric::SquaredEuclidean:
                break;
            case Metric::Cosine:  // 1 - cos(a, b) = |a - b|^2 / 2 for unit rows
                for (Eigen::Index b = 0; b < cn; ++b) out[b] *= Scalar(0.5);
                break;
        }
    }
    Scalar transform(Scalar d2) const {
        switch (metric_) {
            case Metric::Euclidean: return std::sqrt(d2);
            case Metric::SquaredEuclidean: return d2;
            case Metric::Cosine: return Scalar(0.5) * d2;  // 1 - cos(a, b) = |a - b|^2 / 2 for unit rows
        }
        return d2;
    }

    RowMatrix<Scalar> x_, rhs_;             // explicit rows, and their padded copy
    RowMatrix<Scalar> e_, h_, rhs_e_, rhs_h_;  // factored rows: the two factors, and padded copies
    Vector<Scalar> sq_;
    Metric metric_;
    bool factored_ = false;
    double unit_ = 1.0;
    int unit_exponent_ = 0;
};

}  // namespace detail
}  // namespace coreset
