#include "router/proxy.h"

#include <fmt/format.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "common/mutex.h"
#include "common/open_files.h"
#include "router/host_resolver.h"
#include "router/pg_wire.h"
#include "router/session_mode.h"

namespace pgha::router {

using asio::awaitable;
using asio::ip::tcp;
using Steady = std::chrono::steady_clock;
using std::chrono::duration;
using std::chrono::milliseconds;
// A login is a few hundred bytes; past this much the session is under way and never replayed.
constexpr size_t kMaxReplayBytes = 64 * 1024;
// How long a client being refused may take to send what it must before it is told why.
constexpr std::chrono::milliseconds kRefusalDeadline{2000};
constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

const char* PortName(Port port) { return port == Port::kWrite ? "write" : "read"; }

namespace {

int Index(Port port) { return port == Port::kWrite ? 0 : 1; }

// Lock-free so the data path never waits for a reader of the figures.
struct Counters {
  std::atomic<int64_t> active{0}, total{0}, refused_maxconn{0}, held_now{0}, held_total{0},
      hold_timeouts{0}, rejected_no_replica{0}, invalid_openings{0}, connect_errors{0},
      closed_on_leader_change{0}, bytes_from_clients{0}, bytes_to_clients{0}, retried{0};
  std::atomic<int64_t> hold_micros_sum{0};
};

void TuneSocket(tcp::socket& socket, bool keepalive) {
  asio::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.set_option(asio::socket_base::keep_alive(keepalive), ignored);
}

// What a client gets: a backend, an error now, or a wait.
struct Choice {
  std::optional<Backend> backend;
  std::string refusal;  // set: refuse with this message
  std::string waiting_for;
};

}  // namespace

class Session;

struct Proxy::Impl {
  explicit Impl(RouterSettings initial)
      : settings(std::make_shared<const RouterSettings>(std::move(initial))) {}

  // Fixed at Start: one io_context and one thread per configured thread.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::atomic<size_t> next_context{0};
  Counters counters[2];
  std::atomic<int64_t> refusing{0};  // sessions only telling a client why it is refused

  mutable Mutex mutex;
  std::shared_ptr<const RouterSettings> settings GUARDED_BY(mutex);
  Routes routes GUARDED_BY(mutex);
  std::shared_ptr<tcp::acceptor> acceptors[2] GUARDED_BY(mutex);
  bool accepting GUARDED_BY(mutex) = true;
  // Open sessions, by port.
  std::map<Session*, std::weak_ptr<Session>> sessions[2] GUARDED_BY(mutex);
  // Sessions waiting for a target.
  std::map<Session*, std::weak_ptr<Session>> holding GUARDED_BY(mutex);
  // Connections per backend member.
  std::map<std::string, MemberStats> members[2] GUARDED_BY(mutex);
  // Backends that refused lately.
  std::map<std::string, Steady::time_point> down_until GUARDED_BY(mutex);
  size_t next_reader GUARDED_BY(mutex) = 0;            // where the next tie-break starts
  std::function<void(const std::string&)> on_refusal;  // set before Start, then read only
  // Host names of backends; a test may replace it before Start.
  std::unique_ptr<HostResolver> host_resolver = std::make_unique<HostResolver>();
  // Open sessions' servers, by key.
  std::map<CancelKey, Backend> cancel_keys GUARDED_BY(mutex);
  // The write port's clients in `mode: session` (made at Start; the two below are set before).
  std::unique_ptr<SessionMode> session_mode;
  SessionMode::SecretLookup secret_lookup;
  std::function<void()> on_drained;

  asio::io_context& NextContext() {
    return *contexts[next_context.fetch_add(1, std::memory_order_relaxed) % contexts.size()];
  }
  Result<std::shared_ptr<tcp::acceptor>> Bind(const config::HostPort& address);
  void StartAccepting(Port port, std::shared_ptr<tcp::acceptor> acceptor);
  awaitable<void> AcceptLoop(Port port, std::shared_ptr<tcp::acceptor> acceptor);
  Choice Pick(Port port);
  // true when the member was not already marked down lately.
  bool MarkDown(const std::string& member, milliseconds how_long);
};

// One client connection: read its opening message, wait for a target if there is none, connect,
// hand over what the client already sent, then relay both ways. Everything a Session does runs
// on its own io_context's single thread, so its members need no lock; other threads reach it
// only through Wake() and CloseUnlessTo(), which post to that thread.
class Session : public std::enable_shared_from_this<Session> {
 public:
  // `refusal` set: the client is only told why it cannot be served (sqlstate, message); such a
  // session does not count as a connection of its listener.
  Session(Proxy::Impl& proxy, Port port, tcp::socket client,
          std::shared_ptr<const RouterSettings> settings,
          std::optional<std::pair<std::string, std::string>> refusal = std::nullopt)
      : proxy_(proxy),
        port_(port),
        counters_(proxy.counters[Index(port)]),
        settings_(std::move(settings)),
        refusal_(std::move(refusal)),
        client_(std::move(client)),
        server_(client_.get_executor()),
        wake_(client_.get_executor()),
        room_(client_.get_executor()),
        client_data_(client_.get_executor()),
        opening_deadline_(client_.get_executor()) {
    if (refusal_) {
      ++proxy_.refusing;
    } else {
      ++counters_.active;
      ++counters_.total;
    }
  }
  ~Session() {
    if (refusal_) {
      --proxy_.refusing;
    } else {
      --counters_.active;
    }
  }

