#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/corpus_reader.h"

namespace kvrag {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A fresh directory under the system temp dir, removed with its contents.
class CorpusReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "kvrag_corpus_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(root_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(root_, ec);
  }

  // Writes `bytes` to root/relative (creating folders); returns the path.
  std::string write(const std::string& relative, const std::string& bytes) {
    const fs::path path = root_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
    return path.string();
  }
  std::string path(const std::string& relative) const { return (root_ / relative).string(); }

  fs::path root_;
};

// The reason `source` was skipped, or "(not skipped)".
std::string reason_for(const CorpusReadResult& result, const std::string& source) {
  for (const SkippedInput& s : result.skipped) {
    if (s.source == source) return s.reason;
  }
  return "(not skipped)";
}

std::vector<std::string> ids_of(const CorpusReadResult& result) {
  std::vector<std::string> ids;
  for (const Document& d : result.documents) ids.push_back(d.external_id);
  return ids;
}

using Ids = std::vector<std::string>;

TEST(NormalizeText, LineEndsBomAndTrailingWhitespace) {
  EXPECT_EQ(normalize_text("\xEF\xBB\xBF  \r\n\t\nHello  \r\n\r\n\r\nSecond para\t \rline\n\n \n"),
            "Hello\n\n\nSecond para\nline");
  EXPECT_EQ(normalize_text("  indented first line\n  kept"), "  indented first line\n  kept");
  EXPECT_EQ(normalize_text(" \r\n\t "), "");
  EXPECT_EQ(normalize_text(""), "");
}

// The words both lexical stores search for: punctuation and query syntax
// separate words, non-ASCII letters stay inside theirs.
TEST(LexicalQueryWords, RunsOfLettersDigitsAndNonAsciiBytes) {
  using Words = std::vector<std::string>;
  EXPECT_EQ(lexical_query_words("Where's the Drybrav? (1545)"),
            (Words{"Where", "s", "the", "Drybrav", "1545"}));
  EXPECT_EQ(lexical_query_words("\"a\" OR b* NEAR(c) -- ; DROP"),
            (Words{"a", "OR", "b", "NEAR", "c", "DROP"}));
  EXPECT_EQ(lexical_query_words("Zürich café"), (Words{"Zürich", "café"}));
  EXPECT_EQ(lexical_query_words(" ,.;!? "), Words{});
}

TEST(Utf8Error, AcceptsValidText) {
  for (const std::string ok : {"", "plain ASCII", "caf\xC3\xA9", "\xE2\x82\xAC euro",
                               "\xF0\x9F\x98\x80", "\xED\x9F\xBF",  // U+D7FF
                               "\xEE\x80\x80",                      // U+E000
                               "\xEF\xBF\xBF",                      // U+FFFF
                               "\xF4\x8F\xBF\xBF"}) {               // U+10FFFF
    EXPECT_EQ(utf8_error(ok), std::nullopt) << ok;
  }
}

TEST(Utf8Error, RejectsMalformedSequences) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"ab\xC0\xAF", "invalid UTF-8 at byte 2: overlong encoding"},
      {"\xC1\xBF", "invalid UTF-8 at byte 0: overlong encoding"},
      {"\xE0\x80\xAF", "invalid UTF-8 at byte 0: overlong encoding"},
      {"\xF0\x80\x80\xAF", "invalid UTF-8 at byte 0: overlong encoding"},
      {"x\xED\xA0\x80", "invalid UTF-8 at byte 1: UTF-16 surrogate"},
      {"\xED\xBF\xBF", "invalid UTF-8 at byte 0: UTF-16 surrogate"},
      {"\xF4\x90\x80\x80", "invalid UTF-8 at byte 0: code point above U+10FFFF"},
      {"\xF5\x80\x80\x80", "invalid UTF-8 at byte 0: invalid byte 0xF5"},
      {"ok\xFF", "invalid UTF-8 at byte 2: invalid byte 0xFF"},
      {"a\x80", "invalid UTF-8 at byte 1: unexpected continuation byte"},
      {"\xC3\xA9\xA9", "invalid UTF-8 at byte 2: unexpected continuation byte"},
      {"end\xE2\x82", "invalid UTF-8 at byte 3: truncated sequence"},
      {"\xE2\x82"
       "A",
       "invalid UTF-8 at byte 0: truncated sequence"},
      {"\xF0\x9F\x98", "invalid UTF-8 at byte 0: truncated sequence"},
  };
  for (const auto& [text, message] : cases) EXPECT_EQ(utf8_error(text), message);
}

