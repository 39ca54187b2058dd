// A document as the corpus readers produce it and the store keeps it.
#pragma once

#include <string>

namespace kvrag {

struct Document {
  // The caller's id: a JSONL "id" (integers written in decimal), or for a .txt
  // / .md file its path relative to the directory it was found under (the
  // file name when the file was given directly). Unique within one read.
  std::string external_id;
  std::string title;
  // Where it came from: the file path, plus ":line" (1-based) for JSONL.
  std::string source;
  // Normalised text (see normalize_text in data/corpus_reader.h): valid UTF-8,
  // LF line ends, no BOM, no trailing whitespace, never empty.
  std::string text;
  // A JSON object as compact text; "{}" when there is none.
  std::string metadata_json = "{}";
};

}  // namespace kvrag
