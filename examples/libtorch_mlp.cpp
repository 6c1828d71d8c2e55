// SPDX-License-Identifier: MIT
// CRAIG coresets in a LibTorch training loop: the papers' 784-100-10 sigmoid MLP on Fashion-MNIST.
// Shows the three things a LibTorch user needs:
//   1. the per-example last-layer proxy p - onehot(y), computed with tensor operations;
//   2. handing a contiguous [n, d] float tensor to coreset without a copy, and the selected
//      indices and weights back as tensors (coreset/torch.hpp);
//   3. training with per-example weights, loss = mean_j(w_j * CE_j), on a sampler over the subset.
//
//   libtorch_mlp [--epochs 3] [--reselect 1] [--budget 0.1] [--train-size 60000] [--seed 0]
#include <torch/torch.h>

#include <coreset/coreset.hpp>
#include <coreset/torch.hpp>

#include <chrono>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "idx.hpp"

namespace {

using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Fashion-MNIST as tensors: images [n, 784] in [0, 1], labels [n] (int64).
std::pair<torch::Tensor, torch::Tensor> load(const std::string& split, int64_t limit) {
    const coreset_examples::Dataset ds = coreset_examples::load_fashion_mnist(split);
    const int64_t n = std::min<int64_t>(limit, ds.x.rows());
    // Eigen's MatrixXf is column-major: copy once into a row-major [n, 784] tensor.
    torch::Tensor x = torch::empty({n, ds.x.cols()}, torch::kFloat);
    Eigen::Map<RowMatrixXf>(x.data_ptr<float>(), n, ds.x.cols()) = ds.x.topRows(n);
    torch::Tensor y = torch::empty({n}, torch::kLong);
    for (int64_t i = 0; i < n; ++i) y[i] = ds.y[i];
    return {x, y};
}

double accuracy(torch::nn::Sequential& net, const torch::Tensor& x, const torch::Tensor& y) {
    torch::NoGradGuard no_grad;
    return net->forward(x).argmax(1).eq(y).to(torch::kFloat).mean().item<double>();
}

}  // namespace

int main(int argc, char** argv) {
    int epochs = 3, reselect = 1, seed = 0;
    double budget = 0.1;
    int64_t train_size = 60000;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--epochs")
            epochs = std::stoi(v);
        else if (k == "--reselect")
            reselect = std::stoi(v);
        else if (k == "--budget")
            budget = std::stod(v);
        else if (k == "--train-size")
            train_size = std::stoll(v);
        else if (k == "--seed")
            seed = std::stoi(v);
        else {
            std::cerr << "unknown option " << k << '\n';
            return 2;
        }
    }
    try {
        torch::manual_seed(static_cast<uint64_t>(seed));
        const auto [x, y] = load("train", train_size);
        const auto [x_test, y_test] = load("t10k", 10000);
        const int64_t n = x.size(0), k = std::max<int64_t>(1, int64_t(budget * double(n) + 0.5));
        // Labels as an Eigen view of the int64 tensor for the per-class selection (no copy).
        const auto labels = coreset::tensor_labels(y);

        torch::nn::Sequential net(torch::nn::Linear(784, 100), torch::nn::Sigmoid(),
                                  torch::nn::Linear(100, 10));
        torch::optim::SGD opt(net->parameters(),
                              torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(1e-4));
        const coreset::Craig craig;  // Euclidean, lazy greedy, per class below

        torch::Tensor subset, weights;  // selected row indices [k] (int64) and mean-one weights [k]
        double select_s = 0, train_s = 0;
        using Clock = std::chrono::steady_clock;
        for (int epoch = 0; epoch < epochs; ++epoch) {
            if (epoch % reselect == 0) {
                const auto t0 = Clock::now();
                torch::Tensor proxy;
                {
                    // 1. p - onehot(y) for every training example, [n, 10], no autograd graph.
                    torch::NoGradGuard no_grad;
                    proxy = (torch::softmax(net->forward(x), 1) - torch::one_hot(y, 10).to(torch::kFloat))
                                .contiguous();
                }
                // 2. coreset reads the tensor's memory directly; weights are cluster sizes (sum n).
                const coreset::Coreset<float> cs = craig.select(coreset::tensor_rows<float>(proxy), labels, k);
                subset = coreset::indices_tensor(cs);
                weights = coreset::weights_tensor(coreset::mean_one(cs.weights));  // mean 1: mean_j(w_j * CE_j)
                select_s += std::chrono::duration<double>(Clock::now() - t0).count();
            }
            // 3. A shuffled sampler over the subset, mini-batches of 32, per-example weighted loss.
            const auto t0 = Clock::now();
            const torch::Tensor order = torch::randperm(subset.size(0), torch::kLong);
            for (int64_t start = 0; start < order.size(0); start += 32) {
                const torch::Tensor pos = order.slice(0, start, std::min<int64_t>(start + 32, order.size(0)));
                const torch::Tensor rows = subset.index_select(0, pos);
                const torch::Tensor per_example = torch::nn::functional::cross_entropy(
                    net->forward(x.index_select(0, rows)), y.index_select(0, rows),
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
                const torch::Tensor loss = (weights.index_select(0, pos) * per_example).mean();
                opt.zero_grad();
                loss.backward();
                opt.step();
            }
            train_s += std::chrono::duration<double>(Clock::now() - t0).count();
            std::cout << "epoch " << epoch + 1 << ": " << subset.size(0) << " of " << n
                      << " rows (CRAIG, per class), "
                      << "test accuracy " << std::fixed << std::setprecision(2)
                      << 100 * accuracy(net, x_test, y_test) << "%, selection " << select_s << " s, training "
                      << train_s << " s" << std::endl;
        }
    } catch (const std::exception& e) {
        std::cerr << "libtorch_mlp: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
