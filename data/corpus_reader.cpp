#include "data/corpus_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "core/error.h"
#include "core/json_input.h"
#include "data/text_normalization.h"

// The corpus reader parses JSON Lines with nlohmann/json (through
// core/json_input.h, which bounds nesting), as the T5 config reader does:
// DESIGN.md keeps nlohmann/json to the edges (server, CLI, bench, config),
// and a corpus file is such an edge. It is used only in data/ .cpp files and
// linked PRIVATE, so nothing that includes data/ sees it.

namespace kvrag {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kSupported = "(supported: .txt, .md, .jsonl)";

enum class Format { kText, kMarkdown, kJsonl, kUnsupported };

std::string to_lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

Format format_of(const fs::path& path) {
  const std::string ext = to_lower(path.extension().string());
  if (ext == ".txt") return Format::kText;
  if (ext == ".md") return Format::kMarkdown;
  if (ext == ".jsonl") return Format::kJsonl;
  return Format::kUnsupported;
}

std::string unsupported_reason(const fs::path& path) {
  const std::string ext = path.extension().string();
  if (ext.empty()) return str_cat("no file extension ", kSupported);
  return str_cat("unsupported extension ", ext, " ", kSupported);
}

// "my_first-doc" -> "my first doc".
std::string title_from_stem(std::string stem) {
  std::replace(stem.begin(), stem.end(), '_', ' ');
  std::replace(stem.begin(), stem.end(), '-', ' ');
  return collapse_whitespace(stem);
}

// Up to three spaces of indentation, as CommonMark allows for headings and
// fences; nullopt for an indented code line.
std::optional<std::string_view> strip_indent(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && i < 4 && line[i] == ' ') ++i;
  if (i == 4) return std::nullopt;
  return line.substr(i);
}

// The text of the first level-1 ATX heading outside fenced code blocks, or "".
std::string markdown_title(std::string_view text) {
  char fence_char = 0;
  size_t fence_len = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::optional<std::string_view> line = strip_indent(text.substr(pos, end - pos));
    pos = end + 1;
    if (!line) continue;
    if (!line->empty() && (line->front() == '`' || line->front() == '~')) {
      const char ch = line->front();
      size_t run = 0;
      while (run < line->size() && (*line)[run] == ch) ++run;
      if (run >= 3) {
        if (fence_char == 0) {
          fence_char = ch;
          fence_len = run;
        } else if (ch == fence_char && run >= fence_len) {
          fence_char = 0;
        }
        continue;
      }
    }
    if (fence_char != 0) continue;
    if (line->size() < 2 || (*line)[0] != '#' || ((*line)[1] != ' ' && (*line)[1] != '\t')) {
      continue;
    }
    std::string_view content = line->substr(2);
    // An optional closing sequence: "# Title ##".
    size_t stop = content.size();
    while (stop > 0 && is_space(content[stop - 1])) --stop;
    size_t hashes = stop;
    while (hashes > 0 && content[hashes - 1] == '#') --hashes;
    if (hashes < stop && (hashes == 0 || is_space(content[hashes - 1]))) stop = hashes;
    std::string title = collapse_whitespace(content.substr(0, stop));
    if (!title.empty()) return title;
  }
  return "";
}

