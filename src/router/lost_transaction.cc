#include "router/lost_transaction.h"

#include "router/pg_wire.h"

namespace pgha::router {
namespace {

std::string Ready(char status) { return Frame('Z', std::string(1, status)); }
std::string Tag(const std::string& tag) { return Frame('C', tag + std::string(1, '\0')); }

// The query of a Parse body (statement name, query, ...).
std::string ParsedQuery(const std::string& body) {
  size_t name_end = body.find('\0');
  if (name_end == std::string::npos) {
    return "";
  }
  size_t query_end = body.find('\0', name_end + 1);
  return body.substr(name_end + 1,
                     query_end == std::string::npos ? std::string::npos : query_end - name_end - 1);
}

constexpr const char* kAborted =
    "current transaction is aborted, commands ignored until end of transaction block";

}  // namespace

LostTransaction::LostTransaction(const SessionState& state, const std::string& reason)
    : reason_("pgha-router: " + reason) {
  in_block_ = state.transaction_status() != 'I';
  for (int i = 0; i < state.queries_in_flight(); ++i) {
    // The first query fails with the reason; in a block, the rest fail as in a failed block.
    output_ += ErrorResponse("ERROR", i == 0 || !in_block_ ? "08006" : "25P02",
                             i == 0 || !in_block_ ? reason_ : kAborted);
    output_ += Ready(in_block_ ? 'E' : 'I');
  }
  told_ = state.queries_in_flight() > 0;
  if (state.unsynced()) {
    if (!told_) {
      output_ += ErrorResponse("ERROR", "08006", reason_);
      told_ = true;
    }
    skipping_ = true;
  }
}

std::string LostTransaction::TakeOutput() {
  std::string out;
  out.swap(output_);
  return out;
}

std::string LostTransaction::Fail() {
  skipping_ = true;
  return Error();
}

std::string LostTransaction::Error() {
  if (!told_) {  // the first error says what happened; the rest are PostgreSQL's own
    told_ = true;
    return ErrorResponse("ERROR", "08006", reason_);
  }
  return ErrorResponse("ERROR", "25P02", kAborted);
}

std::string LostTransaction::OnClientMessage(const Message& message) {
  if (message.type == 'S') {
    char status = in_block_ && !ending_ ? 'E' : 'I';
    in_block_ = status == 'E';
    skipping_ = false;
    ending_ = false;
    return Ready(status);
  }
  if (skipping_) {
    return "";
  }
  switch (message.type) {
    case 'Q': {
      if (EndsTransactionBlock(message.body.substr(0, message.body.find('\0')))) {
        in_block_ = false;
        return Tag("ROLLBACK") + Ready('I');
      }
      return Error() + Ready(in_block_ ? 'E' : 'I');
    }
    case 'P':
      if (in_block_ && EndsTransactionBlock(ParsedQuery(message.body))) {
        ending_ = true;
        return Frame('1', "");  // ParseComplete
      }
      return Fail();
    case 'B':
      return ending_ ? Frame('2', "") : Fail();  // BindComplete
    case 'D':
      return ending_ ? Frame('n', "") : Fail();  // NoData
    case 'E':
      return ending_ ? Tag("ROLLBACK") : Fail();
    case 'H':  // Flush
      return "";
    default:
      return Fail();
  }
}

}  // namespace pgha::router
