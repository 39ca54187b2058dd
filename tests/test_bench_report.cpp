// The benchmark's statistics, report writers and driver: quantiles and the
// power-law fit against known answers, the CSV / Markdown / SVG content, the
// random-weight model folder against the in-memory model, and run_bench's
// fairness bookkeeping on a tiny demo-model index.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "bench/bench_report.h"
#include "bench/bench_stats.h"
#include "bench/rag_bench.h"
#include "bench/random_model.h"
#include "bench/svg_chart.h"
#include "decoder/t5_model.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag::bench {
namespace {

namespace fs = std::filesystem;
using kvrag::testing::kDemoModel;
using kvrag::testing::read_text;
using kvrag::testing::TempDir;
using kvrag::testing::throws_error;

// ---------------------------------------------------------------- XML check

// Checks that `text` is well-formed XML as far as an SVG viewer cares: one
// root element, every tag closed in order, attributes quoted, and no raw
// '<' or stray '&' in text or attribute values. Returns "" or the problem.
std::string xml_problem(const std::string& text) {
  size_t at = 0;
  std::vector<std::string> open;
  int roots = 0;
  auto bad_entity = [&](const std::string& s) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '<') return true;
      if (s[i] != '&') continue;
      const size_t semi = s.find(';', i);
      if (semi == std::string::npos) return true;
      const std::string name = s.substr(i + 1, semi - i - 1);
      static const std::set<std::string> kNames{"amp", "lt", "gt", "quot", "apos"};
      if (!kNames.count(name)) return true;
    }
    return false;
  };
  if (text.rfind("<?xml", 0) == 0) at = text.find("?>") + 2;
  while (at < text.size()) {
    const size_t lt = text.find('<', at);
    const std::string chars =
        text.substr(at, lt == std::string::npos ? std::string::npos : lt - at);
    if (bad_entity(chars)) return "bad character data: " + chars;
    if (lt == std::string::npos) break;
    if (open.empty() && chars.find_first_not_of(" \n") != std::string::npos) {
      return "text outside the root element";
    }
    const size_t gt = text.find('>', lt);
    if (gt == std::string::npos) return "unterminated tag";
    std::string tag = text.substr(lt + 1, gt - lt - 1);
    at = gt + 1;
    if (tag.starts_with("/")) {
      if (open.empty() || open.back() != tag.substr(1))
        return "mismatched </" + tag.substr(1) + ">";
      open.pop_back();
      continue;
    }
    const bool self_closing = tag.ends_with("/");
    if (self_closing) tag.pop_back();
    const size_t name_end = tag.find_first_of(" \n");
    const std::string name = tag.substr(0, name_end);
    if (name.empty()) return "tag without a name";
    // Attributes: name="value" pairs separated by spaces.
    size_t p = name_end == std::string::npos ? tag.size() : name_end;
    while (p < tag.size()) {
      p = tag.find_first_not_of(" \n", p);
      if (p == std::string::npos) break;
      const size_t eq = tag.find('=', p);
      if (eq == std::string::npos || eq + 1 >= tag.size() || tag[eq + 1] != '"') {
        return "unquoted attribute in <" + name + ">";
      }
      const size_t close = tag.find('"', eq + 2);
      if (close == std::string::npos) return "unterminated attribute in <" + name + ">";
      if (bad_entity(tag.substr(eq + 2, close - eq - 2))) return "bad attribute in <" + name + ">";
      p = close + 1;
    }
    if (open.empty()) ++roots;
    if (!self_closing) open.push_back(name);
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  if (roots != 1) return std::to_string(roots) + " root elements";
  return "";
}

TEST(BenchXmlCheck, RejectsBrokenDocuments) {
  EXPECT_EQ(xml_problem("<svg><g a=\"1\"/></svg>"), "");
  EXPECT_NE(xml_problem("<svg><g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a < b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>R&D</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg a=1></svg>"), "");
  EXPECT_NE(xml_problem("<svg></svg><svg></svg>"), "");
}

// ---------------------------------------------------------------- statistics

