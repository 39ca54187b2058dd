// Number formatting shared by the kvrag commands' human-readable output.
#pragma once

#include <cstdint>
#include <string>

#include "core/format.h"  // fixed(): shared with bench/

namespace kvrag::cli {

// "812 B", "35.2 KiB", "9.01 MiB", "1.20 GiB": three significant digits,
// powers of 1024.
std::string human_bytes(double bytes);

// "4.2 s", "3 min 12 s", "1 h 05 min": a duration for progress and summaries.
std::string human_seconds(double seconds);

// "42.5%" for a share of 0.425: one decimal, right-aligned to at least
// `width` characters (tables).
std::string percent(double share, int width = 0);

}  // namespace kvrag::cli
