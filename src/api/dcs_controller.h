// The Controller of a running node: reads and writes go straight to the DCS.
#pragma once

#include "api/controller.h"
#include "dcs/dcs.h"

namespace pgha::api {

class DcsController final : public Controller {
 public:
  // `dcs` must be safe to use from the REST API's threads (pgha gives it its own uncached
  // instance, apart from the HA loop's).
  explicit DcsController(dcs::Dcs& dcs) : dcs_(dcs) {}
  Result<model::ClusterSnapshot> ReadCluster() override { return dcs_.LoadCluster(); }
  Result<bool> WriteConfig(const std::string& value, int64_t mod_revision) override {
    return dcs_.SetConfigValue(value, mod_revision);
  }

 private:
  dcs::Dcs& dcs_;
};

}  // namespace pgha::api
