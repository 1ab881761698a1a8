#include "worker/trainer/optim.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <sstream>
#include <string>
#include <type_traits>

namespace wrpn::trainer {
namespace {

// The key torch::optim keeps per-parameter state under (a string in LibTorch 1.x, a pointer in
// 2.x).
template <typename Key>
Key StateKey(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

}  // namespace

void ForeachSgdStep(torch::optim::SGD& opt) {
  torch::NoGradGuard no_grad;
  using Key = typename std::decay_t<decltype(opt.state())>::key_type;
  for (auto& group : opt.param_groups()) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    std::vector<torch::Tensor> params, grads, bufs;
    std::vector<torch::Tensor> fresh_params, fresh_grads;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      params.push_back(p);
      grads.push_back(p.grad());
    }
    if (params.empty()) continue;
    if (o.weight_decay() != 0) grads = at::_foreach_add(grads, params, o.weight_decay());
    if (o.momentum() != 0) {
      bool all_have = true;
      for (auto& p : params) all_have = all_have && opt.state().count(StateKey<Key>(p)) > 0;
      if (!all_have) {
        // First step: the buffer starts as the gradient itself (as in torch::optim::SGD).
        for (size_t i = 0; i < params.size(); ++i) {
          auto st = std::make_unique<torch::optim::SGDParamState>();
          st->momentum_buffer(grads[i].clone().detach());
          bufs.push_back(st->momentum_buffer());
          opt.state()[StateKey<Key>(params[i])] = std::move(st);
        }
      } else {
        for (auto& p : params) {
          bufs.push_back(static_cast<torch::optim::SGDParamState&>(*opt.state()[StateKey<Key>(p)])
                             .momentum_buffer());
        }
        at::_foreach_mul_(bufs, o.momentum());
        at::_foreach_add_(bufs, grads, 1 - o.dampening());
      }
      if (o.nesterov()) {
        grads = at::_foreach_add(grads, bufs, o.momentum());
      } else {
        grads = bufs;
      }
    }
    at::_foreach_add_(params, grads, -o.lr());
  }
}


}  // namespace wrpn::trainer
