#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/chunker.h"

namespace kvrag {
namespace {

using ::testing::HasSubstr;

// One token per started 3 characters of the word; ids depend on the
// characters, so a wrong concatenation shows.
std::vector<int32_t> fake_tokenize(const std::string& word) {
  std::vector<int32_t> ids;
  for (size_t at = 0; at < word.size(); at += 3) {
    int32_t id = 2;
    for (char c : word.substr(at, 3)) id = id * 31 + static_cast<unsigned char>(c);
    ids.push_back(id % 30000 + 2);
  }
  return ids;
}

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::vector<int32_t> tokenize_words(const std::vector<std::string>& words) {
  std::vector<int32_t> ids;
  for (const std::string& w : words) {
    const std::vector<int32_t> part = fake_tokenize(w);
    ids.insert(ids.end(), part.begin(), part.end());
  }
  return ids;
}

// `count` words named by their index, each of `chars` characters (so
// ceil(chars/3) tokens), with "." appended to the words listed in `ends`.
std::vector<std::string> numbered_words(int count, int chars, const std::vector<int>& ends = {}) {
  std::vector<std::string> words;
  for (int i = 0; i < count; ++i) {
    std::string w = std::to_string(i);
    w.insert(w.begin(), 'w');  // not "w" + ...: GCC 12 -Wrestrict false positive
    w.resize(static_cast<size_t>(chars), 'x');
    for (int e : ends) {
      if (e == i) w.back() = '.';
    }
    words.push_back(w);
  }
  return words;
}

std::string join(const std::vector<std::string>& words, const std::string& sep = " ") {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? sep : "") + words[i];
  return out;
}

// Deterministic prose: words of 1..11 characters, some ending sentences, some
// followed by paragraph breaks.
std::string generated_text(int words, uint32_t seed) {
  std::string text;
  uint32_t state = seed;
  auto next = [&state] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  for (int i = 0; i < words; ++i) {
    std::string w(1 + next() % 11, 'a');
    for (char& c : w) c = static_cast<char>('a' + next() % 26);
    const uint32_t r = next() % 20;
    if (r == 0) w.back() = '.';
    if (r == 1) w.back() = '?';
    text += w;
    text += (r == 2 ? "\n\n" : r == 3 ? "\n" : " ");
  }
  return text;
}

// The invariants every chunking must satisfy.
void check_chunks(const std::string& text, const std::vector<Chunk>& chunks, int max_tokens) {
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    EXPECT_EQ(c.position, static_cast<int>(i));
    EXPECT_FALSE(c.token_ids.empty()) << "chunk " << i;
    EXPECT_LE(c.token_ids.size(), static_cast<size_t>(max_tokens)) << "chunk " << i;
    const std::vector<std::string> words = split_words(c.text);
    EXPECT_EQ(c.text, join(words)) << "words joined by single spaces";
    EXPECT_EQ(c.token_ids, tokenize_words(words)) << "chunk " << i;
  }
  (void)text;
}

TEST(Chunker, EmptyTextGivesNoChunks) {
  EXPECT_TRUE(chunk_text("", fake_tokenize, {}).empty());
  EXPECT_TRUE(chunk_text(" \n\n\t ", fake_tokenize, {}).empty());
}

// has_tokens answers whether chunk_text gives any chunk, and tokenizes
// words only until the first that has a token.
TEST(Chunker, HasTokensIsWhetherAnyChunkComesAndStopsAtTheFirstToken) {
  // Words of "~" have no tokens here, as characters SentencePiece drops.
  const TokenizeFn drops_tildes = [](const std::string& word) {
    return word.find_first_not_of('~') == std::string::npos ? std::vector<int32_t>{}
                                                            : fake_tokenize(word);
  };
  for (const std::string text : {"", " \n\t ", "~ ~~\n~", "~ ~~ word ~", "Hello, world."}) {
    EXPECT_EQ(has_tokens(text, drops_tildes), !chunk_text(text, drops_tildes, {}).empty())
        << "'" << text << "'";
  }
  std::vector<std::string> asked;
  const TokenizeFn counting = [&asked](const std::string& word) {
    asked.push_back(word);
    return fake_tokenize(word);
  };
  EXPECT_TRUE(has_tokens("first second third", counting));
  EXPECT_EQ(asked, std::vector<std::string>{"first"});
}

