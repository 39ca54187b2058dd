#include "cli/args.h"

#include <optional>
#include <sstream>

#include "core/error.h"

namespace kvrag::cli {
namespace {

// The whole of `text` as a base-10 integer (std::stoll's syntax: leading
// white space and a sign allowed); nullopt when it is not one or overflows.
std::optional<int64_t> to_int(const std::string& text) {
  try {
    size_t used = 0;
    const int64_t value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (const std::logic_error&) {
    // no digits, or out of range: not an integer either way
  }
  return std::nullopt;
}

}  // namespace

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& value_options,
           const std::set<std::string>& flags) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--") {
      positional_.insert(positional_.end(), argv.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                         argv.end());
      break;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (flags.count(name)) {
      KVRAG_USAGE_CHECK(!has_value, "--", name, " takes no value");
      flags_.insert(name);
    } else if (value_options.count(name)) {
      if (!has_value) {
        KVRAG_USAGE_CHECK(i + 1 < argv.size(), "--", name, " needs a value");
        value = argv[++i];
      }
      values_[name] = value;
    } else {
      throw UsageError(str_cat("unknown option --", name));
    }
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::string Args::require(const std::string& name) const {
  const auto it = values_.find(name);
  KVRAG_USAGE_CHECK(it != values_.end(), "missing --", name);
  return it->second;
}

int64_t Args::get_int(const std::string& name, int64_t fallback, int64_t min, int64_t max) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::optional<int64_t> value = to_int(it->second);
  KVRAG_USAGE_CHECK(value.has_value(), "--", name, " must be an integer, got '", it->second, "'");
  KVRAG_USAGE_CHECK(*value >= min && *value <= max, "--", name, " must be in [", min, ", ", max,
                    "], got ", *value);
  return *value;
}

std::vector<std::string> Args::get_list(const std::string& name,
                                        const std::string& fallback) const {
  std::vector<std::string> items;
  std::stringstream in(get(name, fallback));
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

std::vector<int64_t> Args::get_int_list(const std::string& name, const std::string& fallback,
                                        int64_t min, int64_t max) const {
  const std::vector<int64_t> values = get_list(name, fallback, [&](const std::string& item) {
    const std::optional<int64_t> value = to_int(item);
    KVRAG_USAGE_CHECK(value && *value >= min && *value <= max, "--", name, ": '", item,
                      "' is not an integer in ", min, "..", max);
    return *value;
  });
  KVRAG_USAGE_CHECK(!values.empty(), "--", name, " is empty");
  return values;
}

double Args::get_double(const std::string& name, double fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  try {
    size_t used = 0;
    const double value = std::stod(it->second, &used);
    KVRAG_USAGE_CHECK(used == it->second.size(), "--", name, " must be a number, got '", it->second,
                      "'");
    return value;
  } catch (const std::logic_error&) {
    throw UsageError(str_cat("--", name, " must be a number, got '", it->second, "'"));
  }
}

}  // namespace kvrag::cli
