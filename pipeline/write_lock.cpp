#include "pipeline/write_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "core/error.h"

namespace kvrag {
namespace {

constexpr const char* kWriteLockFile = "write.lock";

// The holder's note in the lock file (at most one short line).
std::string read_note(int fd) {
  char buffer[256];
  const ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
  if (n <= 0) return "";
  std::string note(buffer, static_cast<size_t>(n));
  note = note.substr(0, note.find('\n'));
  return note;
}

}  // namespace

WriteLock::WriteLock(const std::string& dir, const std::string& holder) {
  const std::string path = (std::filesystem::path(dir) / kWriteLockFile).string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  KVRAG_CHECK(fd_ >= 0, kIo, "cannot open ", path, ": ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string note = err == EWOULDBLOCK ? read_note(fd_) : "";
    ::close(fd_);
    KVRAG_CHECK(err != EWOULDBLOCK, kUnavailable, "index ", dir,
                " is being written by another process",
                note.empty() ? std::string() : " (" + note + ")");
    KVRAG_THROW(kIo, "cannot lock ", path, ": ", std::strerror(err));
  }
  // A note from an earlier holder is stale once we hold the lock.
  if (::ftruncate(fd_, 0) == 0 && !holder.empty()) {
    const std::string line = holder + "\n";
    [[maybe_unused]] const ssize_t written = ::pwrite(fd_, line.data(), line.size(), 0);
  }
}

WriteLock::~WriteLock() {
  [[maybe_unused]] const int truncated = ::ftruncate(fd_, 0);
  ::close(fd_);
}

}  // namespace kvrag
