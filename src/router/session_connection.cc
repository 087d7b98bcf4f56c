#include "router/session_connection.h"

#include <fmt/format.h>

#include <asio/experimental/as_tuple.hpp>
#include <chrono>

#include "common/log.h"
#include "router/backend_connect.h"
#include "router/pg_wire.h"
#include "router/server_login.h"

namespace pgha::router {

using asio::awaitable;
using asio::ip::tcp;
using Steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
// PostgreSQL's own authentication_timeout default: a login must be done within it.
constexpr milliseconds kLoginTimeout{60000};
// A held query looks for a primary again this often without being woken.
constexpr milliseconds kHoldPoll{200};
// How long a client told why its session ends may still send before the socket closes.
constexpr milliseconds kLinger{2000};

std::string Reframe(const Message& message) { return Frame(message.type, message.body); }

}  // namespace

SessionConnection::SessionConnection(std::shared_ptr<SessionMode::Hub> hub, tcp::socket client,
                                     std::shared_ptr<const RouterSettings> settings)
    : hub_(std::move(hub)),
      settings_(std::move(settings)),
      client_(std::move(client)),
      login_(hub_->tls != nullptr),
      wake_(client_.get_executor()),
      linger_(client_.get_executor()) {
  // Waits on these never time out; each write that completes wakes them.
  for (Outbox* box : {&to_client_, &to_server_}) {
    box->drained =
        std::make_unique<asio::steady_timer>(client_.get_executor(), Steady::time_point::max());
  }
  ++hub_->counters.active;
  ++hub_->counters.total;
}

SessionConnection::~SessionConnection() {
  --hub_->counters.active;
  if (registered_) {
    hub_->Unregister(this);
  }
}

void SessionConnection::Start() {
  hub_->Register(this, weak_from_this());
  registered_ = true;
  client_key_for_cancel_ = hub_->IssueCancelKey(this);
  asio::error_code ignored;
  client_.set_option(tcp::no_delay(true), ignored);
  client_.set_option(asio::socket_base::keep_alive(settings_->tcp_keepalive), ignored);
  asio::co_spawn(client_.get_executor(), Serve(shared_from_this()), asio::detached);
}

void SessionConnection::Wake() {
  asio::post(client_.get_executor(), [self = shared_from_this()] { self->wake_.cancel(); });
}

void SessionConnection::Cancel() {
  asio::post(client_.get_executor(), [self = shared_from_this()] {
    if (self->backend_ && self->server_key_ && !self->closed_) {
      asio::co_spawn(self->client_.get_executor(),
                     SendCancel(self, *self->backend_, *self->server_key_), asio::detached);
    }
  });
}

void SessionConnection::CutTransaction() {
  asio::post(client_.get_executor(), [self = shared_from_this()] {
    if (self->server_ && !self->state_.AtRest() && !self->closed_) {
      ++self->hub_->counters.pause_timeouts;
      self->ServerLost(fmt::format(
          "the transaction ran past pause_timeout ({} ms) while the primary was handed over "
          "and was rolled back",
          self->settings_->pause_timeout.count()));
    }
  });
}

void SessionConnection::LeaderMoved(std::string leader) {
  asio::post(client_.get_executor(), [self = shared_from_this(), leader = std::move(leader)] {
    if (!self->backend_ || self->backend_->member == leader || self->ending()) {
      return;
    }
    if (self->state_.AtRest()) {
      self->DropServer();  // the next query goes to the new leader
      return;
    }
    // A transaction on a member that lost the key must not go on writing there.
    self->ServerLost(self->backend_->member + " no longer holds the leader key (" +
                     (leader.empty() ? std::string("nobody") : leader) + " does)");
  });
}

void SessionConnection::CloseFromOutside() {
  asio::post(client_.get_executor(), [self = shared_from_this()] { self->Close(); });
}

// Coroutines whose arguments live in their own frames: a lambda's captures would not outlive
// the call that starts it.
awaitable<void> SessionConnection::Serve(std::shared_ptr<SessionConnection> self) {
  co_await self->Run();
}

