// The HTTP API's routes (DESIGN.md, "HTTP API"): one table of path, method
// and handler, and the handlers that answer them from the pipeline through
// the work queues. How the table is registered with cpp-httplib, and what is
// refused before any route runs, is server/http_server.cpp's.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/rag_pipeline.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/work_queue.h"

namespace kvrag::server {

// What every route handler reaches: the pipeline (all model work), the
// metrics it reports to, and the queues work is admitted through.
struct Context {
  RagPipeline& pipeline;
  Metrics& metrics;
  WorkQueue& answers;
  WorkQueue& ingest;
  const ServerOptions& options;
};

// `body` is the request body, read within the size limit. A handler writes
// its answer into `res` and reports a failure by throwing Error or
// HttpFailure (server/responses.h), which the caller turns into the body.
using Handler = void (*)(Context& context, const httplib::Request& req, const std::string& body,
                         httplib::Response& res);

// One route: `label` names it in metrics and messages, `pattern` is the
// regular expression cpp-httplib matches the decoded path against.
struct Route {
  const char* label;
  const char* pattern;
  const char* method;
  Handler handler;
};

// Every route the server answers, in the order they are registered.
const std::vector<Route>& routes();

// Sets `res` to `status` with the body {"error": {"code", "message"}}.
void set_error(httplib::Response& res, int status, const std::string& code,
               const std::string& message);

// Sets `res`'s body to `body` as JSON; the status is left as it is.
void set_json(httplib::Response& res, const nlohmann::json& body);

}  // namespace kvrag::server
