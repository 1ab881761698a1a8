#pragma once
// The image-folder and packed datasets' transforms: the crop box (ImageNet random-resized crop
// for training, resize + center crop for evaluation) and its resampling into a normalised CHW
// float map. Pure functions, safe from any thread (the fast resampler keeps per-thread scratch
// buffers, so a warm thread allocates nothing per sample).
//
// Two resamplers compute the same bilinear map (half-pixel centres, edge clamp, no antialias):
//  - ReferenceCropResize: double precision, pixel by pixel (the original path, kept for tests);
//  - CropResize: separable, 8-bit fixed-point weights: each source row the box reads is
//    resampled along the row once (exact integers), then each output row blends two of those
//    rows with the normalisation fused into the same write. It differs from the reference by at
//    most 1 uint8 level before normalisation (tests: crop_resize_test). Two kernels compute it:
//    portable C++ and AVX2 + FMA (gathers, multiply-adds), chosen at run time by the CPU; they
//    agree to within float rounding (1e-5 after normalisation; ResampleKernels test).
#include <cstdint>
#include <vector>

namespace wrpn::trainer {

struct Normalization {
  std::vector<float> mean, std;
};

// A box in source pixels and whether the output is mirrored.
struct CropBox {
  double x0 = 0, y0 = 0, w = 0, h = 0;
  bool flip = false;
};

// torchvision's RandomResizedCrop(scale 0.08..1, ratio 3/4..4/3, 10 tries, then the centred
// square) plus a coin for the horizontal flip, drawn from `seed` alone.
CropBox RandomResizedCropBox(int width, int height, uint64_t seed);
// The centred square of side min(width, height) * 224 / 256 (resize to size*256/224, crop size).
CropBox CenterCropBox(int width, int height);
// The same box in an image scaled from (width, height) to (scaled_w, scaled_h).
CropBox ScaleBox(const CropBox& b, int width, int height, int scaled_w, int scaled_h);

// Samples `box` of an HWC RGB image (`width` x `height`, rows of width*3 bytes) into a size x size
// CHW float map normalised by `norm`.
void CropResize(const uint8_t* rgb, int width, int height, const CropBox& box, int size,
                const Normalization& norm, float* out);
enum class ResampleKernel { kScalar, kAvx2 };
// kAvx2 where the CPU has AVX2 and FMA, else kScalar.
ResampleKernel DefaultResampleKernel();
// CropResize with a given kernel (tests, benchmarks); kAvx2 falls back to kScalar on a CPU
// without it.
void CropResizeWith(ResampleKernel kernel, const uint8_t* rgb, int width, int height, const CropBox& box,
                    int size, const Normalization& norm, float* out);
void ReferenceCropResize(const uint8_t* rgb, int width, int height, const CropBox& box, int size,
                         const Normalization& norm, float* out);

// Samples `box` into a size x size HWC RGB uint8 image (rounded), for re-encoding.
std::vector<uint8_t> CropResizeRgb(const uint8_t* rgb, int width, int height, const CropBox& box,
                                   int out_w, int out_h);

}  // namespace wrpn::trainer
