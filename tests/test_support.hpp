// SPDX-License-Identifier: MIT
// Shared test helpers: seeded data generators, tolerances and message matchers.
#pragma once

#include <catch2/catch.hpp>

#include <Eigen/Core>
#include <cmath>
#include <coreset/core.hpp>
#include <coreset/detail/rng.hpp>
#include <string>
#include <vector>

namespace coreset_test {

template <class Scalar>
struct Tolerance;
template <>
struct Tolerance<float> {
    static constexpr double rel = 1e-4;
};
template <>
struct Tolerance<double> {
    static constexpr double rel = 1e-10;
};

/// A standard normal draw from the library's generator (Box-Muller).
inline double normal(coreset::detail::Rng& rng) {
    double u1 = rng.uniform();
    while (u1 <= 0.0) u1 = rng.uniform();
    const double u2 = rng.uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

/// n x d matrix of independent standard normals.
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> gaussian(Eigen::Index n, Eigen::Index d, std::uint64_t seed) {
    coreset::detail::Rng rng(seed);
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> x(n, d);
    for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index j = 0; j < d; ++j) x(i, j) = static_cast<Scalar>(normal(rng));
    return x;
}

/// Rows from `clusters` well-separated Gaussian blobs (centres at distance ~10 * spread), row i in
/// cluster i % clusters.
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> blobs(Eigen::Index n, Eigen::Index d, Eigen::Index clusters,
                                                           double spread, std::uint64_t seed) {
    const Eigen::MatrixXd centres = gaussian<double>(clusters, d, seed ^ 0x5eedULL) * 10.0;
    coreset::detail::Rng rng(seed);
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> x(n, d);
    for (Eigen::Index i = 0; i < n; ++i)
        for (Eigen::Index j = 0; j < d; ++j)
            x(i, j) = static_cast<Scalar>(centres(i % clusters, j) + spread * normal(rng));
    return x;
}

/// Labels 0..classes-1, row i gets i % classes.
inline Eigen::VectorXi round_robin_labels(Eigen::Index n, int classes) {
    Eigen::VectorXi y(n);
    for (Eigen::Index i = 0; i < n; ++i) y[i] = static_cast<int>(i % classes);
    return y;
}

/// Matches an exception whose message equals `text` exactly.
inline Catch::Matchers::Exception::ExceptionMessageMatcher message_is(const std::string& text) {
    return Catch::Matchers::Message(text);
}

}  // namespace coreset_test

/// REQUIRE that `expr` throws `type` with a message containing every given substring.
#define CORESET_REQUIRE_THROWS_WITH_ALL(expr, type, ...)                                   \
    do {                                                                                     \
        bool coreset_threw_ = false;                                                         \
        try {                                                                                \
            (void)(expr);                                                                    \
        } catch (const type& e) {                                                            \
            coreset_threw_ = true;                                                           \
            const std::string msg = e.what();                                                \
            for (const char* part : {__VA_ARGS__}) {                                         \
                INFO("message: " << msg << "\nexpected to contain: " << part);              \
                CHECK(msg.find(part) != std::string::npos);                                  \
            }                                                                                \
        }                                                                                    \
        INFO("expected " #expr " to throw " #type);                                          \
        REQUIRE(coreset_threw_);                                                             \
    } while (false)
