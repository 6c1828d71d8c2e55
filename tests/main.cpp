// SPDX-License-Identifier: MIT
// The one Catch2 main of the test executable; prints the versions it was built against.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <Eigen/Core>
#include <coreset/version.hpp>
#include <iostream>

int main(int argc, char* argv[]) {
    std::cerr << "coreset " << CORESET_VERSION_MAJOR << '.' << CORESET_VERSION_MINOR << '.'
              << CORESET_VERSION_PATCH << ", Eigen " << EIGEN_WORLD_VERSION << '.' << EIGEN_MAJOR_VERSION
              << '.' << EIGEN_MINOR_VERSION << '\n';
    return Catch::Session().run(argc, argv);
}
