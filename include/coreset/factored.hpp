// SPDX-License-Identifier: MIT
/// \file factored.hpp
/// \brief Factored gradients: per-example gradients that are outer products e_i (x) h_i, stored as
/// their two factors (n x C and n x E) instead of the n x (C E) matrix. The last-layer gradient of
/// softmax cross-entropy is one: e_i = p_i - onehot(y_i) (C values) times the layer's input h_i
/// (E values). Craig, GradMatch and AdaCore accept them wherever they accept a gradient matrix.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "core.hpp"
#include "detail/checks.hpp"
#include "detail/parallel.hpp"

namespace coreset {

/// Per-example gradients g_i = e_i (x) h_i held as their factors: `errors()` E (n x C) and
/// `activations()` H (n x E). Row i of the gradient matrix they stand for (`dense()`, n x C E) is
/// the row-major flattening of the C x E matrix e_i h_i^T: column c E + k holds e_ic h_ik.
///
/// Nothing of size n x C E is ever formed by the selectors: inner products factor,
/// \f$\langle e_i \otimes h_i, e_j \otimes h_j\rangle = (e_i \cdot e_j)(h_i \cdot h_j)\f$, so the
/// Gram matrix is \f$(E E^T) \circ (H H^T)\f$ and a correlation with a residual R (C x E) is
/// \f$e_i^T R\, h_i\f$.
///
/// Bias convention: for a linear layer z = W h + b, a column of ones in H makes the products with
/// it the bias gradients. `factored_last_layer_gradients` (gradients.hpp) puts it first, so that
/// `dense()` holds the C (1 + E) coordinates of `last_layer_gradients`, in another column order
/// (which changes no distance, correlation or weight).
///
/// The class owns its factors (construct from moved matrices to avoid copies; they are small next
/// to the product) and guarantees them non-empty, finite and of equal row counts.
///
/// \tparam Scalar float or double.
template <class Scalar>
class FactoredGradients {
    static_assert(std::is_floating_point<Scalar>::value, "coreset: FactoredGradients needs float or double");

public:
    using Matrix = detail::RowMatrix<Scalar>;  ///< row-major factor type

    /// \param errors n x C, finite (e.g. `logit_gradients`).
    /// \param activations n x E, finite (e.g. the penultimate activations, with a column of ones
    ///        for the bias).
    /// \throws std::invalid_argument if either factor is empty or not finite, or their row counts
    ///         differ.
    FactoredGradients(Matrix errors, Matrix activations) : e_(std::move(errors)), h_(std::move(activations)) {
        const char* where = "FactoredGradients::FactoredGradients()";
        detail::check_matrix(e_, where, "errors");
        detail::check_matrix(h_, where, "activations");
        detail::require(e_.rows() == h_.rows(), where, "activations must have one row per row of errors (got ",
                        h_.rows(), " rows for n = ", e_.rows(), ")");
    }

    /// Number of examples n.
    Eigen::Index rows() const noexcept { return e_.rows(); }
    /// Width C E of the gradient rows they stand for.
    Eigen::Index cols() const noexcept { return e_.cols() * h_.cols(); }
    /// The error factor (n x C).
    const Matrix& errors() const noexcept { return e_; }
    /// The activation factor (n x E).
    const Matrix& activations() const noexcept { return h_; }

    /// Entry (i, c E + k) of the gradient matrix: e_ic h_ik, rounded to Scalar.
    Scalar coeff(Eigen::Index i, Eigen::Index j) const { return e_(i, j / h_.cols()) * h_(i, j % h_.cols()); }

