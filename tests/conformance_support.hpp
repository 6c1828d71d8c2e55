// SPDX-License-Identifier: MIT
// Readers for the conformance fixtures (tests/data/conformance): a .npy reader (float32,
// little-endian, C order, format versions 1 and 2; anything else throws), a CSV reader for the one
// text case, and a minimal JSON reader (objects, arrays, strings, numbers, true/false/null) that is
// enough for MANIFEST.json and expected/*.json. Test code only.
#pragma once

#include <Eigen/Core>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace conformance {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("conformance: cannot open " + path);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

// ---------------------------------------------------------------------------------------------
// .npy

namespace detail {
// The value of `key` in the header's Python dict literal, as raw text up to the next top-level
// ',' or '}' (a tuple is returned with its parentheses).
inline std::string header_field(const std::string& header, const std::string& key) {
    const std::string quoted = "'" + key + "'";
    const auto at = header.find(quoted);
    if (at == std::string::npos) throw std::runtime_error("npy: header has no " + quoted);
    auto p = header.find(':', at + quoted.size());
    if (p == std::string::npos) throw std::runtime_error("npy: malformed header near " + quoted);
    ++p;
    while (p < header.size() && header[p] == ' ') ++p;
    int depth = 0;
    std::string value;
    for (; p < header.size(); ++p) {
        const char c = header[p];
        if (c == '(') ++depth;
        if (c == ')') --depth;
        if (depth == 0 && (c == ',' || c == '}')) break;
        value += c;
    }
    while (!value.empty() && value.back() == ' ') value.pop_back();
    return value;
}

inline bool host_is_little_endian() {
    const std::uint16_t one = 1;
    unsigned char first = 0;
    std::memcpy(&first, &one, 1);
    return first == 1;
}
}  // namespace detail

// Reads an n x d float32 array (a 1-D array of length n is read as n x 1).
inline RowMatrixF read_npy(const std::string& path) {
    const std::string bytes = read_file(path);
    static const char magic[] = "\x93NUMPY";
    if (bytes.size() < 10 || bytes.compare(0, 6, magic, 6) != 0) throw std::runtime_error("npy: bad magic in " + path);
    const auto major = static_cast<unsigned char>(bytes[6]);
    std::size_t header_len = 0, offset = 0;
    if (major == 1) {
        header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
        offset = 10;
    } else if (major == 2) {
        if (bytes.size() < 12) throw std::runtime_error("npy: truncated header in " + path);
        for (int b = 3; b >= 0; --b)
            header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + static_cast<std::size_t>(b)]);
        offset = 12;
    } else {
        throw std::runtime_error("npy: unsupported format version " + std::to_string(major) + " in " + path);
    }
    if (bytes.size() < offset + header_len) throw std::runtime_error("npy: truncated header in " + path);
    const std::string header = bytes.substr(offset, header_len);
    const std::string descr = detail::header_field(header, "descr");
    if (descr != "'<f4'") throw std::runtime_error("npy: only little-endian float32 ('<f4') is supported, got " + descr);
    if (detail::header_field(header, "fortran_order") != "False")
        throw std::runtime_error("npy: only C order is supported in " + path);
    std::string shape = detail::header_field(header, "shape");
    if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')') throw std::runtime_error("npy: bad shape " + shape);
    shape = shape.substr(1, shape.size() - 2);
    std::vector<long long> dims;
    std::stringstream ss(shape);
    std::string item;
    while (std::getline(ss, item, ',')) {
        std::size_t s = 0;
        while (s < item.size() && item[s] == ' ') ++s;
        if (s == item.size()) continue;
        std::size_t used = 0;
        const long long v = std::stoll(item.substr(s), &used);
        if (v < 0) throw std::runtime_error("npy: negative dimension in " + path);
        dims.push_back(v);
    }
    if (dims.empty() || dims.size() > 2) throw std::runtime_error("npy: only 1-D and 2-D arrays are supported in " + path);
    const long long n = dims[0], d = dims.size() == 2 ? dims[1] : 1;
    const std::size_t data = offset + header_len, count = static_cast<std::size_t>(n * d);
    if (bytes.size() != data + 4 * count) throw std::runtime_error("npy: data size does not match the shape in " + path);
    if (!detail::host_is_little_endian()) throw std::runtime_error("npy: big-endian hosts are not supported");
    RowMatrixF out(n, d);
    std::memcpy(out.data(), bytes.data() + data, 4 * count);
    return out;
}

