// SPDX-License-Identifier: MIT
/// \file mpi.hpp
/// \brief GreeDi (Mirzasoleiman, Karbasi, Sarkar and Krause, "Distributed Submodular
/// Maximization: Identifying Representative Elements in Massive Data", NIPS 2013): facility
/// location over rows spread across the ranks of an MPI communicator.
///
/// Needs MPI (`<mpi.h>`, link `MPI::MPI_CXX`); not included by `coreset.hpp`. The algorithm:
///  1. every rank runs the greedy on its own shard of rows for kappa picks (`local_budget`,
///     default the budget k); a pick's weight is the number of shard rows it represents;
///  2. the candidates (all ranks' picks, with their weights as multiplicities) are gathered and
///     the root runs the weighted greedy (`weighted_facility_location`) on them for k picks;
///  3. every rank measures, on its own rows, the medoid cost of the stage-2 solution and of each
///     rank's first k stage-1 picks (one GEMM of its rows against the candidates); the solution
///     with the lowest cost over all n rows wins (GreeDi's final max), and its weights are the
///     numbers of rows, over all ranks, whose nearest pick it is (ties to the earliest pick).
/// Every rank returns the same result, with global row indices. See docs/distributed.md for when
/// to use it and what is (and is not) guaranteed.
#pragma once

#include <mpi.h>

#include <Eigen/Core>
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "core.hpp"
#include "detail/checks.hpp"
#include "detail/parallel.hpp"
#include "detail/rng.hpp"
#include "facility_location.hpp"

namespace coreset {

/// Options of GreeDi. Every field has a default; `validate()` checks ranges. Every rank must pass
/// the same options (checked for the fields that decide the control flow).
struct GreeDiOptions {
    /// Distance between rows (both stages and the final assignment). Default Euclidean.
    Metric metric = Metric::Euclidean;
    /// Greedy variant of both stages. Default Lazy.
    Greedy greedy = Greedy::Lazy;
    /// Stochastic greedy's epsilon, in (0, 1). Default 0.01.
    double epsilon = 0.01;
    /// Seed: of the stochastic samplers (rank r's stage 1 uses a seed derived from it and r) and of
    /// the random partition of `select_from_root`. Default 0.
    std::uint64_t seed = 0;
    /// Bytes the engine may allocate per stage-1 shard and for the stage-2 candidates; the final
    /// assignment's distance blocks also stay under it. Default 1 GiB.
    std::size_t memory_budget_bytes = std::size_t(1) << 30;
    /// Dense, blocked or automatic distance evaluation in both stages. Default Auto.
    Evaluation evaluation = Evaluation::Auto;
    /// Threads of the selector's own OpenMP regions (and of the Eigen products it runs outside
    /// them), >= 0; 0 (the default) = OpenMP's default (OMP_NUM_THREADS, else the number of
    /// cores). Bounds only the library's work: the caller's code and other threads are unaffected.
    /// Results do not depend on it.
    int num_threads = 0;
    /// Stage-1 picks per rank (kappa), at most the shard's size; 0 (the default) means the budget k.
    /// GreeDi's analysis uses kappa = k; a larger kappa gives stage 2 more to choose from.
    Eigen::Index local_budget = 0;
    /// Rank that runs stage 2 (and holds the input of `select_from_root`). Default 0.
    int root = 0;
    /// `select_from_root` only: deal the rows to the ranks in a random order drawn from `seed`
    /// (the partition under which Barbosa et al. 2015 prove GreeDi's constant factor), instead of
    /// contiguous blocks. Default true.
    bool random_partition = true;

