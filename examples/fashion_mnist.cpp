// SPDX-License-Identifier: MIT
// Fashion-MNIST experiments with coresets: the demo of scripts/demo and the experiments of
// docs/results.md (scripts/experiments). Data: Debian's dataset-fashion-mnist. Trainers: the plain
// Eigen softmax regression and 784-100-10 MLP of trainers.hpp.
//
//   fashion_mnist demo           [--epochs 3] [--reselect 2] [--budget 0.1] [--seed 0] [--train-size 60000]
//   fashion_mnist grid           [--budgets 0.01,0.05,0.1,0.3] [--seeds 0,1,2] [--epochs 10]
//                                [--reselect 2] [--methods full,random,...] [--out DIR]
//                                [--skip grad-match@0.30,...]
//   fashion_mnist gradient-error [--budgets ...] [--seeds ...] [--out DIR]
//   fashion_mnist convex         [--budget 0.1] [--epochs 10] [--out DIR]
//   fashion_mnist summarise      [--out DIR]   (DIR/train.md again from DIR/train.csv)
//
// Weights: every selector's weights are rescaled with coreset::mean_one and the trainers minimise
// mean_j(w_j * loss_j) per mini-batch (for CRAIG's cluster sizes this is w_j * k / n, the
// per-example step multipliers of the convex setting); random subsets get weight 1 (= n/k rescaled).
#include <coreset/coreset.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "idx.hpp"
#include "trainers.hpp"

namespace ex = coreset_examples;
using Eigen::Index;
using ex::RowMatrixXf;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ------------------------------------------------------------------------------------------------
// Command line

struct Args {
    std::string command;
    std::map<std::string, std::string> kv;
    std::string get(const std::string& k, const std::string& def) const {
        const auto it = kv.find(k);
        return it == kv.end() ? def : it->second;
    }
    double num(const std::string& k, double def) const { return std::stod(get(k, std::to_string(def))); }
    std::vector<double> list(const std::string& k, const std::string& def) const {
        std::vector<double> out;
        std::stringstream ss(get(k, def));
        for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stod(item));
        return out;
    }
    std::vector<std::string> words(const std::string& k, const std::string& def) const {
        std::vector<std::string> out;
        std::stringstream ss(get(k, def));
        for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
        return out;
    }
};

Args parse(int argc, char** argv) {
    Args a;
    a.command = argc > 1 ? argv[1] : "demo";
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string key = argv[i];
        if (key.rfind("--", 0) != 0) throw std::invalid_argument("expected --option value, got " + key);
        a.kv[key.substr(2)] = argv[i + 1];
    }
    if (argc > 2 && argc % 2 == 1)
        throw std::invalid_argument(std::string("option without value: ") + argv[argc - 1]);
    return a;
}

// ------------------------------------------------------------------------------------------------
// Data

struct Data {
    RowMatrixXf x_train, x_test;
    Eigen::VectorXi y_train, y_test;
    Index n() const { return x_train.rows(); }
};

Data load(Index train_size) {
    const ex::Dataset train = ex::load_fashion_mnist("train");
    const ex::Dataset test = ex::load_fashion_mnist("t10k");
    Data d;
    const Index n = std::min<Index>(train_size, train.x.rows());
    d.x_train = train.x.topRows(n);
    d.y_train = train.y.head(n);
    d.x_test = test.x;
    d.y_test = test.y;
    return d;
}

// ------------------------------------------------------------------------------------------------
// Methods

enum class Method { Full, Random, Craig, CraigPB, GradMatch, GradMatchPB, AdaCore, Crest };

const std::vector<std::pair<std::string, Method>>& method_names() {
    static const std::vector<std::pair<std::string, Method>> names = {{"full", Method::Full},
                                                                      {"random", Method::Random},
                                                                      {"craig", Method::Craig},
                                                                      {"craig-pb", Method::CraigPB},
                                                                      {"grad-match", Method::GradMatch},
                                                                      {"grad-match-pb", Method::GradMatchPB},
                                                                      {"adacore", Method::AdaCore},
                                                                      {"crest", Method::Crest}};
    return names;
}
Method method_of(const std::string& s) {
    for (const auto& [name, m] : method_names())
        if (name == s) return m;
    throw std::invalid_argument("unknown method " + s);
}
std::string label_of(Method m) {
    switch (m) {
        case Method::Full: return "full";
        case Method::Random: return "random";
        case Method::Craig: return "CRAIG";
        case Method::CraigPB: return "CRAIG-PB";
        case Method::GradMatch: return "GRAD-MATCH";
        case Method::GradMatchPB: return "GRAD-MATCH-PB";
        case Method::AdaCore: return "AdaCore";
        case Method::Crest: return "CREST";
    }
    return "?";
}

