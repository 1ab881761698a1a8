#include "server/db_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace wrpn::server {
namespace {

std::string ReadAll(int fd) {
  std::string text;
  char buf[512];
  for (off_t at = 0;;) {
    const ssize_t n = pread(fd, buf, sizeof(buf), at);
    if (n <= 0 || text.size() > 4096) break;
    text.append(buf, static_cast<size_t>(n));
    at += n;
  }
  return text;
}

std::string Holder() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "?");
  char since[32] = {};
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return absl::StrCat("pid ", getpid(), " on host ", host, ", since ", since, "\n");
}

}  // namespace

absl::StatusOr<std::unique_ptr<DbLock>> DbLock::Acquire(const std::string& db_path) {
  const std::string path = db_path + ".lock";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    return absl::FailedPreconditionError(absl::StrCat(
        err == EACCES || err == EROFS || err == EPERM ? absl::StrCat("database ", db_path,
                                                                     " is read-only: ")
                                                      : "",
        "cannot create its lock file ", path, ": ", std::strerror(err)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder(absl::StripAsciiWhitespace(ReadAll(fd)));
    close(fd);
    if (err != EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot lock ", path, ": ", std::strerror(err)));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "database ", db_path, " is in use by another coordinator (",
        holder.empty() ? "holder unknown" : holder, "; lock ", path,
        "); stop it first, or give this one another --db"));
  }
  const std::string me = Holder();
  // Best effort: the lock holds even when the holder's description cannot be written.
  if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, me.data(), me.size(), 0);
  return std::unique_ptr<DbLock>(new DbLock(fd, path));
}

DbLock::~DbLock() { close(fd_); }

}  // namespace wrpn::server
