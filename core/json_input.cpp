#include "core/json_input.h"

#include <string>
#include <vector>

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

// Where the parser is, as a field path ("documents[0].metadata.x"), kept by
// the parser callback: nlohmann reports a number beyond double range
// ("1e999") by its text only, and the client should learn which field.
class PathTracker {
 public:
  void on_event(json::parse_event_t event, const json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        frames_.push_back({false, "", 0});
        break;
      case json::parse_event_t::array_start:
        frames_.push_back({true, "", 0});
        break;
      case json::parse_event_t::key:
        if (!frames_.empty())
          frames_.back().key = parsed.is_string() ? parsed.get<std::string>() : "";
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        element_done();
        break;
      case json::parse_event_t::value:
        element_done();
        break;
    }
  }

  // The path of the value being parsed now; empty at the top level.
  std::string path() const {
    std::string out;
    for (const Frame& f : frames_) {
      // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive)
      // on "literal" + std::string temporaries here.
      if (f.array) {
        out += '[';
        out += std::to_string(f.done);
        out += ']';
      } else if (f.key.empty()) {
        break;  // between fields, or in a key: the object itself
      } else {
        if (!out.empty()) out += '.';
        out += f.key;
      }
    }
    return out;
  }

 private:
  struct Frame {
    bool array;
    std::string key;  // objects: the key being parsed
    size_t done;      // arrays: elements parsed so far
  };
  void element_done() {
    if (frames_.empty()) return;
    if (frames_.back().array) {
      ++frames_.back().done;
    } else {
      frames_.back().key.clear();  // between fields: none is being parsed
    }
  }
  std::vector<Frame> frames_;
};

// "number overflow parsing '1e999'" -> "1e999".
std::string overflowing_number(const std::string& message) {
  const size_t open = message.find('\'');
  const size_t close = message.rfind('\'');
  return open != std::string::npos && close > open ? message.substr(open + 1, close - open - 1)
                                                   : std::string("a number");
}

}  // namespace

json parse_json_bounded(std::string_view text, int max_depth) {
  KVRAG_CHECK(max_depth > 0, kInvalidArgument, "max_depth must be > 0, got ", max_depth);
  // nlohmann's parser itself is iterative; the callback sees each container
  // open with `depth` = the containers around it, and stops the parse before
  // a too-deep value is built.
  // json::parse copies the callback: the tracker is shared by pointer.
  PathTracker tracker;
  const json::parser_callback_t bound = [max_depth, &tracker](int depth, json::parse_event_t event,
                                                              json& parsed) {
    const bool opens =
        event == json::parse_event_t::object_start || event == json::parse_event_t::array_start;
    KVRAG_CHECK(!opens || depth < max_depth, kInvalidArgument, "JSON nested deeper than ",
                max_depth, " levels");
    tracker.on_event(event, parsed);
    return true;
  };
  try {
    return json::parse(text, bound);
  } catch (const json::parse_error& e) {
    // Where it failed, when inside a field: a string with invalid UTF-8 or
    // a bad escape is then named like any other bad field.
    const std::string path = tracker.path();
    KVRAG_THROW(kInvalidArgument, "invalid JSON: ", parse_error_message(e),
                path.empty() ? std::string() : " (in field '" + path + "')");
  } catch (const json::out_of_range& e) {
    // nlohmann's only out_of_range while parsing: a number beyond double
    // range (406). Not the client's typo of JSON, so named by its field.
    const std::string path = tracker.path();
    KVRAG_THROW(kInvalidArgument, path.empty() ? std::string("the value") : "field '" + path + "'",
                ": number ", overflowing_number(e.what()),
                " is out of range (JSON numbers must fit in a double)");
  }
}

}  // namespace kvrag
