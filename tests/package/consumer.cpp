// SPDX-License-Identifier: MIT
// A minimal consumer: selects 3 of 12 rows and checks the weights sum to 12.
#include <coreset/coreset.hpp>

#include <cstdio>

int main() {
    Eigen::MatrixXf g = Eigen::MatrixXf::Random(12, 4);
    const coreset::Craig craig;
    const auto subset = craig.select(g, 3);
    const float total = subset.weights.sum();
    std::printf("coreset %d.%d.%d: %d rows, weight sum %.1f\n", CORESET_VERSION_MAJOR, CORESET_VERSION_MINOR,
                CORESET_VERSION_PATCH, static_cast<int>(subset.size()), static_cast<double>(total));
    return (subset.size() == 3 && total == 12.0f) ? 0 : 1;
}
