// Any bytes as a stored verifier (and as any stored secret), as a client's SCRAM messages to the
// router and as a server's to the router: nothing crashes or reads past the input, and no exchange
// ends authenticated without the right proof (the verifier here is for a password the input cannot
// know). The input is split at its first two newlines: client-first, client-final, the rest.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "router/scram.h"
#include "router/stored_secret.h"

namespace scram = pgha::router::scram;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)scram::ParseVerifier(bytes);
  (void)pgha::router::ParseStoredSecret(bytes);

  size_t first_end = bytes.find('\n');
  std::string_view first = bytes.substr(0, first_end);
  std::string_view rest = first_end == std::string_view::npos ? "" : bytes.substr(first_end + 1);
  size_t second_end = rest.find('\n');
  std::string_view second = rest.substr(0, second_end);
  std::string_view third = second_end == std::string_view::npos ? "" : rest.substr(second_end + 1);

  // A fixed verifier with few iterations: the fuzzer runs many exchanges.
  static const scram::Verifier kVerifier =
      scram::MakeVerifier("a password no input knows", "fuzzing salt....", 2);
  scram::ServerExchange server(kVerifier, "servernonce");
  if (server.OnClientFirst(first).ok()) {
    auto final_message = server.OnClientFinal(second);
    if (final_message.ok() || server.authenticated()) {
      std::abort();  // a proof for an unknown password: SCRAM would be broken
    }
  }

  scram::ClientExchange client(scram::ClientKeyOf("pw", kVerifier), kVerifier, "clientnonce");
  client.ClientFirst();
  if (client.OnServerFirst(first).ok()) {
    (void)client.OnServerFinal(second);
  }
  (void)third;
  return 0;
}