/// A training subset: rows and mean-one loss weights.
struct Subset {
    std::vector<Index> rows;
    Eigen::VectorXf weights;
};

Subset all_rows(Index n) {
    Subset s;
    s.rows.resize(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) s.rows[static_cast<std::size_t>(i)] = i;
    s.weights = Eigen::VectorXf::Ones(n);
    return s;
}

Subset random_subset(Index n, Index k, ex::SplitMix& rng) {
    std::vector<Index> perm(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) perm[static_cast<std::size_t>(i)] = i;
    rng.shuffle(perm);
    Subset s;
    s.rows.assign(perm.begin(), perm.begin() + k);
    s.weights = Eigen::VectorXf::Ones(k);
    return s;
}

Subset from_coreset(const coreset::Coreset<float>& cs) {
    Subset s;
    s.rows.assign(cs.indices.begin(), cs.indices.end());
    s.weights = coreset::mean_one(cs.weights);
    return s;
}

/// Mini-batch selection on rows in a random order (batches are consecutive rows, so the order is
/// shuffled first): runs `select(permuted_gradients)` and maps the picks back.
template <class Select>
Subset per_batch(const RowMatrixXf& g, ex::SplitMix& rng, Select select) {
    std::vector<Index> perm(static_cast<std::size_t>(g.rows()));
    for (Index i = 0; i < g.rows(); ++i) perm[static_cast<std::size_t>(i)] = i;
    rng.shuffle(perm);
    const coreset::Coreset<float> cs = select(ex::gather_rows(g, perm));
    Subset s = from_coreset(cs);
    for (auto& r : s.rows) r = perm[static_cast<std::size_t>(r)];
    return s;
}

/// Per-example proxies of a network at its current parameters: logits, p - onehot(y) and (only
/// when asked) the last-layer gradients [a | a_0 e | ... | a_9 e] of gradients.hpp.
struct Proxies {
    RowMatrixXf logits, logit_grad, last_layer;
};

Proxies proxies(const ex::Mlp& model, const Data& d, bool last_layer) {
    Proxies p;
    const RowMatrixXf h = model.embed(d.x_train);
    p.logits = model.head(h);
    p.logit_grad = coreset::logit_gradients(p.logits, d.y_train);
    if (last_layer) p.last_layer = coreset::last_layer_gradients(p.logits, d.y_train, h);
    return p;
}

/// One selection of `method` with budget k (rows). `ada` keeps AdaCore's state between rounds.
Subset select(Method method, const ex::Mlp& model, const Data& d, Index k, ex::SplitMix& rng,
              coreset::AdaCore<float>* ada, Index batch) {
    const coreset::Craig craig;
    const coreset::GradMatch grad_match;
    switch (method) {
        case Method::Full: return all_rows(d.n());
        case Method::Random: return random_subset(d.n(), k, rng);
        case Method::Craig:
            return from_coreset(craig.select(proxies(model, d, false).logit_grad, d.y_train, k));
        case Method::AdaCore: {
            const Proxies p = proxies(model, d, false);
            ada->update(p.logit_grad, coreset::logit_hessian_diagonal(p.logits));
            return from_coreset(ada->select(d.y_train, k));
        }
        case Method::GradMatch:
            return from_coreset(grad_match.select(proxies(model, d, true).last_layer, d.y_train, k));
        case Method::CraigPB:
            return per_batch(proxies(model, d, true).last_layer, rng,
                             [&](const RowMatrixXf& g) { return craig.select_batches(g, batch, k); });
        case Method::GradMatchPB:
            return per_batch(proxies(model, d, true).last_layer, rng,
                             [&](const RowMatrixXf& g) { return grad_match.select_batches(g, batch, k); });
        case Method::Crest: break;
    }
    throw std::logic_error("select(): CREST has its own loop");
}

// ------------------------------------------------------------------------------------------------
// Training runs

