// SPDX-License-Identifier: MIT
/// \file detail/checks.hpp
/// \brief The one throw helper and the input checks every selector shares.
///
/// Every message has the form `Class::method(): <parameter> <constraint> (got <value>)`.
/// Not part of the public API.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace coreset {
namespace detail {

/// Builds a message from streamable pieces and throws `E`. Every throw in the library goes through
/// here, so that a `-fno-exceptions` mode could be added in one place.
template <class E = std::invalid_argument, class... Parts>
[[noreturn]] inline void raise(const Parts&... parts) {
    std::ostringstream os;
    os.precision(17);
    (os << ... << parts);
    throw E(os.str());
}

/// Throws `std::invalid_argument` with `where: what` unless `ok`.
template <class... Parts>
inline void require(bool ok, const char* where, const Parts&... parts) {
    if (!ok) raise<std::invalid_argument>(where, ": ", parts...);
}

/// Throws `std::logic_error` (wrong call order) with `where: what` unless `ok`.
template <class... Parts>
inline void require_state(bool ok, const char* where, const Parts&... parts) {
    if (!ok) raise<std::logic_error>(where, ": ", parts...);
}

/// A matrix must have at least one row and one column.
template <class Derived>
inline void check_nonempty(const Eigen::DenseBase<Derived>& m, const char* where, const char* name) {
    if (m.rows() == 0 || m.cols() == 0)
        raise(where, ": ", name, " must have at least one row and one column (got ", m.rows(), " x ",
              m.cols(), ")");
}

/// Every coefficient must be finite; the message names the first offending value and its position:
/// its index for a vector type (row or column, e.g. Eigen::VectorXd, Eigen::RowVectorXd), its row
/// and column for a matrix type (even one with a single row or column).
template <class Derived>
inline void check_finite(const Eigen::DenseBase<Derived>& m, const char* where, const char* name) {
    using Scalar = typename Derived::Scalar;
    static_assert(std::is_floating_point<Scalar>::value, "coreset: check_finite needs float or double");
    // Fast path: a sum of x * 0 is NaN exactly when some x is NaN or infinite.
    if (std::isfinite(static_cast<double>((m.derived().array() * Scalar(0)).sum()))) return;
    for (Eigen::Index j = 0; j < m.cols(); ++j)
        for (Eigen::Index i = 0; i < m.rows(); ++i)
            if (!std::isfinite(m.derived().coeff(i, j))) {
                if (Derived::IsVectorAtCompileTime)
                    raise(where, ": ", name, " must be finite (got ", m.derived().coeff(i, j),
                          " at index ", i + j, ")");
                raise(where, ": ", name, " must be finite (got ", m.derived().coeff(i, j), " at row ",
                      i, ", column ", j, ")");
            }
}

/// A non-empty matrix of finite values.
template <class Derived>
inline void check_matrix(const Eigen::DenseBase<Derived>& m, const char* where, const char* name) {
    check_nonempty(m, where, name);
    check_finite(m, where, name);
}

/// No row may be all zeros (the cosine metric is undefined for it).
template <class Derived>
inline void check_no_zero_row(const Eigen::DenseBase<Derived>& m, const char* where, const char* name) {
    for (Eigen::Index i = 0; i < m.rows(); ++i)
        if (!(m.derived().row(i).cwiseAbs().maxCoeff() > 0))
            raise(where, ": ", name, " must have no zero row under Metric::Cosine (got a zero row at index ", i, ")");
}

/// `1 <= budget <= n`.
inline void check_budget(Eigen::Index budget, Eigen::Index n, const char* where) {
    if (budget < 1 || budget > n)
        raise(where, ": budget must satisfy 1 <= budget <= n (got budget = ", budget, ", n = ", n, ")");
}

/// Labels: an integer vector of length `n`, every value `>= 0`. Returns the number of classes
/// (largest label + 1).
template <class Derived>
inline Eigen::Index check_labels(const Eigen::DenseBase<Derived>& labels, Eigen::Index n,
                                 const char* where) {
    static_assert(std::is_integral<typename Derived::Scalar>::value,
                  "coreset: labels must be an integer vector");
    if (labels.size() != n)
        raise(where, ": labels must have one entry per row of gradients (got ", labels.size(),
              " labels for n = ", n, " rows)");
    Eigen::Index classes = 0;
    for (Eigen::Index i = 0; i < labels.size(); ++i) {
        const auto v = labels.derived().coeff(i);
        if (v < 0) raise(where, ": labels must be >= 0 (got ", static_cast<long long>(v), " at index ", i, ")");
        if (static_cast<long long>(v) >= static_cast<long long>(classes))  // + 1 saturates at the largest label
            classes = static_cast<Eigen::Index>(v) + (static_cast<long long>(v) < std::numeric_limits<long long>::max());
    }
    return classes;
}

/// An option must satisfy `ok`, described by `constraint` (e.g. "0 <= beta1 < 1"). Callers write
/// the predicate so that NaN fails it.
template <class Value>
inline void check_option(bool ok, const Value& value, const char* where, const char* name,
                         const char* constraint) {
    if (!ok) raise(where, ": ", name, " must satisfy ", constraint, " (got ", value, ")");
}

}  // namespace detail
}  // namespace coreset
