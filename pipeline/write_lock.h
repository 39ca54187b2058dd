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
  // being written by another process" while another holds it; Error(kIo)
  // when the lock file cannot be opened or locked.
  explicit WriteLock(const std::string& dir);
  ~WriteLock();
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace kvrag
