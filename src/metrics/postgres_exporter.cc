#include "metrics/postgres_exporter.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/files.h"
#include "common/log.h"
#include "postgres/connection.h"

namespace pgha::metrics {

namespace {

double SecondsSince(MonoTime start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class PostgresSession final : public DatabaseSession {
 public:
  explicit PostgresSession(std::unique_ptr<postgres::Connection> connection)
      : connection_(std::move(connection)) {}
  Result<postgres::ResultSet> Query(const std::string& sql, MonoTime deadline) override {
    return connection_->QueryWithColumns(sql, deadline);
  }
  bool ok() const override { return connection_->ok(); }
  std::string ServerAddress() const override { return connection_->ServerAddress(); }

 private:
  std::unique_ptr<postgres::Connection> connection_;
};

// Binds a session to the scrape's deadline for the collectors.
class DeadlineSource final : public QuerySource {
 public:
  DeadlineSource(DatabaseSession& session, MonoTime deadline)
      : session_(session), deadline_(deadline) {}
  Result<postgres::ResultSet> Query(const std::string& sql) override {
    return session_.Query(sql, deadline_);
  }

 private:
  DatabaseSession& session_;
  MonoTime deadline_;
};

Labels WithLabel(Labels labels, const std::string& name, const std::string& value) {
  labels.emplace_back(name, value);
  return labels;
}

void AddCollectorResult(MetricSet& out, const std::string& collector, double seconds,
                        bool success) {
  Labels name = {{"collector", collector}};
  out.Add("pg_scrape_collector_duration_seconds", MetricType::kGauge,
          "How long a collector took in the last scrape, in seconds", name, seconds);
  out.Add("pg_scrape_collector_success", MetricType::kGauge,
          "1 when a collector succeeded in the last scrape", name, success ? 1 : 0);
}

}  // namespace

SessionOpener PostgresSessions(std::string data_source,
                               std::chrono::milliseconds statement_timeout) {
  return [data_source = std::move(data_source),
          statement_timeout](MonoTime deadline) -> Result<std::unique_ptr<DatabaseSession>> {
    auto connection = postgres::Connection::Open(data_source, deadline, "pgha-exporter");
    if (!connection.ok()) {
      return connection.error();
    }
    auto setup = (*connection)
                     ->QueryWithColumns(fmt::format("SET DateStyle = ISO; SET TimeZone = UTC; "
                                                    "SET statement_timeout = {}",
                                                    statement_timeout.count()),
                                        deadline);
    if (!setup.ok()) {
      return setup.error();
    }
    return std::unique_ptr<DatabaseSession>(new PostgresSession(std::move(*connection)));
  };
}

Exporter::Exporter(ExporterOptions options, SessionOpener opener)
    : options_(std::move(options)), opener_(std::move(opener)) {}

bool Exporter::Enabled(const Collector& collector) const {
  switch (collector.group) {
    case CollectorGroup::kDefault:
      return options_.default_metrics;
    case CollectorGroup::kSettings:
      return options_.settings_metrics;
    case CollectorGroup::kCollector:
      return options_.disabled_collectors.count(collector.name) == 0;
  }
  return false;
}

std::vector<std::string> Exporter::EnabledCollectors() const {
  std::vector<std::string> names;
  for (const auto& collector : AllCollectors()) {
    if (Enabled(collector)) {
      names.push_back(collector.name);
    }
  }
  return names;
}

bool Exporter::Collect(MonoTime deadline, MetricSet& out, bool* any_error) {
  if (session_ == nullptr || !session_->ok()) {
    session_.reset();
    auto opened = opener_(deadline);
    if (!opened.ok()) {
      // Said once per different reason, not at every scrape.
      if (was_up_ || opened.error().message() != last_connect_error_) {
        PGHA_LOG_WARN("cannot reach PostgreSQL: {}", opened.error().message());
        last_connect_error_ = opened.error().message();
      }
      for (const auto& collector : AllCollectors()) {
        if (Enabled(collector)) {
          AddCollectorResult(out, collector.name, 0, false);
        }
      }
      return false;
    }
    session_ = std::move(*opened);
    last_connect_error_.clear();
  }
  Labels labels = WithLabel(options_.constant_labels, "server", session_->ServerAddress());
  // postgres_exporter 0.11 gives its named collectors' series no constant labels.
  Labels collector_labels = {{"server", session_->ServerAddress()}};
  for (const auto& collector : AllCollectors()) {
    if (!Enabled(collector)) {
      continue;
    }
    MonoTime start = std::chrono::steady_clock::now();
    Status status = Error::Unavailable("the session was lost earlier in this scrape");
    if (session_->ok()) {
      DeadlineSource source(*session_, deadline);
      MetricSet collected;
      status = collector.collect(
          source, collector.group == CollectorGroup::kCollector ? collector_labels : labels,
          collected);
      if (status.ok()) {
        out.Merge(collected);
      }
    }
    AddCollectorResult(out, collector.name, SecondsSince(start), status.ok());
    if (!status.ok()) {
      *any_error = true;
      if (session_->ok() || status.error().IsTimeout()) {
        PGHA_LOG_WARN("collector {}: {}", collector.name, status.error().message());
      }
    }
  }
  bool up = session_->ok();
  if (!up) {
    session_.reset();
  }
  return up;
}

std::string Exporter::Scrape(std::chrono::milliseconds timeout) {
  MonoTime start = std::chrono::steady_clock::now();
  MonoTime deadline = start + timeout;
  MetricSet out;
  bool up = false;
  bool any_error = true;
  uint64_t scrapes = 0;
  {
    if (mutex_.TryLockUntil(std::chrono::system_clock::now() + timeout)) {
      scrapes = ++scrapes_;
      any_error = false;
      try {
        up = Collect(deadline, out, &any_error);
      } catch (const std::exception& e) {
        // An answer the collectors did not expect fails this scrape only: the mutex is given
        // back below, so the next scrapes still run.
        PGHA_LOG_ERROR("scrape failed: {}", e.what());
        up = false;
      }
      if (!up) {
        any_error = true;
      }
      if (up && !was_up_) {
        PGHA_LOG_INFO("PostgreSQL answers again");
      }
      was_up_ = up;
      mutex_.unlock();
    } else {
      PGHA_LOG_WARN("a scrape still running kept this one from starting within {} ms",
                    timeout.count());
    }
  }
  const Labels& constant = options_.constant_labels;
  out.Add("pg_up", MetricType::kGauge,
          "1 when the last scrape reached PostgreSQL and it answered in time", constant,
          up ? 1 : 0);
  out.Add("pg_exporter_scrapes_total", MetricType::kCounter, "Scrapes of PostgreSQL so far",
          constant, static_cast<double>(scrapes));
  out.Add("pg_exporter_last_scrape_error", MetricType::kGauge,
          "1 when the last scrape had an error (a collector failed or the server did not answer)",
          constant, any_error ? 1 : 0);
  out.Add("pg_exporter_last_scrape_duration_seconds", MetricType::kGauge,
          "How long the last scrape of PostgreSQL took, in seconds", constant, SecondsSince(start));
  out.Add("pgha_exporter_build_info", MetricType::kGauge, "pgha-exporter's version, as a label",
          {{"version", options_.version}}, 1);
  out.Merge(ProcessMetrics());
  return out.Render();
}

std::chrono::milliseconds ScrapeTimeout(const std::optional<std::string>& announced,
                                        std::chrono::milliseconds maximum) {
  constexpr std::chrono::milliseconds kMargin{500};
  constexpr std::chrono::milliseconds kMinimum{100};
  std::chrono::milliseconds timeout = maximum;
  if (announced) {
    char* end = nullptr;
    double seconds = std::strtod(announced->c_str(), &end);
    if (end != announced->c_str() && *end == '\0' && seconds > 0 && seconds < 1e6) {
      timeout = std::min(timeout,
                         std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)) - kMargin);
    }
  }
  return std::max(timeout, kMinimum);
}

