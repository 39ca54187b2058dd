#include "bench/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/error.h"

namespace kvrag::bench {
namespace {

constexpr double kWidth = 720, kHeight = 420;
constexpr double kLeft = 80, kRight = 230, kTop = 50, kBottom = 60;  // plot margins
// Colour-blind-safe (Okabe–Ito) series colours, reused in order.
constexpr const char* kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                    "#E69F00", "#56B4E9", "#000000", "#F0E442"};

// One axis: maps data values to pixels, linearly or in log10.
struct Axis {
  double lo = 0, hi = 1;  // data range (already widened to whole ticks)
  bool log = false;

  double unit(double v) const {
    const double a = log ? std::log10(v) : v;
    const double b0 = log ? std::log10(lo) : lo;
    const double b1 = log ? std::log10(hi) : hi;
    return b1 > b0 ? (a - b0) / (b1 - b0) : 0.5;
  }
};

std::string format_number(double v) {
  char text[32];
  if (std::fabs(v) >= 1e5 || (std::fabs(v) < 1e-3 && v != 0)) {
    std::snprintf(text, sizeof(text), "%.0e", v);
  } else {
    std::snprintf(text, sizeof(text), "%.4g", v);
  }
  return text;
}

// A step of 1, 2 or 5 × 10^n giving about five ticks over [lo, hi].
double nice_step(double lo, double hi) {
  const double raw = (hi - lo) / 5.0;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0}) {
    if (m * magnitude >= raw) return m * magnitude;
  }
  return 10.0 * magnitude;
}

Axis make_axis(double lo, double hi, bool log, std::vector<double>* ticks) {
  Axis axis;
  axis.log = log;
  if (log) {
    // Ticks at 1, 2, 5 × 10^n inside a range widened to those values.
    const double e0 = std::floor(std::log10(lo)), e1 = std::ceil(std::log10(hi));
    std::vector<double> candidates;
    for (double e = e0; e <= e1; ++e) {
      for (const double m : {1.0, 2.0, 5.0}) candidates.push_back(m * std::pow(10.0, e));
    }
    axis.lo = *std::prev(std::upper_bound(candidates.begin(), candidates.end(), lo * (1 + 1e-9)));
    axis.hi = *std::lower_bound(candidates.begin(), candidates.end(), hi * (1 - 1e-9));
    for (const double c : candidates) {
      if (c >= axis.lo && c <= axis.hi) ticks->push_back(c);
    }
    return axis;
  }
  if (hi <= lo) {  // one value: give it a visible range around it
    const double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.5;
    lo -= pad;
    hi += pad;
  }
  const double step = nice_step(lo, hi);
  axis.lo = std::floor(lo / step) * step;
  axis.hi = std::ceil(hi / step) * step;
  for (double t = axis.lo; t <= axis.hi + step * 1e-9; t += step) {
    ticks->push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  }
  return axis;
}

