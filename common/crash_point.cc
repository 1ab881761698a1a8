#include "common/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace wrpn {
namespace {

struct Setting {
  std::string point;
  long hit = 0;
  std::atomic<long> seen{0};
};

Setting* Parse() {
  const char* env = std::getenv("WRPN_CRASH_AT");
  if (env == nullptr || *env == '\0') return nullptr;
  auto* s = new Setting;
  std::string v = env;
  s->hit = 1;
  if (const size_t colon = v.rfind(':'); colon != std::string::npos) {
    char* end = nullptr;
    const long n = std::strtol(v.c_str() + colon + 1, &end, 10);
    if (end == v.c_str() + colon + 1 || *end != '\0' || n < 1) {
      std::fprintf(stderr, "WRPN_CRASH_AT='%s': the count after ':' must be a whole number >= 1\n",
                   env);
      std::_Exit(2);
    }
    s->hit = n;
    v.resize(colon);
  }
  if (v.find('.') == std::string::npos) {
    std::fprintf(stderr, "WRPN_CRASH_AT='%s': name a point as <op>.<stage>[:<n>]\n", env);
    std::_Exit(2);
  }
  s->point = std::move(v);
  return s;
}

Setting* Active() {
  static Setting* const s = Parse();  // leaked on purpose: used until the process ends
  return s;
}

}  // namespace

CrashPointSetting ActiveCrashPoint() {
  Setting* s = Active();
  if (s == nullptr) return {};
  return {s->point, s->hit};
}

void CrashPoint(std::string_view op, std::string_view stage) {
  Setting* s = Active();
  if (s == nullptr) return;
  const std::string_view p = s->point;
  if (p.size() != op.size() + 1 + stage.size() || p.substr(0, op.size()) != op ||
      p[op.size()] != '.' || p.substr(op.size() + 1) != stage) {
    return;
  }
  if (s->seen.fetch_add(1) + 1 != s->hit) return;
  std::string line = "crash point '" + s->point + "' reached (hit " + std::to_string(s->hit) +
                     "): SIGKILL\n";
  (void)!::write(STDERR_FILENO, line.data(), line.size());
  ::kill(::getpid(), SIGKILL);
}

}  // namespace wrpn