    /// \throws std::invalid_argument naming the first out-of-range field.
    void validate() const {
        const char* where = "GreeDiOptions::validate()";
        engine().validate_as(where);
        detail::check_option(metric != Metric::ExpEuclidean, static_cast<int>(metric), where, "metric",
                             "metric != Metric::ExpEuclidean (GreeDi does not offer it)");
        detail::check_option(local_budget >= 0, local_budget, where, "local_budget", "local_budget >= 0");
        detail::check_option(root >= 0, root, where, "root", "root >= 0");
    }
    /// The facility-location options both stages run with (stage 1 on rank r reseeds them).
    FacilityLocationOptions engine() const {
        FacilityLocationOptions o;
        o.metric = metric;
        o.greedy = greedy;
        o.epsilon = epsilon;
        o.seed = seed;
        o.memory_budget_bytes = memory_budget_bytes;
        o.evaluation = evaluation;
        o.num_threads = num_threads;
        return o;
    }
};

namespace detail {

template <class Scalar>
MPI_Datatype mpi_type();
template <>
inline MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
inline MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }

struct MpiComm {
    MPI_Comm comm;
    int rank = 0;
    int size = 1;
    explicit MpiComm(MPI_Comm c) : comm(c) {
        MPI_Comm_rank(c, &rank);
        MPI_Comm_size(c, &size);
    }
};

/// Runs `fn` (local work only, no communication) on every rank. If it throws on any rank, every
/// rank throws the exception of the lowest such rank, with its message (std::invalid_argument and
/// std::logic_error keep their type, anything else becomes std::runtime_error), so that no rank is
/// left waiting in a later collective.
template <class F>
void collectively(const MpiComm& c, F&& fn) {
    int kind = 0;  // 0 none, 1 invalid_argument, 2 logic_error, 3 other
    std::string message;
    try {
        fn();
    } catch (const std::invalid_argument& e) {
        kind = 1;
        message = e.what();
    } catch (const std::logic_error& e) {
        kind = 2;
        message = e.what();
    } catch (const std::exception& e) {
        kind = 3;
        message = e.what();
    } catch (...) {
        kind = 3;
        message = "unknown exception";
    }
    int first = kind ? c.rank : c.size;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, c.comm);
    if (first == c.size) return;
    int head[2] = {kind, static_cast<int>(message.size())};
    MPI_Bcast(head, 2, MPI_INT, first, c.comm);
    message.resize(static_cast<std::size_t>(head[1]));
    MPI_Bcast(&message[0], head[1], MPI_CHAR, first, c.comm);
    if (head[0] == 1) raise<std::invalid_argument>(message);
    if (head[0] == 2) raise<std::logic_error>(message);
    raise<std::runtime_error>(message);
}

/// Every rank must pass the same value for each named field (checked with one reduction).
inline void check_agreement(const MpiComm& c, const char* where, const std::vector<const char*>& names,
                            const std::vector<std::int64_t>& values) {
    const std::size_t f = values.size();
    std::vector<std::int64_t> v(2 * f);
    for (std::size_t i = 0; i < f; ++i) {
        v[i] = values[i];
        v[f + i] = values[i] == std::numeric_limits<std::int64_t>::min() ? std::numeric_limits<std::int64_t>::max()
                                                                         : -values[i];
    }
    MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(2 * f), MPI_INT64_T, MPI_MAX, c.comm);
    for (std::size_t i = 0; i < f; ++i)
        if (v[i] != -v[f + i])
            raise(where, ": ", names[i], " must be the same on every rank (got values from ", -v[f + i], " to ", v[i],
                  ")");
}

inline void check_options_agree(const MpiComm& c, const char* where, Eigen::Index budget, const GreeDiOptions& o,
                                std::size_t scalar_bytes) {
    check_agreement(c, where,
                    {"budget", "the scalar type's size", "options.root", "options.metric", "options.greedy",
                     "options.evaluation", "options.local_budget", "options.seed"},
                    {static_cast<std::int64_t>(budget), static_cast<std::int64_t>(scalar_bytes), o.root,
                     static_cast<std::int64_t>(o.metric), static_cast<std::int64_t>(o.greedy),
                     static_cast<std::int64_t>(o.evaluation), static_cast<std::int64_t>(o.local_budget),
                     static_cast<std::int64_t>(o.seed)});
    check_option(o.root < c.size, o.root, where, "options.root", "root < the communicator's size");
}

/// Forwards a stage's steps to the user's callbacks with `picked` as a global row index.
template <class... Callbacks>
struct GlobalPicks {
    const std::int64_t* ids;  // global index of each ground-set row of the stage
    std::tuple<Callbacks&...> callbacks;
    bool on_step(const StepInfo& info) {
        StepInfo global = info;
        global.picked = static_cast<Eigen::Index>(ids[info.picked]);
        return std::apply([&](auto&... cbs) { return notify_step(global, cbs...); }, callbacks);
    }
};

/// Distances from blocks of rows to a fixed candidate set, with the engine's numerics (rows
/// scaled by a power of two and centred, or normalised for the cosine metric; cancelled squared
/// distances recomputed directly) and fixed GEMM tile shapes, so that no distance depends on the
/// thread count.
template <class Scalar>
class CrossDistances {
public:
    static constexpr Eigen::Index tile_rows = 96, tile_cols = 240, depth_chunk = 128;

