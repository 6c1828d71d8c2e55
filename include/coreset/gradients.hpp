// SPDX-License-Identifier: MIT
/// \file gradients.hpp
/// \brief Last-layer gradient and curvature helpers: closed forms of the softmax cross-entropy loss
/// (losses, gradients, Hessian diagonals, in logit space and for the last linear layer), a
/// Hutchinson estimator of a Hessian diagonal from Hessian-vector products, and Sherman-Morrison
/// solves for the rank-one-plus-ridge per-example Hessians of L2 logistic regression.
///
/// Notation: n examples, C classes, E embedding width (the input of the last linear layer
/// z = W e + b, W is C x E). For row i: p = softmax(z), y = onehot(label), a = p - y.
///
/// Every result is row-major (row i = example i), the layout the selectors work on, and has the
/// scalar type of the scores (logits or probabilities). Internally each row is computed in double.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "core.hpp"
#include "factored.hpp"
#include "detail/checks.hpp"
#include "detail/rng.hpp"

namespace coreset {

/// What the rows of a score matrix passed to the gradient helpers hold.
enum class ModelOutput {
    Logits,        ///< Softmax inputs z (any finite values); the helpers apply a stable softmax.
    Probabilities  ///< Softmax outputs p: every entry in [0, 1], every row summing to 1 +- 1e-3.
};

inline const char* to_string(ModelOutput o) noexcept {
    switch (o) {
        case ModelOutput::Logits: return "Logits";
        case ModelOutput::Probabilities: return "Probabilities";
    }
    return "unknown ModelOutput";
}
inline std::ostream& operator<<(std::ostream& os, ModelOutput v) { return os << to_string(v); }

namespace detail {

/// The per-row quantities every closed form is built from, in double: p_k and q_k = 1 - p_k, with
/// q computed without cancellation for the most probable class (q = sum of the other p's), and,
/// for logits, the log-partition pieces needed by a stable cross-entropy.
class SoftmaxRows {
public:
    template <class Derived>
    SoftmaxRows(const Eigen::MatrixBase<Derived>& scores, ModelOutput output, const char* where)
        : n_(scores.rows()), c_(scores.cols()), output_(output) {
        if (output != ModelOutput::Logits && output != ModelOutput::Probabilities)
            raise(where, ": output must be ModelOutput::Logits or ModelOutput::Probabilities (got ",
                  static_cast<int>(output), ")");
        check_matrix(scores, where, "scores");
        z_ = scores.template cast<double>();
        if (output_ == ModelOutput::Probabilities) {
            for (Eigen::Index i = 0; i < n_; ++i) {
                double total = 0.0;
                for (Eigen::Index k = 0; k < c_; ++k) {
                    const double v = z_(i, k);
                    if (!(v >= 0.0 && v <= 1.0))
                        raise(where, ": scores must satisfy 0 <= p <= 1 for ModelOutput::Probabilities (got ",
                              v, " at row ", i, ", column ", k, ")");
                    total += v;
                }
                if (!(std::abs(total - 1.0) <= 1e-3))
                    raise(where,
                          ": scores must have rows summing to 1 +- 1e-3 for ModelOutput::Probabilities (got ",
                          total, " at row ", i, ")");
            }
        }
    }

    Eigen::Index rows() const noexcept { return n_; }
    Eigen::Index classes() const noexcept { return c_; }

    /// Fills p and q = 1 - p for row i (both of length C).
    void row(Eigen::Index i, double* p, double* q) const {
        if (output_ == ModelOutput::Probabilities) {
            for (Eigen::Index k = 0; k < c_; ++k) {
                p[k] = z_(i, k);
                q[k] = 1.0 - z_(i, k);
            }
            return;
        }
        Eigen::Index top = 0;
        for (Eigen::Index k = 1; k < c_; ++k)
            if (z_(i, k) > z_(i, top)) top = k;
        const double m = z_(i, top);
        double rest = 0.0;  // sum of exp(z_k - m) over k != top
        for (Eigen::Index k = 0; k < c_; ++k) {
            p[k] = (k == top) ? 1.0 : std::exp(z_(i, k) - m);
            if (k != top) rest += p[k];
        }
        const double s = 1.0 + rest;
        for (Eigen::Index k = 0; k < c_; ++k) {
            // For k != top, p_k <= 1/2, so 1 - p_k does not cancel; for the top class 1 - p = rest / s.
            q[k] = (k == top) ? rest / s : (s - p[k]) / s;
            p[k] /= s;
        }
    }

