// The bounded JSON parser of core/json_input.h and the question-file reader
// built on it (data/question_reader.h).
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/json_input.h"
#include "data/question_reader.h"
#include "tests/model_files.h"

namespace kvrag {
namespace {

using testing::TempDir;
using testing::throws_error;

std::string nested_arrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonInput, NestingUpToTheBoundIsParsed) {
  const nlohmann::json value = parse_json_bounded(nested_arrays(64));
  EXPECT_TRUE(value.is_array());
  EXPECT_EQ(parse_json_bounded(R"({"a": {"b": [1, 2]}})", 3)["a"]["b"][1], 2);
}

TEST(JsonInput, DeeperNestingIsRefusedWithoutRecursing) {
  EXPECT_TRUE(throws_error([] { parse_json_bounded(nested_arrays(65)); },
                           ErrorKind::kInvalidArgument, {"JSON nested deeper than 64 levels"}));
  EXPECT_TRUE(throws_error([] { parse_json_bounded(R"({"a": {"b": [1, 2]}})", 2); },
                           ErrorKind::kInvalidArgument, {"JSON nested deeper than 2 levels"}));
  // 150,000 levels: a stack overflow for a recursive parse, dump or destroy.
  EXPECT_TRUE(throws_error([] { parse_json_bounded(nested_arrays(150000)); },
                           ErrorKind::kInvalidArgument, {"nested deeper"}));
}

TEST(JsonInput, InvalidJsonGivesTheParserMessageWithoutItsTag) {
  EXPECT_TRUE(throws_error([] { parse_json_bounded("{not json"); }, ErrorKind::kInvalidArgument,
                           {"invalid JSON: parse error at column 3"}));
  try {
    parse_json_bounded("[1,");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("[json.exception"), std::string::npos) << e.what();
  }
}

TEST(JsonInput, NumbersBeyondDoubleRangeNameTheirField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"question": "x", "k": 1e999})", "field 'k': number 1e999 is out of range"},
      {R"({"query": "x", "k": -1e400})", "field 'k': number -1e400 is out of range"},
      {R"({"documents": [{"text": "a"}, {"text": "b", "metadata": {"n": [1, 1e999]}}]})",
       "field 'documents[1].metadata.n[1]': number 1e999 is out of range (JSON numbers must "
       "fit in a double)"},
      {R"({"a": [[1, 2], {"b": 3}, 1e999]})", "field 'a[2]': number 1e999"},
      {"1e999", "the value: number 1e999 is out of range"},
  };
  // Not a structured binding: clang 14 (the sanitizer build's) cannot
  // capture one in a lambda.
  for (const auto& test_case : cases) {
    const std::string& text = test_case.first;
    EXPECT_TRUE(throws_error([&] { parse_json_bounded(text); }, ErrorKind::kInvalidArgument,
                             {test_case.second}))
        << text;
  }
  EXPECT_EQ(parse_json_bounded(R"({"k": 1e308})")["k"], 1e308);
}

TEST(JsonInput, InvalidUtf8InAStringNamesItsField) {
  EXPECT_TRUE(throws_error([] { parse_json_bounded("{\"documents\": [{\"title\": \"a\xff\"}]}"); },
                           ErrorKind::kInvalidArgument,
                           {"invalid JSON: ", "(in field 'documents[0].title')"}));
  EXPECT_TRUE(throws_error([] { parse_json_bounded(R"({"question": "\ud800"})"); },
                           ErrorKind::kInvalidArgument, {"(in field 'question')"}));
}

class EvalQuestionReader : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    const std::string path = dir_.file("questions.jsonl");
    std::ofstream(path) << text;
    return path;
  }
  TempDir dir_{"kvrag_questions"};
};

TEST_F(EvalQuestionReader, ReadsQuestionsSkipsBlankLinesAndHonoursTheLimit) {
  const std::string path =
      write(R"({"question": "Where?", "answers": ["Velm", "in Velm"], "document_id": "velm"})"
            "\n\n"
            R"({"question": "When?", "answers": ["1802"]})"
            "\n"
            R"({"question": "Who?", "answers": ["Ilse"], "document_id": null})"
            "\n");
  const std::vector<EvalQuestion> all = read_eval_questions(path);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].question, "Where?");
  EXPECT_EQ(all[0].answers, (std::vector<std::string>{"Velm", "in Velm"}));
  EXPECT_EQ(all[0].document_id, "velm");
  EXPECT_EQ(all[1].document_id, "");
  EXPECT_EQ(read_eval_questions(path, 2).size(), 2u);
}

TEST_F(EvalQuestionReader, ErrorsNameFileAndLine) {
  const std::string good = R"({"question": "Where?", "answers": ["Velm"]})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "invalid JSON: parse error at column 3"},
      {"[1]", "a line must be a JSON object"},
      {R"({"answers": ["a"]})", "\"question\" must be a string"},
      {R"({"question": "", "answers": ["a"]})", "\"question\" is empty"},
      {R"({"question": "q", "answers": []})", "\"answers\" must be a non-empty list of strings"},
      {R"({"question": "q", "answers": [1]})", "\"answers\" must be a non-empty list of strings"},
      {R"({"question": "q", "answers": ["a"], "document_id": 3})",
       "\"document_id\" must be a string"},
      {R"({"question": "q", "answers": ["a"], "x": )" + nested_arrays(100000) + "}",
       "JSON nested deeper than 64 levels"},
  };
  for (const auto& [line, message] : cases) {
    const std::string path = write(good + "\n\n" + line + "\n");
    EXPECT_TRUE(throws_error([&] { read_eval_questions(path); }, ErrorKind::kFormat,
                             {path + ":3: " + message}))
        << line.substr(0, 60);
  }
  EXPECT_TRUE(throws_error([&] { read_eval_questions(dir_.file("none.jsonl")); },
                           ErrorKind::kNotFound, {dir_.file("none.jsonl")}));
}

}  // namespace
}  // namespace kvrag
