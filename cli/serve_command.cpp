// kvrag serve: the HTTP API and its page over one index folder.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "cli/args.h"
#include "cli/ask_args.h"
#include "cli/commands.h"
#include "cli/open_args.h"
#include "core/error.h"
#include "core/parallel.h"
#include "pipeline/rag_pipeline.h"
#include "server/http_server.h"

namespace kvrag::cli {
namespace {

// Built once from ServerOptions' and the pipeline's defaults (one home each).
const char* serve_usage() {
  static const std::string usage = [] {
    const server::ServerOptions defaults;
    std::ostringstream out;
    out << "usage: kvrag serve --index PATH|URI [--model DIR] [--embedder DIR] [--host 127.0.0.1]\n"
           "                   [--port 8080]\n"
           "                   [--threads N] [--queue-size N] [--ingest-queue-size N]\n"
           "                   [--request-timeout-s S] [--header-timeout-s S]\n"
           "                   [--max-body-bytes N] [--kv-cache-mb N] [--decode-batch N]\n"
           "                   "
        << kWeightsSynopsis
        << "\n"
           "  Serves the HTTP API (POST /v1/ask, /v1/search, /v1/documents; GET and\n"
           "  DELETE /v1/documents/ID; GET /healthz, /v1/stats, /metrics) and a page\n"
           "  to ask from at /. --model: the model folder, by default the one the\n"
           "  index was built with; given, an index that does not exist yet is\n"
           "  created empty (fill it with POST /v1/documents), with --embedder as\n"
           "  its embedder (kvrag index --embedder). --port 0 picks a free\n"
           "  port. --threads: answering workers (default: one per CPU, and at least\n"
           "  --decode-batch). --decode-batch: greedy asks decoded together, one\n"
           "  decoder pass for all of them (default "
        << kDefaultDecodeBatch << " when a decoder step reads at least "
        << (kBatchDecodingMinStepBytes >> 20)
        << " MiB of\n"
           "  weights, else 1: each ask alone).\n"
           "  --queue-size: asks that may wait for a worker (default 4 per worker);\n"
           "  --ingest-queue-size: document writes that may wait for the ingestion\n"
           "  worker (default "
        << defaults.ingest_queue_size
        << "); beyond either, 503 with Retry-After at once.\n"
           "  --request-timeout-s: an ask's deadline unless it sends timeout_ms\n"
           "  (default "
        << kDefaultRequestTimeoutS
        << "); past it, 504. --header-timeout-s: a connection that has not sent\n"
           "  its request head within this is closed (default "
        << defaults.connection.header_timeout.count() / 1000
        << ").\n"
           "  --max-body-bytes: larger request bodies are refused with 413 (default "
        << defaults.max_body_bytes
        << ").\n"
           "  --kv-cache-mb: RAM cache of chunk K/V (default 256, 0 disables it).\n"
           "  SIGINT or SIGTERM finish the requests in flight, then exit.\n"
        << kWeightsUsage;
    return out.str();
  }();
  return usage.c_str();
}

// SIGINT and SIGTERM are turned into a byte on this pipe, read by a thread
// that stops the server: a signal handler may only do async-signal-safe
// work, and threads started before main (OpenBLAS's pool) make blocking the
// signals and sigwait() unreliable. A 0 byte wakes the thread without a signal.
int stop_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int signal) {
  const char byte = static_cast<char>(signal);
  [[maybe_unused]] const ssize_t written = write(stop_pipe[1], &byte, 1);
}

void install_stop_signals() {
  KVRAG_CHECK(pipe(stop_pipe) == 0, kIo, "cannot create a pipe for SIGINT and SIGTERM");
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  KVRAG_CHECK(sigaction(SIGINT, &action, nullptr) == 0 && sigaction(SIGTERM, &action, nullptr) == 0,
              kIo, "cannot handle SIGINT and SIGTERM");
}

std::unique_ptr<RagPipeline> open_index(const Args& args) {
  const std::string index = args.require("index");
  OpenOptions options = read_open_options(args);
  options.kv_cache_bytes = args.get_int("kv-cache-mb", 256, 0, 1 << 20) << 20;
  if (options.model_dir.empty()) return RagPipeline::open(index, options);
  IndexSettings settings;
  settings.embedder_dir = options.embedder_dir;
  return RagPipeline::open_or_create(index, options.model_dir, settings, options);
}

int run_serve(const std::vector<std::string>& argv) {
  const Args args(argv,
                  {"index", "model", "embedder", "weights", "host", "port", "threads", "queue-size",
                   "ingest-queue-size", "request-timeout-s", "header-timeout-s", "max-body-bytes",
                   "kv-cache-mb", "decode-batch"},
                  {});
  server::ServerOptions options;
  options.host = args.get("host", options.host);
  options.port = static_cast<int>(args.get_int("port", options.port, 0, 65535));
  // Given values are checked before the model loads; their defaults need it.
  const auto given = [&args](const char* name, int64_t max) {
    return args.has(name) ? std::optional(args.get_int(name, 1, 1, max)) : std::nullopt;
  };
  const std::optional<int64_t> given_decode_batch = given("decode-batch", kMaxDecodeBatch);
  const std::optional<int64_t> given_threads = given("threads", 1024);
  options.queue_size = static_cast<int>(args.get_int("queue-size", options.queue_size, -1, 65536));
  options.ingest_queue_size =
      static_cast<int>(args.get_int("ingest-queue-size", options.ingest_queue_size, 0, 65536));
  options.request_timeout_ms =
      1000 * args.get_int("request-timeout-s", kDefaultRequestTimeoutS, 1, kMaxTimeoutMs / 1000);
  options.connection.header_timeout = std::chrono::seconds(
      args.get_int("header-timeout-s", options.connection.header_timeout.count() / 1000, 1, 3600));
  options.max_body_bytes = args.get_int("max-body-bytes", options.max_body_bytes, 1, 1ll << 32);
  // Requests run in parallel on the workers, one core each: BLAS's own
  // threads would only compete with them (and with ingestion's niceness).
  set_compute_threads(1);

  const std::unique_ptr<RagPipeline> pipeline = open_index(args);
  const int64_t decode_batch =
      given_decode_batch.value_or(default_decode_batch(pipeline->decoder().step_weight_bytes()));
  // The shared decoder pass is split over every core; each worker's own
  // work (its question's encoding) stays on one.
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  pipeline->batch_decoding(decode_batch, cores);
  // A worker whose ask is decoding mostly waits for the shared decoder pass:
  // a batch of N needs N workers, whatever the core count.
  options.threads = static_cast<int>(given_threads.value_or(std::max(decode_batch, cores)));
  // The server keeps FAISS in memory: another process's `kvrag index` or
  // `rm` is refused while it runs, rather than half-seen.
  pipeline->hold_write_lock(str_cat("held by kvrag serve, pid ", getpid(),
                                    ": add or remove documents through its HTTP API, or stop it"));
  server::HttpServer server(*pipeline, options);
  const int port = server.bind();

  const IndexStats stats = pipeline->stats();
  std::cout << "kvrag serve: listening on http://" << options.host << ":" << port << " (index "
            << pipeline->dir() << ", model " << stats.model_dir << ", " << stats.store.documents
            << " documents, " << stats.store.chunks << " chunks, " << server.options().threads
            << " answer workers, decode batch " << decode_batch << ", queue "
            << server.options().queue_size << ", request timeout "
            << server.options().request_timeout_ms / 1000 << " s)" << std::endl;

  install_stop_signals();
  std::thread waiter([&server] {
    char signal = 0;
    if (read(stop_pipe[0], &signal, 1) != 1 || signal == 0) return;
    std::cout << "kvrag serve: " << (signal == SIGINT ? "SIGINT" : "SIGTERM")
              << ", finishing requests in flight" << std::endl;
    server.stop();
  });
  server.serve();
  // serve() returns on its own only if the accept loop fails; then the
  // waiter is still waiting and is woken here.
  on_stop_signal(0);
  waiter.join();
  std::cout << "kvrag serve: stopped" << std::endl;
  return 0;
}

const RegisterCommand kRegisterServe("serve", {run_serve, serve_usage(),
                                               "serve the HTTP API and a page to ask from"});

}  // namespace
}  // namespace kvrag::cli
