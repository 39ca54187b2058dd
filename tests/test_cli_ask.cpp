// `kvrag ask`, `search` and `eval` run as a user runs them, over an index
// built by `kvrag index` from a few documents of the sample corpus.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/cli_run.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {
using nlohmann::json;
using testing::CliRun;
using testing::describe;
using ::testing::HasSubstr;
using testing::kDemoModel;
using testing::kSampleCorpus;
using ::testing::Not;
using testing::run_kvrag;
using ::testing::StartsWith;
using testing::TempDir;

// The question test_answering.cpp pins (tests/sample_corpus.h says why).
constexpr const char* kQuestion = testing::kPinnedQuestion;

// The lines of the sample corpus with the test documents.
std::string corpus_lines() {
  std::istringstream in(testing::read_text(kSampleCorpus));
  std::string lines;
  std::string line;
  while (std::getline(in, line)) {
    for (const std::string& id : testing::kPinnedDocumentIds) {
      if (line.find(str_cat("\"id\": \"", id, "\"")) != std::string::npos) {
        lines.append(line).append("\n");
      }
    }
  }
  return lines;
}

class CliAsk : public ::testing::Test {
 protected:
  // The index, built once by `kvrag index` for the whole suite.
  static const std::string& index() {
    static TempDir dir("kvrag-cli-ask");
    static const std::string path = [] {
      testing::write_text(dir.file("corpus.jsonl"), corpus_lines());
      const CliRun run = run_kvrag(
          {"index", "--model", kDemoModel, "--index", dir.file("index"), dir.file("corpus.jsonl")});
      EXPECT_EQ(run.exit_code, 0) << describe(run);
      return dir.file("index");
    }();
    return path;
  }
};

TEST_F(CliAsk, ReadableAnswerSourcesAndTimings) {
  const CliRun run = run_kvrag({"ask", "--index", index(), "--k", "3", kQuestion});
  ASSERT_EQ(run.exit_code, 0) << describe(run);
  EXPECT_THAT(run.out, StartsWith(str_cat(testing::kPinnedAnswer, "\n")));
  EXPECT_THAT(run.out, HasSubstr(str_cat("sources:\n  1. ", testing::kPinnedDocumentId, " \"",
                                         testing::kPinnedTitle, "\" chunk ")));
  EXPECT_THAT(run.out, HasSubstr("  3. "));
  EXPECT_THAT(run.out, Not(HasSubstr("  4. ")));
  EXPECT_THAT(run.out, HasSubstr("attention "));
  EXPECT_THAT(run.out, HasSubstr("question itself: attention "));
  EXPECT_THAT(run.out, HasSubstr("timings: retrieve "));
  EXPECT_THAT(run.out, HasSubstr("tokens/s"));
}

TEST_F(CliAsk, JsonInEveryModeAndRetriever) {
  for (const char* mode : {"cached", "concat", "fid"}) {
    for (const char* retriever : {"dense", "hybrid"}) {
      const CliRun run = run_kvrag({"ask", "--index", index(), "--mode", mode, "--retriever",
                                    retriever, "--k", "3", "--json", kQuestion});
      ASSERT_EQ(run.exit_code, 0) << describe(run);
      const json body = json::parse(run.out);
      EXPECT_EQ(body["answer"], testing::kPinnedAnswer) << mode << " " << retriever;
      EXPECT_EQ(body["mode"], mode);
      EXPECT_EQ(body["retriever"], retriever);
      ASSERT_EQ(body["sources"].size(), 3u);
      double total = body["question_attention"].get<double>();
      for (const json& source : body["sources"]) {
        EXPECT_TRUE(source.contains("document_id") && source.contains("title") &&
                    source.contains("score"));
        total += source["attention"].get<double>();
      }
      EXPECT_NEAR(total, 1.0, 1e-3);
      EXPECT_GT(body["timings_ms"]["decode"].get<double>(), 0.0);
    }
  }
}

TEST_F(CliAsk, BeamsAndMaxNewTokens) {
  const CliRun run = run_kvrag(
      {"ask", "--index", index(), "--beams", "3", "--max-new-tokens", "1", "--json", kQuestion});
  ASSERT_EQ(run.exit_code, 0) << describe(run);
  EXPECT_EQ(json::parse(run.out)["generated_tokens"], 1);
}

TEST_F(CliAsk, SearchPrintsChunks) {
  const CliRun run = run_kvrag(
      {"search", "--index", index(), "--k", "2", "--retriever", "bm25", "Biathy Florian Waer"});
  ASSERT_EQ(run.exit_code, 0) << describe(run);
  EXPECT_THAT(run.out, StartsWith(str_cat("1. ", testing::kPinnedDocumentId, " \"",
                                          testing::kPinnedTitle, "\"")));
  EXPECT_THAT(run.out, HasSubstr("\n2. "));
  EXPECT_THAT(run.out, Not(HasSubstr("\n3. ")));

  const CliRun as_json = run_kvrag({"search", "--index", index(), "--json", "Florian Waer"});
  ASSERT_EQ(as_json.exit_code, 0) << describe(as_json);
  const json body = json::parse(as_json.out);
  ASSERT_EQ(body["results"].size(), 5u);
  EXPECT_EQ(body["results"][0]["document_id"], testing::kPinnedDocumentId);
}