awaitable<void> SessionConnection::WriteClientOf(std::shared_ptr<SessionConnection> self) {
  co_await self->WriteClient();
}

awaitable<void> SessionConnection::WriteServerOf(std::shared_ptr<SessionConnection> self) {
  co_await self->WriteServer();
}

awaitable<std::optional<Result<std::optional<StoredSecret>>>> SessionConnection::Fetch(
    std::shared_ptr<SessionMode::Hub> hub, Backend primary, std::string user) {
  co_return hub->FetchSecret(primary, user);
}

awaitable<std::tuple<asio::error_code, size_t>> SessionConnection::ReadClient(
    asio::mutable_buffer buffer) {
  if (tls_) {
    auto result = co_await tls_->async_read_some(buffer, kNoThrow);
    co_return result;
  }
  auto result = co_await client_.async_read_some(buffer, kNoThrow);
  co_return result;
}

awaitable<void> SessionConnection::Run() {
  // (Each co_await's result goes to a variable first, and no argument of a co_await is a
  // temporary with a destructor (CloseWith takes views): GCC 12 miscompiles
  // `if (!co_await f())` in some coroutines and freed a temporary made in a co_await's
  // arguments twice, two crashes seen here.)
  bool logged_in = co_await Login();
  if (!logged_in) {
    co_return;
  }
  bool served = co_await OpenServer(true);
  if (!served) {
    co_return;
  }
  co_await ClientLoop();
}

awaitable<bool> SessionConnection::Login() {
  asio::steady_timer deadline(client_.get_executor(), kLoginTimeout);
  deadline.async_wait([weak = weak_from_this()](const asio::error_code& error) {
    if (auto self = weak.lock(); self && !error) {
      self->Close();
    }
  });
  std::array<char, 4096> chunk{};
  ClientLogin::Next next = ClientLogin::Next::kRead;
  while (!closed_) {
    if (next == ClientLogin::Next::kClose && !login_.user().empty()) {
      // Counted before the refusal is sent: whoever reads the figures after the client saw it
      // finds it counted.
      ++hub_->counters.logins_refused;
      hub_->ForgetSecret(login_.user());  // a changed password is looked up again
    }
    SendToClient(login_.TakeOutput());
    switch (next) {
      case ClientLogin::Next::kRead: {
        auto [error, n] = co_await ReadClient(asio::buffer(chunk));
        if (error) {
          Close();
          co_return false;
        }
        next = login_.Feed(std::string_view(chunk.data(), n));
        break;
      }
      case ClientLogin::Next::kLookUpSecret: {
        auto secret = co_await LookUpSecret();
        if (!secret) {
          co_return false;  // told why and closed
        }
        next = login_.OnSecret(*secret);
        break;
      }
      case ClientLogin::Next::kCancel:
        if (login_.cancel_key()) {
          hub_->Cancel(*login_.cancel_key());
        }
        Close();
        co_return false;
      case ClientLogin::Next::kAuthenticated:
        deadline.cancel();
        parameters_ = login_.startup_parameters();
        client_key_ = login_.client_key();
        secret_ = login_.secret();
        co_return true;
      case ClientLogin::Next::kStartTls: {
        // The 'S' goes in clear; everything after it inside TLS.
        co_await FlushClient();
        if (ending() || !hub_->tls) {
          Close();
          co_return false;
        }
        tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(client_, *hub_->tls);
        auto [error] = co_await tls_->async_handshake(asio::ssl::stream_base::server, kNoThrow);
        if (error) {
          PGHA_LOG_DEBUG("session mode: a client's TLS handshake failed: {}", error.message());
          Close();
          co_return false;
        }
        next = ClientLogin::Next::kRead;
        break;
      }
      case ClientLogin::Next::kClose:
        co_await FlushClient();
        Close();
        co_return false;
    }
  }
  co_return false;
}

