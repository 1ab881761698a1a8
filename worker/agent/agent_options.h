#pragma once
// What a worker is and how its agent behaves: the options `wrpn-worker` fills from its flags.
// Plain data.
#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "worker/agent/coordinator_client.h"

namespace wrpn::agent {

struct AgentOptions {
  std::string name;            // shown in `wrpn workers`
  std::string address;         // host the worker's gang peers can reach (rank 0's TCPStore)
  std::vector<pb::Gpu> gpus;   // empty on CPU machines
  int cpus = 1;
  std::map<std::string, std::string> labels;
  int max_cpu_trials = 1;      // concurrent 0-GPU trials
  int cpu_ranks = 1;           // trainer processes per 0-GPU trial on this node
  std::string trainer;         // path of wrpn-train
  std::string work_dir;        // attempt folders: <work_dir>/attempts/t<T>-a<A>-n<node>
  std::string checkpoint_dir;  // "" = <work_dir>/checkpoints; shared storage for multi-machine
  // Datasets root: a trial whose dataset.path is empty gets <data_dir>/<kind> (fashion_mnist ->
  // fashion-mnist), a relative dataset.path is taken under it. Default: where Debian's dataset
  // packages install.
  std::string data_dir = "/usr/share/datasets";
  // Folders besides data_dir a trial's dataset.path may name (--allow-data-root). A dataset path
  // outside data_dir and all of them (absolute, or climbing out with `..`) fails the trial as a
  // config error; with no folder at all (data_dir "" and no roots), every dataset path does.
  // Confinement is off only when a root is "/".
  std::vector<std::string> allowed_data_roots;
  // Port this worker's rank-0 trainers host the TCPStore on in multi-node trials; registered as
  // part of the address ("host:port") so every peer learns it. 0 = the coordinator's choice.
  int rendezvous_port = 0;
  // Seconds the ranks of a multi-rank trial wait for each other (wrpn-train
  // --rendezvous-timeout); 0 = the trainer's default.
  double rendezvous_timeout_s = 0;
  std::chrono::milliseconds grace{30000};            // SIGTERM -> SIGKILL
  std::chrono::milliseconds metrics_interval{5000};  // batch metric points this long at most
  std::chrono::milliseconds acquire_interval{1000};  // ask for work at most this often
  std::chrono::milliseconds register_retry{2000};
  // A trial whose trainers print nothing (stdout or stderr, any rank) for this long is taken as
  // hung: SIGTERM, SIGKILL after `grace`, reported as an internal failure (retried). 0 = off.
  std::chrono::milliseconds stall_timeout{0};
  std::chrono::hours retention{24 * 7};  // attempt folders and stale checkpoints older than this go
  size_t log_tail_bytes = 64 * 1024;     // stderr kept per rank and attempt
  bool keep_checkpoints = false;         // keep a trial's checkpoints after it succeeded
};

// How the worker registers: name, address ("host:port" with a fixed rendezvous port), GPUs,
// cores, labels and CPU slots.
pb::RegisterWorkerRequest RegisterRequest(const AgentOptions& options);

}  // namespace wrpn::agent
