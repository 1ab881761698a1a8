#include "worker/trainer/slurm_env.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace wrpn::trainer {
namespace {

absl::StatusOr<int> NonNegative(const std::string& name, const std::string& v) {
  int x = 0;
  if (!absl::SimpleAtoi(v, &x) || x < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": expected a non-negative integer, got '", v, "'"));
  }
  return x;
}

bool Resolves(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (res) ::freeaddrinfo(res);
  return rc == 0;
}

// NodeAddr of `node` as Slurm knows it, or "" when scontrol cannot tell.
std::string SlurmNodeAddr(const std::string& node) {
  for (char c : node) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return "";
  }
  FILE* p = ::popen(absl::StrCat("scontrol show node -o '", node, "' 2>/dev/null").c_str(), "r");
  if (!p) return "";
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  for (absl::string_view field : absl::StrSplit(out, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&field, "NodeAddr=")) return std::string(field);
  }
  return "";
}

}  // namespace

absl::StatusOr<std::string> FirstHost(const std::string& field, const std::string& hostlist) {
  // The first entry ends at the first comma outside brackets.
  size_t end = 0;
  int depth = 0;
  for (; end < hostlist.size(); ++end) {
    if (hostlist[end] == '[') ++depth;
    if (hostlist[end] == ']') --depth;
    if (hostlist[end] == ',' && depth == 0) break;
  }
  const std::string first = hostlist.substr(0, end);
  if (first.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": empty node list"));
  // Each "[007-009,012]" becomes its first number, padding kept: "rack[3]-gpu[1-4]" -> "rack3-gpu1".
  std::string host;
  size_t i = 0;
  while (i < first.size()) {
    const size_t open = first.find_first_of("[]", i);
    if (open == std::string::npos) {
      host += first.substr(i);
      break;
    }
    const size_t close = first.find(']', open);
    if (first[open] == ']' || close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": unmatched bracket in '", hostlist, "'"));
    }
    const std::string ranges = first.substr(open + 1, close - open - 1);
    const std::string lo = ranges.substr(0, ranges.find_first_of("-,"));
    if (lo.empty() || lo.find_first_not_of("0123456789") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": malformed range in '", hostlist, "'"));
    }
    host += first.substr(i, open - i) + lo;
    i = close + 1;
  }
  return host;
}

absl::StatusOr<int> TasksOnNode(const std::string& field, const std::string& tasks_per_node,
                                int node_id) {
  int node = 0;
  for (absl::string_view part : absl::StrSplit(tasks_per_node, ',')) {
    std::string count(part);
    int repeat = 1;
    if (const size_t x = count.find("(x"); x != std::string::npos) {
      if (count.back() != ')' ||
          !absl::SimpleAtoi(count.substr(x + 2, count.size() - x - 3), &repeat) || repeat < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": malformed entry '", part, "' in '", tasks_per_node, "'"));
      }
      count = count.substr(0, x);
    }
    int tasks = 0;
    if (!absl::SimpleAtoi(count, &tasks) || tasks < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": malformed entry '", part, "' in '", tasks_per_node, "'"));
    }
    if (node_id < node + repeat) return tasks;
    node += repeat;
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": '", tasks_per_node, "' lists ", node,
                                                 " nodes, no entry for node ", node_id));
}

absl::StatusOr<std::map<std::string, std::string>> SlurmTorchrunEnv(const EnvLookup& env,
                                                                    long pid) {
  std::map<std::string, std::string> out;
  const auto procid = env("SLURM_PROCID");
  const auto task_pid = env("SLURM_TASK_PID");
  if (!procid || !task_pid || *task_pid != std::to_string(pid)) return out;
  auto get = [&](const char* name) -> absl::StatusOr<std::string> {
    auto v = env(name);
    if (!v || v->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": not set, but this is a Slurm task (SLURM_PROCID is)"));
    }
    return *v;
  };
  auto set = [&](const char* name, std::string value) {
    if (auto v = env(name); !v || v->empty()) out[name] = std::move(value);
  };
  absl::StatusOr<int> rank = NonNegative("SLURM_PROCID", *procid);
  if (!rank.ok()) return rank.status();
  absl::StatusOr<std::string> ntasks = get("SLURM_NTASKS");
  if (!ntasks.ok()) return ntasks.status();
  absl::StatusOr<int> world = NonNegative("SLURM_NTASKS", *ntasks);
  if (!world.ok()) return world.status();
  if (*world < 1 || *rank >= *world) {
    return absl::InvalidArgumentError(
        absl::StrCat("SLURM_PROCID: ", *rank, " is not below SLURM_NTASKS ", *world));
  }
  absl::StatusOr<std::string> localid = get("SLURM_LOCALID");
  if (!localid.ok()) return localid.status();
  absl::StatusOr<int> local = NonNegative("SLURM_LOCALID", *localid);
  if (!local.ok()) return local.status();
  int local_world = 1;
  const char* tpn_name = env("SLURM_STEP_TASKS_PER_NODE") ? "SLURM_STEP_TASKS_PER_NODE"
                                                          : "SLURM_TASKS_PER_NODE";
  if (auto tpn = env(tpn_name)) {
    absl::StatusOr<std::string> nodeid = get("SLURM_NODEID");
    if (!nodeid.ok()) return nodeid.status();
    absl::StatusOr<int> node = NonNegative("SLURM_NODEID", *nodeid);
    if (!node.ok()) return node.status();
    absl::StatusOr<int> n = TasksOnNode(tpn_name, *tpn, *node);
    if (!n.ok()) return n.status();
    local_world = *n;
  }
  if (*local >= local_world) {
    return absl::InvalidArgumentError(absl::StrCat("SLURM_LOCALID: ", *local, " is not below the ",
                                                   local_world, " tasks on this node (",
                                                   tpn_name, ")"));
  }
  std::string nodelist_name;
  std::optional<std::string> nodelist;
  for (const char* name : {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"}) {
    if ((nodelist = env(name)) && !nodelist->empty()) {
      nodelist_name = name;
      break;
    }
  }
  if (!nodelist || nodelist->empty()) {
    return absl::InvalidArgumentError(
        "SLURM_STEP_NODELIST: not set (nor SLURM_JOB_NODELIST, SLURM_NODELIST), but this is a "
        "Slurm task (SLURM_PROCID is)");
  }
  absl::StatusOr<std::string> master = FirstHost(nodelist_name, *nodelist);
  if (!master.ok()) return master.status();
  set("RANK", std::to_string(*rank));
  set("WORLD_SIZE", std::to_string(*world));
  set("LOCAL_RANK", std::to_string(*local));
  set("LOCAL_WORLD_SIZE", std::to_string(local_world));
  set("MASTER_ADDR", *master);
  // Every task of the step derives the same port (Lightning's rule) unless one was given.
  if (auto job = env("SLURM_JOB_ID")) {
    int64_t id = 0;
    if (absl::SimpleAtoi(*job, &id) && id >= 0) set("MASTER_PORT", std::to_string(15000 + id % 10000));
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> ApplySlurmEnvironment() {
  auto vars = SlurmTorchrunEnv(
      [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        return v ? std::optional<std::string>(v) : std::nullopt;
      },
      static_cast<long>(::getpid()));
  if (!vars.ok()) return vars.status();
  if (auto it = vars->find("MASTER_ADDR"); it != vars->end() && !Resolves(it->second)) {
    const std::string addr = SlurmNodeAddr(it->second);
    if (!addr.empty()) it->second = addr;
  }
  for (const auto& [k, v] : *vars) ::setenv(k.c_str(), v.c_str(), 1);
  return vars;
}

}  // namespace wrpn::trainer