awaitable<std::optional<std::optional<StoredSecret>>> SessionConnection::LookUpSecret() {
  const std::string& user = login_.user();
  if (auto cached = hub_->CachedSecret(user)) {
    co_return *cached;
  }
  auto primary = co_await WaitForPrimary();
  if (!primary) {
    co_return std::nullopt;
  }
  auto fetched =
      co_await asio::co_spawn(hub_->lookup_pool, Fetch(hub_, *primary, user), asio::use_awaitable);
  if (!fetched) {
    Close();
    co_return std::nullopt;
  }
  if (!fetched->ok()) {
    std::string message = "pgha-router: cannot look up the stored password of role \"" + user +
                          "\": " + fetched->error().message();
    co_await CloseWith("08001", message);
    co_return std::nullopt;
  }
  co_return **fetched;
}

awaitable<std::optional<Backend>> SessionConnection::WaitForPrimary() {
  auto started = Steady::now();
  auto deadline = started + settings_->connect_hold_timeout;
  bool held = false;
  while (!ending()) {
    auto target = hub_->CurrentTarget();
    if (target.primary) {
      if (held) {
        hub_->counters.hold_micros +=
            std::chrono::duration_cast<std::chrono::microseconds>(Steady::now() - started).count();
      }
      co_return target.primary;
    }
    if (!held) {
      held = true;
      ++hub_->counters.queries_held;
    }
    auto now = Steady::now();
    if (now >= deadline) {
      std::string message =
          fmt::format("pgha-router: no primary within {} ms: {}",
                      settings_->connect_hold_timeout.count(), target.waiting_for);
      co_await CloseWith("57P03", message);
      co_return std::nullopt;
    }
    wake_.expires_after(std::min<Steady::duration>(kHoldPoll, deadline - now));
    co_await wake_.async_wait(kNoThrow);
  }
  co_return std::nullopt;
}

