#include "bench/bench_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "bench/svg_chart.h"
#include "core/error.h"
#include "core/format.h"

namespace kvrag::bench {
namespace {

// Milliseconds with three significant digits, never in exponent form.
std::string ms(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v);
  return text;
}

std::string spread_text(const Spread& s) { return ms(s.median) + " (" + ms(s.p95) + ")"; }

std::string mib(double bytes) { return fixed(bytes / (1024.0 * 1024.0), 1); }

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string csv_number(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", v);
  return text;
}

// The cells of one (model, chunk length), in their original order.
struct Group {
  std::string model;
  bool random_weights = false;
  int64_t chunk_tokens = 0;
  std::vector<const BenchCell*> cells;

  std::string label() const {
    return model + (random_weights ? " (random weights)" : "") + ", chunks of " +
           std::to_string(chunk_tokens) + " tokens";
  }
  std::string file_part() const { return slug(model) + "-c" + std::to_string(chunk_tokens); }
};

std::vector<Group> groups_of(const std::vector<BenchCell>& cells) {
  std::vector<Group> groups;
  for (const BenchCell& cell : cells) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const Group& g) {
      return g.model == cell.model && g.chunk_tokens == cell.chunk_tokens;
    });
    if (it == groups.end()) {
      groups.push_back({cell.model, cell.random_weights, cell.chunk_tokens, {}});
      it = std::prev(groups.end());
    }
    it->cells.push_back(&cell);
  }
  return groups;
}

const BenchCell* find_cell(const Group& group, int64_t k, const std::string& variant) {
  for (const BenchCell* cell : group.cells) {
    if (cell->k == k && cell->variant == variant) return cell;
  }
  return nullptr;
}

std::vector<int64_t> ks_of(const Group& group) {
  std::set<int64_t> ks;
  for (const BenchCell* cell : group.cells) ks.insert(cell->k);
  return {ks.begin(), ks.end()};
}

std::vector<std::string> variants_of(const Group& group) {
  std::vector<std::string> names;
  for (const BenchCell* cell : group.cells) {
    if (std::find(names.begin(), names.end(), cell->variant) == names.end()) {
      names.push_back(cell->variant);
    }
  }
  return names;
}

std::optional<double> ratio(const BenchCell* slow, const BenchCell* fast) {
  if (!slow || !fast || fast->first_token_ms.median <= 0) return std::nullopt;
  return slow->first_token_ms.median / fast->first_token_ms.median;
}

std::string ratio_text(const std::optional<double>& r) {
  return r ? fixed(*r, 2) + "×" : std::string("–");
}

void cells_table(const Group& group, std::ostringstream& md) {
  md << "Medians over "
     << "questions × repeats, p95 in brackets; times in ms; peak RSS the largest over the "
        "answers, the benchmark's 256 MiB bandwidth-probe buffer left out.\n\n"
     << "| variant | k | context tokens | first token | total | encoder | K/V load | "
        "decode ms/token | tokens/s | store MiB read | RAM hits | peak RSS MiB | EM | F1 |\n"
     << "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const BenchCell* c : group.cells) {
    md << "| " << c->variant << " | " << c->k << " | " << fixed(c->context_tokens, 0) << " | "
       << spread_text(c->first_token_ms) << " | " << spread_text(c->total_ms) << " | "
       << spread_text(c->encode_ms) << " | " << spread_text(c->load_kv_ms) << " | "
       << spread_text(c->decode_ms_per_token) << " | " << fixed(c->tokens_per_s, 1) << " | "
       << mib(c->store_bytes_read) << " | "
       << (c->mode == "cached" ? fixed(100.0 * c->ram_hit_rate, 0) + " %" : std::string("–"))
       << " | " << mib(static_cast<double>(c->peak_rss_bytes)) << " | "
       << (c->exact_match ? fixed(*c->exact_match, 1) : std::string("–")) << " | "
       << (c->f1 ? fixed(*c->f1, 1) : std::string("–")) << " |\n";
  }
  md << "\n";
}