MetricSet ProcessMetrics() {
  MetricSet out;
  // /proc/self/stat: fields after the command name's closing parenthesis.
  std::string stat = ReadWholeFile("/proc/self/stat").value_or("");
  auto close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> values;
    std::string value;
    while (fields >> value) {
      values.push_back(value);
    }
    // Field numbers of proc(5), minus 3 for pid, comm and the state being values[0].
    auto field = [&](size_t number) { return std::stod(values.at(number - 3)); };
    if (values.size() > 21) {
      double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
      double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
      std::ifstream uptime_file("/proc/stat");
      double boot_time = 0;
      std::string key;
      while (uptime_file >> key) {
        if (key == "btime") {
          uptime_file >> boot_time;
          break;
        }
      }
      out.Add("process_cpu_seconds_total", MetricType::kCounter,
              "User and system CPU time spent, in seconds", {}, (field(14) + field(15)) / ticks);
      out.Add("process_virtual_memory_bytes", MetricType::kGauge, "Virtual memory size in bytes",
              {}, field(23));
      out.Add("process_resident_memory_bytes", MetricType::kGauge, "Resident memory size in bytes",
              {}, field(24) * page);
      out.Add("process_start_time_seconds", MetricType::kGauge,
              "Start time of the process since the epoch, in seconds", {},
              boot_time + field(22) / ticks);
    }
  }
  std::error_code error;
  double open_fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    ++open_fds;
  }
  out.Add("process_open_fds", MetricType::kGauge, "Open file descriptors", {}, open_fds);
  std::ifstream limits("/proc/self/limits");
  std::string line;
  while (std::getline(limits, line)) {
    auto read_soft_limit = [&](const std::string& prefix, const char* name, const char* help) {
      // The Go client reports "unlimited" as the largest uint64.
      constexpr double kUnlimited = 18446744073709551615.0;
      if (line.rfind(prefix, 0) != 0) {
        return;
      }
      std::istringstream rest(line.substr(prefix.size()));
      std::string soft;
      rest >> soft;
      out.Add(name, MetricType::kGauge, help, {},
              soft == "unlimited" ? kUnlimited : std::strtod(soft.c_str(), nullptr));
    };
    read_soft_limit("Max open files", "process_max_fds", "Maximum number of open file descriptors");
    read_soft_limit("Max address space", "process_virtual_memory_max_bytes",
                    "Maximum virtual memory available, in bytes");
  }
  return out;
}

}  // namespace pgha::metrics
