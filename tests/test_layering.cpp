// The one-way dependencies of DESIGN.md's layout table, checked on the
// sources: every target sees the repository root, so only this test stops
// encoder/ from including decoder/ (or retriever/ from including pipeline/).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>

namespace kvrag {
namespace {
namespace fs = std::filesystem;

// What each folder may include: its own headers, the folders DESIGN.md says
// it depends on, and what those depend on.
const std::map<std::string, std::set<std::string>>& allowed_includes() {
  static const std::map<std::string, std::set<std::string>> allowed = [] {
    const std::map<std::string, std::set<std::string>> direct = {
        {"core", {}},
        {"encoder", {"core"}},
        {"decoder", {"core", "encoder"}},
        {"data", {"core"}},
        {"retriever", {"core", "encoder", "data"}},
        {"pipeline", {"core", "encoder", "decoder", "data", "retriever"}},
        {"api", {"pipeline"}},
        {"server", {"pipeline", "api"}},
        {"bench", {"pipeline"}},
        {"cli", {"pipeline", "server", "bench", "api"}},
    };
    std::map<std::string, std::set<std::string>> closure;
    for (const auto& [folder, deps] : direct) {
      std::set<std::string> seen = {folder};
      std::vector<std::string> todo(deps.begin(), deps.end());
      while (!todo.empty()) {
        const std::string next = todo.back();
        todo.pop_back();
        if (!seen.insert(next).second) continue;
        for (const std::string& dep : direct.at(next)) todo.push_back(dep);
      }
      closure[folder] = seen;
    }
    return closure;
  }();
  return allowed;
}

TEST(Layering, IncludesPointOneWay) {
  const std::regex project_include(R"re(^\s*#\s*include\s+"([a-z_]+)/)re");
  int files = 0;
  for (const auto& [folder, allowed] : allowed_includes()) {
    const fs::path dir = fs::path(KVRAG_SOURCE_DIR) / folder;
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      const std::string ext = entry.path().extension().string();
      if (ext != ".h" && ext != ".cpp") continue;
      ++files;
      std::ifstream in(entry.path());
      std::string line;
      for (int number = 1; std::getline(in, line); ++number) {
        std::smatch m;
        if (!std::regex_search(line, m, project_include)) continue;
        EXPECT_TRUE(allowed.count(m[1].str()))
            << entry.path().string() << ":" << number << " includes " << m[1].str()
            << "/, which " << folder << "/ may not depend on: " << line;
      }
    }
  }
  EXPECT_GT(files, 100);
}

}  // namespace
}  // namespace kvrag
