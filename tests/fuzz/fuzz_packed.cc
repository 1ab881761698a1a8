// libFuzzer target: the packed dataset reader (PackedFile in worker/trainer/packed_format.cc)
// and the sample path behind it (JPEG records decoded, raw records resampled from the bytes). A file that opens must give, for each record, either a clean
// error naming the file or a finite sample; nothing may read outside the bytes.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "worker/trainer/data.h"
#include "worker/trainer/packed_format.h"

using wrpn::trainer::PackedFile;
using wrpn::trainer::PackedSplit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto file = PackedFile::FromBytes(bytes, "f.wrpnpak");
  if (!file.ok()) {
    if (std::string(file.status().message()).rfind("f.wrpnpak", 0) != 0) std::abort();
    return 0;
  }
  const auto norm = wrpn::trainer::ImageNetNormalization();
  std::vector<float> out(3 * 16 * 16);
  for (PackedSplit s : {PackedSplit::kTrain, PackedSplit::kVal}) {
    for (int64_t i = 0; i < std::min<int64_t>((*file)->size(s), 4); ++i) {
      auto rec = (*file)->Read(s, i);
      if (!rec.ok()) continue;
      if (rec->label < 0 || rec->label >= (*file)->classes()) std::abort();
      if ((*file)->encoding() == wrpn::trainer::PackedEncoding::kRaw) {
        // Opening checked that the record holds width x height x 3 bytes.
        if (rec->bytes.size() != size_t{3} * rec->width * rec->height) std::abort();
        wrpn::trainer::LoadRawSample(reinterpret_cast<const uint8_t*>(rec->bytes.data()), rec->width,
                                     rec->height, 16, s == PackedSplit::kTrain, 7, norm, out.data());
      } else {
        const auto st = wrpn::trainer::LoadImageSample(rec->bytes, (*file)->Where(s, i), rec->width,
                                                       rec->height, 16, s == PackedSplit::kTrain, 7, norm,
                                                       out.data());
        if (!st.ok()) continue;
      }
      for (float v : out)
        if (!std::isfinite(v)) std::abort();
    }
  }
  return 0;
}