  void Start() {
    {
      MutexLock lock(proxy_.mutex);
      proxy_.sessions[Index(port_)][this] = weak_from_this();
    }
    TuneSocket(client_, settings_->tcp_keepalive);
    asio::co_spawn(client_.get_executor(), Serve(shared_from_this()), asio::detached);
  }

  // The routes changed: a held client looks again at once.
  void Wake() {
    asio::post(client_.get_executor(), [self = shared_from_this()] { self->wake_.cancel(); });
  }

  // The leader key moved to `leader`: a write connection to anyone else ends.
  void CloseUnlessTo(const std::string& leader) {
    asio::post(client_.get_executor(), [self = shared_from_this(), leader] {
      if (self->backend_ && self->backend_->member != leader && !self->closed_) {
        PGHA_LOG_INFO("closing a write connection to {}: {} holds the leader key now",
                      self->backend_->member, leader.empty() ? "nobody" : leader);
        ++self->counters_.closed_on_leader_change;
        self->Close();
      }
    });
  }

  void CloseFromOutside() {
    asio::post(client_.get_executor(), [self = shared_from_this()] { self->Close(); });
  }

 private:
  static awaitable<void> Serve(std::shared_ptr<Session> self) { co_await self->Run(); }

  // Until the server's first real answer reaches the client, the client cannot tell one server
  // from another: a backend that closes, or greets with "shutting down" / "starting up", is
  // dropped and everything the client sent is replayed to the next one.
  awaitable<void> Run() {
    // (Each co_await's result goes to a variable first, and no argument of a co_await is a
    // temporary: GCC 12 miscompiles both in some coroutines, crashes seen in the session mode.)
    bool opened = co_await ReadOpening();
    if (!opened) {
      co_return;
    }
    auto opening = ParseClientOpening(pending_).kind;
    negotiating_ =
        opening == ClientOpening::kSslRequest || opening == ClientOpening::kGssEncRequest;
    if (refusal_) {
      co_await Refuse(refusal_->first, refusal_->second);
      co_return;
    }
    // A cancel request gets no answer and must reach one server once, never be replayed; it
    // goes to the server of the session it names when that session came through this router.
    replayable_ = opening != ClientOpening::kCancelRequest;
    if (opening == ClientOpening::kCancelRequest) {
      scanning_ = false;
      if (auto key = CancelRequestKey(pending_)) {
        MutexLock lock(proxy_.mutex);
        if (auto it = proxy_.cancel_keys.find(*key); it != proxy_.cancel_keys.end()) {
          cancel_target_ = it->second;
        }
      }
    }
    pump_running_ = true;
    asio::co_spawn(client_.get_executor(), Pump(shared_from_this()), asio::detached);
    std::string avoid;
    while (!closed_) {
      bool found = co_await FindBackend(avoid);
      if (!found) {
        co_return;
      }
      // What the client sent so far goes first, in order; the pump appends to pending_ until
      // server_ready_, and nothing else runs between the last check and setting it.
      while (!pending_.empty() && !closed_) {
        std::string batch = std::move(pending_);
        pending_.clear();
        if (replayable_) {
          sent_ += batch;
        }
        auto [error, n] = co_await asio::async_write(server_, asio::buffer(batch), kNoThrow);
        if (error && !replayable_) {
          Close();
          co_return;
        }
      }
      server_ready_ = true;
      room_.cancel();
      bool relayed = co_await ServerToClient();
      if (!relayed || closed_) {
        co_return;
      }
      // Another attempt: the same bytes, to another backend (or this one, once it is back).
      ++counters_.retried;
      avoid = backend_->member;
      ReleaseBackend();
      server_ready_ = false;
      pending_ = sent_ + pending_;
      sent_.clear();
      negotiating_ =
          opening == ClientOpening::kSslRequest || opening == ClientOpening::kGssEncRequest;
    }
  }

  // The first message tells a PostgreSQL client from garbage; it must come within
  // connect_hold_timeout, so a client that connects and says nothing costs no backend.
  awaitable<bool> ReadOpening() {
    opening_deadline_.expires_after(refusal_ ? kRefusalDeadline : settings_->connect_hold_timeout);
    opening_deadline_.async_wait([weak = weak_from_this()](const asio::error_code& error) {
      if (auto self = weak.lock(); self && !error) {
        self->Close();
      }
    });
    std::array<char, 1024> chunk{};
    while (!closed_) {
      auto opening = ParseClientOpening(pending_);
      if (opening.kind == ClientOpening::kInvalid) {
        ++counters_.invalid_openings;
        co_await Refuse("08P01", "pgha-router: invalid startup packet");
        co_return false;
      }
      if (opening.kind != ClientOpening::kIncomplete) {
        opening_deadline_.cancel();
        co_return true;
      }
      auto [error, n] = co_await client_.async_read_some(asio::buffer(chunk), kNoThrow);
      if (error) {
        Close();
        co_return false;
      }
      counters_.bytes_from_clients += static_cast<int64_t>(n);
      pending_.append(chunk.data(), n);
    }
    co_return false;
  }

