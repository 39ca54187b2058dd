#include "tests/fixtures.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace kvrag::testing {
namespace fs = std::filesystem;

std::string t5_fixtures_dir() {
  if (const char* env = std::getenv("KVRAG_T5_FIXTURES"); env && *env) return env;
  return std::string(KVRAG_SOURCE_DIR) + "/../shared/fixtures/t5";
}

std::vector<std::string> t5_fixture_cases() {
  std::vector<std::string> cases;
  const fs::path root = t5_fixtures_dir();
  if (!fs::is_directory(root)) return cases;
  for (const auto& entry : fs::directory_iterator(root)) {
    const fs::path dir = entry.path();
    if (entry.is_directory() && fs::exists(dir / "config.json") &&
        fs::exists(dir / "expected.safetensors")) {
      cases.push_back(dir.string());
    }
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

std::string fixture_case_name(const ::testing::TestParamInfo<std::string>& info) {
  return fs::path(info.param).filename().string();
}

bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

}  // namespace kvrag::testing