// Reads a comma-separated text matrix of numbers (one row per line) as float32, as numpy's
// loadtxt(dtype=float32) would.
inline RowMatrixF read_csv(const std::string& path) {
    std::istringstream in(read_file(path));
    std::vector<std::vector<float>> rows;
    std::string line;
    while (std::getline(in, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::vector<float> row;
        std::stringstream ls(line);
        std::string cell;
        while (std::getline(ls, cell, ',')) {
            char* end = nullptr;
            const float v = std::strtof(cell.c_str(), &end);
            if (end == cell.c_str()) throw std::runtime_error("csv: not a number '" + cell + "' in " + path);
            row.push_back(v);
        }
        if (!rows.empty() && row.size() != rows.front().size()) throw std::runtime_error("csv: ragged rows in " + path);
        rows.push_back(std::move(row));
    }
    if (rows.empty()) throw std::runtime_error("csv: empty file " + path);
    RowMatrixF out(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(rows.front().size()));
    for (std::size_t i = 0; i < rows.size(); ++i)
        for (std::size_t j = 0; j < rows[i].size(); ++j)
            out(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = rows[i][j];
    return out;
}

// ---------------------------------------------------------------------------------------------
// JSON

struct Json {
    enum class Kind { Null, Bool, Number, String, Array, Object };
    Kind kind = Kind::Null;
    bool boolean = false;
    double number = 0.0;
    std::string string;
    std::vector<Json> array;
    std::vector<std::string> keys;  // object: keys[i] names values[i] (std::vector allows the
    std::vector<Json> values;       // incomplete element type, std::map does not)

    bool is_null() const { return kind == Kind::Null; }
    const Json& operator[](const std::string& key) const {
        if (kind != Kind::Object) throw std::runtime_error("json: not an object (looking up '" + key + "')");
        for (std::size_t i = 0; i < keys.size(); ++i)
            if (keys[i] == key) return values[i];
        throw std::runtime_error("json: no key '" + key + "'");
    }
    bool has(const std::string& key) const {
        for (const auto& k : keys)
            if (k == key) return true;
        return false;
    }
    double num() const {
        if (kind != Kind::Number) throw std::runtime_error("json: not a number");
        return number;
    }
    const std::string& str() const {
        if (kind != Kind::String) throw std::runtime_error("json: not a string");
        return string;
    }
    std::vector<double> numbers() const {
        if (kind != Kind::Array) throw std::runtime_error("json: not an array");
        std::vector<double> v;
        for (const Json& e : array) v.push_back(e.num());
        return v;
    }
    std::vector<Eigen::Index> indices() const {
        std::vector<Eigen::Index> v;
        for (double x : numbers()) v.push_back(static_cast<Eigen::Index>(x));
        return v;
    }
};

class JsonParser {
public:
    explicit JsonParser(std::string text) : s_(std::move(text)) {}
    Json parse() {
        Json v = value();
        space();
        if (p_ != s_.size()) fail("trailing characters");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw std::runtime_error("json: " + what + " at offset " + std::to_string(p_));
    }
    void space() {
        while (p_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[p_]))) ++p_;
    }
    bool take(char c) {
        space();
        if (p_ < s_.size() && s_[p_] == c) {
            ++p_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!take(c)) fail(std::string("expected '") + c + "'");
    }
    bool word(const char* w) {
        const std::size_t len = std::strlen(w);
        if (s_.compare(p_, len, w) == 0) {
            p_ += len;
            return true;
        }
        return false;
    }
    Json value() {
        space();
        if (p_ >= s_.size()) fail("unexpected end");
        Json v;
        const char c = s_[p_];
        if (c == '{') {
            ++p_;
            v.kind = Json::Kind::Object;
            if (take('}')) return v;
            do {
                space();
                v.keys.push_back(string_literal());
                expect(':');
                v.values.push_back(value());
            } while (take(','));
            expect('}');
        } else if (c == '[') {
            ++p_;
            v.kind = Json::Kind::Array;
            if (take(']')) return v;
            do v.array.push_back(value());
            while (take(','));
            expect(']');
        } else if (c == '"') {
            v.kind = Json::Kind::String;
            v.string = string_literal();
        } else if (word("true")) {
            v.kind = Json::Kind::Bool;
            v.boolean = true;
        } else if (word("false")) {
            v.kind = Json::Kind::Bool;
        } else if (word("null")) {
            v.kind = Json::Kind::Null;
        } else if (word("NaN") || word("Infinity") || word("-Infinity")) {
            fail("non-finite number");
        } else {
            const char* begin = s_.c_str() + p_;
            char* end = nullptr;
            v.number = std::strtod(begin, &end);  // round-to-nearest, as Python's repr round-trips
            if (end == begin) fail("unexpected character");
            v.kind = Json::Kind::Number;
            p_ += static_cast<std::size_t>(end - begin);
        }
        return v;
    }
    std::string string_literal() {
        if (p_ >= s_.size() || s_[p_] != '"') fail("expected a string");
        ++p_;
        std::string out;
        while (p_ < s_.size() && s_[p_] != '"') {
            char c = s_[p_++];
            if (c == '\\') {
                if (p_ >= s_.size()) fail("bad escape");
                const char e = s_[p_++];
                switch (e) {
                    case 'n': c = '\n'; break;
                    case 't': c = '\t'; break;
                    case 'r': c = '\r'; break;
                    case 'b': c = '\b'; break;
                    case 'f': c = '\f'; break;
                    case '"': case '\\': case '/': c = e; break;
                    default: fail("unsupported escape");  // \u is not needed by these files
                }
            }
            out += c;
        }
        if (p_ >= s_.size()) fail("unterminated string");
        ++p_;
        return out;
    }
    std::string s_;
    std::size_t p_ = 0;
};

inline Json read_json(const std::string& path) {
    const std::string text = read_file(path);
    return JsonParser(text).parse();
}

}  // namespace conformance