  awaitable<bool> FindBackend(std::string last_failed) {
    auto started = Steady::now();
    auto deadline = arrived_ + settings_->connect_hold_timeout;
    bool held = false;
    std::string last_reason;
    auto stop_holding = [&] {
      if (held) {
        --counters_.held_now;
        MutexLock lock(proxy_.mutex);
        proxy_.holding.erase(this);
      }
    };
    while (!closed_) {
      Choice choice;
      if (cancel_target_) {
        choice.backend = cancel_target_;
      } else {
        choice = proxy_.Pick(port_);
      }
      if (!choice.refusal.empty()) {
        stop_holding();
        ++counters_.rejected_no_replica;
        std::string why = "pgha-router: " + choice.refusal;
        co_await Refuse("57P03", why);
        co_return false;
      }
      // A backend that just refused is tried again only after a pause or a change of routes.
      bool retry_now = choice.backend && choice.backend->member != last_failed;
      if (retry_now) {
        bool connected = co_await Connect(*choice.backend);
        if (connected) {
          stop_holding();
          if (held) {
            counters_.hold_micros_sum +=
                std::chrono::duration_cast<std::chrono::microseconds>(Steady::now() - started)
                    .count();
          }
          co_return true;
        }
        last_failed = choice.backend->member;
        continue;
      }
      last_reason =
          choice.backend ? choice.backend->member + " refuses connections" : choice.waiting_for;
      if (!held) {
        held = true;
        ++counters_.held_now;
        ++counters_.held_total;
        MutexLock lock(proxy_.mutex);
        proxy_.holding[this] = weak_from_this();
      }
      auto now = Steady::now();
      if (now >= deadline) {
        stop_holding();
        ++counters_.hold_timeouts;
        auto waited = std::chrono::duration_cast<milliseconds>(settings_->connect_hold_timeout);
        PGHA_LOG_WARN("{} port: closing a client held {} ms without a target: {}", PortName(port_),
                      waited.count(), last_reason);
        std::string why =
            fmt::format("pgha-router: no {} within {} ms: {}",
                        port_ == Port::kWrite ? "primary" : "server", waited.count(), last_reason);
        co_await Refuse("57P03", why);
        co_return false;
      }
      // Woken by new routes at once; otherwise a refusing backend is retried every 200 ms.
      wake_.expires_after(std::min<Steady::duration>(milliseconds(200), deadline - now));
      co_await wake_.async_wait(kNoThrow);
      last_failed.clear();
    }
    stop_holding();
    co_return false;
  }

  awaitable<bool> Connect(const Backend& backend) {
    auto endpoints = co_await Resolve(backend);
    if (!endpoints) {
      co_return false;
    }
    server_ = tcp::socket(client_.get_executor());
    auto timed_out = std::make_shared<bool>(false);
    asio::steady_timer timer(client_.get_executor(), settings_->connect_timeout);
    timer.async_wait([self = shared_from_this(), timed_out](const asio::error_code& error) {
      if (!error) {
        *timed_out = true;
        asio::error_code ignored;
        self->server_.close(ignored);
      }
    });
    auto [error, endpoint] = co_await asio::async_connect(server_, *endpoints, kNoThrow);
    timer.cancel();
    if (error || *timed_out || closed_) {
      ConnectFailed(backend, *timed_out ? "timed out" : error ? error.message() : "client left");
      co_return false;
    }
    TuneSocket(server_, settings_->tcp_keepalive);
    {
      MutexLock lock(proxy_.mutex);
      // The routes may have moved on while connecting: a write connection goes only to the
      // member that still holds the leader key.
      if (port_ == Port::kWrite && !cancel_target_ && proxy_.routes.leader != backend.member) {
        asio::error_code ignored;
        server_.close(ignored);
        co_return false;
      }
      auto& member = proxy_.members[Index(port_)][backend.member];
      ++member.active;
      ++member.total;
    }
    backend_ = backend;
    co_return true;
  }

  // The backend's addresses, looked up off this thread (host_resolver.h) for at most
  // connect_timeout. nullopt when the lookup failed or timed out (ConnectFailed has run), or when
  // the write port's leader moved on meanwhile (the caller picks again at once).
  awaitable<std::optional<std::vector<tcp::endpoint>>> Resolve(const Backend& backend) {
    auto deadline = Steady::now() + settings_->connect_timeout;
    asio::steady_timer poll(client_.get_executor());
    while (!closed_) {
      auto answer = proxy_.host_resolver->Lookup(backend.host);
      if (answer.state == HostResolver::Answer::State::kResolved) {
        std::vector<tcp::endpoint> endpoints;
        for (const auto& text : answer.addresses) {
          asio::error_code error;
          auto address = asio::ip::make_address(text, error);
          if (!error) {
            endpoints.emplace_back(address, static_cast<uint16_t>(backend.port));
          }
        }
        co_return endpoints;
      }
      if (answer.state == HostResolver::Answer::State::kFailed) {
        ConnectFailed(backend, answer.error);
        co_return std::nullopt;
      }
      if (port_ == Port::kWrite && !cancel_target_) {
        MutexLock lock(proxy_.mutex);
        if (proxy_.routes.leader != backend.member) {
          co_return std::nullopt;
        }
      }
      auto now = Steady::now();
      if (now >= deadline) {
        ConnectFailed(backend,
                      fmt::format("no address for {} within connect_timeout", backend.host));
        co_return std::nullopt;
      }
      poll.expires_after(std::min<Steady::duration>(milliseconds(10), deadline - now));
      co_await poll.async_wait(kNoThrow);
    }
    co_return std::nullopt;
  }

