#include "worker/trainer/communicator.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#if defined(USE_C10D_GLOO) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>) && \
    __has_include(<gloo/config.h>)
#define WRPN_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(WRPN_WITH_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace wrpn::trainer {
namespace {

template <typename W>
class C10dWork final : public PendingWork {
 public:
  explicit C10dWork(c10::intrusive_ptr<W> w) : w_(std::move(w)) {}
  void Wait() override { w_->wait(); }

 private:
  c10::intrusive_ptr<W> w_;
};

// Wraps a c10d process group (ProcessGroup in LibTorch 1.x, Backend in 2.x; same methods).
template <typename PG>
class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<PG> pg, int rank,
                   int world, std::string backend)
      : store_(std::move(store)), pg_(std::move(pg)), rank_(rank), world_(world),
        backend_(std::move(backend)) {}
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend() const override { return backend_; }
  std::unique_ptr<PendingWork> AllReduceSum(at::Tensor t) override {
    std::vector<at::Tensor> v{std::move(t)};
    auto work = pg_->allreduce(v);
    return std::make_unique<C10dWork<typename decltype(work)::element_type>>(std::move(work));
  }
  void Broadcast(at::Tensor t, int root) override {
    std::vector<at::Tensor> v{std::move(t)};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    pg_->broadcast(v, o)->wait();
  }
  void Barrier() override {
    // An all-reduce rather than barrier(): NCCL's barrier needs a device guess.
    at::Tensor one = at::ones({1}, backend_ == "nccl" ? at::TensorOptions(at::kCUDA) : at::TensorOptions());
    AllReduceSum(one)->Wait();
  }

 private:
  c10::intrusive_ptr<c10d::Store> store_;  // outlives the process group
  c10::intrusive_ptr<PG> pg_;
  int rank_, world_;
  std::string backend_;
};

std::string Key(int rank) { return absl::StrCat("wrpn/arrived/", rank); }

// Every rank announces itself, then waits until all have; a timeout names who is missing.
absl::Status WaitForRanks(c10d::Store& store, const DistributedOptions& o) {
  store.set(Key(o.rank), std::vector<uint8_t>{1});
  const auto deadline = std::chrono::steady_clock::now() + o.rendezvous_timeout;
  while (true) {
    std::vector<int> missing;
    for (int r = 0; r < o.world_size; ++r) {
      if (!store.check({Key(r)})) missing.push_back(r);
    }
    if (missing.empty()) return absl::OkStatus();
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "rendezvous at ", o.master_addr, ":", o.master_port, " timed out after ",
          o.rendezvous_timeout.count() / 1000.0, " s: rank", missing.size() > 1 ? "s " : " ",
          absl::StrJoin(missing, ", "), " of world size ", o.world_size, " never arrived"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

bool HaveGloo() {
#ifdef WRPN_HAVE_GLOO
  return true;
#else
  return false;
#endif
}

bool HaveNccl() {
#ifdef WRPN_WITH_NCCL
  return true;
#else
  return false;
#endif
}

absl::StatusOr<std::unique_ptr<Communicator>> Connect(const DistributedOptions& o, bool cuda) {
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("RANK: must be in [0, WORLD_SIZE), got rank ", o.rank, " of ", o.world_size));
  }
  if (o.master_port < 1 || o.master_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("MASTER_PORT: must be 1..65535, got ", o.master_port));
  }
  if (cuda && !HaveNccl()) {
    return absl::FailedPreconditionError("this wrpn-train was built without NCCL: no multi-GPU training");
  }
  if (!cuda && !HaveGloo()) {
    return absl::FailedPreconditionError(
        "this wrpn-train was built without Gloo (LibTorch lacks ProcessGroupGloo): no multi-process CPU training");
  }
  c10::intrusive_ptr<c10d::Store> tcp;
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(o.master_port);
    so.isServer = o.rank == 0;
    so.numWorkers.reset();
    so.waitWorkers = false;
    so.timeout = o.rendezvous_timeout;
    tcp = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const std::exception& e) {
    if (o.rank == 0) {
      return absl::UnavailableError(absl::StrCat("rank 0 cannot host the rendezvous store on port ",
                                                 o.master_port, ": ", e.what()));
    }
    return absl::DeadlineExceededError(absl::StrCat(
        "rank ", o.rank, " cannot reach rank 0 (the rendezvous store) at ", o.master_addr, ":",
        o.master_port, " within ", o.rendezvous_timeout.count() / 1000.0, " s: rank 0 never arrived"));
  }
  try {
    auto st = WaitForRanks(*tcp, o);
    if (!st.ok()) return st;
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("rendezvous store at ", o.master_addr, ":",
                                               o.master_port, " failed: ", e.what()));
  }
  auto store = c10::make_intrusive<c10d::PrefixStore>("wrpn/pg", tcp);
  try {
    if (cuda) {
#ifdef WRPN_WITH_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = o.collective_timeout;
      auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, o.rank, o.world_size, opts);
      return std::unique_ptr<Communicator>(new C10dCommunicator<c10d::ProcessGroupNCCL>(
          tcp, pg, o.rank, o.world_size, "nccl"));
#endif
    } else {
#ifdef WRPN_HAVE_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create();
      opts->timeout = o.collective_timeout;
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (o.master_addr == "127.0.0.1" || o.master_addr == "localhost") {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, o.rank, o.world_size, opts);
      return std::unique_ptr<Communicator>(new C10dCommunicator<c10d::ProcessGroupGloo>(
          tcp, pg, o.rank, o.world_size, "gloo"));
#endif
    }
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot create the ", cuda ? "NCCL" : "Gloo",
                                               " process group: ", e.what()));
  }
  return absl::InternalError("no communicator for this device");
}

}  // namespace wrpn::trainer
