// SPDX-License-Identifier: MIT
// schedule.hpp: the epoch plan against CORDS' warm-start arithmetic and by brute force, the
// per-batch loss weights and clipping as closed forms, and the seeded permutations.
#include <algorithm>
#include <coreset/schedule.hpp>
#include <set>
#include <vector>

#include "test_support.hpp"

using namespace coreset;
using coreset_test::message_is;
using Index = Eigen::Index;

TEST_CASE("Schedule: CORDS' GRAD-MATCH-PB-WARM setting, 300 epochs at 10 %, kappa 1/2, R = 20", "[schedule]") {
    const Schedule s({300, 20, 0.5, 0.1});
    // select_after = int(kappa T) = 150, warm-up = ceil(150 * 0.1) = 15 full epochs.
    CHECK(s.first_subset_epoch() == 150);
    CHECK(s.full_epochs() == 15);
    CHECK(s.selections() == 8);  // epochs 150, 170, ..., 290
    CHECK_THAT(s.data_passes(), Catch::Matchers::WithinRel(15 + 150 * 0.1, 1e-12));
    std::vector<int> count(4, 0);
    for (Index e = 0; e < 300; ++e) ++count[static_cast<std::size_t>(s.at(e))];
    CHECK(count[static_cast<std::size_t>(EpochPlan::Full)] == 15);
    CHECK(count[static_cast<std::size_t>(EpochPlan::Skip)] == 135);
    CHECK(count[static_cast<std::size_t>(EpochPlan::Select)] == 8);
    CHECK(count[static_cast<std::size_t>(EpochPlan::Reuse)] == 142);
    CHECK(s.at(14) == EpochPlan::Full);
    CHECK(s.at(15) == EpochPlan::Skip);
    CHECK(s.at(150) == EpochPlan::Select);
    CHECK(s.at(151) == EpochPlan::Reuse);
    CHECK(s.at(170) == EpochPlan::Select);
}

TEST_CASE("Schedule: every small setting against a direct reading of the rules", "[schedule]") {
    for (Index T = 1; T <= 12; ++T)
        for (Index R = 1; R <= 4; ++R)
            for (double kappa : {0.0, 0.25, 0.5, 0.9})
                for (double f : {0.1, 0.3, 1.0}) {
                    const Schedule s({T, R, kappa, f});
                    const auto after = static_cast<Index>(kappa * static_cast<double>(T));
                    Index full = 0;
                    while (static_cast<double>(full) < static_cast<double>(after) * f - 1e-9) ++full;
                    Index selections = 0;
                    for (Index e = 0; e < T; ++e) {
                        const EpochPlan want = e < full    ? EpochPlan::Full
                                               : e < after ? EpochPlan::Skip
                                               : (e - after) % R == 0 ? EpochPlan::Select
                                                                      : EpochPlan::Reuse;
                        INFO("T " << T << " R " << R << " kappa " << kappa << " f " << f << " epoch " << e);
                        CHECK(s.at(e) == want);
                        selections += want == EpochPlan::Select;
                    }
                    CHECK(s.selections() == selections);
                    CHECK(s.full_epochs() == full);
                }
    // No warm start: epoch 0 selects.
    CHECK(Schedule({5, 2, 0.0, 0.1}).at(0) == EpochPlan::Select);
}

