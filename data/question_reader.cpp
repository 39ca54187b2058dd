#include "data/question_reader.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json_input.h"

namespace kvrag {
namespace {

using nlohmann::json;

EvalQuestion parse_question(const std::string& line, const std::string& where) {
  json value;
  try {
    value = parse_json_bounded(line);
  } catch (const Error& e) {
    KVRAG_THROW(kFormat, where, ": ", e.what());  // invalid or too deeply nested
  }
  KVRAG_CHECK(value.is_object(), kFormat, where, ": a line must be a JSON object");
  EvalQuestion q;
  const auto question = value.find("question");
  KVRAG_CHECK(question != value.end() && question->is_string(), kFormat, where,
              ": \"question\" must be a string");
  q.question = question->get<std::string>();
  KVRAG_CHECK(!q.question.empty(), kFormat, where, ": \"question\" is empty");
  const auto answers = value.find("answers");
  KVRAG_CHECK(answers != value.end() && answers->is_array() && !answers->empty(), kFormat, where,
              ": \"answers\" must be a non-empty list of strings");
  for (const json& answer : *answers) {
    KVRAG_CHECK(answer.is_string(), kFormat, where,
                ": \"answers\" must be a non-empty list of strings");
    q.answers.push_back(answer.get<std::string>());
  }
  const auto document = value.find("document_id");
  if (document != value.end() && !document->is_null()) {
    KVRAG_CHECK(document->is_string(), kFormat, where, ": \"document_id\" must be a string");
    q.document_id = document->get<std::string>();
  }
  return q;
}

}  // namespace

std::vector<EvalQuestion> read_eval_questions(const std::string& path, int64_t limit) {
  KVRAG_CHECK(limit >= 0, kInvalidArgument, "limit must be >= 0, got ", limit);
  KVRAG_CHECK(std::filesystem::is_regular_file(path), kNotFound, "question file ", path,
              " does not exist");
  std::ifstream in(path);
  KVRAG_CHECK(in.good(), kIo, "cannot read question file ", path);
  std::vector<EvalQuestion> questions;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    const std::string where = str_cat(path, ":", number);
    questions.push_back(parse_question(line, where));
    questions.back().where = where;
    if (limit > 0 && static_cast<int64_t>(questions.size()) == limit) break;
  }
  return questions;
}

}  // namespace kvrag