  void ConnectFailed(const Backend& backend, const std::string& why) {
    if (closed_) {
      return;
    }
    ++counters_.connect_errors;
    if (proxy_.on_refusal) {
      proxy_.on_refusal(backend.member);
    }
    // Logged once per member going down, not once per held client and retry.
    if (proxy_.MarkDown(backend.member, settings_->check_interval)) {
      PGHA_LOG_WARN("{} port: cannot connect to {} ({}:{}): {}", PortName(port_), backend.member,
                    backend.host, backend.port, why);
    }
    asio::error_code ignored;
    server_.close(ignored);
  }

  // Client to server. Before the server is ready, bytes wait in pending_ (at most one buffer:
  // then the client is not read until they are sent, which is the backpressure).
  static awaitable<void> Pump(std::shared_ptr<Session> self) { co_await self->ClientToServer(); }

  awaitable<void> ClientToServer() {
    std::vector<char> buffer(settings_->buffer_bytes);
    while (!closed_) {
      if (!server_ready_ && pending_.size() >= buffer.size()) {
        room_.expires_at(Steady::time_point::max());
        co_await room_.async_wait(kNoThrow);
        continue;
      }
      auto [error, n] = co_await client_.async_read_some(asio::buffer(buffer), kNoThrow);
      if (error) {
        Close();
        co_return;
      }
      counters_.bytes_from_clients += static_cast<int64_t>(n);
      if (!server_ready_) {
        pending_.append(buffer.data(), n);
        client_data_.cancel();
        continue;
      }
      if (replayable_) {
        sent_.append(buffer.data(), n);
        if (sent_.size() > kMaxReplayBytes) {
          replayable_ = false;  // not a login any more: no replay
        }
      }
      auto [write_error, written] =
          co_await asio::async_write(server_, asio::buffer(buffer.data(), n), kNoThrow);
      if (write_error && !replayable_) {
        Close();
        co_return;
      }
      // A failed write while replayable: the bytes are in sent_; the server side decides.
    }
  }

  // Server to client. Returns true when the attempt should be repeated on another backend
  // (the server failed before the client saw anything of it), false when the session ended.
  awaitable<bool> ServerToClient() {
    std::vector<char> buffer(settings_->buffer_bytes);
    std::string greeting;  // held back while replayable, until it is known to be no refusal
    while (!closed_) {
      auto [error, n] = co_await server_.async_read_some(asio::buffer(buffer), kNoThrow);
      if (error) {
        if (replayable_ && !closed_) {
          PGHA_LOG_INFO("{} port: {} closed before greeting the client; trying again",
                        PortName(port_), backend_->member);
          co_return true;
        }
        Close();
        co_return false;
      }
      std::string_view out(buffer.data(), n);
      if (replayable_) {
        greeting.append(buffer.data(), n);
        std::string answer_now;
        auto verdict = Screen(greeting, answer_now);
        if (!answer_now.empty()) {
          // The one-byte answer to the client's TLS request: it waits for it before it sends
          // its startup, so it goes now.
          auto [answer_error, answered] =
              co_await asio::async_write(client_, asio::buffer(answer_now), kNoThrow);
          if (answer_error) {
            Close();
            co_return false;
          }
          counters_.bytes_to_clients += static_cast<int64_t>(answered);
        }
        if (verdict == Screening::kRetry) {
          co_return true;
        }
        if (verdict == Screening::kWait) {
          continue;
        }
        if (verdict == Screening::kFail) {
          std::string why =
              "pgha-router: the next server asked for TLS after the client had been told to go "
              "without it";
          co_await Refuse("08006", why);
          co_return false;
        }
        out = greeting;  // kForward: what was held back, and from now on everything
      }
      if (scanning_) {
        NoteBackendKey(out);
      }
      auto [write_error, written] =
          co_await asio::async_write(client_, asio::buffer(out.data(), out.size()), kNoThrow);
      greeting.clear();
      if (write_error) {
        Close();
        co_return false;
      }
      counters_.bytes_to_clients += static_cast<int64_t>(written);
    }
    co_return false;
  }

  enum class Screening { kWait, kForward, kRetry, kFail };