TEST_F(CorpusReaderTest, TextFileGivenDirectly) {
  const std::string file =
      write("my_first-doc.txt", "\xEF\xBB\xBFHello  \r\n\r\nSecond para\t \r\nline\n\n\n");
  const CorpusReadResult result = read_corpus({file});
  EXPECT_TRUE(result.skipped.empty());
  ASSERT_EQ(result.documents.size(), 1u);
  const Document& d = result.documents[0];
  EXPECT_EQ(d.external_id, "my_first-doc.txt");
  EXPECT_EQ(d.title, "my first doc");
  EXPECT_EQ(d.source, file);
  EXPECT_EQ(d.text, "Hello\n\nSecond para\nline");
  EXPECT_EQ(d.metadata_json, "{}");
}

TEST_F(CorpusReaderTest, MarkdownTitleIsTheFirstLevelOneHeading) {
  const std::string titled = write("guide.md", "\n# Getting  *Started* ##\n\nBody text.\n");
  const std::string fenced =
      write("fenced.md", "Intro\n```bash\n# not a title\n```\n~~~\n# nor this\n~~~\n# Real\n");
  const std::string subheading = write("release_notes.md", "## Sub\n#hashtag\n    # code\nBody");
  const CorpusReadResult result = read_corpus({titled, fenced, subheading});
  EXPECT_TRUE(result.skipped.empty());
  ASSERT_EQ(result.documents.size(), 3u);
  EXPECT_EQ(result.documents[0].title, "Getting *Started*");
  EXPECT_EQ(result.documents[0].text, "# Getting  *Started* ##\n\nBody text.")
      << "the heading stays in the text";
  EXPECT_EQ(result.documents[1].title, "Real");
  EXPECT_EQ(result.documents[2].title, "release notes") << "no level-1 heading: the file name";
}

TEST_F(CorpusReaderTest, DirectoryIsReadRecursivelyInSortedOrder) {
  write("b.txt", "bee");
  write("a.md", "# Alpha\nalpha");
  write("UPPER.TXT", "upper");
  write("sub/c.txt", "sea");
  write("sub/deeper/d.jsonl", "{\"text\": \"dee\"}\n");
  write(".hidden.txt", "hidden");
  write(".git/config.txt", "hidden too");
  write("report.pdf", "%PDF");
  write("README", "no extension");
  write("empty.txt", "");
  fs::create_directory_symlink(root_ / "sub", root_ / "link_dir");
  fs::create_symlink(root_ / "b.txt", root_ / "link_file.txt");
  fs::create_symlink(root_ / "gone.txt", root_ / "broken.txt");
  ASSERT_EQ(::mkfifo(path("pipe.txt").c_str(), 0600), 0);

  const CorpusReadResult result = read_corpus({root_.string()});
  EXPECT_EQ(ids_of(result), (Ids{"UPPER.TXT", "a.md", "b.txt", "link_file.txt", "sub/c.txt",
                                 "sub/deeper/d.jsonl:1"}));
  ASSERT_EQ(result.documents.size(), 6u);
  EXPECT_EQ(result.documents[1].title, "Alpha");
  EXPECT_EQ(result.documents[1].source, path("a.md"));
  EXPECT_EQ(result.documents[3].text, "bee");
  EXPECT_EQ(result.documents[5].source, path("sub/deeper/d.jsonl") + ":1");
  EXPECT_EQ(result.documents[5].title, "");

  EXPECT_EQ(reason_for(result, path("README")), "no file extension (supported: .txt, .md, .jsonl)");
  EXPECT_EQ(reason_for(result, path("report.pdf")),
            "unsupported extension .pdf (supported: .txt, .md, .jsonl)");
  EXPECT_EQ(reason_for(result, path("empty.txt")), "empty file");
  EXPECT_EQ(reason_for(result, path("link_dir")), "symbolic link to a directory (not followed)");
  EXPECT_EQ(reason_for(result, path("broken.txt")), "broken symbolic link");
  EXPECT_EQ(reason_for(result, path("pipe.txt")), "not a regular file");
  EXPECT_EQ(result.skipped.size(), 6u) << "hidden files and folders are not reported";
}

