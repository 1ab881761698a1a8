#include "worker/trainer/networks.h"

#include <cmath>

#include <torch/nn.h>

#include "absl/strings/str_cat.h"
#include "worker/trainer/quantizer.h"

namespace wrpn::trainer {
namespace {

thread_local FmaCounter* g_counter = nullptr;

namespace nn = torch::nn;

// Conv or linear layer whose forward uses the quantized copy of its FP32 master weight.
class QLayerImpl : public nn::Module {
 public:
  QLayerImpl(const LayerSpec& spec, int pad, const Precision& p)
      : kind_(spec.kind),
        stride_(spec.stride),
        pad_(pad),
        wbits_(spec.quantized ? p.wbits : 32),
        fixed_scale_(p.weight_scale),
        scheme_(p.scheme) {
    if (kind_ == LayerKind::kConv) {
      weight_ = register_parameter(
          "weight", torch::empty({spec.out_channels, spec.in_channels, spec.kernel_h,
                                  spec.kernel_w}));
      nn::init::kaiming_normal_(weight_, 0, torch::kFanOut, torch::kReLU);
    } else {
      weight_ = register_parameter("weight", torch::empty({spec.out_channels, spec.in_channels}));
      nn::init::kaiming_uniform_(weight_, std::sqrt(5.0));
    }
    if (spec.has_bias) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(weight_[0].numel()));
      bias_ = register_parameter("bias", torch::empty({spec.out_channels}));
      nn::init::uniform_(bias_, -bound, bound);
    }
    if (scheme_ == QuantScheme::kLsq && wbits_ >= 2 && wbits_ <= 16) {
      step_ = register_parameter("step", torch::ones({}));
      step_ready_ = register_buffer("step_ready", torch::zeros({}));
    }
  }

  torch::Tensor QuantizedWeight() const {
    if (wbits_ == 32) return weight_;
    switch (scheme_) {
      case QuantScheme::kWrpn:
        if (fixed_scale_ > 0) return QuantizeWeight(weight_, wbits_, fixed_scale_);
        return QuantizeWeightAdaptive(weight_, wbits_);
      case QuantScheme::kLsq:
        // LSQ defines no 1-bit weights (Qp = 0): binary-weight-network sign(w) * mean|w|.
        if (!step_.defined()) return QuantizeWeight(weight_, 1, AdaptiveWeightScale(weight_, 1));
        InitStep();
        return LsqQuantize(weight_, step_, LsqWeightRange(wbits_),
                           LsqGradScale(weight_.numel(), LsqWeightRange(wbits_).qp));
      case QuantScheme::kPact:
      case QuantScheme::kDorefa:
        return DorefaWeight(weight_, wbits_);
    }
    return weight_;
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor w = QuantizedWeight();
    if (kind_ == LayerKind::kConv) {
      torch::Tensor y = torch::conv2d(x, w, bias_, stride_, pad_);
      if (g_counter) FmaCounter::Add(weight_.numel() * y.size(2) * y.size(3));
      return y;
    }
    if (g_counter) FmaCounter::Add(weight_.numel());
    return torch::linear(x, w, bias_);
  }

 private:
  LayerKind kind_;
  int64_t stride_, pad_;
  // The paper's initial step from the weights as they are at the first forward.
  // `ready_` caches the buffer so that a CUDA step does not sync on it once set.
  void InitStep() const {
    if (ready_ || (ready_ = step_ready_.item<float>() != 0)) return;
    torch::NoGradGuard no_grad;
    step_.copy_(LsqInitialStep(weight_, LsqWeightRange(wbits_).qp));
    step_ready_.fill_(1);
    ready_ = true;
  }

  int wbits_;
  double fixed_scale_;
  QuantScheme scheme_;
  torch::Tensor weight_, bias_, step_, step_ready_;
  mutable bool ready_ = false;
};
TORCH_MODULE(QLayer);

