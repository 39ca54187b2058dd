// The SentencePiece tokenizer of a T5 checkpoint (spiece.model).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace kvrag {

class Tokenizer {
 public:
  // Loads spiece.model; Error(kNotFound) if missing, Error(kFormat) if
  // SentencePiece cannot read it.
  explicit Tokenizer(const std::string& path);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Token ids of `text`, without the trailing eos (callers append it where
  // T5 expects one: at the end of every encoder input).
  std::vector<int32_t> encode(const std::string& text) const;
  // Text of `ids`, skipping pad (0) and eos (1), as transformers'
  // decode(skip_special_tokens=True) does.
  std::string decode(const std::vector<int32_t>& ids) const;
  // The text one piece adds when appended to a decoded prefix (for
  // streaming): decode(prefix + id) minus decode(prefix).
  std::string piece_text(const std::vector<int32_t>& prefix, int32_t id) const;
  int32_t vocab_size() const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

}  // namespace kvrag
