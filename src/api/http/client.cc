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
  client.set_connection_timeout(options.connect_timeout);
  client.set_read_timeout(options.read_timeout);
  client.set_write_timeout(options.connect_timeout);
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

namespace {

std::optional<config::BasicAuth> Credentials(const config::Config& config) {
  return config.ctl.authentication ? config.ctl.authentication : config.restapi.authentication;
}

}  // namespace

ClientOptions CtlOptions(const config::Config& config, bool insecure) {
  ClientOptions options;
  options.authentication = Credentials(config);
  options.cacert = config.ctl.cacert;
  options.certfile = config.ctl.certfile;
  options.keyfile = config.ctl.keyfile;
  options.insecure = insecure || config.ctl.insecure;
  return options;
}

ClientOptions PeerOptions(const config::Config& config) {
  ClientOptions options;
  options.authentication = Credentials(config);
  bool ctl_cert = !config.ctl.certfile.empty();
  options.certfile = ctl_cert ? config.ctl.certfile : config.restapi.certfile;
  options.keyfile = ctl_cert ? config.ctl.keyfile : config.restapi.keyfile;
  options.cacert = !config.ctl.cacert.empty() ? config.ctl.cacert : config.restapi.cafile;
  options.insecure = true;
  options.connect_timeout = std::chrono::seconds(2);
  options.read_timeout = std::chrono::seconds(2);
  return options;
}

}  // namespace pgha::api::http
