// SPDX-License-Identifier: MIT
/// \file detail/checks.hpp
/// \brief The one throw helper and the input checks every selector shares.
///
/// Every message has the form `Class::method(): <parameter> <constraint> (got <value>)`.
/// Not part of the public API.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace coreset {
namespace detail {

/// Writes one piece of a message as the caller gave it: a floating-point value with the digits
/// that round-trip in its own type (17 for double, 9 for float), an 8-bit integer as a number (not
/// a character), every other integer in its own type (so 2^64 - 1 prints as 18446744073709551615,
/// not -1). Callers pass values unconverted.
template <class Part>
inline void put_part(std::ostream& os, const Part& part) {
    if constexpr (std::is_floating_point<Part>::value) {
        const auto saved = os.precision(std::numeric_limits<Part>::max_digits10);
        os << part;
        os.precision(saved);
    } else if constexpr (std::is_integral<Part>::value && sizeof(Part) == 1 && !std::is_same<Part, bool>::value) {
        if constexpr (std::is_signed<Part>::value)
            os << static_cast<int>(part);
        else
            os << static_cast<unsigned>(part);
    } else {
        os << part;
    }
}

/// Builds a message from streamable pieces and throws `E`. Every throw in the library goes through
/// here, so that a `-fno-exceptions` mode could be added in one place.
template <class E = std::invalid_argument, class... Parts>
[[noreturn]] inline void raise(const Parts&... parts) {
    std::ostringstream os;
    os.precision(17);
    (put_part(os, parts), ...);
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

/// What a label argument may be: an Eigen integer vector (any integer type, row or column) or a
/// contiguous range of integers with `data()` and `size()` (std::vector<int>, std::array,
/// std::span, ...).
template <class L, class = void>
struct is_eigen : std::false_type {};  // L or its derived() is an Eigen type (MatrixBase<X> included)
template <class L>
struct is_eigen<L, std::void_t<decltype(std::declval<const L&>().derived())>>
    : std::is_base_of<Eigen::EigenBase<std::decay_t<decltype(std::declval<const L&>().derived())>>,
                      std::decay_t<decltype(std::declval<const L&>().derived())>> {};
template <class L, class = void>
struct is_integer_range : std::false_type {};
template <class L>
struct is_integer_range<L, std::void_t<decltype(std::declval<const L&>().data()),
                                       decltype(std::declval<const L&>().size())>>
    : std::integral_constant<bool, !is_eigen<L>::value &&
                                       std::is_integral<std::remove_cv_t<std::remove_pointer_t<
                                           decltype(std::declval<const L&>().data())>>>::value> {};
template <class L, class = void>
struct is_eigen_integer : std::false_type {};
template <class L>
struct is_eigen_integer<L, std::enable_if_t<is_eigen<L>::value>>
    : std::is_integral<typename L::Scalar> {};
/// True for every type the label-taking overloads accept.
template <class L>
struct is_labels : std::integral_constant<bool, is_eigen_integer<L>::value || is_integer_range<L>::value> {};

/// Calls `fn(i, value)` for every entry of an integer vector (Eigen or contiguous range), the value
/// in its own type. An Eigen argument must be a vector (one row or one column): a matrix is
/// rejected at compile time when its shape is fixed and here otherwise.
template <class L, class Fn>
inline void for_each_integer(const L& values, const char* where, const char* name, Fn&& fn) {
    if constexpr (is_eigen_integer<L>::value) {
        static_assert(!(L::RowsAtCompileTime > 1 && L::ColsAtCompileTime > 1),
                      "coreset: labels and indices must be a vector, not a matrix");
        if (values.rows() != 1 && values.cols() != 1)
            raise(where, ": ", name, " must be a vector (got ", values.rows(), " x ", values.cols(), ")");
        const Eigen::Index size = values.size();
        for (Eigen::Index i = 0; i < size; ++i) fn(i, values.derived().coeff(i));
    } else {
        static_assert(is_integer_range<L>::value, "coreset: labels and indices must be integers");
        const auto* p = values.data();
        const auto size = static_cast<Eigen::Index>(values.size());
        for (Eigen::Index i = 0; i < size; ++i) fn(i, p[i]);
    }
}

/// Number of entries of an integer vector (Eigen or contiguous range).
template <class L>
inline Eigen::Index integer_count(const L& values) {
    if constexpr (is_eigen_integer<L>::value)
        return values.size();
    else
        return static_cast<Eigen::Index>(values.size());
}

/// v < 0 for any integer type (false for unsigned ones, without a warning).
template <class T>
constexpr bool is_negative(T v) noexcept {
    if constexpr (std::is_signed<T>::value)
        return v < T(0);
    else
        return false;
}

/// v < bound for a non-negative integer v of any type, compared without narrowing.
template <class T>
constexpr bool is_below(T v, Eigen::Index bound) noexcept {
    return bound > 0 && static_cast<unsigned long long>(v) < static_cast<unsigned long long>(bound);
}

/// Labels for per-class selection, checked and converted in one place: every entry of the
/// caller's vector is checked in its own type (no narrowing before the check), and the classes
/// are the distinct labels in ascending order (class c = the c-th smallest label present), so the
/// memory is O(n) whatever the label values (10^9, 2^64 - 1).
struct ClassLabels {
    /// Row indices of each class, in increasing order; no class is empty.
    std::vector<std::vector<Eigen::Index>> groups;
    /// class_of[i] = the class of row i.
    std::vector<Eigen::Index> class_of;
    /// Number of classes (distinct labels).
    Eigen::Index classes() const noexcept { return static_cast<Eigen::Index>(groups.size()); }
};

/// Labels (see is_labels) must be a vector of length `n`.
template <class L>
inline void check_label_shape(const L& labels, Eigen::Index n, const char* where) {
    static_assert(is_labels<L>::value, "coreset: labels must be an integer vector or a contiguous integer range");
    if constexpr (is_eigen_integer<L>::value)
        if (labels.rows() != 1 && labels.cols() != 1)
            raise(where, ": labels must be a vector (got ", labels.rows(), " x ", labels.cols(), ")");
    const Eigen::Index count = integer_count(labels);
    if (count != n)
        raise(where, ": labels must have one entry per row of gradients (got ", count, " labels for n = ", n, " rows)");
}

/// Reads labels (see is_labels) of length `n`, every value >= 0.
template <class L>
inline ClassLabels class_labels(const L& labels, Eigen::Index n, const char* where) {
    check_label_shape(labels, n, where);
    // Every value >= 0 fits unsigned long long (64 bits) exactly.
    std::vector<std::pair<unsigned long long, Eigen::Index>> sorted(static_cast<std::size_t>(n));
    bool small = true;  // every label < n: counting sort
    for_each_integer(labels, where, "labels", [&](Eigen::Index i, auto v) {
        if (is_negative(v)) raise(where, ": labels must be >= 0 (got ", v, " at index ", i, ")");
        sorted[static_cast<std::size_t>(i)] = {static_cast<unsigned long long>(v), i};
        if (!is_below(v, n)) small = false;
    });
    ClassLabels out;
    out.class_of.resize(static_cast<std::size_t>(n));
    if (small) {
        std::vector<Eigen::Index> id(static_cast<std::size_t>(n), -1);
        std::vector<char> present(static_cast<std::size_t>(n), 0);
        for (const auto& s : sorted) present[static_cast<std::size_t>(s.first)] = 1;
        Eigen::Index classes = 0;
        for (std::size_t v = 0; v < present.size(); ++v)
            if (present[v]) id[v] = classes++;
        out.groups.resize(static_cast<std::size_t>(classes));
        for (const auto& s : sorted) {
            const Eigen::Index c = id[static_cast<std::size_t>(s.first)];
            out.class_of[static_cast<std::size_t>(s.second)] = c;
            out.groups[static_cast<std::size_t>(c)].push_back(s.second);
        }
        return out;
    }
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t t = 0; t < sorted.size(); ++t) {
        if (t == 0 || sorted[t].first != sorted[t - 1].first) out.groups.emplace_back();
        out.groups.back().push_back(sorted[t].second);
        out.class_of[static_cast<std::size_t>(sorted[t].second)] = static_cast<Eigen::Index>(out.groups.size()) - 1;
    }
    return out;
}

/// Labels of n rows as class indices of a C-column score matrix: every value checked to be in
/// [0, C) in its own type, then converted.
template <class L>
inline std::vector<Eigen::Index> class_index_labels(const L& labels, Eigen::Index n, Eigen::Index classes,
                                                    const char* where) {
    check_label_shape(labels, n, where);
    std::vector<Eigen::Index> out(static_cast<std::size_t>(n));
    for_each_integer(labels, where, "labels", [&](Eigen::Index i, auto v) {
        if (is_negative(v)) raise(where, ": labels must be >= 0 (got ", v, " at index ", i, ")");
        if (!is_below(v, classes))
            raise(where, ": labels must be < C = ", classes, ", the number of columns of scores (got ", v,
                  " at index ", i, ")");
        out[static_cast<std::size_t>(i)] = static_cast<Eigen::Index>(v);
    });
    return out;
}

/// Indices into n rows (AdaCore::update): every value checked to be in [0, n) in its own type.
template <class L>
inline std::vector<Eigen::Index> row_indices(const L& indices, Eigen::Index n, const char* where) {
    std::vector<Eigen::Index> out(static_cast<std::size_t>(integer_count(indices)));
    for_each_integer(indices, where, "indices", [&](Eigen::Index j, auto i) {
        if (is_negative(i) || !is_below(i, n))
            raise(where, ": indices must satisfy 0 <= index < n = ", n, " (got ", i, " at position ", j, ")");
        out[static_cast<std::size_t>(j)] = static_cast<Eigen::Index>(i);
    });
    return out;
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