TEST_F(CorpusReaderTest, JsonlDocuments) {
  const std::string file = write(
      "set.jsonl",
      "\xEF\xBB\xBF{\"id\": \"doc-1\", \"title\": \" A\\n title \", \"text\": \"first\\r\\ntext  "
      "\"}\n"
      "\n"
      "   \n"
      "{\"id\": 42, \"text\": \"second\", \"metadata\": {\"b\": {\"c\": \"\xC3\xA9\"}, \"a\": [1, "
      "2]}}\r\n"
      "{\"text\": \"third\", \"title\": null, \"metadata\": null, \"url\": \"ignored\"}\n"
      "{\"id\": null, \"text\": \"fourth\"}");
  const CorpusReadResult result = read_corpus({file});
  EXPECT_TRUE(result.skipped.empty())
      << result.skipped[0].source << ": " << result.skipped[0].reason;
  EXPECT_EQ(ids_of(result), (Ids{"doc-1", "42", "set.jsonl:5", "set.jsonl:6"}));
  ASSERT_EQ(result.documents.size(), 4u);
  EXPECT_EQ(result.documents[0].title, "A title");
  EXPECT_EQ(result.documents[0].text, "first\ntext");
  EXPECT_EQ(result.documents[0].source, file + ":1");
  EXPECT_EQ(result.documents[0].metadata_json, "{}");
  EXPECT_EQ(result.documents[1].source, file + ":4");
  EXPECT_EQ(result.documents[1].metadata_json, "{\"a\":[1,2],\"b\":{\"c\":\"\xC3\xA9\"}}");
  EXPECT_EQ(result.documents[2].title, "");
  EXPECT_EQ(result.documents[2].metadata_json, "{}");
}

TEST_F(CorpusReaderTest, BadJsonlLinesAreSkippedWithLineAndReason) {
  const std::vector<std::string> lines = {
      R"({"id": "good-1", "text": "kept"})",
      R"({not json)",
      R"([1, 2])",
      R"({"id": "x"})",
      R"({"text": ""})",
      "{\"text\": \"  \\n \\t\"}",
      R"({"text": 5})",
      R"({"text": "t", "id": 1.5})",
      R"({"text": "t", "id": ""})",
      R"({"text": "t", "id": true})",
      R"({"text": "t", "title": ["x"]})",
      R"({"text": "t", "metadata": "m"})",
      "{\"text\": \"caf\xC3\"}",
      R"({"text": "\ud800"})",
      R"({"text": "a\u0000b"})",
      R"({"text": "t"} trailing)",
      R"({"text": "t", "id": "a\u0000b"})",
      R"({"text": "t", "title": "T\u0000x"})",
      "",
      R"({"id": "good-2", "text": "kept too"})",
  };
  std::string bytes;
  for (const std::string& line : lines) bytes += line + "\n";
  const std::string file = write("mixed.jsonl", bytes);
  const CorpusReadResult result = read_corpus({file});

  EXPECT_EQ(ids_of(result), (Ids{"good-1", "good-2"}));
  const auto reason = [&](int line) {
    return reason_for(result, file + ":" + std::to_string(line));
  };
  EXPECT_EQ(reason(2),
            "invalid JSON: parse error at column 3: syntax error while parsing object key - "
            "invalid literal; last read: '{no'; expected string literal");
  EXPECT_EQ(reason(3), "not a JSON object (got array)");
  EXPECT_EQ(reason(4), "missing 'text'");
  EXPECT_EQ(reason(5), "'text' is empty");
  EXPECT_EQ(reason(6), "'text' is only whitespace");
  EXPECT_EQ(reason(7), "'text' must be a string, got number 5");
  EXPECT_EQ(reason(8), "'id' must be a non-empty string or an integer, got number 1.5");
  EXPECT_EQ(reason(9), "'id' must be a non-empty string or an integer, got string \"\"");
  EXPECT_EQ(reason(10), "'id' must be a non-empty string or an integer, got boolean true");
  EXPECT_EQ(reason(11), "'title' must be a string, got array [\"x\"]");
  EXPECT_EQ(reason(12), "'metadata' must be an object, got string \"m\"");
  EXPECT_EQ(reason(13), "invalid UTF-8 at byte 13 of the line: truncated sequence");
  EXPECT_THAT(reason(14), StartsWith("invalid JSON: "));
  EXPECT_THAT(reason(14), HasSubstr("surrogate"));
  EXPECT_EQ(reason(15), "'text' contains a NUL character");
  EXPECT_THAT(reason(16), StartsWith("invalid JSON: "));
  EXPECT_EQ(reason(17), "'id' contains a NUL character");
  EXPECT_EQ(reason(18), "'title' contains a NUL character");
  EXPECT_EQ(result.skipped.size(), 17u) << "the blank line 19 is not reported";
}

// nlohmann recurses per nesting level (dump, copy, destroy): a deeply
// nested line must be refused by the parser, not crash the process.
TEST_F(CorpusReaderTest, DeeplyNestedJsonlLineIsSkippedNotACrash) {
  const int depth = 100000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  const std::string file =
      write("deep.jsonl", R"({"id": "deep", "text": "t", "metadata": )" + nested + "}\n" +
                              R"({"id": "kept", "text": "kept"})" + "\n");
  const CorpusReadResult result = read_corpus({file});
  EXPECT_EQ(ids_of(result), (Ids{"kept"}));
  EXPECT_EQ(reason_for(result, file + ":1"), "JSON nested deeper than 64 levels");
}