TEST(BenchStats, QuantilesInterpolateLikeNumpy) {
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2.0);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4, 5}, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4, 5}, 1.0), 5.0);
  // numpy.percentile(range(1, 21), 95) = 19.05
  std::vector<double> twenty;
  for (int i = 1; i <= 20; ++i) twenty.push_back(i);
  EXPECT_NEAR(p95(twenty), 19.05, 1e-12);
  EXPECT_DOUBLE_EQ(p95({7}), 7.0);
  EXPECT_TRUE(throws_error([] { median({}); }, ErrorKind::kInvalidArgument, {"no values"}));
  EXPECT_TRUE(throws_error([] { quantile({1}, 1.5); }, ErrorKind::kInvalidArgument, {"1.5"}));
}

TEST(BenchStats, PowerLawFitRecoversExponentAndCoefficient) {
  std::vector<double> x, y;
  for (const double t : {100.0, 250.0, 700.0, 1500.0, 3300.0}) {
    x.push_back(t);
    y.push_back(0.02 * std::pow(t, 1.73));
  }
  const PowerLawFit fit = fit_power_law(x, y);
  EXPECT_NEAR(fit.exponent, 1.73, 1e-9);
  EXPECT_NEAR(fit.coefficient, 0.02, 1e-9);
  EXPECT_NEAR(fit.r_squared, 1.0, 1e-12);
  EXPECT_EQ(fit.points, 5);

  // Multiplicative noise of ±5 % moves the exponent only a little, and r²
  // drops below 1.
  const double noise[] = {1.05, 0.95, 1.03, 0.97, 1.0};
  for (size_t i = 0; i < y.size(); ++i) y[i] *= noise[i];
  const PowerLawFit noisy = fit_power_law(x, y);
  EXPECT_NEAR(noisy.exponent, 1.73, 0.05);
  EXPECT_LT(noisy.r_squared, 1.0);
}

TEST(BenchStats, PowerLawFitSkipsNonPositivePointsAndNeedsTwo) {
  const PowerLawFit fit = fit_power_law({0, 10, 100}, {5, 7, 7});
  EXPECT_EQ(fit.points, 2);
  EXPECT_NEAR(fit.exponent, 0.0, 1e-12);
  EXPECT_TRUE(throws_error(
      [] {
        fit_power_law({1, 2}, {1});
      },
      ErrorKind::kInvalidArgument, {"2 x values but 1 y values"}));
  EXPECT_TRUE(throws_error(
      [] {
        fit_power_law({5, 5}, {1, 2});
      },
      ErrorKind::kInvalidArgument, {"two positive points"}));
}

// ---------------------------------------------------------------- report

BenchCell cell(const std::string& model, const std::string& variant, int64_t k, double ttft,
               double encode, double context) {
  BenchCell c;
  c.model = model;
  c.variant = variant;
  c.mode = variant.starts_with("cached") ? "cached" : variant;
  c.chunk_tokens = 64;
  c.k = k;
  c.questions = 2;
  c.samples = 4;
  c.context_tokens = context;
  c.first_token_ms = {ttft, ttft * 1.5};
  c.total_ms = {ttft + 50, ttft * 1.5 + 50};
  c.encode_ms = {encode, encode};
  c.tokens_per_s = 100;
  c.generated_tokens = 5;
  return c;
}

// Cells whose concat encoder time is 0.001 · tokens^2 and cached's is flat.
std::vector<BenchCell> sample_cells() {
  std::vector<BenchCell> cells;
  for (const int64_t k : {1, 5, 20}) {
    const double tokens = 70.0 * static_cast<double>(k);
    BenchCell sqlite = cell("kvrag-demo", "cached-sqlite", k, 12, 3, tokens);
    sqlite.store_bytes_read = 180000.0 * static_cast<double>(k);
    BenchCell ram = cell("kvrag-demo", "cached-ram", k, 10, 3, tokens);
    ram.ram_hit_rate = 1.0;
    ram.step_bytes = 1e8 * static_cast<double>(k);
    ram.question_bytes = 2e8;
    ram.stream_bytes_per_s = 9e9;
    ram.paired_bound_multiple = 0.25;
    ram.paired_with_question_multiple = 0.125;
    ram.exact_match = 50.0;
    ram.f1 = 62.5;
    cells.push_back(sqlite);
    cells.push_back(ram);
    cells.push_back(cell("kvrag-demo", "concat", k, 0.001 * tokens * tokens + 8,
                         0.001 * tokens * tokens, tokens));
  }
  return cells;
}

