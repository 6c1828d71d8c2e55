// SPDX-License-Identifier: MIT
/// \file detail/nnls.hpp
/// \brief Non-negative ridge least squares on a changing set of atoms, for GRAD-MATCH's OMP:
/// an incrementally updated Cholesky factor (one row per added atom, a Givens repair per removed
/// atom) and two non-negativity policies on top of it (exact Lawson-Hanson active set,
/// warm-started; or CORDS' drop-the-most-negative). Everything here is in double precision.
/// Not part of the public API.
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "../core.hpp"

namespace coreset {
namespace detail {

/// |v|, as Eigen's norm() (sqrt of the sum of squares) where that sum is a normal double, and
/// with Eigen's scaled stableNorm() where it underflows or overflows: a target of 1e-262 has a
/// sum of squares of 0, so norm() said 0 and GRAD-MATCH stopped at once (ToleranceReached).
inline double norm_of(const Eigen::VectorXd& v) {
    const double sq = v.squaredNorm();
    return sq >= std::numeric_limits<double>::min() && sq <= std::numeric_limits<double>::max() ? std::sqrt(sq)
                                                                                                 : v.stableNorm();
}

/// The ridge normal equations of the active atoms a_1..a_k (rows of A, k x d) for a target t
/// (length d):
/// \f[ z = \arg\min_z \|A^T z - t\|^2 + \lambda \|z\|^2 = (A A^T + \lambda I_k)^{-1} A t, \f]
/// kept factored while atoms are appended and removed.
///
/// Two forms, chosen by size: the *primal* form factors the k x k matrix
/// \f$A A^T + \lambda I_k = L L^T\f$ (append: one new row of L, O(kd + k^2); remove: a rank-one
/// Givens repair of the trailing block, O((k - p)^2)); once k exceeds `dual_threshold` (default d)
/// and \f$\lambda > 0\f$, it switches for good to the *dual* form, which factors the d x d matrix
/// \f$X = \lambda I_d + A^T A\f$ (append / remove: a rank-one update / downdate, O(d^2)), and uses
/// \f$z = A X^{-1} t\f$ and residual \f$t - A^T z = \lambda X^{-1} t\f$ (push-through identity).
/// With \f$\lambda = 0\f$ only the primal form is used; an atom that is numerically in the span
/// of the active ones is refused by append().
class RidgeFactor {
public:
    /// \param target t, length d.
    /// \param lambda ridge parameter, >= 0.
    /// \param capacity expected number of active atoms (storage grows past it as needed).
    /// \param dual_threshold switch to the dual form when more than this many atoms are active
    ///        (negative: d). Only used when lambda > 0.
    RidgeFactor(const Eigen::VectorXd& target, double lambda, Eigen::Index capacity = 16,
                Eigen::Index dual_threshold = -1)
        : t_(target),
          lambda_(lambda),
          d_(target.size()),
          dual_threshold_(dual_threshold < 0 ? target.size() : dual_threshold) {
        const Eigen::Index cap = std::max<Eigen::Index>(capacity, 4);
        A_.resize(cap, d_);
        b_.resize(cap);
        L_.resize(std::min(cap, d_ + 1), std::min(cap, d_ + 1));
    }

    /// Number of active atoms k.
    Eigen::Index size() const noexcept { return k_; }
    /// Whether the dual (d x d) form is in use.
    bool dual() const noexcept { return dual_; }
    /// Caller's ids of the active atoms, in factor order.
    const std::vector<Eigen::Index>& ids() const noexcept { return ids_; }
    /// Active atom at factor position p (length d).
    Eigen::VectorXd atom(Eigen::Index p) const { return A_.row(p).transpose(); }
    /// \f$a_p^T t\f$ for the active atom at factor position p.
    double rhs(Eigen::Index p) const { return b_(p); }

    /// Appends atom `a` (length d) with the caller's `id`. Returns false, and changes nothing,
    /// when the primal pivot \f$\|a\|^2 + \lambda - \|L^{-1} A a\|^2\f$ is below 1e-10 of
    /// \f$\|a\|^2 + \lambda\f$ (a numerically dependent atom; only possible for tiny lambda).
    bool append(Eigen::Index id, const Eigen::VectorXd& a) {
        if (lambda_ > 0 && !dual_ && k_ + 1 > dual_threshold_) to_dual();
        if (!dual_) {
            const double aa = a.squaredNorm() + lambda_;
            Eigen::VectorXd v = A_.topRows(k_) * a;
            L_.topLeftCorner(k_, k_).triangularView<Eigen::Lower>().solveInPlace(v);
            const double pivot = aa - v.squaredNorm();
            if (!(pivot > kDependent * aa)) return false;
            grow_factor(k_ + 1);
            L_.row(k_).head(k_) = v.transpose();
            L_(k_, k_) = std::sqrt(pivot);
        } else {
            llt_.rankUpdate(a, 1.0);
        }
        grow_atoms(k_ + 1);
        A_.row(k_) = a.transpose();
        b_(k_) = a.dot(t_);
        ids_.push_back(id);
        ++k_;
        return true;
    }

