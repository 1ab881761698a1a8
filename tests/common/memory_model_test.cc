#include "common/memory_model.h"

#include <gtest/gtest.h>

#include <map>

namespace wrpn {
namespace {

NetworkSpec Describe(const std::string& net, double width) {
  auto s = DescribeNetwork(net, width, DefaultInput(net));
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

struct Sums {
  double per_image = 0;  // bytes per image
  double fixed = 0;      // bytes independent of the batch
};
Sums Sum(const std::vector<SavedTensor>& saved) {
  Sums s;
  for (const auto& t : saved) (t.per_image ? s.per_image : s.fixed) += t.Bytes(1);
  return s;
}

// LeNet-5 1x on 1x28x28 by hand. Maps per image: input 784, conv1 6x28x28 = 4704 (and its BN and
// ReLU outputs), pool1 6x14x14 = 1176, conv2 16x10x10 = 1600 (BN, act), pool2 16x5x5 = 400, fc1 120
// (BN, act), fc2 84 (BN, ReLU), fc3 10.
TEST(MemoryModel, LeNet5SavedTensorsByHandFp32) {
  const auto spec = Describe("lenet5", 1.0);
  const auto saved = SavedForBackward(spec, 32, 32, Storage::kAsTrained);
  // conv/linear keep their input, BN its input, ReLU its output, max pool its input (already kept:
  // the ReLU output) and int64 indices of its output size.
  std::map<std::string, int64_t> maps;  // "op/what" -> elements
  for (const auto& t : saved) maps[t.op + "/" + t.what] = t.elements;
  EXPECT_EQ(maps["conv1/input"], 784);
  EXPECT_EQ(maps["conv1.bn/input"], 4704);
  EXPECT_EQ(maps["conv1.bn/stats"], 12);  // batch mean and invstd, 6 channels
  EXPECT_EQ(maps["conv1.act/output"], 4704);
  EXPECT_EQ(maps.count("maxpool4/input"), 0u);  // the ReLU output, counted once
  EXPECT_EQ(maps["maxpool4/indices"], 1176);
  EXPECT_EQ(maps["conv2/input"], 1176);
  EXPECT_EQ(maps["fc1/input"], 400);
  EXPECT_EQ(maps.count("fc2/input"), 0u);  // fc1's activation output
  const Sums s = Sum(saved);
  const int64_t fp32_maps = 784 + 4704 + 4704 + 1176 + 1600 + 1600 + 400 + 120 + 120 + 84 + 84;
  EXPECT_DOUBLE_EQ(s.per_image, 4.0 * fp32_maps + 8.0 * (1176 + 400));
  EXPECT_DOUBLE_EQ(s.fixed, 4.0 * 2 * (6 + 16 + 120 + 84));
}

// At w2/a4 today's trainer keeps FP32 everywhere, but the quantizer keeps its input (the BN
// output) where ReLU kept its output, and the conv keeps the quantized weight copy; packed, the
// quantizer keeps a 1-bit clip mask and the quantized maps and weights take 4 and 2 bits.
TEST(MemoryModel, LeNet5QuantizedAsTrainedAndPacked) {
  const auto spec = Describe("lenet5", 1.0);
  const int64_t fp32_maps = 784 + 4704 + 4704 + 1176 + 1600 + 1600 + 400 + 120 + 120 + 84 + 84;
  const double indices = 8.0 * (1176 + 400);
  const int64_t copies = 16 * 6 * 25 + 120 * 400 + 84 * 120;  // conv2, fc1, fc2 (conv1, fc3 FP32)
  const Sums trained = Sum(SavedForBackward(spec, 2, 4, Storage::kAsTrained));
  EXPECT_DOUBLE_EQ(trained.per_image, 4.0 * (fp32_maps + 1600 + 120) + indices);
  EXPECT_DOUBLE_EQ(trained.fixed, 4.0 * 2 * (6 + 16 + 120 + 84) + 4.0 * copies);
  const Sums packed = Sum(SavedForBackward(spec, 2, 4, Storage::kPacked));
  const double quantized_maps = 0.5 * (1600 + 120), masks = (1600 + 120) / 8.0;
  EXPECT_DOUBLE_EQ(packed.per_image, 4.0 * (fp32_maps - 1600 - 120) + quantized_maps + masks + indices);
  EXPECT_DOUBLE_EQ(packed.fixed, 4.0 * 2 * (6 + 16 + 120 + 84) + copies * 2 / 8.0);
}

// Residual blocks: the add and the concat keep nothing; a pre-activated map read by conv1 and the
// projection shortcut is kept once; a 1x1 global pool (a mean) keeps nothing.
TEST(MemoryModel, SharedMapsCountedOnceAndAddConcatPoolKeepNothing) {
  for (const char* net : {"resnet20", "resnet50", "inception_bn"}) {
    const auto spec = Describe(net, 1.0);
    const auto saved = SavedForBackward(spec, 32, 32, Storage::kAsTrained);
    std::map<std::string, int> seen;
    for (const auto& t : saved) {
      EXPECT_NE(t.kind, OpKind::kAdd) << net;
      EXPECT_NE(t.kind, OpKind::kConcat) << net;
      if (t.kind == OpKind::kAvgPool) ADD_FAILURE() << net << ": global pool keeps " << t.what;
      ++seen[t.op + "/" + t.what];
    }
    for (const auto& [k, n] : seen) EXPECT_EQ(n, 1) << net << " " << k;
  }
  // ResNet-20's first projection (layer2.0) reads the pre-activation conv1 already keeps.
  const auto spec = Describe("resnet20", 1.0);
  bool shortcut_keeps_input = false;
  for (const auto& t : SavedForBackward(spec, 32, 32, Storage::kAsTrained)) {
    if (t.op == "layer2.0.shortcut" && t.what == "input") shortcut_keeps_input = true;
  }
  EXPECT_FALSE(shortcut_keeps_input);
}

// The autograd footprint: FP32 parameters, their gradients and one momentum buffer, plus the
// peak of the backward pass. LeNet-5 at batch 16 by hand: the peak is fc1's backward (its weight
// gradient 120x400 and the gradients of its 400 inputs and 120 outputs), when the tensors saved by
// the ops after it (fc1's BN input and statistics, its activation's output, fc2's BN and ReLU)
// are already freed.
TEST(MemoryModel, AutogradFootprintParts) {
  const auto spec = Describe("lenet5", 1.0);
  const auto f = ComputeAutogradFootprint(spec, 32, 32, 16, Storage::kAsTrained);
  const Sums s = Sum(SavedForBackward(spec, 32, 32, Storage::kAsTrained));
  const double loss = 16 * (2 * 4 * 10 + 8);
  EXPECT_DOUBLE_EQ(f.activation_bytes, 16 * s.per_image + loss);
  const double p = 4.0 * spec.ParamCount();
  EXPECT_DOUBLE_EQ(f.parameter_grad_bytes, p);
  EXPECT_DOUBLE_EQ(f.optimizer_bytes, p);
  EXPECT_DOUBLE_EQ(f.parameter_bytes, p + 4.0 * spec.norm_params);  // + running mean and variance
  EXPECT_DOUBLE_EQ(f.weight_bytes, f.parameter_bytes + 2 * p + s.fixed);
  const double freed = 16 * 4.0 * (120 + 120 + 84 + 84) + 4.0 * 2 * (120 + 84);
  const double fc1_grads = 16 * 4.0 * (400 + 120) + 4.0 * 120 * 400;
  EXPECT_DOUBLE_EQ(f.training_bytes, f.parameter_bytes + 2 * p + 16 * s.per_image + s.fixed + loss - freed + fc1_grads);
  EXPECT_DOUBLE_EQ(f.training_bytes, f.activation_bytes + f.weight_bytes + f.gradient_bytes);
  EXPECT_EQ(ComputeAutogradFootprint(spec, 32, 32, 16, Storage::kAsTrained, 2).optimizer_bytes, 2 * p);
}

TEST(MemoryModel, PaperAccountingActivationsDominateAtLargeBatch) {
  const auto spec = Describe("resnet34", 1.0);
  const auto small = ComputeFootprint(spec, 32, 32, 1);
  const auto large = ComputeFootprint(spec, 32, 32, 128);
  EXPECT_LT(small.activation_fraction, large.activation_fraction);
  EXPECT_GT(large.activation_fraction, 0.8);
  EXPECT_LT(small.activation_fraction, 0.3);
  EXPECT_DOUBLE_EQ(large.weight_bytes, small.weight_bytes);
  EXPECT_NEAR(large.activation_bytes, 128 * small.activation_bytes, 1e-6 * large.activation_bytes);
  // Lower activation precision shrinks activation memory by the bit ratio on quantized maps.
  const auto a4 = ComputeFootprint(spec, 32, 4, 128);
  // The first and last layers keep FP32 maps, so the saving is below the 8x bit ratio.
  EXPECT_LT(a4.activation_bytes, large.activation_bytes / 2);
  EXPECT_DOUBLE_EQ(a4.weight_bytes, large.weight_bytes);
  const auto w2 = ComputeFootprint(spec, 2, 32, 128);
  EXPECT_LT(w2.weight_bytes, large.weight_bytes / 8);
}

// Where every conv is followed by BN and an activation, autograd keeps more maps per layer than
// the paper counts (the BN output feeding a quantizer or the ReLU output, pooling indices). Not so
// in the pre-activation ResNets: there the conv output feeding the residual add is not kept.
TEST(MemoryModel, AutogradKeepsMoreActivationsThanThePaperCountsInConvBnActNetworks) {
  for (const char* net : {"lenet5", "alexnet", "inception_bn"}) {
    const auto spec = Describe(net, 1.0);
    const auto paper = ComputeFootprint(spec, 32, 32, 128);
    const auto autograd = ComputeAutogradFootprint(spec, 32, 32, 128, Storage::kAsTrained);
    EXPECT_GT(autograd.activation_bytes, paper.activation_bytes) << net;
  }
}

}  // namespace
}  // namespace wrpn
