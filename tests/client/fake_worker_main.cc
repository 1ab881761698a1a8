// wrpn-fake-worker: registers with a coordinator and completes its queued trials with synthetic
// metrics (tests/client/fake_worker.h), so the CLI can be tried end to end without LibTorch.
// Usage: wrpn-fake-worker --addr 127.0.0.1:7070 [--token T] [--epoch-delay-ms 200] [--fail 1/1]
#include <iostream>

#include <CLI/CLI.hpp>

#include "tests/client/fake_worker.h"

int main(int argc, char** argv) {
  CLI::App app{"wrpn-fake-worker: completes queued trials with synthetic metrics (for trying the CLI)"};
  std::string addr = "127.0.0.1:7070", token, fail_bits;
  int delay_ms = 0, slots = 2;
  app.add_option("--addr", addr, "coordinator host:port")->capture_default_str();
  app.add_option("--token", token, "worker-role token");
  app.add_option("--epoch-delay-ms", delay_ms, "pause after each epoch")->capture_default_str();
  app.add_option("--slots", slots, "concurrent CPU trials to announce")->capture_default_str();
  app.add_option("--fail", fail_bits, "fail trials with these bits, e.g. 1/1 (wbits/abits)");
  CLI11_PARSE(app, argc, argv);
  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  auto stub = wrpn::v1::WorkerService::NewStub(channel);
  wrpn::testing::FakeWorker w(stub.get(), token, slots);
  if (!w.status().ok()) {
    std::cerr << "wrpn-fake-worker: register at " << addr << ": " << w.status().error_message() << "\n";
    return 1;
  }
  w.epoch_delay = std::chrono::milliseconds(delay_ms);
  if (!fail_bits.empty()) {
    w.fail = [fail_bits](const nlohmann::json& c) {
      const std::string bits = std::to_string(c.value("wbits", 32)) + "/" + std::to_string(c.value("abits", 32));
      return bits == fail_bits ? "synthetic failure for " + bits : std::string();
    };
  }
  const int n = w.RunAll();
  std::cerr << "wrpn-fake-worker: ran " << n << " trials as " << w.id() << "\n";
  return w.status().ok() ? 0 : 1;
}
