// SPDX-License-Identifier: MIT
/// \file detail/class_split.hpp
/// \brief Per-class selection in one place: splitting a budget over the classes of
/// detail::class_labels (ClassBudget), running a selector per class and merging with global indices; and the
/// per-batch representation (consecutive mini-batch means) used by the `select_batches` variants.
/// Not part of the public API.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <exception>
#include <numeric>
#include <tuple>
#include <utility>
#include <vector>

#include "../core.hpp"
#include "../factored.hpp"
#include "checks.hpp"
#include "parallel.hpp"

namespace coreset {
namespace detail {

/// Whether `policy` is one of ClassBudget's enumerators.
inline bool is_class_budget(ClassBudget policy) noexcept {
    return policy == ClassBudget::Proportional || policy == ClassBudget::Equal || policy == ClassBudget::Ceil ||
           policy == ClassBudget::EqualCeil;
}

/// Splits `budget` over classes of the given sizes. No class gets more than its size, and empty
/// classes get 0. Proportional and Equal sum to exactly `budget`; Ceil and EqualCeil (the
/// reference codes' rules) need not. Requires 1 <= budget <= sum(sizes).
///
/// - Proportional: quota_c = budget * n_c / n; each class gets floor(quota_c), and the remaining
///   units go to the largest remainders (ties: lower class index). Then every non-empty class with
///   0 gets 1, taken from the class with the largest allocation (ties: higher class index), as long
///   as the budget allows (budget >= number of non-empty classes).
/// - Equal: water-filling: every non-empty class gets min(n_c, level); units left over by small
///   classes are spread over the others; the last budget % (classes with room) units go to the
///   largest classes with room (ties: lower class index).
/// - Ceil: ceil(budget * n_c / n) in exact integer arithmetic (<= n_c since budget <= n). The total
///   is at least `budget` and below budget + (number of non-empty classes).
/// - EqualCeil: level = ceil(budget / C) with C the number of non-empty classes; the classes with
///   n_c < level ("minority") get n_c, every other class min(n_c, level + ceil(s / m)) with s the
///   minority's shortfall sum(level - n_c) and m the number of minority classes (baharanm/craig's
///   `equal_num` rule, in integers).
inline std::vector<Eigen::Index> split_budget(const std::vector<Eigen::Index>& sizes, Eigen::Index budget,
                                              ClassBudget policy) {
    const std::size_t C = sizes.size();
    const Eigen::Index n = std::accumulate(sizes.begin(), sizes.end(), Eigen::Index(0));
    std::vector<Eigen::Index> alloc(C, 0);
    if (budget <= 0 || n == 0) return alloc;
    std::vector<std::size_t> nonempty;
    for (std::size_t c = 0; c < C; ++c)
        if (sizes[c] > 0) nonempty.push_back(c);

    if (policy == ClassBudget::Ceil) {
        for (std::size_t c = 0; c < C; ++c) {
            // budget * n_c <= n * n_c: fits in 64 bits for any realistic n (n <= 3e9).
            const long long num = static_cast<long long>(budget) * static_cast<long long>(sizes[c]);
            const long long q = num / n + (num % n != 0 ? 1 : 0);
            alloc[c] = std::min(sizes[c], static_cast<Eigen::Index>(q));
        }
        return alloc;
    }
    if (policy == ClassBudget::EqualCeil) {
        const auto classes = static_cast<Eigen::Index>(nonempty.size());
        const Eigen::Index level = (budget - 1) / classes + 1;  // ceil, without overflow
        Eigen::Index shortfall = 0, minority = 0;
        for (std::size_t c : nonempty)
            if (sizes[c] < level) {
                shortfall += level - sizes[c];
                ++minority;
            }
        const Eigen::Index bonus = minority > 0 ? (shortfall - 1) / minority + 1 : 0;
        for (std::size_t c : nonempty)
            alloc[c] = sizes[c] < level ? sizes[c] : std::min(sizes[c], level + bonus);
        return alloc;
    }
    if (policy == ClassBudget::Proportional) {
        std::vector<Eigen::Index> rem(C, 0);
        Eigen::Index given = 0;
        for (std::size_t c = 0; c < C; ++c) {
            // budget * n_c <= n * n_c: fits in 64 bits for any realistic n (n <= 3e9).
            const long long num = static_cast<long long>(budget) * static_cast<long long>(sizes[c]);
            alloc[c] = static_cast<Eigen::Index>(num / n);
            rem[c] = static_cast<Eigen::Index>(num % n);
            given += alloc[c];
        }
        std::vector<std::size_t> order(C);
        std::iota(order.begin(), order.end(), std::size_t(0));
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return rem[a] > rem[b]; });
        for (std::size_t t = 0; given < budget; ++t) {
            ++alloc[order[t]];  // rem > 0 here, so alloc stays <= n_c
            ++given;
        }
        if (budget >= static_cast<Eigen::Index>(nonempty.size())) {
            for (std::size_t c : nonempty) {
                if (alloc[c] > 0) continue;
                std::size_t donor = 0;
                for (std::size_t d = 0; d < C; ++d)
                    if (alloc[d] >= alloc[donor]) donor = d;
                --alloc[donor];
                alloc[c] = 1;
            }
        }
        return alloc;
    }