TEST_F(CliAsk, EvalReportsScoresAndRecall) {
  TempDir dir("kvrag-cli-eval");
  testing::write_text(
      dir.file("questions.jsonl"),
      str_cat("{\"question\": \"", kQuestion, "\", \"answers\": [\"", testing::kPinnedAnswer,
              "\"], \"document_id\": \"", testing::kPinnedDocumentId, "\"}\n\n",
              "{\"question\": \"How many patents did Florian Nyv hold?\", \"answers\": [\"175\"], "
              "\"document_id\": \"doc-0037\"}\n",
              "{\"question\": \"Who founded Wiafoundholt?\", \"answers\": [\"Bettina Pihum\"]}\n"));
  const CliRun run = run_kvrag({"eval", "--index", index(), "--questions",
                                dir.file("questions.jsonl"), "--k", "3", "--json"});
  ASSERT_EQ(run.exit_code, 0) << describe(run);
  const json report = json::parse(run.out);
  EXPECT_EQ(report["questions"], 3);
  ASSERT_EQ(report["modes"].size(), 3u);
  EXPECT_EQ(report["modes"][0]["mode"], "cached");
  EXPECT_GE(report["modes"][0]["exact_match"].get<double>(), 1.0 / 3.0);
  ASSERT_EQ(report["retrieval"].size(), 3u);
  for (const json& retrieval : report["retrieval"]) {
    EXPECT_EQ(retrieval["questions"], 2);  // the third names no document
    EXPECT_GE(retrieval["document_recall"].get<double>(), retrieval["answer_recall"].get<double>());
  }
  EXPECT_EQ(report["retrieval"][0]["retriever"], "dense");
  EXPECT_EQ(report["retrieval"][0]["answer_recall"], 1.0);
  EXPECT_EQ(report["predictions"][0]["answers"]["cached"], testing::kPinnedAnswer);

  const CliRun table =
      run_kvrag({"eval", "--index", index(), "--questions", dir.file("questions.jsonl"), "--modes",
                 "cached", "--retrievers", "bm25", "--limit", "1", "--k", "3"});
  ASSERT_EQ(table.exit_code, 0) << describe(table);
  EXPECT_THAT(table.out, HasSubstr("1 questions, k=3"));
  EXPECT_THAT(table.out, HasSubstr("cached   100.0%   100.0%"));
  EXPECT_THAT(table.out, HasSubstr("answer recall@3"));
  EXPECT_THAT(table.out, HasSubstr("bm25"));
}

// A question ask() would refuse stops the run, naming its line: checked
// only when its turn came, it threw the answered questions' scores away
// and named no line.
TEST_F(CliAsk, EvalChecksEveryQuestionBeforeAnswering) {
  TempDir dir("kvrag-cli-eval-bad");
  std::string long_question;
  for (int i = 0; i < 300; ++i) long_question += " the";
  const std::string good = str_cat("{\"question\": \"", kQuestion, "\", \"answers\": [\"x\"]}\n");
  for (const auto& [question, message] :
       {std::pair<std::string, std::string>{"   ", "question is empty"},
        {long_question, "field 'question' has "}}) {
    testing::write_text(
        dir.file("questions.jsonl"),
        str_cat(good, good, "{\"question\": \"", question, "\", \"answers\": [\"x\"]}\n"));
    const CliRun run =
        run_kvrag({"eval", "--index", index(), "--questions", dir.file("questions.jsonl")});
    EXPECT_EQ(run.exit_code, 2) << describe(run);
    EXPECT_THAT(run.err, HasSubstr(str_cat(dir.file("questions.jsonl"), ":3: ", message)));
  }
}

