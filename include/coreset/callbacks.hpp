// SPDX-License-Identifier: MIT
/// \file callbacks.hpp
/// \brief Ready-made callbacks for the selectors' trailing callback arguments: progress lines
/// written to a stream of the caller's choosing, and a wall-clock time limit.
///
/// A callback is any object with `on_step(const StepInfo&)`; returning `true` stops the selection
/// with `Status::StoppedByCallback` and the picks made so far. The library never prints by itself:
/// output only ever goes to a stream handed to `PrintProgress`.
///
/// \code
/// coreset::Craig craig;
/// auto s = craig.select(g, 10000, coreset::PrintProgress(std::cerr, 1000, 10000),
///                       coreset::TimeLimit(60.0));
/// \endcode
#pragma once

#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <ostream>
#include <string>
#include <utility>

#include "core.hpp"
#include "detail/checks.hpp"

namespace coreset {

/// Writes one line per `every` picks to a caller's stream, and never stops the selection.
///
/// The line for pick t (0-based) is written when t = 0, when (t + 1) is a multiple of `every`, and
/// when t + 1 = `total` (if `total` > 0):
/// `<label>pick <t + 1>[/<total>]: row <picked>, gain <gain>, objective <objective>, <s> s`
/// (6 significant digits; the time is the wall-clock time since construction, in seconds with
/// one decimal). The stream must outlive the callback; it is not synchronised, so one
/// PrintProgress per thread.
class PrintProgress {
public:
    /// \param out   destination (std::cout, std::cerr, a std::ostringstream, a log file).
    /// \param every a line every `every` picks, `every` >= 1. Default 100.
    /// \param total the budget, printed as "t/total" and always reported at the last pick; 0 (the
    ///              default) when unknown.
    /// \param label prefix of every line, e.g. "rank 3: ". Default empty.
    /// \throws std::invalid_argument for `every` < 1 or `total` < 0.
    explicit PrintProgress(std::ostream& out, Eigen::Index every = 100, Eigen::Index total = 0,
                           std::string label = {})
        : out_(&out), every_(every), total_(total), label_(std::move(label)), start_(Clock::now()) {
        detail::check_option(every >= 1, every, "PrintProgress::PrintProgress()", "every", "every >= 1");
        detail::check_option(total >= 0, total, "PrintProgress::PrintProgress()", "total", "total >= 0");
    }

    /// Writes the line for this pick if it is due (see the class comment).
    void on_step(const StepInfo& info) {
        const Eigen::Index done = info.step + 1;
        if (info.step != 0 && done % every_ != 0 && done != total_) return;
        const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
        const auto flags = out_->flags();
        const auto precision = out_->precision();
        *out_ << label_ << "pick " << done;
        if (total_ > 0) *out_ << '/' << total_;
        out_->precision(6);
        out_->unsetf(std::ios::floatfield);
        *out_ << ": row " << info.picked << ", gain " << info.gain << ", objective " << info.objective << ", ";
        out_->setf(std::ios::fixed, std::ios::floatfield);
        out_->precision(1);
        *out_ << seconds << " s\n";
        out_->flags(flags);
        out_->precision(precision);
    }

private:
    using Clock = std::chrono::steady_clock;
    std::ostream* out_;
    Eigen::Index every_;
    Eigen::Index total_;
    std::string label_;
    Clock::time_point start_;
};

/// Stops the selection at the first pick made after `seconds` of wall-clock time (measured from
/// construction, so construct it just before `select`). The picks made so far are returned with
/// `Status::StoppedByCallback`; at least one pick is always made (callbacks run after a pick).
/// Results of a time-limited selection depend on the machine's speed: not reproducible.
class TimeLimit {
public:
    /// \param seconds limit, >= 0 (0 stops after the first pick).
    /// \throws std::invalid_argument for a negative or NaN limit.
    explicit TimeLimit(double seconds) : seconds_(seconds), start_(Clock::now()) {
        detail::check_option(seconds >= 0.0, seconds, "TimeLimit::TimeLimit()", "seconds", "seconds >= 0");
    }

    /// True (stop) once the limit has passed.
    bool on_step(const StepInfo&) const { return elapsed() >= seconds_; }

    /// Seconds since construction.
    double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

private:
    using Clock = std::chrono::steady_clock;
    double seconds_;
    Clock::time_point start_;
};

}  // namespace coreset