// Quantized activation (clip to the scheme's range, round); 32 bits: ReLU.
class QActImpl : public nn::Module {
 public:
  QActImpl(int bits, QuantScheme scheme)
      : bits_(bits), scheme_(bits == 32 ? QuantScheme::kWrpn : scheme) {
    if (scheme_ == QuantScheme::kLsq) {
      step_ = register_parameter("step", torch::ones({}));
      step_ready_ = register_buffer("step_ready", torch::zeros({}));
    }
    if (scheme_ == QuantScheme::kPact) {
      alpha_ = register_parameter("alpha", torch::full({}, kPactInitialAlpha));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    if (scheme_ == QuantScheme::kPact) return PactActivation(x, alpha_, bits_);
    if (scheme_ != QuantScheme::kLsq) return QuantizeActivation(x, bits_);
    const LsqRange range = LsqActivationRange(bits_);
    if (!ready_ && !(ready_ = step_ready_.item<float>() != 0)) {
      // The paper quantizes post-ReLU activations: its mean|v| is over ReLU(x).
      torch::NoGradGuard no_grad;
      step_.copy_(LsqInitialStep(torch::relu(x), range.qp));
      step_ready_.fill_(1);
      ready_ = true;
    }
    const int64_t per_image = x.dim() > 0 && x.size(0) > 0 ? x.numel() / x.size(0) : x.numel();
    return LsqQuantize(x, step_, range, LsqGradScale(per_image, range.qp));
  }

 private:
  int bits_;
  QuantScheme scheme_;
  torch::Tensor step_, step_ready_, alpha_;
  bool ready_ = false;  // caches step_ready_ (no CUDA sync per step once set)
};
TORCH_MODULE(QAct);

// Looks layers up in the network description so modules and cost model cannot disagree.
class Layers {
 public:
  Layers(const NetworkSpec& spec, const Precision& p) : spec_(spec), p_(p) {}
  QLayer Make(const std::string& name, int pad = 0) const {
    for (const auto& l : spec_.layers) {
      if (l.name == name) return QLayer(l, pad, p_);
    }
    throw std::logic_error("network description has no layer " + name);
  }
  const LayerSpec& Get(const std::string& name) const {
    for (const auto& l : spec_.layers)
      if (l.name == name) return l;
    throw std::logic_error("network description has no layer " + name);
  }
  int abits() const { return p_.abits; }
  QuantScheme scheme() const { return p_.scheme; }

 private:
  const NetworkSpec& spec_;
  Precision p_;
};

nn::BatchNorm2d BN2(int c, double eps = 1e-5) {
  return nn::BatchNorm2d(nn::BatchNorm2dOptions(c).eps(eps));
}
nn::BatchNorm1d BN1(int c) { return nn::BatchNorm1d(nn::BatchNorm1dOptions(c)); }

// A Sequential with a concrete forward, so chains can nest inside chains.
class ChainImpl : public nn::SequentialImpl {
 public:
  using nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return nn::SequentialImpl::forward(x); }
};
TORCH_MODULE(Chain);

class SequentialNet : public Network {
 public:
  explicit SequentialNet(Chain body) : body_(register_module("body", body)) {}
  torch::Tensor forward(torch::Tensor x) override { return body_->forward(x); }

 private:
  Chain body_;
};

std::shared_ptr<Network> LeNet5(const Layers& L) {
  Chain s;
  s->push_back("conv1", L.Make("conv1", 2));
  s->push_back("bn1", BN2(L.Get("conv1").out_channels));
  s->push_back("act1", QAct(32, L.scheme()));
  s->push_back("pool1", nn::MaxPool2d(2));
  s->push_back("conv2", L.Make("conv2"));
  s->push_back("bn2", BN2(L.Get("conv2").out_channels));
  s->push_back("act2", QAct(L.abits(), L.scheme()));
  s->push_back("pool2", nn::MaxPool2d(2));
  s->push_back("flatten", nn::Flatten());
  s->push_back("fc1", L.Make("fc1"));
  s->push_back("bn3", BN1(L.Get("fc1").out_channels));
  s->push_back("act3", QAct(L.abits(), L.scheme()));
  s->push_back("fc2", L.Make("fc2"));
  s->push_back("bn4", BN1(L.Get("fc2").out_channels));
  s->push_back("act4", QAct(32, L.scheme()));
  s->push_back("fc3", L.Make("fc3"));
  return std::make_shared<SequentialNet>(s);
}

std::shared_ptr<Network> AlexNet(const Layers& L) {
  Chain s;
  auto conv = [&](const std::string& name, int pad, int act_bits) {
    s->push_back(std::string(name), L.Make(name, pad));
    s->push_back(std::string(name + "_bn"), BN2(L.Get(name).out_channels));
    s->push_back(std::string(name + "_act"), QAct(act_bits, L.scheme()));
  };
  conv("conv1", 2, 32);
  s->push_back("pool1", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2)));
  conv("conv2", 2, L.abits());
  s->push_back("pool2", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2)));
  conv("conv3", 1, L.abits());
  conv("conv4", 1, L.abits());
  conv("conv5", 1, L.abits());
  s->push_back("pool5", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2)));
  s->push_back("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({6, 6})));
  s->push_back("flatten", nn::Flatten());
  s->push_back("fc1", L.Make("fc1"));
  s->push_back("fc1_bn", BN1(L.Get("fc1").out_channels));
  s->push_back("fc1_act", QAct(L.abits(), L.scheme()));
  s->push_back("fc2", L.Make("fc2"));
  s->push_back("fc2_bn", BN1(L.Get("fc2").out_channels));
  s->push_back("fc2_act", QAct(32, L.scheme()));
  s->push_back("fc3", L.Make("fc3"));
  return std::make_shared<SequentialNet>(s);
}