    // Equal: water-filling.
    Eigen::Index remaining = budget;
    std::vector<std::size_t> open = nonempty;
    while (remaining > 0 && !open.empty()) {
        const Eigen::Index share = remaining / static_cast<Eigen::Index>(open.size());
        if (share == 0) {
            std::vector<std::size_t> by_size = open;
            std::stable_sort(by_size.begin(), by_size.end(),
                             [&](std::size_t a, std::size_t b) { return sizes[a] - alloc[a] > sizes[b] - alloc[b]; });
            for (Eigen::Index t = 0; t < remaining; ++t) ++alloc[by_size[static_cast<std::size_t>(t)]];
            remaining = 0;
            break;
        }
        std::vector<std::size_t> still_open;
        for (std::size_t c : open) {
            const Eigen::Index take = std::min(share, sizes[c] - alloc[c]);
            alloc[c] += take;
            remaining -= take;
            if (alloc[c] < sizes[c]) still_open.push_back(c);
        }
        open.swap(still_open);
    }
    return alloc;
}

/// Copies the given rows of `x` into a row-major matrix.
template <class Derived>
RowMatrix<typename Derived::Scalar> gather_rows(const Eigen::MatrixBase<Derived>& x, const std::vector<Eigen::Index>& rows) {
    RowMatrix<typename Derived::Scalar> out(static_cast<Eigen::Index>(rows.size()), x.cols());
    for (std::size_t r = 0; r < rows.size(); ++r) out.row(static_cast<Eigen::Index>(r)) = x.row(rows[r]);
    return out;
}

/// How per_class merges the per-class objective traces.
enum class ObjectiveMerge {
    Concatenate,  ///< each class's own trace, one after the other
    Cumulative    ///< an additive objective: earlier classes' final values are added (F of the union)
};

/// Runs `select_one(class_rows, class_budget, class_index)` -> Coreset<Scalar> (local indices) for
/// every class with a positive budget and merges the results: global indices, class by class in
/// class order; objectives merged as `merge` says; status BudgetReached unless some class stopped
/// early (then the first such class's status). Classes run in parallel under OpenMP when
/// `parallel` is true; the result does not depend on the number of threads.
/// `x` is an Eigen matrix or FactoredGradients; `select_one` receives the class's rows in the same
/// form (gather_rows).
template <class Scalar, class X, class Fn>
Coreset<Scalar> per_class(const X& x, const std::vector<std::vector<Eigen::Index>>& groups,
                          const std::vector<Eigen::Index>& budgets, bool parallel, Fn&& select_one,
                          ObjectiveMerge merge = ObjectiveMerge::Concatenate) {
    const auto C = static_cast<std::ptrdiff_t>(groups.size());
    std::vector<Coreset<Scalar>> parts(groups.size());
    // When several classes throw (a callback's own exception, std::bad_alloc, ...), the lowest
    // class's exception reaches the caller, whatever the threads' timing.
    RegionExceptions errors;
    (void)parallel;
    CORESET_OMP(omp parallel for schedule(dynamic, 1) if (parallel && C > 1))
    for (std::ptrdiff_t c = 0; c < C; ++c) {
        const auto cu = static_cast<std::size_t>(c);
        note_team();
        if (budgets[cu] <= 0) continue;
        errors.run(c, [&] {
            const auto rows = gather_rows(x, groups[cu]);
            parts[cu] = select_one(rows, budgets[cu], cu);
        });
    }
    errors.rethrow();

    Coreset<Scalar> out;
    Eigen::Index total = 0;
    for (const auto& p : parts) total += p.size();
    out.weights.resize(total);
    Eigen::Index pos = 0;
    for (std::size_t c = 0; c < parts.size(); ++c) {
        const auto& p = parts[c];
        for (Eigen::Index j = 0; j < p.size(); ++j) {
            out.indices.push_back(groups[c][static_cast<std::size_t>(p.indices[static_cast<std::size_t>(j)])]);
            out.weights[pos++] = p.weights[j];
        }
        const double offset = (merge == ObjectiveMerge::Cumulative && !out.objective.empty()) ? out.objective.back() : 0.0;
        for (double v : p.objective) out.objective.push_back(v + offset);
        if (out.status == Status::BudgetReached && budgets[c] > 0 && p.status != Status::BudgetReached)
            out.status = p.status;
    }
    return out;
}

/// Forwards the steps of one class to the caller's callbacks as steps of the whole selection:
/// global row indices, one step count over all classes, the objective plus `offset` (the final
/// objectives of the classes before, for an additive objective; 0 otherwise); remembers a stop.
template <class... Callbacks>
struct ClassStepRelay {
    std::tuple<Callbacks&...> callbacks;
    const std::vector<Eigen::Index>* rows;
    Eigen::Index* step;
    bool* stopped;
    double offset;

