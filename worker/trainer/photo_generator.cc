#include "worker/trainer/photo_generator.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace wrpn::trainer {
namespace {

// Bilinearly interpolated lattice noise with `cells` cells across the longer side.
std::vector<float> ValueNoise(int w, int h, int cells, std::mt19937_64& rng) {
  const int gw = cells + 2, gh = cells * h / std::max(w, 1) + 3;
  std::vector<float> grid(int64_t{gw} * gh);
  std::uniform_real_distribution<float> u(-1, 1);
  for (float& g : grid) g = u(rng);
  std::vector<float> out(int64_t{w} * h);
  const float step = static_cast<float>(cells) / std::max(w, h);
  for (int y = 0; y < h; ++y) {
    const float fy = y * step;
    const int y0 = static_cast<int>(fy);
    const float ty = fy - y0, sy = ty * ty * (3 - 2 * ty);
    for (int x = 0; x < w; ++x) {
      const float fx = x * step;
      const int x0 = static_cast<int>(fx);
      const float tx = fx - x0, sx = tx * tx * (3 - 2 * tx);
      auto g = [&](int yy, int xx) { return grid[int64_t{std::min(yy, gh - 1)} * gw + std::min(xx, gw - 1)]; };
      out[int64_t{y} * w + x] = (1 - sy) * ((1 - sx) * g(y0, x0) + sx * g(y0, x0 + 1)) +
                                sy * ((1 - sx) * g(y0 + 1, x0) + sx * g(y0 + 1, x0 + 1));
    }
  }
  return out;
}

}  // namespace

Image GeneratePhoto(int width, int height, int label, uint64_t seed) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(label));
  std::mt19937_64 crng(0xC0105 + static_cast<uint64_t>(label));  // the class's look
  std::uniform_real_distribution<float> u(0, 1);
  float base[3], blob[3];
  for (float& c : base) c = 0.25f + 0.5f * u(crng);
  for (float& c : blob) c = u(crng);
  const float aspect = 0.4f + 1.2f * u(crng);  // class blob shape
  Image img;
  img.width = width;
  img.height = height;
  img.rgb.resize(int64_t{width} * height * 3);
  // Texture: 1/f-like sum of octaves (a coarser one per channel adds colour variation).
  std::vector<float> tex(int64_t{width} * height, 0.f);
  float amp = 0.35f;
  for (int cells = 3; cells <= std::max(width, height) / 2; cells *= 2, amp *= 0.7f) {
    auto n = ValueNoise(width, height, cells, rng);
    for (size_t i = 0; i < tex.size(); ++i) tex[i] += amp * n[i];
  }
  std::vector<float> tint[3];
  for (auto& t : tint) t = ValueNoise(width, height, 4, rng);
  struct Blob { float cx, cy, rx, ry, a; };
  std::vector<Blob> blobs(3 + rng() % 4);
  for (auto& b : blobs) {
    const float r = (0.08f + 0.2f * u(rng)) * std::min(width, height);
    b = {u(rng) * width, u(rng) * height, r * aspect, r / aspect, 0.5f + 0.5f * u(rng)};
  }
  const float gx = u(rng) - 0.5f, gy = u(rng) - 0.5f;  // lighting direction
  uint32_t grain = static_cast<uint32_t>(rng());  // sensor noise, +-15 levels (an LCG: cheap)
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const int64_t i = int64_t{y} * width + x;
      const float light = 0.8f + 0.4f * (gx * x / width + gy * y / height);
      float m = 0;
      for (const auto& b : blobs) {
        const float dx = (x - b.cx) / b.rx, dy = (y - b.cy) / b.ry;
        const float d = dx * dx + dy * dy;
        m = std::max(m, b.a * std::clamp((1.2f - d) * 3.0f, 0.0f, 1.0f));  // soft edge
      }
      for (int c = 0; c < 3; ++c) {
        const float col = (1 - m) * base[c] + m * blob[c];
        grain = grain * 1664525u + 1013904223u;
        const float v = 255.f * (col * light + 0.35f * tex[i] + 0.08f * tint[c][i]) +
                        (static_cast<float>(grain >> 27) - 15.5f);
        img.rgb[i * 3 + c] = static_cast<uint8_t>(std::clamp(v, 0.f, 255.f));
      }
    }
  }
  return img;
}

absl::StatusOr<std::string> EncodePng(const Image& img) {
  png_image p{};
  p.version = PNG_IMAGE_VERSION;
  p.width = static_cast<png_uint_32>(img.width);
  p.height = static_cast<png_uint_32>(img.height);
  p.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&p, nullptr, &size, 0, img.rgb.data(), 0, nullptr)) {
    return absl::InternalError(std::string("PNG encoding failed: ") + p.message);
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&p, out.data(), &size, 0, img.rgb.data(), 0, nullptr)) {
    return absl::InternalError(std::string("PNG encoding failed: ") + p.message);
  }
  out.resize(size);
  return out;
}

absl::StatusOr<int64_t> WritePhotoTree(const std::string& root, const PhotoTreeOptions& o) {
  namespace fs = std::filesystem;
  int64_t bytes = 0;
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int> side(o.min_side, o.max_side);
  for (const char* split : {"train", "val"}) {
    const int n = std::string(split) == "train" ? o.train_per_class : o.val_per_class;
    for (int k = 0; k < o.classes; ++k) {
      const fs::path dir = fs::path(root) / split / absl::StrCat("c", k);
      std::error_code ec;
      fs::create_directories(dir, ec);
      if (ec) return absl::PermissionDeniedError(absl::StrCat(dir.string(), ": ", ec.message()));
      for (int i = 0; i < n; ++i) {
        const int w = side(rng), h = side(rng);
        const Image img = GeneratePhoto(w, h, k, rng());
        std::string data;
        if (o.png) {
          ASSIGN_OR_RETURN(data, EncodePng(img));
        } else {
          ASSIGN_OR_RETURN(data, EncodeJpeg(img, o.quality));
        }
        const fs::path file = dir / absl::StrCat(i, o.png ? ".png" : ".jpg");
        std::ofstream out(file, std::ios::binary);
        out.write(data.data(), static_cast<std::streamsize>(data.size()));
        if (!out) return absl::DataLossError(absl::StrCat(file.string(), ": write failed"));
        bytes += static_cast<int64_t>(data.size());
      }
    }
  }
  return bytes;
}

}  // namespace wrpn::trainer
