#include "router/scram.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <charconv>
#include <cstdlib>
#include <utility>
#include <vector>

#include "common/strings.h"

namespace pgha::router::scram {

namespace {

constexpr std::string_view kMechanism = "SCRAM-SHA-256";
constexpr size_t kKeyBytes = SHA256_DIGEST_LENGTH;
// PostgreSQL accepts any count its verifier has; this bound keeps a forged verifier (or DCS
// value) from making PBKDF2 run for hours.
constexpr int kMaxIterations = 10'000'000;

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &length);
  return std::string(reinterpret_cast<const char*>(out), length);
}

std::string Sha256(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<const char*>(out), sizeof(out));
}

std::string Xor(std::string_view a, std::string_view b) {
  std::string out(a.size(), '\0');
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    out[i] = static_cast<char>(a[i] ^ b[i]);
  }
  return out;
}

bool SameSecret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string SaltedPassword(std::string_view password, std::string_view salt, int iterations) {
  unsigned char out[kKeyBytes];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(), sizeof(out), out);
  return std::string(reinterpret_cast<const char*>(out), sizeof(out));
}

Result<int> ParseIterations(std::string_view text) {
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 1 ||
      value > kMaxIterations) {
    return Error::Invalid(fmt::format("iteration count must be 1..{}", kMaxIterations));
  }
  return value;
}

Result<std::string> DecodeKey(std::string_view text, std::string_view what) {
  auto bytes = Base64Decode(text);
  if (!bytes.ok() || bytes.value().size() != kKeyBytes) {
    return Error::Invalid(fmt::format("{} is not {} bytes of base64", what, kKeyBytes));
  }
  return std::move(bytes).value();
}

// A nonce: printable ASCII except ','.
bool ValidNonce(std::string_view nonce) {
  if (nonce.empty()) {
    return false;
  }
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') {
      return false;
    }
  }
  return true;
}

// "a=1,b=2" -> {{'a', "1"}, {'b', "2"}}; Invalid for anything that is not attr=value.
Result<std::vector<std::pair<char, std::string_view>>> Attributes(std::string_view text) {
  std::vector<std::pair<char, std::string_view>> out;
  size_t at = 0;
  while (at <= text.size()) {
    size_t comma = text.find(',', at);
    std::string_view part = text.substr(at, comma == std::string_view::npos ? comma : comma - at);
    if (part.size() < 2 || part[1] != '=' ||
        !((part[0] >= 'a' && part[0] <= 'z') || (part[0] >= 'A' && part[0] <= 'Z'))) {
      return Error::Invalid("malformed SCRAM attribute");
    }
    out.emplace_back(part[0], part.substr(2));
    if (comma == std::string_view::npos) {
      break;
    }
    at = comma + 1;
  }
  return out;
}

}  // namespace

Result<Verifier> ParseVerifier(std::string_view text) {
  // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
  auto invalid = [] { return Error::Invalid("not a SCRAM-SHA-256 verifier"); };
  if (text.substr(0, kMechanism.size()) != kMechanism || text.size() <= kMechanism.size() ||
      text[kMechanism.size()] != '$') {
    return invalid();
  }
  std::string_view rest = text.substr(kMechanism.size() + 1);
  size_t colon1 = rest.find(':');
  size_t dollar = rest.find('$');
  if (colon1 == std::string_view::npos || dollar == std::string_view::npos || dollar < colon1) {
    return invalid();
  }
  size_t colon2 = rest.find(':', dollar);
  if (colon2 == std::string_view::npos) {
    return invalid();
  }
  Verifier verifier;
  auto iterations = ParseIterations(rest.substr(0, colon1));
  if (!iterations.ok()) {
    return iterations.error().WithContext("SCRAM-SHA-256 verifier");
  }
  verifier.iterations = iterations.value();
  auto salt = Base64Decode(rest.substr(colon1 + 1, dollar - colon1 - 1));
  if (!salt.ok() || salt.value().empty()) {
    return Error::Invalid("SCRAM-SHA-256 verifier: the salt is not base64");
  }
  verifier.salt = std::move(salt).value();
  auto stored = DecodeKey(rest.substr(dollar + 1, colon2 - dollar - 1), "StoredKey");
  auto server = DecodeKey(rest.substr(colon2 + 1), "ServerKey");
  if (!stored.ok() || !server.ok()) {
    return (stored.ok() ? server.error() : stored.error()).WithContext("SCRAM-SHA-256 verifier");
  }
  verifier.stored_key = std::move(stored).value();
  verifier.server_key = std::move(server).value();
  return verifier;
}

