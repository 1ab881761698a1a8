#pragma once
// Reading a sweep spec file for `wrpn sweep submit`: the size is checked against the limit the
// coordinator applies (kMaxSweepSpecBytes, common/sweep_spec.h) before the file is read or parsed.
#include <string>

namespace wrpn::client {

// The file's text. Throws CliError: kExitUsage when it cannot be read, kExitFailed when it is
// larger than the limit (nothing submitted).
std::string ReadSweepSpecFile(const std::string& path);

}  // namespace wrpn::client