    /// Removes the atom at factor position `pos`; the others keep their order.
    void remove(Eigen::Index pos) {
        const Eigen::Index m = k_ - 1 - pos;  // atoms after pos
        if (!dual_) {
            // Delete row and column pos of L. The rows below lose their entry in column pos, so
            // the trailing m x m block gets a rank-one update with that column (Givens rotations).
            Eigen::VectorXd x = L_.col(pos).segment(pos + 1, m);
            for (Eigen::Index j = 0; j < pos; ++j)
                for (Eigen::Index i = pos; i < k_ - 1; ++i) L_(i, j) = L_(i + 1, j);
            for (Eigen::Index j = pos; j < k_ - 1; ++j)
                L_.col(j).segment(j, k_ - 1 - j) = L_.col(j + 1).segment(j + 1, k_ - 1 - j);
            for (Eigen::Index j = 0; j < m; ++j) {
                const Eigen::Index c = pos + j;
                const double Ljj = L_(c, c), r = std::hypot(Ljj, x(j));
                const double cs = r / Ljj, sn = x(j) / Ljj;
                L_(c, c) = r;
                const Eigen::Index rest = m - j - 1;
                if (rest > 0) {
                    auto col = L_.col(c).segment(c + 1, rest);
                    auto xt = x.segment(j + 1, rest);
                    col = (col + sn * xt) / cs;
                    xt = cs * xt - sn * col;
                }
            }
        } else if (A_.row(pos).squaredNorm() > 1e6 * (lambda_ + (A_.topRows(k_).squaredNorm() - A_.row(pos).squaredNorm()) /
                                                            static_cast<double>(d_))) {
            rebuild_after_ = true;  // a dominant atom: downdating would cancel away what remains
        } else {
            llt_.rankUpdate(A_.row(pos).transpose(), -1.0);
        }
        if (m > 0) {
            double* base = A_.data();
            std::memmove(base + pos * d_, base + (pos + 1) * d_, static_cast<std::size_t>(m * d_) * sizeof(double));
            for (Eigen::Index i = pos; i < k_ - 1; ++i) b_(i) = b_(i + 1);
        }
        ids_.erase(ids_.begin() + pos);
        --k_;
        // Rebuilt instead of downdated: when the removed atom dominates the rest (its rounding
        // error in the factor would exceed what remains), or when a downdate lost definiteness.
        if (dual_ && (rebuild_after_ || llt_.info() != Eigen::Success)) rebuild_dual();
        rebuild_after_ = false;
    }

    /// The unconstrained ridge solution z on the active atoms (factor order) and its residual
    /// r = t - A^T z.
    void solve(Eigen::VectorXd& z, Eigen::VectorXd& r) const {
        if (k_ == 0) {
            z.resize(0);
            r = t_;
            return;
        }
        if (!dual_) {
            z = b_.head(k_);
            const auto L = L_.topLeftCorner(k_, k_);
            L.triangularView<Eigen::Lower>().solveInPlace(z);
            L.transpose().triangularView<Eigen::Upper>().solveInPlace(z);
            r = t_;
            r.noalias() -= A_.topRows(k_).transpose() * z;
        } else {
            r = llt_.solve(t_);
            z.noalias() = A_.topRows(k_) * r;
            // r = t - A^T z rather than lambda X^-1 t (equal in exact arithmetic): with atoms of very
            // different norms X is ill-conditioned, and only this form is the residual z leaves.
            r = t_;
            r.noalias() -= A_.topRows(k_).transpose() * z;
        }
    }

    /// r = t - A^T w for any weights w on the active atoms (factor order).
    void residual_of(const Eigen::VectorXd& w, Eigen::VectorXd& r) const {
        r = t_;
        if (k_ > 0) r.noalias() -= A_.topRows(k_).transpose() * w;
    }

