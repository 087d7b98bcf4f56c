// Any bytes as what a server answers the router's login in session mode: the login never
// crashes, never reports the server ready after an exchange the server did not complete, and
// ends the same however the bytes are cut, whether the role's password is stored as SCRAM or md5.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "router/scram.h"
#include "router/server_login.h"

using pgha::router::ServerLogin;

namespace {

// `md5`: the role's password is stored as md5 (the router answers md5 challenges), otherwise
// as a SCRAM verifier (the router proves itself with the ClientKey).
ServerLogin::Next Run(std::string_view bytes, size_t piece, bool md5) {
  pgha::router::StoredSecret secret;
  std::string client_key;
  if (md5) {
    secret.kind = pgha::router::StoredSecret::Kind::kMd5;
    secret.md5 = pgha::router::Md5Secret("pw", "alice").substr(3);
  } else {
    secret.kind = pgha::router::StoredSecret::Kind::kScram;
    secret.scram = pgha::router::scram::MakeVerifier("pw", "salt", 1);
    client_key = pgha::router::scram::ClientKeyOf("pw", secret.scram);
  }
  ServerLogin login({{"user", "alice"}}, client_key, secret);
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
  for (bool md5 : {false, true}) {
    auto whole = Run(bytes, size > 0 ? size : 1, md5);
    auto cut = Run(bytes, size > 0 ? 1 + data[0] % 7 : 1, md5);
    if (whole != cut) {
      std::abort();
    }
  }
  return 0;
}
