#include "router/backend_connect.h"

#include <fmt/format.h>

#include <asio/experimental/as_tuple.hpp>
#include <memory>
#include <vector>

namespace pgha::router {

using asio::ip::tcp;
using Steady = std::chrono::steady_clock;
constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

asio::awaitable<std::optional<tcp::socket>> ConnectToBackend(const Backend& backend,
                                                             HostResolver& resolver,
                                                             std::chrono::milliseconds timeout,
                                                             bool keepalive, std::string* why) {
  auto executor = co_await asio::this_coro::executor;
  auto deadline = Steady::now() + timeout;
  std::vector<tcp::endpoint> endpoints;
  asio::steady_timer poll(executor);
  while (true) {
    auto answer = resolver.Lookup(backend.host);
    if (answer.state == HostResolver::Answer::State::kFailed) {
      *why = answer.error;
      co_return std::nullopt;
    }
    if (answer.state == HostResolver::Answer::State::kResolved) {
      for (const auto& text : answer.addresses) {
        asio::error_code error;
        auto address = asio::ip::make_address(text, error);
        if (!error) {
          endpoints.emplace_back(address, static_cast<uint16_t>(backend.port));
        }
      }
      break;
    }
    auto now = Steady::now();
    if (now >= deadline) {
      *why = fmt::format("no address for {} within connect_timeout", backend.host);
      co_return std::nullopt;
    }
    // The lookup runs on a thread of its own; its answer is looked for every 10 ms.
    poll.expires_after(std::min<Steady::duration>(std::chrono::milliseconds(10), deadline - now));
    co_await poll.async_wait(kNoThrow);
  }
  auto socket = std::make_shared<tcp::socket>(executor);
  auto timed_out = std::make_shared<bool>(false);
  asio::steady_timer timer(executor, deadline);
  timer.async_wait([socket, timed_out](const asio::error_code& error) {
    if (!error) {
      *timed_out = true;
      asio::error_code ignored;
      socket->close(ignored);
    }
  });
  auto [error, endpoint] = co_await asio::async_connect(*socket, endpoints, kNoThrow);
  timer.cancel();
  if (error || *timed_out) {
    *why = *timed_out ? "timed out" : error.message();
    co_return std::nullopt;
  }
  asio::error_code ignored;
  socket->set_option(tcp::no_delay(true), ignored);
  socket->set_option(asio::socket_base::keep_alive(keepalive), ignored);
  co_return std::move(*socket);
}

}  // namespace pgha::router
