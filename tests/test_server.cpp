// The HTTP API, tested as clients see it: a real server on a free loopback
// port in this process, over a small index built with the demo model, driven
// by cpp-httplib's client. Answers are compared with the pipeline's own.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "data/corpus_reader.h"
#include "pipeline/rag_pipeline.h"
#include "server/http_server.h"
#include "server/request_validation.h"
#include "tests/model_files.h"
#include "tests/sample_corpus.h"

namespace kvrag {
namespace {

using nlohmann::json;
using testing::kDemoModel;
using testing::kSampleCorpus;

constexpr int64_t kCorpusDocuments = 6;
constexpr int64_t kMaxBody = 64 * 1024;

// The first documents of the sample corpus: the demo model's own domain.
std::vector<Document> small_corpus() {
  CorpusReadResult read = read_corpus({kSampleCorpus});
  read.documents.resize(kCorpusDocuments);
  return read.documents;
}

// `depth` nested JSON arrays: "[[[…]]]".
std::string nested_arrays(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

// One event of a text/event-stream body.
struct Event {
  std::string name;
  json data;
};

std::vector<Event> parse_events(const std::string& body) {
  std::vector<Event> events;
  size_t start = 0;
  for (size_t end; (end = body.find("\n\n", start)) != std::string::npos; start = end + 2) {
    const std::string block = body.substr(start, end - start);
    const size_t newline = block.find('\n');
    EXPECT_EQ(block.rfind("event: ", 0), 0u) << block;
    EXPECT_EQ(block.compare(newline + 1, 6, "data: "), 0) << block;
    events.push_back({block.substr(7, newline - 7), json::parse(block.substr(newline + 7))});
  }
  EXPECT_EQ(start, body.size()) << "an event is not terminated: " << body.substr(start);
  return events;
}

class ServerTest : public ::testing::Test {
 protected:
  // A fresh index and server for every test, so tests that add documents or
  // count requests do not see each other's.
  void SetUp() override {
    pipeline_ = RagPipeline::create(dir_.file("index"), kDemoModel, IndexSettings{});
    pipeline_->add_documents(small_corpus());
    server::ServerOptions options;
    options.port = 0;
    options.threads = 4;
    options.max_body_bytes = kMaxBody;
    server_ = std::make_unique<server::HttpServer>(*pipeline_, options);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
  }

  void TearDown() override {
    server_->stop();
    thread_.join();
  }

  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(60, 0);
    return c;
  }

  httplib::Result post(const std::string& path, const json& body) const {
    return client()->Post(path.c_str(), body.dump(), "application/json");
  }

  // The body of a 200 response as JSON; fails the test otherwise.
  static json ok_json(const httplib::Result& res) {
    if (!res) {
      ADD_FAILURE() << "no response: " << httplib::to_string(res.error());
      return json();
    }
    EXPECT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    return json::parse(res->body);
  }

  void expect_healthy() const {
    const auto res = client()->Get("/healthz");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    const json body = json::parse(res->body);
    EXPECT_EQ(body["status"], "ready") << body;
    EXPECT_EQ(body["queues"]["answer"]["workers"], 4) << body;
  }

  // The /metrics text once it holds every line of `lines` (fails the test
  // after about 10 s). A request is counted once its response has been
  // written, so a scrape sent right after receiving it may still precede the
  // count; on two loaded cores (ctest -j) that gap can last a second or more.
  std::string scrape_metrics_with(const std::vector<std::string>& lines) const {
    std::string text;
    for (int attempt = 0; attempt < 500; ++attempt) {
      const auto res = client()->Get("/metrics");
      EXPECT_TRUE(res && res->status == 200);
      if (!res) return "";
      EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
      text = res->body;
      const bool all = std::all_of(lines.begin(), lines.end(), [&](const std::string& line) {
        return text.find(line) != std::string::npos;
      });
      if (all) return text;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (const std::string& line : lines) {
      EXPECT_NE(text.find(line), std::string::npos) << line << "not in\n" << text;
    }
    return text;
  }

  Answer direct_ask(const std::string& question, int64_t k, Mode mode = Mode::kCached) const {
    AskOptions options;
    options.k = k;
    options.mode = mode;
    return pipeline_->ask(question, options);
  }

  testing::TempDir dir_{"kvrag_test_server"};
  std::unique_ptr<RagPipeline> pipeline_;
  std::unique_ptr<server::HttpServer> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(ServerTest, HealthStatsAndPage) {
  expect_healthy();
  const json stats = ok_json(client()->Get("/v1/stats"));
  EXPECT_EQ(stats["documents"], kCorpusDocuments);
  EXPECT_GE(stats["chunks"].get<int64_t>(), kCorpusDocuments);
  EXPECT_GT(stats["kv_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(stats["index_type"], "Flat");
  EXPECT_EQ(stats["vectors"], stats["chunks"]);
  EXPECT_FALSE(stats["model"]["fingerprint"].get<std::string>().empty());
  EXPECT_EQ(stats["model"]["weights"], "f32");

  const auto page = client()->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<title>kvrag</title>"), std::string::npos);
  EXPECT_NE(page->body.find("\"/v1/ask\""), std::string::npos);
  // The form's k has the request defaults, not a copy of them.
  EXPECT_NE(page->body.find("max=\"" + std::to_string(kMaxK) + "\" value=\"" +
                            std::to_string(kDefaultK) + "\""),
            std::string::npos);
  EXPECT_EQ(page->body.find('@'), std::string::npos) << "a marker left in the page";
  // Self-contained: nothing is fetched from elsewhere.
  EXPECT_EQ(page->body.find("http://"), std::string::npos);
  EXPECT_EQ(page->body.find("https://"), std::string::npos);
}

TEST_F(ServerTest, AskAnswersAsThePipelineDoesInEveryMode) {
  const std::string question = "Where does the Drybrav rise?";
  const std::set<std::string> corpus_ids = {"doc-0001", "doc-0002", "doc-0003",
                                            "doc-0004", "doc-0005", "doc-0006"};
  for (const Mode mode : {Mode::kCached, Mode::kConcat, Mode::kFid}) {
    SCOPED_TRACE(mode_name(mode));
    const json body =
        ok_json(post("/v1/ask", {{"question", question}, {"k", 3}, {"mode", mode_name(mode)}}));
    const Answer expected = direct_ask(question, 3, mode);
    EXPECT_EQ(body["answer"], expected.text);
    EXPECT_FALSE(body["answer"].get<std::string>().empty());
    EXPECT_EQ(body["mode"], mode_name(mode));
    ASSERT_EQ(body["sources"].size(), 3u);
    double attention = body["question_attention"].get<double>();
    double prior = 0.0;
    for (size_t i = 0; i < 3; ++i) {
      const json& source = body["sources"][i];
      EXPECT_EQ(source["chunk_id"], expected.sources[i].chunk.chunk_id);
      EXPECT_TRUE(corpus_ids.count(source["document_id"].get<std::string>()));
      EXPECT_FALSE(source["title"].get<std::string>().empty());
      EXPECT_FALSE(source["text"].get<std::string>().empty());
      EXPECT_TRUE(source["score"].is_number());
      attention += source["attention"].get<double>();
      ASSERT_TRUE(expected.sources[i].prior.has_value()) << "the demo model declares its prior";
      EXPECT_DOUBLE_EQ(source["prior"].get<double>(), *expected.sources[i].prior);
      prior += source["prior"].get<double>();
    }
    EXPECT_NEAR(attention, 1.0, 1e-3);  // the shares cover all cross-attention
    EXPECT_NEAR(prior, 1.0, 1e-6);
    EXPECT_GT(body["timings_ms"]["total"].get<double>(), 0.0);
    EXPECT_EQ(body["generated_tokens"], expected.timings.generated_tokens);
  }
  const json unweighed =
      ok_json(post("/v1/ask", {{"question", question}, {"k", 3}, {"passage_prior", false}}));
  for (const json& source : unweighed["sources"]) EXPECT_TRUE(source["prior"].is_null());
}

TEST_F(ServerTest, SearchReturnsTheRetrievedChunks) {
  const json body = ok_json(
      post("/v1/search", {{"query", "Rolaer hats market town"}, {"k", 4}, {"retriever", "bm25"}}));
  const std::vector<RetrievedChunk> expected =
      pipeline_->retrieve("Rolaer hats market town", 4, RetrieverKind::kBm25);
  ASSERT_EQ(body["results"].size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(body["results"][i]["chunk_id"], expected[i].chunk_id);
    EXPECT_EQ(body["results"][i]["document_id"], expected[i].external_id);
    EXPECT_DOUBLE_EQ(body["results"][i]["score"].get<double>(), expected[i].score);
  }
  EXPECT_EQ(body["results"][0]["document_id"], "doc-0002");  // Wiafoundholt's Rolaer hats
}

TEST_F(ServerTest, DocumentsAreAddedReadAndDeleted) {
  const json doc = {{"id", "extra/1"},
                    {"title", "Quillmere"},
                    {"text", "Quillmere is a hamlet known for its zorbleberry orchards."},
                    {"metadata", {{"source", "test"}}}};
  const json added = ok_json(post("/v1/documents", {{"documents", {doc}}}));
  EXPECT_EQ(added["ids"], json({"extra/1"}));
  EXPECT_EQ(added["added"], 1);
  EXPECT_GE(added["chunks_added"].get<int64_t>(), 1);

  // Ids may hold '/', written percent-encoded or not.
  for (const char* path : {"/v1/documents/extra/1", "/v1/documents/extra%2F1"}) {
    const json got = ok_json(client()->Get(path));
    EXPECT_EQ(got["id"], "extra/1");
    EXPECT_EQ(got["title"], "Quillmere");
    EXPECT_EQ(got["text"], doc["text"]);
    EXPECT_EQ(got["metadata"], doc["metadata"]);
    EXPECT_EQ(got["source"], "http");
    ASSERT_GE(got["chunks"].size(), 1u);
    EXPECT_GT(got["chunks"][0]["tokens"].get<int64_t>(), 0);
  }
  const json found =
      ok_json(post("/v1/search", {{"query", "zorbleberry"}, {"k", 1}, {"retriever", "bm25"}}));
  EXPECT_EQ(found["results"][0]["document_id"], "extra/1");

  // Without an id, the id is a hash of the content: posting it again
  // changes nothing.
  const json anonymous = {{"documents", {{{"text", "Drennick is a village by a lake."}}}}};
  const json first = ok_json(post("/v1/documents", anonymous));
  const std::string id = first["ids"][0];
  EXPECT_EQ(id.rfind("doc-", 0), 0u);
  const json second = ok_json(post("/v1/documents", anonymous));
  EXPECT_EQ(second["ids"][0], id);
  EXPECT_EQ(second["unchanged"], 1);

  // A line break in an id: "." of the route's regex matched none.
  ok_json(
      post("/v1/documents", {{"documents", {{{"id", "two\nlines"}, {"text", "Orrin Vale."}}}}}));
  EXPECT_EQ(ok_json(client()->Get("/v1/documents/two%0Alines"))["id"], "two\nlines");
  EXPECT_EQ(ok_json(client()->Delete("/v1/documents/two%0Alines"))["deleted"], "two\nlines");

  const json deleted = ok_json(client()->Delete("/v1/documents/extra/1"));
  EXPECT_EQ(deleted["deleted"], "extra/1");
  for (const auto& res :
       {client()->Get("/v1/documents/extra/1"), client()->Delete("/v1/documents/extra/1")}) {
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404);
    EXPECT_EQ(json::parse(res->body)["error"]["message"], "no document with id 'extra/1'");
  }
  EXPECT_EQ(ok_json(client()->Get("/v1/stats"))["documents"], kCorpusDocuments + 1);
}

struct BadRequest {
  std::string method;
  std::string path;
  std::string body;
  int status;
  std::string code;
  std::string message;  // a part of the error message
};

TEST_F(ServerTest, BadInputsGetTheRightStatusAndMessage) {
  const std::string long_question(kMaxQuestionBytes + 1, 'a');
  const std::string oversized = json({{"question", std::string(kMaxBody, 'a')}}).dump();
  const std::string long_title(kMaxTitleBytes + 1, 't');
  const std::string long_id(kMaxIdBytes + 1, 'i');
  std::string many_words = "the";
  for (int i = 1; i < 300; ++i) many_words += " the";
  const std::vector<BadRequest> cases = {
      {"POST", "/v1/ask", "{\"question\": ", 400, "invalid_argument", "malformed JSON body"},
      {"POST", "/v1/ask", "", 400, "invalid_argument", "malformed JSON body"},
      {"POST", "/v1/ask", "[1]", 400, "invalid_argument", "must be a JSON object, got an array"},
      {"POST", "/v1/ask", "{}", 400, "invalid_argument", "missing field 'question'"},
      {"POST", "/v1/ask", R"({"question": 7})", 400, "invalid_argument",
       "field 'question' must be a string, got an integer"},
      {"POST", "/v1/ask", R"({"question": " \n "})", 400, "invalid_argument",
       "field 'question' is empty"},
      {"POST", "/v1/ask", json({{"question", long_question}}).dump(), 400, "invalid_argument",
       "field 'question' is 4097 bytes, more than the limit of 4096"},
      {"POST", "/v1/ask", R"({"question": "q", "k": 0})", 400, "invalid_argument",
       "field 'k' must be an integer in 1..100, got 0"},
      {"POST", "/v1/ask", R"({"question": "q", "k": 101})", 400, "invalid_argument",
       "field 'k' must be an integer in 1..100, got 101"},
      {"POST", "/v1/ask", R"({"question": "q", "k": "5"})", 400, "invalid_argument",
       "field 'k' must be an integer in 1..100, got a string"},
      {"POST", "/v1/ask", R"({"question": "q", "k": 2.5})", 400, "invalid_argument",
       "field 'k' must be an integer in 1..100, got 2.5"},
      {"POST", "/v1/ask", R"({"question": "q", "k": 18446744073709551615})", 400,
       "invalid_argument", "field 'k' must be an integer in 1..100"},
      {"POST", "/v1/ask", R"({"question": "q", "max_new_tokens": 513})", 400, "invalid_argument",
       "field 'max_new_tokens' must be an integer in 1..512, got 513"},
      {"POST", "/v1/ask", R"({"question": "q", "num_beams": 17})", 400, "invalid_argument",
       "field 'num_beams' must be an integer in 1..16, got 17"},
      {"POST", "/v1/ask", R"({"question": "q", "mode": "fast"})", 400, "invalid_argument",
       "field 'mode': "},
      {"POST", "/v1/ask", R"({"question": "q", "mode": 1})", 400, "invalid_argument",
       "field 'mode' must be a string, got an integer"},
      {"POST", "/v1/ask", R"({"question": "q", "retriever": "grep"})", 400, "invalid_argument",
       "field 'retriever': "},
      {"POST", "/v1/ask", R"({"question": "q", "stream": "yes"})", 400, "invalid_argument",
       "field 'stream' must be a boolean, got a string"},
      {"POST", "/v1/ask", R"({"question": "q", "passage_prior": "off"})", 400, "invalid_argument",
       "field 'passage_prior' must be a boolean, got a string"},
      {"POST", "/v1/ask", R"({"question": "q", "top_k": 3})", 400, "invalid_argument",
       "unknown field 'top_k' (known fields: k, max_new_tokens, mode, num_beams, passage_prior, "
       "question, retriever, stream, timeout_ms)"},
      {"POST", "/v1/ask", oversized, 413, "payload_too_large",
       "larger than the limit of 65536 bytes (--max-body-bytes)"},
      {"POST", "/v1/ask", R"({"question": "q", "k": [[1]]})", 400, "invalid_argument",
       "field 'k' must be an integer in 1..100, got an array"},
      {"POST", "/v1/search", R"({"query": "q", "k": )" + nested_arrays(65) + "}", 400,
       "invalid_argument", "malformed JSON body: JSON nested deeper than 64 levels"},
      {"POST", "/v1/search", R"({"q": "x"})", 400, "invalid_argument", "unknown field 'q'"},
      {"POST", "/v1/search", R"({"query": "x", "k": -1})", 400, "invalid_argument",
       "field 'k' must be an integer in 1..100, got -1"},
      {"POST", "/v1/documents", "{}", 400, "invalid_argument", "missing field 'documents'"},
      {"POST", "/v1/documents", R"({"documents": {}})", 400, "invalid_argument",
       "field 'documents' must be an array, got an object"},
      {"POST", "/v1/documents", R"({"documents": []})", 400, "invalid_argument",
       "field 'documents' is empty"},
      {"POST", "/v1/documents", R"({"documents": ["text"]})", 400, "invalid_argument",
       "field 'documents[0]' must be an object, got a string"},
      {"POST", "/v1/documents", R"({"documents": [{"title": "t"}]})", 400, "invalid_argument",
       "missing field 'documents[0].text'"},
      {"POST", "/v1/documents", R"({"documents": [{"text": " \n"}]})", 400, "invalid_argument",
       "field 'documents[0].text' is empty"},
      {"POST", "/v1/documents", R"({"documents": [{"text": "a\u0000b"}]})", 400, "invalid_argument",
       "field 'documents[0].text' contains a NUL character"},
      {"POST", "/v1/documents", R"({"documents": [{"text": "a", "id": true}]})", 400,
       "invalid_argument", "field 'documents[0].id' must be a string or an integer, got a boolean"},
      {"POST", "/v1/documents", R"({"documents": [{"text": "a", "metadata": [1]}]})", 400,
       "invalid_argument", "field 'documents[0].metadata' must be an object, got an array"},
      {"POST", "/v1/documents",
       json({{"documents", {{{"text", "a"}, {"title", long_title}}}}}).dump(), 400,
       "invalid_argument", "field 'documents[0].title' is 1025 bytes, more than the limit of 1024"},
      {"POST", "/v1/documents", json({{"documents", {{{"text", "a"}, {"id", long_id}}}}}).dump(),
       400, "invalid_argument", "field 'documents[0].id' is 257 bytes, more than the limit of 256"},
      {"POST", "/v1/documents", R"({"documents": [{"text": "a", "url": "x"}]})", 400,
       "invalid_argument", "unknown field 'documents[0].url'"},
      {"POST", "/v1/documents",
       R"({"documents": [{"text": "a", "id": 5}, {"text": "b", "id": "5"}]})", 400,
       "invalid_argument", "field 'documents[1].id': '5' is given twice in this request"},
      // Numbers beyond double range, named by their field on every JSON route.
      {"POST", "/v1/ask", R"({"question": "x", "k": 1e999})", 400, "invalid_argument",
       "field 'k': number 1e999 is out of range (JSON numbers must fit in a double)"},
      {"POST", "/v1/search", R"({"query": "x", "k": -1e400})", 400, "invalid_argument",
       "field 'k': number -1e400 is out of range"},
      {"POST", "/v1/documents", R"({"documents": [{"text": "a", "metadata": {"n": 1e999}}]})", 400,
       "invalid_argument", "field 'documents[0].metadata.n': number 1e999 is out of range"},
      // NUL and invalid UTF-8 in every text field, named.
      {"POST", "/v1/ask", R"({"question": "a\u0000b"})", 400, "invalid_argument",
       "field 'question' contains a NUL character (byte 1)"},
      {"POST", "/v1/search", R"({"query": "\u0000"})", 400, "invalid_argument",
       "field 'query' contains a NUL character (byte 0)"},
      {"POST", "/v1/documents", R"({"documents": [{"text": "a", "id": "x\u0000y"}]})", 400,
       "invalid_argument", "field 'documents[0].id' contains a NUL character (byte 1)"},
      {"POST", "/v1/documents", R"({"documents": [{"text": "a", "title": "t\u0000"}]})", 400,
       "invalid_argument", "field 'documents[0].title' contains a NUL character (byte 1)"},
      {"POST", "/v1/documents", "{\"documents\": [{\"text\": \"a\", \"title\": \"\xc3\"}]}", 400,
       "invalid_argument", "(in field 'documents[0].title')"},
      {"POST", "/v1/ask", "{\"question\": \"\xed\xa0\x80\"}", 400, "invalid_argument",
       "(in field 'question')"},
      {"GET", "/v1/documents/a%00b", "", 400, "invalid_argument",
       "field 'id' contains a NUL character (byte 1)"},
      {"DELETE", "/v1/documents/%ff", "", 400, "invalid_argument",
       "field 'id' is not valid UTF-8: invalid UTF-8 at byte 0"},
      {"POST", "/v1/ask", json({{"question", many_words}}).dump(), 400, "invalid_argument",
       "field 'question' has 300 tokens, more than the limit of 256 tokens"},
      // Streamed: refused before the headers, not as a 200 with an error event.
      {"POST", "/v1/ask", json({{"question", many_words}, {"stream", true}}).dump(), 400,
       "invalid_argument", "field 'question' has 300 tokens, more than the limit of 256 tokens"},
      {"GET", "/v1/documents/nope", "", 404, "not_found", "no document with id 'nope'"},
      {"DELETE", "/v1/documents/nope", "", 404, "not_found", "no document with id 'nope'"},
      {"GET", "/v2/ask", "", 404, "not_found", "no route for GET /v2/ask"},
      {"POST", "/nowhere", "{}", 404, "not_found", "no route for POST /nowhere"},
      {"GET", "/v1/ask", "", 405, "method_not_allowed",
       "GET is not allowed on /v1/ask (allowed: POST)"},
      {"PUT", "/v1/documents/x", "{}", 405, "method_not_allowed",
       "PUT is not allowed on /v1/documents/x (allowed: GET, HEAD, DELETE)"},
      {"DELETE", "/healthz", "", 405, "method_not_allowed", "(allowed: GET, HEAD)"},
  };
  for (const BadRequest& bad : cases) {
    SCOPED_TRACE(bad.method + " " + bad.path + " " + bad.body.substr(0, 80));
    const auto c = client();
    httplib::Result res = bad.method == "GET"      ? c->Get(bad.path.c_str())
                          : bad.method == "DELETE" ? c->Delete(bad.path.c_str())
                          : bad.method == "PUT"
                              ? c->Put(bad.path.c_str(), bad.body, "application/json")
                              : c->Post(bad.path.c_str(), bad.body, "application/json");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, bad.status) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    const json body = json::parse(res->body);
    EXPECT_EQ(body["error"]["code"], bad.code);
    EXPECT_NE(body["error"]["message"].get<std::string>().find(bad.message), std::string::npos)
        << body["error"]["message"];
    if (bad.status == 405) {
      EXPECT_FALSE(res->get_header_value("Allow").empty());
    }
    expect_healthy();
  }
  // A chunked body (no Content-Length to refuse it by) is answered as any
  // other, and one over the limit is 413 like a Content-Length one.
  const auto post_chunked = [&](const std::string& body) {
    return client()->Post(
        "/v1/ask",
        [&body](size_t, httplib::DataSink& sink) {
          for (size_t at = 0; at < body.size(); at += 4096) {
            sink.write(body.data() + at, std::min<size_t>(4096, body.size() - at));
          }
          sink.done();
          return true;
        },
        "application/json");
  };
  const auto small = post_chunked(R"({"question": "Where is Wiafoundholt?", "k": 2})");
  ASSERT_TRUE(small) << httplib::to_string(small.error());
  EXPECT_EQ(small->status, 200) << small->body;
  const auto large = post_chunked(oversized);
  ASSERT_TRUE(large) << httplib::to_string(large.error());
  EXPECT_EQ(large->status, 413);
  EXPECT_EQ(json::parse(large->body)["error"]["code"], "payload_too_large");
  expect_healthy();

  // Every request above was counted under its route and status.
  scrape_metrics_with(
      {"kvrag_http_requests_total{route=\"/v1/ask\",method=\"POST\",status=\"413\"} 2\n",
       "kvrag_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1\n"});
  EXPECT_EQ(ok_json(client()->Get("/v1/stats"))["documents"],
            kCorpusDocuments);  // nothing was added
}

// Sends `request` as raw bytes and returns the response: its head and as
// much body as its Content-Length says (or what came within 10 s). Not
// read until the connection closes: cpp-httplib keeps it open.
std::string raw_exchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string reply;
  char buffer[4096];
  const auto complete = [&reply] {
    const size_t head_end = reply.find("\r\n\r\n");
    const size_t at = reply.find("Content-Length: ");
    if (head_end == std::string::npos || at == std::string::npos) return false;
    return reply.size() >= head_end + 4 + std::stoul(reply.substr(at + 16));
  };
  for (ssize_t n; !complete() && (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
    reply.append(buffer, n);
  }
  ::close(fd);
  return reply;
}

TEST_F(ServerTest, ProtocolErrorsAreAnsweredAtOnceWithTheirStatus) {
  struct RawCase {
    std::string request;
    std::string status_line;
    std::string message;
  };
  const std::vector<RawCase> cases = {
      {"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
       "Content-Length: -5\r\n\r\n",
       "HTTP/1.1 400 ", "invalid Content-Length header"},
      {"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\n", "HTTP/1.1 400 ",
       "invalid Content-Length header"},
      {"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 ", "TRACE is not allowed on /"},
      // No length (curl -X POST without -d): the body was read until the
      // read timeout, then refused with a vague 400.
      {"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n",
       "HTTP/1.1 411 ", "POST /v1/ask needs a body with a Content-Length header"},
      {"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
       "\r\nhi",
       "HTTP/1.1 415 ",
       "the request body must be JSON (Content-Type: application/json), got "
       "Content-Type 'text/plain'"},
  };
  for (const RawCase& c : cases) {
    SCOPED_TRACE(c.request);
    const auto start = std::chrono::steady_clock::now();
    const std::string reply = raw_exchange(port_, c.request);
    // Before: "-5" was read as 2^64 - 5 and answered 413 after 5 s.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
    EXPECT_EQ(reply.rfind(c.status_line, 0), 0u) << reply;
    EXPECT_NE(reply.find(c.message), std::string::npos) << reply;
    EXPECT_NE(reply.find("Content-Type: application/json"), std::string::npos) << reply;
  }
  // A multipart form and a urlencoded one, as browsers and curl -d send.
  const auto c = client();
  const auto multipart =
      c->Post("/v1/ask", httplib::MultipartFormDataItems{{"question", "Where?", "", ""}});
  ASSERT_TRUE(multipart);
  EXPECT_EQ(multipart->status, 415) << multipart->body;
  EXPECT_EQ(json::parse(multipart->body)["error"]["code"], "unsupported_media_type");
  const auto form = client()->Post("/v1/documents", "text=a", "application/x-www-form-urlencoded");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 415) << form->body;
  // JSON with a charset, or a +json type, is JSON.
  const auto charset = client()->Post("/v1/search", R"({"query": "Wiafoundholt", "k": 1})",
                                      "application/json; charset=utf-8");
  ASSERT_TRUE(charset);
  EXPECT_EQ(charset->status, 200) << charset->body;
  expect_healthy();
}

TEST(ServerEmptyIndex, AskIsAConflictInEveryModeStreamedOrNot) {
  testing::TempDir dir("kvrag_test_server_empty");
  const auto pipeline = RagPipeline::create(dir.file("index"), kDemoModel, IndexSettings{});
  server::ServerOptions options;
  options.port = 0;
  options.threads = 2;
  server::HttpServer server(*pipeline, options);
  const int port = server.bind();
  std::thread thread([&server] { server.serve(); });
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  for (const char* mode : {"cached", "concat", "fid"}) {
    for (const bool stream : {false, true}) {
      const auto res = client.Post(
          "/v1/ask", json({{"question", "Where?"}, {"mode", mode}, {"stream", stream}}).dump(),
          "application/json");
      ASSERT_TRUE(res);
      EXPECT_EQ(res->status, 409) << mode << (stream ? " streamed " : " ") << res->body;
      const json body = json::parse(res->body);
      EXPECT_EQ(body["error"]["code"], "conflict");
      EXPECT_NE(body["error"]["message"].get<std::string>().find("holds no documents"),
                std::string::npos)
          << body;
    }
  }
  server.stop();
  thread.join();
}

TEST_F(ServerTest, MetricsCountRequestsAnswersAndTheIndex) {
  ok_json(post("/v1/ask", {{"question", "Who founded Roulton?"}, {"k", 2}}));
  ok_json(post("/v1/ask", {{"question", "Who founded Roulton?"}, {"k", 2}, {"mode", "fid"}}));
  const std::string text = scrape_metrics_with(
      {"kvrag_http_requests_total{route=\"/v1/ask\",method=\"POST\",status=\"200\"} 2\n",
       "kvrag_answer_duration_seconds_count{mode=\"cached\"} 1\n",
       "kvrag_answer_duration_seconds_count{mode=\"fid\"} 1\n",
       "kvrag_answer_duration_seconds_count{mode=\"concat\"} 0\n",
       "kvrag_answer_duration_seconds_bucket{mode=\"cached\",le=\"+Inf\"} 1\n",
       "# TYPE kvrag_answer_duration_seconds histogram\n", "kvrag_documents 6\n",
       "# TYPE kvrag_kv_cache_hits_total counter\n",
       "# TYPE kvrag_kv_cache_misses_total counter\n"});
  const IndexStats stats = pipeline_->stats();
  EXPECT_NE(text.find("kvrag_chunks " + std::to_string(stats.store.chunks) + "\n"),
            std::string::npos);
  EXPECT_NE(
      text.find("kvrag_kv_cache_misses_total " + std::to_string(stats.kv_cache_misses) + "\n"),
      std::string::npos);
  EXPECT_EQ(text.find("kvrag_generated_tokens_total{mode=\"cached\"} 0\n"), std::string::npos);
}

TEST_F(ServerTest, StreamingGivesTheSameAnswerAsNonStreaming) {
  const json request = {{"question", "Who first mapped the Drybrav?"}, {"k", 3}};
  const json plain = ok_json(post("/v1/ask", request));
  json streamed_request = request;
  streamed_request["stream"] = true;
  const auto res = post("/v1/ask", streamed_request);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const std::vector<Event> events = parse_events(res->body);
  ASSERT_GE(events.size(), 2u);
  std::string pieces;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i].name, "piece");
    pieces += events[i].data["text"].get<std::string>();
  }
  const Event& done = events.back();
  ASSERT_EQ(done.name, "done");
  EXPECT_EQ(done.data["answer"], plain["answer"]);
  EXPECT_EQ(pieces, plain["answer"]);
  EXPECT_EQ(done.data["sources"], plain["sources"]);
  EXPECT_TRUE(done.data["timings_ms"].contains("first_token"));
}