// At most ~60 characters of `value` as ASCII-only JSON, for messages.
std::string brief(const json& value) {
  std::string s = value.dump(-1, ' ', /*ensure_ascii=*/true);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Reads the whole file; on failure returns false and the OS's reason.
bool read_bytes(const std::string& path, std::string& out, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = std::generic_category().message(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      error = std::generic_category().message(errno);
      ::close(fd);
      return false;
    }
    if (got == 0) break;
    out.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return true;
}

class CorpusReader {
 public:
  void read_path(const std::string& path) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (status.type() == fs::file_type::not_found || ec == std::errc::no_such_file_or_directory ||
        path.empty()) {
      skip(path, "no such file or directory");
    } else if (ec) {
      skip(path, str_cat("cannot access: ", ec.message()));
    } else if (fs::is_directory(status)) {
      read_directory(fs::path(path), fs::path());
    } else if (fs::is_regular_file(status)) {
      read_file(fs::path(path), fs::path(path).filename());
    } else {
      skip(path, "not a regular file or directory");
    }
  }

  CorpusReadResult finish() {
    // Last one wins: keep a document only if no later one has its id.
    std::unordered_map<std::string, size_t> last;
    for (size_t i = 0; i < documents_.size(); ++i) last[documents_[i].external_id] = i;
    CorpusReadResult result;
    result.skipped = std::move(skipped_);
    result.documents.reserve(last.size());
    for (size_t i = 0; i < documents_.size(); ++i) {
      const size_t winner = last[documents_[i].external_id];
      if (winner == i) {
        result.documents.push_back(std::move(documents_[i]));
      } else {
        result.skipped.push_back(
            {documents_[i].source, str_cat("replaced by a later document with the same id (",
                                           documents_[winner].source, ")")});
      }
    }
    return result;
  }

 private:
  void skip(std::string source, std::string reason) {
    skipped_.push_back({std::move(source), std::move(reason)});
  }

  // `relative` is the directory's path relative to the directory given.
  void read_directory(const fs::path& dir, const fs::path& relative) {
    struct Entry {
      std::string name;
      fs::path path;
    };
    std::vector<Entry> entries;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name.empty() || name.front() == '.') continue;  // hidden
      entries.push_back({std::move(name), it->path()});
    }
    if (ec) {
      skip(dir.string(), str_cat("cannot read directory: ", ec.message()));
      return;
    }
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.name < b.name; });
    for (const Entry& entry : entries) {
      const std::string source = entry.path.string();
      const fs::file_status link = fs::symlink_status(entry.path, ec);
      if (ec) {
        skip(source, str_cat("cannot access: ", ec.message()));
        continue;
      }
      const fs::file_status target = fs::status(entry.path, ec);
      if (fs::is_symlink(link) && (ec || !fs::exists(target))) {
        skip(source, "broken symbolic link");
      } else if (ec) {
        skip(source, str_cat("cannot access: ", ec.message()));
      } else if (fs::is_directory(target)) {
        if (fs::is_symlink(link)) {
          skip(source, "symbolic link to a directory (not followed)");
        } else {
          read_directory(entry.path, relative / entry.name);
        }
      } else if (fs::is_regular_file(target)) {
        read_file(entry.path, relative / entry.name);
      } else {
        skip(source, "not a regular file");
      }
    }
  }

  // `relative` names the document (its external id, or the id prefix of a
  // JSONL file's lines).
  void read_file(const fs::path& path, const fs::path& relative) {
    const std::string source = path.string();
    const Format format = format_of(path);
    if (format == Format::kUnsupported) {
      skip(source, unsupported_reason(path));
      return;
    }
    const std::string name = relative.generic_string();
    if (find_utf8_problem(name)) {
      skip(source, "file name is not valid UTF-8");
      return;
    }
    std::string bytes;
    std::string error;
    if (!read_bytes(source, bytes, error)) {
      skip(source, str_cat("cannot read file: ", error));
      return;
    }
    if (bytes.empty()) {
      skip(source, "empty file");
      return;
    }
    if (format == Format::kJsonl) {
      read_jsonl(source, name, bytes);
    } else {
      read_plain(source, name, path, format, bytes);
    }
  }

  void read_plain(const std::string& source, const std::string& name, const fs::path& path,
                  Format format, const std::string& bytes) {
    if (const auto problem = find_utf8_problem(bytes)) {
      skip(source, str_cat("invalid UTF-8 at byte ", problem->offset, ": ", problem->what));
      return;
    }
    if (const size_t nul = bytes.find('\0'); nul != std::string::npos) {
      skip(source, str_cat("contains a NUL byte at byte ", nul, " (binary file?)"));
      return;
    }
    Document doc;
    doc.text = normalize_text(bytes);
    if (doc.text.empty()) {
      skip(source, "no text (only whitespace)");
      return;
    }
    doc.external_id = name;
    doc.source = source;
    if (format == Format::kMarkdown) doc.title = markdown_title(doc.text);
    if (doc.title.empty()) doc.title = title_from_stem(path.stem().string());
    documents_.push_back(std::move(doc));
  }

  void read_jsonl(const std::string& path, const std::string& name, std::string_view bytes) {
    if (bytes.substr(0, kUtf8Bom.size()) == kUtf8Bom) bytes.remove_prefix(kUtf8Bom.size());
    size_t pos = 0;
    size_t line_number = 0;
    bool any_line = false;
    while (pos < bytes.size()) {
      size_t end = bytes.find('\n', pos);
      if (end == std::string_view::npos) end = bytes.size();
      std::string_view line = bytes.substr(pos, end - pos);
      pos = end + 1;
      ++line_number;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (std::all_of(line.begin(), line.end(), is_space)) continue;
      any_line = true;
      const std::string source = str_cat(path, ":", line_number);
      std::string reason;
      std::optional<Document> doc = parse_jsonl_line(line, str_cat(name, ":", line_number), reason);
      if (doc) {
        doc->source = source;
        documents_.push_back(std::move(*doc));
      } else {
        skip(source, std::move(reason));
      }
    }
    if (!any_line) skip(path, "no documents (only blank lines)");
  }

  static std::optional<Document> parse_jsonl_line(std::string_view line,
                                                  const std::string& default_id,
                                                  std::string& reason) {
    if (const auto problem = find_utf8_problem(line)) {
      reason = str_cat("invalid UTF-8 at byte ", problem->offset, " of the line: ", problem->what);
      return std::nullopt;
    }
    json j;
    try {
      j = parse_json_bounded(line);
    } catch (const Error& e) {
      reason = e.what();  // invalid or too deeply nested JSON
      return std::nullopt;
    }
    if (!j.is_object()) {
      reason = str_cat("not a JSON object (got ", j.type_name(), ")");
      return std::nullopt;
    }
    auto field = [&j](const char* key) -> const json* {
      const auto it = j.find(key);
      return it == j.end() || it->is_null() ? nullptr : &*it;
    };

    Document doc;
    const json* text = field("text");
    if (text == nullptr) {
      reason = "missing 'text'";
      return std::nullopt;
    }
    if (!text->is_string()) {
      reason = str_cat("'text' must be a string, got ", text->type_name(), " ", brief(*text));
      return std::nullopt;
    }
    const std::string& raw_text = text->get_ref<const std::string&>();
    if (raw_text.find('\0') != std::string::npos) {
      reason = "'text' contains a NUL character";
      return std::nullopt;
    }
    doc.text = normalize_text(raw_text);
    if (doc.text.empty()) {
      reason = raw_text.empty() ? "'text' is empty" : "'text' is only whitespace";
      return std::nullopt;
    }

    const json* id = field("id");
    if (id == nullptr) {
      doc.external_id = default_id;
    } else if (id->is_number_integer()) {
      doc.external_id = id->dump();
    } else if (id->is_string() && !id->get_ref<const std::string&>().empty()) {
      doc.external_id = id->get<std::string>();
    } else {
      reason = str_cat("'id' must be a non-empty string or an integer, got ", id->type_name(), " ",
                       brief(*id));
      return std::nullopt;
    }

    if (const json* title = field("title")) {
      if (!title->is_string()) {
        reason = str_cat("'title' must be a string, got ", title->type_name(), " ", brief(*title));
        return std::nullopt;
      }
      doc.title = collapse_whitespace(title->get_ref<const std::string&>());
    }

    if (const json* metadata = field("metadata")) {
      if (!metadata->is_object()) {
        reason = str_cat("'metadata' must be an object, got ", metadata->type_name(), " ",
                         brief(*metadata));
        return std::nullopt;
      }
      doc.metadata_json = metadata->dump();
    }
    // As in the text: a document whose id or title holds a NUL could not be
    // fetched or removed (HTTP refuses one in a URL; a shell cannot pass one).
    for (const auto& [name, value] : {std::pair{"id", &doc.external_id}, {"title", &doc.title}}) {
      if (value->find('\0') != std::string::npos) {
        reason = str_cat("'", name, "' contains a NUL character");
        return std::nullopt;
      }
    }
    return doc;
  }

  std::vector<Document> documents_;
  std::vector<SkippedInput> skipped_;
};

}  // namespace

CorpusReadResult read_corpus(const std::vector<std::string>& paths) {
  CorpusReader reader;
  for (const std::string& path : paths) reader.read_path(path);
  return reader.finish();
}

}  // namespace kvrag
