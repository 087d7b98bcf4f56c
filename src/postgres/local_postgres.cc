#include "postgres/local_postgres.h"

#include <fmt/format.h>
#include <signal.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/files.h"
#include "common/log.h"
#include "common/lsn.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "model/global_config.h"
#include "model/replication_slot.h"
#include "postgres/connection.h"
#include "postgres/server_parameters.h"

namespace pgha::postgres {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// Where initdb's pg_hba.conf waits while the bootstrap's temporary one is in place.
constexpr const char* kInitdbHbaFile = "pg_hba.conf.initdb";

std::string GucValue(const json& value) {
  if (value.is_boolean()) {
    return value.get<bool>() ? "on" : "off";
  }
  // postgresql.conf quotes values as SQL literals do.
  return QuoteLiteral(value.is_string() ? value.get<std::string>() : value.dump());
}

Status RunTool(const std::vector<std::string>& argv, seconds timeout, const std::string& what,
               const std::map<std::string, std::string>& env = {}) {
  auto result = RunProgram(argv, timeout, env);
  if (result.exit_code != 0) {
    std::string output(Trim(result.output));
    return Error::Unavailable(fmt::format("{} failed{}: {}", what,
                                          result.timed_out ? " (timed out)" : "",
                                          output.empty() ? "no output" : output));
  }
  return OkStatus();
}

Status WriteFile(const fs::path& path, const std::string& content, fs::perms perms) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) {
      return Error::Unavailable("cannot write " + tmp.string());
    }
    out << content;
    if (!out.good()) {
      return Error::Unavailable("cannot write " + tmp.string());
    }
  }
  std::error_code ec;
  fs::permissions(tmp, perms, ec);
  fs::rename(tmp, path, ec);
  if (ec) {
    return Error::Unavailable(fmt::format("cannot replace {}: {}", path.string(), ec.message()));
  }
  return OkStatus();
}

std::string ListenHost(const config::PostgresqlConfig& pg) {
  std::string host = pg.listen_address.host;
  if (host == "0.0.0.0" || host == "*" || host.empty()) {
    return "127.0.0.1";
  }
  if (host == "::") {
    return "::1";
  }
  return host;
}

// A pg_hba.conf field in double quotes, so that a name like "all" or one with spaces means only
// itself; pg_hba.conf has no escape for a double quote inside one, hence nullopt.
std::optional<std::string> QuoteHbaValue(const std::string& value) {
  if (value.empty() || value.find('"') != std::string::npos) {
    return std::nullopt;
  }
  return "\"" + value + "\"";
}

}  // namespace

LocalPostgres::LocalPostgres(std::shared_ptr<const config::Config> config)
    : config_(std::move(config)) {}

void LocalPostgres::UseConfig(std::shared_ptr<const config::Config> config) {
  config_ = std::move(config);
}

LocalPostgres::~LocalPostgres() = default;

std::string LocalPostgres::Bin(const std::string& program) const {
  return config_->postgresql.BinaryPath(program);
}

bool LocalPostgres::DataInitialized() const {
  std::error_code ec;
  return fs::exists(fs::path(config_->postgresql.data_dir) / "PG_VERSION", ec) &&
         fs::exists(fs::path(config_->postgresql.data_dir) / "global" / "pg_control", ec);
}

int LocalPostgres::MajorVersion() const {
  // PG_VERSION holds "15" (or "9.6" before 10); without a data directory, assume the newest.
  std::ifstream file(fs::path(config_->postgresql.data_dir) / "PG_VERSION");
  std::string text;
  if (!(file >> text)) {
    return 0;
  }
  auto major = ParseInt64(text.substr(0, text.find('.')));
  return major ? static_cast<int>(*major) : 0;
}

std::map<std::string, std::string> LocalPostgres::ControlDataFields() const {
  std::map<std::string, std::string> fields;
  if (!DataInitialized()) {
    return fields;
  }
  auto result = RunProgram({Bin("pg_controldata"), "-D", config_->postgresql.data_dir}, seconds(10),
                           {{"LC_ALL", "C"}});
  if (result.exit_code != 0) {
    return fields;
  }
  std::istringstream lines(result.output);
  std::string line;
  while (std::getline(lines, line)) {
    if (auto colon = line.find(':'); colon != std::string::npos) {
      fields.emplace(line.substr(0, colon), std::string(Trim(line.substr(colon + 1))));
    }
  }
  return fields;
}

std::string LocalPostgres::ControlData(const std::string& field) const {
  auto fields = ControlDataFields();
  auto it = fields.find(field);
  return it == fields.end() ? "" : it->second;
}

std::string LocalPostgres::SystemIdentifier() const {
  return ControlData("Database system identifier");
}

std::string LocalPostgres::ControlState() const { return ControlData("Database cluster state"); }

uint64_t LocalPostgres::LatestCheckpointLocation() const {
  auto lsn = Lsn::Parse(ControlData("Latest checkpoint location"));
  return lsn.ok() ? lsn->value() : 0;
}

bool LocalPostgres::StandbySignalPresent() const {
  std::error_code ec;
  return fs::exists(fs::path(config_->postgresql.data_dir) / "standby.signal", ec);
}

bool LocalPostgres::PostmasterAlive() const { return PostmasterPid().has_value(); }

std::optional<pid_t> LocalPostgres::PostmasterPid() const {
  std::ifstream pidfile(fs::path(config_->postgresql.data_dir) / "postmaster.pid");
  pid_t pid = 0;
  if (!(pidfile >> pid) || pid <= 0) {
    return std::nullopt;
  }
  // The agent is a child subreaper (see pgha_main), so a postmaster whose pg_ctl has exited is
  // our child: reap it here, or a dead postmaster stays a zombie that kill(pid, 0) — and
  // PostgreSQL's own postmaster.pid check — still see as running.
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == pid) {
    return std::nullopt;
  }
  if (::kill(pid, 0) != 0) {
    return std::nullopt;
  }
  return pid;
}

std::string LocalPostgres::SocketDirectory() const {
  const auto& params = config_->postgresql.parameters;
  if (auto it = params.find("unix_socket_directories"); it != params.end() && it->is_string()) {
    auto dirs = SplitAndTrim(it->get<std::string>(), ',');
    if (!dirs.empty()) {
      return dirs.front();
    }
  }
  return fs::path(config_->postgresql.data_dir).parent_path().string();
}

std::string LocalPostgres::LocalConninfo() const {
  const auto& pg = config_->postgresql;
  std::string host = pg.use_unix_socket ? SocketDirectory() : ListenHost(pg);
  std::string conninfo =
      fmt::format("host={} port={} user={} dbname={} application_name=pgha",
                  QuoteConninfoValue(host), pg.listen_address.port,
                  QuoteConninfoValue(pg.superuser.username), QuoteConninfoValue(pg.database));
  if (!pg.superuser.password.empty()) {
    conninfo += " password=" + QuoteConninfoValue(pg.superuser.password);
  }
  return conninfo;
}

