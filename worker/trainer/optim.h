#pragma once
// Optimizer steps faster than LibTorch's per-parameter loops. Stateless functions; call from the
// training thread.
#include <torch/optim/sgd.h>

namespace wrpn::trainer {

// torch::optim::SGD's update written with ATen's multi-tensor (foreach) kernels: a handful of
// launches per step instead of several per parameter, which is what makes small networks
// launch-bound on a GPU. Same math and the same state (momentum buffers in the optimizer's own
// state map), so checkpoints stay interchangeable with opt.step().
void ForeachSgdStep(torch::optim::SGD& opt);

}  // namespace wrpn::trainer