TEST_F(ServerTest, ParallelClientsAreAllAnsweredCorrectly) {
  const std::vector<std::string> questions = {
      "What is the length of the Drybrav river?",  "Where is Wiafoundholt?",
      "What is the mayor of Stiazerkholt called?", "When was the Silent Harvest launched?",
      "How many bridges cross the Drybrav?",       "What did Zora Maen invent?"};
  std::vector<std::string> expected;
  for (const std::string& q : questions) expected.push_back(direct_ask(q, 2).text);

  constexpr int kClients = 6;
  constexpr int kQuestionsEach = 4;
  std::atomic<int> correct{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const auto http = client();
      for (int m = 0; m < kQuestionsEach; ++m) {
        const size_t q = static_cast<size_t>(c + m) % questions.size();
        const auto res = http->Post("/v1/ask", json({{"question", questions[q]}, {"k", 2}}).dump(),
                                    "application/json");
        if (res && res->status == 200 && json::parse(res->body)["answer"] == expected[q]) ++correct;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(correct.load(), kClients * kQuestionsEach);
}

TEST_F(ServerTest, DocumentsAddedDuringQuestionsBecomeSearchable) {
  std::atomic<bool> writing{true};
  std::atomic<int> asked{0}, failed{0};
  std::vector<std::thread> askers;
  for (int i = 0; i < 3; ++i) {
    askers.emplace_back([&] {
      const auto http = client();
      // At least once: on loaded cores a thread may start after the writes.
      do {
        const auto res =
            http->Post("/v1/ask", json({{"question", "Where is Wiafoundholt?"}, {"k", 3}}).dump(),
                       "application/json");
        (res && res->status == 200 ? asked : failed)++;
      } while (writing);
    });
  }
  constexpr int kAdded = 4;
  const std::vector<std::string> words = {"quorvex", "blintaph", "zendrique", "mollusket"};
  for (int i = 0; i < kAdded; ++i) {
    const json doc = {{"id", "live-" + std::to_string(i)},
                      {"title", "Live " + std::to_string(i)},
                      {"text", "The " + words[i] + " is a lantern festival held every spring."}};
    ok_json(post("/v1/documents", {{"documents", {doc}}}));
  }
  writing = false;
  for (std::thread& t : askers) t.join();
  EXPECT_GT(asked.load(), 0);
  EXPECT_EQ(failed.load(), 0);

  for (int i = 0; i < kAdded; ++i) {
    const json found =
        ok_json(post("/v1/search", {{"query", words[i]}, {"k", 1}, {"retriever", "bm25"}}));
    EXPECT_EQ(found["results"][0]["document_id"], "live-" + std::to_string(i));
  }
  const json stats = ok_json(client()->Get("/v1/stats"));
  EXPECT_EQ(stats["documents"], kCorpusDocuments + kAdded);
  EXPECT_EQ(stats["vectors"], stats["chunks"]);
}

TEST_F(ServerTest, DeeplyNestedBodiesAreRefusedWithoutCrashing) {
  // 100,000 nested arrays (200 KB): under a body limit of 1 MB, so only the
  // parser's nesting bound stands between them and a stack overflow in
  // nlohmann's recursive copy, dump and comparison.
  server::ServerOptions options;
  options.port = 0;
  options.max_body_bytes = 1 << 20;
  server::HttpServer roomy(*pipeline_, options);
  const int port = roomy.bind();
  std::thread serving([&] { roomy.serve(); });
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(60, 0);

  const std::string deep = nested_arrays(100000);
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"/v1/ask", R"({"question": "x", "k": )" + deep + "}"},
      {"/v1/search", R"({"query": "x", "k": )" + deep + "}"},
      {"/v1/documents", R"({"documents": [{"text": "a", "metadata": {"m": )" + deep + "}}]}"},
  };
  for (const auto& [path, body] : requests) {
    SCOPED_TRACE(path);
    const auto res = http.Post(path.c_str(), body, "application/json");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 400);
    const json error = json::parse(res->body)["error"];
    EXPECT_EQ(error["code"], "invalid_argument");
    EXPECT_NE(error["message"].get<std::string>().find("JSON nested deeper than 64 levels"),
              std::string::npos)
        << error["message"];
    const auto health = http.Get("/healthz");
    ASSERT_TRUE(health) << httplib::to_string(health.error());
    EXPECT_EQ(health->status, 200);
  }
  // Metadata nested within the bound is stored and given back whole.
  json metadata = {{"leaf", 1}};
  for (int level = 0; level < 50; ++level) metadata = {{"m", std::move(metadata)}};
  const json doc = {{"id", "nested"}, {"text", "A nested note."}, {"metadata", metadata}};
  ok_json(http.Post("/v1/documents", json({{"documents", {doc}}}).dump(), "application/json"));
  EXPECT_EQ(ok_json(http.Get("/v1/documents/nested"))["metadata"], metadata);

  roomy.stop();
  serving.join();
  expect_healthy();
  EXPECT_EQ(ok_json(client()->Get("/v1/stats"))["documents"], kCorpusDocuments + 1);
}

