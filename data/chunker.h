// Splits a document's text into chunks: windows of at most max_tokens
// SentencePiece tokens that end at sentence ends where they can.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace kvrag {

struct ChunkOptions {
  int max_tokens = 64;  // tokens per chunk, > 0 (the encoder adds eos on top)
  int overlap = 0;      // tokens shared with the previous chunk, 0 <= overlap < max_tokens
};

struct Chunk {
  int position;                    // 0..n-1 within the document
  std::string text;                // the chunk's words joined by single spaces
  std::vector<int32_t> token_ids;  // (<= max_tokens) the words' token ids, in order, no eos
};

// Token ids of one word (no whitespace in it), without eos; a SentencePiece
// tokenizer adds the word-start marker itself.
using TokenizeFn = std::function<std::vector<int32_t>(const std::string&)>;

// Chunks `text`. Words are the runs of non-whitespace (ASCII whitespace);
// each distinct word is passed to `tokenize` alone, once, and a chunk's
// token_ids are the concatenation of its words' ids. SentencePiece (with its
// default split_by_whitespace) never makes a piece across whitespace, so this
// equals tokenizing the chunk text, and counts are exact without re-tokenizing.
//
// Packing is greedy, but a chunk ends at the last sentence end (a word ending
// in . ! or ?, possibly followed by closing quotes or brackets, or a word
// followed by a blank line) that lies within the last third of the window
// (at or after 2/3 of max_tokens), if there is one.
// With overlap > 0 each chunk starts with the longest run of the previous
// chunk's last words whose tokens total <= overlap; the run is shortened when
// the chunk's first new word would not fit beside it, so every chunk has at
// least one new word.
// A word of more than max_tokens tokens becomes chunks of its own: windows of
// max_tokens of its tokens (the last may be shorter), each with the whole word
// as text (a piece of a word has no text of its own); no overlap is carried
// into or out of those chunks.
// Words with no tokens stay in the text of the chunk around them; text with
// no tokens at all (or no words) gives no chunks.
// Throws Error(kInvalidArgument) naming the field for invalid options or an
// empty `tokenize`.
std::vector<Chunk> chunk_text(const std::string& text, const TokenizeFn& tokenize,
                              const ChunkOptions& options);

// Whether chunk_text gives `text` any chunk: whether a word of it has a
// token. Tokenizes words only until the first that has one.
bool has_tokens(const std::string& text, const TokenizeFn& tokenize);

}  // namespace kvrag
