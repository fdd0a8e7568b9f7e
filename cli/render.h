// nucleusctl's text output: tables and the tree, from the JSON nucleusd
// gives (the same JSON --json prints).
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>

namespace nucleus::ctl {

void print_status(std::ostream &out, const nlohmann::json &status);
// The processes as a tree under "nucleus" (the root).
nlohmann::json build_tree(const nlohmann::json &processes);
void print_tree(std::ostream &out, const nlohmann::json &tree);
void print_dot(std::ostream &out, const nlohmann::json &processes);
void print_ps(std::ostream &out, const nlohmann::json &processes);
void print_stats(std::ostream &out, const nlohmann::json &stats);
void print_devices(std::ostream &out, const nlohmann::json &devices);
// One monitor event per line.
void print_event(std::ostream &out, const nlohmann::json &event);

}  // namespace nucleus::ctl
