#pragma once
// DbLock: one coordinator per database. An exclusive flock(2) on "<db>.lock" held for the life of
// the process; the file holds the holder's pid, host and start time so that a second coordinator
// can name it. The kernel drops an flock when its last descriptor closes, so the lock is released
// on exit and on SIGKILL alike (no stale lock to clean up after a crash). The descriptor is
// close-on-exec. Not copyable; thread-compatible.
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace wrpn::server {

class DbLock {
 public:
  // Locks `db_path` + ".lock" (created when missing) without waiting. FAILED_PRECONDITION naming
  // the holder ("pid 123 on host h, since ...") when another process holds it.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DbLock>> Acquire(const std::string& db_path);
  ~DbLock();
  DbLock(const DbLock&) = delete;
  DbLock& operator=(const DbLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  DbLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace wrpn::server
