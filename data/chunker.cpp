#include "data/chunker.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/error.h"

namespace kvrag {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Calls take(word, newlines after it) for each run of non-whitespace of
// `text`, in order, while take returns true.
template <typename Take>
void for_each_word(std::string_view text, Take take) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = pos;
    while (pos < text.size() && !is_space(text[pos])) ++pos;
    const std::string_view word = text.substr(start, pos - start);
    int newlines = 0;
    while (pos < text.size() && is_space(text[pos])) newlines += text[pos++] == '\n';
    if (word.empty()) continue;  // leading whitespace
    if (!take(word, newlines)) return;
  }
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A word that ends a sentence: "end." "end?!" "(end.)" "“end.”" "end…" "终。".
bool ends_sentence(std::string_view word) {
  static constexpr std::string_view kClosers[] = {"\"", "'", ")", "]", "}", "”", "’", "»"};
  bool stripped = true;
  while (stripped && !word.empty()) {
    stripped = false;
    for (std::string_view closer : kClosers) {
      if (ends_with(word, closer)) {
        word.remove_suffix(closer.size());
        stripped = true;
        break;
      }
    }
  }
  static constexpr std::string_view kEnds[] = {".", "!", "?", "…", "。", "！", "？"};
  for (std::string_view end : kEnds) {
    if (ends_with(word, end)) return true;
  }
  return false;
}

std::string join_words(const std::vector<std::string_view>& words, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) {
    if (i > begin) out += ' ';
    out.append(words[i]);
  }
  return out;
}

}  // namespace

std::vector<Chunk> chunk_text(const std::string& text, const TokenizeFn& tokenize,
                              const ChunkOptions& options) {
  KVRAG_CHECK(options.max_tokens > 0, kInvalidArgument,
              "ChunkOptions.max_tokens must be positive, got ", options.max_tokens);
  KVRAG_CHECK(options.overlap >= 0 && options.overlap < options.max_tokens, kInvalidArgument,
              "ChunkOptions.overlap must satisfy 0 <= overlap < max_tokens, got overlap=",
              options.overlap, " with max_tokens=", options.max_tokens);
  KVRAG_CHECK(static_cast<bool>(tokenize), kInvalidArgument, "chunk_text: tokenize is empty");
  const size_t max_tokens = static_cast<size_t>(options.max_tokens);
  const size_t overlap = static_cast<size_t>(options.overlap);

  // Words, and whether a sentence or paragraph ends after each.
  std::vector<std::string_view> words;
  std::vector<bool> boundary_after;
  for_each_word(text, [&](std::string_view word, int newlines) {
    words.push_back(word);
    boundary_after.push_back(newlines >= 2 || ends_sentence(word));
    return true;
  });
  const size_t n = words.size();

  // Each distinct word is tokenized once; prefix[i] = tokens of words[0, i).
  std::unordered_map<std::string_view, size_t> distinct;
  std::vector<std::vector<int32_t>> distinct_ids;
  std::vector<size_t> word_ids(n);
  std::vector<size_t> prefix(n + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    const auto [it, inserted] = distinct.try_emplace(words[i], distinct_ids.size());
    if (inserted) distinct_ids.push_back(tokenize(std::string(words[i])));
    word_ids[i] = it->second;
    prefix[i + 1] = prefix[i] + distinct_ids[it->second].size();
  }
  auto tokens = [&prefix](size_t begin, size_t end) { return prefix[end] - prefix[begin]; };
  auto count = [&tokens](size_t i) { return tokens(i, i + 1); };

  std::vector<Chunk> chunks;
  auto emit = [&chunks](std::string body, std::vector<int32_t> ids) {
    chunks.push_back({static_cast<int>(chunks.size()), std::move(body), std::move(ids)});
  };
  std::string pending_text;  // words with no tokens, waiting for a chunk to join

  size_t fresh = 0;  // first word in no chunk yet
  size_t start = 0;  // first word of the next chunk: fresh, or earlier for overlap
  while (fresh < n) {
    if (count(fresh) > max_tokens) {
      // A word longer than a window: windows of its own tokens.
      const std::vector<int32_t>& ids = distinct_ids[word_ids[fresh]];
      const std::string word(words[fresh]);
      for (size_t at = 0; at < ids.size(); at += max_tokens) {
        const size_t end = std::min(ids.size(), at + max_tokens);
        std::string piece_text = word;
        if (!pending_text.empty()) piece_text = std::exchange(pending_text, "") + " " + word;
        emit(std::move(piece_text), std::vector<int32_t>(ids.begin() + at, ids.begin() + end));
      }
      start = fresh = fresh + 1;
      continue;
    }
    // Shorten the overlap until the first new word fits beside it.
    while (start < fresh && tokens(start, fresh + 1) > max_tokens) ++start;

    size_t greedy = fresh;
    while (greedy < n && tokens(start, greedy + 1) <= max_tokens) ++greedy;
    size_t end = greedy;
    if (greedy < n) {
      for (size_t b = greedy; b > fresh; --b) {
        if (boundary_after[b - 1] && 3 * tokens(start, b) >= 2 * max_tokens &&
            tokens(fresh, b) > 0) {
          end = b;
          break;
        }
      }
    }

    if (tokens(fresh, end) == 0) {
      // New words without tokens: only possible right before a split word or
      // at the end of the text. They join the chunk next to them.
      std::string loose = join_words(words, fresh, end);
      if (end < n) {
        pending_text = std::move(loose);
      } else if (!chunks.empty()) {
        chunks.back().text += " " + loose;
      }
      start = fresh = end;
      continue;
    }
    std::string chunk_words = join_words(words, start, end);
    std::vector<int32_t> ids;
    ids.reserve(tokens(start, end));
    for (size_t i = start; i < end; ++i) {
      const std::vector<int32_t>& word_tokens = distinct_ids[word_ids[i]];
      ids.insert(ids.end(), word_tokens.begin(), word_tokens.end());
    }
    if (!pending_text.empty()) chunk_words = std::exchange(pending_text, "") + " " + chunk_words;
    emit(std::move(chunk_words), std::move(ids));

    // The next chunk repeats the longest tail of this one within `overlap`
    // tokens, never the whole chunk, and never starting with a word that
    // adds no tokens.
    const size_t chunk_start = start;
    fresh = start = end;
    while (start > chunk_start + 1 && tokens(start - 1, end) <= overlap) --start;
    while (start < end && count(start) == 0) ++start;
  }
  return chunks;
}

bool has_tokens(const std::string& text, const TokenizeFn& tokenize) {
  bool found = false;
  for_each_word(text, [&](std::string_view word, int) {
    found = !tokenize(std::string(word)).empty();
    return !found;
  });
  return found;
}

}  // namespace kvrag
