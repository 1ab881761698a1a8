// One rank of the data-parallel tests (tests/worker/trainer/distributed_test.cc), a separate
// process per rank as in production. Usage:
//   ddp_rank MODE RANK WORLD PORT GLOBAL_BATCH STEPS OUT
// MODE "nobn": a conv net without batch norm trained STEPS SGD steps on a fixed global batch
// sequence (rank r takes its slice of each global batch); writes the final parameters to OUT.
// MODE "bn": a net with batch norm; writes rank r's running means before and after the
// broadcast the trainer does before evaluation.
#include <torch/torch.h>

#include <fstream>
#include <iostream>

#include "worker/trainer/communicator.h"
#include "worker/trainer/reducer.h"

using namespace wrpn::trainer;

int main(int argc, char** argv) {
  if (argc != 8) {
    std::cerr << "usage: ddp_rank MODE RANK WORLD PORT GLOBAL_BATCH STEPS OUT\n";
    return 2;
  }
  const std::string mode = argv[1];
  const int rank = std::stoi(argv[2]), world = std::stoi(argv[3]), port = std::stoi(argv[4]);
  const int64_t global_batch = std::stoll(argv[5]);
  const int steps = std::stoi(argv[6]);
  torch::set_num_threads(1);
  torch::manual_seed(1234 + rank);  // different init per rank: the broadcast must fix it

  const bool bn = mode == "bn";
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 3).padding(1)));
  if (bn) net->push_back(torch::nn::BatchNorm2d(8));
  net->push_back(torch::nn::ReLU());
  net->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 8, 3).stride(2)));
  net->push_back(torch::nn::ReLU());
  net->push_back(torch::nn::Flatten());
  net->push_back(torch::nn::Linear(8 * 6 * 6, 10));

  std::unique_ptr<Communicator> comm;
  if (world > 1) {
    DistributedOptions o;
    o.rank = rank;
    o.world_size = world;
    o.master_port = port;
    o.rendezvous_timeout = std::chrono::seconds(30);
    auto c = Connect(o, false);
    if (!c.ok()) {
      std::cerr << c.status() << "\n";
      return 1;
    }
    comm = std::move(*c);
    std::vector<at::Tensor> state = net->parameters();
    for (auto& b : net->buffers()) state.push_back(b);
    BroadcastTensors(state, *comm);
  }
  // Small buckets so several all-reduces overlap the backward pass.
  std::unique_ptr<GradientReducer> reducer;
  if (comm) reducer = std::make_unique<GradientReducer>(net->parameters(), *comm, 4096);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  const int64_t b = global_batch / world;
  for (int s = 0; s < steps; ++s) {
    torch::manual_seed(s);  // the same global batch on every rank
    const torch::Tensor x = torch::randn({global_batch, 1, 14, 14}).narrow(0, rank * b, b);
    const torch::Tensor y = torch::randint(0, 10, {global_batch}).narrow(0, rank * b, b);
    opt.zero_grad();
    const torch::Tensor loss = torch::cross_entropy_loss(net->forward(x), y);
    if (reducer) reducer->Prepare();
    loss.backward();
    if (reducer) reducer->Finish();
    opt.step();
  }
  std::ofstream out(argv[7], std::ios::binary);
  auto dump = [&](const std::vector<at::Tensor>& ts) {
    for (const auto& t : ts) {
      const at::Tensor c = t.detach().contiguous().to(torch::kFloat);
      out.write(reinterpret_cast<const char*>(c.data_ptr<float>()), c.numel() * sizeof(float));
    }
  };
  if (bn) {
    dump(net->buffers());
    if (comm) BroadcastTensors(net->buffers(), *comm);
    dump(net->buffers());
  } else {
    dump(net->parameters());
  }
  if (comm) comm->Barrier();
  return 0;
}
