#include "router/stats.h"

#include <fmt/format.h>

#include "api/http/event_server.h"
#include "common/log.h"
#include "common/prometheus_text.h"

namespace pgha::router {
namespace {

using std::chrono::duration;

class MetricWriter {
 public:
  // Starts a family: HELP and TYPE once, then its samples.
  void Family(const std::string& name, const std::string& type, const std::string& help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void Sample(const std::string& name, const std::string& labels, double value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += "{" + labels + "}";
    }
    out_ += " " + FormatSampleValue(value) + "\n";
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string Label(const std::string& name, const std::string& value) {
  return name + "=\"" + EscapeLabelValue(value) + "\"";
}

// Per-listener counters: one family each, a sample per port.
void ListenerFamily(MetricWriter& w, const RouterView& v, const std::string& name,
                    const std::string& type, const std::string& help,
                    double ListenerStats::*field_double, int64_t ListenerStats::*field) {
  w.Family(name, type, help);
  for (const auto& [port, stats] : {std::pair{"write", &v.proxy.write}, {"read", &v.proxy.read}}) {
    double value = field != nullptr ? static_cast<double>(stats->*field) : stats->*field_double;
    w.Sample(name, Label("listener", port), value);
  }
}

void Counter(MetricWriter& w, const RouterView& v, const std::string& name, const std::string& help,
             int64_t ListenerStats::*field) {
  ListenerFamily(w, v, name, "counter", help, nullptr, field);
}

std::string Esc(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

std::string RenderMetrics(const RouterView& v) {
  MetricWriter w;
  ListenerFamily(w, v, "pgha_router_connections_active", "gauge",
                 "Client connections open (relayed or waiting for a backend).", nullptr,
                 &ListenerStats::active);
  Counter(w, v, "pgha_router_connections_total", "Client connections accepted.",
          &ListenerStats::total);
  Counter(w, v, "pgha_router_connections_refused_maxconn_total",
          "Clients refused because the listener had maxconn connections.",
          &ListenerStats::refused_maxconn);
  ListenerFamily(w, v, "pgha_router_connections_held", "gauge",
                 "Clients waiting for a target (no primary yet).", nullptr,
                 &ListenerStats::held_now);
  Counter(w, v, "pgha_router_connections_held_total", "Clients that had to wait for a target.",
          &ListenerStats::held_total);
  Counter(w, v, "pgha_router_hold_timeouts_total",
          "Held clients closed after connect_hold_timeout without a target.",
          &ListenerStats::hold_timeouts);
  ListenerFamily(w, v, "pgha_router_hold_seconds_total", "counter",
                 "Time held clients waited before they got a backend.",
                 &ListenerStats::hold_seconds_sum, nullptr);
  Counter(w, v, "pgha_router_rejected_no_replica_total",
          "Read clients refused because no replica was eligible (read_fallback: reject).",
          &ListenerStats::rejected_no_replica);
  Counter(w, v, "pgha_router_invalid_startup_total",
          "Clients whose first bytes were no PostgreSQL startup message.",
          &ListenerStats::invalid_openings);
  Counter(w, v, "pgha_router_backend_connect_errors_total",
          "Backend connections that were refused or timed out.", &ListenerStats::connect_errors);
  Counter(w, v, "pgha_router_logins_retried_total",
          "Logins taken to another server because the first failed before the client saw it.",
          &ListenerStats::retried);
  Counter(w, v, "pgha_router_closed_on_leader_change_total",
          "Write connections closed because their member lost the leader key.",
          &ListenerStats::closed_on_leader_change);
  Counter(w, v, "pgha_router_bytes_from_clients_total", "Bytes read from clients.",
          &ListenerStats::bytes_from_clients);
  Counter(w, v, "pgha_router_bytes_to_clients_total", "Bytes written to clients.",
          &ListenerStats::bytes_to_clients);

  w.Family("pgha_router_backend_connections_active", "gauge",
           "Connections open to each member, by listener.");
  for (const auto& [port, members] : v.proxy.members) {
    for (const auto& [member, stats] : members) {
      w.Sample("pgha_router_backend_connections_active",
               Label("listener", port) + "," + Label("member", member),
               static_cast<double>(stats.active));
    }
  }
  w.Family("pgha_router_backend_connections_total", "counter",
           "Connections made to each member, by listener.");
  for (const auto& [port, members] : v.proxy.members) {
    for (const auto& [member, stats] : members) {
      w.Sample("pgha_router_backend_connections_total",
               Label("listener", port) + "," + Label("member", member),
               static_cast<double>(stats.total));
    }
  }

  const auto& t = v.topology;
  w.Family("pgha_router_primary", "gauge",
           "1 for the member the write port sends new connections to.");
  if (t.routes.primary) {
    w.Sample("pgha_router_primary", Label("member", t.routes.primary->member), 1);
  }
  w.Family("pgha_router_replica", "gauge", "1 for each member the read port sends to.");
  for (const auto& reader : t.routes.readers) {
    w.Sample("pgha_router_replica", Label("member", reader.member), 1);
  }
  w.Family("pgha_router_writes_held", "gauge",
           "1 while the write port has no primary and holds new connections.");
  w.Sample("pgha_router_writes_held", "", t.routes.primary ? 0 : 1);
  w.Family("pgha_router_etcd_reachable", "gauge", "1 while etcd answers linearizable reads.");
  w.Sample("pgha_router_etcd_reachable", "", t.dcs_reachable ? 1 : 0);
  w.Family("pgha_router_retargets_total", "counter", "Changes of the write port's target.");
  w.Sample("pgha_router_retargets_total", "", static_cast<double>(t.primary_changes));
  w.Family("pgha_router_route_changes_total", "counter", "Changes of either port's targets.");
  w.Sample("pgha_router_route_changes_total", "", static_cast<double>(t.route_changes));
  w.Family("pgha_router_handover_notices_acknowledged_total", "counter",
           "Leaders' handover notices this router acknowledged in etcd (writes held).");
  w.Sample("pgha_router_handover_notices_acknowledged_total", "",
           static_cast<double>(t.handovers_acknowledged));
  w.Family("pgha_router_apply_delay_seconds", "summary",
           "From an etcd watch event to the routes it changed being applied.");
  w.Sample("pgha_router_apply_delay_seconds_sum", "", t.apply_delay_sum_seconds);
  w.Sample("pgha_router_apply_delay_seconds_count", "", static_cast<double>(t.apply_delay_count));
  w.Family("pgha_router_apply_delay_last_seconds", "gauge",
           "The delay of the last applied change.");
  w.Sample("pgha_router_apply_delay_last_seconds", "", t.last_apply_delay_seconds);
  w.Family("pgha_router_topology_age_seconds", "gauge",
           "Since the router last had the cluster from etcd (-1: never).");
  w.Sample("pgha_router_topology_age_seconds", "",
           t.cluster_loaded ? duration<double>(v.now - *t.cluster_loaded).count() : -1);
  w.Family("pgha_router_etcd_last_ok_age_seconds", "gauge",
           "Since etcd last answered a linearizable read (-1: never).");
  w.Sample("pgha_router_etcd_last_ok_age_seconds", "",
           t.last_dcs_ok ? duration<double>(v.now - *t.last_dcs_ok).count() : -1);
  const SessionModeStats& session = v.proxy.session;
  struct SessionFigure {
    const char* name;
    const char* type;
    const char* help;
    double value;
  };
  const SessionFigure session_figures[] = {
      {"pgha_router_session_clients", "gauge", "Session-mode clients open on the write port.",
       static_cast<double>(session.active)},
      {"pgha_router_session_logins_refused_total", "counter",
       "Session-mode logins refused (wrong password, unknown role, malformed login).",
       static_cast<double>(session.logins_refused)},
      {"pgha_router_session_moved_total", "counter",
       "Sessions carried to another server (a switchover, a failover).",
       static_cast<double>(session.moved)},
      {"pgha_router_session_pinned_closed_total", "counter",
       "Sessions closed because their state (a temporary table, LISTEN, ...) could not move.",
       static_cast<double>(session.pinned_closed)},
      {"pgha_router_session_transactions_lost_total", "counter",
       "Transactions whose server went away under them (the client got an error).",
       static_cast<double>(session.transactions_lost)},
      {"pgha_router_session_pause_timeouts_total", "counter",
       "Transactions cut because they ran past pause_timeout during a handover.",
       static_cast<double>(session.pause_timeouts)},
      {"pgha_router_session_pauses_total", "counter",
       "Times the sessions paused for a switchover or a handover.",
       static_cast<double>(session.pauses)},
      {"pgha_router_session_paused", "gauge", "1 while session-mode queries are held.",
       session.paused ? 1.0 : 0.0},
      {"pgha_router_session_queries_held_total", "counter",
       "Queries and logins that waited for a primary.", static_cast<double>(session.queries_held)},
      {"pgha_router_session_hold_seconds_total", "counter", "Time they waited, in all.",
       session.hold_seconds_sum},
      {"pgha_router_session_verifier_lookups_total", "counter",
       "Auth queries run to fetch a role's verifier.",
       static_cast<double>(session.verifier_lookups)},
      {"pgha_router_session_verifier_lookup_errors_total", "counter", "Auth queries that failed.",
       static_cast<double>(session.verifier_lookup_errors)},
  };
  for (const auto& figure : session_figures) {
    w.Family(figure.name, figure.type, figure.help);
    w.Sample(figure.name, "", figure.value);
  }
  w.Family("pgha_router_uptime_seconds", "gauge", "Since the router started.");
  w.Sample("pgha_router_uptime_seconds", "", duration<double>(v.now - v.started).count());
  return w.Take();
}

std::string RenderStatusPage(const RouterView& v) {
  const auto& r = v.topology.routes;
  std::string html =
      "<!DOCTYPE html><html><head><title>pgha-router</title>"
      "<meta http-equiv=\"refresh\" content=\"2\"></head><body><h1>pgha-router</h1>";
  html += fmt::format("<p>etcd: {}{}. Leader key: {}.</p>",
                      v.topology.dcs_reachable ? "answering" : "<b>not answering</b>",
                      r.from_dcs ? "" : " (routing by the members' REST API)",
                      r.leader.empty() ? "nobody" : Esc(r.leader));
  if (v.draining) {
    html += "<p><b>Draining: no new connections are accepted.</b></p>";
  }
  html +=
      "<table border=\"1\" cellpadding=\"4\"><tr><th>listener</th><th>target</th>"
      "<th>active</th><th>total</th><th>held now</th><th>held total</th>"
      "<th>hold timeouts</th><th>refused (maxconn)</th><th>connect errors</th></tr>";
  auto row = [&](const char* port, const ListenerStats& s, const std::string& target) {
    html += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td></tr>",
        port, target, s.active, s.total, s.held_now, s.held_total, s.hold_timeouts,
        s.refused_maxconn, s.connect_errors);
  };
  std::string write_target =
      r.primary
          ? Esc(r.primary->member + " " + r.primary->host + ":" + std::to_string(r.primary->port))
          : "<b>held</b>: " + Esc(r.no_primary_reason);
  std::string read_target;
  for (const auto& reader : r.readers) {
    read_target += (read_target.empty() ? "" : ", ") +
                   Esc(reader.member + " " + reader.host + ":" + std::to_string(reader.port));
  }
  if (r.reads_on_primary) {
    read_target += " (fallback to the primary)";
  }
  row("write", v.proxy.write, write_target);
  row("read", v.proxy.read, read_target.empty() ? "<b>none</b>" : read_target);
  html +=
      "</table><h2>Connections per member</h2><table border=\"1\" cellpadding=\"4\">"
      "<tr><th>listener</th><th>member</th><th>active</th><th>total</th></tr>";
  for (const auto& [port, members] : v.proxy.members) {
    for (const auto& [member, stats] : members) {
      html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", port,
                          Esc(member), stats.active, stats.total);
    }
  }
  html += fmt::format(
      "</table><p>Write-port re-targets: {}. Last etcd event to applied: {:.1f} ms.</p>"
      "<p><a href=\"/metrics\">/metrics</a> &middot; <a href=\"/health\">/health</a></p>"
      "</body></html>\n",
      v.topology.primary_changes, v.topology.last_apply_delay_seconds * 1000);
  return html;
}

struct StatsServer::Impl {
  config::HostPort address;
  Snapshot snapshot;
  std::unique_ptr<api::http::EventHttpServer> server;
};

StatsServer::StatsServer(config::HostPort address, Snapshot snapshot)
    : impl_(std::make_unique<Impl>()) {
  impl_->address = std::move(address);
  impl_->snapshot = std::move(snapshot);
}

StatsServer::~StatsServer() { Stop(); }

Status StatsServer::Start() {
  api::http::ServerOptions options;
  options.name = "router stats";
  options.host = impl_->address.host;
  options.port = impl_->address.port;
  options.handler_threads = 2;
  options.limits.max_body_bytes = 0;
  const auto& text = api::http::TypedResponse;
  auto handler = [this](const api::Request& request) {
    bool read = request.method == "GET" || request.method == "HEAD";
    if (!read) {
      return text(405, "only GET and HEAD\n", "text/plain; charset=utf-8");
    }
    if (request.path == "/metrics") {
      return text(200, RenderMetrics(impl_->snapshot()),
                  "text/plain; version=0.0.4; charset=utf-8");
    }
    if (request.path == "/health") {
      RouterView view = impl_->snapshot();
      return view.draining ? text(503, "draining\n", "text/plain; charset=utf-8")
                           : text(200, "ok\n", "text/plain; charset=utf-8");
    }
    if (request.path == "/") {
      return text(200, RenderStatusPage(impl_->snapshot()), "text/html; charset=utf-8");
    }
    return text(404, "404 page not found\n", "text/plain; charset=utf-8");
  };
  auto on_error = [](int status, const std::string& message) {
    return text(status, message + "\n", "text/plain; charset=utf-8");
  };
  impl_->server =
      std::make_unique<api::http::EventHttpServer>(std::move(options), handler, on_error);
  if (auto started = impl_->server->Start(); !started.ok()) {
    impl_->server.reset();
    return started;
  }
  PGHA_LOG_INFO("stats on {}:{} (/, /metrics, /health)", impl_->address.host,
                impl_->server->port());
  return OkStatus();
}

void StatsServer::Stop() {
  if (impl_ && impl_->server) {
    impl_->server->Stop();
    impl_->server.reset();
  }
}

int StatsServer::port() const { return impl_->server ? impl_->server->port() : 0; }

}  // namespace pgha::router
