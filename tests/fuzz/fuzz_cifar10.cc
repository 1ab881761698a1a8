// libFuzzer target: the CIFAR-10 binary-batch reader of worker/trainer/data.cc.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "worker/trainer/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto s = wrpn::trainer::ParseCifar10(bytes, "data_batch_1.bin");
  if (!s.ok()) return 0;
  if (s->size() * 3073 != static_cast<int64_t>(size) ||
      s->pixels.size() != static_cast<size_t>(s->size()) * 3072)
    std::abort();
  for (int64_t l : s->labels)
    if (l < 0 || l > 9) std::abort();
  return 0;
}
