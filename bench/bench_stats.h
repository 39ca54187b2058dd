// Summary statistics of repeated timings and the power-law fit the
// benchmark report states (how a cost grows with the context length).
#pragma once

#include <cstdint>
#include <vector>

namespace kvrag::bench {

// The q-quantile (0 <= q <= 1) of `values` with linear interpolation between
// order statistics (numpy's default): quantile({1, 2, 3, 4}, 0.5) = 2.5.
// Error(kInvalidArgument) for no values or q outside [0, 1].
double quantile(std::vector<double> values, double q);
inline double median(const std::vector<double>& values) { return quantile(values, 0.5); }
inline double p95(const std::vector<double>& values) { return quantile(values, 0.95); }

// y ≈ coefficient · x^exponent, fitted by least squares on (log x, log y).
struct PowerLawFit {
  double exponent = 0.0;
  double coefficient = 0.0;
  double r_squared = 0.0;  // of the log-log line; 1 when every point is on it
  int64_t points = 0;
};

// Fits the points with x > 0 and y > 0 (others are skipped: a zero time
// has no logarithm). Error(kInvalidArgument) for sizes that differ or fewer
// than two usable points with distinct x.
PowerLawFit fit_power_law(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace kvrag::bench
