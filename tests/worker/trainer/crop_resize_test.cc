// The fast image path (DCT-scaled decode + fixed-point resampler) against the reference path
// it replaced: the same crop boxes for the same seeds, and pixels within the documented
// tolerance (docs/benchmarks.md, "Input pipeline").
#include "worker/trainer/crop_resize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/status/status.h"

#include "worker/trainer/data.h"
#include "worker/trainer/image_codec.h"
#include "worker/trainer/photo_generator.h"

namespace wrpn::trainer {
namespace {

// The random-resized crop exactly as ImageFolderDataset::Load drew it before this change.
CropBox PreviousBox(double W, double H, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> area(0.08, 1.0), logr(std::log(3.0 / 4), std::log(4.0 / 3));
  double bw = std::min(W, H), bh = bw, x0 = (W - bw) / 2, y0 = (H - bh) / 2;
  for (int t = 0; t < 10; ++t) {
    const double a = area(rng) * W * H, r = std::exp(logr(rng));
    const double w = std::sqrt(a * r), h = std::sqrt(a / r);
    if (w <= W && h <= H) {
      bw = w;
      bh = h;
      x0 = std::uniform_real_distribution<double>(0, W - w)(rng);
      y0 = std::uniform_real_distribution<double>(0, H - h)(rng);
      break;
    }
  }
  return CropBox{x0, y0, bw, bh, static_cast<bool>(rng() & 1)};
}

// Tolerances in uint8 levels, mean |fast - reference| over 120 samples and for the worst one
// (docs/data.md; measured values in ExpectCloseToReference's output).
constexpr double kMeanTolerance224 = 0.25, kWorstMeanTolerance224 = 0.5;  // measured 0.00, 0.01
constexpr double kMeanTolerance64 = 4.5, kWorstMeanTolerance64 = 5.5;  // measured 3.58, 4.05

// Pixel differences in uint8 levels (undoing the normalisation).
struct Diff {
  double max = 0, mean = 0;
};
Diff Compare(const std::vector<float>& a, const std::vector<float>& b, const Normalization& n) {
  Diff d;
  const size_t plane = a.size() / 3;
  for (size_t i = 0; i < a.size(); ++i) {
    const double lv = std::abs(a[i] - b[i]) * n.std[i / plane] * 255.0;
    d.max = std::max(d.max, lv);
    d.mean += lv;
  }
  d.mean /= a.size();
  return d;
}

TEST(CropBoxes, AreTheSameAsBeforeForEverySeed) {
  for (auto [w, h] : {std::pair{500, 375}, {375, 500}, {300, 300}, {64, 900}, {31, 17}}) {
    for (uint64_t seed = 0; seed < 2000; ++seed) {
      const CropBox want = PreviousBox(w, h, seed), got = RandomResizedCropBox(w, h, seed);
      ASSERT_EQ(got.x0, want.x0) << w << "x" << h << " seed " << seed;
      ASSERT_EQ(got.y0, want.y0);
      ASSERT_EQ(got.w, want.w);
      ASSERT_EQ(got.h, want.h);
      ASSERT_EQ(got.flip, want.flip);
    }
  }
  const CropBox c = CenterCropBox(500, 375);
  EXPECT_DOUBLE_EQ(c.w, 375 * 224.0 / 256);
  EXPECT_DOUBLE_EQ(c.x0, (500 - c.w) / 2);
  EXPECT_DOUBLE_EQ(c.y0, (375 - c.h) / 2);
}

TEST(CropResize, FixedPointIsWithinOneLevelOfTheReference) {
  const Image img = GeneratePhoto(333, 250, 3, 11);
  const Normalization norm = ImageNetNormalization();
  std::mt19937_64 rng(5);
  for (int size : {224, 32, 7, 400}) {
    std::vector<float> fast(3 * size * size), ref(fast.size());
    for (int k = 0; k < 40; ++k) {
      CropBox b = RandomResizedCropBox(img.width, img.height, rng());
      if (k == 0) b = CropBox{-3, -2, img.width + 6.0, img.height + 4.0, false};  // clamped edges
      CropResize(img.rgb.data(), img.width, img.height, b, size, norm, fast.data());
      ReferenceCropResize(img.rgb.data(), img.width, img.height, b, size, norm, ref.data());
      const Diff d = Compare(fast, ref, norm);
      // 8-bit weights: each pass is off by at most |p2 - p1| / 512 <= 0.5 level.
      ASSERT_LE(d.max, 1.0 + 1e-3) << "size " << size << " box " << k;
      ASSERT_LE(d.mean, 0.3);
    }
  }
}

TEST(CropResize, RgbOutputOfTheWholeImageAtItsOwnSizeIsACopy) {
  const Image img = GeneratePhoto(40, 30, 1, 2);
  const CropBox all{0, 0, 40, 30, false};
  EXPECT_EQ(CropResizeRgb(img.rgb.data(), 40, 30, all, 40, 30), img.rgb);
}

TEST(DctScaleFor, PicksTheSmallestFastScaleAtWhichTheBoxStillCoversTheOutput) {
  EXPECT_EQ(DctScaleFor(500, 376, 32, 32), 1);   // 62.5 x 47 covers 32
  EXPECT_EQ(DctScaleFor(500, 376, 48, 48), 2);   // 1/8 gives 47 rows: too few
  EXPECT_EQ(DctScaleFor(460, 450, 224, 224), 4);
  EXPECT_EQ(DctScaleFor(448, 448, 224, 224), 4);  // exactly covers
  EXPECT_EQ(DctScaleFor(447, 448, 224, 224), 8);
  EXPECT_EQ(DctScaleFor(300, 300, 224, 224), 8);
  EXPECT_EQ(DctScaleFor(100, 100, 224, 224), 8) << "a crop to enlarge decodes at full size";
  EXPECT_EQ(DctScaleFor(2000, 100, 224, 32), 4) << "both ways must cover (1/4 gives 25 rows)";
}

TEST(DecodeImageCovering, PicksTheSmallestDctScaleThatStillCoversTheOutput) {
  const Image img = GeneratePhoto(500, 376, 0, 3);
  auto jpeg = EncodeJpeg(img, 90);
  ASSERT_TRUE(jpeg.ok());
  auto full = DecodeImageCovering(*jpeg, "a.jpg", 500, 376);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->width, 500);
  auto half = DecodeImageCovering(*jpeg, "a.jpg", 200, 180);  // 1/2 covers, 1/4 does not
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(half->width, 250);
  EXPECT_EQ(half->height, 188);
  auto eighth = DecodeImageCovering(*jpeg, "a.jpg", 32, 32);
  ASSERT_TRUE(eighth.ok());
  EXPECT_EQ(eighth->width, 63);  // ceil(500 / 8)
  auto png = EncodePng(img);
  ASSERT_TRUE(png.ok());
  auto p = DecodeImageCovering(*png, "a.png", 32, 32);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->width, 500) << "PNGs have no DCT scale";
  auto bad = DecodeImageCovering(jpeg->substr(0, jpeg->size() / 2), "cut.jpg", 32, 32);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cut.jpg: corrupt JPEG"), std::string::npos) << bad.status();
  // A failed decode must not poison this thread's decoder for the next image.
  EXPECT_TRUE(DecodeImageCovering(*jpeg, "a.jpg", 32, 32).ok());
  auto head = ReadImageSize(jpeg->substr(0, 40), "head.jpg");
  ASSERT_FALSE(head.ok());
  EXPECT_NE(head.status().message().find("head.jpg: corrupt JPEG"), std::string::npos) << head.status();
  auto size = ReadImageSize(*jpeg, "a.jpg");
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(size->width, 500);
  EXPECT_EQ(size->height, 376);
  EXPECT_TRUE(size->jpeg);
  EXPECT_TRUE(DecodeImage(*jpeg, "a.jpg").ok());
}