  // Looks at what the server said so far while the client has seen nothing of it; consumes the
  // answer to a TLS/GSS request when the client already had the same answer from an earlier
  // server.
  Screening Screen(std::string& greeting, std::string& answer_now) {
    if (negotiating_) {
      char answer = greeting[0];
      if (answer == 'N') {
        negotiating_ = false;
        greeting.erase(0, 1);
        if (!told_no_encryption_) {
          told_no_encryption_ = true;
          answer_now = "N";
        }
        if (greeting.empty()) {
          return Screening::kWait;
        }
      } else if (answer == 'S' || answer == 'G') {
        if (told_no_encryption_) {
          return Screening::kFail;
        }
        replayable_ = false;  // encrypted from here on: the router sees no more
        scanning_ = false;
        sent_.clear();
        return Screening::kForward;
      } else {
        negotiating_ = false;  // an error instead of the one-byte answer
      }
    }
    auto verdict = ClassifyServerGreeting(greeting);
    if (verdict.kind == ServerGreeting::kIncomplete) {
      return Screening::kWait;
    }
    if (verdict.kind == ServerGreeting::kRetryable) {
      PGHA_LOG_INFO("{} port: {} refused the login with {}; trying again", PortName(port_),
                    backend_->member, verdict.sqlstate);
      proxy_.MarkDown(backend_->member, settings_->check_interval);
      return Screening::kRetry;
    }
    replayable_ = false;
    sent_.clear();
    return Screening::kForward;
  }

  // Answers in the server's place with a FATAL error, which libpq shows as it is.
  // Views, not strings: what the caller passes outlives the call (the caller waits for it), and
  // a view has no destructor for GCC 12 to run twice.
  awaitable<void> Refuse(std::string_view sqlstate, std::string_view message) {
    if (!closed_ && negotiating_ && !told_no_encryption_) {
      co_await DeclineEncryption();
    }
    if (!closed_) {
      std::string response = FatalErrorResponse(sqlstate, message);
      asio::steady_timer limit(client_.get_executor(), milliseconds(1000));
      limit.async_wait([self = shared_from_this()](const asio::error_code& error) {
        if (!error) self->Close();
      });
      (void)co_await asio::async_write(client_, asio::buffer(response), kNoThrow);
      limit.cancel();
      asio::error_code ignored;
      client_.shutdown(tcp::socket::shutdown_send, ignored);
    }
    Close();
  }

  // libpq does not show an error sent in place of the one-byte answer to its TLS or GSS request
  // (it cannot trust it): decline encryption, let the client send its startup, and the error
  // then answers that. Waits at most kRefusalDeadline for the startup.
  awaitable<void> DeclineEncryption() {
    told_no_encryption_ = true;
    negotiating_ = false;
    std::string no = "N";
    auto [error, n] = co_await asio::async_write(client_, asio::buffer(no), kNoThrow);
    if (error) {
      Close();
      co_return;
    }
    auto deadline = Steady::now() + kRefusalDeadline;
    std::array<char, 1024> chunk{};
    auto startup_complete = [this] {
      return pending_.size() > 8 && ParseClientOpening(std::string_view(pending_).substr(8)).kind !=
                                        ClientOpening::kIncomplete;
    };
    while (!closed_ && !startup_complete() && Steady::now() < deadline) {
      if (pump_running_) {
        client_data_.expires_at(deadline);
        co_await client_data_.async_wait(kNoThrow);
        continue;
      }
      asio::steady_timer limit(client_.get_executor(), deadline - Steady::now());
      limit.async_wait([self = shared_from_this()](const asio::error_code& timer_error) {
        if (!timer_error) self->Close();
      });
      auto [read_error, got] = co_await client_.async_read_some(asio::buffer(chunk), kNoThrow);
      limit.cancel();
      if (read_error) {
        Close();
        co_return;
      }
      pending_.append(chunk.data(), got);
    }
  }

  // The session's cancel key, from the server's first messages, so a CancelRequest for it
  // (which may arrive on either port, on a new connection) reaches this very server.
  void NoteBackendKey(std::string_view from_server) {
    scanner_.Feed(from_server);
    if (!scanner_.done()) {
      return;
    }
    scanning_ = false;
    if (scanner_.key() && backend_) {
      MutexLock lock(proxy_.mutex);
      proxy_.cancel_keys[*scanner_.key()] = *backend_;
      cancel_key_ = scanner_.key();
    }
  }

  void ReleaseBackend() {
    asio::error_code ignored;
    server_.close(ignored);
    if (backend_) {
      MutexLock lock(proxy_.mutex);
      --proxy_.members[Index(port_)][backend_->member].active;
      backend_.reset();
    }
  }

  void Close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    asio::error_code ignored;
    client_.close(ignored);
    server_.close(ignored);
    wake_.cancel();
    room_.cancel();
    client_data_.cancel();
    opening_deadline_.cancel();
    MutexLock lock(proxy_.mutex);
    proxy_.sessions[Index(port_)].erase(this);
    proxy_.holding.erase(this);
    if (cancel_key_) {
      proxy_.cancel_keys.erase(*cancel_key_);
    }
    if (backend_) {
      --proxy_.members[Index(port_)][backend_->member].active;
      backend_.reset();
    }
  }

