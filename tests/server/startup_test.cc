// What a coordinator refuses at start (issue 16): a database another coordinator holds (DbLock,
// and the real binary twice on one db or one port), a read-only database, a file that is not a
// wrpn database (left unchanged); and that no SQL text reaches a client when the store fails.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/db_lock.h"
#include "server/server.h"
#include "server/sqlite_store.h"
#include "tests/fakes/fake_clock.h"
#include "wrpn/v1/coordinator.grpc.pb.h"

namespace wrpn::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

std::string FreshDir(const std::string& tag) {
  const std::string dir = std::filesystem::path(testing::TempDir()) /
                          ("startup-" + tag + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DbLockTest, SecondHolderIsRefusedNamingTheFirstAndSigkillReleasesIt) {
  const std::string db = FreshDir("lock") + "/wrpn.db";
  {
    auto first = DbLock::Acquire(db);
    ASSERT_TRUE(first.ok()) << first.status();
    auto second = DbLock::Acquire(db);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(second.status().message()),
                HasSubstr("database " + db + " is in use by another coordinator (pid " +
                          std::to_string(getpid()) + " on host "));
  }
  EXPECT_TRUE(DbLock::Acquire(db).ok()) << "not released when its holder went away";

  // A holder killed with SIGKILL leaves nothing behind that blocks the next one.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  if (child == 0) {
    auto held = DbLock::Acquire(db);
    char c = held.ok() ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    for (;;) pause();
  }
  ASSERT_GT(child, 0);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  auto blocked = DbLock::Acquire(db);
  EXPECT_THAT(std::string(blocked.status().message()),
              HasSubstr("(pid " + std::to_string(child) + " on host "));
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(DbLock::Acquire(db).ok());
  close(ready[0]);
  close(ready[1]);
}