TEST(Chunker, ShortTextIsOneChunk) {
  const std::vector<Chunk> chunks = chunk_text("  Hello,\n\nworld.  ", fake_tokenize, {});
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].position, 0);
  EXPECT_EQ(chunks[0].text, "Hello, world.");
  EXPECT_EQ(chunks[0].token_ids, tokenize_words({"Hello,", "world."}));
}

TEST(Chunker, ChunksFitAndCoverAllWordsInOrder) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    const std::string text = generated_text(700, seed);
    const std::vector<std::string> doc_words = split_words(text);
    // Whether a blank line follows each word.
    std::vector<bool> paragraph_breaks;
    for (size_t at = 0; (at = text.find_first_not_of(" \n", at)) != std::string::npos;) {
      at = text.find_first_of(" \n", at);
      paragraph_breaks.push_back(at != std::string::npos && text.compare(at, 2, "\n\n") == 0);
    }
    ASSERT_EQ(paragraph_breaks.size(), doc_words.size());
    for (int max_tokens : {4, 7, 16, 64, 10000}) {
      SCOPED_TRACE(testing::Message() << "seed " << seed << " max_tokens " << max_tokens);
      const std::vector<Chunk> chunks = chunk_text(text, fake_tokenize, {max_tokens, 0});
      check_chunks(text, chunks, max_tokens);
      std::vector<std::string> covered;
      for (const Chunk& c : chunks) {
        for (const std::string& w : split_words(c.text)) covered.push_back(w);
      }
      EXPECT_EQ(covered, doc_words);
      // Greedy: a chunk stops early only at a sentence end in the last third.
      size_t next = 0;  // index in doc_words of the chunk's first word
      for (size_t i = 0; i + 1 < chunks.size(); ++i) {
        next += split_words(chunks[i].text).size();
        const size_t used = chunks[i].token_ids.size();
        const bool full =
            used + fake_tokenize(doc_words[next]).size() > static_cast<size_t>(max_tokens);
        const char last = doc_words[next - 1].back();
        const bool sentence_end = last == '.' || last == '?' || paragraph_breaks[next - 1];
        EXPECT_TRUE(full || (sentence_end && 3 * used >= 2 * static_cast<size_t>(max_tokens)))
            << "chunk " << i << " stopped early: " << chunks[i].text;
      }
    }
  }
}

TEST(Chunker, PrefersSentenceEndInLastThird) {
  // 1-token words, max 12: the window's last third starts at token 8. A
  // sentence ends after word index 8 (9 tokens) and after index 9.
  const std::vector<std::string> words = numbered_words(20, 3, {8, 9});
  const std::vector<Chunk> chunks = chunk_text(join(words), fake_tokenize, {12, 0});
  ASSERT_GE(chunks.size(), 2u);
  EXPECT_EQ(split_words(chunks[0].text).size(), 10u) << "the latest sentence end wins";
  EXPECT_EQ(split_words(chunks[0].text).back(), words[9]);
  EXPECT_EQ(split_words(chunks[1].text).front(), words[10]);
}

TEST(Chunker, IgnoresSentenceEndBeforeLastThird) {
  // A sentence ends after 7 of 12 tokens: before the last third, so greedy.
  const std::vector<std::string> words = numbered_words(20, 3, {6});
  const std::vector<Chunk> chunks = chunk_text(join(words), fake_tokenize, {12, 0});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(split_words(chunks[0].text).size(), 12u);
  EXPECT_EQ(split_words(chunks[1].text).size(), 8u);
}

