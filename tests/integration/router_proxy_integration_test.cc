// router::Proxy on loopback sockets, with small fake PostgreSQL servers as backends: held
// clients, refusals, garbage, logins replayed to the next server, connections closed when the
// leader moves, least-connections reads and reloads. No etcd, no PostgreSQL: the routes are
// given with Apply, as the topology watcher gives them.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "router/pg_wire.h"
#include "router/proxy.h"

namespace pgha::router {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

std::string Int32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string StartupMessage(const std::string& user = "alice") {
  std::string body = Int32(3 << 16) + "user" + std::string(1, '\0') + user + std::string(2, '\0');
  return Int32(static_cast<uint32_t>(body.size() + 4)) + body;
}

const std::string kSslRequest = Int32(8) + Int32(80877103);
const std::string kAuthOk = "R" + Int32(8) + Int32(0);

void SendAll(int fd, const std::string& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return;
    at += static_cast<size_t>(n);
  }
}

// Reads until `want` bytes arrived, the peer closed, or `timeout` passed.
std::string Read(int fd, size_t want, milliseconds timeout = milliseconds(3000)) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < want) {
    auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, std::min(sizeof(buf), want - out.size()), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// true when the peer closed (EOF or reset) within `timeout`.
bool ClosedWithin(int fd, milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0) return true;
    }
  }
  return false;
}

int ConnectTo(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A fake PostgreSQL: a listener on 127.0.0.1 and a thread per connection running `behavior`.
class FakeServer {
 public:
  using Behavior = std::function<void(int fd, FakeServer& self)>;
  explicit FakeServer(Behavior behavior) : behavior_(std::move(behavior)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(listener_, 64);
    socklen_t len = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] {
      while (true) {
        int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        ++accepted_;
        std::lock_guard lock(mutex_);
        connections_.push_back(fd);
        workers_.emplace_back([this, fd] { behavior_(fd, *this); });
      }
    });
  }
  ~FakeServer() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    acceptor_.join();
    {
      std::lock_guard lock(mutex_);
      for (int fd : connections_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& w : workers_) w.join();
    for (int fd : connections_) ::close(fd);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }
  void Record(const std::string& bytes) {
    std::lock_guard lock(mutex_);
    received_.push_back(bytes);
  }
  std::vector<std::string> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  Behavior behavior_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mutex_;  // guards the members below
  std::vector<int> connections_;
  std::vector<std::thread> workers_;
  std::vector<std::string> received_;
};

// Reads one length-prefixed opening message (startup, SSL request).
std::string ReadOpening(int fd) {
  std::string head = Read(fd, 4);
  if (head.size() < 4) return head;
  uint32_t len = (static_cast<uint8_t>(head[0]) << 24) | (static_cast<uint8_t>(head[1]) << 16) |
                 (static_cast<uint8_t>(head[2]) << 8) | static_cast<uint8_t>(head[3]);
  return head + Read(fd, len - 4);
}

// Greets a login with AuthenticationOk and then echoes, after a TLS request refused with 'N'.
void Greeter(int fd, FakeServer& self) {
  std::string opening = ReadOpening(fd);
  if (opening == kSslRequest) {
    SendAll(fd, "N");
    opening += ReadOpening(fd);
  }
  self.Record(opening);
  SendAll(fd, kAuthOk);
  while (true) {
    std::string data = Read(fd, 1, milliseconds(10000));
    if (data.empty()) return;
    SendAll(fd, data);
  }
}

void ShuttingDown(int fd, FakeServer& self) {
  std::string opening = ReadOpening(fd);
  if (opening == kSslRequest) {
    SendAll(fd, "N");
    opening += ReadOpening(fd);
  }
  self.Record(opening);
  SendAll(fd, FatalErrorResponse("57P03", "the database system is shutting down"));
  ::shutdown(fd, SHUT_WR);
}

void Crashing(int fd, FakeServer& self) {
  self.Record(ReadOpening(fd));
  ::shutdown(fd, SHUT_RDWR);
}

// Greets with a session key of its own (its port as the process id), then ReadyForQuery;
// records a CancelRequest it receives.
void KeyedGreeter(int fd, FakeServer& self) {
  std::string opening = ReadOpening(fd);
  self.Record(opening);
  if (opening.size() == 16 && opening.substr(4, 4) == Int32(80877102)) {
    ::shutdown(fd, SHUT_RDWR);  // a cancel request gets no answer
    return;
  }
  SendAll(fd, kAuthOk + "K" + Int32(12) + Int32(static_cast<uint32_t>(self.port())) + Int32(1234) +
                  "Z" + Int32(5) + "I");
  while (!Read(fd, 1, milliseconds(10000)).empty()) {
  }
}

