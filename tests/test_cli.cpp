// The kvrag executable, run as a user runs it: its output must equal the
// library's, and its failures must exit non-zero naming what is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "decoder/t5_model.h"
#include "pipeline/text_generation.h"
#include "tests/cli_run.h"
#include "tests/fixtures.h"
#include "tests/model_files.h"

namespace kvrag {
namespace {
namespace fs = std::filesystem;

using testing::CliRun;
using testing::describe;
using testing::run_kvrag;

// "5 6 7", as kvrag prints ids (the line without its newline).
std::string join_ids(const std::vector<int32_t>& ids) {
  std::ostringstream line;
  for (size_t i = 0; i < ids.size(); ++i) line << (i ? " " : "") << ids[i];
  return line.str();
}

std::string ids_line(const std::vector<int32_t>& ids) { return join_ids(ids) + "\n"; }

TEST(Cli, HelpListsGenerate) {
  const CliRun run = run_kvrag({"--help"});
  EXPECT_EQ(run.exit_code, 0) << describe(run);
  EXPECT_NE(run.out.find("generate"), std::string::npos) << describe(run);

  const CliRun usage = run_kvrag({"generate", "--help"});
  EXPECT_EQ(usage.exit_code, 0) << describe(usage);
  EXPECT_NE(usage.out.find("--max-new-tokens"), std::string::npos) << describe(usage);
}

TEST(Cli, UnknownCommandExits2) {
  const CliRun run = run_kvrag({"frobnicate"});
  EXPECT_EQ(run.exit_code, 2) << describe(run);
  EXPECT_NE(run.err.find("frobnicate"), std::string::npos) << describe(run);
}

// The comma-separated options (Args::get_list, get_int_list): a bad item
// exits 2 naming the option and the item, before any file is opened.
TEST(Cli, ListOptionsNameTheBadItem) {
  const std::vector<std::string> bench = {"bench", "--index", "/nonexistent/index", "--questions",
                                          "/nonexistent/q.jsonl"};
  const std::vector<std::string> sweep = {"bench", "--random-models", "t5-small", "--questions",
                                          "/nonexistent/q.jsonl"};
  const std::vector<std::string> eval = {"eval", "--index", "/nonexistent/index", "--questions",
                                         "/nonexistent/q.jsonl"};
  const auto with = [](std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {with(bench, {"--k", "1,x"}), "--k: 'x' is not an integer in 1.."},
      {with(bench, {"--k", "5,0"}), "--k: '0' is not an integer in 1.."},
      {with(bench, {"--k", ",,"}), "--k is empty"},
      {with(bench, {"--modes", "cached,,bogus"}), "'bogus'"},
      {with(sweep, {"--random-chunk-tokens", "64,5000"}),
       "--random-chunk-tokens: '5000' is not an integer in 1..4096"},
      {with(eval, {"--modes", "cached,bogus"}), "'bogus'"},
      {with(eval, {"--modes", "", "--retrievers", "dense,nope"}), "'nope'"},
  };
  for (const auto& [args, message] : cases) {
    const CliRun run = run_kvrag(args);
    EXPECT_EQ(run.exit_code, 2) << describe(run);
    EXPECT_NE(run.err.find(message), std::string::npos) << "no '" << message << "'\n"
                                                        << describe(run);
  }
}

class CliGenerate : public ::testing::Test {
 protected:
  void SetUp() override {
    relu_ = testing::fixture_case("t5v1_relu_tied");
    if (relu_.empty()) KVRAG_SKIP_OR_FAIL("no T5 fixtures under " + testing::t5_fixtures_dir());
  }

  // What the library generates from `ids` with the fixture model.
  std::vector<int32_t> library_ids(const std::vector<int32_t>& ids, int64_t max_new_tokens,
                                   int64_t beams) const {
    GenerationOptions options;
    options.max_new_tokens = max_new_tokens;
    options.num_beams = beams;
    return generate_text(load_t5_model(relu_), "", ids, options).output_ids;
  }

  // Expects exit `code` and every one of `parts` on stderr.
  void expect_failure(const std::vector<std::string>& args, int code,
                      const std::vector<std::string>& parts) const {
    const CliRun run = run_kvrag(args);
    EXPECT_EQ(run.exit_code, code) << describe(run);
    EXPECT_TRUE(run.out.empty()) << describe(run);
    for (const std::string& part : parts) {
      EXPECT_NE(run.err.find(part), std::string::npos) << "no '" << part << "'\n" << describe(run);
    }
  }