    /// `candidates`: c x d raw rows; `exponent`: the power of two of the largest magnitude over all
    /// rows (Euclidean metrics).
    CrossDistances(const RowMatrix<Scalar>& candidates, Metric metric, int exponent)
        : metric_(metric), exponent_(exponent), count_(candidates.rows()) {
        const Eigen::Index d = candidates.cols();
        centre_ = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>::Zero(d);
        if (metric_ != Metric::Cosine && count_ > 0) {
            const Eigen::Matrix<double, 1, Eigen::Dynamic> mean =
                (candidates.template cast<double>() * std::ldexp(1.0, -exponent_)).colwise().mean();
            centre_ = mean.template cast<Scalar>();
        }
        const Eigen::Index padded = (count_ + tile_cols - 1) / tile_cols * tile_cols;
        rhs_ = RowMatrix<Scalar>::Zero(std::max<Eigen::Index>(padded, tile_cols), d);
        for (Eigen::Index j = 0; j < count_; ++j) rhs_.row(j) = prepared(candidates.row(j));
        sq_ = rhs_.rowwise().squaredNorm();
        unit_ = metric_ == Metric::Cosine ? 1.0 : std::ldexp(1.0, metric_ == Metric::SquaredEuclidean ? 2 * exponent_ : exponent_);
    }

    Eigen::Index count() const noexcept { return count_; }
    Eigen::Index padded_count() const noexcept { return rhs_.rows(); }
    double unit() const noexcept { return unit_; }

    /// One row in the prepared coordinates.
    template <class Row>
    Eigen::Matrix<Scalar, 1, Eigen::Dynamic> prepared(const Row& row) const {
        if (metric_ == Metric::Cosine) {
            int e = 0;
            std::frexp(row.cwiseAbs().maxCoeff(), &e);
            Eigen::Matrix<Scalar, 1, Eigen::Dynamic> u = row * std::ldexp(Scalar(1), -e);
            return u / u.norm();
        }
        return row * static_cast<Scalar>(std::ldexp(1.0, -exponent_)) - centre_;
    }

    /// Distances from `lhs` (tile_rows x d, prepared, zero rows as padding) to every candidate:
    /// `out` is tile_rows x padded_count(), row-major; columns >= the candidate count are junk.
    void compute(const RowMatrix<Scalar>& lhs, RowMatrix<Scalar>& out, RowMatrix<Scalar>& gram) const {
        const Eigen::Index d = lhs.cols(), live_cols = count_;
        const Vector<Scalar> sl = lhs.rowwise().squaredNorm();
        out.resize(tile_rows, rhs_.rows());
        gram.resize(tile_rows, tile_cols);
        for (Eigen::Index c0 = 0; c0 < rhs_.rows(); c0 += tile_cols) {
            for (Eigen::Index k0 = 0; k0 < d; k0 += depth_chunk) {
                const Eigen::Index kn = std::min(depth_chunk, d - k0);
                const auto a = lhs.middleCols(k0, kn);
                const auto b = rhs_.block(c0, k0, tile_cols, kn);
                if (k0 == 0)
                    gram.noalias() = a * b.transpose();
                else
                    gram.noalias() += a * b.transpose();
            }
            const Eigen::Index cn = std::min(tile_cols, std::max<Eigen::Index>(0, live_cols - c0));
            for (Eigen::Index i = 0; i < tile_rows; ++i) {
                Scalar* o = out.row(i).data() + c0;
                const Scalar* g = gram.row(i).data();
                const Scalar* sq = sq_.data() + c0;
                const Scalar si = sl[i];
                for (Eigen::Index b = 0; b < cn; ++b) o[b] = si + sq[b] - Scalar(2) * g[b];
                for (Eigen::Index b = 0; b < cn; ++b)
                    if (o[b] < (si + sq[b]) * Scalar(1.0 / 256)) o[b] = (lhs.row(i) - rhs_.row(c0 + b)).squaredNorm();
                switch (metric_) {
                    case Metric::Euclidean:
                        for (Eigen::Index b = 0; b < cn; ++b) o[b] = std::sqrt(o[b]);
                        break;
                    case Metric::SquaredEuclidean: break;
                    case Metric::Cosine:
                        for (Eigen::Index b = 0; b < cn; ++b) o[b] *= Scalar(0.5);
                        break;
                    case Metric::ExpEuclidean: break;  // rejected by GreeDiOptions::validate()
                }
            }
        }
    }

private:
    Metric metric_;
    int exponent_;
    Eigen::Index count_;
    Eigen::Matrix<Scalar, 1, Eigen::Dynamic> centre_;
    RowMatrix<Scalar> rhs_;
    Vector<Scalar> sq_;
    double unit_ = 1.0;
};