TEST(BenchReport, SpeedupsDivideConcatByCachedTimeToFirstToken) {
  const std::vector<SpeedupRow> rows = speedups(sample_cells());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2].k, 20);
  const double concat = 0.001 * 1400 * 1400 + 8;
  ASSERT_TRUE(rows[2].ram_over_concat && rows[2].sqlite_over_concat);
  EXPECT_DOUBLE_EQ(*rows[2].ram_over_concat, concat / 10);
  EXPECT_DOUBLE_EQ(*rows[2].sqlite_over_concat, concat / 12);
  EXPECT_FALSE(rows[2].ram_over_fid);  // no fid cells
}

TEST(BenchReport, MemoryBoundsDivideTimeToFirstTokenByTheCachedStepsBytes) {
  EXPECT_TRUE(memory_bounds(sample_cells(), 0.0).empty()) << "no bandwidth measured";
  const std::vector<BoundRow> rows = memory_bounds(sample_cells(), 1e10);
  ASSERT_EQ(rows.size(), 3u);
  // k = 5: 5e8 bytes at 1e10 B/s is 50 ms; cached-sqlite 12, cached-ram 10, concat 130.5 ms.
  EXPECT_EQ(rows[1].k, 5);
  EXPECT_DOUBLE_EQ(rows[1].step_bytes, 5e8);
  EXPECT_DOUBLE_EQ(rows[1].bound_ms, 50.0);
  ASSERT_EQ(rows[1].multiples.size(), 3u);
  EXPECT_EQ(rows[1].multiples[0].first, "cached-sqlite");
  EXPECT_DOUBLE_EQ(rows[1].multiples[0].second, 12.0 / 50.0);
  EXPECT_DOUBLE_EQ(rows[1].multiples[1].second, 10.0 / 50.0);
  EXPECT_DOUBLE_EQ(rows[1].multiples[2].second, (0.001 * 350 * 350 + 8) / 50.0);
  // With the question's 2e8 bytes: 7e8 bytes, 70 ms, against cached-ram's 10.
  EXPECT_DOUBLE_EQ(rows[1].question_bytes, 2e8);
  EXPECT_DOUBLE_EQ(rows[1].with_question_ms, 70.0);
  EXPECT_EQ(rows[1].cached_variant, "cached-ram");
  EXPECT_DOUBLE_EQ(rows[1].cached_multiple, 10.0 / 70.0);
  // The paired multiples are the cached cell's own, carried over.
  EXPECT_DOUBLE_EQ(rows[1].paired_multiple, 0.25);
  EXPECT_DOUBLE_EQ(rows[1].paired_with_question_multiple, 0.125);
  EXPECT_DOUBLE_EQ(rows[1].paired_bytes_per_s, 9e9);
}

TEST(BenchReport, BoundMultipleIsTimeOverBytesAtTheRate) {
  // 5e8 bytes at 1e10 B/s take 50 ms.
  EXPECT_DOUBLE_EQ(bound_multiple(100.0, 5e8, 1e10), 2.0);
  EXPECT_DOUBLE_EQ(bound_multiple(25.0, 5e8, 1e10), 0.5);
  EXPECT_EQ(bound_multiple(100.0, 5e8, 0.0), 0.0) << "no rate measured";
}

TEST(BenchReport, ScalingFitsStateQuadraticConcatAndFlatCached) {
  const std::vector<ScalingFit> fits = fit_scaling(sample_cells());
  auto find = [&](const std::string& variant, const std::string& figure) {
    for (const ScalingFit& f : fits) {
      if (f.variant == variant && f.figure == figure) return f.fit;
    }
    ADD_FAILURE() << "no fit for " << variant << " " << figure;
    return PowerLawFit{};
  };
  EXPECT_NEAR(find("concat", "encode_ms").exponent, 2.0, 1e-9);
  EXPECT_NEAR(find("cached-ram", "encode_ms").exponent, 0.0, 1e-9);
  EXPECT_NEAR(find("cached-ram", "first_token_ms").exponent, 0.0, 1e-9);
}

