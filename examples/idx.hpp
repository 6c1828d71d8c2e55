// SPDX-License-Identifier: MIT
// Reads the IDX files of MNIST-style datasets (gzip or plain) with zlib. Used by the examples and
// the benchmarks; not part of the library.
#pragma once

#include <zlib.h>

#include <Eigen/Core>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace coreset_examples {

/// Directory of Debian's `dataset-fashion-mnist` package.
inline std::string fashion_mnist_dir() {
    const char* env = std::getenv("FASHION_MNIST_DIR");
    return env ? env : "/usr/share/datasets/fashion-mnist";
}

/// The dimensions and raw bytes of one IDX file of unsigned bytes.
struct Idx {
    std::vector<std::uint32_t> dims;
    std::vector<unsigned char> data;
};

inline Idx read_idx(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f)
        throw std::runtime_error("cannot open " + path +
                                 " (install the Debian package dataset-fashion-mnist, or set FASHION_MNIST_DIR)");
    auto read = [&](void* buf, unsigned len) {
        if (gzread(f, buf, len) != static_cast<int>(len)) {
            gzclose(f);
            throw std::runtime_error("truncated IDX file " + path);
        }
    };
    unsigned char magic[4];
    read(magic, 4);
    if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08) {
        gzclose(f);
        throw std::runtime_error(path + " is not an IDX file of unsigned bytes");
    }
    Idx idx;
    std::size_t count = 1;
    for (int k = 0; k < magic[3]; ++k) {
        unsigned char b[4];
        read(b, 4);
        idx.dims.push_back((std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) | (std::uint32_t(b[2]) << 8) | b[3]);
        count *= idx.dims.back();
    }
    idx.data.resize(count);
    read(idx.data.data(), static_cast<unsigned>(count));
    gzclose(f);
    return idx;
}

/// Images as an n x 784 matrix of pixels scaled to [0, 1], and labels 0..9.
struct Dataset {
    Eigen::MatrixXf x;
    Eigen::VectorXi y;
};

/// `split` is "train" or "t10k".
inline Dataset load_fashion_mnist(const std::string& split, const std::string& dir = fashion_mnist_dir()) {
    const Idx images = read_idx(dir + "/" + split + "-images-idx3-ubyte.gz");
    const Idx labels = read_idx(dir + "/" + split + "-labels-idx1-ubyte.gz");
    if (images.dims.size() != 3 || labels.dims.size() != 1 || images.dims[0] != labels.dims[0])
        throw std::runtime_error("unexpected Fashion-MNIST shapes in " + dir);
    const Eigen::Index n = images.dims[0], d = Eigen::Index(images.dims[1]) * images.dims[2];
    Dataset ds;
    ds.x.resize(n, d);
    ds.y.resize(n);
    for (Eigen::Index i = 0; i < n; ++i) {
        for (Eigen::Index j = 0; j < d; ++j) ds.x(i, j) = images.data[static_cast<std::size_t>(i * d + j)] / 255.0f;
        ds.y[i] = labels.data[static_cast<std::size_t>(i)];
    }
    return ds;
}

}  // namespace coreset_examples