    /// The n x C E gradient matrix itself (for checks and small problems: it is what the selectors
    /// avoid forming). An entry past Scalar's range is infinite.
    Matrix dense() const {
        Matrix out(rows(), cols());
        const Eigen::Index C = e_.cols(), E = h_.cols();
        for (Eigen::Index i = 0; i < rows(); ++i)
            for (Eigen::Index c = 0; c < C; ++c) out.row(i).segment(c * E, E) = e_(i, c) * h_.row(i);
        return out;
    }

private:
    Matrix e_, h_;
};

/// Builds FactoredGradients from any two Eigen matrices of the same scalar type (copied once).
/// \throws std::invalid_argument as the constructor.
template <class DerivedE, class DerivedH>
FactoredGradients<typename DerivedE::Scalar> factored(const Eigen::MatrixBase<DerivedE>& errors,
                                                      const Eigen::MatrixBase<DerivedH>& activations) {
    static_assert(std::is_same<typename DerivedE::Scalar, typename DerivedH::Scalar>::value,
                  "coreset: errors and activations must have the same scalar type");
    using M = typename FactoredGradients<typename DerivedE::Scalar>::Matrix;
    return FactoredGradients<typename DerivedE::Scalar>(M(errors), M(activations));
}

namespace detail {

template <class T>
struct is_factored : std::false_type {};
template <class Scalar>
struct is_factored<FactoredGradients<Scalar>> : std::true_type {};

/// The entries e_ic h_ik as an Eigen expression (n x C E), evaluated one coefficient at a time: for
/// code written against Eigen expressions (AdaCore's update) that should never hold the product.
template <class Scalar>
struct OuterProductRows {
    const FactoredGradients<Scalar>* g;
    Scalar operator()(Eigen::Index i, Eigen::Index j) const { return g->coeff(i, j); }
};
template <class Scalar>
auto outer_product_rows(const FactoredGradients<Scalar>& g) {
    return RowMatrix<Scalar>::NullaryExpr(g.rows(), g.cols(), OuterProductRows<Scalar>{&g});
}

/// The factors of the given rows (per-class selection).
template <class Scalar>
FactoredGradients<Scalar> gather_rows(const FactoredGradients<Scalar>& x, const std::vector<Eigen::Index>& rows) {
    const auto m = static_cast<Eigen::Index>(rows.size());
    RowMatrix<Scalar> e(m, x.errors().cols()), h(m, x.activations().cols());
    for (Eigen::Index r = 0; r < m; ++r) {
        e.row(r) = x.errors().row(rows[static_cast<std::size_t>(r)]);
        h.row(r) = x.activations().row(rows[static_cast<std::size_t>(r)]);
    }
    return FactoredGradients<Scalar>(std::move(e), std::move(h));
}

/// Shares each row's magnitude between its two factors, in place: e_i 2^-s_i and h_i 2^s_i (the
/// same product), s_i moving max |e_i| and max |h_i| to within a factor 4 of each other as far as
/// the largest entry of the factor that shrinks stays normal; a row whose product is zero
/// (e_i = 0 or h_i = 0) gets both factors zero. Every product is exact, except those of entries
/// that become subnormal, which change by less than an ulp of the row's largest product. Then no
/// factor row far larger than its product (1e200 times zeros, or times 1e-200) decides the scale
/// of a whole factor: the distance oracle scales each factor by one power of two (such a row
/// flushed every other row to zero), and so does GRAD-MATCH's correlation pass.
template <class Scalar>
void balance_rows(RowMatrix<Scalar>& e, RowMatrix<Scalar>& h) {
    const int normal = std::numeric_limits<Scalar>::min_exponent;  // frexp exponent of the smallest normal
    for (Eigen::Index i = 0; i < e.rows(); ++i) {
        const Scalar a = e.row(i).cwiseAbs().maxCoeff(), b = h.row(i).cwiseAbs().maxCoeff();
        if (!(a > 0) || !(b > 0)) {
            e.row(i).setZero();
            h.row(i).setZero();
            continue;
        }
        int ea = 0, eb = 0;
        std::frexp(a, &ea);
        std::frexp(b, &eb);
        int s = (ea - eb) / 2;
        if (s > 0) s = std::max(0, std::min(s, ea - normal));  // e shrinks: its largest stays normal
        if (s < 0) s = std::min(0, std::max(s, normal - eb));  // h shrinks: likewise
        if (s == 0) continue;
        for (Eigen::Index c = 0; c < e.cols(); ++c) e(i, c) = std::ldexp(e(i, c), -s);
        for (Eigen::Index k = 0; k < h.cols(); ++k) h(i, k) = std::ldexp(h(i, k), s);
    }
}
/// A balanced copy (balance_rows): the rows Craig's engine works on.
template <class Scalar>
FactoredGradients<Scalar> balanced_rows(const FactoredGradients<Scalar>& x) {
    RowMatrix<Scalar> e = x.errors(), h = x.activations();
    balance_rows(e, h);
    return FactoredGradients<Scalar>(std::move(e), std::move(h));
}

/// Consecutive mini-batches of `batch_size` rows: their mean gradient rows (explicit, B x C E: a
/// mean of outer products is not one) and sizes. Each mean is one small product E_b^T H_b / |b|,
/// in double, never the batch's C E-wide rows.
template <class Scalar>
void batch_means(const FactoredGradients<Scalar>& x, Eigen::Index batch_size, RowMatrix<Scalar>& means,
                 Vector<Scalar>& sizes) {
    const Eigen::Index n = x.rows(), B = (n - 1) / batch_size + 1;
    const Eigen::Index C = x.errors().cols(), E = x.activations().cols();
    means.resize(B, x.cols());
    sizes.resize(B);
    for (Eigen::Index b = 0; b < B; ++b) {
        const Eigen::Index lo = b * batch_size, len = std::min(batch_size, n - lo);
        // In double, from the rows divided by the batch size: finite wherever the mean itself is.
        RowMatrix<double> mean;
        eigen_single_threaded([&] {  // the same sums for any thread count
            mean.noalias() = (x.errors().middleRows(lo, len).template cast<double>() / static_cast<double>(len))
                                 .transpose() *
                             x.activations().middleRows(lo, len).template cast<double>();
        });
        Eigen::Map<RowMatrix<Scalar>>(means.row(b).data(), C, E) = mean.template cast<Scalar>();
        sizes[b] = static_cast<Scalar>(len);
    }
}

/// Column sums of the gradient matrix, in double: the flattening of E^T H.
template <class Scalar>
Eigen::VectorXd column_sum(const FactoredGradients<Scalar>& x) {
    const Eigen::Index C = x.errors().cols(), E = x.activations().cols();
    Eigen::VectorXd t(C * E);
    eigen_single_threaded([&] {  // the same sums for any thread count
        Eigen::Map<RowMatrix<double>>(t.data(), C, E).noalias() =
            x.errors().template cast<double>().transpose() * x.activations().template cast<double>();
    });
    return t;
}

/// Row norms |g_i| = |e_i| |h_i|, in double: 0 when either factor row is (a factor row's own norm
/// can overflow, 1e200 in double, where the product's does not: 0 * inf was NaN).
template <class Scalar>
Eigen::VectorXd row_norms(const FactoredGradients<Scalar>& x) {
    Eigen::VectorXd out(x.rows());
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
        const double a = x.errors().row(i).template cast<double>().stableNorm();
        const double b = x.activations().row(i).template cast<double>().stableNorm();
        out[i] = a > 0 && b > 0 ? a * b : 0.0;
    }
    return out;
}

/// Row i is zero exactly when e_i or h_i is: the cosine metric is undefined there.
template <class Scalar>
inline void check_no_zero_row(const FactoredGradients<Scalar>& x, const char* where, const char* name) {
    for (Eigen::Index i = 0; i < x.rows(); ++i)
        if (!(x.errors().row(i).cwiseAbs().maxCoeff() > 0) || !(x.activations().row(i).cwiseAbs().maxCoeff() > 0))
            raise(where, ": ", name, " must have no zero row under Metric::Cosine (got a zero row at index ", i, ")");
}

/// A selector's gradient input: an Eigen matrix (checked here: non-empty, finite) or factored
/// gradients (valid by construction).
template <class Derived>
inline void check_gradients(const Eigen::MatrixBase<Derived>& g, const char* where) {
    check_matrix(g, where, "gradients");
}
template <class Scalar>
inline void check_gradients(const FactoredGradients<Scalar>&, const char*) {}

}  // namespace detail
}  // namespace coreset
