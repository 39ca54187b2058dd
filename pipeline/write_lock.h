// The one-writer-per-folder rule between processes: an advisory flock(2) on
// DIR/write.lock, held for one write call (add_documents, remove_document),
// so that a second process writing the same folder at the same time fails
// at once instead of interleaving its vectors.faiss with ours. The kernel
// drops the lock if the process dies.
#pragma once

#include <string>

namespace kvrag {

class WriteLock {
 public:
  // Takes the lock of index folder `dir`. Error(kUnavailable) "index DIR is
  // being written by another process" while another holds it, followed by
  // the holder's `holder` note when it left one ("kvrag serve, pid 12");
  // Error(kIo) when the lock file cannot be opened or locked. The note is
  // written into the lock file for as long as the lock is held.
  explicit WriteLock(const std::string& dir, const std::string& holder = "");
  ~WriteLock();
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace kvrag