  Proxy::Impl& proxy_;
  const Port port_;
  Counters& counters_;
  const std::shared_ptr<const RouterSettings> settings_;  // as when the client arrived
  const std::optional<std::pair<std::string, std::string>> refusal_;
  tcp::socket client_;
  tcp::socket server_;
  asio::steady_timer wake_;              // a held client's wait
  asio::steady_timer room_;              // the pump's wait while pending_ is full
  asio::steady_timer client_data_;       // cancelled by the pump when pending_ grows
  asio::steady_timer opening_deadline_;  // the first message's deadline
  std::string pending_;                  // from the client, not yet sent to the server
  std::string sent_;  // sent to the current server while the attempt may be repeated
  const Steady::time_point arrived_ = Steady::now();
  bool replayable_ = true;           // the client has seen nothing of the current server
  bool negotiating_ = false;         // a TLS/GSS request awaits its one-byte answer
  bool told_no_encryption_ = false;  // the client already has an 'N' to its request
  bool server_ready_ = false;
  bool pump_running_ = false;
  bool scanning_ = true;  // looking for the session's cancel key
  BackendKeyScanner scanner_;
  std::optional<CancelKey> cancel_key_;   // registered in proxy_.cancel_keys
  std::optional<Backend> cancel_target_;  // a CancelRequest's session's server
  bool closed_ = false;
  std::optional<Backend> backend_;
};

Result<std::shared_ptr<tcp::acceptor>> Proxy::Impl::Bind(const config::HostPort& address) {
  asio::error_code error;
  auto ip = asio::ip::make_address(address.host, error);
  if (error) {
    tcp::resolver resolver(*contexts[0]);
    auto found = resolver.resolve(address.host, std::to_string(address.port), error);
    if (error || found.empty()) {
      return Error::Invalid(fmt::format("cannot resolve {}: {}", address.host, error.message()));
    }
    ip = found.begin()->endpoint().address();
  }
  auto acceptor = std::make_shared<tcp::acceptor>(*contexts[0]);
  tcp::endpoint endpoint(ip, static_cast<uint16_t>(address.port));
  acceptor->open(endpoint.protocol(), error);
  if (!error) acceptor->set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor->bind(endpoint, error);
  if (!error) acceptor->listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return Error::Unavailable(
        fmt::format("cannot listen on {}: {}", address.ToString(), error.message()));
  }
  return acceptor;
}

void Proxy::Impl::StartAccepting(Port port, std::shared_ptr<tcp::acceptor> acceptor) {
  asio::co_spawn(*contexts[0], AcceptLoop(port, std::move(acceptor)), asio::detached);
}