TEST(Chunker, SentenceEndBehindClosingQuoteOrBracket) {
  for (const std::string end_word : {"(b.)", "ab?\"", "c!'"}) {
    // 1-token words but the 8th: the chunk ends after it, at 8 or 9 tokens.
    std::vector<std::string> words = numbered_words(20, 3);
    words[7] = end_word;
    const std::vector<Chunk> chunks = chunk_text(join(words), fake_tokenize, {12, 0});
    ASSERT_GE(chunks.size(), 2u);
    EXPECT_EQ(split_words(chunks[0].text).back(), end_word);
  }
}

TEST(Chunker, ParagraphBreakIsASentenceEnd) {
  const std::vector<std::string> words = numbered_words(20, 3);
  const std::string text =
      join({words.begin(), words.begin() + 9}) + "\n\n" + join({words.begin() + 9, words.end()});
  const std::vector<Chunk> chunks = chunk_text(text, fake_tokenize, {12, 0});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].text, join({words.begin(), words.begin() + 9}));
  EXPECT_EQ(chunks[1].text, join({words.begin() + 9, words.end()}));
  // A single line break is not a paragraph break.
  const std::string one_line_break =
      join({words.begin(), words.begin() + 9}) + "\n" + join({words.begin() + 9, words.end()});
  EXPECT_EQ(split_words(chunk_text(one_line_break, fake_tokenize, {12, 0})[0].text).size(), 12u);
}

TEST(Chunker, OverlapRepeatsTheLastWords) {
  // 1-token words, max 4, overlap 2: windows advance by 2 words.
  const std::vector<std::string> words = numbered_words(8, 3);
  const std::vector<Chunk> chunks = chunk_text(join(words), fake_tokenize, {4, 2});
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].text, join({words[0], words[1], words[2], words[3]}));
  EXPECT_EQ(chunks[1].text, join({words[2], words[3], words[4], words[5]}));
  EXPECT_EQ(chunks[2].text, join({words[4], words[5], words[6], words[7]}));
}

TEST(Chunker, OverlapIsTheLongestTailWithinTheBudget) {
  const std::string text = generated_text(600, 7);
  const std::vector<std::string> doc_words = split_words(text);
  const int max_tokens = 10, overlap = 4;
  const std::vector<Chunk> chunks = chunk_text(text, fake_tokenize, {max_tokens, overlap});
  check_chunks(text, chunks, max_tokens);
  std::vector<std::string> covered;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const std::vector<std::string> words = split_words(chunks[i].text);
    size_t repeated = 0;
    if (i > 0) {
      // Expected: the longest tail of the previous chunk (not all of it)
      // with at most `overlap` tokens. Words here have <= 4 tokens, so the
      // first new word always fits beside it.
      const std::vector<std::string> prev = split_words(chunks[i - 1].text);
      size_t tokens = 0;
      while (repeated + 1 < prev.size()) {
        const size_t more = fake_tokenize(prev[prev.size() - 1 - repeated]).size();
        if (tokens + more > static_cast<size_t>(overlap)) break;
        tokens += more;
        ++repeated;
      }
      ASSERT_LT(repeated, words.size());
      for (size_t k = 0; k < repeated; ++k) {
        EXPECT_EQ(words[k], prev[prev.size() - repeated + k]) << "chunk " << i;
      }
    }
    covered.insert(covered.end(), words.begin() + static_cast<std::ptrdiff_t>(repeated),
                   words.end());
  }
  EXPECT_EQ(covered, doc_words) << "without the repeated words, the chunks are the text";
}

