// SPDX-License-Identifier: MIT
// Two small trainers in plain Eigen, standing in for "an existing C++ trainer" in the Fashion-MNIST
// examples: L2-regularised softmax regression (convex) and a 784-100-10 sigmoid MLP, both trained by
// mini-batch SGD with momentum on a weighted loss mean_j(w_j * loss_j). Not part of the library.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

namespace coreset_examples {

using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// splitmix64: the examples' own small generator (initialisation, shuffling, random subsets).
class SplitMix {
public:
    explicit SplitMix(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    /// Uniform in [0, 1).
    double uniform() { return double(next() >> 11) * 0x1.0p-53; }
    /// Uniform in [0, bound) (bound > 0; the modulo bias is negligible here).
    std::size_t below(std::size_t bound) { return static_cast<std::size_t>(next() % bound); }
    template <class T>
    void shuffle(std::vector<T>& v) {
        for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
    }

private:
    std::uint64_t state_;
};

/// Sets Eigen's thread count for its lifetime (Eigen::setNbThreads), then restores it.
class EigenThreads {
public:
    explicit EigenThreads(int threads) : saved_(Eigen::nbThreads()) { Eigen::setNbThreads(threads); }
    ~EigenThreads() { Eigen::setNbThreads(saved_); }
    EigenThreads(const EigenThreads&) = delete;
    EigenThreads& operator=(const EigenThreads&) = delete;

private:
    int saved_;
};

/// Rows `idx` of a row-major matrix.
inline RowMatrixXf gather_rows(const RowMatrixXf& x, const std::vector<Eigen::Index>& idx) {
    RowMatrixXf out(static_cast<Eigen::Index>(idx.size()), x.cols());
    for (std::size_t j = 0; j < idx.size(); ++j) out.row(static_cast<Eigen::Index>(j)) = x.row(idx[j]);
    return out;
}

inline Eigen::VectorXi gather(const Eigen::VectorXi& y, const std::vector<Eigen::Index>& idx) {
    Eigen::VectorXi out(static_cast<Eigen::Index>(idx.size()));
    for (std::size_t j = 0; j < idx.size(); ++j) out[static_cast<Eigen::Index>(j)] = y[idx[j]];
    return out;
}

/// Hyper-parameters shared by both trainers.
struct SgdOptions {
    float lr = 0.05f;         ///< learning rate
    float momentum = 0.9f;    ///< heavy-ball momentum
    float l2 = 1e-4f;         ///< L2 penalty (l2 / 2) ||W||^2 on the weight matrices
    Eigen::Index batch = 32;  ///< mini-batch size
};

namespace detail_trainers {

/// Row-wise softmax in place.
inline void softmax_rows(RowMatrixXf& z) {
    for (Eigen::Index i = 0; i < z.rows(); ++i) {
        const float m = z.row(i).maxCoeff();
        z.row(i) = (z.row(i).array() - m).exp();
        z.row(i) /= z.row(i).sum();
    }
}

/// a = (softmax(z) - onehot(y)) * w_i / B: the gradient of mean_i(w_i * CE_i) w.r.t. the logits.
inline RowMatrixXf weighted_logit_gradient(RowMatrixXf z, const Eigen::VectorXi& y,
                                           const Eigen::VectorXf& w) {
    softmax_rows(z);
    const float inv_b = 1.0f / static_cast<float>(z.rows());
    for (Eigen::Index i = 0; i < z.rows(); ++i) {
        z(i, y[i]) -= 1.0f;
        z.row(i) *= w[i] * inv_b;
    }
    return z;
}

inline void init_uniform(Eigen::MatrixXf& m, float bound, SplitMix& rng) {
    for (Eigen::Index j = 0; j < m.cols(); ++j)
        for (Eigen::Index i = 0; i < m.rows(); ++i) m(i, j) = float((2.0 * rng.uniform() - 1.0) * bound);
}

}  // namespace detail_trainers

/// Mean cross-entropy and accuracy of logits z (n x C) against labels y.
inline std::pair<double, double> loss_and_accuracy(const RowMatrixXf& z, const Eigen::VectorXi& y) {
    double loss = 0.0;
    Eigen::Index correct = 0;
    for (Eigen::Index i = 0; i < z.rows(); ++i) {
        Eigen::Index arg = 0;
        const float m = z.row(i).maxCoeff(&arg);
        const double lse = m + std::log((z.row(i).array() - m).exp().sum());
        loss += lse - z(i, y[i]);
        correct += (arg == y[i]);
    }
    return {loss / double(z.rows()), double(correct) / double(z.rows())};
}

/// Multinomial logistic (softmax) regression z = x W + b with L2 penalty: the convex setting.
/// W is d x C. Its "embedding" (input of the last layer) is x itself.
class SoftmaxRegression {
public:
    SoftmaxRegression(Eigen::Index d, Eigen::Index classes, SgdOptions opt, std::uint64_t /*seed*/)
        : W_(Eigen::MatrixXf::Zero(d, classes)),
          b_(Eigen::RowVectorXf::Zero(classes)),
          vW_(Eigen::MatrixXf::Zero(d, classes)),
          vb_(Eigen::RowVectorXf::Zero(classes)),
          opt_(opt) {}