void speedup_table(const Group& group, const std::vector<SpeedupRow>& rows,
                   std::ostringstream& md) {
  std::ostringstream body;
  for (const SpeedupRow& r : rows) {
    if (r.model != group.model || r.chunk_tokens != group.chunk_tokens) continue;
    body << "| " << r.k << " | " << ratio_text(r.sqlite_over_concat) << " | "
         << ratio_text(r.ram_over_concat) << " | " << ratio_text(r.ram_over_fid) << " |\n";
  }
  if (body.str().empty()) return;
  md << "**Speed-up in time to first token** (how many times sooner cached mode starts "
        "answering):\n\n"
     << "| k | cached-sqlite vs concat | cached-ram vs concat | cached-ram vs fid |\n"
     << "|--:|--:|--:|--:|\n"
     << body.str() << "\n";
}

void bound_table(const Group& group, const std::vector<BoundRow>& rows, std::ostringstream& md) {
  std::ostringstream body;
  std::vector<std::string> variants;
  std::string cached;
  for (const BoundRow& r : rows) {
    if (r.model != group.model || r.chunk_tokens != group.chunk_tokens) continue;
    if (variants.empty()) {
      for (const auto& [variant, multiple] : r.multiples) variants.push_back(variant);
    }
    body << "| " << r.k << " | " << mib(r.step_bytes) << " | " << fixed(r.bound_ms, 2) << " |";
    for (const auto& [variant, multiple] : r.multiples) body << " " << fixed(multiple, 2) << "× |";
    body << " " << mib(r.question_bytes) << " | " << fixed(r.with_question_ms, 2) << " | "
         << fixed(r.cached_multiple, 2) << "× | " << fixed(r.paired_bytes_per_s / 1e9, 1) << " | "
         << fixed(r.paired_multiple, 2) << "× | " << fixed(r.paired_with_question_multiple, 2)
         << "× |\n";
    cached = r.cached_variant;
  }
  if (body.str().empty()) return;
  md << "**Memory bound** (the bytes a cached answer's first decoder step reads, K/V and "
        "decoder weights, at the bandwidth measured in this run; each variant's time to first "
        "token as a multiple of it; then with the question's encoding added, the encoder's "
        "weights and those projecting the question's K/V, read once. Last, each "
     << cached
     << " answer against the bandwidth measured around its round of answers (the better of "
        "the best of three stream reads before the question's untimed answers at that k and "
        "after its timed ones; median GB/s of those), medians over its answers of the same two "
        "multiples: the bandwidth of a shared machine moves within a run, and the run's best "
        "sets answers timed in a slow spell against its fastest moment):\n\n"
        "| k | MiB read | bound ms |";
  for (const std::string& v : variants) md << " " << v << " |";
  md << " question MiB | bound with the question ms | " << cached << " | GB/s beside it | "
     << cached << " vs its own bound | with the question |\n|--:|--:|--:|";
  for (size_t i = 0; i < variants.size() + 6; ++i) md << "--:|";
  md << "\n" << body.str() << "\n";
}

void agreement_table(const Group& group, const std::vector<AgreementRow>& rows,
                     std::ostringstream& md) {
  std::ostringstream body;
  for (const AgreementRow& r : rows) {
    if (r.model != group.model || r.chunk_tokens != group.chunk_tokens) continue;
    body << "| " << r.k << " | " << r.mode_a << " = " << r.mode_b << " | "
         << fixed(100.0 * r.rate, 0) << " % of " << r.questions << " |\n";
  }
  if (body.str().empty()) return;
  md << "**Answer agreement** (same normalised answer text):\n\n"
     << "| k | modes | agree |\n|--:|---|--:|\n"
     << body.str() << "\n";
}

void storage_table(const StorageSummary& s, std::ostringstream& md) {
  md << "**Storage**: " << s.documents << " documents, " << s.chunks << " chunks, "
     << s.memory_tokens << " cached tokens; document text "
     << mib(static_cast<double>(s.text_bytes)) << " MiB, cached memory "
     << mib(static_cast<double>(s.stored_memory_bytes)) << " MiB, store.sqlite "
     << mib(static_cast<double>(s.file_bytes)) << " MiB.\n\n"
     << "| cache | dtype | bytes per token | KiB per chunk | whole index MiB | × text size |\n"
     << "|---|---|--:|--:|--:|--:|\n";
  for (const StorageRow& r : s.rows) {
    md << "| " << r.granularity << " | " << r.dtype << (r.stored ? " (this index)" : "") << " | "
       << fixed(r.bytes_per_token, 0) << " | " << fixed(r.bytes_per_chunk / 1024.0, 1) << " | "
       << mib(static_cast<double>(r.index_bytes)) << " | "
       << (s.text_bytes > 0
               ? fixed(static_cast<double>(r.index_bytes) / static_cast<double>(s.text_bytes), 0)
               : std::string("–"))
       << " |\n";
  }
  md << "\n";
}

