#include "data/text_normalization.h"

#include <cctype>

#include "core/error.h"

namespace kvrag {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::optional<Utf8Problem> find_utf8_problem(std::string_view s) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c < 0xC0) return Utf8Problem{i, "unexpected continuation byte"};
    if (c < 0xC2) return Utf8Problem{i, "overlong encoding"};  // C0, C1: would be ASCII
    size_t len = 0;
    // Allowed range of the second byte (RFC 3629, table 3-7 of Unicode).
    unsigned char lo = 0x80, hi = 0xBF;
    const char* second_byte_problem = "";
    if (c < 0xE0) {
      len = 2;
    } else if (c < 0xF0) {
      len = 3;
      if (c == 0xE0) lo = 0xA0, second_byte_problem = "overlong encoding";
      if (c == 0xED) hi = 0x9F, second_byte_problem = "UTF-16 surrogate";
    } else if (c < 0xF5) {
      len = 4;
      if (c == 0xF0) lo = 0x90, second_byte_problem = "overlong encoding";
      if (c == 0xF4) hi = 0x8F, second_byte_problem = "code point above U+10FFFF";
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      return Utf8Problem{i, str_cat("invalid byte 0x", kHex[c >> 4], kHex[c & 15])};
    }
    for (size_t k = 1; k < len; ++k) {
      if (i + k >= n) return Utf8Problem{i, "truncated sequence"};
      const auto d = static_cast<unsigned char>(s[i + k]);
      if (d < 0x80 || d > 0xBF) return Utf8Problem{i, "truncated sequence"};
      if (k == 1 && (d < lo || d > hi)) return Utf8Problem{i, second_byte_problem};
    }
    i += len;
  }
  return std::nullopt;
}

std::string collapse_whitespace(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    const size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) {
      if (!out.empty()) out += ' ';
      out.append(s.substr(start, i - start));
    }
  }
  return out;
}

std::optional<std::string> utf8_error(std::string_view text) {
  const auto problem = find_utf8_problem(text);
  if (!problem) return std::nullopt;
  return str_cat("invalid UTF-8 at byte ", problem->offset, ": ", problem->what);
}

void check_text_field(const std::string& field, const std::string& text) {
  const size_t nul = text.find('\0');
  KVRAG_CHECK(nul == std::string::npos, kInvalidArgument, "field '", field,
              "' contains a NUL character (byte ", nul, ")");
  const std::optional<std::string> bad = utf8_error(text);
  KVRAG_CHECK(!bad.has_value(), kInvalidArgument, "field '", field,
              "' is not valid UTF-8: ", bad.value_or(""));
}

std::string normalize_text(std::string_view text) {
  if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) text.remove_prefix(kUtf8Bom.size());
  std::string out;
  out.reserve(text.size());
  size_t line_start = 0;  // in `out`
  auto end_line = [&out, &line_start] {
    size_t end = out.size();
    while (end > line_start && is_space(out[end - 1])) --end;
    out.resize(end);
    if (out.empty()) return;  // blank lines at the start are dropped
    out += '\n';
    line_start = out.size();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r') {
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_line();
    } else if (c == '\n') {
      end_line();
    } else {
      out += c;
    }
  }
  end_line();
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<std::string> lexical_query_words(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  const auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    if (std::isalnum(byte) || byte >= 0x80) {
      word += ch;
    } else {
      flush();
    }
  }
  flush();
  return words;
}

}  // namespace kvrag
