#include "common/network_spec.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace wrpn {
namespace {

int ConvOut(int in, int kernel, int stride, int pad) { return (in + 2 * pad - kernel) / stride + 1; }

// PyTorch's pooling output size, including its ceil_mode rule (the last window must start inside
// the padded input).
int PoolOut(int in, int kernel, int stride, int pad, bool ceil_mode) {
  int num = in + 2 * pad - kernel;
  int out = (ceil_mode ? (num + stride - 1) / stride : num / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// Walks a network in forward order, tracking the current map (an op's output), and records its
// layers and ops.
class Builder {
 public:
  Builder(NetworkSpec* spec) : spec_(spec) {
    OpSpec in;
    in.kind = OpKind::kInput;
    in.name = "input";
    in.channels = spec->input.channels;
    in.height = spec->input.height;
    in.width = spec->input.width;
    spec->ops.push_back(std::move(in));
  }

  int current() const { return cur_; }
  int channels() const { return op(cur_).channels; }
  int height() const { return op(cur_).height; }
  int width() const { return op(cur_).width; }
  // The next op reads the output of op `index` (a branch or a shortcut).
  void Resume(int index) { cur_ = index; }

  // A conv reading the current map; the current map becomes its output.
  void Conv(std::string name, int out, int k, int stride, int pad, bool bias = false,
            bool input_shared = false) {
    LayerSpec l;
    l.name = std::move(name);
    l.kind = LayerKind::kConv;
    l.in_channels = channels();
    l.out_channels = out;
    l.kernel_h = l.kernel_w = k;
    l.stride = stride;
    l.in_h = height();
    l.in_w = width();
    l.out_h = ConvOut(l.in_h, k, stride, pad);
    l.out_w = ConvOut(l.in_w, k, stride, pad);
    l.has_bias = bias;
    l.input_shared = input_shared;
    l.input_quantized = next_input_quantized_;
    next_input_quantized_ = true;
    if (l.out_h < 1 || l.out_w < 1) too_small_ = true;
    AddOp(OpKind::kConv, l.name, {cur_}, out, l.out_h, l.out_w);
    spec_->ops.back().layer = static_cast<int>(spec_->layers.size());
    spec_->layers.push_back(std::move(l));
  }

  void Linear(std::string name, int out, bool bias) {
    LayerSpec l;
    l.name = std::move(name);
    l.kind = LayerKind::kLinear;
    l.in_channels = channels() * height() * width();
    l.out_channels = out;
    l.has_bias = bias;
    l.input_quantized = next_input_quantized_;
    next_input_quantized_ = true;
    AddOp(OpKind::kLinear, l.name, {cur_}, out, 1, 1);
    spec_->ops.back().layer = static_cast<int>(spec_->layers.size());
    spec_->layers.push_back(std::move(l));
  }

  // Batch norm and the activation after it (the trainer always pairs them): the trial's
  // quantizer when `quantized`, else a plain ReLU.
  void Norm(bool quantized = true) {
    spec_->norm_params += 2 * int64_t{channels()};
    const OpSpec o = op(cur_);  // a copy: AddOp grows the vector
    AddOp(OpKind::kBatchNorm, o.name + ".bn", {cur_}, o.channels, o.height, o.width);
    AddOp(OpKind::kActivation, o.name + ".act", {cur_}, o.channels, o.height, o.width);
    spec_->ops.back().quantized = quantized;
  }
  void Pool(int k, int stride, int pad, bool ceil_mode = false) {
    const int h = PoolOut(height(), k, stride, pad, ceil_mode);
    const int w = PoolOut(width(), k, stride, pad, ceil_mode);
    if (h < 1 || w < 1) too_small_ = true;
    AddOp(OpKind::kMaxPool, absl::StrCat("maxpool", spec_->ops.size()), {cur_}, channels(), h, w);
  }
  void GlobalPool() { AdaptivePool(1); }
  void AdaptivePool(int size) {
    AddOp(OpKind::kAvgPool, absl::StrCat("avgpool", spec_->ops.size()), {cur_}, channels(), size,
          size);
  }
  void Add(int a, int b) {
    const OpSpec o = op(a);
    AddOp(OpKind::kAdd, absl::StrCat("add", spec_->ops.size()), {a, b}, o.channels, o.height,
          o.width);
  }
  void Concat(std::string name, const std::vector<int>& parts) {
    int c = 0;
    for (int p : parts) c += op(p).channels;
    const int h = op(parts[0]).height, w = op(parts[0]).width;
    AddOp(OpKind::kConcat, std::move(name), parts, c, h, w);
  }
  // The next layer's input is an FP32 activation (leaving the first layer, feeding the last).
  void NextInputFp32() { next_input_quantized_ = false; }

  absl::Status Finish() {
    if (too_small_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input ", spec_->input.height, "x", spec_->input.width, " is too small for network '",
          spec_->network, "' (a feature map shrinks to nothing)"));
    }
    auto& layers = spec_->layers;
    layers.front().quantized = false;
    layers.front().input_quantized = false;
    layers.back().quantized = false;
    layers.back().input_quantized = false;
    return absl::OkStatus();
  }

 private:
  const OpSpec& op(int i) const { return spec_->ops[static_cast<size_t>(i)]; }
  void AddOp(OpKind kind, std::string name, std::vector<int> inputs, int c, int h, int w) {
    OpSpec o;
    o.kind = kind;
    o.name = std::move(name);
    o.inputs = std::move(inputs);
    o.channels = c;
    o.height = h;
    o.width = w;
    spec_->ops.push_back(std::move(o));
    cur_ = static_cast<int>(spec_->ops.size()) - 1;
  }

  NetworkSpec* spec_;
  int cur_ = 0;
  bool next_input_quantized_ = false;  // the network input itself
  bool too_small_ = false;
};

void LeNet5(Builder& b, double width, int classes) {
  // LeNet-5 (LeCun et al. 1998) with batch norm after every hidden layer; padding 2 on the first
  // conv so 28x28 inputs see the 32x32 geometry of the original.
  b.Conv("conv1", ScaledChannels(6, width), 5, 1, 2);
  b.Norm(/*quantized=*/false);
  b.NextInputFp32();
  b.Pool(2, 2, 0);
  b.Conv("conv2", ScaledChannels(16, width), 5, 1, 0);
  b.Norm();
  b.Pool(2, 2, 0);
  b.Linear("fc1", ScaledChannels(120, width), false);
  b.Norm();
  b.Linear("fc2", ScaledChannels(84, width), false);
  b.Norm(/*quantized=*/false);
  b.NextInputFp32();
  b.Linear("fc3", classes, true);
}

// Pre-activation basic block (He et al. 2016, "Identity mappings"): BN-act-conv-BN-act-conv,
// with a 1x1 projection of the pre-activated input when the shape changes.
void PreActBlock(Builder& b, const std::string& name, int out, int stride, bool first_act_fp32) {
  const int x = b.current();
  b.Norm(/*quantized=*/!first_act_fp32);
  if (first_act_fp32) b.NextInputFp32();
  const int pre = b.current();
  const bool project = stride != 1 || b.channels() != out;
  b.Conv(name + ".conv1", out, 3, stride, 1);
  b.Norm();
  b.Conv(name + ".conv2", out, 3, 1, 1);
  const int main = b.current();
  int shortcut = x;
  if (project) {
    b.Resume(pre);
    if (first_act_fp32) b.NextInputFp32();
    b.Conv(name + ".shortcut", out, 1, stride, 0, false, /*input_shared=*/true);
    shortcut = b.current();
  }
  b.Add(main, shortcut);
}

// Pre-activation bottleneck block (He et al. 2016): BN-act-conv1x1, BN-act-conv3x3 (carrying the
// stride, as torchvision's ResNet-50 v1.5), BN-act-conv1x1 to 4x the width, plus identity or a
// 1x1 projection of the pre-activated input.
void PreActBottleneck(Builder& b, const std::string& name, int mid, int stride) {
  const int out = 4 * mid;
  const int x = b.current();
  b.Norm();
  const int pre = b.current();
  const bool project = stride != 1 || b.channels() != out;
  b.Conv(name + ".conv1", mid, 1, 1, 0);
  b.Norm();
  b.Conv(name + ".conv2", mid, 3, stride, 1);
  b.Norm();
  b.Conv(name + ".conv3", out, 1, 1, 0);
  const int main = b.current();
  int shortcut = x;
  if (project) {
    b.Resume(pre);
    b.Conv(name + ".shortcut", out, 1, stride, 0, false, /*input_shared=*/true);
    shortcut = b.current();
  }
  b.Add(main, shortcut);
}

void PreActResNetCifar(Builder& b, double width, int classes, int blocks_per_stage) {
  b.Conv("conv1", ScaledChannels(16, width), 3, 1, 1);
  const int base[3] = {16, 32, 64};
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < blocks_per_stage; ++i) {
      const int stride = (s > 0 && i == 0) ? 2 : 1;
      PreActBlock(b, absl::StrCat("layer", s + 1, ".", i), ScaledChannels(base[s], width), stride,
                  /*first_act_fp32=*/s == 0 && i == 0);
    }
  }
  b.Norm(/*quantized=*/false);
  b.GlobalPool();
  b.NextInputFp32();
  b.Linear("fc", classes, true);
}