// Pre-activation basic block: BN-act-conv-BN-act-conv plus identity or a 1x1 projection of the
// pre-activated input.
class PreActBlockImpl : public nn::Module {
 public:
  PreActBlockImpl(const Layers& L, const std::string& name, int first_act_bits) {
    const LayerSpec& c1 = L.Get(name + ".conv1");
    bn1_ = register_module("bn1", BN2(c1.in_channels));
    act1_ = register_module("act1", QAct(first_act_bits, L.scheme()));
    conv1_ = register_module("conv1", L.Make(name + ".conv1", 1));
    bn2_ = register_module("bn2", BN2(c1.out_channels));
    act2_ = register_module("act2", QAct(L.abits(), L.scheme()));
    conv2_ = register_module("conv2", L.Make(name + ".conv2", 1));
    if (c1.stride != 1 || c1.in_channels != c1.out_channels) {
      shortcut_ = register_module("shortcut", L.Make(name + ".shortcut", 0));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor o = act1_(bn1_(x));
    torch::Tensor sc = shortcut_ ? shortcut_(o) : x;
    o = conv1_(o);
    o = conv2_(act2_(bn2_(o)));
    return o + sc;
  }

 private:
  nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  QAct act1_{nullptr}, act2_{nullptr};
  QLayer conv1_{nullptr}, conv2_{nullptr}, shortcut_{nullptr};
};
TORCH_MODULE(PreActBlock);

// Pre-activation bottleneck block: BN-act-conv1x1, BN-act-conv3x3 (strided), BN-act-conv1x1, plus
// identity or a 1x1 projection of the pre-activated input.
class PreActBottleneckImpl : public nn::Module {
 public:
  PreActBottleneckImpl(const Layers& L, const std::string& name) {
    const LayerSpec& c1 = L.Get(name + ".conv1");
    const LayerSpec& c2 = L.Get(name + ".conv2");
    const LayerSpec& c3 = L.Get(name + ".conv3");
    bn1_ = register_module("bn1", BN2(c1.in_channels));
    act1_ = register_module("act1", QAct(L.abits(), L.scheme()));
    conv1_ = register_module("conv1", L.Make(name + ".conv1", 0));
    bn2_ = register_module("bn2", BN2(c1.out_channels));
    act2_ = register_module("act2", QAct(L.abits(), L.scheme()));
    conv2_ = register_module("conv2", L.Make(name + ".conv2", 1));
    bn3_ = register_module("bn3", BN2(c2.out_channels));
    act3_ = register_module("act3", QAct(L.abits(), L.scheme()));
    conv3_ = register_module("conv3", L.Make(name + ".conv3", 0));
    if (c2.stride != 1 || c1.in_channels != c3.out_channels) {
      shortcut_ = register_module("shortcut", L.Make(name + ".shortcut", 0));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor o = act1_(bn1_(x));
    torch::Tensor sc = shortcut_ ? shortcut_(o) : x;
    o = conv1_(o);
    o = conv2_(act2_(bn2_(o)));
    o = conv3_(act3_(bn3_(o)));
    return o + sc;
  }

 private:
  nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  QAct act1_{nullptr}, act2_{nullptr}, act3_{nullptr};
  QLayer conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr}, shortcut_{nullptr};
};
TORCH_MODULE(PreActBottleneck);

std::shared_ptr<Network> PreActResNet(const Layers& L, const NetworkSpec& spec, bool imagenet) {
  Chain s;
  if (imagenet) {
    s->push_back("conv1", L.Make("conv1", 3));
    s->push_back("bn1", BN2(L.Get("conv1").out_channels));
    s->push_back("act1", QAct(32, L.scheme()));
    s->push_back("pool1", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
  } else {
    s->push_back("conv1", L.Make("conv1", 1));
  }
  const bool bottleneck = spec.network == "resnet50";
  for (const auto& l : spec.layers) {
    const std::string suffix = ".conv1";
    if (l.name.size() > suffix.size() &&
        l.name.compare(l.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string block = l.name.substr(0, l.name.size() - suffix.size());
      const bool first = block == "layer1.0";
      std::string module_name = block;
      std::replace(module_name.begin(), module_name.end(), '.', '_');
      if (bottleneck) {
        s->push_back(std::string(module_name), PreActBottleneck(L, block));
      } else {
        s->push_back(std::string(module_name), PreActBlock(L, block, first && !imagenet ? 32 : L.abits()));
      }
    }
  }
  // The global pool leaves a 1x1 map, so the classifier's inputs are the last block's channels.
  s->push_back("bn_final", BN2(L.Get("fc").in_channels));
  s->push_back("act_final", QAct(32, L.scheme()));
  s->push_back("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1})));
  s->push_back("flatten", nn::Flatten());
  s->push_back("fc", L.Make("fc"));
  return std::make_shared<SequentialNet>(s);
}

Chain BasicConv(const Layers& L, const std::string& name, int pad, int act_bits) {
  Chain s;
  s->push_back("conv", L.Make(name, pad));
  s->push_back("bn", BN2(L.Get(name).out_channels, 1e-3));
  s->push_back("act", QAct(act_bits, L.scheme()));
  return s;
}

class InceptionImpl : public nn::Module {
 public:
  InceptionImpl(const Layers& L, const std::string& n, int act_bits) {
    b1_ = register_module("branch1", BasicConv(L, n + ".branch1", 0, act_bits));
    b2_ = register_module("branch2", Chain(BasicConv(L, n + ".branch2.0", 0, L.abits()),
                                                    BasicConv(L, n + ".branch2.1", 1, act_bits)));
    b3_ = register_module("branch3", Chain(BasicConv(L, n + ".branch3.0", 0, L.abits()),
                                                    BasicConv(L, n + ".branch3.1", 1, L.abits()),
                                                    BasicConv(L, n + ".branch3.2", 1, act_bits)));
    b4_ = register_module(
        "branch4",
        Chain(nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(1).padding(1).ceil_mode(true)),
                       BasicConv(L, n + ".branch4", 0, act_bits)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat({b1_->forward(x), b2_->forward(x), b3_->forward(x), b4_->forward(x)}, 1);
  }

 private:
  Chain b1_{nullptr}, b2_{nullptr}, b3_{nullptr}, b4_{nullptr};
};
TORCH_MODULE(Inception);

std::shared_ptr<Network> InceptionBN(const Layers& L) {
  Chain s;
  s->push_back("conv1", BasicConv(L, "conv1", 3, 32));
  s->push_back("pool1", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).ceil_mode(true)));
  s->push_back("conv2", BasicConv(L, "conv2", 0, L.abits()));
  s->push_back("conv3", BasicConv(L, "conv3", 1, L.abits()));
  s->push_back("pool2", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).ceil_mode(true)));
  for (const char* n : {"inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
                        "inception4d", "inception4e", "inception5a", "inception5b"}) {
    const std::string name = n;
    if (name == "inception4a") {
      s->push_back("pool3", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).ceil_mode(true)));
    }
    if (name == "inception5a") {
      s->push_back("pool4", nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2).ceil_mode(true)));
    }
    // The last module's outputs feed the classifier, so they stay FP32.
    s->push_back(std::string(name), Inception(L, name, name == "inception5b" ? 32 : L.abits()));
  }
  s->push_back("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({1, 1})));
  s->push_back("flatten", nn::Flatten());
  s->push_back("fc", L.Make("fc"));
  return std::make_shared<SequentialNet>(s);
}

}  // namespace