TEST_F(CorpusReaderTest, EmptyWhitespaceAndBinaryFiles) {
  const std::string empty_txt = write("empty.txt", "");
  const std::string blank_md = write("blank.md", " \r\n\t\n");
  const std::string empty_jsonl = write("empty.jsonl", "");
  const std::string blank_jsonl = write("blank.jsonl", "\n  \n\r\n");
  const std::string binary = write("binary.txt", std::string("ab\0cd", 5));
  const std::string bad_utf8 = write("latin1.txt", "caf\xE9 au lait");
  const std::string good = write("good.txt", "fine");
  const CorpusReadResult result =
      read_corpus({empty_txt, blank_md, empty_jsonl, blank_jsonl, binary, bad_utf8, good});
  EXPECT_EQ(ids_of(result), Ids{"good.txt"});
  EXPECT_EQ(reason_for(result, empty_txt), "empty file");
  EXPECT_EQ(reason_for(result, blank_md), "no text (only whitespace)");
  EXPECT_EQ(reason_for(result, empty_jsonl), "empty file");
  EXPECT_EQ(reason_for(result, blank_jsonl), "no documents (only blank lines)");
  EXPECT_EQ(reason_for(result, binary), "contains a NUL byte at byte 2 (binary file?)");
  EXPECT_EQ(reason_for(result, bad_utf8), "invalid UTF-8 at byte 3: truncated sequence");
}

TEST_F(CorpusReaderTest, MissingPathsAndUnsupportedFilesAreSkippedTheRestIsRead) {
  const std::string first = write("first.txt", "one");
  const std::string pdf = write("paper.pdf", "%PDF-1.7");
  const std::string last = write("last.md", "two");
  const std::string missing = path("missing.txt");
  const CorpusReadResult result = read_corpus({first, missing, pdf, "", path("no/such/dir"), last});
  EXPECT_EQ(ids_of(result), (Ids{"first.txt", "last.md"}));
  ASSERT_EQ(result.skipped.size(), 4u);
  EXPECT_EQ(result.skipped[0].source, missing);
  EXPECT_EQ(result.skipped[0].reason, "no such file or directory");
  EXPECT_EQ(result.skipped[1].source, pdf);
  EXPECT_EQ(result.skipped[1].reason, "unsupported extension .pdf (supported: .txt, .md, .jsonl)");
  EXPECT_EQ(result.skipped[2].source, "");
  EXPECT_EQ(result.skipped[2].reason, "no such file or directory");
  EXPECT_EQ(result.skipped[3].reason, "no such file or directory");
}

TEST_F(CorpusReaderTest, UnreadableFileIsSkipped) {
  std::string file;
  if (::geteuid() != 0) {
    file = write("locked.txt", "secret");
    ASSERT_EQ(::chmod(file.c_str(), 0), 0);
  } else {
    // root reads any file despite its mode; reading /proc/self/mem at
    // offset 0 fails with EIO instead.
    file = path("mem.txt");
    fs::create_symlink("/proc/self/mem", file);
  }
  const std::string good = write("good.txt", "fine");
  const CorpusReadResult result = read_corpus({file, good});
  if (!result.skipped.empty() || result.documents.size() != 2) {
    EXPECT_THAT(reason_for(result, file), StartsWith("cannot read file: "));
    EXPECT_EQ(ids_of(result), Ids{"good.txt"});
  } else {
    GTEST_SKIP() << "this system let us read " << file;
  }
}

TEST_F(CorpusReaderTest, DuplicateIdsLastOneWins) {
  const std::string a = write("a.jsonl",
                              "{\"id\": \"x\", \"text\": \"old x\"}\n"
                              "{\"id\": \"y\", \"text\": \"only y\"}\n"
                              "{\"id\": 7, \"text\": \"seven\"}\n");
  const std::string b = write("b.jsonl",
                              "{\"id\": \"x\", \"text\": \"new x\"}\n"
                              "{\"id\": \"7\", \"text\": \"string seven\"}\n");
  const CorpusReadResult result = read_corpus({a, b});
  EXPECT_EQ(ids_of(result), (Ids{"y", "x", "7"}));
  ASSERT_EQ(result.documents.size(), 3u);
  EXPECT_EQ(result.documents[1].text, "new x");
  EXPECT_EQ(result.documents[2].text, "string seven") << "integer 7 and \"7\" are the same id";
  EXPECT_EQ(reason_for(result, a + ":1"),
            "replaced by a later document with the same id (" + b + ":1)");
  EXPECT_EQ(reason_for(result, a + ":3"),
            "replaced by a later document with the same id (" + b + ":2)");
  EXPECT_EQ(result.skipped.size(), 2u);
}

}  // namespace
}  // namespace kvrag
