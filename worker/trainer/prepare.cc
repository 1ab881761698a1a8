#include "worker/trainer/prepare.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "worker/trainer/crop_resize.h"
#include "worker/trainer/data.h"
#include "worker/trainer/image_codec.h"
#include "worker/trainer/packed_format.h"

namespace wrpn::trainer {
namespace {

absl::StatusOr<PackedInput> Reencode(const std::string& path, int64_t label, int max_side, int quality,
                                     PackedEncoding encoding) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSIGN_OR_RETURN(ImageSize size, ReadImageSize(bytes, path));
  const double s = std::min(1.0, static_cast<double>(max_side) / std::max(size.width, size.height));
  const int w = std::max(1, static_cast<int>(std::lround(size.width * s)));
  const int h = std::max(1, static_cast<int>(std::lround(size.height * s)));
  ASSIGN_OR_RETURN(Image img, DecodeImageCovering(bytes, path, w, h));
  if (img.width != w || img.height != h) {
    const CropBox all{0, 0, static_cast<double>(img.width), static_cast<double>(img.height), false};
    img.rgb = CropResizeRgb(img.rgb.data(), img.width, img.height, all, w, h);
    img.width = w;
    img.height = h;
  }
  PackedInput r;
  if (encoding == PackedEncoding::kRaw) {
    r.bytes.assign(img.rgb.begin(), img.rgb.end());
  } else {
    ASSIGN_OR_RETURN(r.bytes, EncodeJpeg(img, quality));
  }
  r.label = label;
  r.width = w;
  r.height = h;
  return r;
}

}  // namespace

absl::StatusOr<PrepareStats> PreparePacked(const PrepareOptions& o) {
  if (o.max_side < 8 || o.max_side > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--max-side: must be 8..65535, got ", o.max_side));
  }
  if (o.quality < 1 || o.quality > 100) {
    return absl::InvalidArgumentError(absl::StrCat("--quality: must be 1..100, got ", o.quality));
  }
  if (o.out.empty()) return absl::InvalidArgumentError("--out: required");
  PackedEncoding encoding;
  if (o.encoding == "jpeg") {
    encoding = PackedEncoding::kJpeg;
  } else if (o.encoding == "raw") {
    encoding = PackedEncoding::kRaw;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--encoding: must be jpeg or raw, got '", o.encoding, "'"));
  }
  ASSIGN_OR_RETURN(ImageFolderTree tree, ScanImageFolder(o.imagefolder));
  ASSIGN_OR_RETURN(auto writer, PackedWriter::Create(o.out, tree.classes, encoding));
  const int threads = o.threads > 0 ? o.threads
                                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t total = static_cast<int64_t>(tree.train.size() + tree.val.size());
  PrepareStats stats;
  stats.classes = static_cast<int>(tree.classes.size());
  int64_t done = 0;
  for (PackedSplit split : {PackedSplit::kTrain, PackedSplit::kVal}) {
    const auto& files = split == PackedSplit::kTrain ? tree.train : tree.val;
    // Chunks re-encoded in parallel, written in order.
    const size_t chunk = static_cast<size_t>(threads) * 16;
    for (size_t begin = 0; begin < files.size(); begin += chunk) {
      const size_t n = std::min(chunk, files.size() - begin);
      std::vector<absl::StatusOr<PackedInput>> out(n, absl::UnknownError("not run"));
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          for (size_t k = t; k < n; k += threads) {
            out[k] = Reencode(files[begin + k].first, files[begin + k].second, o.max_side, o.quality, encoding);
          }
        });
      }
      for (auto& th : pool) th.join();
      for (auto& r : out) {
        if (!r.ok()) return r.status();
        RETURN_IF_ERROR(writer->Add(split, *r));
        stats.bytes += static_cast<int64_t>(r->bytes.size());
        ++(split == PackedSplit::kTrain ? stats.train : stats.val);
        if (o.progress) o.progress(++done, total, stats.bytes);
      }
    }
  }
  RETURN_IF_ERROR(writer->Finish());
  return stats;
}

}  // namespace wrpn::trainer