/// Per-solution sums over a set of rows: acc[off_s + t] = sum over rows of the distance to the
/// nearest of the first t + 1 picks of solution s; counts[off_s + t] = rows whose nearest pick
/// (earliest on ties) is pick t of s; cmax = the largest distance seen.
struct SolutionSums {
    std::vector<double> acc;
    std::vector<std::int64_t> counts;
    double cmax = 0;
    void reset(std::size_t length) {
        acc.assign(length, 0.0);
        counts.assign(length, 0);
        cmax = 0;
    }
    void add(const SolutionSums& o) {
        for (std::size_t i = 0; i < acc.size(); ++i) acc[i] += o.acc[i];
        for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
        cmax = std::max(cmax, o.cmax);
    }
};

/// The sums of SolutionSums for this rank's rows. Rows go in groups of CrossDistances::tile_rows;
/// groups run in parallel and their sums are added in group order, so nothing depends on the
/// thread count.
template <class Scalar, class Derived>
SolutionSums local_solution_sums(const Eigen::MatrixBase<Derived>& rows, const CrossDistances<Scalar>& cross,
                                 const std::vector<std::vector<Eigen::Index>>& solutions,
                                 const std::vector<std::size_t>& offsets, std::size_t length,
                                 std::size_t memory_budget) {
    using RM = RowMatrix<Scalar>;
    const Eigen::Index m = rows.rows(), d = rows.cols(), q = CrossDistances<Scalar>::tile_rows;
    const Eigen::Index groups = (m + q - 1) / q;
    SolutionSums total;
    total.reset(length);
    if (groups == 0) return total;
    const int threads = max_threads();
    // Groups per round: enough for every thread, few enough that the per-thread distance blocks
    // and per-group sums stay within the memory budget.
    const std::size_t per_group = length * (sizeof(double) + sizeof(std::int64_t));
    const std::size_t per_thread = static_cast<std::size_t>(q * cross.padded_count() + q * (d + 2 * CrossDistances<Scalar>::tile_cols)) * sizeof(Scalar);
    Eigen::Index round = 4 * static_cast<Eigen::Index>(threads);
    while (round > 1 && static_cast<std::size_t>(round) * per_group + static_cast<std::size_t>(threads) * per_thread > memory_budget)
        --round;
    std::vector<SolutionSums> partial(static_cast<std::size_t>(round));
    std::vector<RM> lhs(static_cast<std::size_t>(threads)), dist(static_cast<std::size_t>(threads)),
        gram(static_cast<std::size_t>(threads));
    for (Eigen::Index g0 = 0; g0 < groups; g0 += round) {
        const Eigen::Index gn = std::min(round, groups - g0);
        CORESET_OMP(omp parallel for schedule(dynamic, 1))
        for (Eigen::Index gi = 0; gi < gn; ++gi) {
            const auto tid = static_cast<std::size_t>(thread_id());
            note_team();
            RM& z = lhs[tid];
            RM& dd = dist[tid];
            const Eigen::Index a = (g0 + gi) * q, r = std::min(q, m - a);
            z.setZero(q, d);
            for (Eigen::Index t = 0; t < r; ++t) z.row(t) = cross.prepared(rows.derived().row(a + t).template cast<Scalar>());
            cross.compute(z, dd, gram[tid]);
            SolutionSums& part = partial[static_cast<std::size_t>(gi)];
            part.reset(length);
            for (Eigen::Index t = 0; t < r; ++t) {
                const Scalar* row = dd.row(t).data();
                for (std::size_t s = 0; s < solutions.size(); ++s) {
                    const auto& sol = solutions[s];
                    double* acc = part.acc.data() + offsets[s];
                    double best = std::numeric_limits<double>::infinity();
                    std::size_t arg = 0;
                    for (std::size_t p = 0; p < sol.size(); ++p) {
                        const double v = static_cast<double>(row[sol[p]]);
                        if (v < best) {
                            best = v;
                            arg = p;
                        }
                        acc[p] += best;
                    }
                    if (!sol.empty()) ++part.counts[offsets[s] + arg];
                }
            }
            Scalar cmax = 0;
            for (Eigen::Index t = 0; t < r; ++t)
                cmax = std::max(cmax, dd.row(t).head(cross.count()).maxCoeff());
            part.cmax = static_cast<double>(cmax);
        }
        for (Eigen::Index gi = 0; gi < gn; ++gi) total.add(partial[static_cast<std::size_t>(gi)]);
    }
    return total;
}