RouterSettings TestSettings() {
  RouterSettings s;
  s.write_listen = {"127.0.0.1", 0};
  s.read_listen = {"127.0.0.1", 0};
  s.connect_hold_timeout = milliseconds(3000);
  s.check_interval = milliseconds(300);
  s.threads = 2;
  return s;
}

Backend At(const std::string& member, const FakeServer& server) {
  return Backend{member, "127.0.0.1", server.port(), ""};
}

Routes PrimaryOnly(const std::string& member, const FakeServer& server) {
  Routes r;
  r.primary = At(member, server);
  r.leader = member;
  r.readers = {*r.primary};
  r.reads_on_primary = true;
  return r;
}

class ProxyTest : public ::testing::Test {
 protected:
  void StartProxy(RouterSettings settings = TestSettings()) {
    proxy_ = std::make_unique<Proxy>(settings);
    auto started = proxy_->Start();
    ASSERT_TRUE(started.ok()) << started.error().message();
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    if (proxy_) proxy_->Stop();
  }
  int Client(Port port) {
    int fd = ConnectTo(port == Port::kWrite ? proxy_->write_port() : proxy_->read_port());
    fds_.push_back(fd);
    return fd;
  }
  std::unique_ptr<Proxy> proxy_;
  std::vector<int> fds_;
};

TEST_F(ProxyTest, AClientWithoutAPrimaryIsHeldAndForwardedWhenOneAppears) {
  FakeServer server(Greeter);
  StartProxy();
  int fd = Client(Port::kWrite);
  SendAll(fd, StartupMessage());
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(server.accepted(), 0);
  EXPECT_EQ(proxy_->Stats().write.held_now, 1);
  proxy_->Apply(PrimaryOnly("pg-0", server));
  EXPECT_EQ(Read(fd, kAuthOk.size()), kAuthOk);
  SendAll(fd, "Q-ping");
  EXPECT_EQ(Read(fd, 6), "Q-ping");
  ASSERT_EQ(server.received().size(), 1u);
  EXPECT_EQ(server.received()[0], StartupMessage());
  auto stats = proxy_->Stats();
  EXPECT_EQ(stats.write.held_now, 0);
  EXPECT_EQ(stats.write.held_total, 1);
  EXPECT_GT(stats.write.hold_seconds_sum, 0.2);
  EXPECT_EQ(stats.members["write"]["pg-0"].active, 1);
}

// The old leader's host name no longer answers (a killed container's, whose name the container
// network's DNS stops answering at once): the clients of the new leader, the one already waiting
// for that name and the ones after it, are served within the hold timeout.
TEST_F(ProxyTest, AHostNameThatNeverResolvesHoldsUpNoClientOfTheNextLeader) {
  struct Gate {
    std::mutex mutex;
    std::condition_variable opened;
    bool open = false;
  };
  auto gate = std::make_shared<Gate>();
  FakeServer server(Greeter);
  RouterSettings settings = TestSettings();
  settings.connect_timeout = milliseconds(60000);  // only the move of the leader can free it
  proxy_ = std::make_unique<Proxy>(settings);
  proxy_->SetHostResolver([gate](const std::string& host) -> Result<std::vector<std::string>> {
    if (host == "old-leader.test") {
      std::unique_lock lock(gate->mutex);
      gate->opened.wait(lock, [&] { return gate->open; });
      return Error::Unavailable("cannot resolve old-leader.test: no answer");
    }
    return std::vector<std::string>{"127.0.0.1"};
  });
  ASSERT_TRUE(proxy_->Start().ok());
  auto leader_at = [&server](const std::string& member, const std::string& host) {
    Routes routes;
    routes.primary = Backend{member, host, server.port(), ""};
    routes.leader = member;
    return routes;
  };
  proxy_->Apply(leader_at("pg-0", "old-leader.test"));
  int waiting = Client(Port::kWrite);
  SendAll(waiting, StartupMessage("waiting"));
  std::this_thread::sleep_for(milliseconds(200));
  proxy_->Apply(leader_at("pg-1", "new-leader.test"));
  int after = Client(Port::kWrite);
  SendAll(after, StartupMessage("after"));
  EXPECT_EQ(Read(waiting, kAuthOk.size()), kAuthOk);
  EXPECT_EQ(Read(after, kAuthOk.size()), kAuthOk);
  EXPECT_EQ(server.accepted(), 2);
  {
    std::lock_guard lock(gate->mutex);
    gate->open = true;
  }
  gate->opened.notify_all();
}

