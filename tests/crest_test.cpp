// SPDX-License-Identifier: MIT
// crest.hpp: the CREST state machine (candidates, selection with the shared engine, quadratic model,
// check / T1 / P schedule, learned-example drops) against closed forms and slow references.
#include <algorithm>
#include <cmath>
#include <coreset/craig.hpp>
#include <coreset/crest.hpp>
#include <coreset/gradients.hpp>
#include <deque>
#include <limits>
#include <map>
#include <numeric>
#include <set>

#include "test_support.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace coreset;
using coreset_test::message_is;

namespace {

using Index = Eigen::Index;
using IndexVector = Eigen::Matrix<Index, Eigen::Dynamic, 1>;

// Labels with the given class sizes, classes interleaved (row i of class i % C while it has room).
IndexVector sized_labels(const std::vector<Index>& sizes) {
    std::vector<Index> left = sizes;
    Index n = 0;
    for (Index s : sizes) n += s;
    IndexVector y(n);
    Index i = 0;
    while (i < n)
        for (std::size_t c = 0; c < left.size(); ++c)
            if (left[c] > 0) {
                y[i++] = static_cast<Index>(c);
                --left[c];
            }
    return y;
}

template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

// Rows of x for the given indices.
template <class Scalar>
Matrix<Scalar> rows_of(const Matrix<Scalar>& x, const std::vector<Index>& idx) {
    Matrix<Scalar> out(static_cast<Index>(idx.size()), x.cols());
    for (std::size_t r = 0; r < idx.size(); ++r) out.row(static_cast<Index>(r)) = x.row(idx[r]);
    return out;
}

IndexVector labels_of(const IndexVector& y, const std::vector<Index>& idx) {
    IndexVector out(static_cast<Index>(idx.size()));
    for (std::size_t r = 0; r < idx.size(); ++r) out[static_cast<Index>(r)] = y[idx[r]];
    return out;
}

CrestOptions small_options() {
    CrestOptions o;
    o.batch_size = 8;
    o.subset_fraction = 0.1;
    o.initial_coresets = 3;
    o.max_coresets = 10;
    o.drop_learned = false;
    return o;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Options and construction

TEST_CASE("crest: default options are the paper's and validate", "[crest]") {
    const CrestOptions o;
    CHECK(o.batch_size == 128);
    CHECK(o.subset_fraction == 0.01);
    CHECK(o.initial_coresets == 5);
    CHECK(o.batch_num_mul == 5);
    CHECK(o.interval_mul == 1);
    CHECK(o.tau == 0.05);
    CHECK(o.alpha == 0.1);
    CHECK(o.drop_learned);
    CHECK(o.metric == Metric::Euclidean);
    CHECK(o.greedy == Greedy::Naive);
    REQUIRE_NOTHROW(o.validate());
    const CraigOptions e = o.engine();
    CHECK(e.metric == o.metric);
    CHECK(e.greedy == o.greedy);
    CHECK(e.class_budget == o.class_budget);
}

TEST_CASE("crest: every option out of range is named", "[crest]") {
    const std::string w = "CrestOptions::validate(): ";
    auto bad = [](auto change) {
        CrestOptions o;
        change(o);
        return o;
    };
    const double nan = std::numeric_limits<double>::quiet_NaN();
    REQUIRE_THROWS_MATCHES(bad([](CrestOptions& o) { o.batch_size = 0; }).validate(), std::invalid_argument,
                           message_is(w + "batch_size must satisfy batch_size >= 1 (got 0)"));
    REQUIRE_THROWS_MATCHES(bad([](CrestOptions& o) { o.subset_fraction = 0; }).validate(),
                           std::invalid_argument,
                           message_is(w + "subset_fraction must satisfy 0 < subset_fraction <= 1 (got 0)"));
    REQUIRE_THROWS_MATCHES(bad([](CrestOptions& o) { o.subset_fraction = 1.5; }).validate(),
                           std::invalid_argument,
                           message_is(w + "subset_fraction must satisfy 0 < subset_fraction <= 1 (got 1.5)"));
    REQUIRE_THROWS_MATCHES(bad([&](CrestOptions& o) { o.subset_fraction = nan; }).validate(),
                           std::invalid_argument,
                           message_is(w + "subset_fraction must satisfy 0 < subset_fraction <= 1 (got nan)"));
    REQUIRE_THROWS_MATCHES(bad([](CrestOptions& o) { o.initial_coresets = 0; }).validate(),
                           std::invalid_argument,
                           message_is(w + "initial_coresets must satisfy initial_coresets >= 1 (got 0)"));
    REQUIRE_THROWS_MATCHES(
        bad([](CrestOptions& o) { o.max_coresets = 4; }).validate(), std::invalid_argument,
        message_is(w + "max_coresets must satisfy max_coresets >= initial_coresets (got 4)"));
    REQUIRE_THROWS_MATCHES(bad([](CrestOptions& o) { o.batch_num_mul = 0; }).validate(),
                           std::invalid_argument,
                           message_is(w + "batch_num_mul must satisfy 0 < batch_num_mul < inf (got 0)"));
    REQUIRE_THROWS_MATCHES(bad([](CrestOptions& o) { o.interval_mul = -1; }).validate(),
                           std::invalid_argument,
                           message_is(w + "interval_mul must satisfy 0 < interval_mul < inf (got -1)"));
    REQUIRE_THROWS_MATCHES(bad([&](CrestOptions& o) { o.interval_mul = nan; }).validate(),
                           std::invalid_argument,
                           message_is(w + "interval_mul must satisfy 0 < interval_mul < inf (got nan)"));
    REQUIRE_THROWS_MATCHES(bad([](CrestOptions& o) { o.tau = -0.1; }).validate(), std::invalid_argument,
                           message_is(w + "tau must satisfy 0 <= tau < inf (got -0.10000000000000001)"));
    REQUIRE_THROWS_MATCHES(bad([&](CrestOptions& o) { o.alpha = nan; }).validate(), std::invalid_argument,
                           message_is(w + "alpha must satisfy 0 <= alpha < inf (got nan)"));
    REQUIRE_THROWS_MATCHES(bad([](CrestOptions& o) { o.drop_interval = 0; }).validate(),
                           std::invalid_argument,
                           message_is(w + "drop_interval must satisfy drop_interval >= 1 (got 0)"));
    REQUIRE_THROWS_MATCHES(bad([](CrestOptions& o) { o.watch_window = 0; }).validate(), std::invalid_argument,
                           message_is(w + "watch_window must satisfy watch_window >= 1 (got 0)"));
    REQUIRE_THROWS_MATCHES(
        bad([](CrestOptions& o) { o.min_pool_fraction = 1.25; }).validate(), std::invalid_argument,
        message_is(w + "min_pool_fraction must satisfy 0 <= min_pool_fraction <= 1 (got 1.25)"));
    REQUIRE_THROWS_MATCHES(bad([](CrestOptions& o) { o.epsilon = 1; }).validate(), std::invalid_argument,
                           message_is(w + "epsilon must satisfy 0 < epsilon < 1 (got 1)"));
    // The constructor validates.
    CrestOptions o;
    o.batch_size = -3;
    REQUIRE_THROWS_MATCHES(Crest(Eigen::VectorXi::Zero(10), o), std::invalid_argument,
                           message_is(w + "batch_size must satisfy batch_size >= 1 (got -3)"));
}

TEST_CASE("crest: the constructor rejects empty or negative labels", "[crest]") {
    REQUIRE_THROWS_MATCHES(Crest(Eigen::VectorXi(0)), std::invalid_argument,
                           message_is("Crest::Crest(): labels must not be empty (got size 0)"));
    Eigen::VectorXi y(3);
    y << 0, -2, 1;
    REQUIRE_THROWS_MATCHES(Crest(y), std::invalid_argument,
                           message_is("Crest::Crest(): labels must be >= 0 (got -2 at index 1)"));
}

TEST_CASE("crest: sizes derived from the options", "[crest]") {
    // 3 non-empty classes (label 1 unused), n = 1000: s = ceil(0.01 * 1000 / 3) = 4.
    IndexVector y = sized_labels({500, 0, 300, 200});
    Crest crest(y, [] {
        CrestOptions o;
        o.min_pool_fraction = 0.75;
        return o;
    }());
    CHECK(crest.size() == 1000);
    CHECK(crest.per_class_size() == 4);
    CHECK(crest.min_pool_size() == 750);
    const CrestStats s = crest.stats();
    CHECK(s.coresets == 5);
    CHECK(s.pool_size == 1000);
    CHECK(s.selections == 0);
    CHECK(std::isnan(s.last_rho));
    CHECK_FALSE(crest.should_check());
    CHECK_FALSE(crest.in_region());
}

// ---------------------------------------------------------------------------------------------
// Candidates and selection

TEST_CASE("crest: candidates are per-class draws from the active pool", "[crest]") {
    const IndexVector y = sized_labels({400, 300, 200, 8});
    CrestOptions o = small_options();
    o.subset_fraction = 0.04;  // s = ceil(0.04 * 908 / 4) = 10; class 3 has only 8
    o.initial_coresets = 4;
    Crest crest(y, o);
    REQUIRE(crest.per_class_size() == 10);
    for (int round = 0; round < 3; ++round) {
        const CrestCandidates cand = crest.candidates();
        REQUIRE(cand.subsets.size() == 4);
        std::vector<Index> concat;
        for (const auto& subset : cand.subsets) {
            std::map<Index, Index> per_class;
            std::set<Index> distinct(subset.begin(), subset.end());
            CHECK(distinct.size() == subset.size());  // without replacement within a subset
            Index previous_class = -1;
            for (Index i : subset) {
                REQUIRE(i >= 0);
                REQUIRE(i < crest.size());
                CHECK(crest.is_active(i));
                ++per_class[y[i]];
                CHECK(y[i] >= previous_class);  // class by class
                previous_class = y[i];
            }
            CHECK(per_class[0] == 10);
            CHECK(per_class[1] == 10);
            CHECK(per_class[2] == 10);
            CHECK(per_class[3] == 8);  // the whole small class
            concat.insert(concat.end(), subset.begin(), subset.end());
        }
        CHECK(cand.indices == concat);
        CHECK(cand.size() == 4 * 38);
        const Matrix<double> g =
            coreset_test::gaussian<double>(cand.size(), 3, 11 + static_cast<std::uint64_t>(round));
        crest.select(g, Eigen::VectorXd::Ones(cand.size()));
    }
}

TEMPLATE_TEST_CASE("crest: each coreset is the shared engine's pick on its subset, weights mean 1", "[crest]",
                   float, double) {
    const IndexVector y = sized_labels({120, 80, 60});
    CrestOptions o = small_options();
    o.batch_size = 12;
    o.subset_fraction = 0.1;  // s = 9 per class, 27 per subset
    o.initial_coresets = 4;
    for (ClassBudget policy : {ClassBudget::Equal, ClassBudget::Proportional}) {
        o.class_budget = policy;
        Crest crest(y, o);
        const CrestCandidates cand = crest.candidates();
        const Matrix<TestType> g = coreset_test::blobs<TestType>(cand.size(), 4, 5, 0.5, 3);
        crest.select(g, Eigen::VectorXd::Constant(cand.size(), 1.0));
        const auto& batches = crest.coresets();
        REQUIRE(batches.size() == 4);
        Index offset = 0;
        double total = 0;
        Index count = 0;
        std::vector<double> raw;
        for (std::size_t p = 0; p < batches.size(); ++p) {
            const auto& subset = cand.subsets[p];
            const Index size = static_cast<Index>(subset.size());
            const Matrix<TestType> block = g.middleRows(offset, size);
            const auto expected = Craig(o.engine()).select(block, labels_of(y, subset), 12);
            REQUIRE(batches[p].size() == 12);
            CHECK(batches[p].coreset == static_cast<Index>(p));
            for (Index j = 0; j < 12; ++j) {
                CHECK(batches[p].indices[static_cast<std::size_t>(j)] ==
                      subset[static_cast<std::size_t>(expected.indices[static_cast<std::size_t>(j)])]);
                raw.push_back(static_cast<double>(expected.weights[j]));
            }
            CHECK_THAT(static_cast<double>(expected.weights.sum()),
                       Catch::Matchers::WithinAbs(double(size), 1e-9));
            total += batches[p].weights.sum();
            count += batches[p].size();
            offset += size;
        }
        // Cluster sizes rescaled by one common factor so that the union has mean weight 1.
        CHECK_THAT(total / static_cast<double>(count), Catch::Matchers::WithinRel(1.0, 1e-12));
        const double scale = static_cast<double>(count) / std::accumulate(raw.begin(), raw.end(), 0.0);
        std::size_t r = 0;
        for (const auto& b : batches)
            for (Index j = 0; j < b.size(); ++j)
                CHECK_THAT(b.weights[j], Catch::Matchers::WithinRel(raw[r++] * scale, 1e-12));
    }
}

TEST_CASE("crest: a subset smaller than m gives a coreset of its own size", "[crest]") {
    const IndexVector y = sized_labels({20, 20});
    CrestOptions o = small_options();
    o.batch_size = 128;
    o.subset_fraction = 0.25;  // s = 5: subsets of 10 rows
    Crest crest(y, o);
    const CrestCandidates cand = crest.candidates();
    crest.select(coreset_test::gaussian<double>(cand.size(), 2, 1), Eigen::VectorXd::Zero(cand.size()));
    for (std::size_t p = 0; p < cand.subsets.size(); ++p) {
        std::vector<Index> got = crest.coresets()[p].indices, want = cand.subsets[p];
        std::sort(got.begin(), got.end());
        std::sort(want.begin(), want.end());
        CHECK(got == want);
        // Every row is its own cluster: raw weights 1, hence mean-1 weights 1.
        CHECK(crest.coresets()[p].weights.isApprox(Eigen::VectorXd::Ones(10)));
    }
}

TEST_CASE("crest: a class of identical rows is represented by one row standing for all", "[crest]") {
    // At a zero initialisation p - onehot(y) is the same row for every example of a class: every
    // distance is 0 and the engine alone would pick nothing.
    const IndexVector y = sized_labels({50, 50});
    CrestOptions o = small_options();
    o.subset_fraction = 0.2;  // s = 10
    Crest crest(y, o);
    const CrestCandidates cand = crest.candidates();
    Eigen::MatrixXd g = coreset_test::gaussian<double>(cand.size(), 2, 8);
    for (Index j = 0; j < cand.size(); ++j)
        if (y[cand.indices[static_cast<std::size_t>(j)]] == 0) g.row(j) << 0.5, -0.5;
    crest.select(g, Eigen::VectorXd::Ones(cand.size()));
    // Raw weights sum to the subset sizes (3 x 20 = 60); the class-0 row stands for its 10 rows.
    Index count = 0;
    for (const auto& b : crest.coresets()) count += b.size();
    const double to_raw = 60.0 / static_cast<double>(count);
    for (const auto& b : crest.coresets()) {
        Index class0 = 0;
        for (Index j = 0; j < b.size(); ++j)
            if (y[b.indices[static_cast<std::size_t>(j)]] == 0) {
                ++class0;
                CHECK_THAT(b.weights[j] * to_raw, Catch::Matchers::WithinRel(10.0, 1e-12));
            }
        CHECK(class0 == 1);
        CHECK(b.size() == 5);  // 1 + the 4 rows class 1 gets from the Equal split of m = 8
    }
}

TEST_CASE("crest: rounds do not depend on the thread count, naive and lazy pick the same", "[crest]") {
    const IndexVector y = sized_labels({200, 150, 100});
    std::vector<std::vector<Index>> naive_picks;
    for (Greedy greedy : {Greedy::Naive, Greedy::Lazy, Greedy::Stochastic}) {
        auto run = [&](int threads) {
#ifdef _OPENMP
            const int before = omp_get_max_threads();
            omp_set_num_threads(threads);
#else
            (void)threads;
#endif
            CrestOptions o = small_options();
            o.greedy = greedy;
            o.initial_coresets = 6;
            o.seed = 5;
            Crest crest(y, o);
            std::vector<std::vector<Index>> picks;
            std::vector<Eigen::VectorXd> weights;
            for (int round = 0; round < 2; ++round) {
                const CrestCandidates cand = crest.candidates();
                crest.select(
                    coreset_test::blobs<float>(cand.size(), 3, 6, 0.7, 3 + static_cast<std::uint64_t>(round)),
                    Eigen::VectorXf::Ones(cand.size()));
                for (const auto& b : crest.coresets()) {
                    picks.push_back(b.indices);
                    weights.push_back(b.weights);
                }
            }
#ifdef _OPENMP
            omp_set_num_threads(before);
#endif
            return std::make_pair(picks, weights);
        };
        const auto one = run(1), two = run(2);
        CHECK(one.first == two.first);
        CHECK(one.second == two.second);
        if (greedy == Greedy::Naive) naive_picks = one.first;
        if (greedy == Greedy::Lazy) CHECK(one.first == naive_picks);
    }
}

TEST_CASE("crest: next_batch cycles through all coresets of the round", "[crest]") {
    const IndexVector y = sized_labels({100, 100});
    CrestOptions o = small_options();
    o.initial_coresets = 5;
    Crest crest(y, o);
    REQUIRE_THROWS_MATCHES(crest.next_batch(), std::logic_error,
                           message_is("Crest::next_batch(): call select() first"));
    const CrestCandidates cand = crest.candidates();
    crest.select(coreset_test::gaussian<float>(cand.size(), 3, 2), Eigen::VectorXf::Ones(cand.size()));
    for (int cycle = 0; cycle < 3; ++cycle)
        for (Index p = 0; p < 5; ++p) {
            const CrestBatch b = crest.next_batch();
            CHECK(b.coreset == p);
            CHECK(b.indices == crest.coresets()[static_cast<std::size_t>(p)].indices);
            CHECK(b.weights == crest.coresets()[static_cast<std::size_t>(p)].weights);
        }
    // A new selection restarts the cycle at coreset 0.
    crest.next_batch();
    const CrestCandidates again = crest.candidates();
    crest.select(coreset_test::gaussian<float>(again.size(), 3, 3), Eigen::VectorXf::Ones(again.size()));
    CHECK(crest.next_batch().coreset == 0);
}

TEST_CASE("crest: check_indices is the sorted union of the round's subsets", "[crest]") {
    // A union covering most of the data (built by a scan) and a small one (built by a sort).
    for (const auto& setup : {std::make_pair(Index(30), 0.5), std::make_pair(Index(2000), 0.002)}) {
        const IndexVector y = sized_labels({setup.first, setup.first});
        CrestOptions o = small_options();
        o.subset_fraction = setup.second;  // s = 15 of 30 (the 3 subsets overlap), or 4 of 2000
        Crest crest(y, o);
        for (int round = 0; round < 3; ++round) {
            const CrestCandidates cand = crest.candidates();
            if (round == 0)
                REQUIRE_THROWS_MATCHES(crest.check_indices(), std::logic_error,
                                       message_is("Crest::check_indices(): call select() first"));
            crest.select(coreset_test::gaussian<double>(cand.size(), 2, 5),
                         Eigen::VectorXd::Ones(cand.size()));
            const std::set<Index> expected(cand.indices.begin(), cand.indices.end());
            CHECK(crest.check_indices() == std::vector<Index>(expected.begin(), expected.end()));
            if (setup.first == 30) CHECK(expected.size() < cand.indices.size());  // the overlap was removed
        }
    }
}

TEST_CASE("crest: a second candidates() replaces the pending subsets", "[crest]") {
    const IndexVector y = sized_labels({100, 100});
    Crest crest(y, small_options());
    const CrestCandidates first = crest.candidates(), second = crest.candidates();
    REQUIRE(first.indices != second.indices);
    crest.select(coreset_test::gaussian<double>(second.size(), 2, 3), Eigen::VectorXd::Ones(second.size()));
    for (std::size_t p = 0; p < second.subsets.size(); ++p)
        for (Index i : crest.coresets()[p].indices)
            CHECK(std::count(second.subsets[p].begin(), second.subsets[p].end(), i) == 1);
    const std::set<Index> expected(second.indices.begin(), second.indices.end());
    CHECK(crest.check_indices() == std::vector<Index>(expected.begin(), expected.end()));
}

TEST_CASE("crest: the same seed gives the same rounds, another seed other rounds", "[crest]") {
    const IndexVector y = sized_labels({300, 200, 100});
    auto run = [&](std::uint64_t seed) {
        CrestOptions o = small_options();
        o.seed = seed;
        Crest crest(y, o);
        std::vector<std::vector<Index>> out;
        for (int round = 0; round < 3; ++round) {
            const CrestCandidates cand = crest.candidates();
            crest.select(
                coreset_test::gaussian<double>(cand.size(), 4, 7 + static_cast<std::uint64_t>(round)),
                Eigen::VectorXd::Ones(cand.size()));
            out.push_back(cand.indices);
            for (const auto& b : crest.coresets()) out.push_back(b.indices);
        }
        return out;
    };
    CHECK(run(42) == run(42));
    CHECK(run(42) != run(43));
}

// ---------------------------------------------------------------------------------------------
// Quadratic model, check, T1 and P

TEST_CASE("crest: T1 and P follow the curvature norms, should_check every T1 steps", "[crest]") {
    const IndexVector y = sized_labels({50, 50});
    CrestOptions o = small_options();
    o.interval_mul = 1.5;
    o.batch_num_mul = 2;
    o.max_coresets = 7;
    o.tau = 1e9;  // never re-select
    Crest crest(y, o);
    auto round = [&] {
        const CrestCandidates cand = crest.candidates();
        crest.select(coreset_test::gaussian<double>(cand.size(), 2, 9), Eigen::VectorXd::Ones(cand.size()));
        return cand;
    };
    CHECK(round().subsets.size() == 3);             // initial_coresets
    Eigen::Vector4d g(1, 2, 3, 4), h0(3, 0, 4, 0);  // ||h_0|| = 5
    crest.begin_region(2.0, g, h0);
    // First region: T1 = ceil(1.5 * 5 / 5) = 2, P = min(ceil(2 * 2), 7) = 4.
    CHECK(crest.stats().interval == 2);
    CHECK(crest.stats().coresets == 4);
    CHECK(round().subsets.size() == 4);
    crest.begin_region(1.0, g, h0 / 4.0);  // ||h|| = 1.25: T1 = ceil(1.5 * 4) = 6, P = min(12, 7) = 7
    CHECK(crest.stats().interval == 6);
    CHECK(crest.stats().coresets == 7);
    CHECK(round().subsets.size() == 7);
    crest.begin_region(1.0, g, h0 * 10.0);  // ||h|| = 50: T1 = ceil(0.15) = 1, P = 2
    CHECK(crest.stats().interval == 1);
    CHECK(crest.stats().coresets == 2);
    crest.begin_region(1.0, g, h0 / 3.0);  // T1 = ceil(1.5 * 3) = 5 (4.5 rounded up), P = 7
    REQUIRE(crest.stats().interval == 5);
    std::vector<Index> asked;
    for (Index step = 1; step <= 17; ++step) {
        crest.record_update(Eigen::Vector4d::Constant(1e-3));
        if (crest.should_check()) {
            asked.push_back(step);
            CHECK_FALSE(crest.check(1.0));
            CHECK_FALSE(crest.should_check());  // answered for this step
        }
    }
    CHECK(asked == std::vector<Index>{5, 10, 15});
    CHECK(crest.stats().region_steps == 17);
    CHECK(crest.stats().checks == 3);
    // A check between the T1 marks is allowed and does not shift them.
    crest.record_update(Eigen::Vector4d::Zero());  // step 18
    CHECK_FALSE(crest.check(1.0));
    crest.record_update(Eigen::Vector4d::Zero());  // 19
    CHECK_FALSE(crest.should_check());
    crest.record_update(Eigen::Vector4d::Zero());  // 20
    CHECK(crest.should_check());
}

TEST_CASE("crest: model_loss is L0 + g'delta + delta' diag(h) delta / 2 over the accumulated steps",
          "[crest]") {
    const IndexVector y = sized_labels({20, 20});
    Crest crest(y, small_options());
    const CrestCandidates cand = crest.candidates();
    crest.select(coreset_test::gaussian<double>(cand.size(), 2, 9), Eigen::VectorXd::Ones(cand.size()));
    // Any parameter shape: a 2 x 3 matrix is read column by column (the same for every argument).
    Eigen::Matrix<double, 2, 3> g, h;
    g << 1, -2, 0.5, 3, 0, -1;
    h << 2, 1, 0, 4, 0.5, 3;
    crest.begin_region(5.0, g, h);
    CHECK(crest.model_loss() == 5.0);
    Eigen::Matrix<float, 2, 3> d1, d2;
    d1 << 0.1f, 0.2f, -0.3f, 0.0f, 0.5f, 1.0f;
    d2 << -0.4f, 0.1f, 0.2f, 0.3f, -0.5f, 0.25f;
    crest.record_update(d1);
    crest.record_update(d2);
    const Eigen::Matrix<double, 2, 3> delta = d1.cast<double>() + d2.cast<double>();
    const double expected =
        5.0 + (g.array() * delta.array()).sum() + 0.5 * (h.array() * delta.array().square()).sum();
    CHECK_THAT(crest.model_loss(), Catch::Matchers::WithinRel(expected, 1e-14));
    CHECK(crest.stats().steps == 2);
    // Row-major storage is flattened in the same (column) order.
    Eigen::Matrix<double, 2, 3, Eigen::RowMajor> g_rows = g, h_rows = h;
    crest.begin_region(5.0, g_rows, h_rows);
    crest.record_update(d1);
    crest.record_update(d2);
    CHECK_THAT(crest.model_loss(), Catch::Matchers::WithinRel(expected, 1e-14));
    CHECK(crest.stats().region_steps == 2);
    CHECK(crest.stats().steps == 4);
    // Vectors of either orientation, any scalar, map to the same flattened delta.
    crest.begin_region(5.0, g, h);
    const Eigen::Map<const Eigen::Matrix<float, 1, 6>> row(d1.data());
    const Eigen::VectorXd column = Eigen::Map<const Eigen::VectorXf>(d2.data(), 6).cast<double>();
    crest.record_update(row);
    crest.record_update(column);
    CHECK_THAT(crest.model_loss(), Catch::Matchers::WithinRel(expected, 1e-14));
}

TEST_CASE("crest: rho and the re-selection rule |L - F| > tau L", "[crest]") {
    const IndexVector y = sized_labels({20, 20});
    CrestOptions o = small_options();
    o.tau = 0.1;
    Crest crest(y, o);
    const CrestCandidates cand = crest.candidates();
    crest.select(coreset_test::gaussian<double>(cand.size(), 2, 9), Eigen::VectorXd::Ones(cand.size()));
    crest.begin_region(1.0, Eigen::Vector2d(0, 0), Eigen::Vector2d(1, 1));  // F = 1 + |delta|^2 / 2
    CHECK_FALSE(crest.check(1.1));                                          // gap 0.1 <= 0.11
    CHECK_THAT(crest.stats().last_rho, Catch::Matchers::WithinRel(0.1 / 1.1, 1e-12));
    CHECK_FALSE(crest.check(0.95));
    CHECK(crest.check(0.9));  // gap 0.1 > 0.09
    CHECK_THAT(crest.stats().last_rho, Catch::Matchers::WithinRel(0.1 / 0.9, 1e-12));
    CHECK(crest.stats().last_true_loss == 0.9);
    CHECK(crest.stats().last_model_loss == 1.0);
    CHECK(crest.stats().checks == 3);
    CHECK(crest.stats().reselections == 1);
    // The region ended: no checks, no updates until the next begin_region().
    CHECK_FALSE(crest.in_region());
    CHECK_FALSE(crest.should_check());
    REQUIRE_THROWS_MATCHES(crest.record_update(Eigen::Vector2d(1, 1)), std::logic_error,
                           message_is("Crest::record_update(): no active region: call begin_region() first"));
    // The old coresets stay usable until the next select().
    CHECK(crest.next_batch().size() > 0);
    crest.begin_region(0.0, Eigen::Vector2d(0, 0), Eigen::Vector2d(1, 1));
    CHECK_FALSE(crest.check(0.0));  // 0 vs 0: rho = 0
    CHECK(crest.stats().last_rho == 0.0);
    crest.record_update(Eigen::Vector2d(1, 0));  // F = 0.5
    CHECK(crest.check(0.0));
    CHECK(std::isinf(crest.stats().last_rho));
}

TEMPLATE_TEST_CASE("crest: on a diagonal least-squares loss the model is exact and never re-selects",
                   "[crest]", float, double) {
    // l_i(w) = 1/2 sum_k a_k (w_k - c_ik)^2: the mean over any set is a diagonal quadratic whose
    // gradient and Hessian diagonal (a) are exact, so F(delta) = L(w0 + delta) for every delta.
    const Index n = 600, D = 6;
    const IndexVector y = sized_labels({200, 200, 200});
    const Matrix<double> c = coreset_test::gaussian<double>(n, D, 17) * 3.0;
    Eigen::VectorXd a(D);
    a << 0.5, 1, 2, 3, 0.25, 1.5;
    auto loss_on = [&](const Eigen::VectorXd& w, const std::vector<Index>& rows) {
        double total = 0;
        for (Index i : rows) total += 0.5 * (a.array() * (w - c.row(i).transpose()).array().square()).sum();
        return total / static_cast<double>(rows.size());
    };
    auto grad_on = [&](const Eigen::VectorXd& w, const std::vector<Index>& rows) {
        Eigen::VectorXd gsum = Eigen::VectorXd::Zero(D);
        for (Index i : rows) gsum += (a.array() * (w - c.row(i).transpose()).array()).matrix();
        return Eigen::VectorXd(gsum / static_cast<double>(rows.size()));
    };
    CrestOptions o = small_options();
    o.batch_size = 10;
    o.subset_fraction = 0.05;  // 10 per class, 30 per subset
    o.tau = 1e-9;
    Crest crest(y, o);
    Eigen::VectorXd w = Eigen::VectorXd::Zero(D);
    for (int region = 0; region < 3; ++region) {  // re-selected by the trainer's choice, not by check()
        const CrestCandidates cand = crest.candidates();
        Matrix<TestType> proxies(cand.size(), D);
        Eigen::Matrix<TestType, Eigen::Dynamic, 1> losses(cand.size());
        for (Index j = 0; j < cand.size(); ++j) {
            const Index i = cand.indices[static_cast<std::size_t>(j)];
            proxies.row(j) = (a.array() * (w - c.row(i).transpose()).array())
                                 .matrix()
                                 .transpose()
                                 .template cast<TestType>();
            losses[j] = static_cast<TestType>(loss_on(w, {i}));
        }
        crest.select(proxies, losses);
        const auto& check_rows = crest.check_indices();
        crest.begin_region(loss_on(w, check_rows), grad_on(w, check_rows), a);
        CHECK(crest.stats().interval == 1);  // same curvature in every region
        for (int step = 0; step < 40; ++step) {
            const CrestBatch b = crest.next_batch();
            Eigen::VectorXd gb = Eigen::VectorXd::Zero(D);
            for (Index j = 0; j < b.size(); ++j)
                gb += b.weights[j] * grad_on(w, {b.indices[static_cast<std::size_t>(j)]});
            const Eigen::VectorXd delta = -0.05 * gb / static_cast<double>(b.size());
            w += delta;
            crest.record_update(delta);
            REQUIRE(crest.should_check());
            const double truth = loss_on(w, check_rows);
            REQUIRE_FALSE(crest.check(truth));
            CHECK_THAT(crest.stats().last_rho, Catch::Matchers::WithinAbs(0.0, 1e-12));
        }
    }
    CHECK(crest.stats().reselections == 0);
    CHECK(crest.stats().checks == 120);
}

TEST_CASE("crest: multinomial logistic regression re-selects less often as training converges", "[crest]") {
    // Four separable blobs, z = W x + b (C = 4, E = 5), parameters in gradients.hpp's last-layer
    // layout [b | W_0 | ... | W_3]; exact gradients and Hessian diagonals from gradients.hpp.
    const Index C = 4, E = 5, n = 2000;
    const Matrix<double> x = coreset_test::blobs<double>(n, E, C, 1.5, 23) * 0.2;
    IndexVector y(n);
    for (Index i = 0; i < n; ++i) y[i] = i % C;
    Eigen::VectorXd theta = Eigen::VectorXd::Zero(C * (1 + E));
    auto scores = [&](const std::vector<Index>& rows) {
        Matrix<double> z(static_cast<Index>(rows.size()), C);
        for (std::size_t r = 0; r < rows.size(); ++r)
            for (Index k = 0; k < C; ++k)
                z(static_cast<Index>(r), k) = theta[k] + theta.segment(C + k * E, E).dot(x.row(rows[r]));
        return z;
    };
    auto loss_on = [&](const std::vector<Index>& rows) {
        return cross_entropy(scores(rows), labels_of(y, rows)).mean();
    };

    CrestOptions o;
    o.batch_size = 16;
    o.subset_fraction = 0.05;  // 25 per class, r = 100
    o.max_coresets = 20;
    o.tau = 0.05;
    o.drop_learned = false;
    o.seed = 7;
    Crest crest(y, o);
    auto reselect = [&] {
        const CrestCandidates cand = crest.candidates();
        const Matrix<double> z = scores(cand.indices);
        const IndexVector yc = labels_of(y, cand.indices);
        crest.select(logit_gradients(z, yc), cross_entropy(z, yc));
        const auto& rows = crest.check_indices();
        const Matrix<double> zc = scores(rows), xc = rows_of(x, rows);
        const Eigen::VectorXd g = last_layer_gradients(zc, labels_of(y, rows), xc).colwise().mean();
        const Eigen::VectorXd h = last_layer_hessian_diagonal(zc, xc).colwise().mean();
        crest.begin_region(cross_entropy(zc, labels_of(y, rows)).mean(), g, h);
        return h.norm();
    };
    const double h0 = reselect();
    CHECK(crest.stats().interval == 1);
    const int steps = 900;
    std::vector<int> reselected_at;
    Index last_interval = 1;
    for (int step = 1; step <= steps; ++step) {
        const CrestBatch b = crest.next_batch();
        const Matrix<double> z = scores(b.indices), xb = rows_of(x, b.indices);
        const Matrix<double> gb = last_layer_gradients(z, labels_of(y, b.indices), xb);
        const Eigen::VectorXd delta =
            -0.5 * (b.weights.transpose() * gb).transpose() / static_cast<double>(b.size());
        theta += delta;
        crest.record_update(delta);
        if (crest.should_check() && crest.check(loss_on(crest.check_indices()))) {
            reselected_at.push_back(step);
            const double hl = reselect();
            const auto T1 = static_cast<Index>(std::ceil(h0 / hl));
            CHECK(crest.stats().interval == std::max<Index>(1, T1));
            CHECK(crest.stats().coresets == std::min<Index>(5 * crest.stats().interval, 20));
            last_interval = crest.stats().interval;
        }
    }
    const auto first =
        std::count_if(reselected_at.begin(), reselected_at.end(), [&](int s) { return s <= steps / 3; });
    const auto last =
        std::count_if(reselected_at.begin(), reselected_at.end(), [&](int s) { return s > 2 * steps / 3; });
    INFO("re-selections: " << reselected_at.size() << ", first third " << first << ", last third " << last
                           << ", final T1 " << last_interval << ", final loss " << loss_on(crest.active()));
    CHECK(reselected_at.size() >= 5);
    CHECK(first > 2 * last);
    CHECK(last_interval > 1);  // curvature fell as the model converged
    CHECK(crest.stats().reselections == static_cast<Index>(reselected_at.size()));
    CHECK(loss_on(crest.active()) < 0.2);  // it did learn
}

// ---------------------------------------------------------------------------------------------
// Learned examples

TEST_CASE("crest: drops follow a ring of the last watch_window losses", "[crest]") {
    // Reference: for every example a deque of its last W recorded losses (one per round, the
    // largest when it appears in several subsets); every drop_interval-th round the active examples
    // with a full deque of losses < alpha are dropped, within the class guard.
    const IndexVector y = sized_labels({150, 150});
    for (Index W : {1, 2, 3}) {
        CrestOptions o = small_options();
        o.drop_learned = true;
        o.subset_fraction = 0.1;  // s = 15
        o.initial_coresets = 4;
        o.alpha = 0.6;
        o.watch_window = W;
        o.drop_interval = 2;
        o.min_pool_fraction = 0;
        o.seed = static_cast<std::uint64_t>(W);
        Crest crest(y, o);
        std::vector<std::deque<double>> ring(300);
        std::vector<bool> active(300, true);
        detail::Rng rng(99 + static_cast<std::uint64_t>(W));
        Index dropped_total = 0;
        bool guard_bound = false;
        for (Index round = 1; round <= 12; ++round) {
            const CrestCandidates cand = crest.candidates();
            for (Index i : cand.indices) REQUIRE(active[static_cast<std::size_t>(i)]);
            Eigen::VectorXd losses(cand.size());
            std::map<Index, double> largest;
            for (Index j = 0; j < cand.size(); ++j) {
                losses[j] = rng.uniform();
                const Index i = cand.indices[static_cast<std::size_t>(j)];
                largest[i] = std::max(largest.count(i) ? largest[i] : -1.0, losses[j]);
            }
            for (const auto& kv : largest) {
                auto& r = ring[static_cast<std::size_t>(kv.first)];
                r.push_back(kv.second);
                if (static_cast<Index>(r.size()) > W) r.pop_front();
            }
            crest.select(coreset_test::gaussian<double>(cand.size(), 2, static_cast<std::uint64_t>(round)),
                         losses);
            if (round % 2 == 0) {
                // Learned: a full ring below alpha. Class guard: at most |active_c| - s leave a
                // class, the smallest last loss first (ties: lower index).
                for (Index c = 0; c < 2; ++c) {
                    std::vector<Index> members, learned;
                    for (Index i = 0; i < 300; ++i)
                        if (y[i] == c && active[static_cast<std::size_t>(i)]) members.push_back(i);
                    for (Index i : members) {
                        const auto& r = ring[static_cast<std::size_t>(i)];
                        if (static_cast<Index>(r.size()) == W &&
                            std::all_of(r.begin(), r.end(), [](double v) { return v < 0.6; }))
                            learned.push_back(i);
                    }
                    std::stable_sort(learned.begin(), learned.end(), [&](Index a, Index b) {
                        return static_cast<float>(ring[static_cast<std::size_t>(a)].back()) <
                               static_cast<float>(ring[static_cast<std::size_t>(b)].back());
                    });
                    const std::size_t room = members.size() - 15;
                    if (learned.size() > room) {
                        guard_bound = true;
                        learned.resize(room);
                    }
                    for (Index i : learned) active[static_cast<std::size_t>(i)] = false;
                    dropped_total += static_cast<Index>(learned.size());
                }
            }
            std::vector<Index> expected;
            for (Index i = 0; i < 300; ++i)
                if (active[static_cast<std::size_t>(i)]) expected.push_back(i);
            INFO("W = " << W << ", round " << round);
            REQUIRE(crest.active() == expected);
            CHECK(crest.stats().dropped == dropped_total);
            CHECK(crest.stats().pool_size == static_cast<Index>(expected.size()));
        }
        CHECK(dropped_total > 0);
        if (W == 1) CHECK(guard_bound);  // the class guard was exercised
    }
}

TEST_CASE("crest: the class and pool guards hold and dropped examples never reappear", "[crest]") {
    const IndexVector y = sized_labels({60, 30, 10});
    CrestOptions o = small_options();
    o.drop_learned = true;
    o.subset_fraction = 0.3;  // s = 10
    o.initial_coresets = 5;
    o.alpha = 1e9;  // every recorded example counts as learned
    o.watch_window = 1;
    o.drop_interval = 1;
    SECTION("the pool guard binds at ceil(0.55 n) = 55") { o.min_pool_fraction = 0.55; }
    SECTION("the class guards bind: 60 + 30 + 10 - 3 * 10 = 70 may go") { o.min_pool_fraction = 0.0; }
    Crest crest(y, o);
    std::set<Index> gone;
    for (int round = 0; round < 15; ++round) {
        const CrestCandidates cand = crest.candidates();
        for (Index i : cand.indices) REQUIRE(gone.count(i) == 0);
        crest.select(coreset_test::gaussian<double>(cand.size(), 2, static_cast<std::uint64_t>(round)),
                     Eigen::VectorXd::LinSpaced(cand.size(), 0.0, 1.0));
        const std::vector<Index> act = crest.active();
        for (Index i : act) REQUIRE(gone.count(i) == 0);  // never back
        std::vector<Index> per_class(3, 0);
        for (Index i : act) ++per_class[static_cast<std::size_t>(y[i])];
        CHECK(per_class[0] >= 10);
        CHECK(per_class[1] >= 10);
        CHECK(per_class[2] == 10);  // the small class never loses anything
        CHECK(static_cast<Index>(act.size()) >= crest.min_pool_size());
        std::set<Index> still(act.begin(), act.end());
        for (Index i = 0; i < 100; ++i)
            if (!still.count(i)) gone.insert(i);
        CHECK(crest.stats().dropped == static_cast<Index>(gone.size()));
    }
    // Both guards bind in the end: the pool stops at max(min pool, sum of class minima).
    CHECK(crest.stats().pool_size == std::max<Index>(crest.min_pool_size(), 30));
}

TEST_CASE("crest: with drop_learned off nothing is dropped", "[crest]") {
    const IndexVector y = sized_labels({50, 50});
    CrestOptions o = small_options();
    o.drop_learned = false;
    o.alpha = 1e9;
    o.watch_window = 1;
    o.drop_interval = 1;
    o.min_pool_fraction = 0;
    Crest crest(y, o);
    for (int round = 0; round < 4; ++round) {
        const CrestCandidates cand = crest.candidates();
        crest.select(coreset_test::gaussian<double>(cand.size(), 2, 1), Eigen::VectorXd::Zero(cand.size()));
    }
    CHECK(crest.stats().pool_size == 100);
    CHECK(crest.active().size() == 100);
}

// ---------------------------------------------------------------------------------------------
// Bad input and call order

TEST_CASE("crest: calls out of order are logic errors naming the call", "[crest]") {
    const IndexVector y = sized_labels({20, 20});
    Crest crest(y, small_options());
    const Eigen::VectorXd v = Eigen::VectorXd::Ones(3);
    REQUIRE_THROWS_MATCHES(crest.select(Eigen::MatrixXd::Ones(6, 2), Eigen::VectorXd::Ones(6)),
                           std::logic_error, message_is("Crest::select(): call candidates() first"));
    REQUIRE_THROWS_MATCHES(crest.begin_region(1.0, v, v), std::logic_error,
                           message_is("Crest::begin_region(): call select() first"));
    REQUIRE_THROWS_MATCHES(crest.record_update(v), std::logic_error,
                           message_is("Crest::record_update(): no active region: call begin_region() first"));
    REQUIRE_THROWS_MATCHES(crest.check(1.0), std::logic_error,
                           message_is("Crest::check(): no active region: call begin_region() first"));
    REQUIRE_THROWS_MATCHES(crest.model_loss(), std::logic_error,
                           message_is("Crest::model_loss(): no active region: call begin_region() first"));
    const CrestCandidates cand = crest.candidates();
    crest.select(coreset_test::gaussian<double>(cand.size(), 2, 1), Eigen::VectorXd::Ones(cand.size()));
    // The candidates were consumed.
    REQUIRE_THROWS_MATCHES(
        crest.select(coreset_test::gaussian<double>(cand.size(), 2, 1), Eigen::VectorXd::Ones(cand.size())),
        std::logic_error, message_is("Crest::select(): call candidates() first"));
    REQUIRE_NOTHROW(crest.begin_region(1.0, v, v));
    REQUIRE_NOTHROW(crest.record_update(v));
}

TEST_CASE("crest: bad arguments name the call, the parameter and the value", "[crest]") {
    const IndexVector y = sized_labels({20, 20});
    Crest crest(y, small_options());  // s = 2: subsets of 4, 12 candidates
    const CrestCandidates cand = crest.candidates();
    REQUIRE(cand.size() == 12);
    const Eigen::MatrixXd g = coreset_test::gaussian<double>(12, 2, 4);
    const Eigen::VectorXd l = Eigen::VectorXd::Ones(12);
    REQUIRE_THROWS_MATCHES(crest.select(g.topRows(11), l), std::invalid_argument,
                           message_is("Crest::select(): candidate_gradients must have one row per candidate "
                                      "(got 11 rows for 12 candidates)"));
    REQUIRE_THROWS_MATCHES(
        crest.select(Eigen::MatrixXd(12, 0), l), std::invalid_argument,
        message_is("Crest::select(): candidate_gradients must have at least one column (got 0)"));
    REQUIRE_THROWS_MATCHES(crest.select(g, l.head(13 - 2)), std::invalid_argument,
                           message_is("Crest::select(): candidate_losses must have one entry per candidate "
                                      "(got 11 entries for 12 candidates)"));
    Eigen::VectorXd nan_loss = l;
    nan_loss[5] = std::numeric_limits<double>::quiet_NaN();
    REQUIRE_THROWS_MATCHES(
        crest.select(g, nan_loss), std::invalid_argument,
        message_is("Crest::select(): candidate_losses must be finite (got nan at index 5)"));
    {
        CrestOptions cosine = small_options();
        cosine.metric = Metric::Cosine;
        Crest c(y, cosine);
        const CrestCandidates cc = c.candidates();
        Eigen::MatrixXd zero_row = coreset_test::gaussian<double>(cc.size(), 2, 4);
        zero_row.row(7).setZero();
        REQUIRE_THROWS_MATCHES(c.select(zero_row, l), std::invalid_argument,
                               message_is("Crest::select(): candidate_gradients must have no zero row under "
                                          "Metric::Cosine (got a zero row at index 7)"));
    }
    Eigen::MatrixXf inf_grad = g.cast<float>();
    inf_grad(3, 1) = std::numeric_limits<float>::infinity();
    REQUIRE_THROWS_MATCHES(
        crest.select(inf_grad, l), std::invalid_argument,
        message_is("Crest::select(): candidate_gradients must be finite (got inf at row 3, column 1)"));

    // Strong guarantee: the rejected calls left the pending candidates as they were, so the
    // result equals that of a twin that never saw them.
    Crest twin(y, small_options());
    REQUIRE(twin.candidates().indices == cand.indices);
    crest.select(g, l);
    twin.select(g, l);
    for (std::size_t p = 0; p < cand.subsets.size(); ++p) {
        CHECK(crest.coresets()[p].indices == twin.coresets()[p].indices);
        CHECK(crest.coresets()[p].weights == twin.coresets()[p].weights);
    }

    const Eigen::Vector3d v(1, 2, 3);
    REQUIRE_THROWS_MATCHES(crest.begin_region(std::numeric_limits<double>::quiet_NaN(), v, v),
                           std::invalid_argument,
                           message_is("Crest::begin_region(): loss0 must be finite and >= 0 (got nan)"));
    REQUIRE_THROWS_MATCHES(crest.begin_region(-1.0, v, v), std::invalid_argument,
                           message_is("Crest::begin_region(): loss0 must be finite and >= 0 (got -1)"));
    REQUIRE_THROWS_MATCHES(crest.begin_region(1.0, Eigen::VectorXd(0), Eigen::VectorXd(0)),
                           std::invalid_argument,
                           message_is("Crest::begin_region(): gradient must not be empty (got size 0)"));
    REQUIRE_THROWS_MATCHES(
        crest.begin_region(1.0, v, Eigen::Vector2d(1, 1)), std::invalid_argument,
        message_is("Crest::begin_region(): hessian_diag must have the length of gradient (got 2 for 3)"));
    REQUIRE_THROWS_MATCHES(
        crest.begin_region(1.0, v, Eigen::Vector3d::Zero()), std::invalid_argument,
        message_is("Crest::begin_region(): hessian_diag must have a finite positive norm (got 0)"));
    Eigen::Vector3d bad = v;
    bad[1] = -std::numeric_limits<double>::infinity();
    REQUIRE_THROWS_MATCHES(
        crest.begin_region(1.0, bad, v), std::invalid_argument,
        message_is("Crest::begin_region(): gradient must be finite (got -inf at index 1)"));
    REQUIRE_THROWS_MATCHES(
        crest.begin_region(1.0, v, bad), std::invalid_argument,
        message_is("Crest::begin_region(): hessian_diag must be finite (got -inf at index 1)"));
    CHECK_FALSE(crest.in_region());  // nothing was anchored by the rejected calls

    crest.begin_region(1.0, v, v);
    REQUIRE_THROWS_MATCHES(
        crest.begin_region(1.0, Eigen::Vector4d::Ones(), Eigen::Vector4d::Ones()), std::invalid_argument,
        message_is("Crest::begin_region(): gradient must have the dimension of the first region "
                   "(got 4, expected 3)"));
    REQUIRE_THROWS_MATCHES(
        crest.record_update(Eigen::Vector4d::Ones()), std::invalid_argument,
        message_is("Crest::record_update(): delta_w must have the dimension of begin_region()'s "
                   "gradient (got 4, expected 3)"));
    REQUIRE_THROWS_MATCHES(
        crest.record_update(Eigen::Vector3d(0, std::numeric_limits<double>::quiet_NaN(), 0)),
        std::invalid_argument,
        message_is("Crest::record_update(): delta_w must be finite (got nan at index 1)"));
    CHECK(crest.stats().region_steps == 0);  // the rejected updates were not counted
    CHECK(crest.model_loss() == 1.0);
    REQUIRE_THROWS_MATCHES(crest.check(std::numeric_limits<double>::infinity()), std::invalid_argument,
                           message_is("Crest::check(): true_loss must be finite and >= 0 (got inf)"));
    REQUIRE_THROWS_MATCHES(crest.check(-0.5), std::invalid_argument,
                           message_is("Crest::check(): true_loss must be finite and >= 0 (got -0.5)"));
    CHECK(crest.stats().checks == 0);
    REQUIRE_THROWS_MATCHES(crest.is_active(40), std::invalid_argument,
                           message_is("Crest::is_active(): i must satisfy 0 <= i < n (got i = 40, n = 40)"));
}

// ---------------------------------------------------------------------------------------------
// The loop of docs/crest.md (compiled here; keep the two in sync).

TEST_CASE("crest: the trainer loop of docs/crest.md", "[crest]") {
    const Index C = 3, E = 4, n = 900;
    const Eigen::MatrixXd x = coreset_test::blobs<double>(n, E, C, 1.0, 5) * 0.2;
    const IndexVector labels = coreset_test::round_robin_labels(n, static_cast<int>(C)).cast<Index>();
    Eigen::VectorXd theta = Eigen::VectorXd::Zero(C * (1 + E));  // [b | W_0 | W_1 | W_2]
    const double lr = 0.5;
    // The trainer's forward pass: logits of the given rows.
    auto logits = [&](const std::vector<Index>& rows) {
        Eigen::MatrixXd z(static_cast<Index>(rows.size()), C);
        for (std::size_t r = 0; r < rows.size(); ++r)
            for (Index k = 0; k < C; ++k)
                z(static_cast<Index>(r), k) = theta[k] + theta.segment(C + k * E, E).dot(x.row(rows[r]));
        return z;
    };
    auto gather = [&](const auto& m, const std::vector<Index>& rows) {
        Eigen::Matrix<typename std::decay_t<decltype(m)>::Scalar, Eigen::Dynamic, Eigen::Dynamic> out(
            static_cast<Index>(rows.size()), m.cols());
        for (std::size_t r = 0; r < rows.size(); ++r) out.row(static_cast<Index>(r)) = m.row(rows[r]);
        return out;
    };
    // [crest-loop]
    coreset::CrestOptions options;
    options.batch_size = 32;
    options.subset_fraction = 0.1;  // r = 90: 30 rows per class
    coreset::Crest crest(labels, options);

    auto select_and_anchor = [&] {
        // 1. Random subsets; the trainer returns last-layer gradients and losses in candidate order.
        const coreset::CrestCandidates cand = crest.candidates();
        const Eigen::MatrixXd z = logits(cand.indices);
        const auto y = gather(labels, cand.indices);
        crest.select(coreset::logit_gradients(z, y), coreset::cross_entropy(z, y));
        // 2. Anchor the quadratic model on the check rows (here: the whole last layer, exact).
        const std::vector<Eigen::Index>& rows = crest.check_indices();
        const Eigen::MatrixXd zc = logits(rows), xc = gather(x, rows);
        const auto yc = gather(labels, rows);
        crest.begin_region(coreset::cross_entropy(zc, yc).mean(),
                           coreset::last_layer_gradients(zc, yc, xc).colwise().mean(),
                           coreset::last_layer_hessian_diagonal(zc, xc).colwise().mean());
    };

    select_and_anchor();
    for (int step = 0; step < 300; ++step) {
        // 3. Train on the next weighted mini-batch coreset and report the parameter change.
        const coreset::CrestBatch batch = crest.next_batch();
        const Eigen::MatrixXd z = logits(batch.indices);
        const Eigen::MatrixXd g =
            coreset::last_layer_gradients(z, gather(labels, batch.indices), gather(x, batch.indices));
        const Eigen::VectorXd delta = -lr * (g.transpose() * batch.weights) / double(batch.size());
        theta += delta;
        crest.record_update(delta);
        // 4. Every T1 steps: compare the model with the true loss on the random subsets.
        if (crest.should_check()) {
            const std::vector<Eigen::Index>& rows = crest.check_indices();
            const double loss = coreset::cross_entropy(logits(rows), gather(labels, rows)).mean();
            if (crest.check(loss)) select_and_anchor();
        }
    }
    const coreset::CrestStats stats = crest.stats();  // selections, T1, P, pool size, last rho
    // [crest-loop]
    CHECK(stats.selections == stats.reselections + 1);
    CHECK(stats.steps == 300);
    const std::vector<Index> all = crest.active();
    CHECK(coreset::cross_entropy(logits(all), gather(labels, all)).mean() < 0.3);
}

// ---------------------------------------------------------------------------------------------
// Reference mode: the behaviours of BigML-CS-UCLA/CREST as options (docs/crest.md)

TEST_CASE("crest: reference() sets the code's behaviours, the defaults stay the library's", "[crest][reference]") {
    const CrestOptions d;
    CHECK_FALSE(d.ceil_class_sizes);
    CHECK(d.serving == CrestServing::InTurn);
    CHECK(d.first_interval == 0);
    CHECK(d.learned_rule == CrestLearnedRule::Streak);
    const CrestOptions r = CrestOptions::reference();
    REQUIRE_NOTHROW(r.validate());
    CHECK(r.tau == 0.1);
    CHECK_FALSE(r.drop_learned);  // the code's --drop_learned defaults to False
    CHECK(r.metric == Metric::ExpEuclidean);
    CHECK(r.greedy == Greedy::Lazy);
    CHECK(r.ceil_class_sizes);
    CHECK(r.serving == CrestServing::ShuffledUnion);
    CHECK(r.first_interval == 1);
    CHECK(r.learned_rule == CrestLearnedRule::LossTable);
    // The fields the code shares with the library's defaults are left alone.
    CHECK(r.batch_size == d.batch_size);
    CHECK(r.subset_fraction == d.subset_fraction);
    CHECK(r.initial_coresets == d.initial_coresets);
    CHECK(r.batch_num_mul == d.batch_num_mul);
    CHECK(r.interval_mul == d.interval_mul);
    CHECK(r.alpha == d.alpha);
    CHECK(r.drop_interval == d.drop_interval);
    CHECK(r.watch_window == d.watch_window);
    CHECK(r.min_pool_fraction == d.min_pool_fraction);
    CHECK(r.engine().metric == Metric::ExpEuclidean);
}

namespace {
// The reference code's learned-example rule written from its definition (crest_trainer.py
// _drop_learned_data): a W x n table of losses initialised to -1, row epoch % W overwritten with
// the candidates' losses at each selection; at a selection with (epoch + 1) % T2 == 0 the new
// pool is, per class, the examples with a stored loss > alpha or never evaluated (all rows < 0),
// or the class's whole pool when those number <= s; it replaces the pool only when larger than
// min_train_size.
struct TableModel {
    Index n, W, T2, s;
    double alpha, min_train;
    IndexVector y;
    std::vector<std::vector<double>> table;
    std::vector<bool> pool;
    TableModel(const IndexVector& labels, Index w, Index t2, Index per_class, double a, double min_size)
        : n(labels.size()), W(w), T2(t2), s(per_class), alpha(a), min_train(min_size), y(labels),
          table(static_cast<std::size_t>(w), std::vector<double>(static_cast<std::size_t>(labels.size()), -1.0)),
          pool(static_cast<std::size_t>(labels.size()), true) {}
    void record(Index epoch, const std::vector<Index>& idx, const Eigen::VectorXd& losses) {
        for (std::size_t j = 0; j < idx.size(); ++j)
            table[static_cast<std::size_t>(epoch % W)][static_cast<std::size_t>(idx[j])] = losses[static_cast<Index>(j)];
        if ((epoch + 1) % T2 != 0) return;
        std::vector<bool> next(pool.size(), false);
        Index total = 0;
        for (Index c = 0; c <= y.maxCoeff(); ++c) {
            std::vector<Index> keep, members;
            for (Index i = 0; i < n; ++i) {
                if (y[i] != c) continue;
                if (pool[static_cast<std::size_t>(i)]) members.push_back(i);
                bool high = false, seen = false;
                for (Index r = 0; r < W; ++r) {
                    const double v = table[static_cast<std::size_t>(r)][static_cast<std::size_t>(i)];
                    high = high || v > alpha;
                    seen = seen || v >= 0;
                }
                if (high || !seen) keep.push_back(i);
            }
            const auto& chosen = static_cast<Index>(keep.size()) > s ? keep : members;
            for (Index i : chosen) next[static_cast<std::size_t>(i)] = true;
            total += static_cast<Index>(chosen.size());
        }
        if (static_cast<double>(total) > min_train) pool = next;
    }
    std::vector<Index> active() const {
        std::vector<Index> out;
        for (Index i = 0; i < n; ++i)
            if (pool[static_cast<std::size_t>(i)]) out.push_back(i);
        return out;
    }
};
}  // namespace

TEST_CASE("crest: LossTable drops as the reference code's loss table, guards all or nothing", "[crest][reference]") {
    // Three classes, one small; random losses mostly below alpha, several selections per epoch,
    // stale slots: the active pool after every select() is the model's.
    const IndexVector y = sized_labels({120, 90, 12});
    for (double min_pool : {0.0, 0.5, 0.9}) {
        CrestOptions o = small_options();
        o.drop_learned = true;
        o.learned_rule = CrestLearnedRule::LossTable;
        o.subset_fraction = 0.05;  // s = ceil(0.05 * 222 / 3) = 4
        o.initial_coresets = 3;
        o.alpha = 0.3;
        o.watch_window = 3;
        o.drop_interval = 4;
        o.min_pool_fraction = min_pool;
        o.seed = 7;
        Crest crest(y, o);
        REQUIRE(crest.per_class_size() == 4);
        TableModel model(y, 3, 4, 4, 0.3, min_pool * 222.0);
        detail::Rng rng(3);
        Index drops = 0;
        for (Index sel = 0; sel < 60; ++sel) {
            const Index epoch = sel / 2;  // two selections per epoch
            const CrestCandidates cand = crest.candidates();
            for (Index i : cand.indices) REQUIRE(model.pool[static_cast<std::size_t>(i)]);
            // The same loss for an example however often it was drawn (it is the same model).
            Eigen::VectorXd losses(cand.size());
            std::map<Index, double> loss_of;
            for (Index j = 0; j < cand.size(); ++j) {
                const Index i = cand.indices[static_cast<std::size_t>(j)];
                if (!loss_of.count(i)) loss_of[i] = rng.uniform() < 0.2 ? 0.5 + rng.uniform() : 0.3 * rng.uniform();
                losses[j] = loss_of[i];
            }
            const Index before = crest.stats().pool_size;
            crest.select(coreset_test::gaussian<double>(cand.size(), 2, static_cast<std::uint64_t>(sel)), losses, epoch);
            model.record(epoch, cand.indices, losses);
            INFO("min_pool " << min_pool << " selection " << sel << " epoch " << epoch);
            REQUIRE(crest.active() == model.active());
            drops += crest.stats().pool_size < before ? 1 : 0;
            if ((epoch + 1) % 4 != 0) REQUIRE(crest.stats().pool_size == before);
        }
        if (min_pool < 0.9) CHECK(drops > 0);
        if (min_pool == 0.9) CHECK(crest.stats().dropped == 0);  // the pool guard: all or nothing
    }
}

TEST_CASE("crest: 2 500 easy examples, LossTable drops every evaluated one the guards allow, Streak few",
          "[crest][reference]") {
    // Ten classes of 250, every loss 0.05 < alpha. After the 20th selection, the reference rule
    // drops every example evaluated at least once (a class keeps its never-evaluated examples,
    // more than s = 3 of them); the library's rule drops only examples recorded in 5 rounds.
    std::vector<Index> sizes(10, 250);
    const IndexVector y = sized_labels(sizes);
    for (CrestLearnedRule rule : {CrestLearnedRule::LossTable, CrestLearnedRule::Streak}) {
        CrestOptions o;
        o.batch_size = 8;
        o.drop_learned = true;
        o.learned_rule = rule;
        o.min_pool_fraction = 0;  // (with the default 0.8 the reference code's guard keeps everyone)
        Crest crest(y, o);
        REQUIRE(crest.per_class_size() == 3);
        std::vector<Index> times(2500, 0);
        for (Index round = 0; round < 20; ++round) {
            const CrestCandidates cand = crest.candidates();
            std::set<Index> distinct(cand.indices.begin(), cand.indices.end());
            for (Index i : distinct) ++times[static_cast<std::size_t>(i)];
            crest.select(coreset_test::gaussian<double>(cand.size(), 3, static_cast<std::uint64_t>(round)),
                         Eigen::VectorXd::Constant(cand.size(), 0.05));
            if (round < 19) REQUIRE(crest.stats().dropped == 0);
        }
        std::vector<Index> expected;
        for (Index i = 0; i < 2500; ++i) {
            const Index need = rule == CrestLearnedRule::LossTable ? 1 : 5;
            if (times[static_cast<std::size_t>(i)] < need) expected.push_back(i);
        }
        INFO("rule " << rule << ": dropped " << crest.stats().dropped);
        REQUIRE(crest.active() == expected);  // no guard binds here
        if (rule == CrestLearnedRule::LossTable) CHECK(crest.stats().dropped > 1000);
        if (rule == CrestLearnedRule::Streak) CHECK(crest.stats().dropped < 100);
    }
}

TEST_CASE("crest: LossTable keeps a whole class whose survivors would be <= s, Streak drops down to s",
          "[crest][reference]") {
    // Class 0 has 6 examples and s = 3: after a few rounds all 6 are evaluated with low losses.
    const IndexVector y = sized_labels({6, 200});
    for (CrestLearnedRule rule : {CrestLearnedRule::LossTable, CrestLearnedRule::Streak}) {
        CrestOptions o = small_options();
        o.drop_learned = true;
        o.learned_rule = rule;
        o.subset_fraction = 0.03;  // s = ceil(0.03 * 206 / 2) = 4
        o.initial_coresets = 4;
        o.watch_window = 1;
        o.drop_interval = 6;
        o.min_pool_fraction = 0;
        Crest crest(y, o);
        REQUIRE(crest.per_class_size() == 4);
        for (Index round = 0; round < 6; ++round) {
            const CrestCandidates cand = crest.candidates();
            Eigen::VectorXd losses(cand.size());
            for (Index j = 0; j < cand.size(); ++j) losses[j] = y[cand.indices[static_cast<std::size_t>(j)]] == 0 ? 0.01 : 0.9;
            crest.select(coreset_test::gaussian<double>(cand.size(), 2, static_cast<std::uint64_t>(round)), losses);
        }
        Index class0 = 0;
        for (Index i : crest.active()) class0 += y[i] == 0 ? 1 : 0;
        INFO("rule " << rule);
        // 6 rounds x 4 subsets x 4 draws of 6 rows: every row of class 0 was evaluated (the chance
        // that one was not is (2/3)^16 per row).
        CHECK(class0 == (rule == CrestLearnedRule::LossTable ? 6 : 4));
        CHECK(crest.stats().pool_size == 200 + class0);  // class 1 is hard: nobody leaves it
    }
}

TEST_CASE("crest: first_interval sets the first region's T1 and leaves P for the second round", "[crest][reference]") {
    const IndexVector y = sized_labels({40, 40});
    for (Index first : {Index(0), Index(1), Index(3)}) {
        CrestOptions o = small_options();
        o.interval_mul = 4;  // powers of two: the ratios below are exact
        o.batch_num_mul = 2;
        o.initial_coresets = 2;
        o.first_interval = first;
        Crest crest(y, o);
        auto round = [&](double h) {
            const CrestCandidates cand = crest.candidates();
            crest.select(coreset_test::gaussian<double>(cand.size(), 2, 5), Eigen::VectorXd::Ones(cand.size()));
            crest.begin_region(1.0, Eigen::VectorXd::Ones(3), Eigen::VectorXd::Constant(3, h));
            return cand.subsets.size();
        };
        REQUIRE(round(1.0) == 2);
        INFO("first_interval " << first);
        if (first == 0) {
            CHECK(crest.stats().interval == 4);  // ceil(interval_mul)
            CHECK(crest.stats().coresets == 8);  // ceil(b * T1)
        } else {
            CHECK(crest.stats().interval == first);
            CHECK(crest.stats().coresets == 2);  // unchanged: the second round draws initial_coresets
        }
        for (Index t = 1; t <= crest.stats().interval; ++t) {
            CHECK(crest.should_check() == false);
            crest.record_update(Eigen::VectorXd::Zero(3));
        }
        CHECK(crest.should_check());
        // Later regions follow the formula either way: T1 = ceil(4 * |h_0| / |h|), P = ceil(2 T1).
        round(0.5);
        CHECK(crest.stats().interval == 8);
        CHECK(crest.stats().coresets == 10);  // capped by max_coresets
    }
}

TEMPLATE_TEST_CASE("crest: ceil_class_sizes gives every class ceil(m / C_p) picks of the shared engine", "[crest][reference]",
                   float, double) {
    // Three classes, one with fewer rows per subset than its share; m = 10 -> ceil(10 / 3) = 4.
    const IndexVector y = sized_labels({300, 300, 20});
    CrestOptions o = CrestOptions::reference();
    o.batch_size = 10;
    o.subset_fraction = 0.05;  // s = ceil(0.05 * 620 / 3) = 11
    o.initial_coresets = 3;
    Crest crest(y, o);
    REQUIRE(crest.per_class_size() == 11);
    const CrestCandidates cand = crest.candidates();
    const Matrix<TestType> g = coreset_test::gaussian<TestType>(cand.size(), 4, 8);
    crest.select(g, Eigen::VectorXd::Ones(cand.size()));
    Index offset = 0;
    Eigen::VectorXd raw(0);
    for (std::size_t p = 0; p < cand.subsets.size(); ++p) {
        const auto& subset = cand.subsets[p];
        const CrestBatch& b = crest.coresets()[p];
        CHECK(b.size() == 12);  // C_p ceil(m / C_p) = 3 * 4 >= m
        std::vector<Index> expected;
        std::vector<double> counts;
        for (Index c = 0; c < 3; ++c) {
            std::vector<Index> local;
            for (std::size_t j = 0; j < subset.size(); ++j)
                if (y[subset[j]] == c) local.push_back(offset + static_cast<Index>(j));
            const Matrix<TestType> rows = rows_of<TestType>(g, local);
            FacilityLocationOptions fo;
            fo.metric = Metric::ExpEuclidean;
            fo.greedy = Greedy::Lazy;
            const auto fl = facility_location(rows, std::min<Index>(4, rows.rows()), fo);
            for (Eigen::Index t = 0; t < fl.size(); ++t) {
                expected.push_back(cand.indices[static_cast<std::size_t>(local[static_cast<std::size_t>(fl.indices[static_cast<std::size_t>(t)])])]);
                counts.push_back(static_cast<double>(fl.weights[t]));
            }
        }
        CHECK(b.indices == expected);
        const Eigen::Index old = raw.size();
        raw.conservativeResize(old + static_cast<Index>(counts.size()));
        for (std::size_t t = 0; t < counts.size(); ++t) raw[old + static_cast<Index>(t)] = counts[t];
        offset += static_cast<Index>(subset.size());
    }
    // Weights: the counts normalised to mean 1 over the union, as the code's
    // subset_weights / sum * len(subset).
    Index pos = 0;
    for (const CrestBatch& b : crest.coresets())
        for (Index j = 0; j < b.size(); ++j, ++pos)
            CHECK_THAT(b.weights[j], Catch::Matchers::WithinRel(raw[pos] / raw.sum() * static_cast<double>(raw.size()), 1e-12));
}

TEST_CASE("crest: ShuffledUnion serves permutations of the union in batches, seeded", "[crest][reference]") {
    // Three classes and ceil_class_sizes: 4 coresets of 3 x ceil(7 / 3) = 9 rows, served in
    // batches of m = 7: five full ones and one of 1.
    const IndexVector y = sized_labels({70, 70, 70});
    auto serve = [&](std::uint64_t seed, std::vector<std::vector<std::pair<Index, double>>>& passes,
                     std::vector<std::pair<Index, double>>& all) {
        CrestOptions o = small_options();
        o.serving = CrestServing::ShuffledUnion;
        o.ceil_class_sizes = true;
        o.batch_size = 7;
        o.initial_coresets = 4;
        o.seed = seed;
        Crest crest(y, o);
        const CrestCandidates cand = crest.candidates();
        crest.select(coreset_test::gaussian<double>(cand.size(), 3, 2), Eigen::VectorXd::Ones(cand.size()));
        all.clear();
        for (const CrestBatch& b : crest.coresets())
            for (Index j = 0; j < b.size(); ++j) all.emplace_back(b.indices[static_cast<std::size_t>(j)], b.weights[j]);
        const std::size_t U = all.size();
        passes.clear();
        for (int pass = 0; pass < 3; ++pass) {
            std::vector<std::pair<Index, double>> got;
            const std::size_t batches = (U + 6) / 7;
            for (std::size_t t = 0; t < batches; ++t) {
                const CrestBatch b = crest.next_batch();
                CHECK(b.coreset == -1);
                CHECK(static_cast<std::size_t>(b.size()) == (t + 1 < batches ? 7 : U - 7 * (batches - 1)));
                for (Index j = 0; j < b.size(); ++j) got.emplace_back(b.indices[static_cast<std::size_t>(j)], b.weights[j]);
            }
            passes.push_back(got);
        }
    };
    std::vector<std::vector<std::pair<Index, double>>> a, b, c;
    std::vector<std::pair<Index, double>> union_a, union_b, union_c;
    serve(1, a, union_a);
    serve(1, b, union_b);
    serve(2, c, union_c);
    REQUIRE(union_a.size() == 36);
    std::sort(union_a.begin(), union_a.end());
    for (const auto& pass : a) {
        auto sorted = pass;
        std::sort(sorted.begin(), sorted.end());
        CHECK(sorted == union_a);  // each pass is a permutation of the union, weights included
    }
    CHECK(a[1] != a[0]);  // reshuffled between passes
    CHECK(a[2] != a[1]);
    CHECK(a == b);  // the same seed serves the same batches
    CHECK(a != c);
}

TEST_CASE("crest: select with an epoch drops after epochs T2 - 1, 2 T2 - 1, ... and rejects a negative one",
          "[crest][reference]") {
    const IndexVector y = sized_labels({50, 50});
    CrestOptions o = small_options();
    o.drop_learned = true;
    o.alpha = 1e9;  // every recorded example counts as learned
    o.watch_window = 1;
    o.drop_interval = 3;
    o.min_pool_fraction = 0;
    Crest crest(y, o);
    const CrestCandidates first = crest.candidates();
    REQUIRE_THROWS_MATCHES(crest.select(Eigen::MatrixXd::Ones(first.size(), 2), Eigen::VectorXd::Ones(first.size()), -1),
                           std::invalid_argument, message_is("Crest::select(): epoch must be >= 0 (got -1)"));
    for (Index epoch : {Index(0), Index(1), Index(1), Index(2), Index(4), Index(5)}) {
        const Index before = crest.stats().pool_size;
        const CrestCandidates cand = crest.candidates();
        crest.select(coreset_test::gaussian<double>(cand.size(), 2, 3), Eigen::VectorXd::Zero(cand.size()), epoch);
        INFO("epoch " << epoch);
        CHECK((crest.stats().pool_size < before) == (epoch % 3 == 2));
    }
}