// A cropped, scaled decode holds the same pixels as the whole image decoded at that scale
// (away from the crop's iMCU edges, where the chroma upsampler lacks its neighbours).
TEST(DecodeImageRegion, HoldsThePixelsOfTheWholeDecodeAtTheSameScale) {
  const Image img = GeneratePhoto(480, 360, 2, 8);
  auto jpeg = EncodeJpeg(img, 90);
  ASSERT_TRUE(jpeg.ok());
  ImageRegion r;
  for (const CropBox want : {CropBox{100, 80, 200, 150, false}, CropBox{300, 200, 120, 100, false},
                             CropBox{0, 0, 480, 360, false}}) {
    for (int need : {224, 96, 40}) {
      CropBox box;
      ASSERT_TRUE(DecodeImageRegion(*jpeg, "a.jpg",
                                    [&](int w, int h, CropBox* b) {
                                      EXPECT_EQ(w, 480);
                                      EXPECT_EQ(h, 360);
                                      *b = want;
                                      return absl::OkStatus();
                                    },
                                    need, need, &r, &box)
                      .ok());
      const int m = DctScaleFor(want.w, want.h, need, need);
      auto whole = DecodeImageCovering(*jpeg, "a.jpg", (480 * m + 7) / 8, (360 * m + 7) / 8);
      ASSERT_TRUE(whole.ok());
      ASSERT_EQ(r.full_w, whole->width) << "scale " << m;
      ASSERT_EQ(r.full_h, whole->height);
      EXPECT_EQ(r.width, 480);
      // The region covers the scaled box (the resampler's footprint).
      const double s = static_cast<double>(r.full_w) / 480;
      EXPECT_LE(r.x0, std::floor(want.x0 * s));
      EXPECT_LE(r.y0, std::floor(want.y0 * s));
      EXPECT_GE(r.x0 + r.img.width, std::min<int>(r.full_w, std::ceil((want.x0 + want.w) * s)));
      EXPECT_GE(r.y0 + r.img.height, std::min<int>(r.full_h, std::ceil((want.y0 + want.h) * s)));
      int64_t differ = 0, n = 0;
      for (int y = 0; y < r.img.height; ++y) {
        for (int x = 2; x + 2 < r.img.width; ++x) {
          for (int c = 0; c < 3; ++c) {
            const int a = r.img.rgb[(static_cast<size_t>(y) * r.img.width + x) * 3 + c];
            const int b = whole->rgb[(static_cast<size_t>(y + r.y0) * whole->width + x + r.x0) * 3 + c];
            differ += std::abs(a - b) > 1;
            ++n;
          }
        }
      }
      EXPECT_EQ(differ, 0) << "of " << n << " values, box at " << want.x0 << "," << want.y0 << " need " << need;
    }
  }
  // The chooser may refuse an image: its error comes back as is.
  CropBox box;
  const absl::Status refused = DecodeImageRegion(
      *jpeg, "a.jpg", [](int, int, CropBox*) { return absl::DataLossError("a.jpg: wrong size"); }, 32, 32, &r,
      &box);
  EXPECT_EQ(refused.message(), "a.jpg: wrong size");
  EXPECT_TRUE(DecodeImageRegion(
                  *jpeg, "a.jpg",
                  [](int w, int h, CropBox* b) {
                    *b = CenterCropBox(w, h);
                    return absl::OkStatus();
                  },
                  32, 32, &r, &box)
                  .ok())
      << "the decoder is usable after a refusal";
}