struct EpochLog {
    int epoch;
    Index steps;
    double select_s, train_s, test_acc;
    Index subset_size;
};

struct Run {
    Method method;
    double budget;
    int seed;
    std::vector<EpochLog> log;
    double select_s() const { return log.empty() ? 0.0 : log.back().select_s; }
    double train_s() const { return log.empty() ? 0.0 : log.back().train_s; }
    double accuracy() const { return log.empty() ? 0.0 : log.back().test_acc; }
};

double test_accuracy(const ex::Mlp& model, const Data& d) {
    return ex::loss_and_accuracy(model.logits(d.x_test), d.y_test).second;
}

/// MLP training with a subset method: reselect every `reselect` epochs (full: never; random: a new
/// random subset each time).
Run train_subset(Method method, const Data& d, double budget, int seed, int epochs, int reselect,
                 const ex::SgdOptions& opt) {
    Run run{method, budget, seed, {}};
    ex::Mlp model(d.x_train.cols(), 10, opt, std::uint64_t(seed));
    ex::SplitMix rng(std::uint64_t(seed) * 7919 + 1);
    const Index k = std::max<Index>(1, Index(budget * double(d.n()) + 0.5));
    std::unique_ptr<coreset::AdaCore<float>> ada;
    if (method == Method::AdaCore) ada = std::make_unique<coreset::AdaCore<float>>(d.n());
    Subset subset;
    double select_s = 0.0, train_s = 0.0;
    Index steps = 0;
    for (int epoch = 0; epoch < epochs; ++epoch) {
        if (epoch == 0 || (method != Method::Full && epoch % reselect == 0)) {
            const auto t0 = Clock::now();
            subset = select(method, model, d, k, rng, ada.get(), opt.batch);
            select_s += seconds_since(t0);
        }
        const auto t0 = Clock::now();
        ex::train_epoch(model, d.x_train, d.y_train, subset.rows, subset.weights, opt.batch, rng);
        train_s += seconds_since(t0);
        steps += (Index(subset.rows.size()) + opt.batch - 1) / opt.batch;
        run.log.push_back(
            {epoch + 1, steps, select_s, train_s, test_accuracy(model, d), Index(subset.rows.size())});
    }
    return run;
}

/// CREST (docs/crest.md's loop) on the MLP: mini-batch coresets of m = opt.batch rows from random
/// subsets (1% of n) on p - onehot(y); the quadratic model lives in the last layer's parameters
/// (exact gradient and Hessian diagonal there, on the check rows). `budget` is the step budget: each
/// "epoch" takes budget * (n / batch) steps.
Run train_crest(const Data& d, double budget, int seed, int epochs, const ex::SgdOptions& opt) {
    Run run{Method::Crest, budget, seed, {}};
    ex::Mlp model(d.x_train.cols(), 10, opt, std::uint64_t(seed));
    coreset::CrestOptions co;
    co.batch_size = opt.batch;
    co.seed = std::uint64_t(seed);
    coreset::Crest crest(d.y_train, co);
    double select_s = 0.0, train_s = 0.0;
    auto select_and_anchor = [&] {
        const auto t0 = Clock::now();
        const coreset::CrestCandidates cand = crest.candidates();
        const RowMatrixXf z = model.logits(ex::gather_rows(d.x_train, cand.indices));
        const Eigen::VectorXi y = ex::gather(d.y_train, cand.indices);
        crest.select(coreset::logit_gradients(z, y), coreset::cross_entropy(z, y));
        const std::vector<Index>& rows = crest.check_indices();
        const RowMatrixXf hc = model.embed(ex::gather_rows(d.x_train, rows));
        const RowMatrixXf zc = model.head(hc);
        const Eigen::VectorXi yc = ex::gather(d.y_train, rows);
        crest.begin_region(coreset::cross_entropy(zc, yc).mean(),
                           coreset::last_layer_gradients(zc, yc, hc).colwise().mean(),
                           coreset::last_layer_hessian_diagonal(zc, hc).colwise().mean());
        select_s += seconds_since(t0);
    };
    select_and_anchor();
    const Index steps_per_epoch = std::max<Index>(1, Index(budget * double(d.n()) / double(opt.batch) + 0.5));
    Index steps = 0;
    for (int epoch = 0; epoch < epochs; ++epoch) {
        for (Index s = 0; s < steps_per_epoch; ++s) {
            auto t0 = Clock::now();
            {
                const ex::EigenThreads one(1);  // mini-batch products: single-threaded, as in train_epoch
                const coreset::CrestBatch batch = crest.next_batch();
                const Eigen::VectorXf delta =
                    model.step(ex::gather_rows(d.x_train, batch.indices),
                               ex::gather(d.y_train, batch.indices), batch.weights.cast<float>());
                crest.record_update(delta);
            }
            train_s += seconds_since(t0);
            ++steps;
            if (crest.should_check()) {
                t0 = Clock::now();
                const std::vector<Index>& rows = crest.check_indices();
                const RowMatrixXf zc = model.logits(ex::gather_rows(d.x_train, rows));
                const bool reselect =
                    crest.check(coreset::cross_entropy(zc, ex::gather(d.y_train, rows)).mean());
                select_s += seconds_since(t0);
                if (reselect) select_and_anchor();
            }
        }
        run.log.push_back(
            {epoch + 1, steps, select_s, train_s, test_accuracy(model, d), steps_per_epoch * opt.batch});
    }
    const coreset::CrestStats st = crest.stats();
    std::cerr << "  CREST: " << st.selections << " selections, " << st.checks << " checks, " << st.dropped
              << " examples dropped\n";
    return run;
}

