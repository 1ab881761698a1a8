#include "server/lease_table.h"

#include "absl/strings/str_cat.h"

namespace wrpn::server {

std::vector<LeaseEntry> AttemptLeases(const AttemptRecord& a, int gpus, SteadyTime expires) {
  std::vector<LeaseEntry> out(a.lease_ids.size());
  for (size_t r = 0; r < out.size(); ++r) {
    LeaseEntry& l = out[r];
    l.lease_id = a.lease_ids[r];
    l.trial_id = a.trial_id;
    l.attempt = a.attempt;
    l.token = a.fencing_token;
    l.worker_id = r < a.worker_ids.size() ? a.worker_ids[r] : "";
    l.rank = static_cast<int>(r);
    l.gpus = gpus;
    l.expires = expires;
  }
  return out;
}

void LeaseTable::Add(LeaseEntry lease) {
  Held& h = by_worker_[lease.worker_id];
  h.leases.insert(lease.lease_id);
  if (lease.gpus > 0) h.used.gpus += lease.gpus;
  else h.used.cpu_slots++;
  expiry_.insert({lease.expires, lease.lease_id});
  const std::string id = lease.lease_id;
  leases_[id] = std::move(lease);
}

void LeaseTable::Drop(const std::string& lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  const LeaseEntry& l = it->second;
  auto h = by_worker_.find(l.worker_id);
  if (h != by_worker_.end()) {
    h->second.leases.erase(lease_id);
    if (l.gpus > 0) h->second.used.gpus -= l.gpus;
    else h->second.used.cpu_slots--;
    if (h->second.leases.empty()) by_worker_.erase(h);
  }
  expiry_.erase({l.expires, lease_id});
  leases_.erase(it);
}

void LeaseTable::Clear() {
  leases_.clear();
  expiry_.clear();
  by_worker_.clear();
}

LeaseEntry* LeaseTable::Find(const std::string& lease_id) {
  auto it = leases_.find(lease_id);
  return it == leases_.end() ? nullptr : &it->second;
}

const LeaseEntry* LeaseTable::Find(const std::string& lease_id) const {
  auto it = leases_.find(lease_id);
  return it == leases_.end() ? nullptr : &it->second;
}

absl::StatusOr<LeaseEntry*> LeaseTable::Check(const pb::LeaseRef& ref) {
  LeaseEntry* l = Find(ref.lease_id());
  if (l == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease '", ref.lease_id(),
                     "' is not active (it expired, was cancelled or its trial finished)"));
  }
  if (l->token != ref.fencing_token()) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease '", ref.lease_id(), "': fencing token ", ref.fencing_token(),
                     " is stale (current ", l->token, ")"));
  }
  return l;
}

LeaseEntry* LeaseTable::FindHeld(const pb::LeaseRef& ref, const std::string& worker_id) {
  LeaseEntry* l = Find(ref.lease_id());
  if (l == nullptr || l->token != ref.fencing_token() || l->worker_id != worker_id) return nullptr;
  return l;
}

int LeaseTable::RendezvousPort(const LeaseEntry& l, const AttemptRecord& current) const {
  if (current.lease_ids.empty()) return 0;
  const LeaseEntry* rank0 = Find(current.lease_ids[0]);
  return rank0 == nullptr || rank0->token != l.token ? 0 : rank0->master_port;
}

void LeaseTable::Renew(LeaseEntry& lease, SteadyTime expires) {
  expiry_.erase({lease.expires, lease.lease_id});
  lease.expires = expires;
  lease.delivered = true;
  expiry_.insert({lease.expires, lease.lease_id});
}

const LeaseEntry* LeaseTable::FirstExpired(SteadyTime now) const {
  if (expiry_.empty() || expiry_.begin()->first > now) return nullptr;
  return Find(expiry_.begin()->second);
}

const std::set<std::string>& LeaseTable::LeasesOf(const std::string& worker_id) const {
  static const std::set<std::string> kNone;
  auto h = by_worker_.find(worker_id);
  return h == by_worker_.end() ? kNone : h->second.leases;
}

WorkerSlots LeaseTable::UsedBy(const std::string& worker_id) const {
  auto h = by_worker_.find(worker_id);
  return h == by_worker_.end() ? WorkerSlots{} : h->second.used;
}

}  // namespace wrpn::server
