// Any bytes as what a server answers the router's login in session mode: the login never
// crashes, never reports the server ready after an exchange the server did not complete, and
// ends the same however the bytes are cut.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "router/scram.h"
#include "router/server_login.h"

using pgha::router::ServerLogin;

namespace {

ServerLogin::Next Run(std::string_view bytes, size_t piece) {
  auto verifier = pgha::router::scram::MakeVerifier("pw", "salt", 1);
  ServerLogin login({{"user", "alice"}}, pgha::router::scram::ClientKeyOf("pw", verifier),
                    verifier);
  (void)login.Start();
  ServerLogin::Next next = ServerLogin::Next::kRead;
  for (size_t at = 0; at < bytes.size() && next == ServerLogin::Next::kRead; at += piece) {
    next = login.Feed(bytes.substr(at, piece));
    (void)login.TakeOutput();
  }
  if (next == ServerLogin::Next::kReady && login.greeting().empty()) {
    std::abort();  // ready means a ReadyForQuery was kept
  }
  return next;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto whole = Run(bytes, size > 0 ? size : 1);
  auto cut = Run(bytes, size > 0 ? 1 + data[0] % 7 : 1);
  if (whole != cut) {
    std::abort();
  }
  return 0;
}