TEST(Chunker, OverlapShrinksSoTheNextWordFits) {
  // Six 1-token words fill the first window; the overlap budget (5) would
  // repeat five of them, but the next word has 5 tokens: only one repeats.
  std::vector<std::string> words = numbered_words(6, 3);
  words.push_back(std::string(15, 'z'));
  const std::vector<Chunk> chunks = chunk_text(join(words), fake_tokenize, {6, 5});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].text, join({words.begin(), words.begin() + 6}));
  EXPECT_EQ(chunks[1].text, words[5] + " " + words[6]);
  EXPECT_EQ(chunks[1].token_ids.size(), 6u);
}

TEST(Chunker, GiantWordIsSplitIntoTokenWindows) {
  std::string giant;
  for (int i = 0; i < 100; ++i) giant += static_cast<char>('a' + (i * 7) % 26);  // 34 tokens
  for (int overlap : {0, 3}) {
    SCOPED_TRACE(testing::Message() << "overlap " << overlap);
    const std::vector<Chunk> chunks =
        chunk_text("before it " + giant + " after it", fake_tokenize, {10, overlap});
    ASSERT_EQ(chunks.size(), 6u);
    EXPECT_EQ(chunks[0].text, "before it");
    std::vector<int32_t> pieces;
    for (int i = 1; i <= 4; ++i) {
      EXPECT_EQ(chunks[i].text, giant) << "each piece carries the whole word";
      EXPECT_EQ(chunks[i].token_ids.size(), i < 4 ? 10u : 4u);
      pieces.insert(pieces.end(), chunks[i].token_ids.begin(), chunks[i].token_ids.end());
    }
    EXPECT_EQ(pieces, fake_tokenize(giant));
    EXPECT_EQ(chunks[5].text, "after it") << "no overlap out of a split word";
    for (size_t i = 0; i < chunks.size(); ++i) EXPECT_EQ(chunks[i].position, static_cast<int>(i));
  }
}

TEST(Chunker, TokenizesEachDistinctWordAloneOnce) {
  std::vector<std::string> calls;
  const TokenizeFn counting = [&calls](const std::string& word) {
    calls.push_back(word);
    return fake_tokenize(word);
  };
  const std::vector<Chunk> chunks =
      chunk_text("the cat\tand the\n\ndog and the cat.", counting, {4, 1});
  EXPECT_EQ(calls, (std::vector<std::string>{"the", "cat", "and", "dog", "cat."}));
  check_chunks("", chunks, 4);
}

TEST(Chunker, WordsWithoutTokensStayInTheText) {
  const TokenizeFn skips_tilde = [](const std::string& word) {
    return word == "~" ? std::vector<int32_t>{} : fake_tokenize(word);
  };
  const std::vector<Chunk> chunks = chunk_text("~ ab cd ~", skips_tilde, {8, 0});
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].text, "~ ab cd ~");
  EXPECT_EQ(chunks[0].token_ids, tokenize_words({"ab", "cd"}));
  EXPECT_TRUE(chunk_text("~ ~", skips_tilde, {8, 0}).empty());
}

void expect_invalid(const ChunkOptions& options, const std::string& phrase) {
  try {
    chunk_text("some text", fake_tokenize, options);
    FAIL() << "accepted max_tokens=" << options.max_tokens << " overlap=" << options.overlap;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr(phrase));
  }
}

TEST(Chunker, RejectsInvalidOptions) {
  expect_invalid({0, 0}, "ChunkOptions.max_tokens must be positive, got 0");
  expect_invalid({-5, 0}, "ChunkOptions.max_tokens must be positive, got -5");
  expect_invalid({8, -1},
                 "ChunkOptions.overlap must satisfy 0 <= overlap < max_tokens, got "
                 "overlap=-1 with max_tokens=8");
  expect_invalid({8, 8}, "overlap=8 with max_tokens=8");
  try {
    chunk_text("", fake_tokenize, {8, 9});
    FAIL() << "invalid options are rejected even for empty text";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  }
  try {
    chunk_text("text", TokenizeFn(), {});
    FAIL() << "accepted an empty tokenize";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("tokenize"));
  }
}

}  // namespace
}  // namespace kvrag