awaitable<bool> SessionConnection::OpenServer(bool first) {
  auto hold_started = Steady::now();
  while (!ending()) {
    auto primary = co_await WaitForPrimary();
    if (!primary) {
      co_return false;
    }
    std::string why;
    auto socket = co_await ConnectToBackend(*primary, hub_->resolver, settings_->connect_timeout,
                                            settings_->tcp_keepalive, &why);
    if (ending()) {
      co_return false;
    }
    auto retry_later = [&]() -> bool {
      return Steady::now() - hold_started < settings_->connect_hold_timeout;
    };
    if (!socket) {
      PGHA_LOG_WARN("session mode: cannot connect to {} ({}:{}): {}", primary->member,
                    primary->host, primary->port, why);
      if (!retry_later()) {
        std::string message =
            "pgha-router: cannot connect to the primary " + primary->member + ": " + why;
        co_await CloseWith("08006", message);
        co_return false;
      }
      wake_.expires_after(kHoldPoll);
      co_await wake_.async_wait(kNoThrow);
      continue;
    }
    auto server = std::make_shared<tcp::socket>(std::move(*socket));
    ServerLogin server_login(parameters_, client_key_, secret_);
    std::string out = server_login.Start();
    ServerLogin::Next next = ServerLogin::Next::kRead;
    std::array<char, 4096> chunk{};
    while (next == ServerLogin::Next::kRead) {
      out += server_login.TakeOutput();
      if (!out.empty()) {
        auto [error, n] = co_await asio::async_write(*server, asio::buffer(out), kNoThrow);
        out.clear();
        if (error) {
          break;
        }
      }
      auto [error, n] = co_await server->async_read_some(asio::buffer(chunk), kNoThrow);
      if (error) {
        break;
      }
      next = server_login.Feed(std::string_view(chunk.data(), n));
    }
    if (ending()) {
      co_return false;
    }
    if (next != ServerLogin::Next::kReady) {
      bool retryable = next == ServerLogin::Next::kRead || server_login.retryable();
      if (retryable && retry_later()) {
        wake_.expires_after(kHoldPoll);
        co_await wake_.async_wait(kNoThrow);
        continue;
      }
      if (server_login.verifier_outdated()) {
        hub_->ForgetSecret(login_.user());
      }
      if (first && server_login.server_error() &&
          server_login.server_error()->sqlstate == "28P01") {
        // The server refused the role's password, or a role without one (no trust): a refused
        // login, and a secret worth looking up again.
        ++hub_->counters.logins_refused;
        hub_->ForgetSecret(login_.user());
      }
      // The words go to variables first: GCC 12 frees a temporary made inside a co_await's
      // arguments twice (a double free seen here).
      std::string sqlstate = "08006";
      std::string message =
          "pgha-router: cannot log in to the primary " + primary->member + ": " +
          (next == ServerLogin::Next::kRead ? std::string("the server closed the connection")
                                            : server_login.failure());
      if (first && server_login.server_error()) {
        sqlstate = server_login.server_error()->sqlstate;
        message = server_login.server_error()->message;
      }
      co_await CloseWith(sqlstate, message);
      co_return false;
    }
    server_ = server;
    backend_ = *primary;
    server_key_ = server_login.backend_key();
    uint64_t generation = ++generation_;
    if (first) {
      for (const auto& message : server_login.greeting()) {
        state_.OnServerMessage(message);
        SendToClient(message.type == 'K' ? BackendKeyData(client_key_for_cancel_)
                                         : Reframe(message));
      }
    } else {
      // What the client already knows is not said again; a parameter that differs (a new
      // server_version after a minor upgrade) is.
      auto known = state_.parameters();
      for (const auto& message : server_login.greeting()) {
        if (message.type != 'S') {
          continue;
        }
        state_.OnServerMessage(message);
        if (state_.parameters() != known) {
          SendToClient(Reframe(message));
          known = state_.parameters();
        }
      }
      // The session's state, replayed before anything of the client's; its answers are read
      // here and go to no one (a SET that failed the first time fails again, as it did then).
      std::string replay;
      int answers = 0;
      for (const auto& statement : state_.ReplayStatements()) {
        replay += Frame('Q', statement + std::string(1, '\0'));
        ++answers;
      }
      for (const auto& [name, body] : state_.prepared_statements()) {
        replay += Frame('P', body);
      }
      if (!state_.prepared_statements().empty()) {
        replay += Frame('S', "");
        ++answers;
      }
      if (!replay.empty()) {
        auto [error, n] = co_await asio::async_write(*server, asio::buffer(replay), kNoThrow);
        MessageReader reader;
        while (!error && answers > 0) {
          auto [read_error, got] = co_await server->async_read_some(asio::buffer(chunk), kNoThrow);
          if (read_error) {
            error = read_error;
            break;
          }
          reader.Feed(std::string_view(chunk.data(), got));
          while (auto message = reader.Next()) {
            if (message->type == 'Z') {
              --answers;
            } else if (message->type == 'E') {
              auto failed = ParseErrorResponse(*message);
              PGHA_LOG_INFO("session mode: replaying a session's state on {} failed: {}",
                            primary->member, failed ? failed->message : "");
            }
          }
        }
        if (error || ending()) {
          DropServer();
          if (ending()) {
            co_return false;
          }
          continue;  // the new server went away too: try again
        }
      }
      ++hub_->counters.moved;
    }
    asio::co_spawn(client_.get_executor(), ServerLoop(shared_from_this(), server, generation),
                   asio::detached);
    co_return true;
  }
  co_return false;
}