std::string FormatVerifier(const Verifier& verifier) {
  return fmt::format("{}${}:{}${}:{}", kMechanism, verifier.iterations, Base64Encode(verifier.salt),
                     Base64Encode(verifier.stored_key), Base64Encode(verifier.server_key));
}

Verifier MakeVerifier(std::string_view password, std::string_view salt, int iterations) {
  std::string salted = SaltedPassword(password, salt, iterations);
  Verifier verifier;
  verifier.iterations = iterations;
  verifier.salt = std::string(salt);
  verifier.stored_key = Sha256(Hmac(salted, "Client Key"));
  verifier.server_key = Hmac(salted, "Server Key");
  return verifier;
}

std::string ClientKeyOf(std::string_view password, const Verifier& verifier) {
  return Hmac(SaltedPassword(password, verifier.salt, verifier.iterations), "Client Key");
}

std::string RandomBytes(size_t count) {
  std::string bytes(count, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(count)) != 1) {
    // OpenSSL's generator failing is not something a session can work around; a secret from a
    // failed generator must not be used.
    std::abort();
  }
  return bytes;
}

Verifier MockVerifier(std::string_view user) {
  static const std::string process_secret = RandomBytes(32);
  Verifier mock;
  mock.iterations = 4096;  // PostgreSQL's default scram_iterations
  mock.salt = Sha256(process_secret + std::string(user)).substr(0, 16);
  mock.stored_key = RandomBytes(kKeyBytes);
  mock.server_key = RandomBytes(kKeyBytes);
  return mock;
}

std::string RandomNonce() { return Base64Encode(RandomBytes(18)); }

ServerExchange::ServerExchange(Verifier verifier, std::string server_nonce)
    : verifier_(std::move(verifier)), server_nonce_(std::move(server_nonce)) {}

Result<std::string> ServerExchange::OnClientFirst(std::string_view message) {
  if (!server_first_.empty()) {
    return Error::Invalid("SCRAM: a second client-first-message");
  }
  // gs2-header: "n,," | "y,," | "p=<binding>,," then an optional authzid (refused).
  if (message.substr(0, 2) == "p=") {
    return Error::Invalid("SCRAM: channel binding was not offered (SCRAM-SHA-256 without -PLUS)");
  }
  if (message.size() < 3 || (message[0] != 'n' && message[0] != 'y') || message[1] != ',') {
    return Error::Invalid("SCRAM: malformed gs2 header");
  }
  if (message[2] != ',') {
    return Error::Invalid("SCRAM: an authorization identity is not supported");
  }
  gs2_header_ = std::string(message.substr(0, 3));
  std::string_view bare = message.substr(3);
  auto attributes = Attributes(bare);
  if (!attributes.ok()) {
    return attributes.error();
  }
  const auto& list = attributes.value();
  if (list.size() < 2 || list[0].first != 'n' || list[1].first != 'r') {
    return Error::Invalid("SCRAM: client-first-message must start with n= and r=");
  }
  for (size_t i = 2; i < list.size(); ++i) {
    if (list[i].first == 'm') {
      return Error::Invalid("SCRAM: mandatory extensions are not supported");
    }
  }
  if (!ValidNonce(list[1].second)) {
    return Error::Invalid("SCRAM: malformed client nonce");
  }
  client_first_bare_ = std::string(bare);
  nonce_ = std::string(list[1].second) + server_nonce_;
  server_first_ =
      fmt::format("r={},s={},i={}", nonce_, Base64Encode(verifier_.salt), verifier_.iterations);
  return server_first_;
}

