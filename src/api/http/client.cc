#include "api/http/client.h"

#include <httplib.h>

namespace pgha::api::http {

Result<ClientResponse> CallMember(const std::string& api_url, const std::string& method,
                                  const std::string& path, const std::string& json_body,
                                  const ClientOptions& options) {
  size_t scheme = api_url.find("://");
  if (scheme == std::string::npos) {
    return Error::Invalid("member api_url '" + api_url + "' is not a URL");
  }
  std::string base = api_url.substr(0, api_url.find('/', scheme + 3));
  httplib::Client client(base, options.certfile, options.keyfile);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(30, 0);
  client.set_write_timeout(5, 0);
  if (base.rfind("https", 0) == 0) {
    if (options.insecure) {
      client.enable_server_certificate_verification(false);
    } else if (!options.cacert.empty()) {
      client.set_ca_cert_path(options.cacert.c_str());
    }
  }
  if (options.authentication) {
    client.set_basic_auth(options.authentication->username.c_str(),
                          options.authentication->password.c_str());
  }
  httplib::Result result =
      method == "GET"      ? client.Get(path.c_str())
      : method == "PATCH"  ? client.Patch(path.c_str(), json_body, "application/json")
      : method == "PUT"    ? client.Put(path.c_str(), json_body, "application/json")
      : method == "DELETE" ? client.Delete(path.c_str())
                           : client.Post(path.c_str(), json_body, "application/json");
  if (!result) {
    return Error::Unavailable(base + path + ": " + httplib::to_string(result.error()));
  }
  return ClientResponse{result->status, result->body};
}

}  // namespace pgha::api::http