TEST(BenchReport, CsvHasOneRowPerCellWithQuotedFieldsAndEmptyQuality) {
  std::vector<BenchCell> cells = sample_cells();
  cells[0].model = "model, \"quoted\"";
  const std::string csv = cells_csv(cells);
  std::vector<std::string> lines;
  std::stringstream in(csv);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 1 + cells.size());
  EXPECT_TRUE(lines[0].starts_with("model,random_weights,variant,mode,chunk_tokens,k,"));
  EXPECT_TRUE(lines[0].ends_with(",exact_match,f1"));
  EXPECT_TRUE(
      lines[1].starts_with("\"model, \"\"quoted\"\"\",false,cached-sqlite,cached,64,1,2,4,70,"))
      << lines[1];
  EXPECT_TRUE(lines[1].ends_with(",,")) << "no quality for this cell: " << lines[1];
  EXPECT_TRUE(lines[2].ends_with(",50,62.5")) << lines[2];
  // Every row has as many fields as the header (the quoted one counted once).
  const auto fields = [](const std::string& line) {
    int n = 1;
    bool quoted = false;
    for (const char c : line) {
      if (c == '"') quoted = !quoted;
      n += c == ',' && !quoted;
    }
    return n;
  };
  for (const std::string& line : lines) EXPECT_EQ(fields(line), fields(lines[0])) << line;
}

TEST(BenchReport, MarkdownHasTablesSpeedupsStorageAndFits) {
  BenchReport report;
  report.machine = {"Test CPU", 2, 24ll << 30, 2, 1e10};
  report.command = "kvrag bench --index x";
  report.max_new_tokens = 16;
  report.repeat = 2;
  report.cells = sample_cells();
  BenchCell random = cell("t5-base shape", "concat", 5, 900, 880, 400);
  random.random_weights = true;
  report.cells.push_back(random);
  report.agreement.push_back({"kvrag-demo", 64, 5, "cached", "concat", 4, 0.75});
  StorageSummary storage;
  storage.model = "kvrag-demo";
  storage.chunk_tokens = 64;
  storage.chunks = 10;
  storage.text_bytes = 1000;
  storage.rows.push_back({"kv", "f16", 3072, 180000, 1800000, true});
  report.storage.push_back(storage);

  const std::string md = report_markdown(report, {"speedup_vs_k.svg"});
  EXPECT_NE(md.find("Test CPU, 2 cores, 24.0 GiB"), std::string::npos);
  EXPECT_NE(md.find("`kvrag bench --index x`"), std::string::npos);
  EXPECT_NE(md.find("## kvrag-demo, chunks of 64 tokens"), std::string::npos);
  EXPECT_NE(md.find("## t5-base shape (random weights), chunks of 64 tokens"), std::string::npos);
  EXPECT_NE(md.find("speed only"), std::string::npos);
  // The cached-ram row at k = 20: TTFT 10 (p95 15), hits 100 %, EM and F1.
  EXPECT_NE(md.find("| cached-ram | 20 | 1400 | 10.0 (15.0) |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 100 % |"), std::string::npos);
  EXPECT_NE(md.find("| 50.0 | 62.5 |"), std::string::npos);
  // Speed-up at k = 20: concat 1968 ms over cached-sqlite 12 and cached-ram 10.
  EXPECT_NE(md.find("| 20 | 164.00× | 196.80× | – |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 5 | cached = concat | 75 % of 4 |"), std::string::npos);
  EXPECT_NE(md.find("streamed 10.0 GB/s from RAM in this run (the best of"), std::string::npos)
      << md;
  // The bound at k = 20: 2e9 bytes at 1e10 B/s, 200 ms; with the question's
  // 2e8 bytes 220 ms, cached-ram's 10 ms 0.05× of it.
  EXPECT_NE(md.find("| k | MiB read | bound ms | cached-sqlite | cached-ram | concat | question "
                    "MiB | bound with the question ms | cached-ram |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| 20 | 1907.3 | 200.00 | 0.06× | 0.05× | 9.84× | 190.7 | 220.00 | 0.05× |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| kv | f16 (this index) | 3072 | 175.8 | 1.7 | 1800 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| kvrag-demo | concat | encode_ms | 2.00 | 1.000 | 3 |"), std::string::npos);
  EXPECT_NE(md.find("![speedup_vs_k.svg](speedup_vs_k.svg)"), std::string::npos);
  // The random-weight model's one cell is in no fit and shows no quality.
  EXPECT_EQ(md.find("| t5-base shape |"), std::string::npos);
}