TEST_F(CliAsk, BadInputExitsNonZeroNamingIt) {
  const CliRun mode = run_kvrag({"ask", "--index", index(), "--mode", "fusion", kQuestion});
  EXPECT_EQ(mode.exit_code, 2) << describe(mode);
  EXPECT_THAT(mode.err, HasSubstr("unknown mode 'fusion'"));

  const CliRun k = run_kvrag({"ask", "--index", index(), "--k", "0", kQuestion});
  EXPECT_EQ(k.exit_code, 2) << describe(k);
  EXPECT_THAT(k.err, HasSubstr("--k"));

  const CliRun empty = run_kvrag({"ask", "--index", index()});
  EXPECT_EQ(empty.exit_code, 2) << describe(empty);
  EXPECT_THAT(empty.err, HasSubstr("give the question"));

  TempDir dir("kvrag-cli-ask-bad");
  const CliRun missing = run_kvrag({"ask", "--index", dir.file("nothing-here"), kQuestion});
  EXPECT_EQ(missing.exit_code, 3) << describe(missing);
  EXPECT_THAT(missing.err, HasSubstr("nothing-here"));

  const CliRun no_file =
      run_kvrag({"eval", "--index", index(), "--questions", dir.file("none.jsonl")});
  EXPECT_EQ(no_file.exit_code, 3) << describe(no_file);
  EXPECT_THAT(no_file.err, HasSubstr("none.jsonl"));

  // A usage error prints the usage; an error of the work itself does not.
  EXPECT_THAT(empty.err, HasSubstr("usage: kvrag ask"));
  EXPECT_THAT(missing.err, Not(HasSubstr("usage:")));

  testing::write_text(dir.file("bad.jsonl"), "{\"question\": \"q\", \"answers\": \"one\"}\n");
  const CliRun bad_line =
      run_kvrag({"eval", "--index", index(), "--questions", dir.file("bad.jsonl")});
  EXPECT_NE(bad_line.exit_code, 0) << describe(bad_line);
  EXPECT_THAT(bad_line.err, HasSubstr("bad.jsonl:1: \"answers\" must be a non-empty list"));
}

// A model that does not fit the index is not a malformed command line: the
// error alone, without the usage block that suggested the arguments were wrong.
TEST_F(CliAsk, AModelMismatchPrintsTheErrorWithoutUsage) {
  TempDir dir("kvrag-cli-ask-mismatch");
  const std::filesystem::path other = dir.path() / "other-model";
  std::filesystem::create_directories(other);
  for (const char* name : {"config.json", "model.safetensors", "spiece.model"}) {
    std::filesystem::copy_file(std::filesystem::path(kDemoModel) / name, other / name);
  }
  testing::replace_in_file((other / "config.json").string(), "{", "{ ");
  const CliRun run = run_kvrag({"ask", "--index", index(), "--model", other.string(), kQuestion});
  EXPECT_EQ(run.exit_code, 2) << describe(run);
  EXPECT_THAT(run.err, HasSubstr("was built with the model"));
  EXPECT_THAT(run.err, Not(HasSubstr("usage:")));
}

// The CLI refuses what the HTTP API refuses: a question or query that is
// not UTF-8 (a shell passes any bytes) or holds a NUL.
TEST_F(CliAsk, InvalidUtf8InAQuestionOrQueryIsRefusedNamingTheField) {
  const CliRun ask = run_kvrag({"ask", "--index", index(), "On which river \xff does it lie?"});
  EXPECT_EQ(ask.exit_code, 2) << describe(ask);
  EXPECT_THAT(ask.err, HasSubstr("field 'question' is not valid UTF-8: invalid UTF-8 at byte 15"));
  EXPECT_EQ(ask.out, "");
  const CliRun search = run_kvrag({"search", "--index", index(), "Tith\xc0\x80ford"});
  EXPECT_EQ(search.exit_code, 2) << describe(search);
  EXPECT_THAT(search.err, HasSubstr("field 'query' is not valid UTF-8"));
}

TEST_F(CliAsk, AskOnAnEmptyIndexSaysItHoldsNoDocuments) {
  TempDir dir("kvrag-cli-ask-empty");
  testing::write_text(dir.file("one.jsonl"), "{\"id\": \"only\", \"text\": \"A short note.\"}\n");
  const std::string index = dir.file("index");
  const CliRun add =
      run_kvrag({"index", "--model", kDemoModel, "--index", index, dir.file("one.jsonl")});
  ASSERT_EQ(add.exit_code, 0) << describe(add);
  const CliRun rm = run_kvrag({"rm", "--index", index, "only"});
  ASSERT_EQ(rm.exit_code, 0) << describe(rm);
  for (const char* mode : {"cached", "concat", "fid"}) {
    const CliRun run = run_kvrag({"ask", "--index", index, "--mode", mode, kQuestion});
    EXPECT_EQ(run.exit_code, 1) << describe(run);
    EXPECT_THAT(run.err, HasSubstr("kvrag ask: error: the index " + index +
                                   " holds no documents: add some (kvrag index, or POST "
                                   "/v1/documents) before asking"));
    EXPECT_THAT(run.err, Not(HasSubstr("usage:")));
    EXPECT_EQ(run.out, "");
  }
  // eval would score answers made from no sources: refused the same way.
  testing::write_text(dir.file("q.jsonl"), "{\"question\": \"" + std::string(kQuestion) +
                                               "\", \"answers\": [\"x\"]}\n");
  for (const char* modes : {"cached", "concat"}) {
    const CliRun eval =
        run_kvrag({"eval", "--index", index, "--questions", dir.file("q.jsonl"), "--modes", modes});
    EXPECT_EQ(eval.exit_code, 1) << describe(eval);
    EXPECT_THAT(eval.err, HasSubstr(" holds no documents: add some"));
  }
}

}  // namespace
}  // namespace kvrag