awaitable<void> SessionConnection::ClientLoop() {
  std::vector<char> buffer(settings_->buffer_bytes);
  MessageReader reader;
  while (!closed_) {
    auto [error, n] = co_await ReadClient(asio::buffer(buffer));
    if (error) {
      Close();
      co_return;
    }
    if (closing_) {
      continue;  // told why the session ends: what comes now is dropped
    }
    reader.Feed(std::string_view(buffer.data(), n));
    while (auto message = reader.NextView()) {
      if (PassesStraight(message->type)) {
        state_.OnClientMessage(message->type, message->body);
        QueueForServer(message->frame);  // a pipelined batch goes on in one write
        continue;
      }
      FlushToServer();
      // A copy in a variable of its own (GCC 12: no temporary in a co_await's arguments).
      Message copy{message->type, std::string(message->body)};
      co_await OnClientMessage(std::move(copy));
      if (closed_) {
        co_return;
      }
      if (closing_) {
        break;
      }
    }
    UpdateBusy();
    FlushToServer();
    if (closing_) {
      continue;
    }
    if (reader.failed()) {
      co_await CloseWith("08P01", "pgha-router: invalid message length");
      co_return;
    }
    co_await WaitForRoom(to_server_);
  }
}

bool SessionConnection::PassesStraight(char type) const {
  if (type == 'X' || !server_ || lost_ || !pinned_end_.empty()) {
    return false;
  }
  return !state_.AtRest() ||
         checked_routes_ == hub_->routes_version.load(std::memory_order_acquire);
}

awaitable<void> SessionConnection::OnClientMessage(Message message) {
  if (message.type == 'X') {  // Terminate: the server sees the connection end
    Close();
    co_return;
  }
  if (!pinned_end_.empty()) {
    ++hub_->counters.pinned_closed;
    co_await CloseWith("57P01", pinned_end_);
    co_return;
  }
  if (lost_) {
    SendToClient(lost_->OnClientMessage(message));
    if (lost_->over()) {
      lost_.reset();
    }
    co_return;
  }
  if (state_.AtRest()) {
    bool may_go_on = co_await BeforeQuery();
    if (!may_go_on) {
      co_return;
    }
  }
  state_.OnClientMessage(message);
  UpdateBusy();
  SendToServer(Reframe(message));
}

awaitable<bool> SessionConnection::BeforeQuery() {
  // Read before the routes: a change after this read moves the version on, and is looked at.
  uint64_t version = hub_->routes_version.load(std::memory_order_acquire);
  auto target = hub_->CurrentTarget();
  if (server_ && target.primary && backend_ && target.primary->member == backend_->member) {
    checked_routes_ = version;
    co_return true;  // the common case: nothing to wait for
  }
  // Writes held, or the session is elsewhere than the primary: the query waits.
  auto primary = co_await WaitForPrimary();
  if (!primary) {
    co_return false;
  }
  if (server_ && backend_ && primary->member == backend_->member) {
    co_return true;
  }
  if (state_.pinned_reason()) {
    ++hub_->counters.pinned_closed;
    std::string message =
        "terminating connection due to administrator command: pgha-router: the primary changed "
        "and this session holds " +
        *state_.pinned_reason() + ", which cannot be carried to the new primary";
    co_await CloseWith("57P01", message);
    co_return false;
  }
  if (server_) {
    PGHA_LOG_DEBUG("session mode: carrying a session from {} to {}", backend_->member,
                   primary->member);
    DropServer();
  }
  bool opened = co_await OpenServer(false);
  co_return opened;
}

awaitable<void> SessionConnection::ServerLoop(std::shared_ptr<SessionConnection> /*self*/,
                                              std::shared_ptr<tcp::socket> server,
                                              uint64_t generation) {
  std::vector<char> buffer(settings_->buffer_bytes);
  MessageReader reader;
  while (!closed_ && !closing_ && generation == generation_) {
    auto [error, n] = co_await server->async_read_some(asio::buffer(buffer), kNoThrow);
    if (closed_ || closing_ || generation != generation_) {
      co_return;  // the session ended, or moved on to another server
    }
    if (error) {
      ServerLost(error == asio::error::eof ? "the server closed the connection" : error.message());
      co_return;
    }
    reader.Feed(std::string_view(buffer.data(), n));
    while (auto message = reader.NextView()) {
      if (message->type == 'E') {
        Message server_error{message->type, std::string(message->body)};
        if (IsFatalError(server_error)) {
          FlushToClient();  // what came before it, as it came
          auto fatal = ParseErrorResponse(server_error);
          ServerLost(fmt::format("{} said: {} ({})", backend_ ? backend_->member : "the server",
                                 fatal->message, fatal->sqlstate));
          co_return;
        }
      }
      // Passed on as it came: the relay reads each message, it does not rebuild it; all that
      // one read brought goes to the client in one write.
      state_.OnServerMessage(message->type, message->body);
      QueueForClient(message->frame);
    }
    // Busy or not before the client reads the answer: whoever it tells finds the figure true.
    UpdateBusy();
    FlushToClient();
    if (reader.failed()) {
      ServerLost("the server sent an invalid message length");
      co_return;
    }
    co_await WaitForRoom(to_client_);
  }
}