void scaling_table(const std::vector<ScalingFit>& fits, std::ostringstream& md) {
  if (fits.empty()) return;
  md << "## Growth with context length\n\n"
     << "Least-squares fits of log(time) against log(context tokens) over every k and chunk "
        "length measured: time ≈ c · tokens^exponent. An exponent near 0 means the cost does "
        "not grow with the context, 1 linear, 2 quadratic.\n\n"
     << "| model | variant | figure | exponent | r² | points |\n|---|---|---|--:|--:|--:|\n";
  for (const ScalingFit& f : fits) {
    md << "| " << f.model << " | " << f.variant << " | " << f.figure << " | "
       << fixed(f.fit.exponent, 2) << " | " << fixed(f.fit.r_squared, 3) << " | " << f.fit.points
       << " |\n";
  }
  md << "\n";
}

LineChart latency_chart(const Group& group, bool first_token) {
  LineChart chart;
  chart.title =
      std::string(first_token ? "Time to first token" : "Total latency") + ", " + group.label();
  chart.x_label = "k (retrieved chunks)";
  chart.y_label = first_token ? "time to first token (ms, median)" : "total latency (ms, median)";
  chart.log_x = true;
  chart.log_y = true;
  for (const std::string& variant : variants_of(group)) {
    ChartSeries series{variant, {}};
    for (const BenchCell* c : group.cells) {
      const double y = first_token ? c->first_token_ms.median : c->total_ms.median;
      if (c->variant == variant && y > 0) series.points.emplace_back(c->k, y);
    }
    if (!series.points.empty()) chart.series.push_back(std::move(series));
  }
  return chart;
}

LineChart speedup_chart(const std::vector<SpeedupRow>& rows, const std::vector<Group>& groups) {
  LineChart chart;
  chart.title = "Speed-up of cached over concat in time to first token";
  chart.x_label = "k (retrieved chunks)";
  chart.y_label = "concat TTFT / cached TTFT";
  chart.log_x = true;
  chart.has_reference_y = true;
  chart.reference_y = 1.0;
  for (const Group& g : groups) {
    ChartSeries ram{g.model + ", c" + std::to_string(g.chunk_tokens) + ": RAM", {}};
    ChartSeries sqlite{g.model + ", c" + std::to_string(g.chunk_tokens) + ": SQLite", {}};
    for (const SpeedupRow& r : rows) {
      if (r.model != g.model || r.chunk_tokens != g.chunk_tokens) continue;
      if (r.ram_over_concat) ram.points.emplace_back(r.k, *r.ram_over_concat);
      if (r.sqlite_over_concat) sqlite.points.emplace_back(r.k, *r.sqlite_over_concat);
    }
    for (ChartSeries* s : {&ram, &sqlite}) {
      if (!s->points.empty()) chart.series.push_back(std::move(*s));
    }
  }
  return chart;
}

bool has_points(const LineChart& chart) {
  for (const ChartSeries& s : chart.series) {
    if (!s.points.empty()) return true;
  }
  return false;
}

void write_file(const std::filesystem::path& path, const std::string& text,
                std::vector<std::string>* written) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  KVRAG_CHECK(out.good(), kIo, "cannot write ", path.string());
  written->push_back(path.string());
}

}  // namespace

Spread spread_of(const std::vector<double>& values) {
  return {quantile(values, 0.5), quantile(values, 0.95)};
}

