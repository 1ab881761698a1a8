// libFuzzer target: the IDX reader (Fashion-MNIST images + labels) of worker/trainer/data.cc.
// Input: 2 bytes little-endian = length L of the labels file, then L label bytes, then the image
// file's bytes. A split that parses must be self-consistent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "worker/trainer/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t l = std::min<size_t>(size - 2, data[0] | (size_t{data[1]} << 8));
  const std::string labels(reinterpret_cast<const char*>(data + 2), l);
  const std::string images(reinterpret_cast<const char*>(data + 2 + l), size - 2 - l);
  auto s = wrpn::trainer::ParseIdx(images, labels, "images", "labels");
  if (!s.ok()) return 0;
  if (s->channels != 1 || s->height <= 0 || s->width <= 0 ||
      s->pixels.size() != static_cast<size_t>(s->size()) * s->height * s->width)
    std::abort();
  // The in-memory dataset built on it loads every sample (a few) without error.
  auto ds = wrpn::trainer::MakeInMemoryDataset(*std::move(s), 256, {{0.5f}, {0.25f}}, 1, true);
  std::vector<float> out(static_cast<size_t>(ds->channels()) * ds->height() * ds->width());
  for (int64_t i = 0; i < std::min<int64_t>(ds->size(), 4); ++i) {
    int64_t label = -1;
    if (!ds->Load(i, true, 7, out.data(), &label).ok()) std::abort();
    if (label < 0 || label > 255) std::abort();
  }
  return 0;
}
