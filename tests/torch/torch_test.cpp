// SPDX-License-Identifier: MIT
// coreset/torch.hpp: views share the tensor's memory (no copy), selections on a view equal those
// on an Eigen copy, Coreset -> tensors round-trips, and every rejected tensor names the problem.
#include <catch2/catch.hpp>
#include <coreset/coreset.hpp>
#include <coreset/torch.hpp>
#include <torch/torch.h>

#include "../test_support.hpp"

using namespace coreset;
using coreset_test::message_is;

TEST_CASE("tensor_rows and tensor_labels view the tensor's memory", "[torch]") {
    torch::manual_seed(3);
    const torch::Tensor x = torch::randn({50, 6});
    const auto view = tensor_rows<float>(x);
    CHECK(view.data() == x.data_ptr<float>());
    REQUIRE(view.rows() == 50);
    REQUIRE(view.cols() == 6);
    for (Eigen::Index i = 0; i < 50; ++i)
        for (Eigen::Index j = 0; j < 6; ++j) CHECK(view(i, j) == x[i][j].item<float>());
    const torch::Tensor y = torch::arange(50, torch::kLong) % 3;
    const auto labels = tensor_labels(y);
    CHECK(labels.data() == y.data_ptr<std::int64_t>());
    CHECK(labels[49] == 1);
    const auto col = tensor_rows<double>(torch::ones({7}, torch::kDouble));
    CHECK(col.rows() == 7);
    CHECK(col.cols() == 1);
}

TEST_CASE("Selections on a tensor view equal those on an Eigen copy, and come back as tensors", "[torch]") {
    torch::manual_seed(4);
    const torch::Tensor x = torch::randn({120, 5});
    const torch::Tensor y = torch::arange(120, torch::kLong) % 4;
    const Eigen::MatrixXf copy = tensor_rows<float>(x);
    const Eigen::VectorXi ycopy = tensor_labels(y).cast<int>();
    const auto a = Craig().select(tensor_rows<float>(x), tensor_labels(y), 12);
    const auto b = Craig().select(copy, ycopy, 12);
    CHECK(a.indices == b.indices);
    CHECK(a.weights == b.weights);
    const torch::Tensor idx = indices_tensor(a);
    const torch::Tensor w = weights_tensor(mean_one(a.weights));
    REQUIRE(idx.scalar_type() == torch::kLong);
    REQUIRE(w.scalar_type() == torch::kFloat);
    REQUIRE(idx.size(0) == a.size());
    const Eigen::VectorXf m = mean_one(a.weights);
    for (Eigen::Index j = 0; j < a.size(); ++j) {
        CHECK(idx[j].item<std::int64_t>() == a.indices[static_cast<std::size_t>(j)]);
        CHECK(w[j].item<float>() == m[j]);
    }
    const auto g = GradMatch().select(tensor_rows<float>(x), 10);
    CHECK(weights_tensor(g.weights).size(0) == g.size());
}

TEST_CASE("Rejected tensors name the function and the problem", "[torch]") {
    const torch::Tensor x = torch::randn({4, 3});
    CHECK_THROWS_MATCHES(tensor_rows<double>(x), std::invalid_argument,
                         message_is("coreset::tensor_rows(): tensor must have dtype Double (got Float)"));
    CHECK_THROWS_MATCHES(tensor_rows<float>(x.t()), std::invalid_argument,
                         message_is("coreset::tensor_rows(): tensor must be contiguous (got strides [1, 3]; call "
                                    ".contiguous() first)"));
    CHECK_THROWS_MATCHES(tensor_rows<float>(torch::zeros({2, 2, 2})), std::invalid_argument,
                         message_is("coreset::tensor_rows(): tensor must have 1 or 2 dimensions (got 3)"));
    CHECK_THROWS_MATCHES(tensor_rows<float>(torch::Tensor()), std::invalid_argument,
                         message_is("coreset::tensor_rows(): tensor must be a defined tensor (got an undefined tensor)"));
    CHECK_THROWS_MATCHES(tensor_labels(torch::zeros({4}, torch::kInt)), std::invalid_argument,
                         message_is("coreset::tensor_labels(): labels must have dtype Long (int64) (got Int)"));
    CHECK_THROWS_MATCHES(tensor_labels(torch::zeros({4, 1}, torch::kLong)), std::invalid_argument,
                         message_is("coreset::tensor_labels(): labels must have 1 dimension (got 2)"));
}