    bool on_step(const StepInfo& info) {
        StepInfo global = info;
        global.picked = (*rows)[static_cast<std::size_t>(info.picked)];
        global.step = (*step)++;
        global.objective = info.objective + offset;
        const bool stop = std::apply([&](auto&... cbs) { return notify_step(global, cbs...); }, callbacks);
        if (stop) *stopped = true;
        return stop;
    }
};

/// per_class for a selector's per-class overload with the caller's callbacks:
/// `select_one(class_rows, class_budget, relays...)` runs one class with the given callbacks
/// (none, or one ClassStepRelay). Without callbacks the classes run in parallel; with callbacks
/// they run one after the other (each class's own work still uses the team), so that the
/// callbacks are called from one thread at a time, in the order of the merged result: they see
/// global row indices, a step count over all classes and the merged objective, and a stop skips
/// the classes not yet selected (the result then holds the classes selected so far).
template <class Scalar, class X, class Fn, class... Callbacks>
Coreset<Scalar> per_class_observed(const X& x, const std::vector<std::vector<Eigen::Index>>& groups,
                                   const std::vector<Eigen::Index>& budgets, ObjectiveMerge merge, Fn&& select_one,
                                   Callbacks&... callbacks) {
    if constexpr (sizeof...(Callbacks) == 0) {
        return per_class<Scalar>(
            x, groups, budgets, true, [&](const auto& rows, Eigen::Index k, std::size_t) { return select_one(rows, k); },
            merge);
    } else {
        Eigen::Index step = 0;
        bool stopped = false;
        double offset = 0.0;
        return per_class<Scalar>(
            x, groups, budgets, false,
            [&](const auto& rows, Eigen::Index k, std::size_t c) {
                if (stopped) {
                    Coreset<Scalar> none;
                    none.status = Status::StoppedByCallback;
                    return none;
                }
                ClassStepRelay<Callbacks...> relay{std::tuple<Callbacks&...>(callbacks...), &groups[c], &step, &stopped,
                                                   offset};
                Coreset<Scalar> part = select_one(rows, k, relay);
                if (merge == ObjectiveMerge::Cumulative && !part.objective.empty()) offset += part.objective.back();
                return part;
            },
            merge);
    }
}

/// Consecutive mini-batches of `batch_size` rows (the last may be smaller): their mean rows and
/// sizes. Each mean is summed in double over the rows divided by the batch size, so that the mean
/// of finite rows is finite even when their sum is not (rows near the largest float or double).
template <class Derived>
void batch_means(const Eigen::MatrixBase<Derived>& x, Eigen::Index batch_size,
                 RowMatrix<typename Derived::Scalar>& means, Vector<typename Derived::Scalar>& sizes) {
    using Scalar = typename Derived::Scalar;
    const Eigen::Index n = x.rows(), B = n > 0 ? (n - 1) / batch_size + 1 : 0;  // no overflow for any batch_size
    means.resize(B, x.cols());
    sizes.resize(B);
    Eigen::Matrix<double, 1, Eigen::Dynamic> mean(x.cols());
    for (Eigen::Index b = 0; b < B; ++b) {
        const Eigen::Index lo = b * batch_size, len = std::min(batch_size, n - lo);
        const double inv = 1.0 / static_cast<double>(len);
        mean.setZero();
        for (Eigen::Index i = lo; i < lo + len; ++i) mean += x.row(i).template cast<double>() * inv;
        means.row(b) = mean.template cast<Scalar>();
        sizes[b] = static_cast<Scalar>(len);
    }
}

/// Expands a coreset of batches into their members: every member of batch b inherits
/// `weights[b] / |b|`, so that sum_i w_i g_i over the members equals sum_b w_b * mean_b. Indices in
/// batch selection order, members in row order.
template <class Scalar>
Coreset<Scalar> expand_batches(const Coreset<Scalar>& batches, Eigen::Index n, Eigen::Index batch_size) {
    Coreset<Scalar> out;
    out.objective = batches.objective;
    out.status = batches.status;
    std::vector<Scalar> w;
    for (Eigen::Index j = 0; j < batches.size(); ++j) {
        const Eigen::Index b = batches.indices[static_cast<std::size_t>(j)];
        const Eigen::Index lo = b * batch_size, hi = lo + std::min(batch_size, n - lo);
        const Scalar wb = batches.weights[j] / static_cast<Scalar>(hi - lo);
        for (Eigen::Index i = lo; i < hi; ++i) {
            out.indices.push_back(i);
            w.push_back(wb);
        }
    }
    out.weights = Eigen::Map<const Vector<Scalar>>(w.data(), static_cast<Eigen::Index>(w.size()));
    return out;
}

}  // namespace detail
}  // namespace coreset
