#include "cli/table.h"

#include <algorithm>
#include <sstream>

#include "common/strings.h"
#include "config/yaml_json.h"

namespace pgha::cli {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

std::string ScalarText(const ordered_json& value) {
  if (value.is_string()) {
    return value.get<std::string>();
  }
  if (value.is_boolean()) {
    return value.get<bool>() ? "true" : "false";
  }
  if (value.is_null()) {
    return "null";
  }
  return value.dump();
}

// PyYAML's flow style for a flat mapping, as `tsv` prints tags: {nofailover: true, zone: a}.
std::string FlowYaml(const ordered_json& object) {
  json sorted = json(object);  // PyYAML sorts keys
  std::string out = "{";
  bool first = true;
  for (const auto& [key, value] : sorted.items()) {
    out += (first ? "" : ", ") + key + ": " + ScalarText(ordered_json(value));
    first = false;
  }
  return out + "}";
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
  }
  if (lines.empty()) {
    lines.emplace_back();
  }
  return lines;
}

std::string Pad(const std::string& text, size_t width, char align) {
  std::string fill(width > text.size() ? width - text.size() : 0, ' ');
  return align == 'r' ? fill + text : text + fill;
}

std::string RenderPretty(const std::vector<std::string>& columns,
                         const std::vector<std::vector<std::string>>& rows,
                         const std::map<std::string, char>& align, const std::string& title) {
  std::vector<size_t> widths;
  for (const auto& column : columns) {
    widths.push_back(column.size());
  }
  bool multiline = false;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      for (const auto& line : Lines(row[i])) {
        widths[i] = std::max(widths[i], line.size());
      }
      multiline = multiline || row[i].find('\n') != std::string::npos;
    }
  }
  std::string rule = "+";
  for (size_t width : widths) {
    rule += std::string(width + 2, '-') + "+";
  }
  std::string top = rule;
  if (!title.empty()) {
    std::string cut = title.substr(0, top.size() - 2);
    top = top.substr(0, 1) + cut + top.substr(1 + cut.size());
  }
  auto align_of = [&](size_t i) {
    auto it = align.find(columns[i]);
    return it == align.end() ? 'l' : it->second;
  };
  auto render_row = [&](const std::vector<std::string>& cells) {
    std::vector<std::vector<std::string>> cell_lines;
    size_t height = 1;
    for (const auto& cell : cells) {
      cell_lines.push_back(Lines(cell));
      height = std::max(height, cell_lines.back().size());
    }
    std::string out;
    for (size_t line = 0; line < height; ++line) {
      out += "|";
      for (size_t i = 0; i < widths.size(); ++i) {
        std::string text =
            i < cell_lines.size() && line < cell_lines[i].size() ? cell_lines[i][line] : "";
        out += " " + Pad(text, widths[i], align_of(i)) + " |";
      }
      out += "\n";
    }
    return out;
  };
  std::string out = top + "\n" + render_row(columns) + rule + "\n";
  for (size_t r = 0; r < rows.size(); ++r) {
    out += render_row(rows[r]);
    // prettytable draws a rule after every row once any cell spans lines (hrules=ALL).
    if (multiline && r + 1 < rows.size()) {
      out += rule + "\n";
    }
  }
  return out + rule + "\n";
}

}  // namespace

std::string CellText(const Cell& cell) {
  if (cell.is_string()) {
    return cell.get<std::string>();
  }
  if (cell.is_null()) {
    return "None";
  }
  if (cell.is_boolean()) {
    return cell.get<bool>() ? "True" : "False";
  }
  if (cell.is_object()) {
    return FlowYaml(cell);
  }
  return cell.dump();
}

Result<std::string> RenderTable(const Table& table, const std::string& fmt,
                                const std::string& delimiter) {
  if (fmt == "json" || fmt == "yaml" || fmt == "yml") {
    ordered_json elements = ordered_json::array();
    for (const auto& row : table.rows) {
      ordered_json element = ordered_json::object();
      for (size_t i = 0; i < row.size() && i < table.columns.size(); ++i) {
        if (table.title.empty() || !CellText(row[i]).empty()) {
          element[table.columns[i]] = row[i];
        }
      }
      elements.push_back(std::move(element));
    }
    if (fmt == "json") {
      // Python's json.dumps separators.
      std::string compact = elements.dump();
      std::string out;
      bool in_string = false;
      for (size_t i = 0; i < compact.size(); ++i) {
        char c = compact[i];
        out += c;
        if (c == '"' && (i == 0 || compact[i - 1] != '\\')) {
          in_string = !in_string;
        } else if (!in_string && (c == ',' || c == ':')) {
          out += ' ';
        }
      }
      return out + "\n";
    }
    return config::JsonToYaml(json(elements));
  }
  if (fmt != "pretty" && fmt != "tsv" && fmt != "topology") {
    return Error::Invalid("unknown output format '" + fmt + "' (pretty, tsv, json, yaml)");
  }
  bool list_cluster =
      !table.title.empty() && !table.columns.empty() && table.columns[0] == "Cluster";
  size_t skip = list_cluster && fmt != "tsv" ? 1 : 0;
  std::vector<std::string> columns(table.columns.begin() + static_cast<long>(skip),
                                   table.columns.end());
  std::vector<std::vector<std::string>> rows;
  for (const auto& row : table.rows) {
    std::vector<std::string> texts;
    for (size_t i = skip; i < row.size(); ++i) {
      if (row[i].is_object()) {
        texts.push_back(fmt == "pretty" || fmt == "topology"
                            ? std::string(Trim(config::JsonToYaml(json(row[i]))))
                            : FlowYaml(row[i]));
      } else {
        texts.push_back(CellText(row[i]));
      }
    }
    rows.push_back(std::move(texts));
  }
  if (fmt == "tsv") {
    std::string out;
    auto emit = [&](const std::vector<std::string>& cells) {
      for (size_t i = 0; i < cells.size(); ++i) {
        out += (i ? delimiter : "") + cells[i];
      }
      out += "\n";
    };
    if (!columns.empty()) {
      emit(columns);
    }
    for (const auto& row : rows) {
      emit(row);
    }
    return out;
  }
  return RenderPretty(columns, rows, table.align, table.title);
}

}  // namespace pgha::cli
