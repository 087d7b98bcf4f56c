#include "metrics/postgres_collectors.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>

#include "common/prometheus_text.h"
#include "common/time_format.h"

namespace pgha::metrics {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum class Usage { kLabel, kDiscard, kCounter, kGauge };

struct ColumnRule {
  std::string_view column;
  Usage usage;
  std::string_view help;
};

// A query whose columns become labels or samples named <prefix>_<column>. A column without a
// rule is exported untyped, as postgres_exporter does with columns newer than its maps.
struct MappedQuery {
  std::string_view prefix;
  std::string_view sql;
  std::vector<ColumnRule> rules;
};

const ColumnRule* FindRule(const MappedQuery& query, const std::string& column) {
  for (const auto& rule : query.rules) {
    if (rule.column == column) {
      return &rule;
    }
  }
  return nullptr;
}

Status CollectMapped(const MappedQuery& query, QuerySource& source, const Labels& labels,
                     MetricSet& out) {
  auto result = source.Query(std::string(query.sql));
  if (!result.ok()) {
    return result.error();
  }
  const auto& columns = result->columns;
  std::vector<const ColumnRule*> rules;
  rules.reserve(columns.size());
  for (const auto& column : columns) {
    rules.push_back(FindRule(query, column));
  }
  for (const auto& row : result->rows) {
    Labels row_labels = labels;
    for (size_t c = 0; c < columns.size() && c < row.size(); ++c) {
      if (rules[c] != nullptr && rules[c]->usage == Usage::kLabel) {
        row_labels.emplace_back(columns[c], row[c].value_or(""));
      }
    }
    for (size_t c = 0; c < columns.size() && c < row.size(); ++c) {
      const ColumnRule* rule = rules[c];
      std::string name = SanitizeMetricName(std::string(query.prefix) + "_" + columns[c]);
      if (rule == nullptr) {
        out.Add(name, MetricType::kUntyped,
                "Column " + columns[c] + " of " + std::string(query.prefix) +
                    ", exported without a known type",
                row_labels, ToSampleValue(row[c]));
      } else if (rule->usage == Usage::kCounter || rule->usage == Usage::kGauge) {
        out.Add(name, rule->usage == Usage::kCounter ? MetricType::kCounter : MetricType::kGauge,
                std::string(rule->help), row_labels, ToSampleValue(row[c]));
      }
    }
  }
  return OkStatus();
}

// The primary's current WAL position, or what a replica has replayed.
#define PGHA_CURRENT_LSN \
  "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END"

const MappedQuery kDatabaseSize{
    "pg_database",
    "SELECT datname, pg_database_size(oid) AS size_bytes FROM pg_database "
    "WHERE has_database_privilege(oid, 'CONNECT') OR pg_has_role('pg_read_all_stats', 'MEMBER')",
    {{"datname", Usage::kLabel, ""},
     {"size_bytes", Usage::kGauge, "Size of the database on disk, in bytes"}}};

const MappedQuery kLocks{
    "pg_locks",
    "SELECT d.datname, m.mode, COALESCE(l.count, 0) AS count "
    "FROM (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), "
    "('shareupdateexclusivelock'), ('sharelock'), ('sharerowexclusivelock'), ('exclusivelock'), "
    "('accessexclusivelock'), ('sireadlock')) AS m(mode) CROSS JOIN pg_database d "
    "LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS count FROM pg_locks "
    "WHERE database IS NOT NULL GROUP BY database, lower(mode)) l "
    "ON l.mode = m.mode AND l.database = d.oid",
    {{"datname", Usage::kLabel, ""},
     {"mode", Usage::kLabel, ""},
     {"count", Usage::kGauge, "Locks held or awaited, by database and lock mode"}}};

const MappedQuery kStatActivity{
    "pg_stat_activity",
    "SELECT d.datname, s.state, COALESCE(a.count, 0) AS count, "
    "COALESCE(a.max_tx_duration, 0) AS max_tx_duration "
    "FROM (VALUES ('active'), ('idle'), ('idle in transaction'), "
    "('idle in transaction (aborted)'), ('fastpath function call'), ('disabled')) AS s(state) "
    "CROSS JOIN pg_database d "
    "LEFT JOIN (SELECT datname, state, count(*) AS count, "
    "max(extract(epoch FROM now() - xact_start))::float AS max_tx_duration "
    "FROM pg_stat_activity GROUP BY datname, state) a "
    "ON a.state = s.state AND a.datname = d.datname",
    {{"datname", Usage::kLabel, ""},
     {"state", Usage::kLabel, ""},
     {"count", Usage::kGauge, "Backends in this state, by database"},
     {"max_tx_duration", Usage::kGauge,
      "Longest running transaction among the backends in this state, in seconds"}}};

const MappedQuery kStatArchiver{
    "pg_stat_archiver",
    "SELECT *, extract(epoch FROM now() - last_archived_time) AS last_archive_age "
    "FROM pg_stat_archiver",
    {{"archived_count", Usage::kCounter, "WAL files archived"},
     {"last_archived_wal", Usage::kDiscard, ""},
     {"last_archived_time", Usage::kDiscard, ""},
     {"failed_count", Usage::kCounter, "Failed attempts to archive a WAL file"},
     {"last_failed_wal", Usage::kDiscard, ""},
     {"last_failed_time", Usage::kDiscard, ""},
     {"last_archive_age", Usage::kGauge, "Seconds since a WAL file was last archived"},
     {"stats_reset", Usage::kDiscard, ""}}};

const MappedQuery kStatDatabase{
    "pg_stat_database",
    "SELECT * FROM pg_stat_database",
    {{"datid", Usage::kLabel, ""},
     {"datname", Usage::kLabel, ""},
     {"numbackends", Usage::kGauge, "Backends connected to this database now"},
     {"xact_commit", Usage::kCounter, "Transactions committed"},
     {"xact_rollback", Usage::kCounter, "Transactions rolled back"},
     {"blks_read", Usage::kCounter, "Blocks read from disk (or the OS cache)"},
     {"blks_hit", Usage::kCounter, "Blocks found in shared buffers"},
     {"tup_returned", Usage::kCounter, "Rows returned by queries"},
     {"tup_fetched", Usage::kCounter, "Rows fetched by queries"},
     {"tup_inserted", Usage::kCounter, "Rows inserted"},
     {"tup_updated", Usage::kCounter, "Rows updated"},
     {"tup_deleted", Usage::kCounter, "Rows deleted"},
     {"conflicts", Usage::kCounter, "Queries cancelled by conflicts with recovery"},
     {"temp_files", Usage::kCounter, "Temporary files created"},
     {"temp_bytes", Usage::kCounter, "Bytes written to temporary files"},
     {"deadlocks", Usage::kCounter, "Deadlocks detected"},
     {"blk_read_time", Usage::kCounter, "Time spent reading blocks, in milliseconds"},
     {"blk_write_time", Usage::kCounter, "Time spent writing blocks, in milliseconds"},
     {"stats_reset", Usage::kCounter, "When these statistics were last reset, epoch seconds"}}};

const MappedQuery kStatDatabaseConflicts{
    "pg_stat_database_conflicts",
    "SELECT * FROM pg_stat_database_conflicts",
    {{"datid", Usage::kLabel, ""},
     {"datname", Usage::kLabel, ""},
     {"confl_tablespace", Usage::kCounter, "Queries cancelled because a tablespace was dropped"},
     {"confl_lock", Usage::kCounter, "Queries cancelled by lock timeouts"},
     {"confl_snapshot", Usage::kCounter, "Queries cancelled because of old snapshots"},
     {"confl_bufferpin", Usage::kCounter, "Queries cancelled because of pinned buffers"},
     {"confl_deadlock", Usage::kCounter, "Queries cancelled by deadlocks"}}};

// slot_name is the slot the walsender streams from ("" without one).
const MappedQuery kStatReplication{
    "pg_stat_replication",
    "SELECT r.*, s.slot_name, " PGHA_CURRENT_LSN
    " AS pg_current_wal_lsn, "
    "pg_wal_lsn_diff(" PGHA_CURRENT_LSN
    ", '0/0')::float AS pg_current_wal_lsn_bytes, "
    "pg_wal_lsn_diff(" PGHA_CURRENT_LSN
    ", r.replay_lsn)::float AS pg_wal_lsn_diff "
    "FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid",
    {{"pid", Usage::kDiscard, ""},
     {"usesysid", Usage::kDiscard, ""},
     {"usename", Usage::kDiscard, ""},
     {"application_name", Usage::kLabel, ""},
     {"client_addr", Usage::kLabel, ""},
     {"client_hostname", Usage::kDiscard, ""},
     {"client_port", Usage::kDiscard, ""},
     {"backend_start", Usage::kDiscard, ""},
     {"backend_xmin", Usage::kDiscard, ""},
     {"state", Usage::kLabel, ""},
     {"sent_lsn", Usage::kDiscard, ""},
     {"write_lsn", Usage::kDiscard, ""},
     {"flush_lsn", Usage::kDiscard, ""},
     {"replay_lsn", Usage::kDiscard, ""},
     {"write_lag", Usage::kDiscard, ""},
     {"flush_lag", Usage::kDiscard, ""},
     {"replay_lag", Usage::kDiscard, ""},
     {"sync_priority", Usage::kDiscard, ""},
     {"sync_state", Usage::kDiscard, ""},
     {"slot_name", Usage::kLabel, ""},
     {"pg_current_wal_lsn", Usage::kDiscard, ""},
     {"pg_current_wal_lsn_bytes", Usage::kGauge, "This server's WAL position, in bytes"},
     {"pg_wal_lsn_diff", Usage::kGauge,
      "Bytes of WAL this standby has still to replay (its replay lag)"}}};

const MappedQuery kReplicationSlots{
    "pg_replication_slots",
    "SELECT slot_name, database, active, "
    "pg_wal_lsn_diff(" PGHA_CURRENT_LSN
    ", restart_lsn)::float AS pg_wal_lsn_diff "
    "FROM pg_replication_slots",
    {{"slot_name", Usage::kLabel, ""},
     {"database", Usage::kLabel, ""},
     {"active", Usage::kGauge, "1 while a consumer streams from the slot"},
     {"pg_wal_lsn_diff", Usage::kGauge, "Bytes of WAL the slot holds back"}}};

const MappedQuery kPostmaster{
    "pg_postmaster",
    "SELECT extract(epoch FROM pg_postmaster_start_time())::float AS start_time_seconds",
    {{"start_time_seconds", Usage::kGauge, "When the postmaster started, epoch seconds"}}};

// A replica that has replayed all it received is not lagging, however old its last
// transaction is (an idle primary writes none).
const MappedQuery kReplication{
    "pg_replication",
    "SELECT CASE WHEN NOT pg_is_in_recovery() "
    "OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE GREATEST(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())) END AS lag, "
    "CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END AS is_replica",
    {{"lag", Usage::kGauge, "Replication delay of this replica in seconds, 0 on a primary"},
     {"is_replica", Usage::kGauge, "1 while this server is in recovery"}}};

#undef PGHA_CURRENT_LSN

Status CollectBgwriter(QuerySource& source, const Labels& labels, MetricSet& out) {
  struct Column {
    std::string_view name;
    std::string_view help;
  };
  static const Column kColumns[] = {
      {"checkpoints_timed", "Checkpoints started by checkpoint_timeout"},
      {"checkpoints_req", "Checkpoints requested"},
      {"checkpoint_write_time", "Time spent writing checkpoint files, in milliseconds"},
      {"checkpoint_sync_time", "Time spent syncing checkpoint files, in milliseconds"},
      {"buffers_checkpoint", "Buffers written by checkpoints"},
      {"buffers_clean", "Buffers written by the background writer"},
      {"maxwritten_clean", "Cleaning scans stopped at bgwriter_lru_maxpages"},
      {"buffers_backend", "Buffers written by backends themselves"},
      {"buffers_backend_fsync", "fsync calls made by backends themselves"},
      {"buffers_alloc", "Buffers allocated"},
      {"stats_reset", "When these statistics were last reset, epoch seconds"},
  };
  std::string sql = "SELECT ";
  for (const auto& column : kColumns) {
    sql += column.name == "stats_reset" ? "extract(epoch FROM stats_reset)::float AS stats_reset"
                                        : std::string(column.name) + ", ";
  }
  sql += " FROM pg_stat_bgwriter";
  auto result = source.Query(sql);
  if (!result.ok()) {
    return result.error();
  }
  if (result->rows.empty()) {
    return Error::Invalid("pg_stat_bgwriter returned no row");
  }
  const auto& row = result->rows.front();
  for (size_t c = 0; c < std::size(kColumns) && c < row.size(); ++c) {
    out.Add("pg_stat_bgwriter_" + std::string(kColumns[c].name) + "_total", MetricType::kCounter,
            std::string(kColumns[c].help), labels, ToSampleValue(row[c]));
  }
  return OkStatus();
}

Status CollectStatic(QuerySource& source, const Labels& labels, MetricSet& out) {
  auto result = source.Query("SELECT version(), current_setting('server_version')");
  if (!result.ok()) {
    return result.error();
  }
  if (result->rows.empty() || result->rows.front().size() < 2) {
    return Error::Invalid("version() returned no row");
  }
  const auto& row = result->rows.front();
  Labels with_version = labels;
  with_version.emplace_back("version", row[0].value_or(""));
  with_version.emplace_back("short_version", ShortVersion(row[1].value_or("")));
  out.Add("pg_static", MetricType::kUntyped, "The server's version, as labels", with_version, 1);
  return OkStatus();
}

Status CollectSettings(QuerySource& source, const Labels& labels, MetricSet& out) {
  auto result = source.Query(
      "SELECT name, setting, COALESCE(unit, ''), short_desc, vartype FROM pg_settings "
      "WHERE vartype IN ('bool', 'integer', 'real') AND name != 'sync_commit_cancel_wait'");
  if (!result.ok()) {
    return result.error();
  }
  for (const auto& row : result->rows) {
    if (row.size() < 5) {
      continue;
    }
    auto sample = ConvertSetting(row[0].value_or(""), row[1].value_or(""), row[2].value_or(""),
                                 row[4].value_or(""));
    if (!sample) {
      continue;
    }
    std::string help = row[3].value_or("");
    if (!sample->unit.empty()) {
      help += " (in " + sample->unit + ")";
    }
    out.Add(sample->name, MetricType::kGauge, help, labels, sample->value);
  }
  return OkStatus();
}

template <const MappedQuery& query>
Status Mapped(QuerySource& source, const Labels& labels, MetricSet& out) {
  return CollectMapped(query, source, labels, out);
}

bool ParseDouble(std::string_view text, double* value) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

const std::vector<Collector>& AllCollectors() {
  static const std::vector<Collector> kCollectors = {
      {"static", CollectorGroup::kDefault, CollectStatic},
      {"database", CollectorGroup::kCollector, Mapped<kDatabaseSize>},
      {"bgwriter", CollectorGroup::kCollector, CollectBgwriter},
      {"locks", CollectorGroup::kDefault, Mapped<kLocks>},
      {"stat_activity", CollectorGroup::kDefault, Mapped<kStatActivity>},
      {"stat_archiver", CollectorGroup::kDefault, Mapped<kStatArchiver>},
      {"stat_database", CollectorGroup::kDefault, Mapped<kStatDatabase>},
      {"stat_database_conflicts", CollectorGroup::kDefault, Mapped<kStatDatabaseConflicts>},
      {"stat_replication", CollectorGroup::kDefault, Mapped<kStatReplication>},
      {"replication_slots", CollectorGroup::kDefault, Mapped<kReplicationSlots>},
      {"settings", CollectorGroup::kSettings, CollectSettings},
      {"postmaster", CollectorGroup::kDefault, Mapped<kPostmaster>},
      {"replication", CollectorGroup::kDefault, Mapped<kReplication>},
  };
  return kCollectors;
}

double ToSampleValue(const std::optional<std::string>& text) {
  if (!text) {
    return kNaN;
  }
  if (*text == "t") {
    return 1;
  }
  if (*text == "f") {
    return 0;
  }
  double value = 0;
  if (ParseDouble(*text, &value)) {
    return value;
  }
  if (*text == "Infinity") {
    return std::numeric_limits<double>::infinity();
  }
  if (*text == "-Infinity") {
    return -std::numeric_limits<double>::infinity();
  }
  auto timestamp = ParseIsoTimestamp(*text);
  if (timestamp.ok()) {
    return std::chrono::duration<double>(timestamp->time_since_epoch()).count();
  }
  return kNaN;
}

std::optional<SettingSample> ConvertSetting(const std::string& name, const std::string& setting,
                                            const std::string& unit, const std::string& vartype) {
  SettingSample sample{"pg_settings_" + SanitizeMetricName(name), 0, ""};
  if (vartype == "bool") {
    if (setting != "on" && setting != "off") {
      return std::nullopt;
    }
    sample.value = setting == "on" ? 1 : 0;
    return sample;
  }
  if (!ParseDouble(setting, &sample.value)) {
    return std::nullopt;
  }
  if (unit.empty()) {
    return sample;
  }
  // A unit is an optional multiplier and a base unit: "8kB" is 8 × 1024 bytes.
  size_t digits = 0;
  while (digits < unit.size() && unit[digits] >= '0' && unit[digits] <= '9') {
    ++digits;
  }
  double multiplier = 1;
  if (digits > 0 && !ParseDouble(std::string_view(unit).substr(0, digits), &multiplier)) {
    return std::nullopt;
  }
  std::string base = unit.substr(digits);
  static const std::pair<std::string_view, double> kSeconds[] = {
      {"us", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"min", 60}, {"h", 3600}, {"d", 86400}};
  static const std::pair<std::string_view, double> kBytes[] = {
      {"B", 1}, {"kB", 1024.0}, {"MB", 1048576.0}, {"GB", 1073741824.0}, {"TB", 1099511627776.0}};
  double factor = 0;
  for (const auto& [symbol, value] : kSeconds) {
    if (base == symbol) {
      sample.unit = "seconds";
      factor = value;
    }
  }
  for (const auto& [symbol, value] : kBytes) {
    if (base == symbol) {
      sample.unit = "bytes";
      factor = value;
    }
  }
  if (sample.unit.empty()) {
    return std::nullopt;
  }
  sample.name += "_" + sample.unit;
  if (sample.value != -1) {
    sample.value *= multiplier * factor;
  }
  return sample;
}

std::string ShortVersion(const std::string& version) {
  std::string_view text = version;
  if (text.rfind("PostgreSQL ", 0) == 0) {
    text.remove_prefix(11);
  }
  std::vector<std::string> parts;
  std::string current;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      current += c;
    } else if (c == '.' && !current.empty()) {
      parts.push_back(current);
      current.clear();
    } else {
      break;
    }
  }
  if (!current.empty()) {
    parts.push_back(current);
  }
  if (parts.empty()) {
    return "";
  }
  while (parts.size() < 3) {
    parts.emplace_back("0");
  }
  return parts[0] + "." + parts[1] + "." + parts[2];
}

}  // namespace pgha::metrics
