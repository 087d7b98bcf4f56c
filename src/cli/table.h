// patronictl's output formats (print_output): `pretty` tables drawn as prettytable draws them,
// with the title set into the top border, plus `tsv`, `json` and `yaml`. Pure functions.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace pgha::cli {

// A cell is a string, a number, or (for Tags) an object; "" means empty.
using Cell = nlohmann::ordered_json;

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;
  std::map<std::string, char> align;  // 'l' (default) or 'r'
  // Set into the top border (" Cluster: pg-ha "). A table with a title drops empty cells from
  // json/yaml output, and when its first column is "Cluster" that column is left out of pretty
  // output, as patronictl's member list does.
  std::string title;
};

// The text of one cell as Python's str() would print it.
std::string CellText(const Cell& cell);

// fmt: pretty, topology (same as pretty), tsv, json, yaml/yml. The result ends with a newline.
Result<std::string> RenderTable(const Table& table, const std::string& fmt,
                                const std::string& delimiter = "\t");

}  // namespace pgha::cli
