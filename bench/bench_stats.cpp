#include "bench/bench_stats.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kvrag::bench {

double quantile(std::vector<double> values, double q) {
  KVRAG_CHECK(!values.empty(), kInvalidArgument, "quantile of no values");
  KVRAG_CHECK(q >= 0.0 && q <= 1.0, kInvalidArgument, "quantile ", q, " is outside [0, 1]");
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, values.size() - 1);
  const double weight = position - static_cast<double>(below);
  return values[below] + weight * (values[above] - values[below]);
}

PowerLawFit fit_power_law(const std::vector<double>& x, const std::vector<double>& y) {
  KVRAG_CHECK(x.size() == y.size(), kInvalidArgument, "fit_power_law: ", x.size(), " x values but ",
              y.size(), " y values");
  std::vector<double> lx, ly;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i] > 0.0 && y[i] > 0.0) {
      lx.push_back(std::log(x[i]));
      ly.push_back(std::log(y[i]));
    }
  }
  const double n = static_cast<double>(lx.size());
  double mean_x = 0.0, mean_y = 0.0;
  for (size_t i = 0; i < lx.size(); ++i) {
    mean_x += lx[i] / n;
    mean_y += ly[i] / n;
  }
  double sxx = 0.0, sxy = 0.0, syy = 0.0;
  for (size_t i = 0; i < lx.size(); ++i) {
    sxx += (lx[i] - mean_x) * (lx[i] - mean_x);
    sxy += (lx[i] - mean_x) * (ly[i] - mean_y);
    syy += (ly[i] - mean_y) * (ly[i] - mean_y);
  }
  KVRAG_CHECK(lx.size() >= 2 && sxx > 0.0, kInvalidArgument,
              "fit_power_law needs two positive points with different x, got ", lx.size(),
              " positive points");
  PowerLawFit fit;
  fit.exponent = sxy / sxx;
  fit.coefficient = std::exp(mean_y - fit.exponent * mean_x);
  // A flat y (syy = 0) lies exactly on the fitted line.
  fit.r_squared = syy > 0.0 ? (sxy * sxy) / (sxx * syy) : 1.0;
  fit.points = static_cast<int64_t>(lx.size());
  return fit;
}

}  // namespace kvrag::bench
