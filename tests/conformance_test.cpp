// SPDX-License-Identifier: MIT
// Conformance with the reference implementations on fixed inputs (tests/data/conformance, see its
// README): GRAD-MATCH in CORDS mode against CORDS' numpy `OrthogonalMP_REG`, and facility
// location (Craig's engine) against a float64 naive greedy, with the agreement with apricot and
// submodlib measured and printed. The readers are in conformance_support.hpp.
#include <Eigen/QR>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <coreset/craig.hpp>
#include <coreset/facility_location.hpp>
#include <coreset/grad_match.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "conformance_support.hpp"
#include "test_support.hpp"

#ifndef CORESET_CONFORMANCE_DIR
#error "CORESET_CONFORMANCE_DIR must name tests/data/conformance (set by tests/CMakeLists.txt)"
#endif

using namespace coreset;
using conformance::Json;

namespace {

using Index = Eigen::Index;

std::string dir() { return CORESET_CONFORMANCE_DIR; }
Json manifest() { return conformance::read_json(dir() + "/MANIFEST.json"); }

conformance::RowMatrixF read_case(const std::string& input) {
    const std::string path = dir() + "/cases/" + input;
    if (input.size() > 4 && input.compare(input.size() - 4, 4, ".csv") == 0) return conformance::read_csv(path);
    return conformance::read_npy(path);
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

Index common_prefix(const std::vector<Index>& a, const std::vector<Index>& b) {
    Index t = 0;
    while (t < static_cast<Index>(std::min(a.size(), b.size())) && a[static_cast<std::size_t>(t)] == b[static_cast<std::size_t>(t)]) ++t;
    return t;
}

struct OmpRun {
    Coreset<double> result;
    double max_rel = 0;  // largest |w - w_ref| / |w_ref| over the atoms (when the orders agree)
    bool order_equal = false;
};

template <class Scalar>
OmpRun run_cords(const conformance::RowMatrixF& g, const Json& expected) {
    GradMatchOptions o = GradMatchOptions::cords();
    o.random_fill = false;  // the fixtures are the solver's output, not the strategy's
    o.lambda = expected["lam"].num();
    o.tolerance = expected["eps"].num();
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> x = g.cast<Scalar>();
    const auto cs = GradMatch(o).select(x, static_cast<Index>(expected["k"].num()));
    OmpRun run;
    run.result.indices = cs.indices;
    run.result.weights = cs.weights.template cast<double>();
    run.result.status = cs.status;
    const auto order = expected["order"].indices();
    const auto w = expected["weights_in_order"].numbers();
    run.order_equal = cs.indices == order;
    if (run.order_equal)
        for (std::size_t j = 0; j < w.size(); ++j)
            run.max_rel = std::max(run.max_rel, std::abs(run.result.weights[static_cast<Index>(j)] - w[j]) / std::abs(w[j]));
    return run;
}

}  // namespace

TEST_CASE("conformance: the fixture readers", "[conformance]") {
    // The manifest's shapes are the files' shapes; every expected file parses.
    const Json m = manifest();
    for (const char* kind : {"fl", "omp"})
        for (const Json& c : m[kind].array) {
            const auto x = read_case(c["input"].str());
            REQUIRE(x.rows() == static_cast<Index>(c["n"].num()));
            REQUIRE(x.cols() == static_cast<Index>(c["d"].num()));
            REQUIRE(x.allFinite());
            REQUIRE(c["scale"].is_null());  // no case here is rescaled before selection
            for (const Json& file : c["expected"].values) REQUIRE_NOTHROW(conformance::read_json(dir() + "/expected/" + file.str()));
        }
    // The readers reject what they do not support.
    conformance::JsonParser bad("{\"a\": [1, 2,]}");
    REQUIRE_THROWS(bad.parse());
    conformance::JsonParser good("{\"a\": [1, -2.5e-3, true, null, \"x\\\"y\"], \"b\": {}}");
    const Json v = good.parse();
    REQUIRE(v["a"].array.size() == 5);
    REQUIRE(v["a"].array[1].num() == -2.5e-3);
    REQUIRE(v["a"].array[4].str() == "x\"y");
    REQUIRE_THROWS(conformance::read_npy(dir() + "/MANIFEST.json"));
}

TEST_CASE("conformance: GRAD-MATCH in CORDS mode reproduces CORDS' OrthogonalMP_REG (numpy)", "[conformance]") {
    const Json m = manifest();
    int cases = 0, exact = 0;
    for (const Json& c : m["omp"].array) {
        const auto g = read_case(c["input"].str());
        const Json& files = c["expected"];
        for (std::size_t f = 0; f < files.keys.size(); ++f) {
            if (!starts_with(files.keys[f], "cords-numpy/")) continue;
            const Json e = conformance::read_json(dir() + "/expected/" + files.values[f].str());
            REQUIRE(e["positive"].boolean);
            REQUIRE(e["target"].str() == "sum");
            const double lam = e["lam"].num();
            const double tol = lam == 0 ? 1e-2 : 1e-4;
            ++cases;
            // Computed from the float32 input widened to double (CORDS' numpy path is float64).
            const OmpRun run = run_cords<double>(g, e);
            const OmpRun run_f = run_cords<float>(g, e);
            std::printf("[conformance] omp %s %s: %zu atoms (CORDS %zu), order %s, max rel weight diff %.3g "
                        "(float input: order %s, %.3g)\n",
                        c["case"].str().c_str(), files.keys[f].c_str() + 12, run.result.indices.size(),
                        e["order"].array.size(), run.order_equal ? "identical" : "DIFFERENT", run.max_rel,
                        run_f.order_equal ? "identical" : "different", run_f.max_rel);
            // Conditioning of the final support's least-squares problem: CORDS solves the normal
            // equations (A_S A_S^T + lambda I) x = A_S b with scipy's lstsq; so does this library
            // (by Cholesky). Both are compared with a QR solution of the stacked system
            // [A_S^T; sqrt(lambda) I] x = [b; 0], which does not square the condition number.
            if (run.order_equal) {
                const Index d = g.cols(), s = run.result.size();
                Eigen::MatrixXd a(d + s, s);
                Eigen::VectorXd rhs = Eigen::VectorXd::Zero(d + s);
                const Eigen::MatrixXd gd = g.cast<double>();
                rhs.head(d) = gd.colwise().sum().transpose();
                a.setZero();
                for (Index j = 0; j < s; ++j) a.col(j).head(d) = gd.row(run.result.indices[static_cast<std::size_t>(j)]).transpose();
                a.bottomRows(s).diagonal().setConstant(std::sqrt(lam));
                const Eigen::VectorXd qr = a.colPivHouseholderQr().solve(rhs);
                const Eigen::JacobiSVD<Eigen::MatrixXd> svd(a);
                const double cond = svd.singularValues()(0) / svd.singularValues()(s - 1);
                const auto w = e["weights_in_order"].numbers();
                double ours = 0, theirs = 0;
                for (Index j = 0; j < s; ++j) {
                    ours = std::max(ours, std::abs(run.result.weights[j] - qr[j]) / std::abs(qr[j]));
                    theirs = std::max(theirs, std::abs(w[static_cast<std::size_t>(j)] - qr[j]) / std::abs(qr[j]));
                }
                // CORDS' arrays were the fixture's float32 ones: numpy then forms A_S A_S^T, A_S b and
                // b itself in float32 and only the lstsq runs in float64. The same normal
                // equations formed in float and solved in double:
                Eigen::MatrixXf as(s, d);
                for (Index j = 0; j < s; ++j) as.row(j) = g.row(run.result.indices[static_cast<std::size_t>(j)]);
                const Eigen::VectorXf b32 = g.colwise().sum().transpose();
                const Eigen::MatrixXf gram32 = as * as.transpose();
                const Eigen::VectorXf rhs32 = as * b32;
                const Eigen::MatrixXd normal = gram32.cast<double>() + lam * Eigen::MatrixXd::Identity(s, s);
                const Eigen::VectorXd emulated = normal.colPivHouseholderQr().solve(rhs32.cast<double>());
                double f32 = 0;
                for (Index j = 0; j < s; ++j)
                    f32 = std::max(f32, std::abs(w[static_cast<std::size_t>(j)] - emulated[j]) / std::abs(emulated[j]));
                const double u32 = std::ldexp(1.0, -24);
                std::printf("[conformance]   cond([A_S^T; sqrt(lam) I]) = %.3g (normal equations: %.3g); max rel "
                            "distance to the QR solution: this library %.3g, CORDS %.3g = %.2f u_f32 cond^2; CORDS "
                            "to the same normal equations formed in float32 here: %.3g\n",
                            cond, cond * cond, ours, theirs, theirs / (u32 * cond * cond), f32);
                // This library solves the float64 problem to near float64 accuracy; CORDS' distance from
                // it is float32 rounding of its normal equations, amplified by their condition number.
                REQUIRE(ours <= 1e-9);
            }
            // CORDS' torch twin (float32 on the device), for information.
            const std::string torch_key = "cords-torch/" + files.keys[f].substr(12);
            if (files.has(torch_key)) {
                const Json t = conformance::read_json(dir() + "/expected/" + files[torch_key].str());
                const auto order = t["order"].indices();
                double rel = 0;
                if (order == run.result.indices) {
                    const auto w = t["weights_in_order"].numbers();
                    for (std::size_t j = 0; j < w.size(); ++j)
                        rel = std::max(rel, std::abs(run.result.weights[static_cast<Index>(j)] - w[j]) / std::abs(w[j]));
                }
                std::printf("[conformance]   vs cords-torch: order %s, max rel weight diff %.3g\n",
                            order == run.result.indices ? "identical" : "different", rel);
            }
            INFO(c["case"].str() << " " << files.keys[f]);
            REQUIRE(run.order_equal);
            std::vector<Index> support = run.result.indices;
            std::sort(support.begin(), support.end());
            REQUIRE(support == e["support"].indices());
            REQUIRE(run.max_rel <= tol);
            if (run.order_equal) ++exact;
        }
    }
    std::printf("[conformance] omp: %d of %d CORDS numpy cases in the same order\n", exact, cases);
    REQUIRE(cases == 5);
}

TEST_CASE("conformance: facility location against the float64 reference greedy, apricot and submodlib",
          "[conformance]") {
    const Json m = manifest();
    for (const Json& c : m["fl"].array) {
        const auto g = read_case(c["input"].str());
        const Eigen::MatrixXd x = g.cast<double>();  // the reference works in float64 on the float32 input
        const Index k = static_cast<Index>(c["k"].num());
        const Json& files = c["expected"];
        for (const std::string sim : {"craig", "sqeuclid"}) {
            const Json ref = conformance::read_json(dir() + "/expected/" + files[sim + "/reference"].str());
            const auto ref_order = ref["order"].indices();
            const auto gaps = ref["gap_to_runner_up"].numbers();
            REQUIRE(static_cast<Index>(ref_order.size()) == k);
            // Up to the first exact tie (gap 0) of the reference's gains, the greedy order is determined
            // by the data alone; there the reference's lowest-index rule and this library's quantised
            // gains (resolution 2^-30 C per term) may pick different rows of equal gain.
            Index decided = k;
            for (Index t = 0; t < k; ++t)
                if (gaps[static_cast<std::size_t>(t)] <= 0) {
                    decided = t;
                    break;
                }
            for (const Greedy greedy : {Greedy::Naive, Greedy::Lazy}) {
                FacilityLocationOptions o;
                o.metric = sim == "craig" ? Metric::Euclidean : Metric::SquaredEuclidean;
                o.greedy = greedy;
                const auto cs = facility_location(x, k, o);
                // Craig is this engine on the same rows.
                CraigOptions co;
                co.metric = o.metric;
                co.greedy = greedy;
                REQUIRE(Craig(co).select(x, k).indices == cs.indices);
                const Index agree = common_prefix(cs.indices, ref_order);
                const double objective = cs.objective.back(), ref_objective = ref["objective"].num();
                const double rel = std::abs(objective - ref_objective) / ref_objective;
                std::printf("[conformance] fl %s %s %s: prefix agreement with reference %td of %td (first exact "
                            "tie at %td), objective rel diff %.3g",
                            c["case"].str().c_str(), sim.c_str(), to_string(greedy), agree, k, decided, rel);
                for (const char* peer : {"apricot-naive", "apricot-lazy", "submodlib-NaiveGreedy", "submodlib-LazyGreedy"}) {
                    const Json p = conformance::read_json(dir() + "/expected/" + files[sim + "/" + peer].str());
                    const auto peer_order = p["order"].indices();
                    const Index with_peer = common_prefix(cs.indices, peer_order);
                    std::printf(", %s %td", peer, with_peer);
                    // Agreement is transitive: where both agree with the reference, they agree.
                    CHECK(with_peer >= std::min(agree, common_prefix(peer_order, ref_order)));
                }
                std::printf("\n");
                INFO(c["case"].str() << " " << sim << " " << greedy);
                REQUIRE(agree >= decided);
                // Where the orders agree, so does every step's gain (objective differences here).
                const auto gains = ref["gains"].numbers();
                for (Index t = 0; t < agree; ++t) {
                    const double gain = cs.objective[static_cast<std::size_t>(t)] -
                                        (t > 0 ? cs.objective[static_cast<std::size_t>(t - 1)] : 0.0);
                    REQUIRE(std::abs(gain - gains[static_cast<std::size_t>(t)]) <= 1e-9 * ref_objective);
                }
                REQUIRE(rel <= 1e-9);
                // Past the ties the orders differ, but the picks may still be the same set; then
                // every pick's weight (rows it represents, ties to the earlier pick) must agree.
                std::vector<Index> a = cs.indices, b = ref_order;
                std::sort(a.begin(), a.end());
                std::sort(b.begin(), b.end());
                if (a == b) {
                    const auto w = ref["weights"].numbers();
                    for (Index j = 0; j < k; ++j) {
                        const auto at = std::find(ref_order.begin(), ref_order.end(), cs.indices[static_cast<std::size_t>(j)]);
                        const double expected = w[static_cast<std::size_t>(at - ref_order.begin())];
                        // Equal exactly, except that a row equidistant from two picks counts for the
                        // earlier one, which differs when their order does.
                        if (agree == k) REQUIRE(cs.weights[j] == expected);
                    }
                }
                std::printf("[conformance]   same set of picks as the reference: %s\n", a == b ? "yes" : "no");
            }
        }
    }
}
