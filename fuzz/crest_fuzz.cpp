// SPDX-License-Identifier: MIT
// libFuzzer harness: Crest's state machine driven by a decoded sequence of calls (candidates,
// select, next_batch, begin_region, record_update, check, model_loss, check_indices, is_active),
// in any order and with good and bad arguments. The harness keeps its own model of which calls are
// allowed: an out-of-order call must throw std::logic_error, a bad argument std::invalid_argument,
// both naming the call, and a call that throws must leave every observable part of the state as it
// was. Accepted calls must give valid subsets and coresets.
#include <coreset/crest.hpp>

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
        expect(message.rfind("Crest", 0) == 0, "message does not name Crest: " + message);
        expect(contains(message, "(got "), "message without (got ...): " + message);
        return Outcome::Invalid;
    } catch (const std::logic_error& e) {
        message = e.what();
        expect(message.rfind("Crest::", 0) == 0, "message does not name Crest: " + message);
        return Outcome::Logic;
    }
    return Outcome::Ok;
}

bool same_double(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

struct Snapshot {
    CrestStats s;
    std::vector<Index> active;
    bool region, should_check;
    std::vector<std::vector<Index>> batches;
    std::vector<Eigen::VectorXd> weights;
    bool operator==(const Snapshot& o) const {
        return s.selections == o.s.selections && s.checks == o.s.checks && s.reselections == o.s.reselections &&
               s.steps == o.s.steps && s.region_steps == o.s.region_steps && s.interval == o.s.interval &&
               s.coresets == o.s.coresets && s.pool_size == o.s.pool_size && s.dropped == o.s.dropped &&
               same_double(s.last_rho, o.s.last_rho) && same_double(s.last_true_loss, o.s.last_true_loss) &&
               same_double(s.last_model_loss, o.s.last_model_loss) && active == o.active && region == o.region &&
               should_check == o.should_check && batches == o.batches && weights == o.weights;
    }
};
Snapshot snapshot(const Crest& c) {
    Snapshot s{c.stats(), c.active(), c.in_region(), c.should_check(), {}, {}};
    for (const auto& b : c.coresets()) {
        s.batches.push_back(b.indices);
        s.weights.push_back(b.weights);
    }
    return s;
}

template <class Scalar>
void run(Bytes& in, bool bad_allowed) {
    using M = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
    const Index n = in.range(1, 48);
    bool bad_labels = false;
    const Eigen::Matrix<Index, Eigen::Dynamic, 1> labels = in.labels(n, in.range(1, 4), bad_allowed, bad_labels);
    CrestOptions o;
    o.batch_size = in.range(1, 8);
    const double fractions[] = {0.1, 0.3, 0.5, 1.0, 1e-6};
    o.subset_fraction = fractions[in.byte() % 5];
    o.initial_coresets = in.range(1, 3);
    o.max_coresets = o.initial_coresets + in.range(0, 3);
    const double muls[] = {0.5, 1.0, 5.0};
    o.batch_num_mul = muls[in.byte() % 3];
    o.interval_mul = muls[in.byte() % 3];
    const double taus[] = {0.0, 0.05, 1.0};
    o.tau = taus[in.byte() % 3];
    o.drop_learned = in.flag();
    const double alphas[] = {0.0, 0.1, 1.0};
    o.alpha = alphas[in.byte() % 3];
    o.drop_interval = in.range(1, 3);
    o.watch_window = in.range(1, 3);
    const double pools[] = {0.0, 0.5, 0.8, 1.0};
    o.min_pool_fraction = pools[in.byte() % 4];
    o.metric = static_cast<Metric>(in.byte() % 3);
    o.greedy = static_cast<Greedy>(in.byte() % 3);
    o.class_budget = static_cast<ClassBudget>(in.byte() % 2);
    o.seed = in.word(4);
    bool bad_options = false;
    if (bad_allowed && in.rarely(10)) {
        switch (in.byte() % 4) {
            case 0: o.batch_size = 0; break;
            case 1: o.subset_fraction = 0; break;
            case 2: o.max_coresets = o.initial_coresets - 1; break;
            default: o.tau = std::numeric_limits<double>::quiet_NaN(); break;
        }
        bad_options = true;
    }
    std::string message;
    if (bad_labels || bad_options) {
        expect(attempt([&] { Crest c(labels, o); }, message) == Outcome::Invalid, "bad labels or options accepted");
        return;
    }
    note(std::string(sizeof(Scalar) == 4 ? "float" : "double") + " n " + std::to_string(n) + ", m " +
         std::to_string(o.batch_size) + ", fraction " + std::to_string(o.subset_fraction) + ", P " +
         std::to_string(o.initial_coresets) + ".." + std::to_string(o.max_coresets) + ", metric " +
         to_string(o.metric) + ", greedy " + to_string(o.greedy));
    Crest crest(labels, o);
    expect(crest.size() == n, "size");

    // The harness's model of the state machine.
    bool pending = false, selected = false, region = false;
    Index R = 0, dim = 0;
    std::vector<std::vector<Index>> subsets;
    for (int op = 0; op < 24 && !in.exhausted(); ++op) {
        const Snapshot before = snapshot(crest);
        Outcome expected = Outcome::Ok, got = Outcome::Ok;
        bool bad = false;
        message.clear();
        const int call = in.byte() % 9;
        note("call " + std::to_string(call));
        switch (call) {
            case 0: {  // candidates
                const Index P = crest.stats().coresets;
                CrestCandidates c = crest.candidates();
                expect(static_cast<Index>(c.subsets.size()) == P, "candidates: P subsets");
                Index total = 0;
                for (const auto& s : c.subsets) {
                    std::set<Index> seen;
                    for (Index i : s) {
                        expect(i >= 0 && i < n, "candidates: index out of range");
                        expect(crest.is_active(i), "candidates: inactive row");
                        expect(seen.insert(i).second, "candidates: row twice in a subset");
                    }
                    total += static_cast<Index>(s.size());
                }
                expect(total == c.size(), "candidates: concatenation");
                pending = true;
                R = c.size();
                subsets = c.subsets;
                continue;
            }
            case 1: {  // select
                Index rows = R, cols = in.range(1, 4);
                if (bad_allowed && in.rarely(10)) {
                    rows = R + (in.flag() ? 1 : -1);
                    bad = true;
                }
                if (bad_allowed && in.rarely(16)) {
                    cols = 0;
                    bad = true;
                }
                rows = std::max<Index>(rows, 0);
                const M g = in.matrix<Scalar>(rows, cols, bad_allowed, bad);
                bool bad_loss = false;
                Eigen::VectorXd loss = in.matrix<double>(R, 1, bad_allowed, bad_loss).col(0).cwiseAbs();
                if (bad_loss) bad = true;
                if (o.metric == Metric::Cosine)
                    for (Index i = 0; i < g.rows(); ++i)
                        if (g.cols() > 0 && !(g.row(i).cwiseAbs().maxCoeff() > 0)) bad = true;
                got = attempt([&] { crest.select(g, loss); }, message);
                expected = !pending ? Outcome::Logic : bad ? Outcome::Invalid : Outcome::Ok;
                expect(got == expected, "select: unexpected outcome " + message);
                if (got != Outcome::Ok) break;
                pending = false;
                selected = true;
                const auto& batches = crest.coresets();
                expect(batches.size() == subsets.size(), "select: one coreset per subset");
                double sum = 0;
                Index count = 0;
                for (std::size_t p = 0; p < batches.size(); ++p) {
                    const auto& b = batches[p];
                    const auto& s = subsets[p];
                    expect(b.size() >= 1 || s.empty(), "select: empty coreset");
                    expect(b.size() <= std::min<Index>(o.batch_size, static_cast<Index>(s.size())) ||
                               b.size() <= static_cast<Index>(s.size()),
                           "select: coreset larger than its subset");
                    std::set<Index> seen;
                    for (Index j = 0; j < b.size(); ++j) {
                        const Index i = b.indices[static_cast<std::size_t>(j)];
                        expect(std::find(s.begin(), s.end(), i) != s.end(), "select: row not in its subset");
                        expect(seen.insert(i).second, "select: row twice in a coreset");
                        expect(std::isfinite(b.weights[j]) && b.weights[j] > 0, "select: bad weight");
                        sum += b.weights[j];
                        ++count;
                    }
                }
                if (count > 0) expect(std::abs(sum / count - 1) <= 1e-9, "select: weights do not have mean 1");
                const auto& check = crest.check_indices();
                expect(std::is_sorted(check.begin(), check.end()) &&
                           std::adjacent_find(check.begin(), check.end()) == check.end(),
                       "check_indices not ascending and unique");
                expect(crest.stats().pool_size >= crest.min_pool_size(), "pool below its minimum");
                continue;
            }
            case 2: {  // next_batch
                CrestBatch b;
                got = attempt([&] { b = crest.next_batch(); }, message);
                expected = selected ? Outcome::Ok : Outcome::Logic;
                expect(got == expected, "next_batch: unexpected outcome " + message);
                if (got == Outcome::Ok) {
                    expect(b.size() == b.weights.size(), "next_batch: weights");
                    // next_batch advances a cursor only: compare everything else.
                    continue;
                }
                break;
            }
            case 3: {  // begin_region
                Index D = dim > 0 ? dim : in.range(1, 5);
                if (bad_allowed && in.rarely(10)) {
                    D = in.range(0, 6);
                    if (D == 0 || (dim > 0 && D != dim)) bad = true;
                }
                double loss0 = std::abs(static_cast<double>(in.byte()) / 8);
                if (bad_allowed && in.rarely(12)) {
                    loss0 = in.flag() ? -1.0 : std::numeric_limits<double>::quiet_NaN();
                    bad = true;
                }
                const Eigen::VectorXd g = in.matrix<double>(D, 1, bad_allowed, bad).col(0);
                Eigen::VectorXd h = in.matrix<double>(D, 1, bad_allowed, bad).col(0);
                // Rejected: a zero h only (norms are kept as mantissa and exponent, so 1e-200 and
                // 1e200 are accepted; fuzz/regressions/crest/tiny-hessian-norm).
                if (h.size() > 0 && h.allFinite() && !(h.cwiseAbs().maxCoeff() > 0)) bad = true;
                got = attempt([&] { crest.begin_region(loss0, g, h); }, message);
                expected = !selected ? Outcome::Logic : bad ? Outcome::Invalid : Outcome::Ok;
                expect(got == expected, "begin_region: unexpected outcome " + message);
                if (got == Outcome::Ok) {
                    region = true;
                    dim = D;
                    expect(crest.in_region() && crest.stats().region_steps == 0, "begin_region: region state");
                    expect(crest.stats().coresets >= 1 && crest.stats().coresets <= o.max_coresets, "begin_region: P");
                }
                break;
            }
            case 4: {  // record_update
                Index D = dim;
                if (bad_allowed && in.rarely(10)) {
                    D = dim + 1;
                    bad = true;
                }
                const Eigen::VectorXd delta = in.matrix<double>(D, 1, bad_allowed, bad).col(0);
                got = attempt([&] { crest.record_update(delta); }, message);
                expected = !region ? Outcome::Logic : bad ? Outcome::Invalid : Outcome::Ok;
                expect(got == expected, "record_update: unexpected outcome " + message);
                break;
            }
            case 5: {  // check
                double truth = static_cast<double>(in.byte()) / 16;
                if (bad_allowed && in.rarely(10)) {
                    truth = in.flag() ? -0.5 : std::numeric_limits<double>::infinity();
                    bad = true;
                }
                bool reselect = false;
                got = attempt([&] { reselect = crest.check(truth); }, message);
                expected = !region ? Outcome::Logic : bad ? Outcome::Invalid : Outcome::Ok;
                expect(got == expected, "check: unexpected outcome " + message);
                if (got == Outcome::Ok) {
                    expect(!crest.should_check(), "check: should_check right after a check");
                    if (reselect) region = false;
                    expect(crest.in_region() == region, "check: region state");
                }
                break;
            }
            case 6: {  // model_loss
                got = attempt([&] { (void)crest.model_loss(); }, message);
                expected = region ? Outcome::Ok : Outcome::Logic;
                expect(got == expected, "model_loss: unexpected outcome " + message);
                break;
            }
            case 7: {  // check_indices
                got = attempt([&] { (void)crest.check_indices(); }, message);
                expected = selected ? Outcome::Ok : Outcome::Logic;
                expect(got == expected, "check_indices: unexpected outcome " + message);
                break;
            }
            default: {  // is_active
                const Index i = in.range(-2, n + 1);
                got = attempt([&] { (void)crest.is_active(i); }, message);
                expected = i >= 0 && i < n ? Outcome::Ok : Outcome::Invalid;
                expect(got == expected, "is_active: unexpected outcome " + message);
                break;
            }
        }
        if (got != Outcome::Ok) expect(snapshot(crest) == before, "a rejected call changed the state: " + message);
    }
}

}  // namespace

CORESET_FUZZ_ENTRY(run)