Run train(Method m, const Data& d, double budget, int seed, int epochs, int reselect,
          const ex::SgdOptions& opt) {
    return m == Method::Crest ? train_crest(d, budget, seed, epochs, opt)
                              : train_subset(m, d, budget, seed, epochs, reselect, opt);
}

// ------------------------------------------------------------------------------------------------
// Output helpers

std::string fixed(double v, int digits) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(digits) << v;
    return os.str();
}

struct MeanSpread {
    double mean = 0, spread = 0;  // spread: (max - min) / 2
};
MeanSpread summarise(const std::vector<double>& v) {
    MeanSpread s;
    if (v.empty()) return s;
    double lo = v[0], hi = v[0];
    for (double x : v) {
        s.mean += x;
        lo = std::min(lo, x);
        hi = std::max(hi, x);
    }
    s.mean /= double(v.size());
    s.spread = (hi - lo) / 2;
    return s;
}

void write_run_csv(std::ofstream& csv, const Run& r) {
    for (const EpochLog& e : r.log)
        csv << label_of(r.method) << ',' << r.budget << ',' << r.seed << ',' << e.epoch << ',' << e.steps
            << ',' << e.subset_size << ',' << e.select_s << ',' << e.train_s << ',' << e.select_s + e.train_s
            << ',' << e.test_acc << '\n';
}

/// Wall time (selection + training) at the first epoch whose test accuracy reaches `target`; < 0 if never.
double time_to(const Run& r, double target) {
    for (const EpochLog& e : r.log)
        if (e.test_acc >= target) return e.select_s + e.train_s;
    return -1.0;
}

ex::SgdOptions mlp_options() { return ex::SgdOptions{0.05f, 0.9f, 1e-4f, 32}; }

// ------------------------------------------------------------------------------------------------
// Commands

/// Quick demo: the MLP for a few epochs on full data, a random subset, CRAIG and GRAD-MATCH (both
/// per class), reselecting every `reselect` epochs; prints one table.
int demo(const Args& a) {
    const int epochs = int(a.num("epochs", 3));
    const int reselect = int(a.num("reselect", 2));
    const double budget = a.num("budget", 0.1);
    const int seed = int(a.num("seed", 0));
    const Data d = load(Index(a.num("train-size", 60000)));
    std::cout << "Fashion-MNIST: " << d.n() << " training and " << d.x_test.rows() << " test images; "
              << "784-100-10 MLP, SGD (lr 0.05, momentum 0.9, batch 32), " << epochs << " epochs; "
              << "subsets of " << budget * 100 << "% selected every " << reselect << " epochs\n\n";
    std::cout << std::left << std::setw(15) << "method" << std::right << std::setw(9) << "subset %"
              << std::setw(11) << "test acc" << std::setw(13) << "selection s" << std::setw(12)
              << "training s" << '\n';
    const std::vector<Method> methods = {Method::Full, Method::Random, Method::Craig, Method::GradMatch};
    for (Method m : methods) {
        const Run r = train(m, d, budget, seed, epochs, reselect, mlp_options());
        const double pct = 100.0 * double(r.log.back().subset_size) / double(d.n());
        std::cout << std::left << std::setw(15) << label_of(m) << std::right << std::setw(9) << fixed(pct, 1)
                  << std::setw(10) << fixed(100 * r.accuracy(), 2) << '%' << std::setw(13)
                  << fixed(r.select_s(), 2) << std::setw(12) << fixed(r.train_s(), 2) << std::endl;
    }
    std::cout
        << "\nGRAD-MATCH selects on last-layer gradients (1010 values per example), CRAIG on p - onehot(y) "
           "(10 values); both per class, weights rescaled to mean 1.\n"
           "Full experiments: scripts/experiments (results in docs/results.md).\n";
    return 0;
}