std::string LocalPostgres::MemberConninfo(const model::Member& member, const config::PgUser& user,
                                          const std::string& dbname, PasswordIn password_in) const {
  std::string conninfo = fmt::format("host={} port={} user={}", QuoteConninfoValue(member.host()),
                                     member.port(), QuoteConninfoValue(user.username));
  if (!dbname.empty()) {
    conninfo += " dbname=" + QuoteConninfoValue(dbname);
  }
  if (!user.password.empty() && password_in == PasswordIn::kConninfo) {
    conninfo += " password=" + QuoteConninfoValue(user.password);
  }
  // Patroni's defaults for every connection to another member; the user's options win.
  std::map<std::string, std::string> options = {{"sslmode", "prefer"}};
  for (const auto& [k, v] : user.ssl) {
    options[k] = v;
  }
  for (const auto& [k, v] : options) {
    conninfo += " " + k + "=" + QuoteConninfoValue(v);
  }
  return conninfo;
}

std::string LocalPostgres::ReplicationConninfo(const model::Member& leader) const {
  // The WAL receiver connects without a deadline (connect_timeout does not apply to its
  // non-blocking connect), so a lost SYN or a peer gone silent mid-handshake could hold it for
  // minutes (tcp_syn_retries, or forever). tcp_user_timeout bounds unacknowledged sends, SYNs
  // included; keepalives find a dead peer while it waits for an answer.
  return MemberConninfo(leader, config_->postgresql.replication, "", PasswordIn::kConninfo) +
         " application_name=" + QuoteConninfoValue(config_->name) +
         " tcp_user_timeout=10000 keepalives=1 keepalives_idle=10 keepalives_interval=5 "
         "keepalives_count=3";
}

Result<std::unique_ptr<Connection>> LocalPostgres::Connect() {
  return Connection::Open(LocalConninfo());
}