TEST_F(ServerTest, DocumentsDeletedAndReAddedDuringQuestionsNeverFailThem) {
  // Readers retrieve the churned document (its words are in every query)
  // while it is deleted and added again: a chunk found by retrieval may be
  // gone by the time its text or K/V is read, which must not turn into a
  // 404 or 500 for the reader.
  const json churned = {
      {"id", "churn"},
      {"title", "Quorvex"},
      {"text", "The quorvex lantern festival is held every spring in Wiafoundholt."}};
  const std::string query = "quorvex lantern festival Wiafoundholt";
  ok_json(post("/v1/documents", {{"documents", {churned}}}));

  std::atomic<bool> churning{true};
  std::atomic<int> answered{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      const auto http = client();
      int turn = r;
      do {  // at least once: on loaded cores a thread may start after the churn
        const bool ask = turn % 2 == 0;
        const std::string retriever = turn % 4 < 2 ? "dense" : "bm25";
        const json body = ask ? json({{"question", query},
                                      {"k", 3},
                                      {"retriever", retriever},
                                      {"max_new_tokens", 8}})
                              : json({{"query", query}, {"k", 3}, {"retriever", retriever}});
        const auto res =
            http->Post(ask ? "/v1/ask" : "/v1/search", body.dump(), "application/json");
        if (res && res->status == 200) {
          ++answered;
        } else {
          const std::lock_guard<std::mutex> lock(failures_mutex);
          failures.push_back((ask ? "ask/" : "search/") + retriever + ": " +
                             (res ? std::to_string(res->status) + " " + res->body
                                  : httplib::to_string(res.error())));
        }
        ++turn;
      } while (churning);
    });
  }
  constexpr int kRounds = 24;
  for (int round = 0; round < kRounds; ++round) {
    ok_json(client()->Delete("/v1/documents/churn"));
    ok_json(post("/v1/documents", {{"documents", {churned}}}));
  }
  churning = false;
  for (std::thread& t : readers) t.join();
  EXPECT_GE(answered.load(), 3);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, the first: " << failures.front();

  const json found =
      ok_json(post("/v1/search", {{"query", "quorvex"}, {"k", 1}, {"retriever", "bm25"}}));
  EXPECT_EQ(found["results"][0]["document_id"], "churn");
  const json stats = ok_json(client()->Get("/v1/stats"));
  EXPECT_EQ(stats["documents"], kCorpusDocuments + 1);
  EXPECT_EQ(stats["vectors"], stats["chunks"]);
}

TEST_F(ServerTest, APortInUseIsAClearError) {
  server::ServerOptions options;
  options.port = port_;
  server::HttpServer second(*pipeline_, options);
  EXPECT_TRUE(testing::throws_error(
      [&] { second.bind(); }, ErrorKind::kUnavailable,
      {"cannot listen on 127.0.0.1:" + std::to_string(port_), "Address already in use"}));
}

TEST_F(ServerTest, StopBeforeServeReturnsAtOnce) {
  server::ServerOptions options;
  options.port = 0;
  server::HttpServer other(*pipeline_, options);
  other.bind();
  other.stop();
  other.serve();  // returns: the stop was requested first
  expect_healthy();
}

}  // namespace
}  // namespace kvrag
