// The one parser for JSON that comes from outside (corpus lines, question
// files, HTTP request bodies): nlohmann::json::parse with a bound on nesting.
// nlohmann's dump, copy and comparison recurse once per nesting level, so an
// unbounded document (a 300 KB body of 150,000 nested arrays) would overflow
// the stack and crash the process. Every reader of untrusted JSON, the
// server included, should call parse_json_bounded rather than json::parse.
//
// It lives in core/, below data/, so that the server parses request bodies
// without reaching into data/. The header includes nlohmann/json.hpp: a
// target that includes it links nlohmann_json itself (DESIGN.md keeps
// nlohmann/json to the readers of data/, server/, cli/ and bench/).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace kvrag {

constexpr int kMaxJsonDepth = 64;

// Parses `text` as one JSON value whose arrays and objects nest at most
// `max_depth` levels (a top-level array is level 1). Throws
// Error(kInvalidArgument) "JSON nested deeper than N levels" when deeper,
// "invalid JSON: <parser message>" (without nlohmann's "[json.exception…]"
// tag) when not JSON, and "field 'documents[0].metadata.x': number 1e999 is
// out of range (JSON numbers must fit in a double)" for a number beyond
// double range (nlohmann's own out_of_range exception never escapes). Callers that report file errors rethrow with their
// "path:line" and kind.
nlohmann::json parse_json_bounded(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace kvrag