void PreActResNetImageNet(Builder& b, double width, int classes, const int (&blocks)[4],
                          bool bottleneck) {
  // Stem: conv-BN-ReLU (FP32, the activation leaving the first layer) and max pool; the first
  // block's own pre-activation is quantized.
  b.Conv("conv1", ScaledChannels(64, width), 7, 2, 3);
  b.Norm(/*quantized=*/false);
  b.Pool(3, 2, 1);
  const int base[4] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    for (int i = 0; i < blocks[s]; ++i) {
      const int stride = (s > 0 && i == 0) ? 2 : 1;
      const std::string name = absl::StrCat("layer", s + 1, ".", i);
      if (bottleneck) {
        PreActBottleneck(b, name, ScaledChannels(base[s], width), stride);
      } else {
        PreActBlock(b, name, ScaledChannels(base[s], width), stride, /*first_act_fp32=*/false);
      }
    }
  }
  b.Norm(/*quantized=*/false);
  b.GlobalPool();
  b.NextInputFp32();
  b.Linear("fc", classes, true);
}

void AlexNet(Builder& b, double width, int classes) {
  // torchvision's AlexNet layout (Krizhevsky 2014, "One weird trick": 64-192-384-256-256 filters,
  // 4096-4096 hidden units), with batch norm after every hidden layer and no bias before it.
  b.Conv("conv1", ScaledChannels(64, width), 11, 4, 2);
  b.Norm(/*quantized=*/false);
  b.NextInputFp32();
  b.Pool(3, 2, 0);
  b.Conv("conv2", ScaledChannels(192, width), 5, 1, 2);
  b.Norm();
  b.Pool(3, 2, 0);
  b.Conv("conv3", ScaledChannels(384, width), 3, 1, 1);
  b.Norm();
  b.Conv("conv4", ScaledChannels(256, width), 3, 1, 1);
  b.Norm();
  b.Conv("conv5", ScaledChannels(256, width), 3, 1, 1);
  b.Norm();
  b.Pool(3, 2, 0);
  b.AdaptivePool(6);
  b.Linear("fc1", ScaledChannels(4096, width), false);
  b.Norm();
  b.Linear("fc2", ScaledChannels(4096, width), false);
  b.Norm(/*quantized=*/false);
  b.NextInputFp32();
  b.Linear("fc3", classes, true);
}