// The real wrpn-coordinator as a child process, its stderr in a log file.
class CoordinatorProcess {
 public:
  CoordinatorProcess(const std::string& log, std::vector<std::string> args) : log_(log) {
    const std::string binary = std::string(WRPN_BINARY_DIR) + "/server/wrpn-coordinator";
    args.insert(args.begin(), binary);
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log.c_str(), "w", stderr);
      (void)f;
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
  }
  ~CoordinatorProcess() {
    if (pid_ > 0 && !exit_status_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string log() const { return ReadAll(log_); }
  // Waits until it serves (true) or exits (false).
  bool WaitServing() {
    for (int i = 0; i < 1500; ++i) {
      if (log().find("gRPC on ") != std::string::npos) return true;
      if (Exited()) return false;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  // Waits up to 30 s for it to exit; its exit code, or -1.
  int WaitExit() {
    for (int i = 0; i < 1500 && !Exited(); ++i) std::this_thread::sleep_for(20ms);
    return exit_status_ && WIFEXITED(*exit_status_) ? WEXITSTATUS(*exit_status_) : -1;
  }
  bool Exited() {
    if (exit_status_) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) exit_status_ = status;
    return exit_status_.has_value();
  }
  pid_t pid() const { return pid_; }

 private:
  std::string log_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(TwoCoordinators, SecondOnTheSameDatabaseRefusesToStartNamingTheHolder) {
  const std::string dir = FreshDir("samedb");
  CoordinatorProcess first(dir + "/1.log", {"--db", dir + "/wrpn.db", "--listen", "127.0.0.1:0",
                                     "--http-listen", ""});
  ASSERT_TRUE(first.WaitServing()) << first.log();
  CoordinatorProcess second(dir + "/2.log", {"--db", dir + "/wrpn.db", "--listen", "127.0.0.1:0",
                                      "--http-listen", ""});
  EXPECT_EQ(second.WaitExit(), 1) << second.log();
  EXPECT_THAT(second.log(), HasSubstr("database " + dir + "/wrpn.db is in use by another "
                                      "coordinator (pid " + std::to_string(first.pid())));
  EXPECT_THAT(second.log(), Not(HasSubstr("gRPC on ")));
  EXPECT_FALSE(first.Exited()) << first.log();
}

TEST(TwoCoordinators, SecondOnTheSamePortRefusesToStart) {
  const std::string dir = FreshDir("sameport");
  const std::string listen = "127.0.0.1:" + std::to_string(FreePort());
  CoordinatorProcess first(dir + "/1.log", {"--db", dir + "/a.db", "--listen", listen,
                                     "--http-listen", ""});
  ASSERT_TRUE(first.WaitServing()) << first.log();
  CoordinatorProcess second(dir + "/2.log", {"--db", dir + "/b.db", "--listen", listen,
                                      "--http-listen", ""});
  const int code = second.WaitExit();
  ASSERT_TRUE(second.Exited()) << "a second coordinator serves the same port (SO_REUSEPORT)";
  EXPECT_NE(code, 0) << second.log();
  EXPECT_THAT(second.log(), HasSubstr("cannot listen on " + listen));
  EXPECT_FALSE(first.Exited()) << first.log();
}

// Opens `db` in a child process that runs as an unprivileged user when this one is root (root
// writes a 0444 file regardless); returns the status message ("" = opened).
std::string OpenAsUnprivileged(const std::string& db) {
  int out[2];
  if (pipe(out) != 0) return "pipe failed";
  const pid_t child = fork();
  if (child == 0) {
    close(out[0]);
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    auto store = SqliteStore::Open(db);
    const std::string msg = store.ok() ? "" : std::string(store.status().message());
    (void)!write(out[1], msg.data(), msg.size());
    _exit(0);
  }
  close(out[1]);
  std::string msg;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof(buf))) > 0;) msg.append(buf, n);
  close(out[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "child failed";
  return msg;
}

TEST(SqliteStoreOpen, ReadOnlyDatabaseIsRefusedByName) {
  const std::string dir = FreshDir("ro");
  std::filesystem::permissions(dir, std::filesystem::perms::all);  // the directory is writable
  const std::string db = dir + "/wrpn.db";
  {
    auto store = SqliteStore::Open(db);
    ASSERT_TRUE(store.ok()) << store.status();
  }
  ASSERT_EQ(chmod(db.c_str(), 0444), 0);
  const std::string before = ReadAll(db);
  const std::string msg = OpenAsUnprivileged(db);
  EXPECT_THAT(msg, HasSubstr("database " + db + " is read-only")) << "opened: '" << msg << "'";
  EXPECT_EQ(ReadAll(db), before);
}

TEST(SqliteStoreOpen, ForeignSqliteFileIsRefusedByNameAndLeftUnchanged) {
  const std::string dir = FreshDir("foreign");
  const std::string db = dir + "/notes.db";
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT);"
                              "INSERT INTO notes(text) VALUES('keep me')",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  const std::string before = ReadAll(db);
  auto store = SqliteStore::Open(db);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(db + " is not a wrpn database"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("notes"));
  EXPECT_EQ(ReadAll(db), before) << "the file was written to";
  EXPECT_FALSE(std::filesystem::exists(db + "-wal"));

  // Not SQLite at all: refused by name too, and untouched.
  const std::string text = dir + "/readme.txt";
  std::ofstream(text) << std::string(8192, 'x');
  auto other = SqliteStore::Open(text);
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(std::string(other.status().message()), HasSubstr(text + " is not a wrpn database"));
  EXPECT_EQ(ReadAll(text), std::string(8192, 'x'));
}

// A failing statement reaches the client as its reason and the database file, never as SQL.
TEST(StoreErrors, NoSqlTextReachesAClient) {
  const std::string db = FreshDir("sql") + "/wrpn.db";
  auto store = SqliteStore::Open(db);
  ASSERT_TRUE(store.ok()) << store.status();
  FakeClock clock;
  MetricsRegistry registry;
  CoordinatorOptions copts;
  copts.paper_tables_path = std::string(WRPN_SOURCE_DIR) + "/data/wrpn_tables.json";
  auto c = Coordinator::Create(store->get(), &clock, &registry, copts);
  ASSERT_TRUE(c.ok()) << c.status();
  Authenticator none;
  ServerOptions sopts;
  sopts.grpc_listen = "127.0.0.1:0";
  sopts.http_listen = "";
  sopts.tick_interval = 0ms;
  auto s = CoordinatorServer::Start(c->get(), &none, &registry, sopts);
  ASSERT_TRUE(s.ok()) << s.status();
  // Every write of a sweep now fails inside SQLite.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "CREATE TRIGGER refuse BEFORE INSERT ON sweeps BEGIN "
                              "SELECT RAISE(ABORT, 'refused by a test trigger'); END",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  auto stub = pb::Coordinator::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*s)->grpc_port()), grpc::InsecureChannelCredentials()));
  pb::SubmitSweepRequest req;
  req.set_spec_text("axes: {network: lenet5, width: 1, precision: [\"32/32\"]}\n");
  pb::SubmitSweepResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  grpc::Status st = stub->SubmitSweep(&ctx, req, &resp);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error_message(), HasSubstr("refused by a test trigger"));
  EXPECT_THAT(st.error_message(), HasSubstr(db));
  for (const char* sql : {"INSERT", "INTO", "sweeps(", "VALUES", "?1", "CONFLICT"})
    EXPECT_THAT(st.error_message(), Not(HasSubstr(sql))) << st.error_message();
  (*s)->Shutdown(1s);
}

}  // namespace
}  // namespace wrpn::server
