// A TCP connection to a backend for the session mode: the member's host looked up off the I/O
// thread (host_resolver.h), then connected, both within one deadline, with the socket options
// the router always sets.
//
// Thread-safety: a coroutine on the caller's executor; the resolver is thread-safe.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "router/host_resolver.h"
#include "router/routing.h"

namespace pgha::router {

// The connected socket, or nullopt with `*why` set.
asio::awaitable<std::optional<asio::ip::tcp::socket>> ConnectToBackend(
    const Backend& backend, HostResolver& resolver, std::chrono::milliseconds timeout,
    bool keepalive, std::string* why);

}  // namespace pgha::router