FmaCounter::FmaCounter() : previous_(g_counter) { g_counter = this; }
FmaCounter::~FmaCounter() { g_counter = previous_; }
void FmaCounter::Add(int64_t n) {
  if (g_counter) g_counter->fmas_ += n;
}

std::vector<std::pair<std::string, torch::Tensor>> QuantizedWeights(Network& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& m : net.named_modules()) {
    if (const auto* q = dynamic_cast<const QLayerImpl*>(m.value().get())) {
      out.emplace_back(m.key(), q->QuantizedWeight().detach());
    }
  }
  return out;
}

bool QuantizerInitPending(Network& net) {
  for (const auto& b : net.named_buffers()) {
    const std::string& name = b.key();
    if (name.size() >= 10 && name.compare(name.size() - 10, 10, "step_ready") == 0 &&
        b.value().item<float>() == 0) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::shared_ptr<Network>> BuildNetwork(const std::string& network, double width,
                                                      const InputShape& input,
                                                      const Precision& precision) {
  if (!IsValidBits(precision.wbits)) {
    return absl::InvalidArgumentError(
        absl::StrCat("wbits: must be 1..16 or 32, got ", precision.wbits));
  }
  if (!IsValidBits(precision.abits)) {
    return absl::InvalidArgumentError(
        absl::StrCat("abits: must be 1..16 or 32, got ", precision.abits));
  }
  auto spec = DescribeNetwork(network, width, input);
  if (!spec.ok()) return spec.status();
  const Layers L(*spec, precision);
  if (network == "lenet5") return LeNet5(L);
  if (network == "alexnet") return AlexNet(L);
  if (network == "inception_bn") return InceptionBN(L);
  return PreActResNet(L, *spec, /*imagenet=*/network != "resnet20");
}

}  // namespace wrpn::trainer
