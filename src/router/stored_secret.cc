#include "router/stored_secret.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>

namespace pgha::router {
namespace {

constexpr std::string_view kMd5Prefix = "md5";
constexpr size_t kMd5HexDigits = 32;

std::string Md5Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_md5(), nullptr) != 1) {
    // Only a FIPS-restricted OpenSSL refuses md5; a login must not go on with a wrong answer.
    std::abort();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0x0f]);
  }
  return hex;
}

bool IsHexDigit(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

Result<StoredSecret> ParseStoredSecret(std::optional<std::string_view> text) {
  StoredSecret secret;
  if (!text) {
    return secret;  // kNone
  }
  if (text->size() == kMd5Prefix.size() + kMd5HexDigits && text->substr(0, 3) == kMd5Prefix &&
      std::all_of(text->begin() + 3, text->end(), IsHexDigit)) {
    secret.kind = StoredSecret::Kind::kMd5;
    secret.md5 = std::string(text->substr(3));
    return secret;
  }
  auto verifier = scram::ParseVerifier(*text);
  if (!verifier.ok()) {
    // The secret itself never goes into the message.
    return Error::Invalid(
        "the stored password is neither a SCRAM-SHA-256 verifier nor an md5 hash (" +
        verifier.error().message() + ")");
  }
  secret.kind = StoredSecret::Kind::kScram;
  secret.scram = std::move(*verifier);
  return secret;
}

std::string Md5Response(std::string_view md5_hex, std::string_view salt) {
  std::string data(md5_hex);
  data.append(salt);
  return std::string(kMd5Prefix) + Md5Hex(data);
}

std::string Md5Secret(std::string_view password, std::string_view user) {
  std::string data(password);
  data.append(user);
  return std::string(kMd5Prefix) + Md5Hex(data);
}

}  // namespace pgha::router
