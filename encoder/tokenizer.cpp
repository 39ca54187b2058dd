#include "encoder/tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>

#include "core/error.h"

namespace kvrag {
namespace {
constexpr int32_t kPad = 0;
constexpr int32_t kEos = 1;
}  // namespace

Tokenizer::Tokenizer(const std::string& path)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  KVRAG_CHECK(std::filesystem::exists(path), kNotFound, path, ": no such file");
  const auto status = sp_->Load(path);
  KVRAG_CHECK(status.ok(), kFormat, path, ": not a SentencePiece model: ", status.ToString());
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  KVRAG_CHECK(status.ok(), kInvalidArgument, "cannot tokenize text: ", status.ToString());
  return {ids.begin(), ids.end()};
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::vector<int> kept;
  kept.reserve(ids.size());
  for (int32_t id : ids) {
    if (id != kPad && id != kEos && id >= 0 && id < sp_->GetPieceSize()) kept.push_back(id);
  }
  std::string text;
  const auto status = sp_->Decode(kept, &text);
  KVRAG_CHECK(status.ok(), kInternal, "cannot decode ids: ", status.ToString());
  return text;
}

std::string Tokenizer::piece_text(const std::vector<int32_t>& prefix, int32_t id) const {
  std::vector<int32_t> extended = prefix;
  extended.push_back(id);
  const std::string before = decode(prefix);
  const std::string after = decode(extended);
  // SentencePiece drops the leading space of the first piece, so a longer
  // decode always starts with the shorter one.
  return after.size() >= before.size() ? after.substr(before.size()) : std::string();
}

int32_t Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }

}  // namespace kvrag
