// SPDX-License-Identifier: MIT
// GRAD-MATCH: closed forms, exact recovery, agreement with a from-scratch reference OMP (both
// non-negativity policies), the incremental factor against dense solves, KKT conditions,
// per-class and per-batch variants, callbacks, determinism and input errors.
#include <Eigen/QR>
#include <algorithm>
#include <cmath>
#include <coreset/detail/nnls.hpp>
#include <coreset/grad_match.hpp>
#include <limits>
#include <set>
#include <vector>

#include "test_support.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace coreset;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;
using coreset_test::gaussian;
using coreset_test::message_is;

namespace {

using Index = Eigen::Index;

// ---------------------------------------------------------------------------------------------
// A slow reference: everything re-solved from scratch with dense LDLT solves at every step.

// Exact non-negative ridge least squares min_{w >= 0} ||A^T w - t||^2 + lambda ||w||^2 (A: k x d)
// by textbook Lawson-Hanson started from w = 0, every subproblem solved densely. The result is
// checked against the KKT conditions before it is returned.
Eigen::VectorXd reference_nnls(const Eigen::MatrixXd& A, const Eigen::VectorXd& t, double lambda) {
    const Index k = A.rows();
    const Eigen::MatrixXd H = A * A.transpose() + lambda * Eigen::MatrixXd::Identity(k, k);
    const Eigen::VectorXd b = A * t;
    Eigen::VectorXd w = Eigen::VectorXd::Zero(k);
    std::vector<bool> passive(static_cast<std::size_t>(k), false);
    const auto solve_passive = [&]() {
        std::vector<Index> p;
        for (Index j = 0; j < k; ++j)
            if (passive[static_cast<std::size_t>(j)]) p.push_back(j);
        Eigen::MatrixXd Hp(p.size(), p.size());
        Eigen::VectorXd bp(p.size());
        for (std::size_t a = 0; a < p.size(); ++a) {
            bp[static_cast<Index>(a)] = b[p[a]];
            for (std::size_t c = 0; c < p.size(); ++c) Hp(static_cast<Index>(a), static_cast<Index>(c)) = H(p[a], p[c]);
        }
        const Eigen::VectorXd zp = Hp.ldlt().solve(bp);
        Eigen::VectorXd z = Eigen::VectorXd::Zero(k);
        for (std::size_t a = 0; a < p.size(); ++a) z[p[a]] = zp[static_cast<Index>(a)];
        return z;
    };
    for (int outer = 0; outer < 10 * static_cast<int>(k) + 10; ++outer) {
        const Eigen::VectorXd dual = b - H * w;
        Index best = -1;
        for (Index j = 0; j < k; ++j)
            if (!passive[static_cast<std::size_t>(j)] &&
                dual[j] > detail::NonNegativeRidge::kPositive * A.row(j).norm() * t.norm() &&
                (best < 0 || dual[j] > dual[best]))
                best = j;
        if (best < 0) break;
        passive[static_cast<std::size_t>(best)] = true;
        for (;;) {
            const Eigen::VectorXd z = solve_passive();
            double alpha = 1;
            Index hit = -1;
            for (Index j = 0; j < k; ++j)
                if (passive[static_cast<std::size_t>(j)] && z[j] <= 0) {
                    const double ratio = w[j] > 0 ? w[j] / (w[j] - z[j]) : 0.0;
                    if (hit < 0 || ratio < alpha) alpha = ratio, hit = j;
                }
            if (hit < 0) {
                w = z;
                break;
            }
            w += alpha * (z - w);
            w[hit] = 0;
            for (Index j = 0; j < k; ++j)
                if (passive[static_cast<std::size_t>(j)] && w[j] <= 0) passive[static_cast<std::size_t>(j)] = false, w[j] = 0;
        }
    }
    // KKT: w >= 0; gradient zero where w > 0, dual <= 0 where w = 0.
    const Eigen::VectorXd dual = b - H * w;
    const double scale = std::max(1.0, b.cwiseAbs().maxCoeff());
    for (Index j = 0; j < k; ++j) {
        REQUIRE(w[j] >= 0);
        if (w[j] > 0)
            REQUIRE(std::abs(dual[j]) <= 1e-9 * scale);
        else
            REQUIRE(dual[j] <= 1e-9 * scale);
    }
    return w;
}

struct Reference {
    std::vector<Index> indices;
    std::vector<double> weights;
    std::vector<double> objective;
    Status status = Status::BudgetReached;
    Index drops = 0;
};

// OMP as specified, every step from scratch: pick the unpicked row with the largest positive
// correlation, solve on (support + pick), keep the atoms with positive weight.
Reference reference_omp(const Eigen::MatrixXd& G, const Eigen::VectorXd& t, Index budget, double lambda,
                        NonNegativity policy, double tolerance) {
    const Index n = G.rows();
    Reference out;
    std::vector<bool> picked(static_cast<std::size_t>(n), false);
    Eigen::VectorXd r = t;
    double gmax = 0;
    for (Index i = 0; i < n; ++i) gmax = std::max(gmax, G.row(i).norm());
    const double floor = detail::NonNegativeRidge::kPositive * t.norm() * gmax;
    for (;;) {
        Index e = -1;
        for (Index i = 0; i < n; ++i)
            if (!picked[static_cast<std::size_t>(i)] && (e < 0 || G.row(i).dot(r) > G.row(e).dot(r))) e = i;
        if (e < 0 || !(G.row(e).dot(r) > floor)) {
            out.status = Status::Exhausted;
            break;
        }
        picked[static_cast<std::size_t>(e)] = true;
        std::vector<Index> cand = out.indices;
        cand.push_back(e);
        Eigen::VectorXd w;
        for (;;) {
            Eigen::MatrixXd A(cand.size(), G.cols());
            for (std::size_t j = 0; j < cand.size(); ++j) A.row(static_cast<Index>(j)) = G.row(cand[j]);
            if (policy == NonNegativity::ActiveSet) {
                w = reference_nnls(A, t, lambda);
                break;
            }
            const Index k = A.rows();
            w = (A * A.transpose() + lambda * Eigen::MatrixXd::Identity(k, k)).ldlt().solve(A * t);
            Index p = 0;
            if (w.minCoeff(&p) > 0) break;
            cand.erase(cand.begin() + p);
            if (cand.empty()) {
                w.resize(0);
                break;
            }
        }
        out.indices.clear();
        out.weights.clear();
        r = t;
        for (std::size_t j = 0; j < cand.size(); ++j)
            if (w[static_cast<Index>(j)] > 0) {
                out.indices.push_back(cand[j]);
                out.weights.push_back(w[static_cast<Index>(j)]);
                r -= w[static_cast<Index>(j)] * G.row(cand[j]).transpose();
            }
        out.objective.push_back(r.norm());
        if (static_cast<Index>(out.indices.size()) >= budget) {
            out.status = Status::BudgetReached;
            break;
        }
        if (r.norm() < tolerance * t.norm()) {
            out.status = Status::ToleranceReached;
            break;
        }
    }
    // Survivors keep their order and picks are appended, so indices are in pick order.
    out.drops = static_cast<Index>(out.objective.size()) - static_cast<Index>(out.indices.size());
    return out;
}

// Invariants every result satisfies: no index twice, indices in range, weights finite and > 0.
template <class Scalar>
void require_valid(const Coreset<Scalar>& cs, Index n) {
    REQUIRE(cs.weights.size() == cs.size());
    std::set<Index> seen;
    for (Eigen::Index j = 0; j < cs.size(); ++j) {
        const Index i = cs.indices[static_cast<std::size_t>(j)];
        REQUIRE(i >= 0);
        REQUIRE(i < n);
        REQUIRE(seen.insert(i).second);
        REQUIRE(std::isfinite(cs.weights[j]));
        REQUIRE(cs.weights[j] > 0);
    }
}

// ||sum_j w_j g_{idx_j} - t|| in double.
template <class M, class Scalar>
double residual_norm(const M& G, const Coreset<Scalar>& cs, const Eigen::VectorXd& t) {
    Eigen::VectorXd r = t;
    for (Eigen::Index j = 0; j < cs.size(); ++j)
        r -= static_cast<double>(cs.weights[j]) * G.row(cs.indices[static_cast<std::size_t>(j)]).transpose().template cast<double>();
    return r.norm();
}

template <class M>
Eigen::VectorXd colsum(const M& G) {
    return G.template cast<double>().colwise().sum().transpose();
}

// Unit-norm Gaussian rows.
Eigen::MatrixXd unit_rows(Index n, Index d, std::uint64_t seed) {
    Eigen::MatrixXd G = gaussian<double>(n, d, seed);
    for (Index i = 0; i < n; ++i) G.row(i).normalize();
    return G;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("GradMatchOptions: defaults are the paper's and validate() names the bad option", "[grad_match]") {
    const GradMatchOptions o;
    REQUIRE(o.lambda == 0.5);
    REQUIRE(o.tolerance == 1e-10);
    REQUIRE(o.nonnegativity == NonNegativity::ActiveSet);
    REQUIRE_FALSE(o.normalize);
    REQUIRE(o.class_budget == ClassBudget::Proportional);
    REQUIRE_NOTHROW(o.validate());

    GradMatchOptions bad;
    bad.lambda = -1;
    REQUIRE_THROWS_MATCHES(bad.validate(), std::invalid_argument,
                           message_is("GradMatchOptions::validate(): lambda must satisfy lambda >= 0 (got -1)"));
    REQUIRE_THROWS_MATCHES(GradMatch(bad), std::invalid_argument,
                           message_is("GradMatchOptions::validate(): lambda must satisfy lambda >= 0 (got -1)"));
    bad.lambda = std::numeric_limits<double>::quiet_NaN();
    REQUIRE_THROWS_MATCHES(bad.validate(), std::invalid_argument,
                           message_is("GradMatchOptions::validate(): lambda must satisfy lambda >= 0 (got nan)"));
    bad.lambda = std::numeric_limits<double>::infinity();
    REQUIRE_THROWS_MATCHES(bad.validate(), std::invalid_argument,
                           message_is("GradMatchOptions::validate(): lambda must be finite (got inf)"));
    bad = GradMatchOptions{};
    bad.tolerance = -0.25;
    REQUIRE_THROWS_MATCHES(bad.validate(), std::invalid_argument,
                           message_is("GradMatchOptions::validate(): tolerance must satisfy tolerance >= 0 (got -0.25)"));
    bad.tolerance = std::numeric_limits<double>::infinity();
    REQUIRE_THROWS_MATCHES(bad.validate(), std::invalid_argument,
                           message_is("GradMatchOptions::validate(): tolerance must be finite (got inf)"));
    bad = GradMatchOptions{};
    bad.nonnegativity = static_cast<NonNegativity>(7);
    REQUIRE_THROWS_MATCHES(bad.validate(), std::invalid_argument,
                           message_is("GradMatchOptions::validate(): nonnegativity must be ActiveSet or DropMostNegative (got 7)"));
    bad = GradMatchOptions{};
    bad.class_budget = static_cast<ClassBudget>(7);
    REQUIRE_THROWS_MATCHES(bad.validate(), std::invalid_argument,
                           message_is("GradMatchOptions::validate(): class_budget must be Proportional, Equal, Ceil or EqualCeil (got 7)"));
    bad = GradMatchOptions{};
    bad.lambda = 0;
    bad.tolerance = 0;
    REQUIRE_NOTHROW(bad.validate());
    REQUIRE(std::string(to_string(NonNegativity::DropMostNegative)) == "DropMostNegative");
}

TEMPLATE_TEST_CASE("GradMatch: orthogonal rows give the closed form, and larger lambda smaller weights", "[grad_match]",
                   float, double) {
    // Rows s_j e_j: correlations never interact, so the picks are in order of s_j t_j and
    // w_j = s_j t_j / (s_j^2 + lambda) whatever the support. Row 5 has t_5 < 0: never picked.
    const Index d = 6;
    Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic> G = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>::Zero(d, d);
    const double s[] = {1.0, 2.0, 0.5, 3.0, 1.5, 2.5};
    for (Index j = 0; j < d; ++j) G(j, j) = static_cast<TestType>(s[j]);
    Eigen::VectorXd t(d);
    t << 3.0, 1.0, 4.0, 0.5, 2.0, -1.0;
    // s_j t_j = 3, 2, 2, 1.5, 3, -2.5: ties go to the lower index, row 5 is never positive.
    const std::vector<Index> expected_order = {0, 4, 1, 2, 3};
    double previous_norm = std::numeric_limits<double>::infinity();
    for (double lambda : {0.0, 0.5, 2.0, 10.0}) {
        GradMatchOptions o;
        o.lambda = lambda;
        const auto cs = GradMatch(o).select(G, Target(t.cast<TestType>()), d);
        require_valid(cs, d);
        REQUIRE(cs.indices == expected_order);
        REQUIRE(cs.status == Status::Exhausted);
        double wnorm = 0;
        Eigen::VectorXd r = t;
        for (Eigen::Index j = 0; j < cs.size(); ++j) {
            const Index i = cs.indices[static_cast<std::size_t>(j)];
            const double w = s[i] * t[i] / (s[i] * s[i] + lambda);
            CHECK_THAT(static_cast<double>(cs.weights[j]), WithinRel(w, coreset_test::Tolerance<TestType>::rel));
            wnorm += w * w;
            r[i] = t[i] * lambda / (s[i] * s[i] + lambda);
            CHECK_THAT(cs.objective[static_cast<std::size_t>(j)], WithinRel(r.norm(), coreset_test::Tolerance<TestType>::rel));
        }
        REQUIRE(std::sqrt(wnorm) < previous_norm);
        previous_norm = std::sqrt(wnorm);
    }
}

TEST_CASE("GradMatch: exact recovery of a sparse non-negative combination", "[grad_match]") {
    // t = sum of s = 5 unit rows (out of 40, d = 200: nearly orthogonal) with weights in [1, 2].
    const Index n = 40, d = 200;
    const Eigen::MatrixXd G = unit_rows(n, d, 11);
    const std::vector<Index> support = {3, 17, 22, 30, 38};
    const std::vector<double> weights = {1.0, 1.9, 1.3, 1.6, 1.15};
    Eigen::VectorXd t = Eigen::VectorXd::Zero(d);
    for (std::size_t j = 0; j < support.size(); ++j) t += weights[j] * G.row(support[j]).transpose();
    for (auto policy : {NonNegativity::ActiveSet, NonNegativity::DropMostNegative})
        for (bool normalize : {false, true}) {
            GradMatchOptions o;
            o.lambda = 0;
            o.nonnegativity = policy;
            o.normalize = normalize;
            const auto cs = GradMatch(o).select(G, Target(t), 12);
            INFO("policy " << policy << ", normalize " << normalize);
            REQUIRE(cs.status == Status::ToleranceReached);
            REQUIRE(cs.size() == 5);
            REQUIRE(cs.objective.back() < 1e-10 * t.norm());
            std::vector<Index> got = cs.indices;
            std::vector<double> w(cs.weights.data(), cs.weights.data() + cs.size());
            for (std::size_t j = 0; j < support.size(); ++j) {
                const auto at = std::find(got.begin(), got.end(), support[j]);
                REQUIRE(at != got.end());
                CHECK_THAT(w[static_cast<std::size_t>(at - got.begin())], WithinAbs(weights[j], 1e-6));
            }
        }
}

TEST_CASE("GradMatch: exact recovery in float within float accuracy", "[grad_match]") {
    const Index n = 40, d = 200;
    const Eigen::MatrixXf G = unit_rows(n, d, 12).cast<float>();
    const std::vector<Index> support = {0, 9, 21, 33};
    Eigen::VectorXf t = Eigen::VectorXf::Zero(d);
    for (Index i : support) t += 1.5f * G.row(i).transpose();
    GradMatchOptions o;
    o.lambda = 0;
    o.tolerance = 1e-5;
    const auto cs = GradMatch(o).select(G, Target(t), 10);
    REQUIRE(cs.status == Status::ToleranceReached);
    std::vector<Index> got = cs.indices;
    std::sort(got.begin(), got.end());
    REQUIRE(got == support);
    for (Eigen::Index j = 0; j < cs.size(); ++j) CHECK_THAT(cs.weights[j], WithinAbs(1.5, 1e-4));
}

TEST_CASE("GradMatch: agrees with the from-scratch reference on random problems", "[grad_match]") {
    Index problems = 0, with_drops = 0, past_d = 0;
    for (std::uint64_t seed = 1; seed <= 6; ++seed)
        for (Index d : {5, 9})
            for (double lambda : {0.05, 0.5, 3.0})
                for (auto policy : {NonNegativity::ActiveSet, NonNegativity::DropMostNegative})
                    for (bool user_target : {false, true}) {
                        const Index n = 45;
                        const Index budget = 3 * d;  // beyond d: exercises the d x d form
                        const Eigen::MatrixXd G = gaussian<double>(n, d, seed * 31 + static_cast<std::uint64_t>(d));
                        const Eigen::VectorXd t = user_target ? Eigen::VectorXd(gaussian<double>(d, 1, seed + 1000) * 4.0)
                                                              : colsum(G);
                        GradMatchOptions o;
                        o.lambda = lambda;
                        o.nonnegativity = policy;
                        const auto cs = GradMatch(o).select(G, Target(t), budget);
                        const auto ref = reference_omp(G, t, budget, lambda, policy, o.tolerance);
                        INFO("seed " << seed << ", d " << d << ", lambda " << lambda << ", " << policy
                                     << ", user target " << user_target);
                        require_valid(cs, n);
                        REQUIRE(cs.status == ref.status);
                        REQUIRE(cs.indices == ref.indices);
                        REQUIRE(cs.objective.size() == ref.objective.size());
                        const double wmax = *std::max_element(ref.weights.begin(), ref.weights.end());
                        for (std::size_t j = 0; j < ref.weights.size(); ++j)
                            CHECK_THAT(cs.weights[static_cast<Index>(j)], WithinAbs(ref.weights[j], 1e-8 * std::max(1.0, wmax)));
                        for (std::size_t s = 0; s < ref.objective.size(); ++s)
                            CHECK_THAT(cs.objective[s], WithinAbs(ref.objective[s], 1e-8 * t.norm()));
                        ++problems;
                        if (ref.drops > 0) ++with_drops;
                        if (cs.size() > d) ++past_d;
                    }
    // The comparison covered atoms being dropped and supports larger than d (dual form).
    REQUIRE(problems == 144);
    REQUIRE(with_drops >= 20);
    REQUIRE(past_d >= 20);
}

TEST_CASE("GradMatch: where the two policies part ways, each still follows its reference", "[grad_match]") {
    // The policies agree on almost every problem (they remove the same atom whenever a single
    // weight turns negative). These clustered problems (found by search: 7 in 9 000) are ones
    // where several weights turn negative at once and the two removal rules choose differently.
    struct Case {
        std::uint64_t seed;
        double lambda;
    };
    for (const Case c : {Case{258, 0.0}, Case{462, 0.0}, Case{1548, 0.0}, Case{1582, 0.0}, Case{2278, 0.01}, Case{2618, 0.0}}) {
        detail::Rng rng(c.seed);
        const Index d = 4 + static_cast<Index>(c.seed % 17), n = 80, C = 1 + static_cast<Index>(c.seed % 4);
        Eigen::MatrixXd centres(C, d), G(n, d);
        for (Index k = 0; k < C; ++k)
            for (Index j = 0; j < d; ++j) centres(k, j) = coreset_test::normal(rng);
        for (Index i = 0; i < n; ++i)
            for (Index j = 0; j < d; ++j) G(i, j) = centres(i % C, j) + 0.3 * coreset_test::normal(rng);
        Eigen::VectorXd t(d);
        for (Index j = 0; j < d; ++j) t(j) = 3 * coreset_test::normal(rng);
        if (c.seed % 2) t = colsum(G) + 0.5 * t;
        const Index budget = std::min(n, 3 * d);
        std::vector<Index> by_policy[2];
        for (auto policy : {NonNegativity::ActiveSet, NonNegativity::DropMostNegative}) {
            GradMatchOptions o;
            o.lambda = c.lambda;
            o.tolerance = 0;
            o.nonnegativity = policy;
            const auto cs = GradMatch(o).select(G, Target(t), budget);
            const auto ref = reference_omp(G, t, budget, c.lambda, policy, 0.0);
            INFO("seed " << c.seed << ", " << policy);
            require_valid(cs, n);
            REQUIRE(cs.indices == ref.indices);
            REQUIRE(cs.objective.size() == ref.objective.size());
            for (std::size_t j = 0; j < ref.weights.size(); ++j)
                CHECK_THAT(cs.weights[static_cast<Index>(j)], WithinRel(ref.weights[j], 1e-6));
            by_policy[policy == NonNegativity::ActiveSet ? 0 : 1] = cs.indices;
        }
        REQUIRE(by_policy[0] != by_policy[1]);
    }
}

TEST_CASE("GradMatch: agrees with the reference without ridge (lambda = 0)", "[grad_match]") {
    for (std::uint64_t seed = 1; seed <= 8; ++seed)
        for (auto policy : {NonNegativity::ActiveSet, NonNegativity::DropMostNegative}) {
            const Index n = 40, d = 12;
            const Eigen::MatrixXd G = gaussian<double>(n, d, seed + 500);
            const Eigen::VectorXd t = gaussian<double>(d, 1, seed + 600) * 3.0;
            GradMatchOptions o;
            o.lambda = 0;
            o.nonnegativity = policy;
            const auto cs = GradMatch(o).select(G, Target(t), 8);
            const auto ref = reference_omp(G, t, 8, 0.0, policy, o.tolerance);
            INFO("seed " << seed << ", " << policy);
            REQUIRE(cs.indices == ref.indices);
            REQUIRE(cs.status == ref.status);
            for (std::size_t j = 0; j < ref.weights.size(); ++j)
                CHECK_THAT(cs.weights[static_cast<Index>(j)], WithinRel(ref.weights[j], 1e-8));
        }
}

TEST_CASE("RidgeFactor: primal, dual and default forms match dense solves through appends and removals", "[grad_match][nnls]") {
    const Index d = 6;
    const Eigen::MatrixXd pool = gaussian<double>(30, d, 77);
    const Eigen::VectorXd t = gaussian<double>(d, 1, 78);
    for (Index threshold : {Index(0), Index(-1), Index(1000)}) {
        detail::RidgeFactor f(t, 0.7, 4, threshold);
        detail::Rng rng(threshold + 5);
        std::vector<Index> active;
        Index next = 0;
        for (int op = 0; op < 60; ++op) {
            const bool add = active.size() < 3 || (next < pool.rows() && rng.uniform() < 0.6);
            if (add && next < pool.rows()) {
                REQUIRE(f.append(next, pool.row(next).transpose()));
                active.push_back(next++);
            } else {
                const auto p = static_cast<Index>(rng.below(active.size()));
                f.remove(p);
                active.erase(active.begin() + p);
            }
            REQUIRE(f.ids() == active);
            Eigen::MatrixXd A(active.size(), d);
            for (std::size_t j = 0; j < active.size(); ++j) A.row(static_cast<Index>(j)) = pool.row(active[j]);
            const Index k = A.rows();
            const Eigen::VectorXd want = (A * A.transpose() + 0.7 * Eigen::MatrixXd::Identity(k, k)).ldlt().solve(A * t);
            Eigen::VectorXd z, r;
            f.solve(z, r);
            INFO("threshold " << threshold << ", op " << op << ", k " << k);
            REQUIRE((z - want).norm() <= 1e-10 * (1 + want.norm()));
            REQUIRE((r - (t - A.transpose() * want)).norm() <= 1e-10 * (1 + t.norm()));
        }
        if (threshold == 0) REQUIRE(f.dual());
        if (threshold == 1000) REQUIRE_FALSE(f.dual());
    }
}

TEST_CASE("RidgeFactor: without ridge a dependent atom is refused and nothing changes", "[grad_match][nnls]") {
    const Eigen::MatrixXd A = gaussian<double>(2, 4, 3);
    const Eigen::VectorXd t = gaussian<double>(4, 1, 4);
    detail::RidgeFactor f(t, 0.0);
    REQUIRE(f.append(0, A.row(0).transpose()));
    REQUIRE(f.append(1, A.row(1).transpose()));
    Eigen::VectorXd z0, r0, z1, r1;
    f.solve(z0, r0);
    REQUIRE_FALSE(f.append(2, (2.0 * A.row(0) - 0.5 * A.row(1)).transpose()));
    REQUIRE(f.size() == 2);
    f.solve(z1, r1);
    REQUIRE(z0 == z1);
    REQUIRE_FALSE(f.dual());
}

TEST_CASE("NonNegativeRidge: each add is the exact NNLS on the previous support plus the new atom", "[grad_match][nnls]") {
    // Random sequences of positively correlated atoms; seeds 3, 242, 631, 1171 and 1755 are ones
    // where Lawson-Hanson has to let a removed atom back in (rare: about 1 sequence in 600).
    Index drops = 0;
    for (std::uint64_t seed : {1, 2, 3, 4, 5, 6, 7, 8, 242, 631, 1171, 1755})
        for (bool exact : {true, false}) {
            detail::Rng rng(seed);
            const Index d = 2 + static_cast<Index>(seed % 4), n = 12;
            const double lambda = seed % 3 == 0 ? 0.0 : 0.1;
            Eigen::MatrixXd A(n, d);
            for (Index i = 0; i < n; ++i)
                for (Index j = 0; j < d; ++j) A(i, j) = coreset_test::normal(rng);
            Eigen::VectorXd t(d);
            for (Index j = 0; j < d; ++j) t(j) = 3 * coreset_test::normal(rng);
            detail::NonNegativeRidge nn(t, lambda, exact);
            for (Index i = 0; i < n; ++i) {
                if (!(A.row(i).dot(nn.residual()) > 0)) continue;  // as OMP: positively correlated atoms only
                std::vector<Index> before = nn.ids();
                before.push_back(i);
                const double objective_before = nn.objective();
                const auto outcome = nn.add(i, A.row(i).transpose());
                if (!outcome.accepted) continue;
                drops += static_cast<Index>(outcome.dropped.size());
                INFO("seed " << seed << ", exact " << exact << ", atom " << i);
                // Survivors and dropped atoms partition (previous support + new atom).
                std::vector<Index> now = nn.ids();
                now.insert(now.end(), outcome.dropped.begin(), outcome.dropped.end());
                std::sort(now.begin(), now.end());
                std::sort(before.begin(), before.end());
                REQUIRE(now == before);
                REQUIRE((nn.size() == 0 || nn.weights().minCoeff() > 0));
                if (!exact) continue;
                // Exact: the regularised objective never increases, and w is the NNLS optimum.
                REQUIRE(nn.objective() <= objective_before * (1 + 1e-12));
                Eigen::MatrixXd S(before.size(), d);
                for (std::size_t j = 0; j < before.size(); ++j) S.row(static_cast<Index>(j)) = A.row(before[j]);
                const Eigen::VectorXd ref = reference_nnls(S, t, lambda);
                for (std::size_t j = 0; j < before.size(); ++j) {
                    const auto at = std::find(nn.ids().begin(), nn.ids().end(), before[j]);
                    const double got = at == nn.ids().end() ? 0.0 : nn.weights()[at - nn.ids().begin()];
                    REQUIRE_THAT(got, WithinAbs(ref[static_cast<Index>(j)], 1e-9 * (1 + ref.norm())));
                }
            }
        }
    REQUIRE(drops >= 10);
}

TEST_CASE("NonNegativeRidge: on a fixed support, larger lambda gives a smaller weight norm", "[grad_match][nnls]") {
    const Eigen::MatrixXd A = unit_rows(5, 60, 23);  // nearly orthogonal: no weight ever <= 0
    const Eigen::VectorXd t = colsum(A);
    double previous = std::numeric_limits<double>::infinity();
    for (double lambda : {0.0, 0.1, 1.0, 10.0}) {
        detail::NonNegativeRidge nn(t, lambda, true);
        for (Index j = 0; j < A.rows(); ++j) REQUIRE(nn.add(j, A.row(j).transpose()).dropped.empty());
        REQUIRE(nn.size() == 5);
        const double norm = nn.weights().norm();
        REQUIRE(norm < previous);
        previous = norm;
    }
}

TEMPLATE_TEST_CASE("GradMatch: KKT conditions and monotone objectives", "[grad_match]", float, double) {
    using M = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    const M G = coreset_test::blobs<TestType>(120, 16, 4, 1.0, 5);
    const Eigen::VectorXd t = colsum(G);
    const double tol = std::is_same<TestType, float>::value ? 1e-4 : 1e-9;
    for (double lambda : {0.0, 0.5}) {
        GradMatchOptions o;
        o.lambda = lambda;
        o.tolerance = 0;
        const auto cs = GradMatch(o).select(G, 30);
        INFO("lambda " << lambda << ", status " << cs.status);
        require_valid(cs, 120);
        // Stationarity on the support: A_S r = lambda w with r the final residual.
        Eigen::VectorXd r = t;
        for (Eigen::Index j = 0; j < cs.size(); ++j)
            r -= static_cast<double>(cs.weights[j]) * G.row(cs.indices[static_cast<std::size_t>(j)]).transpose().template cast<double>();
        REQUIRE_THAT(cs.objective.back(), WithinAbs(r.norm(), tol * t.norm()));
        const double gscale = G.template cast<double>().rowwise().norm().maxCoeff() * t.norm();
        for (Eigen::Index j = 0; j < cs.size(); ++j) {
            const double grad = G.row(cs.indices[static_cast<std::size_t>(j)]).template cast<double>().dot(r) -
                                lambda * static_cast<double>(cs.weights[j]);
            CHECK(std::abs(grad) <= tol * gscale);
        }
        // ActiveSet: ||r|| non-increasing when lambda = 0 (exact NNLS over nested supports).
        if (lambda == 0)
            for (std::size_t s = 1; s < cs.objective.size(); ++s)
                CHECK(cs.objective[s] <= cs.objective[s - 1] * (1 + 1e-12) + 1e-12 * t.norm());
    }
}

TEST_CASE("GradMatch: tolerance stops early with ToleranceReached", "[grad_match]") {
    const Eigen::MatrixXd G = gaussian<double>(100, 8, 3).cwiseAbs();  // the column sum is in the cone
    GradMatchOptions o;
    o.lambda = 0;
    // An exact non-negative solution with at most d atoms exists, so the residual vanishes.
    auto cs = GradMatch(o).select(G, 50);
    REQUIRE(cs.status == Status::ToleranceReached);
    REQUIRE(cs.size() <= 8);
    REQUIRE(cs.objective.back() < 1e-10 * colsum(G).norm());
    // A loose tolerance: the last pick is the first below it.
    o.tolerance = 0.2;
    cs = GradMatch(o).select(G, 50);
    REQUIRE(cs.status == Status::ToleranceReached);
    const double tn = colsum(G).norm();
    REQUIRE(cs.objective.back() < 0.2 * tn);
    REQUIRE(cs.objective.size() >= 2);
    REQUIRE(cs.objective[cs.objective.size() - 2] >= 0.2 * tn);
    // tolerance >= 1 stops before any pick; tolerance 0 never stops on it.
    o.tolerance = 1.5;
    cs = GradMatch(o).select(G, 50);
    REQUIRE(cs.status == Status::ToleranceReached);
    REQUIRE(cs.size() == 0);
    o.tolerance = 0;
    cs = GradMatch(o).select(G, 5);
    REQUIRE(cs.status == Status::BudgetReached);
    REQUIRE(cs.size() == 5);
}

TEST_CASE("GradMatch: no positive correlation means Exhausted, never padding", "[grad_match]") {
    const Eigen::MatrixXd G = gaussian<double>(30, 5, 4).cwiseAbs();
    const Eigen::VectorXd t = -colsum(G);  // every row is negatively correlated with the target
    auto cs = GradMatch().select(G, Target(t), 10);
    REQUIRE(cs.status == Status::Exhausted);
    REQUIRE(cs.size() == 0);
    REQUIRE(cs.objective.empty());
    // A zero target is met by the empty set.
    cs = GradMatch().select(G, Target(Eigen::VectorXd::Zero(5)), 10);
    REQUIRE(cs.status == Status::ToleranceReached);
    REQUIRE(cs.size() == 0);
    // Every row picked and still under budget: Exhausted with fewer rows, no fill.
    const Eigen::MatrixXd few = gaussian<double>(6, 20, 8);
    cs = GradMatch().select(few, Target(gaussian<double>(20, 1, 9)), 6);
    REQUIRE(cs.status == Status::Exhausted);
    REQUIRE(cs.size() < 6);
    require_valid(cs, 6);
}

TEMPLATE_TEST_CASE("GradMatch: a user target as row or column vector, float or double", "[grad_match]", float, double) {
    using M = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    const M G = gaussian<TestType>(80, 10, 14);
    const M val = gaussian<TestType>(20, 10, 15);
    const Eigen::Matrix<TestType, 1, Eigen::Dynamic> row = val.colwise().sum();
    const Eigen::Matrix<TestType, Eigen::Dynamic, 1> col = row.transpose();
    const GradMatch gm;
    const auto a = gm.select(G, Target(row), 12);
    const auto b = gm.select(G, Target(col), 12);
    const auto c = gm.select(G, Target(col.template cast<double>()), 12);
    REQUIRE(a.indices == b.indices);
    REQUIRE(a.indices == c.indices);
    REQUIRE(a.weights == b.weights);
    require_valid(a, 80);
    // The trace is the residual towards that target.
    const Eigen::VectorXd t = col.template cast<double>();
    REQUIRE_THAT(residual_norm(G, a, t), WithinRel(a.objective.back(), coreset_test::Tolerance<TestType>::rel * 10));
    // A column-major input and a row-major copy give the same result.
    const detail::RowMatrix<TestType> Gr = G;
    const auto e = gm.select(Gr, Target(col), 12);
    REQUIRE(e.indices == a.indices);
    REQUIRE(e.weights == a.weights);
}

TEMPLATE_TEST_CASE("GradMatch: per class, each class matches its own gradient sum", "[grad_match]", float, double) {
    using M = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    const Index n = 90, d = 6;
    const M G = gaussian<TestType>(n, d, 16).cwiseAbs();
    Eigen::VectorXi y = coreset_test::round_robin_labels(n, 3);
    y[0] = 2;  // class sizes 29, 30, 31
    GradMatchOptions o;
    o.lambda = 0;
    o.tolerance = 1e-6;
    const GradMatch gm(o);
    const auto cs = gm.select(G, y, 30);
    require_valid(cs, n);
    // Run each class alone; the merged result is those results, class by class.
    std::vector<Index> indices;
    std::vector<double> weights, objective;
    for (int c = 0; c < 3; ++c) {
        std::vector<Index> rows;
        for (Index i = 0; i < n; ++i)
            if (y[i] == c) rows.push_back(i);
        const Eigen::Index k = 10;  // the proportional split of 30 over sizes 29, 30, 31
        M Gc(rows.size(), d);
        for (std::size_t j = 0; j < rows.size(); ++j) Gc.row(static_cast<Index>(j)) = G.row(rows[j]);
        const auto one = gm.select(Gc, k);
        // The class sum is in the cone of its rows: matched to the tolerance.
        REQUIRE(one.status == Status::ToleranceReached);
        REQUIRE(residual_norm(Gc, one, colsum(Gc)) < 1e-5 * colsum(Gc).norm());
        for (Eigen::Index j = 0; j < one.size(); ++j) {
            indices.push_back(rows[static_cast<std::size_t>(one.indices[static_cast<std::size_t>(j)])]);
            weights.push_back(static_cast<double>(one.weights[j]));
        }
        objective.insert(objective.end(), one.objective.begin(), one.objective.end());
    }
    REQUIRE(cs.indices == indices);
    for (std::size_t j = 0; j < weights.size(); ++j) REQUIRE(static_cast<double>(cs.weights[static_cast<Index>(j)]) == weights[j]);
    REQUIRE(cs.objective == objective);
    REQUIRE(cs.status == Status::ToleranceReached);
}

TEMPLATE_TEST_CASE("GradMatch: per batch, members inherit the batch weight over its size", "[grad_match]", float, double) {
    using M = Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic>;
    const Index n = 50, d = 7, bs = 8;  // 7 batches, the last one of 2 rows
    const M G = gaussian<TestType>(n, d, 17);
    const GradMatch gm;
    const auto cs = gm.select_batches(G, bs, 20);  // ceil(20 / 8) = 3 batches
    require_valid(cs, n);
    // The same OMP on the batch means towards the column sum of all rows.
    M means(7, d);
    for (Index b = 0; b < 7; ++b) {
        const Index lo = b * bs, len = std::min(bs, n - lo);
        means.row(b) = G.middleRows(lo, len).colwise().sum() / static_cast<TestType>(len);
    }
    const auto batches = gm.select(means, Target(colsum(G)), 3);
    REQUIRE(cs.status == batches.status);
    REQUIRE(cs.objective.size() == batches.objective.size());
    for (std::size_t s = 0; s < cs.objective.size(); ++s)
        REQUIRE_THAT(cs.objective[s], WithinRel(batches.objective[s], coreset_test::Tolerance<TestType>::rel * 10));
    std::size_t pos = 0;
    Eigen::VectorXd members = Eigen::VectorXd::Zero(d), by_batch = Eigen::VectorXd::Zero(d);
    for (Eigen::Index j = 0; j < batches.size(); ++j) {
        const Index b = batches.indices[static_cast<std::size_t>(j)];
        const Index lo = b * bs, len = std::min(bs, n - lo);
        by_batch += static_cast<double>(batches.weights[j]) * means.row(b).transpose().template cast<double>();
        for (Index i = lo; i < lo + len; ++i, ++pos) {
            REQUIRE(cs.indices[pos] == i);
            REQUIRE_THAT(static_cast<double>(cs.weights[static_cast<Index>(pos)]),
                         WithinRel(static_cast<double>(batches.weights[j]) / static_cast<double>(len), 1e-6));
            members += static_cast<double>(cs.weights[static_cast<Index>(pos)]) * G.row(i).transpose().template cast<double>();
        }
    }
    REQUIRE(pos == cs.indices.size());
    REQUIRE((members - by_batch).norm() <= coreset_test::Tolerance<TestType>::rel * 10 * by_batch.norm());
}

TEST_CASE("GradMatch: a batch larger than the data is one batch of all rows", "[grad_match]") {
    const Eigen::MatrixXd G = gaussian<double>(9, 3, 24).cwiseAbs();
    const auto cs = GradMatch().select_batches(G, std::numeric_limits<Index>::max(), 4);
    REQUIRE(cs.size() == 9);
    for (Index i = 0; i < 9; ++i) REQUIRE(cs.indices[static_cast<std::size_t>(i)] == i);
    // One atom, the mean row m: w = (m . t) / (|m|^2 + lambda), shared by 9 members.
    const Eigen::VectorXd m = G.colwise().mean().transpose(), t = colsum(G);
    const double w = m.dot(t) / (m.squaredNorm() + 0.5);
    for (Index i = 0; i < 9; ++i) REQUIRE_THAT(cs.weights[i], WithinRel(w / 9, 1e-12));
}

namespace {
struct Recorder {
    std::vector<StepInfo> steps;
    Index stop_after = -1;
    bool on_step(const StepInfo& info) {
        steps.push_back(info);
        return stop_after >= 0 && static_cast<Index>(steps.size()) >= stop_after;
    }
};
struct Watcher {
    int calls = 0;
    void on_step(const StepInfo&) { ++calls; }
};
}  // namespace

TEST_CASE("GradMatch: callbacks observe each pick and can stop", "[grad_match]") {
    const Eigen::MatrixXd G = gaussian<double>(70, 9, 18);
    const GradMatch gm;
    Recorder rec;
    Watcher watch;
    const auto full = gm.select(G, 15, rec, watch);
    REQUIRE(full.status == Status::BudgetReached);
    REQUIRE(rec.steps.size() == full.objective.size());
    REQUIRE(watch.calls == static_cast<int>(full.objective.size()));
    double previous = colsum(G).norm();
    for (std::size_t s = 0; s < rec.steps.size(); ++s) {
        REQUIRE(rec.steps[s].step == static_cast<Index>(s));
        REQUIRE(rec.steps[s].objective == full.objective[s]);
        REQUIRE_THAT(rec.steps[s].gain, WithinAbs(previous - full.objective[s], 1e-12 * previous));
        previous = full.objective[s];
    }
    // Picks that survive are reported in the order they were picked.
    std::vector<Index> reported;
    for (const auto& s : rec.steps) reported.push_back(s.picked);
    for (Index i : full.indices) REQUIRE(std::find(reported.begin(), reported.end(), i) != reported.end());

    Recorder stopper;
    stopper.stop_after = 4;
    const auto part = gm.select(G, 15, stopper);
    REQUIRE(part.status == Status::StoppedByCallback);
    REQUIRE(part.objective.size() == 4);
    REQUIRE(std::vector<double>(full.objective.begin(), full.objective.begin() + 4) == part.objective);

    // Per class: global row indices, one step count, and a stop ends every class.
    const Eigen::VectorXi y = coreset_test::round_robin_labels(70, 2);
    Recorder per;
    const auto pc = gm.select(G, y, 10, per);
    REQUIRE(per.steps.size() == pc.objective.size());
    for (std::size_t s = 0; s < per.steps.size(); ++s) REQUIRE(per.steps[s].step == static_cast<Index>(s));
    for (Index i : pc.indices) {
        bool seen = false;
        for (const auto& s : per.steps) seen = seen || s.picked == i;
        REQUIRE(seen);
    }
    Recorder per_stop;
    per_stop.stop_after = 2;
    const auto ps = gm.select(G, y, 10, per_stop);
    REQUIRE(ps.status == Status::StoppedByCallback);
    REQUIRE(per_stop.steps.size() == 2);
    REQUIRE(ps.size() <= 2);
}

TEST_CASE("GradMatch: results do not depend on the number of threads", "[grad_match]") {
    const Eigen::MatrixXf G = coreset_test::blobs<float>(3000, 40, 6, 2.0, 19);  // 12 blocks of rows
    Eigen::VectorXi y = coreset_test::round_robin_labels(3000, 3);
    GradMatchOptions o;
    o.normalize = true;
    const GradMatch gm(o);
#ifdef _OPENMP
    const int before = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    const auto a = gm.select(G, 60);
    const auto ac = gm.select(G, y, 60);
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    const auto b = gm.select(G, 60);
    const auto bc = gm.select(G, y, 60);
#ifdef _OPENMP
    omp_set_num_threads(before);
#endif
    REQUIRE(a.indices == b.indices);
    REQUIRE(a.weights == b.weights);
    REQUIRE(a.objective == b.objective);
    REQUIRE(ac.indices == bc.indices);
    REQUIRE(ac.weights == bc.weights);
    REQUIRE(a.size() == 60);
}

TEST_CASE("GradMatch: normalize picks by correlation over row norm", "[grad_match]") {
    // Row 0 is long and weakly aligned, row 1 short and well aligned: unnormalised OMP takes row 0
    // first, normalised OMP row 1.
    Eigen::MatrixXd G(3, 2);
    G << 10.0, 6.0, 0.9, 0.1, -1.0, 0.5;
    const Eigen::Vector2d t(1.0, 0.0);
    GradMatchOptions o;
    const auto plain = GradMatch(o).select(G, Target(t), 1);
    o.normalize = true;
    const auto normed = GradMatch(o).select(G, Target(t), 1);
    REQUIRE(plain.indices == std::vector<Index>{0});
    REQUIRE(normed.indices == std::vector<Index>{1});
}

TEST_CASE("GradMatch: bad inputs throw invalid_argument naming the parameter", "[grad_match]") {
    const GradMatch gm;
    Eigen::MatrixXd G = gaussian<double>(10, 4, 20);
    REQUIRE_THROWS_MATCHES(gm.select(G, Target(Eigen::VectorXd::Ones(3)), 2), std::invalid_argument,
                           message_is("GradMatch::select(): target must have one entry per column of gradients (got 3 entries for d = 4 columns)"));
    REQUIRE_THROWS_MATCHES(gm.select(G, Target(Eigen::MatrixXd::Ones(2, 2)), 2), std::invalid_argument,
                           message_is("GradMatch::select(): target must be a vector (got 2 x 2)"));
    Eigen::VectorXd bad_t = Eigen::VectorXd::Ones(4);
    bad_t[2] = std::numeric_limits<double>::quiet_NaN();
    REQUIRE_THROWS_MATCHES(gm.select(G, Target(bad_t), 2), std::invalid_argument,
                           message_is("GradMatch::select(): target must be finite (got nan at index 2)"));
    REQUIRE_THROWS_MATCHES(gm.select(G, 0), std::invalid_argument,
                           message_is("GradMatch::select(): budget must satisfy 1 <= budget <= n (got budget = 0, n = 10)"));
    REQUIRE_THROWS_MATCHES(gm.select(G, Target(Eigen::VectorXd::Ones(4)), 11), std::invalid_argument,
                           message_is("GradMatch::select(): budget must satisfy 1 <= budget <= n (got budget = 11, n = 10)"));
    REQUIRE_THROWS_MATCHES(gm.select(G, Eigen::VectorXi::Zero(9), 2), std::invalid_argument,
                           message_is("GradMatch::select(): labels must have one entry per row of gradients (got 9 labels for n = 10 rows)"));
    REQUIRE_THROWS_MATCHES(gm.select(G, Eigen::VectorXi::Zero(10), 0), std::invalid_argument,
                           message_is("GradMatch::select(): budget must satisfy 1 <= budget <= n (got budget = 0, n = 10)"));
    REQUIRE_THROWS_MATCHES(gm.select_batches(G, 0, 2), std::invalid_argument,
                           message_is("GradMatch::select_batches(): batch_size must satisfy batch_size >= 1 (got 0)"));
    REQUIRE_THROWS_MATCHES(gm.select_batches(G, 3, 11), std::invalid_argument,
                           message_is("GradMatch::select_batches(): budget must satisfy 1 <= budget <= n (got budget = 11, n = 10)"));
    G(4, 1) = std::numeric_limits<double>::infinity();
    REQUIRE_THROWS_MATCHES(gm.select(G, 2), std::invalid_argument,
                           message_is("GradMatch::select(): gradients must be finite (got inf at row 4, column 1)"));
    REQUIRE_THROWS_MATCHES(gm.select(G, Target(Eigen::VectorXd::Ones(4)), 2), std::invalid_argument,
                           message_is("GradMatch::select(): gradients must be finite (got inf at row 4, column 1)"));
    REQUIRE_THROWS_MATCHES(gm.select_batches(G, 2, 2), std::invalid_argument,
                           message_is("GradMatch::select_batches(): gradients must be finite (got inf at row 4, column 1)"));
    const Eigen::MatrixXf empty(0, 3);
    REQUIRE_THROWS_MATCHES(gm.select(empty, 1), std::invalid_argument,
                           message_is("GradMatch::select(): gradients must have at least one row and one column (got 0 x 3)"));
}

// ---------------------------------------------------------------------------------------------
// CORDS compatibility (GradMatchOptions::cords(), docs/grad_match.md)

namespace {

struct CordsTrace {
    std::vector<Index> indices;
    std::vector<double> weights;
    Index iterations = 0, drops = 0, repicks = 0;
    bool stopped_on_reselect = false, stopped_on_tolerance = false;
};

// CORDS' OrthogonalMP_REG (positive = True) as its documentation and code describe it, written out
// with dense from-scratch solves: `budget` iterations; before each, stop when ||r|| / ||t|| < tol;
// e = arg-max of G r over all rows (first on ties); stop when e is in the index list; append it;
// a single atom gets g_e.t / ||g_e||^2, otherwise solve (A A^T + lambda I) w = A t and, while
// min(w) < 0, remove the most negative atom and re-solve; r = t - A^T w.
CordsTrace cords_reference(const Eigen::MatrixXd& G, const Eigen::VectorXd& t, Index budget, double lambda, double tol) {
    CordsTrace out;
    std::set<Index> ever;
    Eigen::VectorXd r = t, w;
    for (Index it = 0; it < budget; ++it) {
        if (r.norm() / t.norm() < tol) {
            out.stopped_on_tolerance = true;
            break;
        }
        Index e = 0;
        const Eigen::VectorXd c = G * r;
        for (Index i = 1; i < G.rows(); ++i)
            if (c[i] > c[e]) e = i;
        if (std::find(out.indices.begin(), out.indices.end(), e) != out.indices.end()) {
            out.stopped_on_reselect = true;
            break;
        }
        if (!ever.insert(e).second) ++out.repicks;
        ++out.iterations;
        out.indices.push_back(e);
        const auto solve = [&] {
            const Index k = static_cast<Index>(out.indices.size());
            Eigen::MatrixXd A(k, G.cols());
            for (Index j = 0; j < k; ++j) A.row(j) = G.row(out.indices[static_cast<std::size_t>(j)]);
            w = (A * A.transpose() + lambda * Eigen::MatrixXd::Identity(k, k)).colPivHouseholderQr().solve(A * t);
            return A;
        };
        Eigen::MatrixXd A;
        if (out.indices.size() == 1) {
            A = G.row(e);
            w = Eigen::VectorXd::Constant(1, G.row(e).dot(t) / G.row(e).squaredNorm());
        } else {
            A = solve();
            while (w.size() > 0 && w.minCoeff() < 0) {
                Index p = 0;
                w.minCoeff(&p);
                out.indices.erase(out.indices.begin() + p);
                ++out.drops;
                A = solve();
            }
        }
        r = t - A.transpose() * w;
    }
    out.weights.assign(w.data(), w.data() + w.size());
    return out;
}

GradMatchOptions cords_solver(double lambda, double tolerance) {
    GradMatchOptions o = GradMatchOptions::cords();
    o.random_fill = false;
    o.lambda = lambda;
    o.tolerance = tolerance;
    return o;
}

}  // namespace

TEST_CASE("GradMatchOptions::cords(): the preset, and the defaults untouched", "[grad_match][cords]") {
    const GradMatchOptions d;
    REQUIRE(d.lambda == 0.5);
    REQUIRE(d.tolerance == 1e-10);
    REQUIRE(d.nonnegativity == NonNegativity::ActiveSet);
    REQUIRE(!d.normalize);
    REQUIRE(d.class_budget == ClassBudget::Proportional);
    REQUIRE(!d.repick_dropped);
    REQUIRE(!d.budget_counts_iterations);
    REQUIRE(!d.stop_on_reselect);
    REQUIRE(!d.unregularized_first_atom);
    REQUIRE(!d.random_fill);
    REQUIRE(d.seed == 0);
    const GradMatchOptions c = GradMatchOptions::cords();
    REQUIRE(c.lambda == 0.5);
    REQUIRE(c.tolerance == 1e-100);
    REQUIRE(c.nonnegativity == NonNegativity::DropMostNegative);
    REQUIRE(!c.normalize);
    REQUIRE(c.class_budget == ClassBudget::Ceil);
    REQUIRE(c.repick_dropped);
    REQUIRE(c.budget_counts_iterations);
    REQUIRE(c.stop_on_reselect);
    REQUIRE(c.unregularized_first_atom);
    REQUIRE(c.random_fill);
    REQUIRE_NOTHROW(c.validate());
}

TEST_CASE("GradMatch CORDS mode: the same atoms, order and weights as CORDS' rules written out densely",
          "[grad_match][cords]") {
    // Random problems where rows are dropped, dropped rows come back, and the arg-max falls on the
    // support; every one of them is followed exactly.
    Index drops = 0, repicks = 0, reselect_stops = 0, tolerance_stops = 0, budget_stops = 0;
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
        const Index n = 30 + static_cast<Index>(seed % 7) * 10, d = 4 + static_cast<Index>(seed % 5) * 3;
        Eigen::MatrixXd G = gaussian<double>(n, d, 500 + seed);
        if (seed % 3 == 0) G.col(0).array() += 1.0;  // a common direction: more drops
        const double lambda = seed % 4 == 0 ? 0.0 : 0.05 * static_cast<double>(seed % 5 + 1);
        const double tol = lambda == 0 ? 1e-6 : (seed % 2 ? 1e-100 : 1e-2);
        const Index budget = 1 + static_cast<Index>(seed % 11) * 2;
        const Eigen::VectorXd t = colsum(G);
        const CordsTrace ref = cords_reference(G, t, budget, lambda, tol);
        const auto cs = GradMatch(cords_solver(lambda, tol)).select(G, budget);
        INFO("seed " << seed << " n " << n << " d " << d << " lambda " << lambda << " budget " << budget);
        require_valid(cs, n);
        REQUIRE(cs.indices == ref.indices);
        for (std::size_t j = 0; j < ref.weights.size(); ++j)
            REQUIRE_THAT(static_cast<double>(cs.weights[static_cast<Index>(j)]), WithinRel(ref.weights[j], 1e-8));
        REQUIRE(static_cast<Index>(cs.objective.size()) == ref.iterations);
        if (ref.stopped_on_reselect) {
            REQUIRE(cs.status == Status::Exhausted);
            ++reselect_stops;
        } else if (ref.stopped_on_tolerance) {
            REQUIRE(cs.status == Status::ToleranceReached);
            ++tolerance_stops;
        } else {
            REQUIRE(ref.iterations == budget);
            // After the last iteration CORDS checks nothing; the library reports the budget unless
            // the tolerance was met by that last pick.
            REQUIRE((cs.status == Status::BudgetReached || cs.status == Status::ToleranceReached));
            ++budget_stops;
        }
        drops += ref.drops;
        repicks += ref.repicks;
    }
    // The test exercises every rule.
    REQUIRE(drops > 0);
    REQUIRE(repicks > 0);
    REQUIRE(reselect_stops > 0);
    REQUIRE(tolerance_stops > 0);
    REQUIRE(budget_stops > 0);
}

TEST_CASE("GradMatch CORDS mode: each rule on its own", "[grad_match][cords]") {
    const Index n = 60, d = 8;
    Eigen::MatrixXd G = gaussian<double>(n, d, 77);
    G.col(0).array() += 1.0;
    const Eigen::VectorXd t = colsum(G);

    SECTION("first atom: unregularised weight g.t / ||g||^2, against the ridge g.t / (||g||^2 + lambda)") {
        GradMatchOptions o;
        o.lambda = 3.0;
        const auto ridge = GradMatch(o).select(G, 1);
        o.unregularized_first_atom = true;
        const auto plain = GradMatch(o).select(G, 1);
        REQUIRE(plain.indices == ridge.indices);
        const Eigen::VectorXd g = G.row(plain.indices[0]).transpose();
        REQUIRE_THAT(plain.weights[0], WithinRel(g.dot(t) / g.squaredNorm(), 1e-12));
        REQUIRE_THAT(ridge.weights[0], WithinRel(g.dot(t) / (g.squaredNorm() + 3.0), 1e-12));
        // The residual after the unregularised first atom is orthogonal to it.
        REQUIRE(std::abs(g.dot(t - plain.weights[0] * g)) <= 1e-10 * t.norm() * g.norm());
    }
    SECTION("stop on reselection: at the end the arg-max over all rows is in the support") {
        GradMatchOptions o;
        o.lambda = 0.5;
        o.tolerance = 0;
        o.stop_on_reselect = true;
        const auto cs = GradMatch(o).select(G, n);
        REQUIRE(cs.status == Status::Exhausted);
        REQUIRE(cs.size() < d + 1);  // with lambda > 0 a support atom has g.r = lambda w > 0 and wins early
        Eigen::VectorXd r = t;
        for (Index j = 0; j < cs.size(); ++j) r -= cs.weights[j] * G.row(cs.indices[static_cast<std::size_t>(j)]).transpose();
        Index e = 0;
        const Eigen::VectorXd c = G * r;
        for (Index i = 1; i < n; ++i)
            if (c[i] > c[e]) e = i;
        REQUIRE(std::find(cs.indices.begin(), cs.indices.end(), e) != cs.indices.end());
        // Without the rule the same options go on to the budget or to exhaustion of fresh rows.
        o.stop_on_reselect = false;
        REQUIRE(GradMatch(o).select(G, n).size() > cs.size());
    }
    SECTION("budget in iterations: never more picks than the budget, so drops leave fewer atoms") {
        GradMatchOptions o;
        o.lambda = 0.01;
        o.tolerance = 0;
        o.nonnegativity = NonNegativity::DropMostNegative;
        o.budget_counts_iterations = true;
        bool fewer = false;
        for (Index k = 1; k <= 12; ++k) {
            const auto cs = GradMatch(o).select(G, k);
            REQUIRE(cs.size() <= k);
            REQUIRE(static_cast<Index>(cs.objective.size()) <= k);
            if (cs.status == Status::BudgetReached) REQUIRE(static_cast<Index>(cs.objective.size()) == k);
            // Atoms counted instead: the budget is met with k positive atoms (or the rows run out).
            GradMatchOptions a = o;
            a.budget_counts_iterations = false;
            const auto atoms = GradMatch(a).select(G, k);
            if (atoms.status == Status::BudgetReached) REQUIRE(atoms.size() == k);
            if (cs.size() < k) fewer = true;
        }
        REQUIRE(fewer);  // some budget saw a drop
    }
    SECTION("re-pick: a dropped row may come back; without it, never") {
        GradMatchOptions o = cords_solver(0.05, 0);
        o.stop_on_reselect = false;  // only re-pick, over rows not in the support
        o.budget_counts_iterations = false;
        const auto with = GradMatch(o).select(G, 20);
        o.repick_dropped = false;
        const auto without = GradMatch(o).select(G, 20);
        require_valid(with, n);
        require_valid(without, n);
        // Both satisfy the non-negative ridge optimality on their support (DropMostNegative
        // solutions are unconstrained ridge solutions with positive weights).
        for (const auto* cs : {&with, &without}) {
            Eigen::MatrixXd A(cs->size(), d);
            for (Index j = 0; j < cs->size(); ++j) A.row(j) = G.row(cs->indices[static_cast<std::size_t>(j)]);
            const Eigen::VectorXd z =
                (A * A.transpose() + 0.05 * Eigen::MatrixXd::Identity(A.rows(), A.rows())).ldlt().solve(A * t);
            for (Index j = 0; j < cs->size(); ++j) REQUIRE_THAT(cs->weights[j], WithinRel(z[j], 1e-8));
        }
    }
}

TEST_CASE("GradMatch random_fill: tops up to the budget with distinct unselected rows of weight 1",
          "[grad_match][cords]") {
    const Index n = 200, d = 6;
    const Eigen::MatrixXd G = gaussian<double>(n, d, 91);
    GradMatchOptions o = GradMatchOptions::cords();  // lambda 0.5: stops near 0.8 d atoms
    o.random_fill = false;
    const auto bare = GradMatch(o).select(G, 40);
    REQUIRE(bare.size() < 40);
    o.random_fill = true;
    o.seed = 5;
    const auto filled = GradMatch(o).select(G, 40);
    require_valid(filled, n);
    REQUIRE(filled.size() == 40);
    REQUIRE(filled.status == bare.status);
    REQUIRE(filled.objective == bare.objective);
    for (Index j = 0; j < bare.size(); ++j) {
        REQUIRE(filled.indices[static_cast<std::size_t>(j)] == bare.indices[static_cast<std::size_t>(j)]);
        REQUIRE(filled.weights[j] == bare.weights[j]);
    }
    for (Index j = bare.size(); j < 40; ++j) REQUIRE(filled.weights[j] == 1.0);
    // Deterministic by seed; another seed draws other rows.
    REQUIRE(GradMatch(o).select(G, 40).indices == filled.indices);
    o.seed = 6;
    REQUIRE(GradMatch(o).select(G, 40).indices != filled.indices);
    // Per class: filled after merging, over all rows, to the total budget; with the Ceil split the
    // classes may already exceed it, and then nothing is added.
    const Eigen::VectorXi y = coreset_test::round_robin_labels(n, 3);
    const auto per_class = GradMatch(o).select(G, y, 60);
    require_valid(per_class, n);
    REQUIRE(per_class.size() == 60);
    o.random_fill = false;
    const auto per_class_bare = GradMatch(o).select(G, y, 60);
    REQUIRE(per_class_bare.size() < 60);
    for (Index j = 0; j < per_class_bare.size(); ++j)
        REQUIRE(per_class.indices[static_cast<std::size_t>(j)] == per_class_bare.indices[static_cast<std::size_t>(j)]);
    // Per batch: filled in rows.
    o.random_fill = true;
    const auto batches = GradMatch(o).select_batches(G, 10, 150);
    require_valid(batches, n);
    REQUIRE(batches.size() == 150);
}

TEST_CASE("GradMatch per class with ClassBudget::Ceil: ceil(k n_c / n) atoms at most per class", "[grad_match][cords]") {
    const Index n = 100, d = 5;
    const Eigen::MatrixXd G = gaussian<double>(n, d, 93).cwiseAbs();
    Eigen::VectorXi y(n);
    for (Index i = 0; i < n; ++i) y[i] = i < 13 ? 0 : (i < 50 ? 1 : 2);  // sizes 13, 37, 50
    GradMatchOptions o;
    o.lambda = 0;
    o.tolerance = 0;
    o.class_budget = ClassBudget::Ceil;
    const auto cs = GradMatch(o).select(G, y, 10);  // ceil(1.3), ceil(3.7), ceil(5) = 2, 4, 5
    require_valid(cs, n);
    Index count[3] = {0, 0, 0};
    for (Index i : cs.indices) ++count[y[i]];
    REQUIRE(count[0] == 2);
    REQUIRE(count[1] == 4);
    REQUIRE(count[2] == 5);
    REQUIRE(cs.size() == 11);  // more than the budget, as in CORDS
}