    /// Relative primal pivot below which an atom counts as dependent.
    static constexpr double kDependent = 1e-10;

private:
    void grow_atoms(Eigen::Index need) {
        if (need <= A_.rows()) return;
        const Eigen::Index cap = std::max(need, 2 * A_.rows());
        A_.conservativeResize(cap, d_);
        b_.conservativeResize(cap);
    }
    void grow_factor(Eigen::Index need) {
        if (need <= L_.rows()) return;
        const Eigen::Index cap = std::max(need, 2 * L_.rows());
        L_.conservativeResize(cap, cap);
    }
    void to_dual() {
        dual_ = true;
        L_.resize(0, 0);
        rebuild_dual();
    }
    void rebuild_dual() {
        Eigen::MatrixXd X = Eigen::MatrixXd::Identity(d_, d_) * lambda_;
        if (k_ > 0) X.selfadjointView<Eigen::Lower>().rankUpdate(A_.topRows(k_).transpose());
        llt_.compute(X);
    }

    Eigen::VectorXd t_;
    double lambda_;
    Eigen::Index d_;
    Eigen::Index dual_threshold_;
    Eigen::Index k_ = 0;
    bool dual_ = false;
    bool rebuild_after_ = false;  // remove(): rebuild the dual factor once the atom is gone
    RowMatrix<double> A_;          // active atoms, rows 0..k-1 in factor order
    Eigen::VectorXd b_;            // b_p = a_p . t
    Eigen::MatrixXd L_;            // primal: lower Cholesky factor of A A^T + lambda I (top-left k x k)
    Eigen::LLT<Eigen::MatrixXd> llt_;  // dual: Cholesky factor of lambda I + A^T A
    std::vector<Eigen::Index> ids_;
};

/// Non-negative ridge least squares on a support that OMP grows one atom at a time:
/// \f[ w = \arg\min_{w \ge 0} \|A_S^T w - t\|^2 + \lambda \|w\|^2 . \f]
/// After each add() the kept atoms all have w > 0 and w is the unconstrained ridge solution on
/// them; atoms whose weight reaches zero leave the support for good (add() reports them).
///
/// - exact (ActiveSet): w is the exact non-negative solution on (previous support + new atom),
///   found by Lawson-Hanson warm-started from the previous solution (which stays feasible with
///   the new atom at 0): step towards the unconstrained solution until a weight hits 0, remove
///   it, repeat; then let a removed atom back in while its dual \f$a_j^T r\f$ is positive.
/// - !exact (DropMostNegative, CORDS): while some unconstrained weight is <= 0, remove the most
///   negative atom and re-solve.
class NonNegativeRidge {
public:
    /// What add() did.
    struct Outcome {
        bool accepted = false;                ///< false: the atom was numerically dependent, nothing changed
        std::vector<Eigen::Index> dropped;    ///< ids that left the support (weight reached 0)
    };

    NonNegativeRidge(const Eigen::VectorXd& target, double lambda, bool exact, Eigen::Index capacity = 16,
                     Eigen::Index dual_threshold = -1)
        : factor_(target, lambda, capacity, dual_threshold),
          lambda_(lambda),
          exact_(exact),
          tnorm_(norm_of(target)),
          r_(target) {}

    Eigen::Index size() const noexcept { return factor_.size(); }
    /// Ids of the support, in factor order (not pick order).
    const std::vector<Eigen::Index>& ids() const noexcept { return factor_.ids(); }
    /// Weights of the support, factor order; all > 0.
    const Eigen::VectorXd& weights() const noexcept { return w_; }
    /// Residual t - A_S^T w.
    const Eigen::VectorXd& residual() const noexcept { return r_; }
    /// \f$\|r\|^2 + \lambda \|w\|^2\f$.
    double objective() const { return r_.squaredNorm() + lambda_ * w_.squaredNorm(); }
    /// Whether the dual form of the factor is in use.
    bool dual() const noexcept { return factor_.dual(); }

    /// Adds atom `a` (length d) under the caller's `id` and re-solves. With `unregularized_single`
    /// and an empty support before the call, the atom gets the unregularised least-squares weight
    /// \f$a^T t / \|a\|^2\f$ instead (CORDS' first atom; used when positive), and no atom is dropped.
    Outcome add(Eigen::Index id, const Eigen::VectorXd& a, bool unregularized_single = false) {
        Outcome out;
        if (!factor_.append(id, a)) return out;
        out.accepted = true;
        const Eigen::Index k = factor_.size();
        w_.conservativeResize(k);
        w_(k - 1) = 0.0;
        if (unregularized_single && k == 1) {
            const double w = factor_.rhs(0) / a.squaredNorm();
            if (w > 0 && std::isfinite(w)) {
                w_(0) = w;
                factor_.residual_of(w_, r_);
                return out;
            }
        }
        if (exact_)
            lawson_hanson(out.dropped);
        else
            drop_most_negative(out.dropped);
        return out;
    }

