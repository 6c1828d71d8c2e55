// SPDX-License-Identifier: MIT
// Quick start: a weighted 10% coreset of 1000 synthetic per-example gradients, chosen per class.
#include <coreset/coreset.hpp>

#include <iostream>

int main() {
    // n x d gradients, row i = example i: 4 classes, each made of 2 tight clusters.
    const Eigen::Index n = 1000, d = 10;
    const Eigen::MatrixXf centres = 5.0f * Eigen::MatrixXf::Random(8, d);
    Eigen::MatrixXf gradients(n, d);
    Eigen::VectorXi labels(n);
    for (Eigen::Index i = 0; i < n; ++i) {
        gradients.row(i) = centres.row(i % 8) + 0.3f * Eigen::RowVectorXf::Random(d);
        labels(i) = static_cast<int>(i % 4);
    }
    const Eigen::RowVectorXf full_sum = gradients.colwise().sum();

    // CRAIG: 100 medoids in gradient space (25 per class); weight = number of examples a pick stands for.
    const coreset::Craig craig;  // Euclidean distances, lazy greedy
    const coreset::Coreset<float> subset = craig.select(gradients, labels, n / 10);
    Eigen::RowVectorXf weighted_sum = Eigen::RowVectorXf::Zero(d);
    for (Eigen::Index j = 0; j < subset.size(); ++j)
        weighted_sum += subset.weights[j] * gradients.row(subset.indices[j]);
    std::cout << "CRAIG: " << subset.size() << " of " << n << " examples, weights sum to "
              << subset.weights.sum() << ", gradient-sum error "
              << (weighted_sum - full_sum).norm() / full_sum.norm() << '\n';

    // Networks average w_j * loss_j over a mini-batch: rescale the weights to mean 1.
    const Eigen::VectorXf w = coreset::mean_one(subset.weights);
    std::cout << "first pick: example " << subset.indices[0] << ", weight " << subset.weights[0]
              << ", mean-one weight " << w[0] << '\n';
}