    RowMatrixXf logits(const RowMatrixXf& x) const {
        RowMatrixXf z = x * W_;
        z.rowwise() += b_;
        return z;
    }
    /// One SGD step on rows x (B x d) with labels y and per-example loss weights w.
    void step(const RowMatrixXf& x, const Eigen::VectorXi& y, const Eigen::VectorXf& w) {
        const RowMatrixXf a = detail_trainers::weighted_logit_gradient(logits(x), y, w);
        vW_ = opt_.momentum * vW_ + (x.transpose() * a + opt_.l2 * W_);
        vb_ = opt_.momentum * vb_ + a.colwise().sum();
        W_ -= opt_.lr * vW_;
        b_ -= opt_.lr * vb_;
    }
    /// Full objective: mean cross-entropy + (l2 / 2) ||W||^2.
    double objective(const RowMatrixXf& x, const Eigen::VectorXi& y) const {
        return loss_and_accuracy(logits(x), y).first + 0.5 * opt_.l2 * double(W_.squaredNorm());
    }

private:
    Eigen::MatrixXf W_;
    Eigen::RowVectorXf b_;
    Eigen::MatrixXf vW_;
    Eigen::RowVectorXf vb_;
    SgdOptions opt_;
};

/// The papers' MNIST network: d - hidden (sigmoid) - C, cross-entropy, L2 on the weights.
/// W1 is d x H, W2 is H x C (so column c of W2 is the last layer's row W_c of gradients.hpp).
class Mlp {
public:
    Mlp(Eigen::Index d, Eigen::Index classes, SgdOptions opt, std::uint64_t seed, Eigen::Index hidden = 100)
        : W1_(d, hidden),
          b1_(Eigen::RowVectorXf::Zero(hidden)),
          W2_(hidden, classes),
          b2_(Eigen::RowVectorXf::Zero(classes)),
          vW1_(Eigen::MatrixXf::Zero(d, hidden)),
          vb1_(Eigen::RowVectorXf::Zero(hidden)),
          vW2_(Eigen::MatrixXf::Zero(hidden, classes)),
          vb2_(Eigen::RowVectorXf::Zero(classes)),
          opt_(opt) {
        SplitMix rng(seed * 0x2545f4914f6cdd1dULL + 17);
        detail_trainers::init_uniform(W1_, float(std::sqrt(6.0 / double(d + hidden))), rng);
        detail_trainers::init_uniform(W2_, float(std::sqrt(6.0 / double(hidden + classes))), rng);
    }