    /// Dual threshold for letting a removed atom back in: \f$a_j^T r > \f$ this times
    /// \f$\|a_j\| \|t\|\f$ (rounding noise is not a reason to re-enter).
    static constexpr double kPositive = 1e-12;

private:
    struct Parked {
        Eigen::Index id;
        Eigen::VectorXd atom;
        bool refused;
    };

    void remove_at(Eigen::Index p) {
        factor_.remove(p);
        const Eigen::Index k = w_.size();
        for (Eigen::Index i = p; i + 1 < k; ++i) w_(i) = w_(i + 1);
        w_.conservativeResize(k - 1);
    }

    void drop_most_negative(std::vector<Eigen::Index>& dropped) {
        for (;;) {
            factor_.solve(z_, r_);
            if (z_.size() == 0) break;
            Eigen::Index p = 0;
            z_.minCoeff(&p);
            if (z_(p) > 0) break;
            dropped.push_back(factor_.ids()[static_cast<std::size_t>(p)]);
            factor_.remove(p);
        }
        w_ = z_;
    }

    void lawson_hanson(std::vector<Eigen::Index>& dropped) {
        std::vector<Parked> parked;
        const Eigen::Index limit = 3 * (factor_.size() + 1) + 10;
        Eigen::Index iterations = 0;
        bool solved = false;
        for (;;) {
            // Inner loop: from the feasible w, move towards the unconstrained solution z on the
            // passive set until it is itself feasible.
            solved = false;
            while (iterations++ < limit) {
                factor_.solve(z_, r_);
                Eigen::Index hit = -1;
                double alpha = 1.0;
                for (Eigen::Index p = 0; p < z_.size(); ++p) {
                    if (z_(p) > 0) continue;
                    const double ratio = w_(p) > 0 ? w_(p) / (w_(p) - z_(p)) : 0.0;
                    if (hit < 0 || ratio < alpha) {
                        alpha = ratio;
                        hit = p;
                    }
                }
                if (hit < 0) {
                    w_ = z_;
                    solved = true;
                    break;
                }
                w_ += alpha * (z_ - w_);
                w_(hit) = 0.0;
                for (Eigen::Index p = w_.size() - 1; p >= 0; --p) {
                    if (w_(p) > 0) continue;
                    parked.push_back({factor_.ids()[static_cast<std::size_t>(p)], factor_.atom(p), false});
                    remove_at(p);
                }
            }
            if (!solved || !exact_ || parked.empty()) break;
            // Outer loop: the removed atom with the largest positive dual a_j . r comes back.
            Eigen::Index best = -1;
            double best_dual = 0.0;
            for (std::size_t q = 0; q < parked.size(); ++q) {
                if (parked[q].refused) continue;
                const double dual = parked[q].atom.dot(r_);
                if (dual > kPositive * parked[q].atom.norm() * tnorm_ && (best < 0 || dual > best_dual)) {
                    best = static_cast<Eigen::Index>(q);
                    best_dual = dual;
                }
            }
            if (best < 0) break;
            Parked& back = parked[static_cast<std::size_t>(best)];
            if (!factor_.append(back.id, back.atom)) {
                back.refused = true;
                continue;
            }
            w_.conservativeResize(w_.size() + 1);
            w_(w_.size() - 1) = 0.0;
            parked.erase(parked.begin() + best);
        }
        if (!solved) {
            // Iteration cap (rounding-induced cycling): keep the feasible point reached.
            for (Eigen::Index p = w_.size() - 1; p >= 0; --p)
                if (!(w_(p) > 0)) {
                    parked.push_back({factor_.ids()[static_cast<std::size_t>(p)], Eigen::VectorXd(), true});
                    remove_at(p);
                }
            factor_.residual_of(w_, r_);
        }
        for (const Parked& q : parked) dropped.push_back(q.id);
    }

    RidgeFactor factor_;
    double lambda_;
    bool exact_;
    double tnorm_;
    Eigen::VectorXd w_, z_, r_;
};

}  // namespace detail
}  // namespace coreset