TEST_CASE("batch_loss_weights and clip_weights: closed forms", "[schedule]") {
    const Eigen::VectorXd w = (Eigen::VectorXd(4) << 1, 3, 4, 2).finished();
    const Eigen::VectorXd b = batch_loss_weights(w);
    CHECK_THAT(b.sum(), Catch::Matchers::WithinRel(1.0, 1e-12));
    CHECK_THAT(b[1], Catch::Matchers::WithinRel(0.3, 1e-12));
    // The weighted batch loss is sum_j w_j l_j / sum_j w_j, whatever the weights' scale.
    const Eigen::VectorXd losses = (Eigen::VectorXd(4) << 0.5, 1.0, 2.0, 4.0).finished();
    CHECK_THAT(b.dot(losses), Catch::Matchers::WithinRel(w.dot(losses) / w.sum(), 1e-12));
    CHECK((batch_loss_weights(Eigen::VectorXd(100 * w)) - b).norm() < 1e-15);
    // Clipping at 1.2 times the mean (mean 2.5 -> cap 3): {1, 3, 3, 2}, rescaled to mean 1.
    const Eigen::VectorXd c = clip_weights(w, 1.2);
    const Eigen::VectorXd want = (Eigen::VectorXd(4) << 1, 3, 3, 2).finished() * (4.0 / 9.0);
    CHECK((c - want).norm() < 1e-12);
    CHECK_THAT(c.mean(), Catch::Matchers::WithinRel(1.0, 1e-12));
    // A ratio above the largest weight only rescales.
    const Eigen::VectorXf wf = w.cast<float>();
    CHECK((clip_weights(wf, 10.0) - (wf * (4.0f / wf.sum()))).norm() < 1e-6f);
}

TEST_CASE("epoch_permutation: a permutation, fixed by seed and epoch", "[schedule]") {
    const auto a = epoch_permutation(1000, 7, 3);
    std::vector<Index> sorted = a;
    std::sort(sorted.begin(), sorted.end());
    for (Index i = 0; i < 1000; ++i) REQUIRE(sorted[static_cast<std::size_t>(i)] == i);
    CHECK(a == epoch_permutation(1000, 7, 3));
    CHECK(a != epoch_permutation(1000, 7, 4));
    CHECK(a != epoch_permutation(1000, 8, 3));
    CHECK(epoch_permutation(0, 1, 0).empty());
}

TEST_CASE("Schedule helpers reject bad input", "[schedule]") {
    CHECK_THROWS_MATCHES(Schedule({0, 1, 0.0, 1.0}), std::invalid_argument,
                         message_is("ScheduleOptions::validate(): epochs must satisfy epochs >= 1 (got 0)"));
    CHECK_THROWS_MATCHES(Schedule({5, 0, 0.0, 1.0}), std::invalid_argument,
                         message_is("ScheduleOptions::validate(): reselect_every must satisfy reselect_every >= 1 (got 0)"));
    CHECK_THROWS_MATCHES(Schedule({5, 1, 1.0, 1.0}), std::invalid_argument,
                         message_is("ScheduleOptions::validate(): warm_fraction must satisfy 0 <= warm_fraction < 1 (got 1)"));
    CHECK_THROWS_MATCHES(Schedule({5, 1, 0.5, 0.0}), std::invalid_argument,
                         message_is("ScheduleOptions::validate(): budget_fraction must satisfy 0 < budget_fraction <= 1 (got 0)"));
    CHECK_THROWS_MATCHES(Schedule({5, 1, 0.0, 1.0}).at(5), std::invalid_argument,
                         message_is("Schedule::at(): epoch must satisfy 0 <= epoch < epochs (got epoch = 5, epochs = 5)"));
    CHECK_THROWS_MATCHES(batch_loss_weights(Eigen::VectorXd(0)), std::invalid_argument,
                         message_is("coreset::batch_loss_weights(): batch_weights must not be empty (got size 0)"));
    CHECK_THROWS_MATCHES(batch_loss_weights((Eigen::VectorXd(2) << 1, 0).finished()), std::invalid_argument,
                         message_is("coreset::batch_loss_weights(): batch_weights must be > 0 (got 0 at index 1)"));
    CHECK_THROWS_MATCHES(clip_weights(Eigen::VectorXd::Ones(2), 0.5), std::invalid_argument,
                         message_is("coreset::clip_weights(): max_ratio must satisfy 1 <= max_ratio < inf (got 0.5)"));
    CHECK_THROWS_MATCHES(epoch_permutation(-1, 0, 0), std::invalid_argument,
                         message_is("coreset::epoch_permutation(): n must satisfy n >= 0 (got -1)"));
}
