// JSON text as Python's json.dumps writes it by default, which is what Patroni's REST API sends:
// ", " between items, ": " after keys, non-ASCII escaped as \uXXXX, keys in the value's order.
// Operators grep these bodies ('"role": "master"'), so the bytes are part of the contract.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace pgha {

std::string PythonJsonDumps(const nlohmann::ordered_json& value);
std::string PythonJsonDumps(const nlohmann::json& value);

}  // namespace pgha