void SessionConnection::ServerLost(const std::string& reason) {
  bool at_rest = state_.AtRest();
  DropServer();
  // A COPY's stream cannot be answered in the server's place nor started again elsewhere: it
  // ends the session as what pins it does (a COPY is never at rest).
  std::optional<std::string> unmovable;
  if (state_.in_copy()) {
    unmovable = "was in a COPY";
  } else if (state_.pinned_reason()) {
    unmovable = "holds " + *state_.pinned_reason();
  }
  if (unmovable) {
    std::string end =
        "terminating connection due to administrator command: pgha-router: " + reason +
        "; this session " + *unmovable + ", which cannot be carried to another server";
    if (at_rest) {
      // The error answers the client's next message: libpq drops an error that comes while the
      // connection is idle and reports only "server closed the connection".
      pinned_end_ = std::move(end);
    } else {
      ++hub_->counters.pinned_closed;
      asio::co_spawn(client_.get_executor(), CloseWithOf(shared_from_this(), "57P01", end),
                     asio::detached);
    }
    return;
  }
  if (!at_rest) {
    ++hub_->counters.transactions_lost;
    lost_.emplace(state_, "the server of this session went away (" + reason +
                              "); the transaction under way is lost (a COMMIT in flight may "
                              "have committed); the session goes on on the primary");
    SendToClient(lost_->TakeOutput());
    if (lost_->over()) {
      lost_.reset();
    }
  }
  state_.ForgetServer();
  UpdateBusy();
}

void SessionConnection::DropServer() {
  ++generation_;
  if (server_) {
    asio::error_code ignored;
    server_->close(ignored);
  }
  server_.reset();
  backend_.reset();
  server_key_.reset();
  to_server_.pending.clear();
  to_server_.drained->cancel();
}

void SessionConnection::SendToClient(std::string_view bytes) {
  QueueForClient(bytes);
  FlushToClient();
}

void SessionConnection::QueueForClient(std::string_view bytes) {
  if (!bytes.empty() && !closed_ && !closing_) {
    to_client_.pending.append(bytes);
  }
}

void SessionConnection::FlushToClient() {
  // The writer starts at once (co_spawn dispatches on this thread): what is queued goes in one
  // write.
  if (!to_client_.pending.empty() && !to_client_.writing && !closed_) {
    to_client_.writing = true;
    asio::co_spawn(client_.get_executor(), WriteClientOf(shared_from_this()), asio::detached);
  }
}

void SessionConnection::SendToServer(std::string_view bytes) {
  QueueForServer(bytes);
  FlushToServer();
}

void SessionConnection::QueueForServer(std::string_view bytes) {
  if (!bytes.empty() && !closed_ && server_) {
    to_server_.pending.append(bytes);
  }
}

void SessionConnection::FlushToServer() {
  if (!to_server_.pending.empty() && !to_server_.writing && !closed_ && server_) {
    to_server_.writing = true;
    asio::co_spawn(client_.get_executor(), WriteServerOf(shared_from_this()), asio::detached);
  }
}

