// SPDX-License-Identifier: MIT
// Ready-made callbacks: PrintProgress's lines against the selection they report, its schedule and
// stream hygiene; TimeLimit's stops; both through the engine and through a selector.
#include <algorithm>
#include <chrono>
#include <coreset/callbacks.hpp>
#include <coreset/adacore.hpp>
#include <coreset/craig.hpp>
#include <coreset/grad_match.hpp>
#include <coreset/facility_location.hpp>
#include <iomanip>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace coreset;
using coreset_test::gaussian;
using coreset_test::message_is;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

std::string six_digits(double v) {
    std::ostringstream os;
    os << std::setprecision(6) << v;
    return os.str();
}

// Sleeps on every pick, so that a time limit is reached after a known number of picks at the latest.
struct Sleeper {
    std::chrono::milliseconds each;
    int calls = 0;
    void on_step(const StepInfo&) {
        ++calls;
        std::this_thread::sleep_for(each);
    }
};

}  // namespace

TEMPLATE_TEST_CASE("PrintProgress writes the due picks with the selection's own values", "[callbacks]", float, double) {
    const auto x = gaussian<TestType>(60, 4, 11);
    std::ostringstream log;
    const auto s = facility_location(x, 10, {}, PrintProgress(log, 3, 10));
    REQUIRE(s.status == Status::BudgetReached);
    REQUIRE(s.size() == 10);
    const auto lines = lines_of(log.str());
    // Due: the first pick, every third, and the last (total = 10).
    const std::vector<Eigen::Index> due = {1, 3, 6, 9, 10};
    REQUIRE(lines.size() == due.size());
    const std::regex form(R"(^pick (\d+)/10: row (\d+), gain (\S+), objective (\S+), (\d+\.\d) s$)");
    double previous_objective = 0;
    for (std::size_t l = 0; l < lines.size(); ++l) {
        std::smatch m;
        INFO(lines[l]);
        REQUIRE(std::regex_match(lines[l], m, form));
        const Eigen::Index pick = std::stol(m[1]);
        REQUIRE(pick == due[l]);
        const auto t = static_cast<std::size_t>(pick - 1);
        CHECK(std::stol(m[2]) == s.indices[t]);
        CHECK(m[4] == six_digits(s.objective[t]));
        const double gain = s.objective[t] - (t == 0 ? 0.0 : s.objective[t - 1]);
        CHECK_THAT(std::stod(m[3]), Catch::Matchers::WithinRel(gain, 1e-5));
        CHECK(std::stod(m[4]) >= previous_objective);
        previous_objective = std::stod(m[4]);
    }
}

TEST_CASE("PrintProgress: every pick, no total, a label, and the stream's format restored", "[callbacks]") {
    const auto x = gaussian<double>(30, 3, 12);
    std::ostringstream log;
    log << std::scientific << std::setprecision(2);
    const auto s = facility_location(x, 4, {}, PrintProgress(log, 1, 0, "rank 1: "));
    const auto lines = lines_of(log.str());
    REQUIRE(lines.size() == 4);
    for (std::size_t l = 0; l < lines.size(); ++l) {
        INFO(lines[l]);
        const std::string head = "rank 1: pick " + std::to_string(l + 1) + ": row " + std::to_string(s.indices[l]) + ", ";
        CHECK(lines[l].rfind(head, 0) == 0);
    }
    // The caller's formatting survives the callback.
    CHECK(log.precision() == 2);
    CHECK((log.flags() & std::ios::floatfield) == std::ios::scientific);
    std::ostringstream probe;
    probe << std::scientific << std::setprecision(2) << 1234.5;
    log.str("");
    log << 1234.5;
    CHECK(log.str() == probe.str());
}

TEST_CASE("PrintProgress: a large interval still reports the first and the last pick", "[callbacks]") {
    const auto x = gaussian<float>(40, 3, 13);
    std::ostringstream with_total, without_total;
    (void)facility_location(x, 7, {}, PrintProgress(with_total, 1000, 7));
    (void)facility_location(x, 7, {}, PrintProgress(without_total, 1000));
    const auto a = lines_of(with_total.str()), b = lines_of(without_total.str());
    REQUIRE(a.size() == 2);
    CHECK(a[0].rfind("pick 1/7: ", 0) == 0);
    CHECK(a[1].rfind("pick 7/7: ", 0) == 0);
    REQUIRE(b.size() == 1);
    CHECK(b[0].rfind("pick 1: ", 0) == 0);
}

