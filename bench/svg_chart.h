// A line chart written as a standalone SVG document: the benchmark's
// latency-against-k and speed-up-against-k figures.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace kvrag::bench {

struct ChartSeries {
  std::string name;                               // legend text
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in x order
};

struct LineChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = false;  // logarithmic axes need every value > 0
  bool log_y = false;
  // A horizontal reference line (e.g. speed-up 1 = no gain); none when unset.
  bool has_reference_y = false;
  double reference_y = 0.0;
  std::vector<ChartSeries> series;
};

// The SVG text (720 × 420 px) of `chart`: axes with ticks, one polyline with
// point markers per series (a <g class="series" data-name="…">), a legend.
// Text is XML-escaped. Error(kInvalidArgument) when there are no points, or
// a point is not finite or not positive on a logarithmic axis.
std::string line_chart_svg(const LineChart& chart);

// `text` with & < > " ' replaced by XML entities.
std::string xml_escape(const std::string& text);

}  // namespace kvrag::bench
