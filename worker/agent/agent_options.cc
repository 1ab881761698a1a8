#include "worker/agent/agent_options.h"

#include "absl/strings/str_cat.h"

namespace wrpn::agent {

pb::RegisterWorkerRequest RegisterRequest(const AgentOptions& options) {
  pb::RegisterWorkerRequest req;
  req.set_name(options.name);
  const std::string& host = options.address;
  if (options.rendezvous_port <= 0) {
    req.set_address(host);
  } else if (host.find(':') != std::string::npos) {  // IPv6
    req.set_address(absl::StrCat("[", host, "]:", options.rendezvous_port));
  } else {
    req.set_address(absl::StrCat(host, ":", options.rendezvous_port));
  }
  for (const auto& g : options.gpus) *req.add_gpus() = g;
  req.set_cpus(options.cpus);
  for (const auto& [k, v] : options.labels) (*req.mutable_labels())[k] = v;
  req.set_max_cpu_trials(options.max_cpu_trials);
  return req;
}

}  // namespace wrpn::agent
