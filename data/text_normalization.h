// Checks and clean-up of document text, shared by the corpus reader and the
// pipeline (which normalises every document it indexes, whoever sends it).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvrag {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// ASCII whitespace: space, \t, \n, \r, \f, \v.
bool is_space(char c);

struct Utf8Problem {
  size_t offset;  // of the first byte of the bad sequence, 0-based
  std::string what;
};
// The first invalid sequence of `s`, or nullopt when `s` is valid UTF-8.
std::optional<Utf8Problem> find_utf8_problem(std::string_view s);

// Why `text` is not valid UTF-8 (RFC 3629: no overlong encodings, no UTF-16
// surrogates U+D800..U+DFFF, nothing above U+10FFFF, no truncated sequence),
// e.g. "invalid UTF-8 at byte 3: overlong encoding"; nullopt when valid.
// Byte offsets are 0-based.
std::optional<std::string> utf8_error(std::string_view text);

// Error(kInvalidArgument) "field 'FIELD' contains a NUL character (byte N)"
// or "field 'FIELD' is not valid UTF-8: …". Every text a user hands kvrag
// goes through it, whichever way it comes: a question or query (CLI or
// HTTP), a document's id, title and text, a document id in a URL path.
void check_text_field(const std::string& field, const std::string& text);

// Strips a leading UTF-8 byte order mark, turns CRLF and lone CR into LF,
// removes trailing whitespace from every line and blank lines at the start
// and end. Paragraph breaks (blank lines inside the text) are kept. Returns
// "" for whitespace-only text.
std::string normalize_text(std::string_view text);

// Words of `s` (runs of non-whitespace) joined by single spaces.
std::string collapse_whitespace(std::string_view s);

// The words of a lexical search query: runs of ASCII letters and digits and
// of bytes >= 0x80 (so every non-ASCII letter stays inside its word); all
// else separates them. What the lexical stores match, whatever syntax their
// engines have.
std::vector<std::string> lexical_query_words(std::string_view text);

}  // namespace kvrag
