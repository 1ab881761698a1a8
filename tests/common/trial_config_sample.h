#pragma once
// A trial config for tests of the field table (common/trial_config_fields.inc).
#include "common/trial_config.h"

namespace wrpn {

// A valid config with every field away from its default. A new row must get a value here
// (trial_config_fields_test.cc says which one is missing), so that the round trips cover it.
inline TrialConfig SampleTrialConfig() {
  TrialConfig c;
  c.network = "resnet20";
  c.width = 1.5;
  c.wbits = 2;
  c.abits = 4;
  c.dataset.kind = "synthetic";
  c.dataset.path = "/data/synthetic";
  c.dataset.train_subset = 5000000000;  // beyond int32
  c.dataset.test_subset = 7;
  c.dataset.augment = false;
  c.dataset.image_size = 32;
  c.dataset.channels = 3;
  c.dataset.height = 32;
  c.dataset.width = 30;
  c.dataset.classes = 100;
  c.dataset.train_size = 4096;
  c.dataset.test_size = 512;
  c.epochs = 12;
  c.batch_size = 64;
  c.optimizer = "adam";
  c.lr = 0.001;
  c.momentum = 0.5;
  c.nesterov = false;
  c.weight_decay = 1e-4;
  c.schedule = "step";
  c.warmup_epochs = 1.5;
  c.step_epochs = 4;
  c.gamma = 0.5;
  c.seed = 18446744073709551000ull;  // beyond int64
  c.device = "cuda:1";
  c.amp = true;
  c.channels_last = true;
  c.num_workers = 3;
  c.threads = 2;
  c.weight_scale = 0.25;
  c.checkpoint_dir = "/ck";
  c.resume = true;
  c.stop_after_epochs = 2;
  c.stop_at_epoch = 5;
  c.cpu_cores = 6;
  c.scheme = "lsq";
  c.init_from = "fp32";
  c.init_checkpoint = "/ck/fp32/last.pt";
  return c;
}

}  // namespace wrpn