TEST_F(ProxyTest, AHeldClientGetsAClearErrorAfterTheHoldTimeout) {
  auto settings = TestSettings();
  settings.connect_hold_timeout = milliseconds(400);
  StartProxy(settings);
  Routes none;
  none.no_primary_reason = "no member holds the leader key";
  proxy_->Apply(none);
  int fd = Client(Port::kWrite);
  SendAll(fd, StartupMessage());
  int tls = Client(Port::kWrite);
  SendAll(tls, kSslRequest);
  std::string reply = Read(fd, 500, milliseconds(3000));
  EXPECT_THAT(reply, HasSubstr("C57P03"));
  EXPECT_THAT(reply, HasSubstr("no primary within 400 ms: no member holds the leader key"));
  EXPECT_TRUE(ClosedWithin(fd, milliseconds(1000)));
  EXPECT_EQ(Read(tls, 1), "N");
  SendAll(tls, StartupMessage());
  EXPECT_THAT(Read(tls, 500), HasSubstr("no primary within 400 ms"));
  EXPECT_EQ(proxy_->Stats().write.hold_timeouts, 2);
}

TEST_F(ProxyTest, MoreThanMaxconnAreRefusedWithAnError) {
  auto settings = TestSettings();
  settings.maxconn = 2;
  StartProxy(settings);
  int a = Client(Port::kWrite);
  int b = Client(Port::kWrite);
  SendAll(a, StartupMessage());
  SendAll(b, StartupMessage());
  std::this_thread::sleep_for(milliseconds(200));
  int c = Client(Port::kWrite);
  SendAll(c, StartupMessage());
  std::string reply = Read(c, 500);
  EXPECT_THAT(reply, HasSubstr("C53300"));
  EXPECT_THAT(reply, HasSubstr("too many connections on the write port (maxconn 2)"));
  EXPECT_TRUE(ClosedWithin(c, milliseconds(1000)));
  // libpq ignores an error given in place of the answer to its TLS request: the router says
  // 'N' first and answers the startup that follows.
  int tls = Client(Port::kWrite);
  SendAll(tls, kSslRequest);
  EXPECT_EQ(Read(tls, 1), "N");
  SendAll(tls, StartupMessage());
  EXPECT_THAT(Read(tls, 500), HasSubstr("too many connections on the write port"));
  auto stats = proxy_->Stats();
  EXPECT_EQ(stats.write.refused_maxconn, 2);
  EXPECT_EQ(stats.write.active, 2);  // refusals are not connections
  // The read port has its own bound.
  FakeServer server(Greeter);
  proxy_->Apply(PrimaryOnly("pg-0", server));
  int r = Client(Port::kRead);
  SendAll(r, StartupMessage());
  EXPECT_EQ(Read(r, kAuthOk.size()), kAuthOk);
}

