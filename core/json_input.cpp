#include "core/json_input.h"

#include <string>

#include "core/error.h"

namespace kvrag {
namespace {

using nlohmann::json;

// nlohmann's "[json.exception.parse_error.101] parse error at line 1,
// column 5: ..." without the tag; a one-line text gives its column only.
std::string parse_error_message(const json::parse_error& e) {
  std::string message = e.what();
  if (!message.empty() && message.front() == '[') {
    const size_t close = message.find("] ");
    if (close != std::string::npos) message.erase(0, close + 2);
  }
  const std::string line_one = "at line 1, column ";
  const size_t at = message.find(line_one);
  if (at != std::string::npos) message.replace(at, line_one.size(), "at column ");
  return message;
}

}  // namespace

json parse_json_bounded(std::string_view text, int max_depth) {
  KVRAG_CHECK(max_depth > 0, kInvalidArgument, "max_depth must be > 0, got ", max_depth);
  // nlohmann's parser itself is iterative; the callback sees each container
  // open with `depth` = the containers around it, and stops the parse before
  // a too-deep value is built.
  const json::parser_callback_t bound = [max_depth](int depth, json::parse_event_t event, json&) {
    const bool opens =
        event == json::parse_event_t::object_start || event == json::parse_event_t::array_start;
    KVRAG_CHECK(!opens || depth < max_depth, kInvalidArgument, "JSON nested deeper than ",
                max_depth, " levels");
    return true;
  };
  try {
    return json::parse(text, bound);
  } catch (const json::parse_error& e) {
    KVRAG_THROW(kInvalidArgument, "invalid JSON: ", parse_error_message(e));
  }
}

}  // namespace kvrag
