// SPDX-License-Identifier: MIT
/// \file version.hpp
/// \brief The library version: the single source CMake parses.
#pragma once

#define CORESET_VERSION_MAJOR 0
#define CORESET_VERSION_MINOR 2
#define CORESET_VERSION_PATCH 0
/// Combined version, major * 10000 + minor * 100 + patch.
#define CORESET_VERSION (CORESET_VERSION_MAJOR * 10000 + CORESET_VERSION_MINOR * 100 + CORESET_VERSION_PATCH)