TEST(BenchReport, SvgIsWellFormedWithOneGroupPerSeries) {
  LineChart chart;
  chart.title = "Latency <ms> & k";
  chart.x_label = "k";
  chart.y_label = "ms";
  chart.log_x = true;
  chart.log_y = true;
  chart.series = {{"cached-ram", {{1, 10}, {5, 12}, {20, 30}}},
                  {"concat \"joint\"", {{20, 2000}, {1, 35}, {5, 140}}}};
  const std::string svg = line_chart_svg(chart);
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find("Latency &lt;ms&gt; &amp; k"), std::string::npos);
  EXPECT_NE(svg.find("data-name=\"cached-ram\""), std::string::npos);
  EXPECT_NE(svg.find("data-name=\"concat &quot;joint&quot;\""), std::string::npos);
  size_t polylines = 0, circles = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1)) {
    ++polylines;
  }
  for (size_t at = svg.find("<circle"); at != std::string::npos; at = svg.find("<circle", at + 1)) {
    ++circles;
  }
  EXPECT_EQ(polylines, 2u);
  EXPECT_EQ(circles, 6u);
  // Log ticks at 1, 2, 5, 10, 20 on x and up to 2000 on y.
  EXPECT_NE(svg.find(">20</text>"), std::string::npos);
  EXPECT_NE(svg.find(">2000</text>"), std::string::npos);

  chart.series[0].points.push_back({0, 1});
  EXPECT_TRUE(throws_error([&] { line_chart_svg(chart); }, ErrorKind::kInvalidArgument,
                           {"cached-ram", "logarithmic"}));
  EXPECT_TRUE(throws_error([] { line_chart_svg(LineChart{}); }, ErrorKind::kInvalidArgument,
                           {"no points"}));
}

TEST(BenchReport, WriteReportWritesMarkdownCsvAndCharts) {
  const TempDir dir("kvrag_test_bench_report");
  BenchReport report;
  report.cells = sample_cells();
  const std::vector<std::string> files = write_report(report, dir.file("out"));
  std::set<std::string> names;
  for (const std::string& f : files) names.insert(fs::path(f).filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"first_token_vs_k-kvrag-demo-c64.svg",
                                          "latency_vs_k-kvrag-demo-c64.svg", "speedup_vs_k.svg",
                                          "results.csv", "report.md"}));
  for (const std::string& f : files) {
    if (f.ends_with(".svg")) {
      EXPECT_EQ(xml_problem(read_text(f)), "") << f;
    }
  }
  EXPECT_EQ(read_text(dir.file("out/results.csv")), cells_csv(report.cells));
  EXPECT_EQ(slug("T5-base shape (random)"), "t5-base-shape-random");
}

// ---------------------------------------------------------------- random model

