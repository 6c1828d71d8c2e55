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
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core.hpp"
#include "checks.hpp"
#include "parallel.hpp"

namespace coreset {
namespace detail {

template <class Scalar>
class PairwiseDistances {
public:
    /// Tile geometry, fixed so that no distance depends on the thread count or on which rows were
    /// requested together. Row tiles hold a multiple of 48 rows (zero padding): 48 is a multiple of
    /// every register-block height Eigen's GEMM kernel uses on x86 and Arm (mr = 48, 24, 16, 12, 8,
    /// 6 or 4), so every row is computed by the same sequence of fused multiply-adds whether it is
    /// computed alone, in a block or in the full matrix. Column tiles are 256 wide, the last one
    /// taking the remainder (256 to 511), identically for every call.
    static constexpr Eigen::Index row_quantum = 48;
    static constexpr Eigen::Index tile_rows = 2 * row_quantum;
    static constexpr Eigen::Index tile_cols = 256;
    /// Takes the ground set (m x d, row-major) by value and prepares it. Throws for a zero row
    /// under the cosine metric.
    PairwiseDistances(RowMatrix<Scalar> x, Metric metric, const char* where) : x_(std::move(x)), metric_(metric) {
        const Eigen::Index m = x_.rows();
        if (metric_ == Metric::Cosine) {
            check_no_zero_row(x_, where, "gradients");
            for (Eigen::Index i = 0; i < m; ++i) {
                const Scalar big = x_.row(i).cwiseAbs().maxCoeff();
                int e = 0;
                std::frexp(big, &e);
                x_.row(i) *= std::ldexp(Scalar(1), -e);
                x_.row(i) /= x_.row(i).norm();
            }
            unit_ = 1.0;
        } else {
            // Scale first (exact), then centre, so that neither step can overflow.
            const Scalar big = x_.size() > 0 ? x_.cwiseAbs().maxCoeff() : Scalar(0);
            int e = 0;
            if (big > Scalar(0)) std::frexp(big, &e);
            x_ *= std::ldexp(Scalar(1), -e);
            const Eigen::Matrix<double, 1, Eigen::Dynamic> mean = x_.template cast<double>().colwise().mean();
            x_.rowwise() -= mean.template cast<Scalar>();
            unit_ = std::ldexp(1.0, metric_ == Metric::SquaredEuclidean ? 2 * e : e);
        }
        sq_ = x_.rowwise().squaredNorm();
    }

    Eigen::Index size() const noexcept { return x_.rows(); }
    Eigen::Index dim() const noexcept { return x_.cols(); }
    /// Multiply a distance by this to get it in the caller's units.
    double unit() const noexcept { return unit_; }
    /// Bytes held (the prepared copy of the rows and their norms).
    std::size_t bytes() const noexcept {
        return static_cast<std::size_t>(x_.size() + sq_.size()) * sizeof(Scalar);
    }

    /// Bytes of scratch one call of compute() uses for `r` rows, besides `out`.
    std::size_t scratch_bytes(Eigen::Index r, int threads) const noexcept {
        const Eigen::Index padded = (r + row_quantum - 1) / row_quantum * row_quantum;
        return static_cast<std::size_t>(padded * dim() + threads * tile_rows * (2 * tile_cols)) * sizeof(Scalar);
    }

    /// Distances from rows `ids[0..r)` to every row: `out` is r x m, row-major (row t = ids[t]).
    /// Tiles run in parallel when `parallel` is true.
    void compute(const Eigen::Index* ids, Eigen::Index r, Scalar* out, bool parallel) const {
        const Eigen::Index m = size(), d = dim();
        const Eigen::Index padded = (r + row_quantum - 1) / row_quantum * row_quantum;
        RowMatrix<Scalar> lhs(padded, d);
        for (Eigen::Index t = 0; t < r; ++t) lhs.row(t) = x_.row(ids[t]);
        lhs.bottomRows(padded - r).setZero();
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
            RowMatrix<Scalar> gram(rn, cn);
            gram.noalias() = lhs.middleRows(r0, rn) * x_.middleRows(c0, cn).transpose();
            const Eigen::Index live = std::min(rn, r - r0);
            for (Eigen::Index a = 0; a < live; ++a) {
                const Eigen::Index i = ids[r0 + a];
                Scalar* row = out + (r0 + a) * m + c0;
                const Scalar* g = gram.row(a).data();
                for (Eigen::Index b = 0; b < cn; ++b) row[b] = finish(i, c0 + b, g[b]);
            }
        }
    }

    /// The distance between rows i and j computed directly (a reference for tests).
    Scalar direct(Eigen::Index i, Eigen::Index j) const {
        return transform((x_.row(i) - x_.row(j)).squaredNorm());
    }

private:
    // Turns a Gram entry into the metric's distance (see the file comment).
    Scalar finish(Eigen::Index i, Eigen::Index j, Scalar gram) const {
        if (i == j) return Scalar(0);
        const Scalar norms = sq_[i] + sq_[j];
        Scalar d2 = norms - Scalar(2) * gram;
        if (d2 < norms * Scalar(1.0 / 256)) d2 = (x_.row(i) - x_.row(j)).squaredNorm();
        return transform(d2);
    }
    Scalar transform(Scalar d2) const {
        switch (metric_) {
            case Metric::Euclidean: return std::sqrt(d2);
            case Metric::SquaredEuclidean: return d2;
            case Metric::Cosine: return Scalar(0.5) * d2;  // 1 - cos(a, b) = |a - b|^2 / 2 for unit rows
        }
        return d2;
    }

    RowMatrix<Scalar> x_;
    Vector<Scalar> sq_;
    Metric metric_;
    double unit_ = 1.0;
};

}  // namespace detail
}  // namespace coreset