TEST_CASE("PrintProgress never stops a selection and works through a selector", "[callbacks]") {
    const auto x = gaussian<float>(50, 5, 14);
    std::ostringstream log;
    const Craig craig;
    const auto with = craig.select(x, 12, PrintProgress(log, 5, 12));
    const auto without = craig.select(x, 12);
    CHECK(with.status == Status::BudgetReached);
    CHECK(with.indices == without.indices);
    CHECK(lines_of(log.str()).size() == 4);  // picks 1, 5, 10, 12
}

TEST_CASE("Callbacks reject invalid arguments", "[callbacks]") {
    std::ostringstream log;
    REQUIRE_THROWS_MATCHES(PrintProgress(log, 0), std::invalid_argument,
                           message_is("PrintProgress::PrintProgress(): every must satisfy every >= 1 (got 0)"));
    REQUIRE_THROWS_MATCHES(PrintProgress(log, 1, -2), std::invalid_argument,
                           message_is("PrintProgress::PrintProgress(): total must satisfy total >= 0 (got -2)"));
    REQUIRE_THROWS_MATCHES(TimeLimit(-1.5), std::invalid_argument,
                           message_is("TimeLimit::TimeLimit(): seconds must satisfy seconds >= 0 (got -1.5)"));
    REQUIRE_THROWS_MATCHES(TimeLimit(std::nan("")), std::invalid_argument,
                           message_is("TimeLimit::TimeLimit(): seconds must satisfy seconds >= 0 (got nan)"));
}

TEMPLATE_TEST_CASE("TimeLimit stops with the picks made so far", "[callbacks]", float, double) {
    const auto x = gaussian<TestType>(80, 4, 15);
    const auto full = facility_location(x, 20);

    SECTION("a zero limit stops after the first pick") {
        const auto s = facility_location(x, 20, {}, TimeLimit(0.0));
        CHECK(s.status == Status::StoppedByCallback);
        REQUIRE(s.size() == 1);
        CHECK(s.indices[0] == full.indices[0]);
        CHECK_THAT(s.weights.sum(), Catch::Matchers::WithinRel(80.0, 1e-6));
    }
    SECTION("a distant limit changes nothing") {
        const auto s = facility_location(x, 20, {}, TimeLimit(1e9));
        CHECK(s.status == Status::BudgetReached);
        CHECK(s.indices == full.indices);
    }
    SECTION("a limit reached mid-way stops at the first pick after it, a prefix of the full run") {
        // Each pick sleeps 20 ms, so 50 ms have passed after the third pick at the latest.
        Sleeper sleeper{std::chrono::milliseconds(20)};
        const auto s = facility_location(x, 20, {}, sleeper, TimeLimit(0.05));
        CHECK(s.status == Status::StoppedByCallback);
        REQUIRE(s.size() >= 1);
        REQUIRE(s.size() <= 3);
        CHECK(sleeper.calls == s.size());  // an lvalue callback is used by reference
        for (Eigen::Index t = 0; t < s.size(); ++t) CHECK(s.indices[static_cast<std::size_t>(t)] == full.indices[static_cast<std::size_t>(t)]);
        CHECK_THAT(s.weights.template cast<double>().sum(), Catch::Matchers::WithinRel(80.0, 1e-9));
    }
}

TEST_CASE("PrintProgress reports the pick at which TimeLimit stops", "[callbacks]") {
    const auto x = gaussian<double>(40, 3, 16);
    std::ostringstream log;
    const auto s = facility_location(x, 10, {}, PrintProgress(log, 100, 10), TimeLimit(0.0));
    REQUIRE(s.size() == 1);
    const auto lines = lines_of(log.str());
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].rfind("pick 1/10: row " + std::to_string(s.indices[0]) + ", ", 0) == 0);
}

namespace {

// Records every step it sees; stops after `stop_after` steps (0 = never).
struct Recorder {
    std::vector<StepInfo> steps;
    std::size_t stop_after = 0;
    bool on_step(const StepInfo& info) {
        steps.push_back(info);
        return stop_after != 0 && steps.size() >= stop_after;
    }
};

// A callback's view of a merged selection: the global row picked at each step, the merged
// objective, one step count over all classes.
template <class Scalar>
void require_relayed(const Coreset<Scalar>& result, const Recorder& rec) {
    REQUIRE(rec.steps.size() == result.indices.size());
    for (std::size_t t = 0; t < rec.steps.size(); ++t) {
        CHECK(rec.steps[t].step == static_cast<Eigen::Index>(t));
        CHECK(rec.steps[t].picked == result.indices[t]);
        CHECK(rec.steps[t].objective == result.objective[t]);
    }
}

Eigen::VectorXi three_classes(Eigen::Index n) {
    Eigen::VectorXi y(n);
    for (Eigen::Index i = 0; i < n; ++i) y[i] = static_cast<int>((i * 5) % 3);
    return y;
}

}  // namespace

