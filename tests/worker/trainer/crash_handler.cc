// Prints a backtrace when a test process crashes (SIGSEGV, SIGBUS, SIGFPE, SIGILL), so a crash on
// a machine we only reach through logs (the GPU machine) still says where it happened.
#include <execinfo.h>
#include <initializer_list>
#include <signal.h>
#include <unistd.h>

namespace {

void OnCrash(int sig) {
  void* frames[64];
  const int n = backtrace(frames, 64);
  static const char kMsg[] = "\n*** crash: backtrace ***\n";
  (void)!write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  signal(sig, SIG_DFL);
  raise(sig);
}

const bool kInstalled = [] {
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) signal(sig, OnCrash);
  return true;
}();

}  // namespace
