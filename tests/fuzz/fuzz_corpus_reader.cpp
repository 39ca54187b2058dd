// libFuzzer target: one corpus file read by read_corpus. The first byte
// picks the reader (.txt, .md, .jsonl); the rest is the file. read_corpus
// reports bad input as skipped and never throws for it, so any exception is
// a finding.
#include <cstddef>
#include <cstdint>

#include "data/corpus_reader.h"
#include "tests/fuzz/input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* const kNames[] = {"doc.txt", "doc.md", "docs.jsonl"};
  const std::string path = kvrag::fuzz::write_input_file(kNames[data[0] % 3], data + 1, size - 1);
  kvrag::read_corpus({path});
  return 0;
}