// The AVX2 kernels compute what the portable ones do, to float rounding (they fuse the
// multiply-adds), on every kind of box: enlarging, shrinking, flipped, on the edges, tiny images.
TEST(ResampleKernels, Avx2AgreesWithTheScalarKernel) {
  if (DefaultResampleKernel() != ResampleKernel::kAvx2) GTEST_SKIP() << "this CPU has no AVX2 + FMA";
  const Normalization norm = ImageNetNormalization();
  std::mt19937_64 rng(9);
  double worst = 0;
  for (auto [w, h] : {std::pair{333, 250}, {256, 192}, {2, 2}, {1, 1}, {1, 7}, {9, 1}, {17, 5}}) {
    const Image img = GeneratePhoto(w, h, 4, static_cast<uint64_t>(w * 1000 + h));
    for (int size : {224, 37, 8, 1}) {
      std::vector<float> a(3 * size * size), b(a.size());
      for (int k = 0; k < 12; ++k) {
        CropBox box = RandomResizedCropBox(w, h, rng());
        if (k == 0) box = CropBox{-3, -2, w + 6.0, h + 4.0, true};
        if (k == 1) box = CenterCropBox(w, h);
        CropResizeWith(ResampleKernel::kScalar, img.rgb.data(), w, h, box, size, norm, a.data());
        CropResizeWith(ResampleKernel::kAvx2, img.rgb.data(), w, h, box, size, norm, b.data());
        for (size_t i = 0; i < a.size(); ++i) {
          worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i])));
          ASSERT_NEAR(a[i], b[i], 1e-5) << w << "x" << h << " size " << size << " box " << k << " at " << i;
        }
      }
    }
  }
  std::printf("AVX2 vs scalar resampler: largest difference %.2g (normalised units)\n", worst);
}