TEST_F(ProxyTest, GarbageAndSilentClientsCostNoBackendAndBreakNothing) {
  FakeServer server(Greeter);
  auto settings = TestSettings();
  settings.connect_hold_timeout = milliseconds(500);
  StartProxy(settings);
  proxy_->Apply(PrimaryOnly("pg-0", server));
  int http = Client(Port::kWrite);
  SendAll(http, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(Read(http, 200), HasSubstr("invalid startup packet"));
  int silent = Client(Port::kWrite);
  int half = Client(Port::kWrite);
  SendAll(half, StartupMessage().substr(0, 6));
  EXPECT_TRUE(ClosedWithin(silent, milliseconds(2000)));
  EXPECT_TRUE(ClosedWithin(half, milliseconds(2000)));
  EXPECT_EQ(server.accepted(), 0);
  // Random bytes on both ports, then a real login still works.
  for (int i = 0; i < 20; ++i) {
    int fd = Client(i % 2 ? Port::kWrite : Port::kRead);
    std::string junk;
    for (int j = 0; j < 64; ++j) junk.push_back(static_cast<char>((i * 31 + j * 17) & 0xff));
    SendAll(fd, junk);
    ::close(fd);
    fds_.pop_back();
  }
  int ok = Client(Port::kWrite);
  SendAll(ok, StartupMessage());
  EXPECT_EQ(Read(ok, kAuthOk.size()), kAuthOk);
  EXPECT_GE(proxy_->Stats().write.invalid_openings, 1);
}

TEST_F(ProxyTest, ALoginIsReplayedWhenTheServerClosesBeforeGreeting) {
  FakeServer crashing(Crashing);
  FakeServer next(Greeter);
  StartProxy();
  proxy_->Apply(PrimaryOnly("pg-0", crashing));
  int fd = Client(Port::kWrite);
  SendAll(fd, StartupMessage("bob"));
  std::this_thread::sleep_for(milliseconds(300));
  proxy_->Apply(PrimaryOnly("pg-1", next));  // the new primary
  EXPECT_EQ(Read(fd, kAuthOk.size()), kAuthOk);
  ASSERT_EQ(next.received().size(), 1u);
  EXPECT_EQ(next.received()[0], StartupMessage("bob"));
  EXPECT_GE(proxy_->Stats().write.retried, 1);
}

TEST_F(ProxyTest, AShuttingDownGreetingAfterTlsRefusalIsReplayedAndTheClientSeesOneN) {
  FakeServer stopping(ShuttingDown);
  FakeServer next(Greeter);
  StartProxy();
  Routes both = PrimaryOnly("pg-0", stopping);
  proxy_->Apply(both);
  int fd = Client(Port::kWrite);
  SendAll(fd, kSslRequest);
  ASSERT_EQ(Read(fd, 1), "N");
  SendAll(fd, StartupMessage("carol"));
  std::this_thread::sleep_for(milliseconds(200));
  proxy_->Apply(PrimaryOnly("pg-1", next));
  // The second server's 'N' is consumed by the router: the client gets the login's answer.
  EXPECT_EQ(Read(fd, kAuthOk.size()), kAuthOk);
  ASSERT_EQ(next.received().size(), 1u);
  EXPECT_EQ(next.received()[0], kSslRequest + StartupMessage("carol"));
}

TEST_F(ProxyTest, WriteConnectionsCloseWhenTheLeaderMovesUnlessKept) {
  FakeServer old_primary(Greeter);
  FakeServer new_primary(Greeter);
  StartProxy();
  proxy_->Apply(PrimaryOnly("pg-0", old_primary));
  int fd = Client(Port::kWrite);
  SendAll(fd, StartupMessage());
  ASSERT_EQ(Read(fd, kAuthOk.size()), kAuthOk);
  Routes held;
  held.leader = "pg-0";
  held.no_primary_reason = "switchover in progress";
  proxy_->Apply(held);  // the leader keeps its key: open connections stay
  EXPECT_FALSE(ClosedWithin(fd, milliseconds(300)));
  Routes nobody;
  nobody.no_primary_reason = "no member holds the leader key";
  proxy_->Apply(nobody);  // the key expired (etcd was away): the same leader may take it again
  EXPECT_FALSE(ClosedWithin(fd, milliseconds(300)));
  proxy_->Apply(PrimaryOnly("pg-1", new_primary));
  EXPECT_TRUE(ClosedWithin(fd, milliseconds(1000)));
  EXPECT_EQ(proxy_->Stats().write.closed_on_leader_change, 1);

  auto keep = TestSettings();
  keep.on_leader_change = OnLeaderChange::kKeep;
  ASSERT_TRUE(proxy_->Reload(keep).ok());
  int kept = Client(Port::kWrite);
  SendAll(kept, StartupMessage());
  ASSERT_EQ(Read(kept, kAuthOk.size()), kAuthOk);
  proxy_->Apply(PrimaryOnly("pg-0", old_primary));
  EXPECT_FALSE(ClosedWithin(kept, milliseconds(300)));
}

TEST_F(ProxyTest, ReadsSpreadOverReplicasAndSkipOneThatRefuses) {
  FakeServer a(Greeter);
  FakeServer b(Greeter);
  int dead_port = 0;
  {
    FakeServer gone(Greeter);
    dead_port = gone.port();
  }
  StartProxy();
  Routes routes = PrimaryOnly("pg-0", a);
  routes.readers = {At("pg-1", a), At("pg-2", b)};
  routes.reads_on_primary = false;
  proxy_->Apply(routes);
  for (int i = 0; i < 4; ++i) {
    int fd = Client(Port::kRead);
    SendAll(fd, StartupMessage());
    ASSERT_EQ(Read(fd, kAuthOk.size()), kAuthOk);
  }
  EXPECT_EQ(a.accepted(), 2);
  EXPECT_EQ(b.accepted(), 2);
  // A replica whose PostgreSQL is gone: every client still gets the other one.
  routes.readers = {Backend{"pg-1", "127.0.0.1", dead_port, ""}, At("pg-2", b)};
  proxy_->Apply(routes);
  for (int i = 0; i < 4; ++i) {
    int fd = Client(Port::kRead);
    SendAll(fd, StartupMessage());
    ASSERT_EQ(Read(fd, kAuthOk.size()), kAuthOk) << i;
  }
  EXPECT_EQ(b.accepted(), 6);
  EXPECT_GE(proxy_->Stats().read.connect_errors, 1);
}

TEST_F(ProxyTest, ACancelRequestReachesTheServerOfTheSessionItNames) {
  FakeServer a(KeyedGreeter);
  FakeServer b(KeyedGreeter);
  StartProxy();
  Routes routes = PrimaryOnly("pg-0", a);
  routes.readers = {At("pg-1", a), At("pg-2", b)};
  routes.reads_on_primary = false;
  proxy_->Apply(routes);
  // Two sessions: one lands on each replica.
  int first = Client(Port::kRead);
  SendAll(first, StartupMessage());
  ASSERT_EQ(Read(first, 28).size(), 28u);
  int second = Client(Port::kRead);
  SendAll(second, StartupMessage());
  ASSERT_EQ(Read(second, 28).size(), 28u);
  ASSERT_EQ(a.accepted(), 1);
  ASSERT_EQ(b.accepted(), 1);
  // Balancing alone would send the next connection to either; a cancel for b's session goes
  // to b, even through the write port.
  for (Port port : {Port::kRead, Port::kWrite, Port::kRead}) {
    int cancel = Client(port);
    SendAll(cancel,
            Int32(16) + Int32(80877102) + Int32(static_cast<uint32_t>(b.port())) + Int32(1234));
    EXPECT_TRUE(ClosedWithin(cancel, milliseconds(2000)));
  }
  auto received = b.received();
  EXPECT_EQ(std::count_if(received.begin(), received.end(),
                          [](const std::string& m) { return m.size() == 16; }),
            3);
  EXPECT_EQ(a.accepted(), 1);
}

TEST_F(ProxyTest, ReadFallbackRejectRefusesAtOnce) {
  auto settings = TestSettings();
  settings.read_fallback = ReadFallback::kReject;
  StartProxy(settings);
  FakeServer server(Greeter);
  Routes routes;
  routes.primary = At("pg-0", server);
  routes.leader = "pg-0";
  proxy_->Apply(routes);
  int fd = Client(Port::kRead);
  SendAll(fd, StartupMessage());
  EXPECT_THAT(Read(fd, 500, milliseconds(1000)), HasSubstr("no replica is eligible"));
}

TEST_F(ProxyTest, ReloadMovesAListenerAndKeepsOpenConnections) {
  FakeServer server(Greeter);
  StartProxy();
  proxy_->Apply(PrimaryOnly("pg-0", server));
  int fd = Client(Port::kWrite);
  SendAll(fd, StartupMessage());
  ASSERT_EQ(Read(fd, kAuthOk.size()), kAuthOk);
  int old_port = proxy_->write_port();
  auto moved = TestSettings();
  FakeServer probe(Greeter);  // a port known to be free a moment ago, once it is gone
  int new_port = 0;
  {
    FakeServer temporary(Greeter);
    new_port = temporary.port();
  }
  moved.write_listen = {"127.0.0.1", new_port};
  auto reloaded = proxy_->Reload(moved);
  ASSERT_TRUE(reloaded.ok()) << reloaded.error().message();
  EXPECT_EQ(proxy_->write_port(), new_port);
  SendAll(fd, "still-here");
  EXPECT_EQ(Read(fd, 10), "still-here");
  int fresh = ConnectTo(new_port);
  fds_.push_back(fresh);
  SendAll(fresh, StartupMessage());
  EXPECT_EQ(Read(fresh, kAuthOk.size()), kAuthOk);
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(ConnectTo(old_port), -1);
  // A port that cannot be bound is refused and the listener stays.
  auto clash = moved;
  clash.write_listen = {"127.0.0.1", probe.port()};
  EXPECT_FALSE(proxy_->Reload(clash).ok());
  EXPECT_EQ(proxy_->write_port(), new_port);
}

TEST_F(ProxyTest, StopAcceptingLeavesOpenConnectionsWorking) {
  FakeServer server(Greeter);
  StartProxy();
  proxy_->Apply(PrimaryOnly("pg-0", server));
  int fd = Client(Port::kWrite);
  SendAll(fd, StartupMessage());
  ASSERT_EQ(Read(fd, kAuthOk.size()), kAuthOk);
  int port = proxy_->write_port();
  proxy_->StopAccepting();
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(ConnectTo(port), -1);
  SendAll(fd, "draining");
  EXPECT_EQ(Read(fd, 8), "draining");
  EXPECT_EQ(proxy_->ActiveConnections(), 1);
  proxy_->CloseAll();
  EXPECT_TRUE(ClosedWithin(fd, milliseconds(1000)));
}

}  // namespace
}  // namespace pgha::router