/// The summary table of a training grid: per method and budget, mean and spread over seeds of the
/// final test accuracy and times; time to the full-data accuracy minus 1 point and speed-up.
void write_summary(const std::vector<Run>& runs, const std::string& path) {
    std::vector<double> full_acc;
    for (const Run& r : runs)
        if (r.method == Method::Full) full_acc.push_back(r.accuracy());
    const double target = full_acc.empty() ? 2.0 : summarise(full_acc).mean - 0.01;
    std::vector<double> full_time;
    for (const Run& r : runs)
        if (r.method == Method::Full && time_to(r, target) >= 0) full_time.push_back(time_to(r, target));
    const double t_full = full_time.empty() ? -1 : summarise(full_time).mean;
    std::ofstream md(path);
    md << "| method | subset | test accuracy % | wall s | of which selection s | time to "
       << fixed(100 * target, 2) << "% s | speed-up vs full | seeds |\n|---|---|---|---|---|---|---|---|\n";
    std::vector<std::pair<Method, double>> keys;
    for (const Run& r : runs)
        if (std::find(keys.begin(), keys.end(), std::make_pair(r.method, r.budget)) == keys.end())
            keys.emplace_back(r.method, r.budget);
    for (const auto& [m, b] : keys) {
        std::vector<double> acc, wall, sel, reach;
        Index size = 0;
        int missed = 0;
        for (const Run& r : runs)
            if (r.method == m && r.budget == b) {
                acc.push_back(100 * r.accuracy());
                wall.push_back(r.select_s() + r.train_s());
                sel.push_back(r.select_s());
                size = r.log.back().subset_size;
                const double t = time_to(r, target);
                if (t >= 0)
                    reach.push_back(t);
                else
                    ++missed;
            }
        const MeanSpread ac = summarise(acc), wa = summarise(wall), se = summarise(sel);
        std::string subset = m == Method::Full    ? "100%"
                             : m == Method::Crest ? fixed(100 * b, 0) + "% of steps"
                                                  : fixed(100 * b, 0) + "% (" + std::to_string(size) + ")";
        std::string reach_s = "not reached", speed = "-";
        if (missed == 0 && !reach.empty()) {
            const double t = summarise(reach).mean;
            reach_s = fixed(t, 1);
            if (t_full > 0) speed = fixed(t_full / t, 2) + "x";
        } else if (!reach.empty()) {
            reach_s =
                "reached by " + std::to_string(reach.size()) + " of " + std::to_string(acc.size()) + " seeds";
        }
        md << "| " << label_of(m) << " | " << subset << " | " << fixed(ac.mean, 2) << " ± "
           << fixed(ac.spread, 2) << " | " << fixed(wa.mean, 1) << " | " << fixed(se.mean, 1) << " | "
           << reach_s << " | " << speed << " | " << acc.size() << " |\n";
    }
}