struct InceptionCfg {
  const char* name;
  int c1, c3r, c3, c5r, c5, pool;
};

void InceptionBN(Builder& b, double width, int classes) {
  // GoogLeNet (Szegedy et al. 2015) in torchvision's layout with batch norm after every conv, and
  // the 5x5 branch made of two 3x3 convs as in BN-Inception (Ioffe & Szegedy 2015).
  auto s = [&](int c) { return ScaledChannels(c, width); };
  b.Conv("conv1", s(64), 7, 2, 3);
  b.Norm(/*quantized=*/false);
  b.NextInputFp32();
  b.Pool(3, 2, 0, true);
  b.Conv("conv2", s(64), 1, 1, 0);
  b.Norm();
  b.Conv("conv3", s(192), 3, 1, 1);
  b.Norm();
  b.Pool(3, 2, 0, true);
  const InceptionCfg cfgs[] = {
      {"inception3a", 64, 96, 128, 16, 32, 32},    {"inception3b", 128, 128, 192, 32, 96, 64},
      {"inception4a", 192, 96, 208, 16, 48, 64},   {"inception4b", 160, 112, 224, 24, 64, 64},
      {"inception4c", 128, 128, 256, 24, 64, 64},  {"inception4d", 112, 144, 288, 32, 64, 64},
      {"inception4e", 256, 160, 320, 32, 128, 128}, {"inception5a", 256, 160, 320, 32, 128, 128},
      {"inception5b", 384, 192, 384, 48, 128, 128}};
  for (const auto& c : cfgs) {
    const std::string n = c.name;
    if (n == "inception4a") b.Pool(3, 2, 0, true);
    if (n == "inception5a") b.Pool(2, 2, 0, true);
    // The last module's outputs feed the classifier, so they stay FP32.
    const bool out_q = n != "inception5b";
    const int in = b.current();
    b.Conv(n + ".branch1", s(c.c1), 1, 1, 0);
    b.Norm(out_q);
    const int b1 = b.current();
    b.Resume(in);
    b.Conv(n + ".branch2.0", s(c.c3r), 1, 1, 0, false, true);
    b.Norm();
    b.Conv(n + ".branch2.1", s(c.c3), 3, 1, 1);
    b.Norm(out_q);
    const int b2 = b.current();
    b.Resume(in);
    b.Conv(n + ".branch3.0", s(c.c5r), 1, 1, 0, false, true);
    b.Norm();
    b.Conv(n + ".branch3.1", s(c.c5), 3, 1, 1);
    b.Norm();
    b.Conv(n + ".branch3.2", s(c.c5), 3, 1, 1);
    b.Norm(out_q);
    const int b3 = b.current();
    b.Resume(in);
    b.Pool(3, 1, 1, true);  // 3x3/1 max pool keeps the size
    b.Conv(n + ".branch4", s(c.pool), 1, 1, 0, false, true);
    b.Norm(out_q);
    b.Concat(n, {b1, b2, b3, b.current()});
  }
  b.GlobalPool();
  b.NextInputFp32();
  b.Linear("fc", classes, true);
}

}  // namespace