awaitable<void> SessionConnection::WriteClient() {
  to_client_.writing = true;
  while (!to_client_.pending.empty() && !closed_) {
    std::string batch;
    batch.swap(to_client_.pending);
    asio::error_code error;
    if (tls_) {
      auto [tls_error, n] = co_await asio::async_write(*tls_, asio::buffer(batch), kNoThrow);
      error = tls_error;
    } else {
      auto [tcp_error, n] = co_await asio::async_write(client_, asio::buffer(batch), kNoThrow);
      error = tcp_error;
    }
    to_client_.drained->cancel();
    if (error) {
      Close();
      break;
    }
  }
  to_client_.writing = false;
  to_client_.drained->cancel();
}

awaitable<void> SessionConnection::WriteServer() {
  to_server_.writing = true;
  while (!to_server_.pending.empty() && !closed_ && server_) {
    std::string batch;
    batch.swap(to_server_.pending);
    auto server = server_;
    auto [error, n] = co_await asio::async_write(*server, asio::buffer(batch), kNoThrow);
    to_server_.drained->cancel();
    if (error) {
      break;  // the server's read side notices the loss and says what it means
    }
  }
  to_server_.writing = false;
  to_server_.drained->cancel();
}

awaitable<void> SessionConnection::WaitForRoom(Outbox& box) {
  while (!closed_ && box.pending.size() >= settings_->buffer_bytes && box.writing) {
    co_await box.drained->async_wait(kNoThrow);
  }
}

awaitable<void> SessionConnection::SendCancel(std::shared_ptr<SessionConnection> self,
                                              Backend backend, CancelKey key) {
  std::string why;
  auto socket = co_await ConnectToBackend(backend, self->hub_->resolver,
                                          self->settings_->connect_timeout, false, &why);
  if (!socket) {
    PGHA_LOG_WARN("session mode: cannot pass a cancel request on to {}: {}", backend.member, why);
    co_return;
  }
  std::string request = CancelRequest(key);
  co_await asio::async_write(*socket, asio::buffer(request), kNoThrow);
  asio::error_code ignored;
  socket->close(ignored);
}

awaitable<void> SessionConnection::CloseWithOf(std::shared_ptr<SessionConnection> self,
                                               std::string sqlstate, std::string message) {
  co_await self->CloseWith(sqlstate, message);
}

awaitable<void> SessionConnection::CloseWith(std::string_view sqlstate, std::string_view message) {
  if (closing_ || closed_) {
    co_return;
  }
  SendToClient(FatalErrorResponse(sqlstate, message));
  // Said once: what the client sends from now on is read and dropped (a COPY's data still on
  // its way would otherwise be answered, and counted, a second time).
  closing_ = true;
  co_await FlushClient();
  if (closed_) {
    co_return;
  }
  // Half-closed, not closed: a client that is sending a query right now would get a reset,
  // which on Linux discards the error before libpq reads it. What it sends meanwhile is read
  // and dropped, for at most kLinger.
  DropServer();
  asio::error_code ignored;
  client_.shutdown(tcp::socket::shutdown_send, ignored);
  linger_.expires_after(kLinger);
  linger_.async_wait([weak = weak_from_this()](const asio::error_code&) {
    if (auto self = weak.lock()) {
      self->Close();
    }
  });
}

awaitable<void> SessionConnection::FlushClient() {
  while (to_client_.writing && !closed_) {
    co_await to_client_.drained->async_wait(kNoThrow);
  }
}

void SessionConnection::UpdateBusy() {
  bool busy = server_ != nullptr && !state_.AtRest();
  if (busy_.exchange(busy) && !busy) {
    hub_->NoteRested();
  }
}

void SessionConnection::Close() {
  if (closed_) {
    return;
  }
  closed_ = true;
  asio::error_code ignored;
  client_.close(ignored);
  if (server_) {
    server_->close(ignored);
  }
  server_.reset();
  wake_.cancel();
  to_client_.drained->cancel();
  to_server_.drained->cancel();
  if (busy_.exchange(false)) {
    hub_->NoteRested();
  }
  if (registered_) {
    hub_->Unregister(this);
    registered_ = false;
  }
}

}  // namespace pgha::router