    /// Hidden activations (the last layer's input e), n x H.
    RowMatrixXf embed(const RowMatrixXf& x) const {
        RowMatrixXf h = x * W1_;
        h.rowwise() += b1_;
        return (1.0f / (1.0f + (-h.array()).exp())).matrix();
    }
    RowMatrixXf head(const RowMatrixXf& h) const {
        RowMatrixXf z = h * W2_;
        z.rowwise() += b2_;
        return z;
    }
    RowMatrixXf logits(const RowMatrixXf& x) const { return head(embed(x)); }

    /// One SGD step on rows x (B x d) with labels y and per-example loss weights w. Returns the
    /// change applied to the last layer, in the layout of coreset::last_layer_gradients:
    /// [b2 (C) | W2 column 0 (H) | ... | W2 column C-1 (H)].
    Eigen::VectorXf step(const RowMatrixXf& x, const Eigen::VectorXi& y, const Eigen::VectorXf& w) {
        const RowMatrixXf h = embed(x);
        const RowMatrixXf a = detail_trainers::weighted_logit_gradient(head(h), y, w);
        RowMatrixXf dh = a * W2_.transpose();
        dh.array() *= h.array() * (1.0f - h.array());
        vW2_ = opt_.momentum * vW2_ + (h.transpose() * a + opt_.l2 * W2_);
        vb2_ = opt_.momentum * vb2_ + a.colwise().sum();
        vW1_ = opt_.momentum * vW1_ + (x.transpose() * dh + opt_.l2 * W1_);
        vb1_ = opt_.momentum * vb1_ + dh.colwise().sum();
        W1_ -= opt_.lr * vW1_;
        b1_ -= opt_.lr * vb1_;
        W2_ -= opt_.lr * vW2_;
        b2_ -= opt_.lr * vb2_;
        Eigen::VectorXf delta(b2_.size() + W2_.size());
        delta.head(b2_.size()) = -opt_.lr * vb2_.transpose();
        delta.tail(W2_.size()) = -opt_.lr * Eigen::Map<const Eigen::VectorXf>(vW2_.data(), vW2_.size());
        return delta;
    }

private:
    Eigen::MatrixXf W1_;
    Eigen::RowVectorXf b1_;
    Eigen::MatrixXf W2_;
    Eigen::RowVectorXf b2_;
    Eigen::MatrixXf vW1_;
    Eigen::RowVectorXf vb1_;
    Eigen::MatrixXf vW2_;
    Eigen::RowVectorXf vb2_;
    SgdOptions opt_;
};

/// One epoch over `rows` (indices into x) in a random order, in mini-batches of opt.batch, each
/// row's loss multiplied by its weight (weights[j] belongs to rows[j]).
template <class Model>
void train_epoch(Model& model, const RowMatrixXf& x, const Eigen::VectorXi& y,
                 const std::vector<Eigen::Index>& rows, const Eigen::VectorXf& weights, Eigen::Index batch,
                 SplitMix& rng) {
    // Mini-batch products are too small to gain from threads (on a loaded machine threads make
    // them many times slower); this sets Eigen's own count only, the selectors keep their threads.
    const EigenThreads one(1);
    std::vector<Eigen::Index> order(rows.size());
    std::iota(order.begin(), order.end(), Eigen::Index(0));
    rng.shuffle(order);
    for (std::size_t start = 0; start < order.size(); start += static_cast<std::size_t>(batch)) {
        const std::size_t end = std::min(order.size(), start + static_cast<std::size_t>(batch));
        std::vector<Eigen::Index> idx;
        Eigen::VectorXf w(static_cast<Eigen::Index>(end - start));
        for (std::size_t j = start; j < end; ++j) {
            idx.push_back(rows[static_cast<std::size_t>(order[j])]);
            w[static_cast<Eigen::Index>(j - start)] = weights[order[j]];
        }
        model.step(gather_rows(x, idx), gather(y, idx), w);
    }
}

}  // namespace coreset_examples
