// SPDX-License-Identifier: MIT
/// \file detail/rng.hpp
/// \brief The library's only source of randomness: a seeded xoshiro256** generator with its own
/// integer and real mappings, so that a seed gives the same draws with every standard library.
/// Not part of the public API.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <numeric>
#include <vector>

namespace coreset {
namespace detail {

/// xoshiro256** (Blackman and Vigna, 2018) seeded through splitmix64.
class Rng {
public:
    explicit Rng(std::uint64_t seed) noexcept {
        std::uint64_t x = seed;
        for (auto& s : state_) s = splitmix64(x);
    }

    /// A uniform 64-bit word.
    std::uint64_t next() noexcept {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

    /// A uniform integer in [0, bound), bound >= 1, without bias (Lemire's multiply-and-reject).
    std::uint64_t below(std::uint64_t bound) noexcept {
        std::uint64_t hi, lo;
        mul128(next(), bound, hi, lo);
        if (lo < bound) {
            const std::uint64_t threshold = (0 - bound) % bound;
            while (lo < threshold) mul128(next(), bound, hi, lo);
        }
        return hi;
    }

    /// A uniform double in [0, 1) with 53 random bits.
    double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    /// +1 or -1 with equal probability.
    double rademacher() noexcept { return (next() >> 63) ? 1.0 : -1.0; }

    /// Shuffles `v` in place (Fisher-Yates, from the back).
    template <class T>
    void shuffle(std::vector<T>& v) noexcept {
        for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
    }

    /// `k` distinct values of `pool`, drawn uniformly without replacement, in draw order
    /// (partial Fisher-Yates on a copy). Requires k <= pool.size().
    template <class T>
    std::vector<T> sample(std::vector<T> pool, std::size_t k) noexcept {
        for (std::size_t i = 0; i < k; ++i) std::swap(pool[i], pool[i + below(pool.size() - i)]);
        pool.resize(k);
        return pool;
    }

private:
    // Full 64 x 64 -> 128-bit product in portable C++ (no __int128 under -Wpedantic).
    static void mul128(std::uint64_t a, std::uint64_t b, std::uint64_t& hi, std::uint64_t& lo) noexcept {
        const std::uint64_t a0 = a & 0xffffffffULL, a1 = a >> 32, b0 = b & 0xffffffffULL, b1 = b >> 32;
        const std::uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
        const std::uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffULL) + (p10 & 0xffffffffULL);
        lo = (mid << 32) | (p00 & 0xffffffffULL);
        hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    }
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& x) noexcept {
        std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    std::uint64_t state_[4];
};

}  // namespace detail
}  // namespace coreset