/// Runs back from a train.csv written by write_run_csv.
std::vector<Run> read_runs(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::vector<Run> runs;
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::stringstream ss(line);
        std::vector<std::string> f;
        for (std::string item; std::getline(ss, item, ',');) f.push_back(item);
        if (f.size() != 10) throw std::runtime_error("bad line in " + path + ": " + line);
        Method m = Method::Full;
        bool known = false;
        for (const auto& [name, mm] : method_names())
            if (label_of(mm) == f[0]) m = mm, known = true;
        if (!known) throw std::runtime_error("unknown method in " + path + ": " + f[0]);
        const double budget = std::stod(f[1]);
        const int seed = std::stoi(f[2]);
        if (runs.empty() || runs.back().method != m || runs.back().budget != budget ||
            runs.back().seed != seed || std::stoi(f[3]) == 1)
            runs.push_back(Run{m, budget, seed, {}});
        runs.back().log.push_back({std::stoi(f[3]), Index(std::stoll(f[4])), std::stod(f[6]), std::stod(f[7]),
                                   std::stod(f[9]), Index(std::stoll(f[5]))});
    }
    return runs;
}

/// The training grid: every method x budget x seed; writes DIR/train.csv (one row per epoch) and
/// DIR/train.md (summary tables).
int grid(const Args& a) {
    const std::vector<double> budgets = a.list("budgets", "0.01,0.05,0.1,0.3");
    const std::vector<double> seeds = a.list("seeds", "0,1,2");
    const int epochs = int(a.num("epochs", 10));
    const int reselect = int(a.num("reselect", 2));
    const double crest_budget = a.num("crest-budget", 0.1);
    const std::string out = a.get("out", ".");
    std::vector<Method> methods;
    for (const std::string& w :
         a.words("methods", "full,random,craig,craig-pb,grad-match,grad-match-pb,adacore,crest"))
        methods.push_back(method_of(w));
    // --skip grad-match@0.3,...: leave out single (method, budget) cells (to bound the run time).
    const std::vector<std::string> skip = a.words("skip", "");
    const Data d = load(Index(a.num("train-size", 60000)));
    std::ofstream csv(out + "/train.csv");
    csv << "method,budget,seed,epoch,steps,subset,select_s,train_s,wall_s,test_acc\n";
    std::vector<Run> runs;
    auto run_one = [&](Method m, double b, int s) {
        std::cerr << "[grid] " << label_of(m) << " budget " << b << " seed " << s << std::endl;
        runs.push_back(train(m, d, b, s, epochs, reselect, mlp_options()));
        write_run_csv(csv, runs.back());
        csv.flush();
        std::cerr << "  acc " << runs.back().accuracy() << " select " << runs.back().select_s()
                  << " s, train " << runs.back().train_s() << " s" << std::endl;
    };
    for (double s : seeds) {
        for (Method m : methods) {
            if (m == Method::Full)
                run_one(m, 1.0, int(s));
            else if (m == Method::Crest)
                run_one(m, crest_budget, int(s));
            else
                for (double b : budgets) {
                    std::string cell;
                    for (const auto& [name, mm] : method_names())
                        if (mm == m) cell = name + "@" + fixed(b, 2);
                    if (std::find(skip.begin(), skip.end(), cell) == skip.end()) run_one(m, b, int(s));
                }
        }
        write_summary(runs, out + "/train.md");  // after every seed: a long run can be stopped
    }
    std::cerr << "[grid] wrote " << out << "/train.csv and train.md\n";
    return 0;
}

/// Rewrites DIR/train.md from DIR/train.csv (e.g. after merging the rows of several runs).
int summarise_csv(const Args& a) {
    const std::string out = a.get("out", ".");
    write_summary(read_runs(out + "/train.csv"), out + "/train.md");
    std::cerr << "[summarise] wrote " << out << "/train.md\n";
    return 0;
}