/// GreeDi on rows already spread over the ranks: `local` is this rank's shard (possibly empty),
/// `ids` the global index of each of its rows (nullptr: rows are numbered across ranks in rank
/// order).
template <class Scalar, class Derived, class... Callbacks>
Coreset<Scalar> greedi(const MpiComm& c, const Eigen::MatrixBase<Derived>& local, const std::int64_t* ids,
                       Eigen::Index budget, const GreeDiOptions& opt, const char* where, Callbacks&... cbs) {
    check_options_agree(c, where, budget, opt, sizeof(Scalar));
    const Eigen::Index m_local = local.rows();
    // Shapes: the total number of rows, and one row length over the ranks that have rows.
    std::int64_t shape[3] = {static_cast<std::int64_t>(m_local), m_local > 0 ? local.cols() : -1,
                             m_local > 0 ? -static_cast<std::int64_t>(local.cols()) : std::numeric_limits<std::int64_t>::min()};
    std::int64_t n = 0;
    MPI_Allreduce(&shape[0], &n, 1, MPI_INT64_T, MPI_SUM, c.comm);
    MPI_Allreduce(MPI_IN_PLACE, &shape[1], 2, MPI_INT64_T, MPI_MAX, c.comm);
    require(n > 0, where, "local_rows must have at least one row on some rank (got 0 rows on all ", c.size, " ranks)");
    const std::int64_t d = shape[1];
    require(d == -shape[2], where, "local_rows must have the same number of columns on every rank (got ", -shape[2],
            " to ", d, ")");
    require(d > 0, where, "local_rows must have at least one column (got 0)");
    check_budget(budget, static_cast<Eigen::Index>(n), where);
    collectively(c, [&] {
        const std::string name = "local_rows of rank " + std::to_string(c.rank);
        if (m_local > 0) check_finite(local, where, name.c_str());
        if (m_local > 0 && opt.metric == Metric::Cosine) check_no_zero_row(local, where, name.c_str());
    });
    // Global indices of the local rows.
    std::vector<std::int64_t> own_ids;
    if (!ids) {
        std::int64_t offset = 0, mine = m_local;
        MPI_Exscan(&mine, &offset, 1, MPI_INT64_T, MPI_SUM, c.comm);
        if (c.rank == 0) offset = 0;
        own_ids.resize(static_cast<std::size_t>(m_local));
        for (Eigen::Index i = 0; i < m_local; ++i) own_ids[static_cast<std::size_t>(i)] = offset + i;
        ids = own_ids.data();
    }

    // Stage 1: greedy on the shard.
    const Eigen::Index kappa = c.size == 1 ? budget : (opt.local_budget > 0 ? opt.local_budget : budget);
    Coreset<Scalar> first;
    collectively(c, [&] {
        if (m_local == 0) return;
        FacilityLocationOptions eng = opt.engine();
        eng.seed = opt.seed + 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(c.rank + 1);
        GlobalPicks<Callbacks...> forward{ids, std::tuple<Callbacks&...>(cbs...)};
        first = run_facility_location<Scalar>(local, nullptr, std::min(kappa, m_local), eng, where, forward);
    });
    int stopped = first.status == Status::StoppedByCallback;

    // The candidates, with their weights and global indices, on every rank (rank order, then
    // stage-1 order).
    int mine = static_cast<int>(first.size());
    std::vector<int> counts(static_cast<std::size_t>(c.size)), displs(static_cast<std::size_t>(c.size));
    MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, c.comm);
    std::int64_t total = 0;
    for (int r = 0; r < c.size; ++r) {
        displs[static_cast<std::size_t>(r)] = static_cast<int>(total);
        total += counts[static_cast<std::size_t>(r)];
    }
    require(total * d <= INT_MAX, where, "the stage-1 candidates must have at most ", INT_MAX,
            " coefficients in all, an MPI count (got ", total * d, ")");
    RowMatrix<Scalar> mine_rows(mine, d);
    std::vector<double> mine_w(static_cast<std::size_t>(mine));
    std::vector<std::int64_t> mine_ids(static_cast<std::size_t>(mine));
    for (int t = 0; t < mine; ++t) {
        const Eigen::Index i = first.indices[static_cast<std::size_t>(t)];
        mine_rows.row(t) = local.row(i).template cast<Scalar>();
        mine_w[static_cast<std::size_t>(t)] = static_cast<double>(first.weights[t]);
        mine_ids[static_cast<std::size_t>(t)] = ids[i];
    }
    RowMatrix<Scalar> cand(total, d);
    std::vector<double> cand_w(static_cast<std::size_t>(total));
    std::vector<std::int64_t> cand_ids(static_cast<std::size_t>(total));
    std::vector<int> counts_d(counts), displs_d(displs);
    for (int r = 0; r < c.size; ++r) {
        counts_d[static_cast<std::size_t>(r)] *= static_cast<int>(d);
        displs_d[static_cast<std::size_t>(r)] *= static_cast<int>(d);
    }
    MPI_Allgatherv(mine_rows.data(), mine * static_cast<int>(d), mpi_type<Scalar>(), cand.data(), counts_d.data(),
                   displs_d.data(), mpi_type<Scalar>(), c.comm);
    MPI_Allgatherv(mine_w.data(), mine, MPI_DOUBLE, cand_w.data(), counts.data(), displs.data(), MPI_DOUBLE, c.comm);
    MPI_Allgatherv(mine_ids.data(), mine, MPI_INT64_T, cand_ids.data(), counts.data(), displs.data(), MPI_INT64_T,
                   c.comm);

    // Stage 2: weighted greedy on the candidates at the root (one rank: stage 1's picks).
    std::vector<Eigen::Index> second;
    int second_status = static_cast<int>(first.status);
    if (c.size == 1) {
        for (Eigen::Index t = 0; t < total; ++t) second.push_back(t);
    } else {
        collectively(c, [&] {
            if (c.rank != opt.root) return;
            const Vector<Scalar> mass = Eigen::Map<const Eigen::VectorXd>(cand_w.data(), total).template cast<Scalar>();
            GlobalPicks<Callbacks...> forward{cand_ids.data(), std::tuple<Callbacks&...>(cbs...)};
            const auto picked = run_facility_location<Scalar>(cand, &mass, std::min<Eigen::Index>(budget, total),
                                                               opt.engine(), where, forward);
            second = picked.indices;
            second_status = static_cast<int>(picked.status);
        });
        std::int64_t head[2] = {static_cast<std::int64_t>(second.size()), second_status};
        MPI_Bcast(head, 2, MPI_INT64_T, opt.root, c.comm);
        second.resize(static_cast<std::size_t>(head[0]));
        second_status = static_cast<int>(head[1]);
        std::vector<std::int64_t> buf(second.begin(), second.end());
        MPI_Bcast(buf.data(), static_cast<int>(head[0]), MPI_INT64_T, opt.root, c.comm);
        for (std::size_t t = 0; t < buf.size(); ++t) second[t] = static_cast<Eigen::Index>(buf[t]);
    }
    stopped = stopped || second_status == static_cast<int>(Status::StoppedByCallback);
    MPI_Allreduce(MPI_IN_PLACE, &stopped, 1, MPI_INT, MPI_MAX, c.comm);

    // The solutions compared: stage 2's, then each rank's first k stage-1 picks (several ranks).
    std::vector<std::vector<Eigen::Index>> solutions{second};
    if (c.size > 1)
        for (int r = 0; r < c.size; ++r) {
            const Eigen::Index len = std::min<Eigen::Index>(budget, counts[static_cast<std::size_t>(r)]);
            if (len == 0) continue;
            std::vector<Eigen::Index> s(static_cast<std::size_t>(len));
            for (Eigen::Index t = 0; t < len; ++t) s[static_cast<std::size_t>(t)] = displs[static_cast<std::size_t>(r)] + t;
            solutions.push_back(std::move(s));
        }
    std::vector<std::size_t> offsets;
    std::size_t length = 0;
    for (const auto& s : solutions) {
        offsets.push_back(length);
        length += s.size();
    }

    // Final pass: every rank's rows against the candidates.
    double big = m_local > 0 ? static_cast<double>(local.cwiseAbs().maxCoeff()) : 0.0;
    MPI_Allreduce(MPI_IN_PLACE, &big, 1, MPI_DOUBLE, MPI_MAX, c.comm);
    int exponent = 0;
    if (big > 0) std::frexp(big, &exponent);
    const CrossDistances<Scalar> cross(cand, opt.metric, exponent);
    SolutionSums sums =
        local_solution_sums<Scalar>(local, cross, solutions, offsets, length, opt.memory_budget_bytes);
    MPI_Allreduce(MPI_IN_PLACE, &sums.cmax, 1, MPI_DOUBLE, MPI_MAX, c.comm);
    MPI_Allreduce(MPI_IN_PLACE, sums.counts.data(), static_cast<int>(length), MPI_INT64_T, MPI_SUM, c.comm);
    // Distance sums in rank order at the root, then broadcast: the same bits on every run.
    std::vector<double> gathered(c.rank == 0 ? length * static_cast<std::size_t>(c.size) : 0);
    MPI_Gather(sums.acc.data(), static_cast<int>(length), MPI_DOUBLE, gathered.data(), static_cast<int>(length),
               MPI_DOUBLE, 0, c.comm);
    if (c.rank == 0)
        for (std::size_t i = 0; i < length; ++i) {
            double s = 0;
            for (int r = 0; r < c.size; ++r) s += gathered[static_cast<std::size_t>(r) * length + i];
            sums.acc[i] = s;
        }
    MPI_Bcast(sums.acc.data(), static_cast<int>(length), MPI_DOUBLE, 0, c.comm);

    // GreeDi's final max: the solution with the lowest distance sum over all rows (the highest F),
    // stage 2 first on ties.
    std::size_t best = 0;
    for (std::size_t s = 1; s < solutions.size(); ++s)
        if (!solutions[s].empty() &&
            (solutions[best].empty() || sums.acc[offsets[s] + solutions[s].size() - 1] <
                                            sums.acc[offsets[best] + solutions[best].size() - 1]))
            best = s;
    const auto& chosen = solutions[best];
    Coreset<Scalar> out;
    out.weights.resize(static_cast<Eigen::Index>(chosen.size()));
    const double nc = static_cast<double>(n) * sums.cmax;
    for (std::size_t t = 0; t < chosen.size(); ++t) {
        out.indices.push_back(static_cast<Eigen::Index>(cand_ids[static_cast<std::size_t>(chosen[t])]));
        out.weights[static_cast<Eigen::Index>(t)] = static_cast<Scalar>(sums.counts[offsets[best] + t]);
        out.objective.push_back((nc - sums.acc[offsets[best] + t]) * cross.unit());
    }
    out.status = stopped ? Status::StoppedByCallback
                         : (out.size() == budget ? Status::BudgetReached : Status::Exhausted);
    return out;
}

}  // namespace detail