    /// -log p_label for row i, stable: log1p(rest) + (max - z_label) for logits.
    double loss(Eigen::Index i, Eigen::Index label) const {
        if (output_ == ModelOutput::Probabilities) return -std::log(z_(i, label));
        Eigen::Index top = 0;
        for (Eigen::Index k = 1; k < c_; ++k)
            if (z_(i, k) > z_(i, top)) top = k;
        const double m = z_(i, top);
        double rest = 0.0;
        for (Eigen::Index k = 0; k < c_; ++k)
            if (k != top) rest += std::exp(z_(i, k) - m);
        return std::log1p(rest) + (m - z_(i, label));
    }

private:
    Eigen::Index n_, c_;
    ModelOutput output_;
    Eigen::MatrixXd z_;
};

/// Labels: length n, every value in [0, classes), checked in the caller's integer type and
/// converted once (detail::class_index_labels).
template <class L>
std::vector<Eigen::Index> check_class_labels(const L& labels, Eigen::Index n, Eigen::Index classes, const char* where) {
    return class_index_labels(labels, n, classes, where);
}

/// Embeddings: n x E (E >= 1), finite.
template <class DerivedE>
void check_embeddings(const Eigen::MatrixBase<DerivedE>& embeddings, Eigen::Index n, const char* where) {
    static_assert(std::is_floating_point<typename DerivedE::Scalar>::value,
                  "coreset: embeddings must be float or double");
    check_matrix(embeddings, where, "embeddings");
    if (embeddings.rows() != n)
        raise(where, ": embeddings must have one row per row of scores (got ", embeddings.rows(),
              " rows for n = ", n, ")");
}

/// Row i of the C(1+E) last-layer layout from the per-class coefficients c (length C):
/// [c | c_0 f(e) | c_1 f(e) | ...], f(e) = e or e^2.
template <class Scalar, class DerivedE>
void last_layer_row(const double* coef, Eigen::Index C, const Eigen::MatrixBase<DerivedE>& embeddings,
                    Eigen::Index i, bool squared, RowMatrix<Scalar>& out) {
    const Eigen::Index E = embeddings.cols();
    for (Eigen::Index k = 0; k < C; ++k) out(i, k) = static_cast<Scalar>(coef[k]);
    for (Eigen::Index k = 0; k < C; ++k) {
        const Eigen::Index base = C + k * E;
        for (Eigen::Index j = 0; j < E; ++j) {
            const double e = static_cast<double>(embeddings.derived().coeff(i, j));
            out(i, base + j) = static_cast<Scalar>(coef[k] * (squared ? e * e : e));
        }
    }
}

/// Rows p - onehot(y) (the label's entry as minus the sum of the others) of checked scores/labels.
template <class Scalar>
RowMatrix<Scalar> error_rows(const SoftmaxRows& rows, const std::vector<Eigen::Index>& labels) {
    const Eigen::Index n = rows.rows(), C = rows.classes();
    RowMatrix<Scalar> out(n, C);
    Eigen::VectorXd p(C), q(C);
    for (Eigen::Index i = 0; i < n; ++i) {
        rows.row(i, p.data(), q.data());
        const Eigen::Index y = labels[static_cast<std::size_t>(i)];
        p[y] = -q[y];
        out.row(i) = p.transpose().template cast<Scalar>();
    }
    return out;
}

/// Rows p (1 - p) of checked scores.
template <class Scalar>
RowMatrix<Scalar> curvature_rows(const SoftmaxRows& rows) {
    const Eigen::Index n = rows.rows(), C = rows.classes();
    RowMatrix<Scalar> out(n, C);
    Eigen::VectorXd p(C), q(C);
    for (Eigen::Index i = 0; i < n; ++i) {
        rows.row(i, p.data(), q.data());
        out.row(i) = p.cwiseProduct(q).transpose().template cast<Scalar>();
    }
    return out;
}

/// [1 | e] (or [1 | e^2]) in Scalar: the activation factor of the factored last-layer forms, the
/// products computed in double and rounded once.
template <class Scalar, class DerivedE>
RowMatrix<Scalar> with_ones_column(const Eigen::MatrixBase<DerivedE>& embeddings, bool squared) {
    RowMatrix<Scalar> out(embeddings.rows(), 1 + embeddings.cols());
    out.col(0).setOnes();
    for (Eigen::Index i = 0; i < embeddings.rows(); ++i)
        for (Eigen::Index j = 0; j < embeddings.cols(); ++j) {
            const double e = static_cast<double>(embeddings.derived().coeff(i, j));
            out(i, 1 + j) = static_cast<Scalar>(squared ? e * e : e);
        }
    return out;
}

/// u = (mu I + s x x^T)^{-1} v for one row, in double: with the projection a = x^T v / |x|^2,
/// u = (v - a x) / mu + a x / (mu + s |x|^2), which has no cancellation when v is nearly parallel
/// to x (v - c x with c = s x^T v / (mu + s |x|^2) lost every digit: x = v = 1e10 gave 0, not
/// 1e-10), on x and v scaled by powers of two so that no product leaves double's range (x = v =
/// 1e200 gave NaN). Throws when the solution itself is not representable in Scalar.
template <class Scalar>
inline void sherman_morrison_row(double mu, double s, const Eigen::VectorXd& x, const Eigen::VectorXd& v,
                                 Eigen::VectorXd& u, const char* where) {
    const auto scaled = [](const Eigen::VectorXd& a, int e) {
        return Eigen::VectorXd(a.unaryExpr([e](double t) { return std::ldexp(t, -e); }));
    };
    const double vmax = v.cwiseAbs().maxCoeff(), xmax = x.cwiseAbs().maxCoeff();
    if (!(vmax > 0)) {
        u.setZero(v.size());
        return;
    }
    if (s == 0 || !(xmax > 0)) {
        u = v / mu;
    } else {
        int ev = 0, ex = 0;
        std::frexp(vmax, &ev);
        std::frexp(xmax, &ex);
        const Eigen::VectorXd vs = scaled(v, ev), xs = scaled(x, ex);
        const double xx = xs.squaredNorm();  // in [0.25, d]
        double a = xs.dot(vs) / xx;
        Eigen::VectorXd perp = vs - a * xs;
        const double again = xs.dot(perp) / xx;  // one re-orthogonalisation
        perp -= again * xs;
        a += again;
        // a x / (mu + s |x|^2) = a xs / (mu 2^-ev + s |xs|^2 2^(2 ex - ev)), in the caller's units.
        const double denom = std::ldexp(mu, -ev) + std::ldexp(s * xx, 2 * ex - ev);
        u = perp.unaryExpr([ev, mu](double t) { return std::ldexp(t / mu, ev); }) + (a / denom) * xs;
    }
    const double largest = static_cast<double>(std::numeric_limits<Scalar>::max());
    const double umax = u.cwiseAbs().maxCoeff();
    if (!(umax <= largest))
        raise(where, ": v / mu must have a solution within the scalar type's range (got a solution of magnitude ",
              umax, " for mu = ", mu, ", max |v| = ", vmax, ")");
}

}  // namespace detail

/// Row-wise softmax of logits, computed stably (the row maximum is subtracted first).
///
/// \param logits n x C, finite.
/// \return n x C probabilities, every row summing to 1.
/// \throws std::invalid_argument if `logits` is empty or not finite.
template <class Derived>
detail::RowMatrix<typename Derived::Scalar> softmax(const Eigen::MatrixBase<Derived>& logits) {
    using Scalar = typename Derived::Scalar;
    const detail::SoftmaxRows rows(logits, ModelOutput::Logits, "coreset::softmax()");
    const Eigen::Index n = rows.rows(), C = rows.classes();
    detail::RowMatrix<Scalar> out(n, C);
    Eigen::VectorXd p(C), q(C);
    for (Eigen::Index i = 0; i < n; ++i) {
        rows.row(i, p.data(), q.data());
        out.row(i) = p.transpose().template cast<Scalar>();
    }
    return out;
}

/// Per-example softmax cross-entropy \f$\ell_i = -\log p_{i,y_i} = \log\sum_k e^{z_{ik}} - z_{i,y_i}\f$.
///
/// From logits the value is computed as \f$\log(1 + \sum_{k \ne m} e^{z_k - z_m}) + z_m - z_y\f$
/// (m = the row's largest logit, `log1p`), so it neither overflows nor loses the tiny losses of
/// confidently correct examples. From probabilities it is \f$-\log p_y\f$ (+inf when p_y = 0).
///
/// \param scores n x C logits or probabilities (see `output`).
/// \param labels length n, values in [0, C): an Eigen integer vector (any integer type) or a
///        contiguous integer range (std::vector<int>, ...).
/// \param output what `scores` holds.
/// \return the n losses.
/// \throws std::invalid_argument on empty or non-finite scores, invalid probabilities, or labels of
///         the wrong length or outside [0, C).
template <class Derived, class Labels>
detail::Vector<typename Derived::Scalar> cross_entropy(const Eigen::MatrixBase<Derived>& scores,
                                                       const Labels& labels,
                                                       ModelOutput output = ModelOutput::Logits) {
    using Scalar = typename Derived::Scalar;
    const char* where = "coreset::cross_entropy()";
    const detail::SoftmaxRows rows(scores, output, where);
    const auto y = detail::check_class_labels(labels, rows.rows(), rows.classes(), where);
    detail::Vector<Scalar> out(rows.rows());
    for (Eigen::Index i = 0; i < rows.rows(); ++i)
        out[i] = static_cast<Scalar>(rows.loss(i, y[static_cast<std::size_t>(i)]));
    return out;
}

/// Gradient of the cross-entropy with respect to the logits: \f$p_i - \mathrm{onehot}(y_i)\f$, the
/// C-dimensional last-layer proxy of CRAIG and AdaCore. The true-class entry p_y - 1 is computed as
/// minus the sum of the other probabilities when y is the most probable class (no cancellation).
///
/// \param scores n x C logits or probabilities.
/// \param labels length n, values in [0, C): an Eigen integer vector (any integer type) or a
///        contiguous integer range (std::vector<int>, ...).
/// \param output what `scores` holds.
/// \return n x C gradients; every row sums to 0.
/// \throws std::invalid_argument as `cross_entropy`.
template <class Derived, class Labels>
detail::RowMatrix<typename Derived::Scalar> logit_gradients(const Eigen::MatrixBase<Derived>& scores,
                                                            const Labels& labels,
                                                            ModelOutput output = ModelOutput::Logits) {
    using Scalar = typename Derived::Scalar;
    const char* where = "coreset::logit_gradients()";
    const detail::SoftmaxRows rows(scores, output, where);
    const auto y = detail::check_class_labels(labels, rows.rows(), rows.classes(), where);
    return detail::error_rows<Scalar>(rows, y);
}

/// Diagonal of the cross-entropy Hessian with respect to the logits, \f$p_k (1 - p_k)\f$ (the full
/// Hessian is diag(p) - p p^T; it does not depend on the label). This is the exact expectation of
/// Hutchinson's estimator in logit space, the curvature AdaCore pairs with `logit_gradients`.
///
/// \param scores n x C logits or probabilities.
/// \param output what `scores` holds.
/// \return n x C diagonals, every entry in [0, 1/4].
/// \throws std::invalid_argument on empty or non-finite scores or invalid probabilities.
template <class Derived>
detail::RowMatrix<typename Derived::Scalar> logit_hessian_diagonal(const Eigen::MatrixBase<Derived>& scores,
                                                                   ModelOutput output = ModelOutput::Logits) {
    using Scalar = typename Derived::Scalar;
    const detail::SoftmaxRows rows(scores, output, "coreset::logit_hessian_diagonal()");
    return detail::curvature_rows<Scalar>(rows);
}

/// Per-example gradient of the cross-entropy with respect to the last linear layer (z = W e + b),
/// in the CORDS layout: n x C(1+E), row i = \f$[a \mid a_0 e \mid a_1 e \mid \dots \mid a_{C-1} e]\f$
/// with \f$a = p - \mathrm{onehot}(y)\f$: the C bias gradients first, then one block of E weight
/// gradients per class (column C + c E + j holds \f$\partial\ell/\partial W_{cj} = a_c e_j\f$).
///
/// \param scores n x C logits or probabilities.
/// \param labels length n, values in [0, C): an Eigen integer vector (any integer type) or a
///        contiguous integer range (std::vector<int>, ...).
/// \param embeddings n x E inputs of the last layer (penultimate activations), any float type.
/// \param output what `scores` holds.
/// \return n x C(1+E) gradients, in the scalar type of `scores`.
/// \throws std::invalid_argument as `cross_entropy`, or when `embeddings` is empty, not finite or
///         has a row count other than n.
template <class Derived, class Labels, class DerivedE>
detail::RowMatrix<typename Derived::Scalar> last_layer_gradients(
    const Eigen::MatrixBase<Derived>& scores, const Labels& labels,
    const Eigen::MatrixBase<DerivedE>& embeddings, ModelOutput output = ModelOutput::Logits) {
    using Scalar = typename Derived::Scalar;
    const char* where = "coreset::last_layer_gradients()";
    const detail::SoftmaxRows rows(scores, output, where);
    const auto y = detail::check_class_labels(labels, rows.rows(), rows.classes(), where);
    detail::check_embeddings(embeddings, rows.rows(), where);
    const Eigen::Index n = rows.rows(), C = rows.classes();
    detail::RowMatrix<Scalar> out(n, C * (1 + embeddings.cols()));
    Eigen::VectorXd p(C), q(C);
    for (Eigen::Index i = 0; i < n; ++i) {
        rows.row(i, p.data(), q.data());
        const Eigen::Index yi = y[static_cast<std::size_t>(i)];
        p[yi] = -q[yi];
        detail::last_layer_row(p.data(), C, embeddings, i, false, out);
    }
    return out;
}

/// The (1 + E) coordinates of the last layer that belong to class `cls` (the bias b_c and the row
/// W_c), for every example: row i = \f$[a_c, a_c e]\f$ with \f$a_c = p_c - [y_i = c]\f$. This is
/// the gradient slice that per-class GRAD-MATCH (CORDS `PerClassPerGradient`) matches for class c;
/// it equals columns {c} and [C + c E, C + (c + 1) E) of `last_layer_gradients`.
///
/// \param scores n x C logits or probabilities.
/// \param labels length n, values in [0, C): an Eigen integer vector (any integer type) or a
///        contiguous integer range (std::vector<int>, ...).
/// \param embeddings n x E inputs of the last layer.
/// \param cls the class, 0 <= cls < C.
/// \param output what `scores` holds.
/// \return n x (1 + E) gradients.
/// \throws std::invalid_argument as `last_layer_gradients`, or when `cls` is outside [0, C).
template <class Derived, class Labels, class DerivedE>
detail::RowMatrix<typename Derived::Scalar> class_gradients(const Eigen::MatrixBase<Derived>& scores,
                                                            const Labels& labels,
                                                            const Eigen::MatrixBase<DerivedE>& embeddings,
                                                            Eigen::Index cls,
                                                            ModelOutput output = ModelOutput::Logits) {
    using Scalar = typename Derived::Scalar;
    const char* where = "coreset::class_gradients()";
    const detail::SoftmaxRows rows(scores, output, where);
    const auto y = detail::check_class_labels(labels, rows.rows(), rows.classes(), where);
    detail::check_embeddings(embeddings, rows.rows(), where);
    const Eigen::Index n = rows.rows(), C = rows.classes(), E = embeddings.cols();
    detail::check_option(cls >= 0 && cls < C, cls, where, "cls", "0 <= cls < C");
    detail::RowMatrix<Scalar> out(n, 1 + E);
    Eigen::VectorXd p(C), q(C);
    for (Eigen::Index i = 0; i < n; ++i) {
        rows.row(i, p.data(), q.data());
        const double a = (y[static_cast<std::size_t>(i)] == cls) ? -q[cls] : p[cls];
        out(i, 0) = static_cast<Scalar>(a);
        for (Eigen::Index j = 0; j < E; ++j)
            out(i, 1 + j) = static_cast<Scalar>(a * static_cast<double>(embeddings.derived().coeff(i, j)));
    }
    return out;
}

/// Per-example diagonal of the cross-entropy Hessian with respect to the last linear layer, in the
/// layout of `last_layer_gradients`: row i = \f$[b \mid b_0 e^2 \mid \dots \mid b_{C-1} e^2]\f$
/// with \f$b_c = p_c (1 - p_c)\f$ (column C + c E + j holds
/// \f$\partial^2\ell/\partial W_{cj}^2 = p_c (1 - p_c) e_j^2\f$). A weighted mean of these rows is
/// the exact diagonal of a (sub)set's last-layer Hessian (CREST's quadratic model).
///
/// \param scores n x C logits or probabilities.
/// \param embeddings n x E inputs of the last layer.
/// \param output what `scores` holds.
/// \return n x C(1+E) non-negative diagonals.
/// \throws std::invalid_argument on invalid scores or embeddings (see `last_layer_gradients`).
template <class Derived, class DerivedE>
detail::RowMatrix<typename Derived::Scalar> last_layer_hessian_diagonal(
    const Eigen::MatrixBase<Derived>& scores, const Eigen::MatrixBase<DerivedE>& embeddings,
    ModelOutput output = ModelOutput::Logits) {
    using Scalar = typename Derived::Scalar;
    const char* where = "coreset::last_layer_hessian_diagonal()";
    const detail::SoftmaxRows rows(scores, output, where);
    detail::check_embeddings(embeddings, rows.rows(), where);
    const Eigen::Index n = rows.rows(), C = rows.classes();
    detail::RowMatrix<Scalar> out(n, C * (1 + embeddings.cols()));
    Eigen::VectorXd p(C), q(C);
    for (Eigen::Index i = 0; i < n; ++i) {
        rows.row(i, p.data(), q.data());
        p = p.cwiseProduct(q);
        detail::last_layer_row(p.data(), C, embeddings, i, true, out);
    }
    return out;
}

/// `last_layer_gradients` in factored form (factored.hpp), without forming the n x C(1+E) matrix:
/// errors = \f$p - \mathrm{onehot}(y)\f$ (n x C, as `logit_gradients`), activations =
/// \f$[1 \mid e]\f$ (n x (1+E): the bias column first). `dense()` of the result holds the same
/// C(1+E) coordinates as `last_layer_gradients` in another column order: row i is
/// \f$[a_0, a_0 e, a_1, a_1 e, \dots]\f$. Craig, GradMatch and AdaCore accept it directly.
///
/// \param scores n x C logits or probabilities.
/// \param labels length n, values in [0, C): an Eigen integer vector (any integer type) or a
///        contiguous integer range (std::vector<int>, ...).
/// \param embeddings n x E inputs of the last layer (any float type; cast to the scores' type).
/// \param output what `scores` holds.
/// \throws std::invalid_argument as `last_layer_gradients`.
template <class Derived, class Labels, class DerivedE>
FactoredGradients<typename Derived::Scalar> factored_last_layer_gradients(
    const Eigen::MatrixBase<Derived>& scores, const Labels& labels,
    const Eigen::MatrixBase<DerivedE>& embeddings, ModelOutput output = ModelOutput::Logits) {
    using Scalar = typename Derived::Scalar;
    const char* where = "coreset::factored_last_layer_gradients()";
    const detail::SoftmaxRows rows(scores, output, where);
    const auto y = detail::check_class_labels(labels, rows.rows(), rows.classes(), where);
    detail::check_embeddings(embeddings, rows.rows(), where);
    return FactoredGradients<Scalar>(detail::error_rows<Scalar>(rows, y),
                                     detail::with_ones_column<Scalar>(embeddings, false));
}

/// `last_layer_hessian_diagonal` in factored form: errors = \f$p \odot (1 - p)\f$ (n x C, as
/// `logit_hessian_diagonal`), activations = \f$[1 \mid e \odot e]\f$, the curvature that
/// `AdaCore::update` pairs with `factored_last_layer_gradients` (same layout).
///
/// \param scores n x C logits or probabilities.
/// \param embeddings n x E inputs of the last layer.
/// \param output what `scores` holds.
/// \throws std::invalid_argument as `last_layer_hessian_diagonal`.
template <class Derived, class DerivedE>
FactoredGradients<typename Derived::Scalar> factored_last_layer_hessian_diagonal(
    const Eigen::MatrixBase<Derived>& scores, const Eigen::MatrixBase<DerivedE>& embeddings,
    ModelOutput output = ModelOutput::Logits) {
    using Scalar = typename Derived::Scalar;
    const char* where = "coreset::factored_last_layer_hessian_diagonal()";
    const detail::SoftmaxRows rows(scores, output, where);
    detail::check_embeddings(embeddings, rows.rows(), where);
    return FactoredGradients<Scalar>(detail::curvature_rows<Scalar>(rows),
                                     detail::with_ones_column<Scalar>(embeddings, true));
}

/// Hutchinson's estimator of a Hessian diagonal: \f$\mathrm{diag}(H) \approx \frac{1}{s}\sum_{t=1}^{s}
/// z_t \odot (H z_t)\f$ with Rademacher vectors z_t (entries +-1 with probability 1/2, drawn from
/// `seed` through the library's generator). Unbiased; the variance of coordinate k per sample is
/// \f$\sum_{j \ne k} H_{kj}^2\f$, so the error shrinks like \f$1/\sqrt{s}\f$ and a diagonal H is
/// recovered exactly from one sample. Sums are accumulated in double.
///
/// \tparam Scalar the scalar of the vectors passed to `hvp` and of the result (default double).
/// \param hvp callable `v -> H v`, taking `const Eigen::Matrix<Scalar, Eigen::Dynamic, 1>&` and
///        returning any Eigen vector expression of length `dim` (supplied by the trainer, e.g. a
///        double back-propagation).
/// \param dim length of the vectors, >= 1.
/// \param samples number of Rademacher probes s, >= 1.
/// \param seed seed of the probes (same seed, same probes).
/// \return the estimated diagonal, length `dim`.
/// \throws std::invalid_argument if `dim` or `samples` < 1, or `hvp` returns a vector of another
///         length or with non-finite entries.
template <class Scalar = double, class Hvp>
detail::Vector<Scalar> hutchinson_diagonal(Hvp&& hvp, Eigen::Index dim, Eigen::Index samples,
                                           std::uint64_t seed = 0) {
    static_assert(std::is_floating_point<Scalar>::value, "coreset: Scalar must be float or double");
    const char* where = "coreset::hutchinson_diagonal()";
    detail::check_option(dim >= 1, dim, where, "dim", "dim >= 1");
    detail::check_option(samples >= 1, samples, where, "samples", "samples >= 1");
    detail::Rng rng(seed);
    detail::Vector<Scalar> z(dim);
    detail::Vector<Scalar> hz;
    Eigen::VectorXd sum = Eigen::VectorXd::Zero(dim);
    // The same sum with every term divided by 2^k >= samples (exact for all but subnormal terms):
    // it cannot overflow, and stands in for `sum` where that does (terms near the largest double).
    int k = 0;
    std::frexp(static_cast<double>(samples), &k);
    Eigen::VectorXd scaled_sum = Eigen::VectorXd::Zero(dim);
    Eigen::VectorXd term(dim);
    for (Eigen::Index t = 0; t < samples; ++t) {
        for (Eigen::Index k = 0; k < dim; ++k) z[k] = static_cast<Scalar>(rng.rademacher());
        hz = hvp(static_cast<const detail::Vector<Scalar>&>(z));
        if (hz.size() != dim)
            detail::raise(where, ": hvp(v) must return a vector of length dim = ", dim, " (got ", hz.size(),
                          ")");
        detail::check_finite(hz, where, "hvp(v)");
        term = (z.cwiseProduct(hz)).template cast<double>();
        sum += term;
        scaled_sum += term * std::ldexp(1.0, -k);
    }
    Eigen::VectorXd mean = sum / static_cast<double>(samples);
    for (Eigen::Index j = 0; j < dim; ++j)
        if (!std::isfinite(mean[j])) mean[j] = std::ldexp(scaled_sum[j] / static_cast<double>(samples), k);
    return mean.template cast<Scalar>();
}

/// Solves \f$(\mu I + s\, x x^\top)\, u = v\f$ by Sherman-Morrison without forming a matrix:
/// \f$u = \big(v - \frac{s\, (x^\top v)}{\mu + s \|x\|^2}\, x\big) / \mu\f$, O(d). This inverts the
/// per-example Hessian of L2-regularised logistic regression, \f$H_i = \mu I + \sigma_i (1 -
/// \sigma_i) \tilde x_i \tilde x_i^\top\f$ with \f$\tilde x_i = [x_i; 1]\f$ (AdaCore's convex case).
///
/// \param mu ridge, > 0 (the rank-one part alone is singular).
/// \param s rank-one coefficient, >= 0.
/// \param x length-d vector.
/// \param v length-d right-hand side (same scalar type as x).
/// \return u, length d, in the scalar type of `x`.
/// \throws std::invalid_argument if mu <= 0, s < 0, either is not finite, x or v is empty or not
///         finite, or their lengths differ.
template <class DerivedX, class DerivedV>
detail::Vector<typename DerivedX::Scalar> sherman_morrison_solve(double mu, double s,
                                                                 const Eigen::MatrixBase<DerivedX>& x,
                                                                 const Eigen::MatrixBase<DerivedV>& v) {
    using Scalar = typename DerivedX::Scalar;
    static_assert(std::is_same<Scalar, typename DerivedV::Scalar>::value,
                  "coreset: x and v must have the same scalar type");
    const char* where = "coreset::sherman_morrison_solve()";
    detail::check_option(mu > 0 && std::isfinite(mu), mu, where, "mu", "0 < mu < inf");
    detail::check_option(s >= 0 && std::isfinite(s), s, where, "s", "0 <= s < inf");
    detail::require(x.rows() == 1 || x.cols() == 1, where, "x must be a vector (got ", x.rows(), " x ",
                    x.cols(), ")");
    detail::require(v.rows() == 1 || v.cols() == 1, where, "v must be a vector (got ", v.rows(), " x ",
                    v.cols(), ")");
    detail::check_matrix(x, where, "x");
    detail::check_matrix(v, where, "v");
    detail::require(x.size() == v.size(), where, "v must have the length of x (got ", v.size(),
                    " for length ", x.size(), ")");
    Eigen::VectorXd xd(x.size()), vd(v.size());
    for (Eigen::Index k = 0; k < x.size(); ++k) {
        xd[k] = static_cast<double>(x.derived().coeff(k));
        vd[k] = static_cast<double>(v.derived().coeff(k));
    }
    Eigen::VectorXd u;
    detail::sherman_morrison_row<Scalar>(mu, s, xd, vd, u, where);
    return u.template cast<Scalar>();
}

/// Row-wise `sherman_morrison_solve`: row i of the result solves
/// \f$(\mu I + s_i x_i x_i^\top)\, u_i = v_i\f$ (e.g. u_i = H_i^{-1} g_i for every example of an
/// L2 logistic regression, s_i = sigma_i (1 - sigma_i), the input of Craig for AdaCore's convex case).
///
/// \param mu ridge, > 0.
/// \param s length-n vector of rank-one coefficients, each >= 0.
/// \param x n x d rows x_i.
/// \param v n x d right-hand sides (same scalar type as x).
/// \return n x d solutions, row-major.
/// \throws std::invalid_argument on mu <= 0, a negative or non-finite s_i, empty or non-finite x or
///         v, or mismatched shapes.
template <class DerivedS, class DerivedX, class DerivedV>
detail::RowMatrix<typename DerivedX::Scalar> sherman_morrison_solve_rows(
    double mu, const Eigen::MatrixBase<DerivedS>& s, const Eigen::MatrixBase<DerivedX>& x,
    const Eigen::MatrixBase<DerivedV>& v) {
    using Scalar = typename DerivedX::Scalar;
    static_assert(std::is_same<Scalar, typename DerivedV::Scalar>::value,
                  "coreset: x and v must have the same scalar type");
    const char* where = "coreset::sherman_morrison_solve_rows()";
    detail::check_option(mu > 0 && std::isfinite(mu), mu, where, "mu", "0 < mu < inf");
    detail::check_matrix(x, where, "x");
    detail::check_matrix(v, where, "v");
    detail::require(v.rows() == x.rows() && v.cols() == x.cols(), where, "v must have the shape of x (got ",
                    v.rows(), " x ", v.cols(), " for ", x.rows(), " x ", x.cols(), ")");
    detail::require(s.size() == x.rows() && (s.rows() == 1 || s.cols() == 1), where,
                    "s must be a vector with one entry per row of x (got ", s.rows(), " x ", s.cols(),
                    " for n = ", x.rows(), ")");
    for (Eigen::Index i = 0; i < s.size(); ++i) {
        const double si = static_cast<double>(s.derived().coeff(i));
        if (!(si >= 0 && std::isfinite(si)))
            detail::raise(where, ": s must satisfy 0 <= s_i < inf (got ", si, " at index ", i, ")");
    }
    const Eigen::Index n = x.rows(), d = x.cols();
    detail::RowMatrix<Scalar> out(n, d);
    Eigen::VectorXd xi(d), vi(d), ui(d);
    for (Eigen::Index i = 0; i < n; ++i) {
        xi = x.row(i).transpose().template cast<double>();
        vi = v.row(i).transpose().template cast<double>();
        detail::sherman_morrison_row<Scalar>(mu, static_cast<double>(s.derived().coeff(i)), xi, vi, ui, where);
        out.row(i) = ui.transpose().template cast<Scalar>();
    }
    return out;
}

}  // namespace coreset