TEST_CASE("Every per-class and per-batch select takes callbacks, which see the merged selection", "[callbacks]") {
    const Eigen::MatrixXd x = gaussian<double>(90, 4, 11);
    const Eigen::VectorXi y = three_classes(90);
    const Craig craig;
    SECTION("Craig per class: same result as without callbacks, global rows, F of the union") {
        Recorder rec;
        const auto with = craig.select(x, y, 12, rec);
        const auto without = craig.select(x, y, 12);
        CHECK(with.indices == without.indices);
        CHECK(with.weights == without.weights);
        CHECK(with.objective == without.objective);
        require_relayed(with, rec);
    }
    SECTION("Craig per class: a stop skips the classes not yet selected") {
        Recorder rec;
        rec.stop_after = 2;
        const auto cut = craig.select(x, y, 12, rec);
        CHECK(cut.status == Status::StoppedByCallback);
        CHECK(cut.size() == 2);
        CHECK(rec.steps.size() == 2);
        const auto full = craig.select(x, y, 12);
        CHECK(std::vector<Eigen::Index>(full.indices.begin(), full.indices.begin() + 2) == cut.indices);
    }
    SECTION("Craig per batch: callbacks see batch indices") {
        Recorder rec;
        const auto b = craig.select_batches(x, 10, 30, rec);
        REQUIRE(rec.steps.size() == 3);
        for (std::size_t t = 0; t < 3; ++t) CHECK(rec.steps[t].picked == b.indices[t * 10] / 10);
        CHECK(b.indices == craig.select_batches(x, 10, 30).indices);
    }
    SECTION("AdaCore per class") {
        AdaCore<double> ada(90);
        ada.update(x, Eigen::MatrixXd::Constant(90, 4, 0.5));
        Recorder rec;
        const auto with = ada.select(y, 9, rec);
        CHECK(with.indices == ada.select(y, 9).indices);
        require_relayed(with, rec);
    }
    SECTION("GradMatch per class and towards a Target") {
        const GradMatch gm;
        Recorder rec;
        const auto with = gm.select(x, y, 9, rec);
        CHECK(with.indices == gm.select(x, y, 9).indices);
        // OMP reports every pick, also an atom that later leaves the support: each returned row
        // was reported (as a global row), and the steps are numbered over all classes.
        REQUIRE(rec.steps.size() >= with.indices.size());
        for (std::size_t t = 0; t < rec.steps.size(); ++t) CHECK(rec.steps[t].step == static_cast<Eigen::Index>(t));
        for (Eigen::Index i : with.indices)
            CHECK(std::any_of(rec.steps.begin(), rec.steps.end(), [&](const StepInfo& s) { return s.picked == i; }));
        Recorder rt;
        const Eigen::VectorXd target = x.colwise().sum().transpose();
        const auto towards = gm.select(x, Target(target), 9, rt);
        CHECK(towards.indices == gm.select(x, 9).indices);  // the column sum is the default target
        REQUIRE(rt.steps.size() >= towards.indices.size());
        CHECK(rt.steps.back().objective == towards.objective.back());
    }
}

TEST_CASE("num_threads: validated, and the same result for 1 and 2 threads", "[callbacks][threads]") {
    CraigOptions bad;
    bad.num_threads = -1;
    CHECK_THROWS_MATCHES(Craig(bad), std::invalid_argument,
                         message_is("CraigOptions::validate(): num_threads must satisfy num_threads >= 0 (got -1)"));
    const Eigen::MatrixXf x = gaussian<float>(400, 8, 3);
    const Eigen::VectorXi y = three_classes(400);
    CraigOptions one, two;
    one.num_threads = 1;
    two.num_threads = 2;
    const auto a = Craig(one).select(x, y, 40), b = Craig(two).select(x, y, 40);
    CHECK(a.indices == b.indices);
    CHECK(a.weights == b.weights);
    GradMatchOptions g1, g2;
    g1.num_threads = 1;
    g2.num_threads = 2;
    CHECK(GradMatch(g1).select(x, 30).weights == GradMatch(g2).select(x, 30).weights);
}