std::string slug(const std::string& name) {
  std::string out;
  for (const char c : name) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if ((lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9')) {
      out += lower;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

std::vector<ScalingFit> fit_scaling(const std::vector<BenchCell>& cells) {
  // (model, variant) -> (context tokens, encode ms, first token ms) per cell.
  std::map<std::pair<std::string, std::string>, std::vector<const BenchCell*>> by_variant;
  std::vector<std::pair<std::string, std::string>> order;
  for (const BenchCell& c : cells) {
    const auto key = std::make_pair(c.model, c.variant);
    if (!by_variant.count(key)) order.push_back(key);
    by_variant[key].push_back(&c);
  }
  std::vector<ScalingFit> fits;
  for (const auto& key : order) {
    std::vector<double> tokens, encode, first;
    std::set<double> distinct;
    for (const BenchCell* c : by_variant[key]) {
      tokens.push_back(c->context_tokens);
      encode.push_back(c->encode_ms.median);
      first.push_back(c->first_token_ms.median);
      if (c->context_tokens > 0) distinct.insert(c->context_tokens);
    }
    if (distinct.size() < 2) continue;
    const bool any_encode =
        std::any_of(encode.begin(), encode.end(), [](double v) { return v > 0; });
    if (any_encode) {
      fits.push_back({key.first, key.second, "encode_ms", fit_power_law(tokens, encode)});
    }
    fits.push_back({key.first, key.second, "first_token_ms", fit_power_law(tokens, first)});
  }
  return fits;
}

std::vector<SpeedupRow> speedups(const std::vector<BenchCell>& cells) {
  std::vector<SpeedupRow> rows;
  for (const Group& g : groups_of(cells)) {
    for (const int64_t k : ks_of(g)) {
      const BenchCell* concat = find_cell(g, k, "concat");
      const BenchCell* fid = find_cell(g, k, "fid");
      if (!concat && !fid) continue;
      const BenchCell* sqlite = find_cell(g, k, "cached-sqlite");
      const BenchCell* ram = find_cell(g, k, "cached-ram");
      rows.push_back(
          {g.model, g.chunk_tokens, k, ratio(concat, sqlite), ratio(concat, ram), ratio(fid, ram)});
    }
  }
  return rows;
}

double bound_multiple(double first_token_ms, double bytes, double bytes_per_s) {
  return bytes_per_s > 0.0 ? first_token_ms / (1000.0 * bytes / bytes_per_s) : 0.0;
}

std::vector<BoundRow> memory_bounds(const std::vector<BenchCell>& cells, double bytes_per_s) {
  std::vector<BoundRow> rows;
  if (bytes_per_s <= 0.0) return rows;
  for (const Group& g : groups_of(cells)) {
    for (const int64_t k : ks_of(g)) {
      const BenchCell* cached = find_cell(g, k, "cached-ram");
      if (!cached) cached = find_cell(g, k, "cached-sqlite");
      if (!cached || cached->step_bytes <= 0.0) continue;
      BoundRow row;
      row.model = g.model;
      row.chunk_tokens = g.chunk_tokens;
      row.k = k;
      row.step_bytes = cached->step_bytes;
      row.bound_ms = 1000.0 * cached->step_bytes / bytes_per_s;
      for (const BenchCell* c : g.cells) {
        if (c->k == k)
          row.multiples.emplace_back(c->variant, c->first_token_ms.median / row.bound_ms);
      }
      row.question_bytes = cached->question_bytes;
      row.with_question_ms = 1000.0 * (cached->step_bytes + cached->question_bytes) / bytes_per_s;
      row.cached_variant = cached->variant;
      row.cached_multiple = cached->first_token_ms.median / row.with_question_ms;
      row.paired_multiple = cached->paired_bound_multiple;
      row.paired_with_question_multiple = cached->paired_with_question_multiple;
      row.paired_bytes_per_s = cached->stream_bytes_per_s;
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

std::string cells_csv(const std::vector<BenchCell>& cells) {
  std::ostringstream csv;
  csv << "model,random_weights,variant,mode,chunk_tokens,k,questions,samples,context_tokens,"
         "first_token_ms_median,first_token_ms_p95,total_ms_median,total_ms_p95,"
         "encode_ms_median,encode_ms_p95,load_kv_ms_median,load_kv_ms_p95,"
         "decode_ms_per_token_median,decode_ms_per_token_p95,tokens_per_s,generated_tokens,"
         "store_bytes_read,step_bytes,question_bytes,ram_hit_rate,peak_rss_bytes,rss_growth_bytes,"
         "stream_bytes_per_s,paired_bound_multiple,paired_with_question_multiple,exact_match,f1\n";
  for (const BenchCell& c : cells) {
    csv << csv_field(c.model) << "," << (c.random_weights ? "true" : "false") << ","
        << csv_field(c.variant) << "," << csv_field(c.mode) << "," << c.chunk_tokens << "," << c.k
        << "," << c.questions << "," << c.samples << "," << csv_number(c.context_tokens);
    for (const Spread* s :
         {&c.first_token_ms, &c.total_ms, &c.encode_ms, &c.load_kv_ms, &c.decode_ms_per_token}) {
      csv << "," << csv_number(s->median) << "," << csv_number(s->p95);
    }
    csv << "," << csv_number(c.tokens_per_s) << "," << csv_number(c.generated_tokens) << ","
        << static_cast<int64_t>(std::llround(c.store_bytes_read)) << ","
        << static_cast<int64_t>(std::llround(c.step_bytes)) << ","
        << static_cast<int64_t>(std::llround(c.question_bytes)) << "," << csv_number(c.ram_hit_rate)
        << "," << c.peak_rss_bytes << "," << c.rss_growth_bytes << ","
        << static_cast<int64_t>(std::llround(c.stream_bytes_per_s)) << ","
        << csv_number(c.paired_bound_multiple) << "," << csv_number(c.paired_with_question_multiple)
        << "," << (c.exact_match ? csv_number(*c.exact_match) : "") << ","
        << (c.f1 ? csv_number(*c.f1) : "") << "\n";
  }
  return csv.str();
}

namespace {

// ", int8 weights": what weights_label appends for a dtype other than f32.
std::string weights_suffix(WeightDtype weights) {
  return str_cat(", ", weight_dtype_name(weights), " weights");
}

// Per chunk length, k and variant: decoding with `weights` next to f32,
// for every model timed both ways.
void weights_table(const std::vector<Group>& groups, WeightDtype weights, std::ostringstream& md) {
  const std::string suffix = weights_suffix(weights);
  const std::string name = weight_dtype_name(weights);
  std::ostringstream body;
  for (const Group& other : groups) {
    const std::string& label = other.model;
    if (!label.ends_with(suffix)) continue;
    const std::string model = label.substr(0, label.size() - suffix.size());
    const auto f32 = std::find_if(groups.begin(), groups.end(), [&](const Group& g) {
      return g.model == model && g.chunk_tokens == other.chunk_tokens;
    });
    if (f32 == groups.end()) continue;
    for (const BenchCell* q : other.cells) {
      const BenchCell* f = find_cell(*f32, q->k, q->variant);
      if (!f) continue;
      const double step = f->decode_ms_per_token.median > 0
                              ? q->decode_ms_per_token.median / f->decode_ms_per_token.median
                              : 0.0;
      const double rate = f->tokens_per_s > 0 ? q->tokens_per_s / f->tokens_per_s : 0.0;
      body << "| " << model << " | " << other.chunk_tokens << " | " << q->k << " | " << q->variant
           << " | " << fixed(q->context_tokens, 0) << " | " << ms(f->decode_ms_per_token.median)
           << " | " << ms(q->decode_ms_per_token.median) << " | " << fixed(step, 2) << "× | "
           << fixed(f->tokens_per_s, 1) << " | " << fixed(q->tokens_per_s, 1) << " | "
           << fixed(rate, 2) << "× | " << ms(f->first_token_ms.median) << " | "
           << ms(q->first_token_ms.median) << " |\n";
    }
  }
  if (body.str().empty()) return;
  md << "## " << name << " weights vs f32\n\n"
     << "The same questions, chunks and decoding with the model loaded `--weights f32` and "
        "`--weights "
     << name << "`; medians, times in ms.\n\n"
     << "| model | chunk tokens | k | variant | context tokens | decode ms/token f32 | " << name
     << " | " << name << "/f32 | tokens/s f32 | " << name << " | " << name
     << "/f32 | first token f32 | " << name << " |\n"
     << "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
     << body.str() << "\n";
}

}  // namespace

std::string weights_label(const std::string& model, WeightDtype weights) {
  return weights == WeightDtype::kF32 ? model : model + weights_suffix(weights);
}

std::string report_markdown(const BenchReport& report,
                            const std::vector<std::string>& chart_files) {
  std::ostringstream md;
  const MachineInfo& m = report.machine;
  md << "# kvrag benchmark\n\n"
     << "Machine: " << m.cpu_model << ", " << m.cores << " cores, "
     << fixed(static_cast<double>(m.memory_bytes) / (1024.0 * 1024.0 * 1024.0), 1)
     << " GiB; every variant ran with " << m.threads << " compute thread"
     << (m.threads == 1 ? "" : "s") << "; it streamed " << fixed(m.stream_bytes_per_s / 1e9, 1)
     << " GB/s from RAM in this run (the best of measurements at the start and before and "
        "after each question's answers at each k). Decoding: "
     << (report.num_beams == 1 ? std::string("greedy")
                               : "beam search, " + std::to_string(report.num_beams) + " beams")
     << ", at most " << report.max_new_tokens << " new tokens. Each question is retrieved once at "
     << "the largest k (with the first weight dtype's model when several are run); every k "
     << "uses the top-k prefix and every variant and weight dtype answers from the same "
     << "chunks. " << report.warmup << " untimed warm-up answer(s) per variant and k, then "
     << "per question one untimed answer of each cached variant (cached-ram's fills the RAM "
     << "cache) and " << report.repeat << " timed repeat(s).\n\n"
     << "Command: `" << report.command << "`\n\n";
  for (const std::string& note : report.notes) md << "- " << note << "\n";
  if (!report.notes.empty()) md << "\n";
  md << "Variants: `cached-sqlite` reads every chunk's K/V from SQLite (RAM cache off), "
        "`cached-ram` finds them in the RAM cache, `concat` encodes question and passages "
        "jointly, `fid` encodes the question with each passage.\n\n";

  const std::vector<SpeedupRow> rows = speedups(report.cells);
  const std::vector<Group> groups = groups_of(report.cells);
  for (const Group& g : groups) {
    md << "## " << g.label() << "\n\n";
    if (g.random_weights) {
      md << "Random weights of this shape: speed only, the answers are meaningless and no "
            "quality is reported.\n\n";
    }
    cells_table(g, md);
    speedup_table(g, rows, md);
    bound_table(g, memory_bounds(report.cells, m.stream_bytes_per_s), md);
    agreement_table(g, report.agreement, md);
    for (const StorageSummary& s : report.storage) {
      if (s.model == g.model && s.chunk_tokens == g.chunk_tokens) storage_table(s, md);
    }
  }
  for (const WeightDtype weights : {WeightDtype::kF16, WeightDtype::kBf16, WeightDtype::kInt8}) {
    weights_table(groups, weights, md);
  }
  scaling_table(fit_scaling(report.cells), md);
  if (!chart_files.empty()) {
    md << "## Charts\n\n";
    for (const std::string& file : chart_files) {
      md << "![" << file << "](" << file << ")\n\n";
    }
  }
  return md.str();
}

std::vector<std::string> write_report(const BenchReport& report, const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  KVRAG_CHECK(!ec, kIo, "cannot create ", dir, ": ", ec.message());
  std::vector<std::string> written;
  std::vector<std::string> charts;
  const std::vector<Group> groups = groups_of(report.cells);
  for (const Group& g : groups) {
    for (const bool first_token : {true, false}) {
      const LineChart chart = latency_chart(g, first_token);
      if (!has_points(chart)) continue;
      const std::string name =
          std::string(first_token ? "first_token_vs_k-" : "latency_vs_k-") + g.file_part() + ".svg";
      write_file(fs::path(dir) / name, line_chart_svg(chart), &written);
      charts.push_back(name);
    }
  }
  const LineChart speedup = speedup_chart(speedups(report.cells), groups);
  if (has_points(speedup)) {
    write_file(fs::path(dir) / "speedup_vs_k.svg", line_chart_svg(speedup), &written);
    charts.push_back("speedup_vs_k.svg");
  }
  write_file(fs::path(dir) / "results.csv", cells_csv(report.cells), &written);
  write_file(fs::path(dir) / "report.md", report_markdown(report, charts), &written);
  return written;
}

}  // namespace kvrag::bench