  testing::TempDir tmp_{"kvrag_test_cli"};
  std::string relu_;
};

TEST_F(CliGenerate, GreedyIdsMatchTheLibrary) {
  const CliRun run =
      run_kvrag({"generate", "--model", relu_, "--ids", "5,6,7,1", "--max-new-tokens", "12"});
  ASSERT_EQ(run.exit_code, 0) << describe(run);
  const std::vector<int32_t> want = library_ids({5, 6, 7, 1}, 12, 1);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(run.out, ids_line(want));
  EXPECT_NE(run.err.find("tokens/s"), std::string::npos) << describe(run);
}

TEST_F(CliGenerate, MinNewTokensAndRepeatedRuns) {
  const CliRun run = run_kvrag({"generate", "--model", relu_, "--ids", "8,9,1", "--max-new-tokens",
                                "12", "--min-new-tokens", "4", "--repeat", "2", "--threads", "1"});
  ASSERT_EQ(run.exit_code, 0) << describe(run);
  GenerationOptions options;
  options.max_new_tokens = 12;
  options.min_new_tokens = 4;
  const std::vector<int32_t> want =
      generate_text(load_t5_model(relu_), "", {8, 9, 1}, options).output_ids;
  ASSERT_GE(want.size(), 4u);
  EXPECT_EQ(run.out, ids_line(want));
  EXPECT_NE(ids_line(library_ids({8, 9, 1}, 12, 1)), run.out);  // without it: eos at once
  for (const char* part : {"load ", "run 1: ", "run 2: ", "first token ", "tokens/s"}) {
    EXPECT_NE(run.err.find(part), std::string::npos) << part << "\n" << describe(run);
  }
}

TEST_F(CliGenerate, BeamIdsMatchTheLibrary) {
  // Also the --name=value form and space-separated ids.
  const CliRun run = run_kvrag(
      {"generate", "--model=" + relu_, "--ids", "5 6 7 1", "--max-new-tokens", "12", "--beams=4"});
  ASSERT_EQ(run.exit_code, 0) << describe(run);
  EXPECT_EQ(run.out, ids_line(library_ids({5, 6, 7, 1}, 12, 4)));
}

TEST_F(CliGenerate, TextWithTokenizerPrintsText) {
  const fs::path dir = tmp_.path() / "model";
  testing::copy_model(relu_, dir);
  ASSERT_NO_FATAL_FAILURE(testing::train_tiny_spiece((dir / "spiece.model").string()));
  const auto model = load_t5_model(dir.string());
  GenerationOptions options;
  options.max_new_tokens = 12;
  const TextGeneration want = generate_text(model, "the quick brown fox", {}, options);
  ASSERT_FALSE(want.output_ids.empty());
  std::cout << "[cli] text output: '" << want.text << "'\n";

  // The words arrive as separate arguments and are joined with spaces.
  const CliRun run = run_kvrag(
      {"generate", "--model", dir.string(), "--max-new-tokens", "12", "the quick", "brown fox"});
  ASSERT_EQ(run.exit_code, 0) << describe(run);
  EXPECT_EQ(run.out, want.text + "\n");

  // With a tokenizer, --ids output is decoded too.
  const CliRun ids = run_kvrag({"generate", "--model", dir.string(), "--max-new-tokens", "12",
                                "--ids", join_ids(want.input_ids)});
  ASSERT_EQ(ids.exit_code, 0) << describe(ids);
  EXPECT_EQ(ids.out, want.text + "\n");
}

TEST_F(CliGenerate, MissingModelFolderNamesIt) {
  const std::string dir = tmp_.file("no_such_model");
  expect_failure({"generate", "--model", dir, "--ids", "5,1"}, 3, {dir});
}

TEST_F(CliGenerate, MissingTensorNamesIt) {
  const std::string name = "decoder.block.1.layer.1.EncDecAttention.k.weight";
  const fs::path dir = tmp_.path() / "model";
  testing::copy_model(relu_, dir, [&](std::vector<testing::NamedTensor>& tensors) {
    std::erase_if(tensors, [&](const testing::NamedTensor& t) { return t.name == name; });
  });
  expect_failure({"generate", "--model", dir.string(), "--ids", "5,1"}, 3, {"'" + name + "'"});
}

TEST_F(CliGenerate, TextWithoutTokenizerNamesSpieceModel) {
  expect_failure({"generate", "--model", relu_, "hello"}, 3, {"spiece.model"});
}

TEST_F(CliGenerate, BadOptionsExit2NamingTheOption) {
  expect_failure({"generate", "--model", relu_, "--ids", "5,1", "--beams", "0"}, 2,
                 {"--beams", "got 0"});
  expect_failure({"generate", "--model", relu_, "--ids", "5,1", "--bogus", "3"}, 2,
                 {"unknown option --bogus"});
  expect_failure({"generate", "--model", relu_, "--ids", "5,1", "--max-new-tokens", "ten"}, 2,
                 {"--max-new-tokens", "'ten'"});
  expect_failure({"generate", "--model", relu_, "--ids"}, 2, {"--ids needs a value"});
  expect_failure({"generate", "--ids", "5,1"}, 2, {"missing --model"});
  expect_failure({"generate", "--model", relu_}, 2, {"--ids"});
  expect_failure({"generate", "--model", relu_, "--ids", "5,1", "text"}, 2, {"not both"});
}

TEST_F(CliGenerate, BadIdsExit2NamingTheId) {
  expect_failure({"generate", "--model", relu_, "--ids", "5,x,1"}, 2, {"'x'"});
  expect_failure({"generate", "--model", relu_, "--ids", "5,-4,1"}, 2, {"'-4'"});
  // Out of the vocabulary (96), and out of int32: 2^32 + 5 must not wrap to 5.
  expect_failure({"generate", "--model", relu_, "--ids", "500,1"}, 2, {"500", "vocabulary"});
  expect_failure({"generate", "--model", relu_, "--ids", "4294967301,1"}, 2, {"4294967301"});
}

}  // namespace
}  // namespace kvrag
