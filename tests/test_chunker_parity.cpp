// The training code's chunker (training/text.py) against data/chunker.cpp on
// the sample corpus: the demo reader must be trained on exactly the chunks the
// toolkit caches. The Python side needs only the standard library and
// Debian's sentencepiece tools.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "data/chunker.h"
#include "data/corpus_reader.h"
#include "encoder/tokenizer.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {

TEST(ChunkerParity, TrainingChunkerMakesTheSameChunksOnTheSampleCorpus) {
  const Tokenizer tokenizer(testing::kDemoModel + "/spiece.model");
  const TokenizeFn tokenize = [&tokenizer](const std::string& word) {
    return tokenizer.encode(word);
  };
  const CorpusReadResult corpus = read_corpus({testing::kSampleCorpus});
  ASSERT_EQ(corpus.documents.size(), 300u);
  testing::TempDir tmp("kvrag_test_chunker_parity");
  const std::string path = tmp.file("chunks.jsonl");
  {
    std::ofstream out(path);
    for (const Document& doc : corpus.documents) {
      nlohmann::json chunks = nlohmann::json::array();
      for (const Chunk& chunk : chunk_text(doc.text, tokenize, ChunkOptions{})) {
        chunks.push_back(chunk.text);
      }
      out << nlohmann::json{{"id", doc.external_id}, {"chunks", chunks}}.dump() << '\n';
    }
  }
  const std::string command =
      "python3 " KVRAG_SOURCE_DIR "/training/check_chunker.py " + path;
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

}  // namespace
}  // namespace kvrag
