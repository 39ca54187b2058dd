// Question files of `kvrag eval` and `kvrag bench`: JSON Lines of questions
// with their gold answers. Read here, in data/, because pipeline/ does not
// parse JSON (DESIGN.md); pipeline/evaluation.h scores them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvrag {

struct EvalQuestion {
  std::string question;
  std::vector<std::string> answers;  // gold answers, at least one
  std::string document_id;           // external id of the gold document; empty: not given
  std::string where;                 // "path:line" it was read from; empty: made in code
};

// Reads a question file, one JSON object per line:
// {"question": "...", "answers": ["...", ...], "document_id": "..."?}.
// Blank lines are skipped; at most `limit` questions are read (0: all).
// Error(kNotFound) for a missing file; Error(kFormat) naming "path:line" and
// the field for invalid or too deeply nested JSON (core/json_input.h), a
// missing or empty question, answers that are not a non-empty list of
// strings, or a document_id that is not a string.
std::vector<EvalQuestion> read_eval_questions(const std::string& path, int64_t limit = 0);

}  // namespace kvrag
