// libFuzzer target: ReadMaybeGzip (worker/trainer/data.cc), which the IDX reader uses for
// .gz files: the input is written to a memory file and read back through its path.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "worker/trainer/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("fuzz_gzip", 0);
  if (fd < 0) std::abort();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))
    std::abort();
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  // A 1 MiB cap so that bombs (a few KiB inflating past it) hit the limit path.
  auto bytes = wrpn::trainer::ReadMaybeGzip(path, 1 << 20);
  if (bytes.ok() && bytes->size() > (1 << 20) && size >= 2 && data[0] == 0x1f) std::abort();
  if (!bytes.ok()) return 0;
  const bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  if (!gz && *bytes != std::string(reinterpret_cast<const char*>(data), size)) std::abort();
  return 0;
}
