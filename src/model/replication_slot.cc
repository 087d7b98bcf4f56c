#include "model/replication_slot.h"

#include <cctype>
#include <string>

namespace pgha::model {

std::string SlotNameForMember(const std::string& member) {
  std::string slot;
  for (char c : member) {
    unsigned char u = static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(c)));
    if ((u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '_') {
      slot += static_cast<char>(u);
    } else if (u == '-' || u == '.') {
      slot += '_';
    } else {
      std::string code = std::to_string(u);  // Patroni's "u{:04d}"
      slot += "u" + std::string(4 - code.size(), '0') + code;
    }
  }
  return slot.substr(0, 63);
}

}  // namespace pgha::model
