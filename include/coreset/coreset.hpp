// SPDX-License-Identifier: MIT
/// \file coreset.hpp
/// \brief Umbrella header: every public header of the library, nothing else.
#pragma once

#include "version.hpp"
#include "core.hpp"
#include "factored.hpp"
#include "facility_location.hpp"
#include "craig.hpp"
#include "grad_match.hpp"
#include "gradients.hpp"
#include "adacore.hpp"
#include "crest.hpp"
#include "callbacks.hpp"
#include "schedule.hpp"
