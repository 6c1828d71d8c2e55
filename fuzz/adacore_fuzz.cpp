// SPDX-License-Identifier: MIT
// libFuzzer harness: AdaCore as a trainer drives it, a sequence of full and partial updates,
// selections, preconditioning and resets decoded from the bytes. Every call must either succeed
// with valid results or throw: std::invalid_argument for bad values (naming AdaCore), and
// std::logic_error before every row has an observation. A call that throws must leave the state
// exactly as it was.
#include <coreset/adacore.hpp>

#include "fuzz_support.hpp"

using namespace coreset;
using namespace coreset_fuzz;

namespace {

enum class Outcome { Ok, Invalid, Logic };

template <class Fn>
Outcome attempt(Fn&& call, std::string& message) {
    try {
        call();
    } catch (const std::invalid_argument& e) {
        message = e.what();
        expect(message.rfind("AdaCore", 0) == 0, "message does not name AdaCore: " + message);
        expect(contains(message, "(got "), "message without (got ...): " + message);
        return Outcome::Invalid;
    } catch (const std::logic_error& e) {
        message = e.what();
        expect(message.rfind("AdaCore::", 0) == 0, "message does not name AdaCore: " + message);
        return Outcome::Logic;
    }
    return Outcome::Ok;
}

/// Everything observable about the state, for before/after comparisons.
template <class Scalar>
struct Snapshot {
    Index dim;
    std::vector<std::int64_t> steps;
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> g, h;
    static bool same(const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& a,
                     const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>& b) {
        return a.rows() == b.rows() && a.cols() == b.cols() &&
               (a.size() == 0 ||
                std::memcmp(a.data(), b.data(), sizeof(Scalar) * static_cast<std::size_t>(a.size())) == 0);
    }
    bool operator==(const Snapshot& o) const { return dim == o.dim && steps == o.steps && same(g, o.g) && same(h, o.h); }
};
template <class Scalar>
Snapshot<Scalar> snapshot(const AdaCore<Scalar>& a) {
    Snapshot<Scalar> s{a.dim(), a.steps(), {}, {}};
    const bool all = std::all_of(s.steps.begin(), s.steps.end(), [](std::int64_t t) { return t > 0; });
    if (a.dim() > 0 && all) {
        s.g = a.smoothed_gradients();
        s.h = a.smoothed_curvature();
    }
    return s;
}

template <class Scalar>
void run(Bytes& in, bool bad_allowed) {
    using M = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
    const Index n = in.range(1, 24);
    AdaCoreOptions o;
    const double b1[] = {0.9, 0.0, 0.5}, b2[] = {0.999, 0.0, 0.5}, eps[] = {1e-4, 0.0, 1.0}, pw[] = {1.0, 0.5, 0.0, 0.3};
    o.beta1 = b1[in.byte() % 3];
    o.beta2 = b2[in.byte() % 3];
    o.eps = eps[in.byte() % 3];
    o.hessian_power = pw[in.byte() % 4];
    o.metric = static_cast<Metric>(in.byte() % 3);
    o.greedy = static_cast<Greedy>(in.byte() % 3);
    o.seed = in.word(2);
    o.class_budget = static_cast<ClassBudget>(in.byte() % 2);
    if (in.flag()) o.memory_budget_bytes = std::size_t(1) << in.range(10, 22);
    if (bad_allowed && in.rarely(10)) {
        switch (in.byte() % 4) {
            case 0: o.beta1 = 1; break;
            case 1: o.eps = -1; break;
            case 2: o.hessian_power = std::numeric_limits<double>::quiet_NaN(); break;
            default: o.epsilon = 0; break;
        }
        std::string m;
        expect(attempt([&] { AdaCore<Scalar> bad(n, o); }, m) == Outcome::Invalid, "bad options accepted");
        return;
    }
    note(std::string(sizeof(Scalar) == 4 ? "float" : "double") + " n " + std::to_string(n) + ", beta1 " +
         std::to_string(o.beta1) + ", beta2 " + std::to_string(o.beta2) + ", eps " + std::to_string(o.eps) +
         ", power " + std::to_string(o.hessian_power) + ", metric " + to_string(o.metric));
    AdaCore<Scalar> ada(n, o);
    std::vector<bool> seen(static_cast<std::size_t>(n), false);

    for (int op = 0; op < 12 && !in.exhausted(); ++op) {
        const Snapshot<Scalar> before = snapshot(ada);
        const bool observed = ada.dim() > 0 && std::all_of(seen.begin(), seen.end(), [](bool s) { return s; });
        std::string message;
        bool bad = false;
        Outcome expected = Outcome::Ok;  // Ok means "Ok, or an allowed numerical refusal"
        Outcome got = Outcome::Ok;
        const int kind = in.byte() % 6;
        if (kind == 0 || kind == 1) {
            // An update: full (kind 0) or of listed rows (kind 1).
            Index d = ada.dim() > 0 ? ada.dim() : in.range(1, 5);
            if (bad_allowed && in.rarely(12)) {
                d = in.range(0, 6);
                if (d == 0 || (ada.dim() > 0 && d != ada.dim())) bad = true;
            }
            std::vector<Index> rows;
            if (kind == 0) {
                for (Index i = 0; i < n; ++i) rows.push_back(i);
            } else {
                std::vector<Index> pool;
                for (Index i = 0; i < n; ++i) pool.push_back(i);
                const Index k = in.range(1, n);
                for (Index t = 0; t < k; ++t) {
                    const Index at = in.range(0, static_cast<Index>(pool.size()) - 1);
                    rows.push_back(pool[static_cast<std::size_t>(at)]);
                    pool.erase(pool.begin() + at);
                }
            }
            Index m = static_cast<Index>(rows.size());
            if (bad_allowed && in.rarely(12)) {
                if (kind == 1 && in.flag())
                    rows.push_back(in.flag() ? rows.front() : n + in.byte());  // repeated or out of range
                else
                    m += in.flag() ? 1 : -1;
                bad = true;
            }
            const M g = in.matrix<Scalar>(m, d, bad_allowed, bad);
            const M h = in.matrix<Scalar>(m, d, bad_allowed, bad);
            if (m == 0 || d == 0) bad = true;
            note("update " + std::string(kind == 0 ? "full" : "listed") + " " + std::to_string(m) + " x " +
                 std::to_string(d) + " rows " + std::to_string(rows.size()) + (bad ? " invalid" : ""));
            if (verbose()) note(show(g) + "h\n" + show(h));
            got = attempt(
                [&] {
                    if (kind == 0)
                        ada.update(g, h);
                    else
                        ada.update(rows, g, h);
                },
                message);
            expected = bad ? Outcome::Invalid : Outcome::Ok;
            expect(got == expected, "update: unexpected outcome " + message);
            if (got == Outcome::Ok)
                for (Index i : rows) seen[static_cast<std::size_t>(i)] = true;
        } else if (kind == 2 || kind == 3) {
            Index budget = in.range(1, n);
            if (bad_allowed && in.rarely(10)) {
                budget = in.flag() ? 0 : n + 1;
                bad = true;
            }
            Eigen::Matrix<Index, Eigen::Dynamic, 1> y;
            if (kind == 3) {
                y = in.labels(n, in.range(1, 4), bad_allowed, bad);
                if (bad_allowed && in.rarely(12)) {
                    y = Eigen::Matrix<Index, Eigen::Dynamic, 1>::Zero(n + 1);
                    bad = true;
                }
            }
            note("select budget " + std::to_string(budget) + (kind == 3 ? " per class" : "") +
                 (bad ? " invalid" : "") + (observed ? "" : " unobserved"));
            Coreset<Scalar> c;
            got = attempt([&] { c = kind == 2 ? ada.select(budget) : ada.select(y, budget); }, message);
            expected = bad ? Outcome::Invalid : observed ? Outcome::Ok : Outcome::Logic;
            if (got == Outcome::Ok) {
                expect(expected == Outcome::Ok, "select: accepted a call that must fail");
                // The objective is in the units of u: past double's range it is +inf, as its true value.
                const M u = ada.preconditioned();
                const double big = static_cast<double>(u.cwiseAbs().maxCoeff());
                const double far = o.metric == Metric::Cosine            ? 2.0
                                   : o.metric == Metric::Euclidean ? 2 * big * std::sqrt(static_cast<double>(u.cols()))
                                                                   : 4 * big * big * static_cast<double>(u.cols());
                check_coreset(c, n, budget, "AdaCore::select", !(far * static_cast<double>(n) < 1e300));
                // Weights sum to n, or per class to the sizes of the classes with picks (a budget
                // below the number of classes leaves some out).
                double mass = static_cast<double>(n);
                if (kind == 3) {
                    std::set<Index> picked;
                    for (Index i : c.indices) picked.insert(y[i]);
                    mass = 0;
                    for (Index i = 0; i < n; ++i) mass += picked.count(y[i]) ? 1.0 : 0.0;
                }
                const double total = c.weights.template cast<double>().sum();
                expect(std::abs(total - mass) <= 1e-6 * mass, "weights do not sum to the represented rows");
            } else if (got != expected) {
                // A valid call may only be refused for a non-finite u, a zero row under Cosine, or memory.
                expect(expected == Outcome::Ok && got == Outcome::Invalid &&
                           (contains(message, "must be finite") || contains(message, "no zero row") ||
                            contains(message, "memory_budget_bytes must be at least")),
                       "select: unexpected outcome " + message);
            }
        } else if (kind == 4) {
            M u;
            got = attempt([&] { u = ada.preconditioned(); }, message);
            expected = observed ? Outcome::Ok : Outcome::Logic;
            if (got == Outcome::Ok) {
                expect(expected == Outcome::Ok, "preconditioned before every row was observed");
                expect(u.rows() == n && u.cols() == ada.dim() && u.allFinite(), "preconditioned rows");
            } else {
                expect(got == expected || (expected == Outcome::Ok && contains(message, "must be finite")),
                       "preconditioned: unexpected outcome " + message);
            }
        } else if (kind == 5 && in.rarely(3)) {
            ada.reset();
            std::fill(seen.begin(), seen.end(), false);
            expect(ada.dim() == 0, "reset keeps a dimension");
            continue;
        }
        if (got != Outcome::Ok) expect(snapshot(ada) == before, "a rejected call changed the state");
        if (kind >= 2) expect(snapshot(ada) == before, "a const call changed the state");
    }
}

}  // namespace

CORESET_FUZZ_ENTRY(run)
