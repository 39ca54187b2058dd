// Reads a corpus from files and folders into Documents, skipping (and
// reporting) what it cannot use instead of failing the whole run.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/document.h"
#include "data/text_normalization.h"  // normalize_text, utf8_error

namespace kvrag {

// An input that produced no document, and why.
struct SkippedInput {
  std::string source;  // a path, or "path:line" (1-based) for one JSONL line
  std::string reason;  // e.g. "unsupported extension .pdf (supported: .txt, .md, .jsonl)"
};

struct CorpusReadResult {
  std::vector<Document> documents;  // in reading order (see read_corpus)
  std::vector<SkippedInput> skipped;
};

// Reads every path in `paths`, in the order given. A path may be:
// - a directory: read recursively, depth first, the entries of each directory
//   in byte order of their names. Hidden entries (names starting with '.') are
//   ignored silently. Symbolic links to regular files are read; symbolic links
//   to directories are not followed (reported, so a link cycle cannot loop).
//   Files with other extensions, and special files, are reported as skipped.
// - a file, read by its extension (case-insensitive):
//   .txt, .md  one document. external_id = path relative to the directory
//              given (the file name for a file given directly); title = for
//              .md the first level-1 ATX heading ("# Title", outside fenced
//              code blocks), else the file name without extension with '_'
//              and '-' turned into spaces. The heading stays in the text: it
//              is part of what the author wrote and helps retrieval.
//   .jsonl     one document per line: {"id", "title", "text", "metadata"}.
//              "text" is required: a string, non-empty after normalisation.
//              "id": a string (non-empty) or an integer; absent, the id is
//              "<name>:<line>" with <name> the file's external id as above.
//              "title": optional string. "metadata": optional object, kept as
//              compact JSON text. A null optional field counts as absent (as
//              in the T5 config reader); other keys are ignored. Blank lines
//              are ignored silently.
// Skipped, with the file (and line) and a reason, while the rest goes on:
// nonexistent paths, unreadable files, empty files, invalid UTF-8, text that
// contains a NUL byte or is only whitespace, invalid JSON (with the parser's
// message), a line that is not an object, a missing or wrong-typed field.
// Duplicate external ids: the last one wins, keeping its place in the order;
// each earlier one is reported after the per-file reports as "replaced by a
// later document with the same id (<source of the later one>)".
// Texts are normalised with normalize_text; titles are trimmed and their
// whitespace runs (newlines included) collapsed to one space.
// Never throws for bad input; may throw std::bad_alloc.
CorpusReadResult read_corpus(const std::vector<std::string>& paths);

}  // namespace kvrag
