#include "cli/format.h"

#include <cmath>
#include <cstdio>

namespace kvrag::cli {

std::string human_bytes(double bytes) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (std::fabs(bytes) >= 1024.0 && unit < 4) {
    bytes /= 1024.0;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%.0f B", bytes);
  } else {
    const int decimals = std::fabs(bytes) >= 100 ? 0 : std::fabs(bytes) >= 10 ? 1 : 2;
    std::snprintf(text, sizeof text, "%.*f %s", decimals, bytes, kUnits[unit]);
  }
  return text;
}

std::string human_seconds(double seconds) {
  char text[32];
  if (seconds < 60) {
    std::snprintf(text, sizeof text, "%.1f s", seconds);
  } else if (seconds < 3600) {
    const long s = std::lround(seconds);
    std::snprintf(text, sizeof text, "%ld min %02ld s", s / 60, s % 60);
  } else {
    const long m = std::lround(seconds / 60);
    std::snprintf(text, sizeof text, "%ld h %02ld min", m / 60, m % 60);
  }
  return text;
}

std::string percent(double share, int width) {
  char text[32];
  std::snprintf(text, sizeof text, "%*.1f%%", width > 0 ? width - 1 : 0, 100.0 * share);
  return text;
}

}  // namespace kvrag::cli
