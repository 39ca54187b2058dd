#include "cli/args.h"

#include <charconv>

#include "core/error.h"

namespace kvrag::cli {

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
      KVRAG_CHECK(!has_value, kInvalidArgument, "--", name, " takes no value");
      flags_.insert(name);
    } else if (value_options.count(name)) {
      if (!has_value) {
        KVRAG_CHECK(i + 1 < argv.size(), kInvalidArgument, "--", name, " needs a value");
        value = argv[++i];
      }
      values_[name] = value;
    } else {
      KVRAG_THROW(kInvalidArgument, "unknown option --", name);
    }
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::string Args::require(const std::string& name) const {
  const auto it = values_.find(name);
  KVRAG_CHECK(it != values_.end(), kInvalidArgument, "missing --", name);
  return it->second;
}

int64_t Args::get_int(const std::string& name, int64_t fallback, int64_t min, int64_t max) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  int64_t value = 0;
  const std::string& text = it->second;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  KVRAG_CHECK(ec == std::errc() && end == text.data() + text.size(), kInvalidArgument, "--", name,
              " must be an integer, got '", text, "'");
  KVRAG_CHECK(value >= min && value <= max, kInvalidArgument, "--", name, " must be in [", min,
              ", ", max, "], got ", value);
  return value;
}

double Args::get_double(const std::string& name, double fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  try {
    size_t used = 0;
    const double value = std::stod(it->second, &used);
    KVRAG_CHECK(used == it->second.size(), kInvalidArgument, "--", name, " must be a number, got '",
                it->second, "'");
    return value;
  } catch (const std::logic_error&) {
    KVRAG_THROW(kInvalidArgument, "--", name, " must be a number, got '", it->second, "'");
  }
}

}  // namespace kvrag::cli
