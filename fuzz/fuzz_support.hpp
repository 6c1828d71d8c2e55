// SPDX-License-Identifier: MIT
// Shared pieces of the libFuzzer harnesses: a decoder that turns the fuzzer's bytes into shapes,
// values, labels and options, and the checks every harness applies to a result.
//
// Decoding never fails: past the end of the input every read returns zeros, so short inputs give
// small, valid problems and longer ones reach further. Values come from a palette that favours what
// breaks numerical code: small integers (hence ties and duplicate rows), zeros, exact copies of the
// previous value, huge (up to about 1e38) and tiny (down to about 1e-38) magnitudes, subnormals,
// arbitrary bit patterns, and, when the input asks for it, NaN and infinities.
#pragma once

#include <Eigen/Core>
#include <coreset/grad_match.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <coreset/core.hpp>

namespace coreset_fuzz {

using Index = Eigen::Index;

/// What the harness decoded from the current input, printed with a violated invariant (and as it
/// goes when the environment sets CORESET_FUZZ_VERBOSE, to replay a saved input).
inline std::string& trace() {
    static std::string t;
    return t;
}
inline bool verbose() {
    static const bool v = std::getenv("CORESET_FUZZ_VERBOSE") != nullptr;
    return v;
}
/// Appends to the trace.
inline void note(const std::string& s) {
    trace() += s;
    trace() += '\n';
    if (verbose()) std::fprintf(stderr, "%s\n", s.c_str());
}
template <class M>
std::string show(const M& m) {
    std::string out;
    char buf[64];
    for (Index i = 0; i < m.rows(); ++i) {
        out += "  [";
        for (Index j = 0; j < m.cols(); ++j) {
            std::snprintf(buf, sizeof buf, " %.17g", static_cast<double>(m(i, j)));
            out += buf;
        }
        out += " ]\n";
    }
    return out;
}

/// Reports a violated invariant and aborts (libFuzzer then saves the input as a crash).
[[noreturn]] inline void fail(const std::string& what) {
    std::fprintf(stderr, "decoded input:\n%s", trace().c_str());
    std::fprintf(stderr, "coreset fuzz invariant violated: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}
inline void expect(bool ok, const std::string& what) {
    if (!ok) fail(what);
}

class Bytes {
public:
    Bytes(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}

    std::uint8_t byte() { return pos_ < n_ ? p_[pos_++] : 0; }
    std::uint64_t word(int bytes) {
        std::uint64_t w = 0;
        for (int b = 0; b < bytes; ++b) w |= static_cast<std::uint64_t>(byte()) << (8 * b);
        return w;
    }
    bool flag() { return byte() & 1; }
    /// An integer in [lo, hi].
    Index range(Index lo, Index hi) {
        const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
        return lo + static_cast<Index>(word(2) % span);
    }
    /// True with probability about 1 / n.
    bool rarely(int n) { return byte() % n == 0; }
    bool exhausted() const { return pos_ >= n_; }

    /// A value from the palette; `bad` allows NaN and infinities (and reports when one came out).
    double value(bool bad_allowed, bool& bad) {
        const std::uint8_t sel = byte();
        double v = 0;
        switch (sel % 16) {
            case 8: v = 0; break;
            case 9: v = last_; break;
            case 10: v = (1.0 + byte() / 256.0) * std::ldexp(1.0, 90 + byte() % 37) * (byte() & 1 ? -1 : 1); break;
            case 11: v = (1.0 + byte() / 256.0) * std::ldexp(1.0, -90 - byte() % 36) * (byte() & 1 ? -1 : 1); break;
            case 12: {
                std::uint64_t bits = word(8);
                std::memcpy(&v, &bits, sizeof v);
                if (!std::isfinite(v)) v = bad_allowed ? v : 1.5;
                break;
            }
            case 13: v = bad_allowed ? std::numeric_limits<double>::quiet_NaN() : 2; break;
            case 14: v = bad_allowed ? (byte() & 1 ? 1 : -1) * std::numeric_limits<double>::infinity() : -3; break;
            case 15: v = std::numeric_limits<float>::denorm_min() * (1 + byte()); break;
            default: v = static_cast<double>(static_cast<std::int8_t>(byte())) / 16.0; break;
        }
        if (!std::isfinite(v)) bad = true;
        last_ = v;
        return v;
    }

    /// An n x d matrix of palette values in Scalar. `bad` is set when some entry is not finite in
    /// Scalar (including a finite double that overflows float).
    template <class Scalar>
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> matrix(Index n, Index d, bool bad_allowed, bool& bad) {
        Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> m(n, d);
        for (Index i = 0; i < n; ++i)
            for (Index j = 0; j < d; ++j) {
                bool b = false;
                double v = value(bad_allowed, b);
                // A float overflow would be a non-finite input; keep inputs finite unless allowed.
                if (!bad_allowed && std::is_same<Scalar, float>::value && std::abs(v) > 3e38) v = 1e38;
                m(i, j) = static_cast<Scalar>(v);
                if (!std::isfinite(static_cast<double>(m(i, j)))) bad = true;
            }
        return m;
    }

    /// Labels: mostly in [0, classes), occasionally a huge id or (when allowed) a negative one.
    Eigen::Matrix<Index, Eigen::Dynamic, 1> labels(Index n, Index classes, bool bad_allowed, bool& bad) {
        Eigen::Matrix<Index, Eigen::Dynamic, 1> y(n);
        for (Index i = 0; i < n; ++i) {
            const std::uint8_t s = byte();
            if (s == 255)
                y[i] = std::numeric_limits<Index>::max() - byte();
            else if (s == 254)
                y[i] = 2000000000 + byte();
            else if (s == 253 && bad_allowed) {
                y[i] = -1 - byte();
                bad = true;
            } else
                y[i] = s % classes;
        }
        return y;
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
    std::size_t pos_ = 0;
    double last_ = 1;
};

/// Indices unique and in [0, n), one weight per index, every weight finite and > 0, at most
/// `max_size` rows; the objective finite (or +inf when `may_overflow`: a true value past double's
/// range).
template <class Scalar>
void check_coreset(const coreset::Coreset<Scalar>& c, Index n, Index max_size, const char* who,
                   bool may_overflow = false) {
    const std::string w = who;
    expect(c.size() <= max_size, w + ": more rows than the budget allows");
    expect(c.weights.size() == c.size(), w + ": one weight per index");
    std::set<Index> seen;
    for (Index j = 0; j < c.size(); ++j) {
        const Index i = c.indices[static_cast<std::size_t>(j)];
        expect(i >= 0 && i < n, w + ": index out of range");
        expect(seen.insert(i).second, w + ": index repeated");
        expect(std::isfinite(static_cast<double>(c.weights[j])), w + ": weight not finite");
        expect(c.weights[j] > Scalar(0), w + ": weight not positive");
    }
    for (double o : c.objective)
        expect(std::isfinite(o) || (may_overflow && o == std::numeric_limits<double>::infinity()),
               w + ": objective not finite");
}

/// Runs `call`; an exception must be std::invalid_argument (or std::logic_error when
/// `logic_allowed`) whose message starts with `where`. Returns the message ("" when nothing was
/// thrown). Any other exception escapes and crashes the harness.
template <class Fn>
std::string run_checked(Fn&& call, const std::string& where, bool& threw) {
    threw = false;
    try {
        call();
    } catch (const std::invalid_argument& e) {
        threw = true;
        const std::string m = e.what();
        expect(m.compare(0, where.size(), where) == 0, "message does not start with " + where + ": " + m);
        expect(m.find("(got ") != std::string::npos, "message without (got ...): " + m);
        return m;
    }
    return "";
}

inline bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

/// GradMatch options from the bytes (lambda, tolerance, policy, normalisation, class split), now
/// and then one out of range when `bad_allowed` (then `bad` is set). Shared by the harnesses that
/// drive GradMatch, so that they decode the same bytes the same way.
inline coreset::GradMatchOptions grad_match_options(Bytes& in, bool bad_allowed, bool& bad) {
    using coreset::ClassBudget;
    using coreset::NonNegativity;
    coreset::GradMatchOptions o;
    const double lambdas[] = {0.0, 0.5, 1e-6, 10.0};
    o.lambda = lambdas[in.byte() % 4];
    const double tolerances[] = {1e-10, 0.0, 0.1, 1e-3};
    o.tolerance = tolerances[in.byte() % 4];
    o.nonnegativity = static_cast<NonNegativity>(in.byte() % 2);
    o.normalize = in.flag();
    o.class_budget = static_cast<ClassBudget>(in.byte() % 2);
    if (bad_allowed && in.rarely(8)) {
        switch (in.byte() % 4) {
            case 0: o.lambda = in.flag() ? -1.0 : std::numeric_limits<double>::infinity(); break;
            case 1: o.tolerance = std::numeric_limits<double>::quiet_NaN(); break;
            case 2: o.nonnegativity = static_cast<NonNegativity>(2 + in.byte()); break;
            default: o.class_budget = static_cast<ClassBudget>(-1); break;
        }
        bad = true;
    }
    return o;
}

/// The checks of a GradMatch result on rows `xd` (n x d, in double) towards `target`: a valid
/// coreset; then, unless `beyond` (values outside the range where GRAD-MATCH's objective is
/// checked) or `mode` >= 2 (per class, per batch), the status against the budget, and the last
/// objective equal to the residual of the returned weights (rounded to Scalar), and
/// ToleranceReached below the tolerance. Mode 0: the target is the column sum (defined to its
/// rounding).
template <class Scalar>
void check_grad_match(const coreset::Coreset<Scalar>& c, const Eigen::MatrixXd& xd, const Eigen::VectorXd& target,
                      Eigen::Index n, Eigen::Index max_size, Eigen::Index budget, int mode,
                      const coreset::GradMatchOptions& o, bool beyond) {
    using coreset::Status;
    using Index = Eigen::Index;
    if (beyond) {
        check_coreset(coreset::Coreset<Scalar>{c.indices, c.weights, {}, c.status}, n, max_size, "GradMatch");
        return;
    }
    check_coreset(c, n, max_size, "GradMatch");
    for (double v : c.objective) expect(v >= 0, "negative residual norm");
    if (mode >= 2) return;
    expect(c.status != Status::BudgetReached || c.size() == budget, "BudgetReached before the budget");
    expect(static_cast<Index>(c.objective.size()) >= c.size(), "fewer objective entries than rows");
    const double tnorm = target.norm();
    // Tolerance: relative to the sizes involved, plus the rounding of each weight into Scalar
    // (weights below the smallest normal Scalar are returned as that value).
    Eigen::VectorXd r = target;
    double scale = tnorm, rounding = 0;
    // The column sum itself is only defined to its rounding (the library may add in another order).
    if (mode == 0)
        for (Index i = 0; i < n; ++i)
            rounding += 4 * std::numeric_limits<double>::epsilon() * static_cast<double>(n) * xd.row(i).norm();
    for (Index j = 0; j < c.size(); ++j) {
        const Eigen::VectorXd g = xd.row(c.indices[static_cast<std::size_t>(j)]).transpose();
        r -= static_cast<double>(c.weights[j]) * g;
        scale += std::abs(static_cast<double>(c.weights[j])) * g.norm();
        rounding += 2 * static_cast<double>(std::numeric_limits<Scalar>::min()) * g.norm();
    }
    // A weight past Scalar's range is returned as the largest finite Scalar: the residual of the
    // returned weights then differs from the objective.
    const bool clamped = c.size() > 0 && c.weights.maxCoeff() == std::numeric_limits<Scalar>::max();
    if (!c.objective.empty() && !clamped) {
        const double tol = std::is_same<Scalar, float>::value ? 1e-4 : 1e-9;
        expect(std::abs(r.norm() - c.objective.back()) <= tol * scale + rounding + 1e-300,
               "objective " + std::to_string(c.objective.back()) + " is not the residual " + std::to_string(r.norm()) +
                   " of the returned weights (scale " + std::to_string(scale) + ")");
    }
    if (c.status == Status::ToleranceReached && !c.objective.empty())
        expect(c.objective.back() < o.tolerance * (tnorm + rounding) + rounding, "ToleranceReached above the tolerance");
}


}  // namespace coreset_fuzz

/// The libFuzzer entry shared by every harness: the first byte picks float or double (bit 0) and
/// whether invalid values may be decoded (bit 1); `run<Scalar>(bytes, bad_allowed)` does the rest.
#define CORESET_FUZZ_ENTRY(run)                                                        \
    extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
        coreset_fuzz::Bytes in(data, size);                                             \
        coreset_fuzz::trace().clear();                                                  \
        const std::uint8_t head = in.byte();                                            \
        const bool bad_allowed = head & 2;                                              \
        if (head & 1)                                                                   \
            run<float>(in, bad_allowed);                                                \
        else                                                                            \
            run<double>(in, bad_allowed);                                               \
        return 0;                                                                       \
    }