int64_t LayerSpec::WeightCount() const {
  return int64_t{in_channels} * out_channels * kernel_h * kernel_w;
}

int64_t LayerSpec::Fmas() const { return WeightCount() * out_h * out_w; }

int64_t NetworkSpec::WeightCount() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.WeightCount();
  return n;
}

int64_t NetworkSpec::ParamCount() const {
  int64_t n = norm_params;
  for (const auto& l : layers) n += l.ParamCount();
  return n;
}

int64_t NetworkSpec::Fmas() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.Fmas();
  return n;
}

const std::vector<std::string>& KnownNetworks() {
  static const std::vector<std::string> kNames = {"lenet5",   "resnet20", "resnet18", "resnet34",
                                                  "resnet50", "alexnet",  "inception_bn"};
  return kNames;
}

bool IsKnownNetwork(std::string_view network) {
  const auto& n = KnownNetworks();
  return std::find(n.begin(), n.end(), network) != n.end();
}

InputShape DefaultInput(std::string_view network) {
  if (network == "lenet5" || network == "resnet20") return InputShape{1, 28, 28, 10};
  return InputShape{3, 224, 224, 1000};
}

int ScaledChannels(int base, double width) {
  return std::max(1, static_cast<int>(std::lround(base * width)));
}

absl::StatusOr<NetworkSpec> DescribeNetwork(std::string_view network, double width,
                                            const InputShape& input) {
  if (!IsKnownNetwork(network)) {
    return absl::InvalidArgumentError(absl::StrCat("network: unknown network '", std::string(network),
                                                   "' (known: ", absl::StrJoin(KnownNetworks(), ", "),
                                                   ")"));
  }
  if (!(width > 0) || !std::isfinite(width)) {
    return absl::InvalidArgumentError(absl::StrCat("width: must be > 0, got ", width));
  }
  if (input.channels < 1 || input.height < 1 || input.width < 1 || input.classes < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("input: channels, height and width must be >= 1 and classes >= 2, got ",
                     input.channels, "x", input.height, "x", input.width, " with ", input.classes,
                     " classes"));
  }
  NetworkSpec spec;
  spec.network = std::string(network);
  spec.width = width;
  spec.input = input;
  Builder b(&spec);
  if (network == "lenet5") {
    LeNet5(b, width, input.classes);
  } else if (network == "resnet20") {
    PreActResNetCifar(b, width, input.classes, 3);
  } else if (network == "resnet18") {
    PreActResNetImageNet(b, width, input.classes, {2, 2, 2, 2}, /*bottleneck=*/false);
  } else if (network == "resnet34") {
    PreActResNetImageNet(b, width, input.classes, {3, 4, 6, 3}, /*bottleneck=*/false);
  } else if (network == "resnet50") {
    PreActResNetImageNet(b, width, input.classes, {3, 4, 6, 3}, /*bottleneck=*/true);
  } else if (network == "alexnet") {
    AlexNet(b, width, input.classes);
  } else {
    InceptionBN(b, width, input.classes);
  }
  if (auto s = b.Finish(); !s.ok()) return s;
  return spec;
}

absl::StatusOr<CostReport> ComputeCost(std::string_view network, double width, int wbits,
                                       int abits, const InputShape& input) {
  if (!IsValidBits(wbits)) {
    return absl::InvalidArgumentError(absl::StrCat("wbits: must be 1..16 or 32, got ", wbits));
  }
  if (!IsValidBits(abits)) {
    return absl::InvalidArgumentError(absl::StrCat("abits: must be 1..16 or 32, got ", abits));
  }
  auto wide = DescribeNetwork(network, width, input);
  if (!wide.ok()) return wide.status();
  auto base = DescribeNetwork(network, 1.0, input);
  if (!base.ok()) return base.status();
  CostReport r;
  r.fmas = wide->Fmas();
  r.baseline_fmas = base->Fmas();
  r.fma_ratio = static_cast<double>(r.fmas) / static_cast<double>(r.baseline_fmas);
  const double baseline_cost = static_cast<double>(r.baseline_fmas) * 64.0;
  r.cost_uniform = static_cast<double>(r.fmas) * (wbits + abits) / baseline_cost;
  double mixed = 0;
  for (const auto& l : wide->layers) {
    mixed += static_cast<double>(l.Fmas()) * (l.quantized ? wbits + abits : 64);
  }
  r.cost_first_last_fp32 = mixed / baseline_cost;
  return r;
}

}  // namespace wrpn