// The whole sample path, fast (cropped, DCT-scaled decode + fixed point) against the reference
// (full decode + double bilinear), on photograph-like JPEGs. At 224 px, crops of 300-500 px
// images never allow the 1/2 scale, so only the resampler differs; at 64 px most decode at 1/4
// or 1/8, which low-passes what the reference bilinear path aliases (it samples 2 of every 4+
// source pixels), so the two differ by a few levels where the sensor grain is.
void ExpectCloseToReference(int size, double mean_tolerance, double worst_tolerance) {
  const Normalization norm = ImageNetNormalization();
  double worst_mean = 0, sum_mean = 0, worst_max = 0;
  int n = 0;
  for (int k = 0; k < 6; ++k) {
    const Image img = GeneratePhoto(300 + 40 * k, 480 - 30 * k, k, 100 + k);
    auto jpeg = EncodeJpeg(img, 90);
    ASSERT_TRUE(jpeg.ok());
    for (bool train : {true, false}) {
      for (uint64_t seed = 0; seed < 10; ++seed) {
        std::vector<float> fast(3 * size * size), ref(fast.size());
        SetResamplePath(ResamplePath::kReference);
        ASSERT_TRUE(LoadImageSample(*jpeg, "a.jpg", 0, 0, size, train, seed, norm, ref.data()).ok());
        SetResamplePath(ResamplePath::kFast);
        ASSERT_TRUE(LoadImageSample(*jpeg, "a.jpg", 0, 0, size, train, seed, norm, fast.data()).ok());
        const Diff d = Compare(fast, ref, norm);
        worst_mean = std::max(worst_mean, d.mean);
        worst_max = std::max(worst_max, d.max);
        sum_mean += d.mean;
        ++n;
      }
    }
  }
  std::printf("%d px, fast vs reference: mean |diff| %.2f levels (worst sample %.2f), max %.1f\n", size,
              sum_mean / n, worst_mean, worst_max);
  EXPECT_LE(sum_mean / n, mean_tolerance);
  EXPECT_LE(worst_mean, worst_tolerance);
}

TEST(LoadImageSample, FastPathStaysCloseToTheReferencePath) {
  ExpectCloseToReference(224, kMeanTolerance224, kWorstMeanTolerance224);
  ExpectCloseToReference(64, kMeanTolerance64, kWorstMeanTolerance64);
}

}  // namespace
}  // namespace wrpn::trainer