/// GRAD-MATCH Table 8 analogue: after one epoch of full-data training, ||sum_S w_j g_j - sum_V g_i||
/// / ||sum_V g_i|| on last-layer gradients, for each method and budget (weights on the sum scale:
/// CRAIG/AdaCore cluster sizes, GRAD-MATCH fitted, random n / k).
int gradient_error(const Args& a) {
    const std::vector<double> budgets = a.list("budgets", "0.01,0.05,0.1,0.3");
    const std::vector<double> seeds = a.list("seeds", "0,1,2");
    const std::string out = a.get("out", ".");
    const Data d = load(Index(a.num("train-size", 60000)));
    const ex::SgdOptions opt = mlp_options();
    ex::Mlp model(d.x_train.cols(), 10, opt, 0);
    ex::SplitMix rng(1);
    const Subset all = all_rows(d.n());
    for (int e = 0; e < int(a.num("epochs", 1)); ++e)
        ex::train_epoch(model, d.x_train, d.y_train, all.rows, all.weights, opt.batch, rng);
    std::cerr << "[gradient-error] model test accuracy " << test_accuracy(model, d) << std::endl;
    const Proxies p = proxies(model, d, true);
    const Eigen::RowVectorXd full = p.last_layer.cast<double>().colwise().sum();
    auto error = [&](const coreset::Coreset<float>& cs) {
        Eigen::RowVectorXd sum = Eigen::RowVectorXd::Zero(full.size());
        for (Index j = 0; j < cs.size(); ++j)
            sum += double(cs.weights[j]) * p.last_layer.row(cs.indices[j]).cast<double>();
        return (sum - full).norm() / full.norm();
    };
    coreset::AdaCore<float> ada(d.n());
    ada.update(p.logit_grad, coreset::logit_hessian_diagonal(p.logits));
    const coreset::Craig craig;
    const coreset::GradMatch gm;
    const std::vector<std::string> names = {"random",     "CRAIG",         "CRAIG-PB",
                                            "GRAD-MATCH", "GRAD-MATCH-PB", "AdaCore"};
    std::ofstream csv(out + "/gradient_error.csv");
    csv << "method,budget,seed,subset,error,select_s\n";
    std::map<std::pair<std::string, double>, std::vector<double>> errors;
    for (double b : budgets) {
        const Index k = std::max<Index>(1, Index(b * double(d.n()) + 0.5));
        for (const std::string& name : names) {
            const bool seeded = name == "random" || name == "CRAIG-PB" || name == "GRAD-MATCH-PB";
            for (double s : seeds) {
                if (!seeded && s != seeds.front()) continue;
                ex::SplitMix r(std::uint64_t(s) * 31 + 7);
                const auto t0 = Clock::now();
                coreset::Coreset<float> cs;
                if (name == "random") {
                    const Subset rs = random_subset(d.n(), k, r);
                    cs.indices.assign(rs.rows.begin(), rs.rows.end());
                    cs.weights = Eigen::VectorXf::Constant(k, float(double(d.n()) / double(k)));
                } else if (name == "CRAIG") {
                    cs = craig.select(p.logit_grad, d.y_train, k);
                } else if (name == "AdaCore") {
                    cs = ada.select(d.y_train, k);
                } else if (name == "GRAD-MATCH") {
                    cs = gm.select(p.last_layer, d.y_train, k);
                } else {
                    std::vector<Index> perm(static_cast<std::size_t>(d.n()));
                    for (Index i = 0; i < d.n(); ++i) perm[static_cast<std::size_t>(i)] = i;
                    r.shuffle(perm);
                    const RowMatrixXf g = ex::gather_rows(p.last_layer, perm);
                    cs = name == "CRAIG-PB" ? craig.select_batches(g, opt.batch, k)
                                            : gm.select_batches(g, opt.batch, k);
                    for (auto& i : cs.indices) i = perm[static_cast<std::size_t>(i)];
                }
                const double t = seconds_since(t0);
                const double err = error(cs);
                errors[{name, b}].push_back(err);
                csv << name << ',' << b << ',' << s << ',' << cs.size() << ',' << err << ',' << t << '\n';
                csv.flush();
                std::cerr << "  " << name << " " << b << " seed " << s << ": " << err << " (" << cs.size()
                          << " rows, " << t << " s)" << std::endl;
            }
        }
    }
    std::ofstream md(out + "/gradient_error.md");
    md << "| method |";
    for (double b : budgets) md << ' ' << fixed(100 * b, 0) << "% |";
    md << "\n|---|";
    for (std::size_t i = 0; i < budgets.size(); ++i) md << "---|";
    md << '\n';
    std::ofstream dat(out + "/gradient_error.dat");
    dat << "budget%";
    for (const std::string& name : names) dat << ' ' << name;
    dat << '\n';
    for (const std::string& name : names) {
        md << "| " << name << " |";
        for (double b : budgets)
            md << ' ' << std::setprecision(3) << summarise(errors[{name, b}]).mean << " |";
        md << '\n';
    }
    for (double b : budgets) {
        dat << 100 * b;
        for (const std::string& name : names) dat << ' ' << summarise(errors[{name, b}]).mean;
        dat << '\n';
    }
    std::cerr << "[gradient-error] wrote " << out << "/gradient_error.{csv,md,dat}\n";
    return 0;
}

