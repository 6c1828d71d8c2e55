// SPDX-License-Identifier: MIT
// Quick start: weighted 10% coresets of 1000 synthetic per-example gradients, by CRAIG and GRAD-MATCH.
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

    // How far the subset's weighted gradient sum is from the full sum (relative; 0 = exact).
    const Eigen::RowVectorXf full_sum = gradients.colwise().sum();
    auto report = [&](const char* method, const coreset::Coreset<float>& subset) {
        Eigen::RowVectorXf sum = Eigen::RowVectorXf::Zero(d);
        for (Eigen::Index j = 0; j < subset.size(); ++j)
            sum += subset.weights[j] * gradients.row(subset.indices[j]);
        std::cout << method << ": " << subset.size() << " of " << n << " examples (" << subset.status
                  << "), weights sum to " << subset.weights.sum() << ", gradient-sum error "
                  << (sum - full_sum).norm() / full_sum.norm() << '\n';
    };

    // CRAIG: 100 medoids in gradient space (25 per class); weight = number of examples a pick stands for.
    const coreset::Craig craig;  // Euclidean distances, lazy greedy
    const coreset::Coreset<float> medoids = craig.select(gradients, labels, n / 10);
    report("CRAIG", medoids);

    // GRAD-MATCH: at most 100 rows with weights w >= 0 fitted to the full gradient sum (OMP).
    const coreset::GradMatch grad_match;  // ridge lambda = 0.5
    report("GRAD-MATCH", grad_match.select(gradients, n / 10));

    // Networks average w_j * loss_j over a mini-batch: rescale the weights to mean 1.
    const Eigen::VectorXf w = coreset::mean_one(medoids.weights);
    std::cout << "first CRAIG pick: example " << medoids.indices[0] << ", weight " << medoids.weights[0]
              << ", mean-one weight " << w[0] << '\n';
}
