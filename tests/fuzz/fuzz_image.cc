// libFuzzer target: the JPEG/PNG decoder the image-folder reader uses (DecodeImage in
// worker/trainer/data.cc). A decoded image must hold width x height x 3 bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "worker/trainer/data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto img = wrpn::trainer::DecodeImage(bytes, "img");
  if (!img.ok()) return 0;
  if (img->width <= 0 || img->height <= 0 ||
      img->rgb.size() != static_cast<size_t>(img->width) * img->height * 3)
    std::abort();
  return 0;
}