/// Convex CRAIG: softmax regression on a 10% CRAIG subset selected once, per class, on raw pixels,
/// weights (cluster sizes) as per-example step multipliers w_j k / n, against full data and a random
/// 10% subset, same number of epochs. Writes DIR/convex.csv and DIR/convex.md.
int convex(const Args& a) {
    const double budget = a.num("budget", 0.1);
    const int epochs = int(a.num("epochs", 10));
    const std::string out = a.get("out", ".");
    const Data d = load(Index(a.num("train-size", 60000)));
    const Index k = Index(budget * double(d.n()) + 0.5);
    const ex::SgdOptions opt{float(a.num("lr", 0.01)), 0.9f, 1e-4f, 32};
    std::ofstream csv(out + "/convex.csv");
    csv << "method,epoch,select_s,train_s,wall_s,objective,test_acc\n";
    struct Curve {
        std::string name;
        double select_s;
        std::vector<std::pair<double, double>> wall_obj;  // (wall s, full-data objective) per epoch
        double acc;
    };
    std::vector<Curve> curves;
    for (const std::string name : {"full", "CRAIG", "random"}) {
        ex::SplitMix rng(11);
        const auto t0 = Clock::now();
        Subset s;
        if (name == "full")
            s = all_rows(d.n());
        else if (name == "random")
            s = random_subset(d.n(), k, rng);
        else
            s = from_coreset(coreset::Craig().select(d.x_train, d.y_train, k));
        const double select_s = seconds_since(t0);
        std::cerr << "[convex] " << name << ": " << s.rows.size() << " rows, selection " << select_s << " s"
                  << std::endl;
        ex::SoftmaxRegression model(d.x_train.cols(), 10, opt, 0);
        Curve c{name, select_s, {}, 0};
        double train_s = 0;
        for (int e = 1; e <= epochs; ++e) {
            const auto t1 = Clock::now();
            ex::train_epoch(model, d.x_train, d.y_train, s.rows, s.weights, opt.batch, rng);
            train_s += seconds_since(t1);
            const double obj = model.objective(d.x_train, d.y_train);
            c.acc = ex::loss_and_accuracy(model.logits(d.x_test), d.y_test).second;
            c.wall_obj.emplace_back(select_s + train_s, obj);
            csv << name << ',' << e << ',' << select_s << ',' << train_s << ',' << select_s + train_s << ','
                << obj << ',' << c.acc << '\n';
        }
        curves.push_back(c);
    }
    // Time to reach a loss: the first epoch at or below it (linear interpolation is not used).
    auto reach = [](const Curve& c, double loss) {
        for (const auto& [t, obj] : c.wall_obj)
            if (obj <= loss) return t;
        return -1.0;
    };
    std::ofstream md(out + "/convex.md");
    const Curve& full = curves[0];
    md << "| training set | rows | selection s | wall s (" << epochs
       << " epochs) | final training loss | test accuracy % "
       << "| time to its own final loss: full data / this | \n|---|---|---|---|---|---|---|\n";
    for (const Curve& c : curves) {
        const double own = c.wall_obj.back().second;
        const double tf = reach(full, own), tc = reach(c, own);
        md << "| " << c.name << " | " << (c.name == "full" ? d.n() : k) << " | " << fixed(c.select_s, 1)
           << " | " << fixed(c.wall_obj.back().first, 1) << " | " << fixed(own, 4) << " | "
           << fixed(100 * c.acc, 2) << " | "
           << (tf < 0 ? std::string("full data never reaches it")
                      : fixed(tf, 1) + " / " + fixed(tc, 1) + " = " + fixed(tf / tc, 2) + "x")
           << " |\n";
    }
    std::cerr << "[convex] wrote " << out << "/convex.{csv,md}\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Args a = parse(argc, argv);
        if (a.command == "demo") return demo(a);
        if (a.command == "grid") return grid(a);
        if (a.command == "gradient-error") return gradient_error(a);
        if (a.command == "convex") return convex(a);
        if (a.command == "summarise") return summarise_csv(a);
        std::cerr << "usage: fashion_mnist demo|grid|gradient-error|convex|summarise [--option value ...]\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "fashion_mnist: " << e.what() << '\n';
        return 1;
    }
}
