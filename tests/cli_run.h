// Running the real kvrag executable from a test, as a user runs it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/model_files.h"

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

// `KVRAG_CLI_PATH args...` started in the background (posix_spawn, no
// shell), stdout and stderr going to temporary files: for tests that need
// its pid, e.g. to kill it part-way (run_kvrag waits instead). A failed
// start fails the test and leaves pid() at -1. The destructor kills a
// process still running (SIGKILL) and reaps it.
class KvragProcess {
 public:
  explicit KvragProcess(const std::vector<std::string>& args);
  ~KvragProcess();
  KvragProcess(const KvragProcess&) = delete;
  KvragProcess& operator=(const KvragProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Whether it has not ended yet (reaps it when it has).
  bool running();
  // Waits for the end; `signal` receives the signal that ended it, 0 if it
  // exited. Afterwards pid() is -1.
  CliRun wait(int* signal = nullptr);

 private:
  TempDir tmp_{"kvrag_test_cli_process"};
  pid_t pid_ = -1;
  int status_ = 0;
  bool finished_ = false;
};

}  // namespace kvrag::testing