Observation LocalPostgres::Observe() {
  Observation obs;
  MutexLock lock(connection_mutex_);
  if (!connection_ || !connection_->ok()) {
    connection_.reset();
    if (!PostmasterAlive()) {
      return obs;
    }
    auto conn = Connect();
    if (!conn.ok()) {
      PGHA_LOG_DEBUG("cannot connect to local PostgreSQL: {}", conn.error().message());
      return obs;
    }
    connection_ = std::move(conn).value();
  }
  // A replica's timeline is the latest of its WAL receiver's, its last checkpoint's and its
  // minimum recovery point's: after pg_rewind the last is already the leader's timeline while the
  // checkpoint is still on the old one, and the receiver may not be connected yet.
  auto rows = connection_->Query(R"SQL(
    SELECT pg_is_in_recovery(),
           CASE WHEN pg_is_in_recovery() THEN NULL ELSE (pg_current_wal_lsn() - '0/0')::text END,
           (pg_last_wal_receive_lsn() - '0/0')::text,
           (pg_last_wal_replay_lsn() - '0/0')::text,
           to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
           CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,
           to_char(pg_postmaster_start_time() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'),
           current_setting('server_version_num'),
           CASE WHEN pg_is_in_recovery()
                THEN GREATEST((SELECT received_tli FROM pg_stat_wal_receiver),
                              (SELECT timeline_id FROM pg_control_checkpoint()),
                              (SELECT min_recovery_end_timeline FROM pg_control_recovery()))
                ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
           (SELECT status FROM pg_stat_wal_receiver),
           (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver),
           (SELECT received_tli FROM pg_stat_wal_receiver))SQL");
  if (!rows.ok() || rows->empty()) {
    connection_.reset();
    return obs;
  }
  const Row& r = rows->front();
  auto u64 = [](const std::optional<std::string>& v) -> std::optional<uint64_t> {
    if (!v) {
      return std::nullopt;
    }
    return ParseUint64(*v);
  };
  obs.running = true;
  obs.in_recovery = r[0] == std::optional<std::string>("t");
  obs.received_location = u64(r[2]);
  obs.replayed_location = u64(r[3]);
  if (obs.in_recovery) {
    obs.wal_position =
        std::max(obs.received_location.value_or(0), obs.replayed_location.value_or(0));
  } else {
    obs.wal_position = u64(r[1]).value_or(0);
  }
  obs.replayed_timestamp = r[4] ? *r[4] + "+00:00" : "";
  obs.replay_paused = r[5] == std::optional<std::string>("t");
  obs.postmaster_start_time = r[6] ? *r[6] + "+00:00" : "";
  obs.server_version = r[7] ? ParseInt64(*r[7]).value_or(0) : 0;
  obs.timeline = r[8] ? ParseInt64(*r[8]).value_or(0) : 0;
  if (obs.in_recovery) {
    obs.replication_state =
        r[9] == std::optional<std::string>("streaming") ? "streaming" : "in archive recovery";
    obs.following_host_port = r[10].value_or("");
    obs.receiver_timeline = r[11] ? ParseInt64(*r[11]).value_or(0) : 0;
  }
  auto pending = connection_->Query(
      // Recovery settings change with the role (a promoted primary drops
      // recovery_target_timeline); like Patroni, they never make a restart pending.
      "SELECT name, setting FROM pg_catalog.pg_settings WHERE pending_restart AND name <> ALL "
      "('{archive_cleanup_command,primary_conninfo,primary_slot_name,promote_trigger_file,"
      "recovery_end_command,recovery_min_apply_delay,recovery_target,recovery_target_action,"
      "recovery_target_inclusive,recovery_target_lsn,recovery_target_name,recovery_target_time,"
      "recovery_target_timeline,recovery_target_xid,restore_command}'::text[]) ORDER BY name");
  if (pending.ok()) {
    for (const auto& row : *pending) {
      obs.pending_restart[row[0].value_or("")] = {{"old_value", row[1].value_or("")}};
    }
  }
  // Replicas have walsenders too when others cascade from them (replicatefrom).
  {
    auto replication = connection_->Query(
        "SELECT usename, application_name, client_addr::text, state, sync_state, sync_priority, "
        "(CASE current_setting('synchronous_commit') WHEN 'remote_apply' THEN replay_lsn "
        "WHEN 'remote_write' THEN write_lsn ELSE flush_lsn END - '0/0')::bigint "
        "FROM pg_stat_replication ORDER BY application_name");
    if (replication.ok()) {
      for (const auto& row : *replication) {
        obs.replication.push_back(
            {{"usename", row[0].value_or("")},
             {"application_name", row[1].value_or("")},
             {"client_addr", row[2].value_or("")},
             {"state", row[3].value_or("")},
             {"sync_state", row[4].value_or("")},
             {"sync_priority", ParseInt64(row[5].value_or("0")).value_or(0)}});
        std::optional<uint64_t> position;
        if (row[6]) {
          if (auto parsed = ParseInt64(*row[6]); parsed && *parsed >= 0) {
            position = static_cast<uint64_t>(*parsed);
          }
        }
        obs.wal_senders.push_back({row[1].value_or(""), row[4].value_or(""), position});
      }
    }
  }
  return obs;
}

Status LocalPostgres::Initdb() {
  const auto& superuser = config_->postgresql.superuser;
  std::vector<std::string> argv = {Bin("initdb"), "-D", config_->postgresql.data_dir,
                                   "--username=" + superuser.username};
  auto options = config::InitdbArguments(config_->bootstrap.initdb);
  if (!options.ok()) {
    return options.error();
  }
  argv.insert(argv.end(), options->begin(), options->end());
  // The superuser's password goes to initdb in a file only we can read (Patroni's way): with
  // `auth: md5` initdb refuses to run without one, and the server never runs without it.
  std::optional<fs::path> pwfile;
  if (!superuser.password.empty()) {
    std::error_code ec;
    std::string name = (fs::temp_directory_path(ec) / "pgha-pwfile-XXXXXX").string();
    int fd = ::mkstemp(name.data());
    if (fd < 0) {
      return Error::Unavailable(
          fmt::format("cannot create a password file for initdb: {}", strerror(errno)));
    }
    pwfile = name;
    const std::string& text = superuser.password;
    bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    if (!written) {
      fs::remove(*pwfile, ec);
      return Error::Unavailable("cannot write the password file for initdb");
    }
    argv.push_back("--pwfile=" + pwfile->string());
  }
  auto ran = RunTool(argv, seconds(300), "initdb");
  if (pwfile) {
    std::error_code ec;
    fs::remove(*pwfile, ec);
  }
  PGHA_RETURN_IF_ERROR(ran);
  // Patroni's layout: the original file is kept as postgresql.base.conf and included.
  fs::path dir(config_->postgresql.data_dir);
  std::error_code ec;
  fs::rename(dir / "postgresql.conf", dir / "postgresql.base.conf", ec);
  if (ec) {
    return Error::Unavailable("cannot rename postgresql.conf: " + ec.message());
  }
  return OkStatus();
}

Status LocalPostgres::WriteConfig(const model::GlobalConfig& dynamic, bool standby,
                                  const model::Member* leader, bool will_recover) {
  const auto& pg = config_->postgresql;
  fs::path dir(pg.data_dir);
  // A server that replays WAL refuses settings below its primary's (recorded in pg_control):
  // it starts with those, as Patroni does, until the primary's change reaches it.
  std::map<std::string, int64_t> at_least;
  if (standby || will_recover) {
    auto control = ControlDataFields();
    for (const auto& [name, field] : RecoveryMinimumFields()) {
      if (auto it = control.find(field); it != control.end()) {
        if (auto value = ParseInt64(it->second)) {
          at_least[name] = *value;
        }
      }
    }
  }
  std::vector<std::pair<std::string, json>> params =
      ServerParameters(dynamic.postgresql_parameters(), pg.parameters, MajorVersion(), at_least);
  std::optional<std::string> sync_names;
  {
    MutexLock lock(connection_mutex_);
    sync_names = synchronous_standby_names_;
  }
  // The leader's sync replication owns synchronous_standby_names; pgha owns the rest.
  std::set<std::string> owned = {"listen_addresses",       "port",
                                 "cluster_name",           "hot_standby",
                                 "primary_conninfo",       "primary_slot_name",
                                 "unix_socket_directories"};
  if (sync_names || standby) {
    owned.insert("synchronous_standby_names");
  }
  std::string listen = pg.listen;
  if (auto colon = listen.rfind(':'); colon != std::string::npos) {
    listen = listen.substr(0, colon);
  }
  std::string conf =
      "# Written by pgha from patroni.yml and the DCS config; edits here are lost.\n";
  conf += "include 'postgresql.base.conf'\n\n";
  conf += "listen_addresses = " + GucValue(listen.empty() ? "*" : listen) + "\n";
  conf += fmt::format("port = {}\n", pg.listen_address.port);
  conf += "cluster_name = " + GucValue(config_->scope) + "\n";
  conf += "hot_standby = on\n";
  conf += "unix_socket_directories = " + GucValue(SocketDirectory()) + "\n";
  for (const auto& [name, value] : params) {
    if (!owned.count(name)) {
      conf += name + " = " + GucValue(value) + "\n";
    }
  }
  if (sync_names) {  // also on a standby about to be promoted
    conf += "synchronous_standby_names = " + GucValue(*sync_names) + "\n";
  }
  if (standby) {
    conf += "recovery_target_timeline = 'latest'\n";
    // nostream (Patroni 4's tag): no walreceiver; WAL comes from restore_command only.
    // A standby cluster's leader replicates from the remote primary with the slot and the
    // archive settings the standby_cluster section names, not this cluster's.
    bool remote = leader != nullptr && leader->name == model::kStandbyClusterSource;
    json standby_cluster = dynamic.standby_cluster();
    // A standby cluster fed by its archive alone (standby_cluster without a host) has no
    // primary to stream from.
    if (leader != nullptr && !config_->tags.nostream && !leader->host().empty()) {
      conf += "primary_conninfo = " + GucValue(ReplicationConninfo(*leader)) + "\n";
      std::string slot = remote
                             ? standby_cluster.value("primary_slot_name", "")
                             : (dynamic.use_slots() ? model::SlotNameForMember(config_->name) : "");
      if (!slot.empty()) {
        conf += "primary_slot_name = " + GucValue(slot) + "\n";
      }
    }
    if (remote) {
      json archive = json::object();
      for (const char* key :
           {"restore_command", "archive_cleanup_command", "recovery_min_apply_delay"}) {
        if (auto it = standby_cluster.find(key);
            it != standby_cluster.end() && !it->is_null() &&
            !(it->is_string() && it->get<std::string>().empty())) {
          archive[key] = *it;
        }
      }
      conf += RecoverySettings(archive);
    } else {
      // postgresql.recovery_conf (restore_command, recovery_min_apply_delay, ...): a replica
      // can fetch from the archive what streaming no longer has, as Patroni's replicas do.
      conf += RecoverySettings(pg.recovery_conf);
    }
  }
  PGHA_RETURN_IF_ERROR(
      WriteFile(dir / "postgresql.conf", conf, fs::perms::owner_read | fs::perms::owner_write));
  // postgresql.pg_hba from the local file wins; the DCS config's applies to every member that
  // has none (Patroni's rule).
  std::vector<std::string> hba = pg.pg_hba;
  if (hba.empty()) {
    json dcs_pg = dynamic.raw().value("postgresql", json::object());
    if (auto it = dcs_pg.find("pg_hba");
        dcs_pg.is_object() && it != dcs_pg.end() && it->is_array()) {
      for (const auto& line : *it) {
        if (line.is_string()) hba.push_back(line.get<std::string>());
      }
    }
  }
  fs::path initdb_hba = dir / kInitdbHbaFile;
  std::error_code exists_ec;
  if (!hba.empty()) {
    std::string text = "# Written by pgha from postgresql.pg_hba.\n";
    for (const auto& line : hba) {
      text += line + "\n";
    }
    PGHA_RETURN_IF_ERROR(
        WriteFile(dir / "pg_hba.conf", text, fs::perms::owner_read | fs::perms::owner_write));
    fs::remove(initdb_hba, exists_ec);
  } else if (fs::exists(initdb_hba, exists_ec)) {
    // No pg_hba anywhere in the configuration: after the bootstrap's temporary file, initdb's
    // own comes back with bootstrap.pg_hba appended (Patroni's order).
    std::string text = ReadWholeFile(initdb_hba.string()).value_or("");
    auto extra = config_->bootstrap.raw.find("pg_hba");
    if (extra != config_->bootstrap.raw.end() && extra->is_array()) {
      text += "\n# From bootstrap.pg_hba.\n";
      for (const auto& line : *extra) {
        if (line.is_string()) text += line.get<std::string>() + "\n";
      }
    }
    PGHA_RETURN_IF_ERROR(
        WriteFile(dir / "pg_hba.conf", text, fs::perms::owner_read | fs::perms::owner_write));
    fs::remove(initdb_hba, exists_ec);
  }
  std::error_code ec;
  if (standby) {
    PGHA_RETURN_IF_ERROR(
        WriteFile(dir / "standby.signal", "", fs::perms::owner_read | fs::perms::owner_write));
  } else {
    fs::remove(dir / "standby.signal", ec);
  }
  return OkStatus();
}

std::string LocalPostgres::RecoverySettings(const json& recovery_conf) {
  // pgha sets these itself; the rest of what the section says goes to postgresql.conf, since
  // PostgreSQL 12 reads recovery settings there (standby_mode is the signal file now).
  static const std::set<std::string> kOwned = {"primary_conninfo", "primary_slot_name",
                                               "standby_mode", "recovery_target_timeline"};
  std::string conf;
  if (!recovery_conf.is_object()) {
    return conf;
  }
  for (const auto& [name, value] : recovery_conf.items()) {
    if (!kOwned.count(name) && !value.is_null()) {
      conf += name + " = " + GucValue(value) + "\n";
    }
  }
  return conf;
}

Status LocalPostgres::WriteBootstrapRecovery(const json& recovery_conf) {
  fs::path dir(config_->postgresql.data_dir);
  auto current = ReadWholeFile((dir / "postgresql.conf").string());
  if (!current) {
    return Error::Unavailable("cannot read postgresql.conf to add the recovery settings");
  }
  std::string conf = *current;
  conf += "\n# The custom bootstrap's recovery_conf, until it ends.\n";
  if (recovery_conf.is_object() && recovery_conf.contains("recovery_target_timeline")) {
    conf += "recovery_target_timeline = " + GucValue(recovery_conf.at("recovery_target_timeline")) +
            "\n";
  }
  conf += RecoverySettings(recovery_conf);
  PGHA_RETURN_IF_ERROR(
      WriteFile(dir / "postgresql.conf", conf, fs::perms::owner_read | fs::perms::owner_write));
  return WriteFile(dir / "recovery.signal", "", fs::perms::owner_read | fs::perms::owner_write);
}

Status LocalPostgres::RunCustomBootstrap(const std::string& method, const json& options) {
  const auto& pg = config_->postgresql;
  std::string command = options.value("command", "");
  auto words = SplitCommandLine(command);
  if (command.empty() || !words.ok()) {
    return Error::Invalid(
        fmt::format("bootstrap.{}.command: '{}' is not a command", method, command));
  }
  std::vector<std::string> argv = std::move(words).value();
  if (!options.contains("no_params") ||
      !model::JsonAsBool(options.at("no_params")).value_or(true)) {
    argv.push_back("--scope=" + config_->scope);
    argv.push_back("--datadir=" + pg.data_dir);
  }
  PGHA_LOG_INFO("running custom bootstrap script: {}", command);
  auto result = RunProgram(argv, seconds(86400));
  if (result.exit_code != 0) {
    return Error::Unavailable(fmt::format("custom bootstrap script {} returned {}{}: {}", command,
                                          result.exit_code, result.timed_out ? " (timed out)" : "",
                                          std::string(Trim(result.output))));
  }
  if (!DataInitialized()) {
    return Error::Unavailable(fmt::format(
        "custom bootstrap script {} succeeded but left no PostgreSQL data directory in {}", command,
        pg.data_dir));
  }
  return AdoptRestoredDataDirectory();
}

Status LocalPostgres::AdoptRestoredDataDirectory() {
  // A restored or copied data directory brings its source's configuration: one made by pgha or
  // Patroni already has postgresql.base.conf (which pgha's postgresql.conf includes); a plain
  // one has only postgresql.conf, which becomes the base, as after initdb.
  fs::path dir(config_->postgresql.data_dir);
  std::error_code ec;
  if (!fs::exists(dir / "postgresql.base.conf", ec) && fs::exists(dir / "postgresql.conf", ec)) {
    fs::rename(dir / "postgresql.conf", dir / "postgresql.base.conf", ec);
    if (ec) {
      return Error::Unavailable("cannot rename postgresql.conf: " + ec.message());
    }
  }
  // No promotion may wait in a trigger file the source left (Patroni removes it too).
  fs::remove(dir / "promote", ec);
  return OkStatus();
}

Status LocalPostgres::WriteDynamicConfigCache(const json& config) {
  if (!DataInitialized()) {
    return Error::Unavailable("no data directory to cache the dynamic configuration in");
  }
  return WriteFile(fs::path(config_->postgresql.data_dir) / "patroni.dynamic.json", config.dump(),
                   fs::perms::owner_read | fs::perms::owner_write);
}

std::optional<json> LocalPostgres::ReadDynamicConfigCache() const {
  auto text =
      ReadWholeFile((fs::path(config_->postgresql.data_dir) / "patroni.dynamic.json").string());
  if (!text) {
    return std::nullopt;
  }
  json parsed = json::parse(*text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return std::nullopt;
  }
  return parsed;
}

void LocalPostgres::RemoveRecoverySignals() {
  fs::path dir(config_->postgresql.data_dir);
  std::error_code ec;
  fs::remove(dir / "recovery.signal", ec);
  fs::remove(dir / "standby.signal", ec);
}

Status LocalPostgres::WriteBootstrapHba() {
  fs::path dir(config_->postgresql.data_dir);
  // initdb's file is kept aside for a configuration with no pg_hba of its own (WriteConfig).
  std::error_code ec;
  if (fs::exists(dir / "pg_hba.conf", ec) && !fs::exists(dir / kInitdbHbaFile, ec)) {
    fs::rename(dir / "pg_hba.conf", dir / kInitdbHbaFile, ec);
  }
  std::string text =
      "# Temporary, while pgha creates the roles after initdb.\n"
      "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n";
  // The agent reaches its PostgreSQL at the listen address, which need not be loopback (a node
  // listening on its own interface): trust that one address too, for the superuser only.
  const auto& pg = config_->postgresql;
  auto superuser = QuoteHbaValue(pg.superuser.username);
  if (!pg.use_unix_socket && superuser) {
    std::string host = ListenHost(pg);
    if (host != "127.0.0.1" && host != "::1") {
      std::string address = host;
      if (host.find(':') != std::string::npos) {
        address += "/128";
      } else if (host.find_first_not_of("0123456789.") == std::string::npos) {
        address += "/32";
      }
      text += fmt::format("host all {} {} trust\n", *superuser, address);
    }
  }
  return WriteFile(dir / "pg_hba.conf", text, fs::perms::owner_read | fs::perms::owner_write);
}

void LocalPostgres::WaitForOrphanedBackends(milliseconds limit) const {
  if (PostmasterAlive()) {
    return;
  }
  // postmaster.pid's seventh line: the key and id of the System V segment PostgreSQL keeps only
  // so that a new postmaster can see whether anything still uses the old shared memory.
  std::ifstream pidfile(fs::path(config_->postgresql.data_dir) / "postmaster.pid");
  std::string line;
  for (int i = 0; i < 7 && std::getline(pidfile, line); ++i) {
  }
  std::istringstream fields(line);
  long key = 0;
  int shmid = -1;
  if (!(fields >> key >> shmid) || shmid < 0) {
    return;
  }
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    struct shmid_ds info {};
    if (::shmctl(shmid, IPC_STAT, &info) != 0 || info.shm_nattch == 0) {
      return;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
}

Status LocalPostgres::Start(seconds timeout) {
  return RunPgCtlStart({"-w", "-t", std::to_string(timeout.count())}, timeout + seconds(10));
}

Status LocalPostgres::Launch() { return RunPgCtlStart({"-W"}, seconds(30)); }

Status LocalPostgres::RunPgCtlStart(const std::vector<std::string>& wait_options,
                                    seconds tool_timeout) {
  // After a postmaster crash its backends linger a moment, attached to the old shared memory,
  // and PostgreSQL refuses to start until they are gone; a failed start would cost a loop_wait.
  WaitForOrphanedBackends(milliseconds(5000));
  fs::path log = fs::path(config_->postgresql.data_dir).parent_path() /
                 ("postgresql-" + config_->name + ".log");
  std::vector<std::string> args = {Bin("pg_ctl"), "start", "-D", config_->postgresql.data_dir};
  args.insert(args.end(), wait_options.begin(), wait_options.end());
  args.insert(args.end(), {"-l", log.string()});
  return RunTool(args, tool_timeout, "pg_ctl start");
}

Status LocalPostgres::Stop(const std::string& mode, seconds timeout) {
  {
    MutexLock lock(connection_mutex_);
    connection_.reset();
  }
  // Signalled and awaited here rather than by `pg_ctl stop`: the postmaster is our child (we
  // are its subreaper), and when something else kills it — the fence — only we can reap it;
  // pg_ctl would wait out its whole timeout on the zombie.
  int signal = SIGINT;  // fast
  if (mode == "smart") {
    signal = SIGTERM;
  } else if (mode == "immediate") {
    signal = SIGQUIT;
  } else if (mode != "fast") {
    return Error::Invalid("unknown shutdown mode " + mode);
  }
  auto pid = PostmasterPid();
  if (!pid) {
    return OkStatus();
  }
  if (signal != SIGQUIT && !config_->postgresql.before_stop.empty()) {
    // Patroni's before_stop: the operator's last word before a clean stop (say, to pause a
    // consumer); its failure is logged and the stop goes on.
    auto words = SplitCommandLine(config_->postgresql.before_stop);
    if (words.ok() && !words->empty()) {
      auto ran = RunProgram(*words, timeout);
      if (ran.exit_code != 0) {
        PGHA_LOG_WARN("before_stop {} returned {}: {}", config_->postgresql.before_stop,
                      ran.exit_code, std::string(Trim(ran.output)));
      }
    }
  }
  if (::kill(*pid, signal) != 0 && errno != ESRCH) {
    return Error::Unavailable(
        fmt::format("cannot signal postmaster {}: {}", *pid, strerror(errno)));
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (PostmasterAlive()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error::Timeout(
          fmt::format("PostgreSQL did not stop within {} s ({} shutdown)", timeout.count(), mode));
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return OkStatus();
}

Status LocalPostgres::WritePgpass() const {
  const auto& pg = config_->postgresql;
  if (pg.pgpass.empty()) {
    return OkStatus();
  }
  // .pgpass escapes ':' and '\' with a backslash.
  auto field = [](const std::string& value) {
    std::string out;
    for (char c : value) {
      if (c == ':' || c == '\\') out += '\\';
      out += c;
    }
    return out;
  };
  std::string text;
  std::vector<const config::PgUser*> users = {&pg.superuser, &pg.replication};
  if (pg.rewind) users.push_back(&*pg.rewind);
  for (const auto* user : users) {
    if (!user->username.empty() && !user->password.empty()) {
      text += "*:*:*:" + field(user->username) + ":" + field(user->password) + "\n";
    }
  }
  return WriteFile(pg.pgpass, text, fs::perms::owner_read | fs::perms::owner_write);
}

Status LocalPostgres::RunPrePromote() {
  const std::string& command = config_->postgresql.pre_promote;
  if (command.empty()) {
    return OkStatus();
  }
  auto words = SplitCommandLine(command);
  if (!words.ok() || words->empty()) {
    return Error::Invalid("postgresql.pre_promote: '" + command + "' is not a command");
  }
  PGHA_LOG_INFO("running pre_promote script {}", command);
  auto ran = RunProgram(*words, seconds(config_->postgresql.pg_ctl_timeout));
  if (ran.exit_code != 0) {
    return Error::Unavailable(fmt::format("pre_promote script {} returned {}{}: {}", command,
                                          ran.exit_code, ran.timed_out ? " (timed out)" : "",
                                          std::string(Trim(ran.output))));
  }
  return OkStatus();
}

Status LocalPostgres::Promote(seconds timeout) {
  // pg_ctl waits for the promotion by looking at the control file every 100 ms (its default
  // since PostgreSQL 10), and every client of the write port waits on that look: signal the
  // promotion only (-W), then ask the server itself every 10 ms, on the connection the agent
  // already holds (a new login costs tens of milliseconds).
  PGHA_RETURN_IF_ERROR(RunTool({Bin("pg_ctl"), "promote", "-W", "-D", config_->postgresql.data_dir},
                               seconds(30), "pg_ctl promote"));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(connection_mutex_);
  std::string last_error = "no answer";
  while (std::chrono::steady_clock::now() < deadline) {
    if (!connection_ || !connection_->ok()) {
      connection_.reset();
      auto opened = Connect();
      if (opened.ok()) {
        connection_ = std::move(opened).value();
      } else {
        last_error = opened.error().message();
      }
    }
    if (connection_ && connection_->ok()) {
      auto rows = connection_->Query("SELECT pg_is_in_recovery()");
      if (rows.ok() && !rows->empty() && (*rows)[0][0] == std::optional<std::string>("f")) {
        return OkStatus();
      }
      if (!rows.ok()) {
        last_error = rows.error().message();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Error::Timeout(
      fmt::format("pg_ctl promote: the server was still in recovery after {} s ({})",
                  timeout.count(), last_error));
}

Status LocalPostgres::Checkpoint() {
  MutexLock lock(connection_mutex_);
  auto conn = Connect();
  if (!conn.ok()) {
    return conn.error();
  }
  return (*conn)->Execute("CHECKPOINT");
}

void LocalPostgres::SetSynchronousStandbyNames(std::optional<std::string> value) {
  MutexLock lock(connection_mutex_);
  synchronous_standby_names_ = std::move(value);
}

Status LocalPostgres::Reload() {
  return RunTool({Bin("pg_ctl"), "reload", "-D", config_->postgresql.data_dir}, seconds(30),
                 "pg_ctl reload");
}

Status LocalPostgres::CreateRoles() {
  auto conn = Connect();
  if (!conn.ok()) {
    return conn.error();
  }
  const auto& pg = config_->postgresql;
  auto& c = **conn;
  if (!pg.superuser.password.empty()) {
    PGHA_RETURN_IF_ERROR(
        c.Execute(fmt::format("ALTER ROLE {} WITH PASSWORD {}", QuoteIdent(pg.superuser.username),
                              QuoteLiteral(pg.superuser.password))));
  }
  auto create = [&c](const std::string& name, const std::string& password,
                     const std::string& options) -> Status {
    auto exists = c.Query("SELECT 1 FROM pg_roles WHERE rolname = $1", {name});
    if (!exists.ok()) {
      return exists.error();
    }
    std::string verb = exists->empty() ? "CREATE" : "ALTER";
    std::string sql = fmt::format("{} ROLE {} WITH LOGIN {}", verb, QuoteIdent(name), options);
    if (!password.empty()) {
      sql += " PASSWORD " + QuoteLiteral(password);
    }
    return c.Execute(sql);
  };
  if (pg.replication.username != pg.superuser.username) {
    PGHA_RETURN_IF_ERROR(create(pg.replication.username, pg.replication.password, "REPLICATION"));
  }
  if (pg.rewind && pg.rewind->username != pg.superuser.username) {
    PGHA_RETURN_IF_ERROR(create(pg.rewind->username, pg.rewind->password, ""));
    // What pg_rewind needs from a non-superuser (PostgreSQL's documentation).
    for (const char* fn :
         {"pg_catalog.pg_ls_dir(text, boolean, boolean)", "pg_catalog.pg_stat_file(text, boolean)",
          "pg_catalog.pg_read_binary_file(text)",
          "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)"}) {
      PGHA_RETURN_IF_ERROR(c.Execute(
          fmt::format("GRANT EXECUTE ON FUNCTION {} TO {}", fn, QuoteIdent(pg.rewind->username))));
    }
  }
  return OkStatus();
}

std::string LocalPostgres::LocalUrl() const {
  const auto& pg = config_->postgresql;
  std::string host = pg.use_unix_socket ? SocketDirectory() : ListenHost(pg);
  if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  } else {
    host = PercentEncode(host);
  }
  return fmt::format("postgres://{}@{}:{}/{}", PercentEncode(pg.superuser.username), host,
                     pg.listen_address.port, PercentEncode(pg.database));
}

Status LocalPostgres::RunPostBootstrap() {
  const std::string& command = config_->bootstrap.post_bootstrap;
  if (command.empty()) {
    return OkStatus();
  }
  auto words = SplitCommandLine(command);
  if (!words.ok()) {
    return Error::Invalid("bootstrap.post_bootstrap: " + words.error().message());
  }
  // Patroni's contract: the script gets the superuser's connection URL as its last argument,
  // the password out of band, and commits that do not wait for standbys not there yet.
  std::vector<std::string> argv = std::move(words).value();
  argv.push_back(LocalUrl());
  std::map<std::string, std::string> env = {{"PGOPTIONS", "-c synchronous_commit=local"}};
  if (!config_->postgresql.superuser.password.empty()) {
    env["PGPASSWORD"] = config_->postgresql.superuser.password;
  }
  PGHA_LOG_INFO("running post_bootstrap: {}", command);
  auto result = RunProgram(argv, seconds(3600), env);
  if (result.exit_code != 0) {
    return Error::Unavailable(fmt::format("post_bootstrap script {} returned {}{}: {}", command,
                                          result.exit_code, result.timed_out ? " (timed out)" : "",
                                          std::string(Trim(result.output))));
  }
  return OkStatus();
}

Status LocalPostgres::CreateBootstrapUsers() {
  auto users = config_->bootstrap.raw.find("users");
  if (users == config_->bootstrap.raw.end() || !users->is_object() || users->empty()) {
    return OkStatus();
  }
  auto conn = Connect();
  if (!conn.ok()) {
    return conn.error();
  }
  const auto& pg = config_->postgresql;
  for (const auto& [name, spec] : users->items()) {
    if (name == pg.superuser.username || name == pg.replication.username ||
        (pg.rewind && name == pg.rewind->username)) {
      continue;  // Patroni leaves the roles it manages itself alone here
    }
    std::vector<std::string> options;
    std::string password;
    if (spec.is_object()) {
      if (auto it = spec.find("password"); it != spec.end() && it->is_string()) {
        password = it->get<std::string>();
      }
      if (auto it = spec.find("options"); it != spec.end() && it->is_array()) {
        for (const auto& option : *it) {
          if (!option.is_string() ||
              option.get<std::string>().find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_ ") != std::string::npos) {
            return Error::Invalid(
                fmt::format("bootstrap.users.{}.options: '{}' is not a role option (e.g. createdb)",
                            name, option.dump()));
          }
          options.push_back(ToUpper(option.get<std::string>()));
        }
      }
    }
    if (std::find(options.begin(), options.end(), "LOGIN") == options.end() &&
        std::find(options.begin(), options.end(), "NOLOGIN") == options.end()) {
      options.push_back("LOGIN");
    }
    auto exists = (*conn)->Query("SELECT 1 FROM pg_roles WHERE rolname = $1", {name});
    if (!exists.ok()) {
      return exists.error();
    }
    std::string sql =
        fmt::format("{} ROLE {} WITH", exists->empty() ? "CREATE" : "ALTER", QuoteIdent(name));
    for (const auto& option : options) {
      sql += " " + option;
    }
    if (!password.empty()) {
      sql += " PASSWORD " + QuoteLiteral(password);
    }
    PGHA_RETURN_IF_ERROR((*conn)->Execute(sql));
  }
  return OkStatus();
}

Result<std::string> LocalPostgres::MoveDataDirectoryAside() {
  fs::path dir(config_->postgresql.data_dir);
  std::error_code ec;
  if (!fs::exists(dir, ec) || fs::is_empty(dir, ec)) {
    return std::string();
  }
  // Patroni's name for it: data_dir_YYYY-MM-DD-HH-MM-SS.
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d-%H-%M-%S", &utc);
  fs::path target = dir.string() + "_" + stamp;
  fs::rename(dir, target, ec);
  if (ec) {
    return Error::Unavailable(
        fmt::format("cannot move {} to {}: {}", dir.string(), target.string(), ec.message()));
  }
  return target.string();
}

std::vector<std::string> LocalPostgres::BasebackupArguments(const json& options) {
  // Patroni's rules: these would break what pgha relies on (the data directory, streamed WAL,
  // a plain format, the source), so they are logged and left out rather than passed on.
  static const std::set<std::string> kNotAllowed = {
      "pgdata",   "format", "wal-method", "xlog-method", "gzip",     "version",
      "compress", "dbname", "host",       "port",        "username", "password"};
  std::vector<std::string> argv;
  auto add = [&argv](const std::string& name, const std::optional<std::string>& value) {
    if (kNotAllowed.count(name)) {
      PGHA_LOG_ERROR("postgresql.basebackup: {} option for pg_basebackup is not allowed", name);
      return;
    }
    argv.push_back("--" + name + (value ? "=" + *value : ""));
  };
  auto text = [](const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  if (options.is_object()) {
    for (const auto& [name, value] : options.items()) {
      if (!value.is_null() && !(value.is_boolean() && !value.get<bool>())) {
        add(name, text(value));
      }
    }
  } else if (options.is_array()) {
    for (const auto& option : options) {
      if (option.is_string()) {
        add(option.get<std::string>(), std::nullopt);
      } else if (option.is_object() && option.size() == 1) {
        add(option.begin().key(), text(option.begin().value()));
      } else {
        PGHA_LOG_ERROR("postgresql.basebackup: '{}' is neither a flag nor one key: value",
                       option.dump());
      }
    }
  }
  return argv;
}

Status LocalPostgres::CreateReplica(const model::Member* source, std::vector<std::string> methods) {
  const auto& pg = config_->postgresql;
  if (methods.empty()) {
    methods = pg.create_replica_methods;
  }
  if (methods.empty()) {
    methods = {"basebackup"};
  }
  if (source == nullptr) {
    // Without a member to copy from only a restore from a backup can do it.
    std::erase_if(methods, [&pg](const std::string& m) { return !pg.MethodWorksWithoutLeader(m); });
    if (methods.empty()) {
      return Error::Unavailable("no replica creation method works without a leader");
    }
  }
  Status last = Error::Unavailable("no replica creation method was tried");
  for (const auto& method : methods) {
    if (method == "basebackup") {
      if (source == nullptr) {
        continue;
      }
      if (source->host().empty()) {
        last = Error::Invalid(
            "basebackup needs a host to copy from; a standby cluster fed by its archive alone "
            "lists a restore method in standby_cluster.create_replica_methods");
        PGHA_LOG_ERROR("creating the replica with basebackup failed: {}", last.error().message());
        continue;
      }
      last = Basebackup(*source);
    } else {
      last = RunReplicaMethod(method, source);
    }
    if (last.ok()) {
      PGHA_LOG_INFO("replica has been created using {}", method);
      return AdoptRestoredDataDirectory();
    }
    PGHA_LOG_ERROR("creating the replica with {} failed: {}", method, last.error().message());
  }
  return last;
}

Status LocalPostgres::RunReplicaMethod(const std::string& method, const model::Member* source) {
  const auto& pg = config_->postgresql;
  json options = pg.MethodOptions(method);
  if (!(options.contains("keep_data") &&
        model::JsonAsBool(options.at("keep_data")).value_or(false))) {
    // Gone altogether, as Patroni leaves it: a restore script may insist on creating the
    // directory itself (copytree does). A mount point cannot go; it is emptied instead.
    std::error_code ec;
    fs::remove_all(pg.data_dir, ec);
    if (ec && fs::exists(pg.data_dir)) {
      PGHA_RETURN_IF_ERROR(RemoveDataDirectory());
    }
  } else {
    PGHA_LOG_INFO("leaving the data directory as it is (keep_data)");
  }
  std::string command = method;
  if (auto it = options.find("command"); it != options.end() && it->is_string()) {
    command = it->get<std::string>();
    options.erase("command");
  }
  auto words = SplitCommandLine(command);
  if (!words.ok() || words->empty()) {
    return Error::Invalid(
        fmt::format("postgresql.{}.command: '{}' is not a command", method, command));
  }
  bool no_params =
      options.contains("no_params") && model::JsonAsBool(options.at("no_params")).value_or(false);
  std::vector<std::string> argv = std::move(words).value();
  std::map<std::string, std::string> env;
  if (no_params) {
    for (const char* key : {"no_params", "no_master", "no_leader", "keep_data"}) {
      options.erase(key);
    }
  } else {
    // Patroni's contract with a method's script: every option as --name=value, and the scope,
    // the role, the data directory and how to reach the source (its password out of band).
    options["scope"] = config_->scope;
    options["role"] = "replica";
    options["datadir"] = pg.data_dir;
    options["connstring"] =
        source && !source->host().empty()
            ? MemberConninfo(*source, pg.replication, pg.database, PasswordIn::kEnvironment)
            : "";
  }
  if (source && !pg.replication.password.empty()) {
    env["PGPASSWORD"] = pg.replication.password;
  }
  for (const auto& [name, value] : options.items()) {
    argv.push_back("--" + name + "=" +
                   (value.is_string() ? value.get<std::string>() : value.dump()));
  }
  PGHA_LOG_INFO("creating replica with {}: {}", method, command);
  auto result = RunProgram(argv, seconds(86400), env);
  if (result.exit_code != 0) {
    return Error::Unavailable(fmt::format("{} exited with code {}{}: {}", command, result.exit_code,
                                          result.timed_out ? " (timed out)" : "",
                                          std::string(Trim(result.output))));
  }
  if (!DataInitialized()) {
    return Error::Unavailable(
        fmt::format("{} succeeded but left no data directory in {}", command, pg.data_dir));
  }
  return OkStatus();
}

Status LocalPostgres::Basebackup(const model::Member& leader) {
  const auto& repl = config_->postgresql.replication;
  std::error_code ec;
  fs::create_directories(config_->postgresql.data_dir, ec);
  fs::permissions(config_->postgresql.data_dir, fs::perms::owner_all, ec);
  std::string dbname = MemberConninfo(leader, repl, "", PasswordIn::kEnvironment) +
                       " application_name=" + QuoteConninfoValue(config_->name);
  PGHA_LOG_INFO("creating replica from {} with pg_basebackup", leader.name);
  // Progress goes to the log, at most once every few seconds.
  auto last = std::chrono::steady_clock::now() - seconds(10);
  auto progress = [&last](const std::string& line) {
    auto now = std::chrono::steady_clock::now();
    if (now - last >= seconds(5)) {
      PGHA_LOG_INFO("pg_basebackup: {}", Trim(line));
      last = now;
    }
  };
  std::vector<std::string> argv = {Bin("pg_basebackup"),
                                   "-D",
                                   config_->postgresql.data_dir,
                                   "-X",
                                   "stream",
                                   "-c",
                                   "fast",
                                   "--progress",
                                   "--no-password",
                                   "-d",
                                   dbname};
  auto options = BasebackupArguments(config_->postgresql.MethodOptions("basebackup"));
  argv.insert(argv.end(), options.begin(), options.end());
  auto result = RunProgram(argv, seconds(86400), {{"PGPASSWORD", repl.password}}, "", progress);
  if (result.exit_code != 0) {
    return Error::Unavailable(fmt::format("pg_basebackup failed{}: {}",
                                          result.timed_out ? " (timed out)" : "",
                                          std::string(Trim(result.output))));
  }
  auto lines = SplitAndTrim(result.output, '\r');
  PGHA_LOG_INFO("pg_basebackup: {}", lines.empty() ? "done" : lines.back());
  return OkStatus();
}

Status LocalPostgres::CrashRecover() {
  auto state = ControlState();
  if (state == "shut down" || state == "shut down in recovery") {
    return OkStatus();
  }
  PGHA_LOG_INFO("data directory state is '{}'; running crash recovery in single-user mode", state);
  // A single-user server refuses standby mode: a node killed while starting as a replica still
  // has standby.signal. Whoever starts it next writes the signal files again (as Patroni does).
  std::error_code ec;
  fs::remove(fs::path(config_->postgresql.data_dir) / "standby.signal", ec);
  fs::remove(fs::path(config_->postgresql.data_dir) / "recovery.signal", ec);
  auto result = RunProgram({Bin("postgres"), "--single", "-D", config_->postgresql.data_dir, "-c",
                            "archive_mode=off", "postgres"},
                           seconds(600), {}, "");
  if (result.exit_code != 0) {
    return Error::Unavailable("single-user crash recovery failed: " +
                              std::string(Trim(result.output)));
  }
  return OkStatus();
}

Status LocalPostgres::Rewind(const model::Member& leader) {
  PGHA_RETURN_IF_ERROR(CrashRecover());
  const auto& pg = config_->postgresql;
  // pg_rewind compares checkpoint timelines: until the new leader's first checkpoint after
  // promotion it still shows the old timeline, pg_rewind says "no rewind required", and the
  // node can never follow. Wait for that checkpoint (Patroni's checkpoint_after_promote).
  {
    std::string check = MemberConninfo(leader, pg.superuser, pg.database, PasswordIn::kConninfo) +
                        " connect_timeout=3";
    auto conn = Connection::Open(check);
    if (conn.ok()) {
      auto rows = (*conn)->Query("SELECT timeline_id FROM pg_control_checkpoint()");
      auto local = ParseInt64(ControlData("Latest checkpoint's TimeLineID"));
      if (rows.ok() && !rows->empty() && rows->front()[0] && local) {
        auto source = ParseInt64(*rows->front()[0]);
        if (source && *source <= *local) {
          return Error::Unavailable(fmt::format(
              "leader {} has not checkpointed on its new timeline yet (timeline {} <= ours {})",
              leader.name, *source, *local));
        }
      }
    }
  }
  const config::PgUser& user = pg.rewind ? *pg.rewind : pg.superuser;
  std::string source = MemberConninfo(leader, user, pg.database, PasswordIn::kEnvironment);
  PGHA_LOG_INFO("running pg_rewind from {}", leader.name);
  return RunTool({Bin("pg_rewind"), "-D", pg.data_dir, "--source-server=" + source}, seconds(3600),
                 "pg_rewind", {{"PGPASSWORD", user.password}});
}

Status LocalPostgres::RemoveDataDirectory() {
  std::error_code ec;
  if (!fs::exists(config_->postgresql.data_dir, ec)) {
    return OkStatus();
  }
  for (const auto& entry : fs::directory_iterator(config_->postgresql.data_dir, ec)) {
    fs::remove_all(entry.path(), ec);
  }
  return ec ? Status(Error::Unavailable("cannot empty the data directory: " + ec.message()))
            : OkStatus();
}

Status LocalPostgres::AdvanceLogicalSlot(const model::ReplicationSlot& slot, uint64_t position) {
  // A logical slot can be advanced only from its own database.
  auto conn = Connection::Open(LocalConninfo() + " dbname=" + QuoteConninfoValue(slot.database));
  if (!conn.ok()) {
    return conn.error();
  }
  return (*conn)->Execute("SELECT pg_replication_slot_advance($1, $2::pg_lsn)",
                          {slot.name, Lsn(position).ToString()});
}

Result<std::map<std::string, std::string>> LocalPostgres::ReadLeaderSlotStates(
    const model::Member& leader, const std::vector<std::string>& names) {
  const auto& pg = config_->postgresql;
  // The state files are read over SQL, as Patroni reads them: with the rewind user's rights
  // (pg_read_binary_file), else the superuser's.
  const config::PgUser& user = pg.rewind ? *pg.rewind : pg.superuser;
  auto conn = Connection::Open(MemberConninfo(leader, user, pg.database, PasswordIn::kConninfo) +
                               " connect_timeout=3 options='-c statement_timeout=2000'");
  if (!conn.ok()) {
    return conn.error();
  }
  std::string list = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    list += (i ? "," : "") + QuoteIdent(names[i]);
  }
  list += "}";
  auto rows = (*conn)->Query(
      "SELECT slot_name, encode(pg_read_binary_file('pg_replslot/' || slot_name || '/state'), "
      "'hex') FROM pg_get_replication_slots() WHERE NOT pg_is_in_recovery() AND "
      "slot_type = 'logical' AND slot_name = ANY($1::text[])",
      {list});
  if (!rows.ok()) {
    return rows.error();
  }
  std::map<std::string, std::string> states;
  for (const auto& row : *rows) {
    if (row[0] && row[1]) {
      states[*row[0]] = *row[1];
    }
  }
  return states;
}

Status LocalPostgres::InstallSlotStates(const std::map<std::string, std::string>& hex_states) {
  if (PostmasterAlive()) {
    return Error::Unavailable("PostgreSQL must be stopped to install replication slots");
  }
  fs::path dir = fs::path(config_->postgresql.data_dir) / "pg_replslot";
  for (const auto& [name, hex] : hex_states) {
    std::string bytes;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    std::error_code ec;
    fs::path tmp = dir / (name + ".tmp");
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    PGHA_RETURN_IF_ERROR(
        WriteFile(tmp / "state", bytes, fs::perms::owner_read | fs::perms::owner_write));
    fs::remove_all(dir / name, ec);
    fs::rename(tmp, dir / name, ec);
    if (ec) {
      return Error::Unavailable(fmt::format("cannot install slot {}: {}", name, ec.message()));
    }
    PGHA_LOG_INFO("copied logical replication slot '{}' from the leader", name);
  }
  return OkStatus();
}

Result<std::vector<model::ReplicationSlot>> LocalPostgres::ListSlots() {
  MutexLock lock(connection_mutex_);
  if (!connection_) {
    return Error::Unavailable("not connected");
  }
  auto rows = connection_->Query(
      "SELECT slot_name, slot_type, coalesce(database, ''), coalesce(plugin, ''), "
      "(confirmed_flush_lsn - '0/0')::text FROM pg_replication_slots WHERE NOT temporary");
  if (!rows.ok()) {
    return rows.error();
  }
  std::vector<model::ReplicationSlot> slots;
  for (const auto& row : *rows) {
    std::optional<uint64_t> confirmed;
    if (row[4]) {
      confirmed = ParseUint64(*row[4]);
    }
    slots.push_back({row[0].value_or(""), row[1].value_or(""), row[2].value_or(""),
                     row[3].value_or(""), confirmed});
  }
  return slots;
}

Status LocalPostgres::ChangeSlots(const std::vector<std::string>& drop,
                                  const std::vector<model::ReplicationSlot>& create) {
  MutexLock lock(connection_mutex_);
  if (!connection_) {
    return Error::Unavailable("not connected");
  }
  Status result = OkStatus();
  for (const auto& name : drop) {
    // An active slot cannot be dropped; the next cycle tries again.
    auto dropped = connection_->Query(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE slot_name = $1 AND NOT active",
        {name});
    if (dropped.ok() && !dropped->empty()) {
      PGHA_LOG_INFO("dropped unknown replication slot '{}'", name);
    }
  }
  for (const auto& slot : create) {
    if (slot.type == "physical") {
      auto created = connection_->Execute(
          "SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS "
          "(SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
          {slot.name});
      if (!created.ok()) {
        result = created;
      }
      continue;
    }
    // A logical slot belongs to its database: it is created over a connection to that one.
    auto conn = Connection::Open(LocalConninfo() + " dbname=" + QuoteConninfoValue(slot.database));
    if (!conn.ok()) {
      PGHA_LOG_ERROR("cannot create logical replication slot '{}': {}", slot.name,
                     conn.error().message());
      result = conn.error();
      continue;
    }
    auto created = (*conn)->Execute(
        "SELECT pg_create_logical_replication_slot($1, $2) WHERE NOT EXISTS "
        "(SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
        {slot.name, slot.plugin});
    if (created.ok()) {
      PGHA_LOG_INFO("created logical replication slot '{}' (database {}, plugin {})", slot.name,
                    slot.database, slot.plugin);
    } else {
      PGHA_LOG_ERROR("failed to create logical replication slot '{}' plugin '{}': {}", slot.name,
                     slot.plugin, created.error().message());
      result = created;
    }
  }
  return result;
}

std::vector<model::HistoryEntry> LocalPostgres::TimelineHistory(int64_t timeline) const {
  std::vector<model::HistoryEntry> entries;
  fs::path file =
      fs::path(config_->postgresql.data_dir) / "pg_wal" / fmt::format("{:08X}.history", timeline);
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    auto parts = Split(line, '\t');
    if (parts.size() < 2) {
      continue;
    }
    auto tl = ParseInt64(Trim(parts[0]));
    auto lsn = Lsn::Parse(Trim(parts[1]));
    if (!tl || !lsn.ok()) {
      continue;
    }
    entries.push_back(
        {*tl, lsn->value(), parts.size() > 2 ? std::string(Trim(parts[2])) : "", {}, {}});
  }
  return entries;
}

}  // namespace pgha::postgres
