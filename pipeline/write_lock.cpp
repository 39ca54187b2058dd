#include "pipeline/write_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace kvrag {
namespace {

constexpr const char* kWriteLockFile = "write.lock";

}  // namespace

WriteLock::WriteLock(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kWriteLockFile).string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  KVRAG_CHECK(fd_ >= 0, kIo, "cannot open ", path, ": ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd_);
    KVRAG_CHECK(err != EWOULDBLOCK, kUnavailable, "index ", dir,
                " is being written by another process");
    KVRAG_THROW(kIo, "cannot lock ", path, ": ", std::strerror(err));
  }
}

WriteLock::~WriteLock() { ::close(fd_); }

}  // namespace kvrag
