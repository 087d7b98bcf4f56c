#include "cli/views.h"

#include <cmath>
#include <map>
#include <set>

#include "config/yaml_json.h"
#include "model/cluster_view.h"

namespace pgha::cli {

using nlohmann::ordered_json;

namespace {

std::string TitleCase(std::string role) {
  bool start = true;
  for (char& c : role) {
    if (c == '_') {
      c = ' ';
    }
    c = start ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
              : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    start = c == ' ';
  }
  return role;
}

bool EndsWithLeader(const ordered_json& member) {
  std::string role = member.value("role", "");
  return role.size() >= 6 && role.compare(role.size() - 6, 6, "leader") == 0;
}

// Leader first, then each member under the one it replicates from, indented with "+ ".
void AppendTopology(const ordered_json& node, int level,
                    std::map<std::string, std::vector<ordered_json>>& children,
                    std::vector<ordered_json>& out) {
  ordered_json member = node;
  std::string name = member.value("name", "");
  if (level > 0) {
    member["name"] = std::string(static_cast<size_t>((level - 1) * 2), ' ') + "+ " + name;
  }
  if (!name.empty()) {
    out.push_back(member);
  }
  auto it = children.find(name);
  if (it == children.end()) {
    return;
  }
  auto kids = std::move(it->second);
  children.erase(it);  // a replicatefrom cycle cannot recurse forever
  for (const auto& child : kids) {
    AppendTopology(child, level + 1, children, out);
  }
}

std::vector<ordered_json> TopologySort(const ordered_json& members) {
  ordered_json leader = {{"name", ""}};
  std::set<std::string> replicas;
  for (const auto& m : members) {
    if (EndsWithLeader(m)) {
      leader = m;
    } else {
      replicas.insert(m.value("name", ""));
    }
  }
  std::map<std::string, std::vector<ordered_json>> children;
  for (const auto& m : members) {
    if (EndsWithLeader(m)) {
      continue;
    }
    std::string parent;
    if (auto tags = m.find("tags"); tags != m.end() && tags->is_object()) {
      auto from = tags->find("replicatefrom");
      if (from != tags->end() && from->is_string()) {
        parent = from->get<std::string>();
      }
    }
    if (parent.empty() || parent == m.value("name", "") || !replicas.count(parent)) {
      parent = leader.value("name", "");
    }
    children[parent].push_back(m);
  }
  std::vector<ordered_json> out;
  AppendTopology(leader, 0, children, out);
  return out;
}

}  // namespace

Table MembersTable(const model::ClusterSnapshot& cluster, const std::string& cluster_name,
                   bool extended, bool topology) {
  ordered_json view = model::ClusterAsJson(cluster);
  const ordered_json& members = view["members"];
  Table table;
  table.columns = {"Cluster", "Member", "Host", "Role", "State", "TL", "Lag in MB"};
  table.align = {{"Lag in MB", 'r'}, {"TL", 'r'}};
  table.title = " Cluster: " + cluster_name + " ";

  std::vector<const ordered_json*> with_host;
  for (const auto& m : members) {
    if (m.contains("host")) {
      with_host.push_back(&m);
    }
  }
  auto any_has = [&](const char* key) {
    for (const auto* m : with_host) {
      auto it = m->find(key);
      if (it != m->end() && !it->is_null() && *it != false && *it != "" &&
          !(it->is_object() && it->empty())) {
        return true;
      }
    }
    return false;
  };
  bool pending = extended || any_has("pending_restart");
  bool scheduled = extended || any_has("scheduled_restart");
  bool tags = extended || any_has("tags");
  if (pending) table.columns.push_back("Pending restart");
  if (scheduled) table.columns.push_back("Scheduled restart");
  if (tags) table.columns.push_back("Tags");

  // host:port when a port is not 5432 or two members share a host, as patronictl decides.
  std::set<std::string> hosts;
  bool append_port = false;
  for (const auto* m : with_host) {
    hosts.insert((*m)["host"].get<std::string>());
    append_port = append_port || (m->contains("port") && (*m)["port"] != 5432);
  }
  append_port = append_port || hosts.size() < with_host.size();

  std::vector<ordered_json> ordered =
      topology ? TopologySort(members) : std::vector<ordered_json>(members.begin(), members.end());
  for (const auto& m : ordered) {
    std::vector<Cell> row;
    row.push_back(cluster_name);
    row.push_back(m["name"]);
    std::string host = m.value("host", "");
    if (append_port && !host.empty() && m.contains("port")) {
      host += ":" + std::to_string(m["port"].get<int>());
    }
    row.push_back(host);
    row.push_back(TitleCase(m.value("role", "")));
    row.push_back(m.value("state", ""));
    row.push_back(m.contains("timeline") ? m["timeline"] : Cell(""));
    Cell lag = m.contains("lag") ? m["lag"] : Cell("");
    if (lag.is_number()) {
      // Python's round(): halves to even.
      lag = static_cast<int64_t>(std::nearbyint(lag.get<double>() / 1024 / 1024));
    }
    row.push_back(lag);
    if (pending) {
      row.push_back(m.contains("pending_restart") && m["pending_restart"] == true ? "*" : "");
    }
    if (scheduled) {
      std::string value;
      if (auto it = m.find("scheduled_restart"); it != m.end() && it->is_object()) {
        value = it->value("schedule", "");
        if (it->contains("postgres_version")) {
          value += " if version < " + CellText((*it)["postgres_version"]);
        }
      }
      row.push_back(value);
    }
    if (tags) {
      auto it = m.find("tags");
      row.push_back(it != m.end() && it->is_object() && !it->empty() ? *it : Cell(""));
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

std::vector<std::string> ServiceInfo(const model::ClusterSnapshot& cluster) {
  ordered_json view = model::ClusterAsJson(cluster);
  std::vector<std::string> lines;
  if (view.value("pause", false)) {
    lines.push_back("Maintenance mode: on");
  }
  if (view.contains("scheduled_switchover")) {
    const auto& s = view["scheduled_switchover"];
    std::string info = "Switchover scheduled at: " + s.value("at", "");
    for (const char* key : {"from", "to"}) {
      if (s.contains(key)) {
        std::string label(key);
        info +=
            "\n" + std::string(24 - label.size(), ' ') + label + ": " + s[key].get<std::string>();
      }
    }
    lines.push_back(info);
  }
  return lines;
}

Table HistoryTable(const model::ClusterSnapshot& cluster) {
  Table table;
  table.columns = {"TL", "LSN", "Reason", "Timestamp", "New Leader"};
  table.align = {{"TL", 'r'}, {"LSN", 'r'}};
  for (const auto& entry : cluster.history) {
    table.rows.push_back({entry.timeline, entry.lsn, entry.reason, entry.timestamp.value_or(""),
                          entry.new_leader.value_or("")});
  }
  return table;
}

const model::Member* SelectMember(const model::ClusterSnapshot& cluster, const std::string& role,
                                  const std::string& name) {
  auto matches = [&](const model::Member& m) { return name.empty() || m.name == name; };
  if (role == "leader" || role == "primary" || role == "master" || role == "standby-leader") {
    const model::Member* leader = cluster.LeaderMember();
    if (leader == nullptr || !matches(*leader)) {
      return nullptr;
    }
    bool standby_leader = leader->role() == model::kRoleStandbyLeader;
    if (role == "leader" || (role == "standby-leader") == standby_leader) {
      return leader;
    }
    return nullptr;
  }
  std::string leader_name = cluster.leader ? cluster.leader->name : "";
  for (const auto& m : cluster.members) {
    bool eligible =
        role == "any" || ((role == "replica" || role == "standby") && m.name != leader_name);
    if (eligible && matches(m)) {
      return &m;
    }
  }
  return nullptr;
}

Result<std::string> ShowConfig(const model::ClusterSnapshot& cluster) {
  if (!cluster.config) {
    return Error::NotFound("the cluster has no dynamic configuration in the DCS");
  }
  return config::JsonToYaml(cluster.config->data.raw());
}

Result<std::string> Dsn(const model::ClusterSnapshot& cluster, const std::string& role,
                        const std::string& member) {
  if (!member.empty() && !role.empty()) {
    return Error::Invalid("--role and --member are mutually exclusive options");
  }
  std::string effective = !member.empty() ? "any" : role.empty() ? "leader" : role;
  const model::Member* chosen = SelectMember(cluster, effective, member);
  if (chosen == nullptr) {
    return Error::NotFound("Can not find a suitable member");
  }
  return "host=" + chosen->host() +
         " port=" + std::to_string(chosen->port() ? chosen->port() : 5432);
}

}  // namespace pgha::cli
