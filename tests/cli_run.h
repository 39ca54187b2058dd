// Running the real kvrag executable from a test, as a user runs it.
#pragma once

#include <string>
#include <vector>

namespace kvrag::testing {

struct CliRun {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;
  std::string err;
};

// Runs `KVRAG_CLI_PATH args...` through /bin/sh (every argument quoted) and
// waits for it; stdout and stderr are captured through temporary files.
CliRun run_kvrag(const std::vector<std::string>& args);

// "exit N", then stdout and stderr: for failure messages.
std::string describe(const CliRun& run);

}  // namespace kvrag::testing
