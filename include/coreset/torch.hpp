// SPDX-License-Identifier: MIT
/// \file torch.hpp
/// \brief LibTorch interoperability (optional; needs LibTorch, and is not included by
/// coreset.hpp): a contiguous CPU tensor viewed as an Eigen matrix without a copy, and a Coreset
/// turned into index and weight tensors.
///
/// \code{.cpp}
/// #include <coreset/coreset.hpp>
/// #include <coreset/torch.hpp>
///
/// torch::Tensor proxy = (torch::softmax(logits, 1) - one_hot).contiguous();   // [n, C] float
/// torch::Tensor y = targets.contiguous();                                      // [n] int64
/// auto cs = coreset::Craig().select(coreset::tensor_rows<float>(proxy),
///                                   coreset::tensor_labels(y), k);
/// torch::Tensor idx = coreset::indices_tensor(cs);                  // [k] int64
/// torch::Tensor w = coreset::weights_tensor(coreset::mean_one(cs.weights));  // [k] float
/// \endcode
///
/// The views read the tensor's memory: the tensor must stay alive, unmodified, while a view is
/// used (for the selection call). The tensors returned own their memory.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <type_traits>

#include <torch/types.h>

#include "core.hpp"
#include "detail/checks.hpp"

namespace coreset {

namespace detail {

template <class Scalar>
constexpr c10::ScalarType torch_dtype() {
    static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value,
                  "coreset: tensors of float or double");
    return std::is_same<Scalar, float>::value ? c10::ScalarType::Float : c10::ScalarType::Double;
}

inline void check_tensor(const at::Tensor& t, const char* where, const char* name) {
    require(t.defined(), where, name, " must be a defined tensor (got an undefined tensor)");
    require(t.device().is_cpu(), where, name, " must be on the CPU (got ", t.device().str(), ")");
    require(t.is_contiguous(), where, name, " must be contiguous (got strides ", t.strides(),
            "; call .contiguous() first)");
}

}  // namespace detail

/// A read-only Eigen view (n x d, row-major, no copy) of a 2-D contiguous CPU tensor of Scalar,
/// for any selector's `gradients`. A 1-D tensor of length n is viewed as n x 1.
/// \throws std::invalid_argument for an undefined tensor, one not on the CPU, not contiguous, of
///         another dtype, or of another dimension than 1 or 2.
template <class Scalar>
Eigen::Map<const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> tensor_rows(
    const at::Tensor& t) {
    const char* where = "coreset::tensor_rows()";
    detail::check_tensor(t, where, "tensor");
    detail::require(t.scalar_type() == detail::torch_dtype<Scalar>(), where, "tensor must have dtype ",
                    c10::toString(detail::torch_dtype<Scalar>()), " (got ", c10::toString(t.scalar_type()), ")");
    detail::require(t.dim() == 1 || t.dim() == 2, where, "tensor must have 1 or 2 dimensions (got ", t.dim(), ")");
    const Eigen::Index rows = t.size(0), cols = t.dim() == 2 ? t.size(1) : 1;
    return {t.data_ptr<Scalar>(), rows, cols};
}

/// A read-only Eigen view (no copy) of a 1-D contiguous CPU int64 tensor of labels, for the
/// per-class overloads.
/// \throws std::invalid_argument as tensor_rows(), for another dtype than int64, or not 1-D.
inline Eigen::Map<const Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>> tensor_labels(const at::Tensor& t) {
    const char* where = "coreset::tensor_labels()";
    detail::check_tensor(t, where, "labels");
    detail::require(t.scalar_type() == c10::ScalarType::Long, where, "labels must have dtype Long (int64) (got ",
                    c10::toString(t.scalar_type()), ")");
    detail::require(t.dim() == 1, where, "labels must have 1 dimension (got ", t.dim(), ")");
    return {t.data_ptr<std::int64_t>(), t.size(0)};
}

/// The selected rows as a new int64 tensor [k], in selection order (for index_select / a sampler).
template <class Scalar>
at::Tensor indices_tensor(const Coreset<Scalar>& coreset) {
    static_assert(sizeof(Eigen::Index) == sizeof(std::int64_t), "coreset: Eigen::Index must be 64 bits");
    at::Tensor out = at::empty({coreset.size()}, at::TensorOptions().dtype(c10::ScalarType::Long));
    std::int64_t* p = out.data_ptr<std::int64_t>();
    for (Eigen::Index j = 0; j < coreset.size(); ++j) p[j] = coreset.indices[static_cast<std::size_t>(j)];
    return out;
}

/// A weight vector (a Coreset's `weights`, or mean_one() of them) as a new tensor [k] of its scalar.
template <class Derived>
at::Tensor weights_tensor(const Eigen::MatrixBase<Derived>& weights) {
    using Scalar = typename Derived::Scalar;
    detail::require(weights.rows() == 1 || weights.cols() == 1, "coreset::weights_tensor()",
                    "weights must be a vector (got ", weights.rows(), " x ", weights.cols(), ")");
    at::Tensor out = at::empty({weights.size()}, at::TensorOptions().dtype(detail::torch_dtype<Scalar>()));
    Scalar* p = out.data_ptr<Scalar>();
    for (Eigen::Index j = 0; j < weights.size(); ++j) p[j] = weights.derived().coeff(j);
    return out;
}

}  // namespace coreset
