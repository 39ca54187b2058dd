// A small command-line parser for kvrag's subcommands: --name value,
// --name=value, boolean --flag, and positional arguments. Unknown options
// and bad values are errors that name the option.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace kvrag::cli {

// An error in how a command was called (an unknown option, a missing
// argument): the one kind after which `kvrag` prints the command's usage.
// Errors from the work itself (a model that does not fit the index) are
// plain kvrag::Error and print their message alone.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(ErrorKind::kInvalidArgument, message) {}
};

#define KVRAG_USAGE_CHECK(cond, ...)                                            \
  do {                                                                          \
    if (!(cond)) throw ::kvrag::cli::UsageError(::kvrag::str_cat(__VA_ARGS__)); \
  } while (0)

class Args {
 public:
  // `value_options` take a value, `flags` do not; anything else starting
  // with "--" is an Error(kInvalidArgument) naming it.
  Args(const std::vector<std::string>& argv, const std::set<std::string>& value_options,
       const std::set<std::string>& flags);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback) const;
  // Error(kInvalidArgument) "missing --name" when absent.
  std::string require(const std::string& name) const;
  // Integer in [min, max]; Error(kInvalidArgument) naming the option otherwise.
  int64_t get_int(const std::string& name, int64_t fallback, int64_t min, int64_t max) const;
  double get_double(const std::string& name, double fallback) const;
  // "a,b,c" -> {"a", "b", "c"}: the comma-separated items of --name, or of
  // `fallback` when it is absent; empty items are skipped, so "" gives {}.
  std::vector<std::string> get_list(const std::string& name, const std::string& fallback) const;
  // get_list's items, each through `parse` (e.g. parse_mode), which throws
  // for a bad one.
  template <typename Parse>
  auto get_list(const std::string& name, const std::string& fallback, Parse parse) const {
    std::vector<std::invoke_result_t<Parse, const std::string&>> values;
    for (const std::string& item : get_list(name, fallback)) values.push_back(parse(item));
    return values;
  }
  // "1,5,10" -> {1, 5, 10}, each in [min, max]; Error(kInvalidArgument)
  // naming the option for a bad item or an empty list.
  std::vector<int64_t> get_int_list(const std::string& name, const std::string& fallback,
                                    int64_t min, int64_t max) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

}  // namespace kvrag::cli