/// GreeDi: two-stage distributed greedy facility location over the ranks of an MPI communicator.
///
/// Every call is collective: every rank of the communicator calls the same method with the same
/// budget and options, and every rank returns the same result. Bad input on any rank makes every
/// rank throw the same exception (the lowest such rank's), so no rank hangs. Calls on one
/// communicator must not overlap; concurrent calls from several threads need an MPI library
/// initialised with MPI_THREAD_MULTIPLE and distinct communicators.
class GreeDi {
public:
    /// \throws std::invalid_argument if `options.validate()` fails.
    explicit GreeDi(GreeDiOptions options = {}) : options_(options) { options_.validate(); }

    const GreeDiOptions& options() const noexcept { return options_; }

    /// Selection over rows spread across the ranks: rank r passes its shard `local_rows`
    /// (n_r x d, float or double; n_r may be 0 on some ranks). Global row i is local row
    /// i - (n_0 + ... + n_{r-1}) of rank r: ranks' rows are numbered in rank order.
    ///
    /// \param comm       the communicator (e.g. MPI_COMM_WORLD).
    /// \param local_rows this rank's rows; not modified.
    /// \param budget     number of picks k, 1 <= k <= n = n_0 + ... + n_{m-1}; the same on every rank.
    /// \param callbacks  optional `on_step(const StepInfo&)` observers: they see this rank's stage-1
    ///                   picks, then (root only) the stage-2 picks, with `picked` a global row
    ///                   index and gains and objectives those of the stage's own ground set;
    ///                   returning true ends that stage early (status StoppedByCallback).
    /// \return on every rank: global row indices in the greedy order of the winning solution,
    ///         weights = number of rows over all ranks whose nearest pick it is (sum = n), and
    ///         objective[t] = F(first t + 1 picks) over all n rows with C the largest distance from
    ///         a row to a stage-1 candidate (in the caller's distance units).
    /// \throws std::invalid_argument for non-finite rows, rows of different widths, no rows at
    ///         all, a budget outside [1, n] or differing between ranks, differing options, a zero
    ///         row under Metric::Cosine, or a memory budget too small for a shard.
    template <class Derived, class... Callbacks>
    Coreset<typename Derived::Scalar> select(MPI_Comm comm, const Eigen::MatrixBase<Derived>& local_rows,
                                             Eigen::Index budget, Callbacks&&... callbacks) const {
        const detail::ThreadScope threads(options_.num_threads);
        using Scalar = typename Derived::Scalar;
        static_assert(std::is_floating_point<Scalar>::value, "coreset: rows must be float or double");
        const detail::MpiComm c(comm);
        return detail::greedi<Scalar>(c, local_rows, nullptr, budget, options_, "GreeDi::select()", callbacks...);
    }

