#pragma once
// The image-folder and packed datasets' transforms: the crop box (ImageNet random-resized crop
// for training, resize + center crop for evaluation) and its resampling into a normalised CHW
// float map. Pure functions, safe from any thread.
//
// Two resamplers compute the same bilinear map (half-pixel centres, edge clamp, no antialias):
//  - ReferenceCropResize: double precision, pixel by pixel (the original path, kept for tests);
//  - CropResize: separable, 8-bit fixed-point weights (per output row, the two source rows
//    blended into 16 bits over the columns the box reads, then filtered along the row), with
//    the normalisation fused into the write of the output. It differs from
//    the reference by at most 1 uint8 level before normalisation (tests: crop_resize_test).
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
void ReferenceCropResize(const uint8_t* rgb, int width, int height, const CropBox& box, int size,
                         const Normalization& norm, float* out);

// Samples `box` into a size x size HWC RGB uint8 image (rounded), for re-encoding.
std::vector<uint8_t> CropResizeRgb(const uint8_t* rgb, int width, int height, const CropBox& box,
                                   int out_w, int out_h);

}  // namespace wrpn::trainer