void check_points(const LineChart& chart) {
  size_t points = 0;
  for (const ChartSeries& s : chart.series) {
    for (const auto& [x, y] : s.points) {
      KVRAG_CHECK(std::isfinite(x) && std::isfinite(y), kInvalidArgument, "chart '", chart.title,
                  "': series '", s.name, "' has a point that is not finite");
      KVRAG_CHECK((!chart.log_x || x > 0) && (!chart.log_y || y > 0), kInvalidArgument, "chart '",
                  chart.title, "': series '", s.name, "' has a value <= 0 on a logarithmic axis");
      ++points;
    }
  }
  KVRAG_CHECK(points > 0, kInvalidArgument, "chart '", chart.title, "' has no points");
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string line_chart_svg(const LineChart& chart) {
  check_points(chart);
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const ChartSeries& s : chart.series) {
    for (const auto& [x, y] : s.points) {
      x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    }
  }
  if (chart.has_reference_y) {
    y_lo = std::min(y_lo, chart.reference_y);
    y_hi = std::max(y_hi, chart.reference_y);
  }
  if (!chart.log_y && y_lo > 0) y_lo = 0;  // linear y axes start at zero
  std::vector<double> x_ticks, y_ticks;
  const Axis x_axis = make_axis(x_lo, x_hi, chart.log_x, &x_ticks);
  const Axis y_axis = make_axis(y_lo, y_hi, chart.log_y, &y_ticks);
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + x_axis.unit(x) * plot_w; };
  auto py = [&](double y) { return kTop + (1.0 - y_axis.unit(y)) * plot_h; };

  std::ostringstream svg;
  svg.precision(5);
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
      << "\" viewBox=\"0 0 " << kWidth << " " << kHeight
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kWidth / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">"
      << xml_escape(chart.title) << "</text>\n";
  // Grid lines and tick labels.
  for (const double t : x_ticks) {
    svg << "<line x1=\"" << px(t) << "\" y1=\"" << kTop << "\" x2=\"" << px(t) << "\" y2=\""
        << kTop + plot_h << "\" stroke=\"#ddd\"/>\n"
        << "<text x=\"" << px(t) << "\" y=\"" << kTop + plot_h + 16 << "\" text-anchor=\"middle\">"
        << format_number(t) << "</text>\n";
  }
  for (const double t : y_ticks) {
    svg << "<line x1=\"" << kLeft << "\" y1=\"" << py(t) << "\" x2=\"" << kLeft + plot_w
        << "\" y2=\"" << py(t) << "\" stroke=\"#ddd\"/>\n"
        << "<text x=\"" << kLeft - 6 << "\" y=\"" << py(t) + 4 << "\" text-anchor=\"end\">"
        << format_number(t) << "</text>\n";
  }
  svg << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << plot_w << "\" height=\""
      << plot_h << "\" fill=\"none\" stroke=\"#333\"/>\n"
      << "<text x=\"" << kLeft + plot_w / 2 << "\" y=\"" << kHeight - 18
      << "\" text-anchor=\"middle\">" << xml_escape(chart.x_label) << "</text>\n"
      << "<text transform=\"translate(18 " << kTop + plot_h / 2
      << ") rotate(-90)\" text-anchor=\"middle\">" << xml_escape(chart.y_label) << "</text>\n";
  if (chart.has_reference_y) {
    svg << "<line x1=\"" << kLeft << "\" y1=\"" << py(chart.reference_y) << "\" x2=\""
        << kLeft + plot_w << "\" y2=\"" << py(chart.reference_y)
        << "\" stroke=\"#888\" stroke-dasharray=\"6 4\"/>\n";
  }
  // Series, then their legend entries beside the plot.
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const ChartSeries& s = chart.series[i];
    const char* colour = kColours[i % std::size(kColours)];
    std::vector<std::pair<double, double>> points = s.points;
    std::sort(points.begin(), points.end());
    svg << "<g class=\"series\" data-name=\"" << xml_escape(s.name) << "\" stroke=\"" << colour
        << "\" fill=\"" << colour << "\">\n<title>" << xml_escape(s.name) << "</title>\n"
        << "<polyline fill=\"none\" stroke-width=\"2\" points=\"";
    for (const auto& [x, y] : points) svg << px(x) << "," << py(y) << " ";
    svg << "\"/>\n";
    for (const auto& [x, y] : points) {
      svg << "<circle cx=\"" << px(x) << "\" cy=\"" << py(y) << "\" r=\"3.5\"><title>"
          << xml_escape(s.name) << ": " << format_number(x) << ", " << format_number(y)
          << "</title></circle>\n";
    }
    const double ly = kTop + 10 + 20.0 * static_cast<double>(i);
    svg << "<line x1=\"" << kLeft + plot_w + 14 << "\" y1=\"" << ly << "\" x2=\""
        << kLeft + plot_w + 36 << "\" y2=\"" << ly << "\" stroke-width=\"2\"/>\n"
        << "<text x=\"" << kLeft + plot_w + 42 << "\" y=\"" << ly + 4
        << "\" stroke=\"none\" fill=\"#000\">" << xml_escape(s.name) << "</text>\n</g>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace kvrag::bench