awaitable<void> Proxy::Impl::AcceptLoop(Port port, std::shared_ptr<tcp::acceptor> acceptor) {
  while (acceptor->is_open()) {
    auto& context = NextContext();
    auto [error, socket] = co_await acceptor->async_accept(context, kNoThrow);
    if (error) {
      if (error == asio::error::operation_aborted || !acceptor->is_open()) {
        co_return;
      }
      // Out of descriptors and the like: pause instead of spinning on the same error.
      PGHA_LOG_WARN("{} port: accept failed: {}", PortName(port), error.message());
      asio::steady_timer pause(*contexts[0], milliseconds(100));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    std::shared_ptr<const RouterSettings> current;
    {
      MutexLock lock(mutex);
      current = settings;
    }
    auto& listener = counters[Index(port)];
    int64_t active = listener.active.load();
    if (port == Port::kWrite) {
      active += session_mode->Active();
    }
    if (active >= static_cast<int64_t>(current->maxconn)) {
      ++listener.refused_maxconn;
      // Told why, as PostgreSQL tells a client over max_connections; a flood of them is bounded
      // too, and beyond the bound a client is just closed.
      if (refusing.load() < static_cast<int64_t>(current->maxconn)) {
        std::make_shared<Session>(
            *this, port, std::move(socket), current,
            std::make_pair(std::string("53300"),
                           fmt::format("pgha-router: too many connections on the {} port "
                                       "(maxconn {})",
                                       PortName(port), current->maxconn)))
            ->Start();
      } else {
        asio::error_code ignored;
        socket.close(ignored);
      }
      continue;
    }
    if (port == Port::kWrite && current->mode == ProxyMode::kSession) {
      session_mode->Accept(std::move(socket), current);
      continue;
    }
    std::make_shared<Session>(*this, port, std::move(socket), current)->Start();
  }
}

Choice Proxy::Impl::Pick(Port port) {
  MutexLock lock(mutex);
  Choice choice;
  if (port == Port::kWrite) {
    if (routes.primary) {
      choice.backend = routes.primary;
    } else {
      choice.waiting_for = routes.no_primary_reason;
    }
    return choice;
  }
  if (routes.readers.empty()) {
    if (settings->read_fallback == ReadFallback::kReject) {
      choice.refusal = "no replica is eligible for reads (read_fallback: reject)";
    } else {
      choice.waiting_for =
          "no replica is eligible for reads and " +
          (routes.no_primary_reason.empty() ? std::string("no primary") : routes.no_primary_reason);
    }
    return choice;
  }
  // Least connections among the readers that did not refuse lately; if all did, the least
  // loaded of them all (it may be back).
  // Ties go round the readers in turn, so sequential short connections spread too.
  auto now = Steady::now();
  const Backend* best = nullptr;
  bool best_down = true;
  int64_t best_active = 0;
  size_t start = next_reader++;
  for (size_t i = 0; i < routes.readers.size(); ++i) {
    const Backend& reader = routes.readers[(start + i) % routes.readers.size()];
    auto down = down_until.find(reader.member);
    bool is_down = down != down_until.end() && down->second > now;
    int64_t active = members[Index(port)][reader.member].active;
    if (best == nullptr || (best_down && !is_down) ||
        (is_down == best_down && active < best_active)) {
      best = &reader;
      best_down = is_down;
      best_active = active;
    }
  }
  choice.backend = *best;
  return choice;
}

bool Proxy::Impl::MarkDown(const std::string& member, milliseconds how_long) {
  MutexLock lock(mutex);
  auto now = Steady::now();
  auto& until = down_until[member];
  // A member stays "down" while it keeps refusing; only the first refusal is news.
  bool news = until + how_long < now;
  until = now + how_long;
  return news;
}

Proxy::Proxy(RouterSettings settings) : impl_(std::make_unique<Impl>(std::move(settings))) {}

Proxy::~Proxy() { Stop(); }

Status Proxy::Start() {
  auto& impl = *impl_;
  std::shared_ptr<const RouterSettings> settings;
  {
    MutexLock lock(impl.mutex);
    settings = impl.settings;
  }
  // Two descriptors per connection and two listeners' worth of connections.
  size_t fit = RaiseOpenFileLimit(4 * settings->maxconn);
  if (fit < 4 * settings->maxconn) {
    PGHA_LOG_WARN("the open-file limit allows about {} connections per listener, not maxconn {}",
                  fit / 4, settings->maxconn);
  }
  for (size_t i = 0; i < settings->threads; ++i) {
    impl.contexts.push_back(std::make_unique<asio::io_context>(1));
    impl.work.push_back(asio::make_work_guard(*impl.contexts.back()));
  }
  impl.session_mode = std::make_unique<SessionMode>(*impl.host_resolver, settings);
  if (!settings->tls_certificate.empty()) {
    auto tls = impl.session_mode->UseCertificate(settings->tls_certificate, settings->tls_key);
    if (!tls.ok()) {
      return tls;
    }
  }
  impl.session_mode->SetSecretLookup(impl.secret_lookup);
  impl.session_mode->SetDrainedListener(impl.on_drained);
  auto write = impl.Bind(settings->write_listen);
  if (!write.ok()) {
    return write.error().WithContext("write port");
  }
  auto read = impl.Bind(settings->read_listen);
  if (!read.ok()) {
    return read.error().WithContext("read port");
  }
  {
    MutexLock lock(impl.mutex);
    impl.acceptors[0] = *write;
    impl.acceptors[1] = *read;
  }
  impl.StartAccepting(Port::kWrite, *write);
  impl.StartAccepting(Port::kRead, *read);
  for (auto& context : impl.contexts) {
    impl.threads.emplace_back([&context] { context->run(); });
  }
  return OkStatus();
}

void Proxy::Apply(const Routes& routes) {
  auto& impl = *impl_;
  std::vector<std::shared_ptr<Session>> to_wake;
  std::vector<std::shared_ptr<Session>> to_close;
  std::string leader;
  {
    MutexLock lock(impl.mutex);
    // Another member took the key: the old leader's sessions end (it is demoted, or a
    // split-brained primary). No leader at all is not enough: after etcd comes back from an
    // outage the leases expired and the same leader takes its key again a moment later, and its
    // clients must not pay for that; a leader that really steps down stops PostgreSQL itself.
    bool leader_moved = !routes.leader.empty() && impl.routes.leader != routes.leader;
    impl.routes = routes;
    leader = routes.leader;
    for (auto& [raw, weak] : impl.holding) {
      if (auto session = weak.lock()) {
        to_wake.push_back(session);
      }
    }
    if (leader_moved && impl.settings->on_leader_change == OnLeaderChange::kClose) {
      for (auto& [raw, weak] : impl.sessions[0]) {
        if (auto session = weak.lock()) {
          to_close.push_back(session);
        }
      }
    }
  }
  for (auto& session : to_wake) {
    session->Wake();
  }
  for (auto& session : to_close) {
    session->CloseUnlessTo(leader);
  }
  if (impl.session_mode) {
    impl.session_mode->Apply(routes);
  }
}

Status Proxy::Reload(const RouterSettings& settings) {
  auto& impl = *impl_;
  std::shared_ptr<const RouterSettings> before;
  {
    MutexLock lock(impl.mutex);
    before = impl.settings;
  }
  std::shared_ptr<tcp::acceptor> rebound[2];
  const config::HostPort* addresses[2] = {&settings.write_listen, &settings.read_listen};
  const config::HostPort* old_addresses[2] = {&before->write_listen, &before->read_listen};
  for (int i = 0; i < 2; ++i) {
    if (addresses[i]->ToString() != old_addresses[i]->ToString()) {
      auto bound = impl.Bind(*addresses[i]);
      if (!bound.ok()) {
        return bound.error().WithContext(PortName(i == 0 ? Port::kWrite : Port::kRead) +
                                         std::string(" port"));
      }
      rebound[i] = *bound;
    }
  }
  std::shared_ptr<tcp::acceptor> retired[2];
  bool accepting = true;
  {
    MutexLock lock(impl.mutex);
    accepting = impl.accepting;
    impl.settings = std::make_shared<const RouterSettings>(settings);
    if (impl.session_mode) {
      impl.session_mode->SetSettings(impl.settings);
    }
    for (int i = 0; i < 2; ++i) {
      if (rebound[i]) {
        retired[i] = impl.acceptors[i];
        impl.acceptors[i] = impl.accepting ? rebound[i] : nullptr;
      }
    }
  }
  for (int i = 0; i < 2; ++i) {
    if (retired[i]) {
      asio::post(*impl.contexts[0], [acceptor = retired[i]] {
        asio::error_code ignored;
        acceptor->close(ignored);
      });
    }
    if (rebound[i] && accepting) {
      impl.StartAccepting(i == 0 ? Port::kWrite : Port::kRead, rebound[i]);
    }
  }
  return OkStatus();
}

void Proxy::StopAccepting() {
  auto& impl = *impl_;
  if (impl.contexts.empty()) {
    return;
  }
  std::shared_ptr<tcp::acceptor> acceptors[2];
  {
    MutexLock lock(impl.mutex);
    impl.accepting = false;
    acceptors[0] = std::move(impl.acceptors[0]);
    acceptors[1] = std::move(impl.acceptors[1]);
  }
  for (auto& acceptor : acceptors) {
    if (acceptor) {
      asio::post(*impl.contexts[0], [acceptor] {
        asio::error_code ignored;
        acceptor->close(ignored);
      });
    }
  }
}

void Proxy::CloseAll() {
  auto& impl = *impl_;
  std::vector<std::shared_ptr<Session>> open;
  {
    MutexLock lock(impl.mutex);
    for (auto& port : impl.sessions) {
      for (auto& [raw, weak] : port) {
        if (auto session = weak.lock()) {
          open.push_back(session);
        }
      }
    }
  }
  for (auto& session : open) {
    session->CloseFromOutside();
  }
  if (impl.session_mode) {
    impl.session_mode->CloseAll();
  }
}

void Proxy::Stop() {
  auto& impl = *impl_;
  if (impl.threads.empty()) {
    return;
  }
  StopAccepting();
  CloseAll();
  impl.work.clear();
  for (auto& context : impl.contexts) {
    context->stop();
  }
  for (auto& thread : impl.threads) {
    thread.join();
  }
  impl.threads.clear();
  // Sessions still queued in the contexts are destroyed with them, before the counters.
  impl.contexts.clear();
  impl.session_mode.reset();
}

void Proxy::SetSecretLookup(SessionMode::SecretLookup lookup) {
  impl_->secret_lookup = std::move(lookup);
}

void Proxy::SetDrainedListener(std::function<void()> on_drained) {
  impl_->on_drained = std::move(on_drained);
}

bool Proxy::Drained() const { return !impl_->session_mode || impl_->session_mode->Drained(); }

void Proxy::SetHostResolver(
    std::function<Result<std::vector<std::string>>(const std::string&)> resolve) {
  impl_->host_resolver = std::make_unique<HostResolver>(std::move(resolve));
}

void Proxy::SetRefusalListener(std::function<void(const std::string&)> on_refusal) {
  impl_->on_refusal = std::move(on_refusal);
}

ProxyStats Proxy::Stats() const {
  auto& impl = *impl_;
  ProxyStats out;
  ListenerStats* targets[2] = {&out.write, &out.read};
  for (int i = 0; i < 2; ++i) {
    const Counters& c = impl.counters[i];
    ListenerStats& s = *targets[i];
    s.active = c.active;
    s.total = c.total;
    s.refused_maxconn = c.refused_maxconn;
    s.held_now = c.held_now;
    s.held_total = c.held_total;
    s.hold_timeouts = c.hold_timeouts;
    s.hold_seconds_sum = static_cast<double>(c.hold_micros_sum.load()) / 1e6;
    s.rejected_no_replica = c.rejected_no_replica;
    s.invalid_openings = c.invalid_openings;
    s.connect_errors = c.connect_errors;
    s.closed_on_leader_change = c.closed_on_leader_change;
    s.bytes_from_clients = c.bytes_from_clients;
    s.bytes_to_clients = c.bytes_to_clients;
    s.retried = c.retried;
  }
  if (impl.session_mode) {
    out.session = impl.session_mode->Stats();
    out.write.active += out.session.active;
    out.write.total += out.session.total;
  }
  MutexLock lock(impl.mutex);
  out.members["write"] = impl.members[0];
  out.members["read"] = impl.members[1];
  return out;
}

int64_t Proxy::ActiveConnections() const {
  int64_t session = impl_->session_mode ? impl_->session_mode->Active() : 0;
  return impl_->counters[0].active.load() + impl_->counters[1].active.load() + session;
}

int Proxy::write_port() const {
  MutexLock lock(impl_->mutex);
  return impl_->acceptors[0] ? impl_->acceptors[0]->local_endpoint().port() : 0;
}

int Proxy::read_port() const {
  MutexLock lock(impl_->mutex);
  return impl_->acceptors[1] ? impl_->acceptors[1]->local_endpoint().port() : 0;
}

}  // namespace pgha::router