TEST(BenchRandomModel, FolderLoadsAsTheRandomModelRoundedToF16) {
  const TempDir dir("kvrag_test_bench_random");
  T5Config config = random_shape_config("t5-small");
  config.vocab_size = 2000;  // the demo vocabulary, copied in
  config.d_model = 32;
  config.num_heads = 2;
  config.d_kv = 8;  // inner_dim 16 != d_model
  config.d_ff = 48;
  config.num_layers = 2;
  config.num_decoder_layers = 3;
  write_random_model_folder(config, 7, kDemoModel + "/spiece.model", dir.file("m"));
  const auto loaded = load_t5_model(dir.file("m"));
  const auto original = make_random_t5_model(config, 7);
  ASSERT_TRUE(loaded->tokenizer.has_value());
  EXPECT_EQ(loaded->config.num_decoder_layers, 3);
  EXPECT_TRUE(loaded->config.is_gated_act);
  EXPECT_FALSE(loaded->config.tie_word_embeddings);
  auto same = [](const Tensor& got, const Tensor& want, const std::string& what) {
    ASSERT_EQ(got.rows(), want.rows()) << what;
    ASSERT_EQ(got.cols(), want.cols()) << what;
    for (int64_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got.data()[i], kvrag::testing::round_to_dtype(want.data()[i], DType::kF16))
          << what << " value " << i;
    }
  };
  const EncoderWeights& ge = loaded->encoder_weights;
  const EncoderWeights& we = original->encoder_weights;
  const DecoderWeights& gd = loaded->decoder_weights;
  const DecoderWeights& wd = original->decoder_weights;
  same(ge.shared.f32().unpacked(), we.shared.f32().unpacked(), "shared");
  same(gd.lm_head.f32().unpacked(), wd.lm_head.f32().unpacked(), "lm_head");
  same(ge.blocks[1].self.qkv.f32().unpacked(), we.blocks[1].self.qkv.f32().unpacked(),
       "encoder 1 qkv");
  same(ge.blocks[0].ffn.wi.f32().unpacked(), we.blocks[0].ffn.wi.f32().unpacked(), "encoder 0 wi");
  same(gd.blocks[2].cross_q.f32().unpacked(), wd.blocks[2].cross_q.f32().unpacked(),
       "decoder 2 cross q");
  same(gd.blocks[2].ffn.wo.f32().unpacked(), wd.blocks[2].ffn.wo.f32().unpacked(), "decoder 2 wo");
  same(gd.relative_bias, wd.relative_bias, "decoder bias");
  same(ge.cross_kv.f32().unpacked(), we.cross_kv.f32().unpacked(), "cross kv");
  same(gd.final_norm, wd.final_norm, "decoder final norm");
}

TEST(BenchRandomModel, ShapesAreT5SmallAndBase) {
  const T5Config base = random_shape_config("t5-base");
  EXPECT_EQ(base.d_model, 768);
  EXPECT_EQ(base.num_heads * base.d_kv, 768);
  EXPECT_EQ(base.d_ff, 3072);
  EXPECT_EQ(base.num_decoder_layers, 12);
  EXPECT_EQ(base.vocab_size, 32128);
  EXPECT_EQ(random_shape_config("t5-small").d_model, 512);
  EXPECT_TRUE(throws_error([] { random_shape_config("t5-xl"); }, ErrorKind::kInvalidArgument,
                           {"t5-xl", "t5-small, t5-base"}));
}

// ---------------------------------------------------------------- driver