    /// Selection over rows held by the root (`options().root`) only: the root deals them to the
    /// ranks (in a random order drawn from `options().seed` when `random_partition`, else in
    /// contiguous blocks of about n / m rows), then as `select`. Indices are rows of the root's
    /// matrix. Other ranks' `rows` are not read (pass an empty matrix of the same scalar type).
    /// The root temporarily holds one extra shard (n / m rows).
    template <class Derived, class... Callbacks>
    Coreset<typename Derived::Scalar> select_from_root(MPI_Comm comm, const Eigen::MatrixBase<Derived>& rows,
                                                       Eigen::Index budget, Callbacks&&... callbacks) const {
        const detail::ThreadScope threads(options_.num_threads);
        using Scalar = typename Derived::Scalar;
        static_assert(std::is_floating_point<Scalar>::value, "coreset: rows must be float or double");
        const char* where = "GreeDi::select_from_root()";
        const detail::MpiComm c(comm);
        detail::check_options_agree(c, where, budget, options_, sizeof(Scalar));
        const int root = options_.root;
        detail::collectively(c, [&] {
            if (c.rank != root) return;
            detail::check_matrix(rows, where, "rows");
            if (options_.metric == Metric::Cosine) detail::check_no_zero_row(rows, where, "rows");
        });
        std::int64_t shape[2] = {static_cast<std::int64_t>(rows.rows()), static_cast<std::int64_t>(rows.cols())};
        MPI_Bcast(shape, 2, MPI_INT64_T, root, comm);
        const std::int64_t n = shape[0], d = shape[1];
        detail::check_budget(budget, static_cast<Eigen::Index>(n), where);
        auto begin = [&](int r) { return n * r / c.size; };
        require_counts(where, (n + c.size - 1) / c.size * d);
        detail::RowMatrix<Scalar> shard;
        std::vector<std::int64_t> ids;
        if (c.rank == root) {
            std::vector<std::int64_t> order(static_cast<std::size_t>(n));
            for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
            if (options_.random_partition) {
                detail::Rng rng(options_.seed);
                rng.shuffle(order);
            }
            auto pack = [&](int r) {
                const std::int64_t a = begin(r), b = begin(r + 1);
                shard.resize(static_cast<Eigen::Index>(b - a), static_cast<Eigen::Index>(d));
                ids.assign(order.begin() + a, order.begin() + b);
                for (std::int64_t t = 0; t < b - a; ++t)
                    shard.row(static_cast<Eigen::Index>(t)) = rows.row(static_cast<Eigen::Index>(ids[static_cast<std::size_t>(t)]));
            };
            for (int r = 0; r < c.size; ++r) {
                if (r == root) continue;
                pack(r);
                MPI_Send(shard.data(), static_cast<int>(shard.size()), detail::mpi_type<Scalar>(), r, 0, comm);
                MPI_Send(ids.data(), static_cast<int>(ids.size()), MPI_INT64_T, r, 1, comm);
            }
            pack(root);
        } else {
            const std::int64_t a = begin(c.rank), b = begin(c.rank + 1);
            shard.resize(static_cast<Eigen::Index>(b - a), static_cast<Eigen::Index>(d));
            ids.resize(static_cast<std::size_t>(b - a));
            MPI_Recv(shard.data(), static_cast<int>(shard.size()), detail::mpi_type<Scalar>(), root, 0, comm,
                     MPI_STATUS_IGNORE);
            MPI_Recv(ids.data(), static_cast<int>(ids.size()), MPI_INT64_T, root, 1, comm, MPI_STATUS_IGNORE);
        }
        return detail::greedi<Scalar>(c, shard, ids.data(), budget, options_, where, callbacks...);
    }

private:
    static void require_counts(const char* where, std::int64_t coefficients) {
        detail::require(coefficients <= INT_MAX, where, "rows must have at most ", INT_MAX,
                        " coefficients per rank, an MPI count (got ", coefficients, ")");
    }

    GreeDiOptions options_;
};

}  // namespace coreset