Result<std::string> ServerExchange::OnClientFinal(std::string_view message) {
  if (server_first_.empty() || authenticated()) {
    return Error::Invalid("SCRAM: client-final-message out of turn");
  }
  size_t proof_at = message.rfind(",p=");
  if (proof_at == std::string_view::npos) {
    return Error::Invalid("SCRAM: client-final-message without a proof");
  }
  std::string_view without_proof = message.substr(0, proof_at);
  auto attributes = Attributes(without_proof);
  if (!attributes.ok()) {
    return attributes.error();
  }
  const auto& list = attributes.value();
  if (list.size() < 2 || list[0].first != 'c' || list[1].first != 'r') {
    return Error::Invalid("SCRAM: client-final-message must start with c= and r=");
  }
  if (list[0].second != Base64Encode(gs2_header_)) {
    return Error::Invalid("SCRAM: channel binding data does not match the gs2 header");
  }
  if (list[1].second != nonce_) {
    return Error::Invalid("SCRAM: the nonce does not match");
  }
  auto proof = Base64Decode(message.substr(proof_at + 3));
  if (!proof.ok() || proof.value().size() != kKeyBytes) {
    return Error::Invalid("SCRAM: malformed proof");
  }
  std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  std::string client_key = Xor(proof.value(), Hmac(verifier_.stored_key, auth_message));
  if (!SameSecret(Sha256(client_key), verifier_.stored_key)) {
    return Error::PermissionDenied("SCRAM: wrong password");
  }
  client_key_ = std::move(client_key);
  return "v=" + Base64Encode(Hmac(verifier_.server_key, auth_message));
}

ClientExchange::ClientExchange(std::string client_key, Verifier verifier, std::string client_nonce)
    : client_key_(std::move(client_key)),
      verifier_(std::move(verifier)),
      client_nonce_(std::move(client_nonce)) {}

std::string ClientExchange::ClientFirst() {
  client_first_bare_ = "n=,r=" + client_nonce_;
  return "n,," + client_first_bare_;
}

Result<std::string> ClientExchange::OnServerFirst(std::string_view message) {
  if (client_first_bare_.empty() || !auth_message_.empty()) {
    return Error::Invalid("SCRAM: server-first-message out of turn");
  }
  auto attributes = Attributes(message);
  if (!attributes.ok()) {
    return attributes.error();
  }
  const auto& list = attributes.value();
  if (list.size() < 3 || list[0].first != 'r' || list[1].first != 's' || list[2].first != 'i') {
    return Error::Invalid("SCRAM: server-first-message must be r=, s=, i=");
  }
  std::string_view nonce = list[0].second;
  if (!ValidNonce(nonce) || nonce.size() <= client_nonce_.size() ||
      nonce.substr(0, client_nonce_.size()) != client_nonce_) {
    return Error::Invalid("SCRAM: the server's nonce does not extend ours");
  }
  auto salt = Base64Decode(list[1].second);
  auto iterations = ParseIterations(list[2].second);
  if (!salt.ok() || !iterations.ok()) {
    return Error::Invalid("SCRAM: malformed salt or iteration count");
  }
  if (salt.value() != verifier_.salt || iterations.value() != verifier_.iterations) {
    return Error::Conflict(
        "SCRAM: the server holds another verifier for the role (salt or iterations differ)");
  }
  std::string without_proof = fmt::format("c=biws,r={}", nonce);
  auth_message_ = client_first_bare_ + "," + std::string(message) + "," + without_proof;
  std::string stored_key = Sha256(client_key_);
  std::string proof = Xor(client_key_, Hmac(stored_key, auth_message_));
  return without_proof + ",p=" + Base64Encode(proof);
}

Status ClientExchange::OnServerFinal(std::string_view message) {
  if (auth_message_.empty()) {
    return Error::Invalid("SCRAM: server-final-message out of turn");
  }
  if (message.substr(0, 2) == "e=") {
    return Error::PermissionDenied(fmt::format("SCRAM: the server refused: {}", message.substr(2)));
  }
  if (message.substr(0, 2) != "v=") {
    return Error::Invalid("SCRAM: malformed server-final-message");
  }
  auto signature = Base64Decode(message.substr(2));
  if (!signature.ok() ||
      !SameSecret(signature.value(), Hmac(verifier_.server_key, auth_message_))) {
    return Error::PermissionDenied("SCRAM: the server's signature is wrong");
  }
  return OkStatus();
}

}  // namespace pgha::router::scram
