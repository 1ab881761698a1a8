#pragma once
// The worker calls the coordinator tests make in-process (no RPC): acquiring leases and naming
// one. Header-only; for tests under tests/server.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server/coordinator.h"

namespace wrpn::server {

inline pb::LeaseRef RefOf(const pb::Lease& l) {
  pb::LeaseRef r;
  r.set_lease_id(l.lease_id());
  r.set_fencing_token(l.fencing_token());
  return r;
}

// The leases `worker` gets asking for `n` trials with `free_gpus` free; none on an error.
inline std::vector<pb::Lease> AcquireLeases(Coordinator& c, const std::string& worker, int n,
                                            int free_gpus = 0) {
  pb::AcquireTrialRequest req;
  req.set_worker_id(worker);
  req.set_max_trials(n);
  req.set_free_gpus(free_gpus);
  auto r = c.AcquireTrial(req);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  return {r->leases().begin(), r->leases().end()};
}

}  // namespace wrpn::server