TEST(BenchRun, EveryVariantAnswersFromTheSameChunks) {
  const TempDir dir("kvrag_test_bench_run");
  OpenOptions ram_options;
  ram_options.kv_cache_bytes = 64 << 20;
  const auto ram = RagPipeline::create(dir.file("index"), kDemoModel, IndexSettings{}, ram_options);
  ram->add_documents({{"a", "Treiwaes", "", "The Treiwaes is a river. It is 1677 kilometres long."},
                      {"b", "Heirkford", "", "Heirkford is a town on the river Thaes."},
                      {"c", "Yydyst", "", "Mount Yydyst is the source of the Treiwaes."}});
  OpenOptions sqlite_options;
  sqlite_options.kv_cache_bytes = 0;
  const auto sqlite = RagPipeline::open(dir.file("index"), sqlite_options);
  BenchSettings settings;
  settings.ks = {2, 1};
  settings.variants = variants_for({Mode::kCached, Mode::kConcat});
  settings.repeat = 2;
  settings.warmup = 0;
  settings.generation.max_new_tokens = 4;
  const std::vector<EvalQuestion> questions{{"How long is the Treiwaes?", {"1677 kilometres"}, ""},
                                            {"Where is Heirkford?", {"on the river Thaes"}, ""}};
  int64_t last_done = 0, total = 0;
  const BenchResult result = run_bench({"demo", false, ram.get(), sqlite.get()}, questions,
                                       settings, [&](const BenchProgress& p) {
                                         EXPECT_EQ(p.answers_done, last_done + 1);
                                         last_done = p.answers_done;
                                         total = p.answers_total;
                                       });
  EXPECT_EQ(last_done, total);
  // 2 k × 2 questions × (3 variants × 2 repeats + an untimed answer of
  // each cached variant).
  EXPECT_EQ(total, 2 * 2 * 8);
  ASSERT_EQ(result.cells.size(), 6u);  // k ascending, variants in order
  EXPECT_EQ(result.cells[0].k, 1);
  EXPECT_EQ(result.cells[0].variant, "cached-sqlite");
  EXPECT_EQ(result.cells[1].variant, "cached-ram");
  EXPECT_EQ(result.cells[2].variant, "concat");
  EXPECT_EQ(result.cells[3].k, 2);
  for (const BenchCell& c : result.cells) {
    EXPECT_EQ(c.samples, 4) << c.variant;
    EXPECT_EQ(c.questions, 2) << c.variant;
    EXPECT_GT(c.first_token_ms.median, 0.0) << c.variant;
    EXPECT_LE(c.first_token_ms.median, c.first_token_ms.p95) << c.variant;
    ASSERT_TRUE(c.exact_match && c.f1) << c.variant;
    // Every answer had its own stream read, so every cell its paired bounds.
    EXPECT_GT(c.stream_bytes_per_s, 0.0) << c.variant;
    EXPECT_GT(c.paired_bound_multiple, c.paired_with_question_multiple) << c.variant;
    EXPECT_GT(c.paired_with_question_multiple, 0.0) << c.variant;
  }
  // Same chunks: both cached variants read the same number of positions.
  EXPECT_EQ(result.cells[3].context_tokens, result.cells[4].context_tokens);
  EXPECT_GT(result.cells[3].context_tokens, result.cells[0].context_tokens);
  EXPECT_EQ(result.cells[3].ram_hit_rate, 0.0);
  EXPECT_GT(result.cells[3].store_bytes_read, 0.0);
  EXPECT_EQ(result.cells[4].ram_hit_rate, 1.0);
  EXPECT_EQ(result.cells[4].store_bytes_read, 0.0);
  EXPECT_EQ(result.cells[5].encode_ms.median > 0, true);
  // The cached variants compute the same answers.
  EXPECT_EQ(result.cells[0].f1, result.cells[1].f1);
  ASSERT_EQ(result.agreement.size(), 2u);  // cached = concat at each k
  EXPECT_EQ(result.agreement[0].mode_a, "cached");
  EXPECT_EQ(result.agreement[0].mode_b, "concat");

  settings.ks = {4};
  EXPECT_TRUE(throws_error(
      [&] {
        run_bench({"demo", false, ram.get(), sqlite.get()}, questions, settings);
      },
      ErrorKind::kInvalidArgument, {"--k 4", "holds 3"}));
  const StorageSummary storage = storage_summary(*ram, "demo");
  EXPECT_EQ(storage.chunks, 3);
  ASSERT_EQ(storage.rows.size(), 6u);
  EXPECT_TRUE(storage.rows[1].stored);  // kv, f16: the default
  EXPECT_EQ(storage.rows[1].index_bytes, storage.stored_memory_bytes);
  EXPECT_EQ(storage.rows[0].bytes_per_token, 2 * storage.rows[1].bytes_per_token);
}

TEST(BenchRun, VariantsSplitCachedAndRejectRepeats) {
  const std::vector<Variant> v = variants_for({Mode::kFid, Mode::kCached});
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].name, "fid");
  EXPECT_EQ(v[1].name, "cached-sqlite");
  EXPECT_EQ(v[2].name, "cached-ram");
  EXPECT_EQ(v[2].mode, "cached");
  EXPECT_TRUE(throws_error(
      [] {
        variants_for({Mode::kFid, Mode::kFid});
      },
      ErrorKind::kInvalidArgument, {"'fid' given twice"}));
}

}  // namespace
}  // namespace kvrag::bench
