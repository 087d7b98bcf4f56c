#include "fakes/compat_data.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace pgha::testing {

namespace {

const std::string kPrefix = "/service/pg-ha/";

std::ifstream Open(const std::string& file) {
  std::ifstream in(std::string(PGHA_COMPAT_DIR) + "/patroni-3.0.2/" + file);
  EXPECT_TRUE(in.good()) << file;
  return in;
}

}  // namespace

std::vector<model::KeyValue> ReadDcsDump(const std::string& file) {
  std::ifstream in = Open(file);
  std::string line;
  std::vector<model::KeyValue> keys;
  bool in_section = false;
  int64_t revision = 1;
  while (std::getline(in, line)) {
    if (line.rfind("### etcdctl get --prefix", 0) == 0) {
      in_section = true;
      continue;
    }
    if (!in_section) {
      continue;
    }
    if (line.empty()) {
      break;
    }
    std::string value;
    std::getline(in, value);
    EXPECT_EQ(line.rfind(kPrefix, 0), 0u) << line;
    keys.push_back({line.substr(kPrefix.size()), value, revision, revision, 0});
    ++revision;
  }
  return keys;
}

std::vector<Exchange> ReadExchanges(const std::string& file) {
  std::ifstream in = Open(file);
  std::vector<Exchange> out;
  std::string line;
  bool in_body = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();  // curl -i kept the headers' CRLF
    }
    if (line.rfind("=== ", 0) == 0) {
      std::istringstream words(line.substr(4));
      Exchange e;
      words >> e.method >> e.target;
      out.push_back(e);
      in_body = false;
      continue;
    }
    if (out.empty()) {
      continue;
    }
    Exchange& current = out.back();
    if (line.rfind("HTTP/", 0) == 0) {
      current.status = std::stoi(line.substr(9, 3));
    } else if (line.empty() && current.status != 0) {
      in_body = true;
    } else if (in_body && current.body.empty()) {
      current.body = line;
    }
  }
  return out;
}

std::string GoldenBody(const std::string& file, const std::string& target) {
  for (const auto& e : ReadExchanges(file)) {
    if (e.method == "GET" && e.target == target) {
      return e.body;
    }
  }
  return "";
}

std::string ReadCtlOutput(const std::string& file, const std::string& command) {
  std::ifstream in = Open(file);
  std::string line;
  std::string out;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("=== ", 0) == 0) {
      if (inside) {
        break;
      }
      inside = line.substr(4) == command;
      continue;
    }
    if (inside) {
      out += line + "\n";
    }
  }
  // The capture separates sections with one blank line.
  if (out.size() >= 2 && out.substr(out.size() - 2) == "\n\n") {
    out.pop_back();
  }
  return out;
}

std::string ReadCompatText(const std::string& file) {
  std::ifstream in = Open(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace pgha::testing
