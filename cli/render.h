// nucleusctl's text output: tables and the tree, from the JSON nucleusd
// gives (the same JSON --json prints).
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace nucleus::ctl {

void print_status(std::ostream &out, const nlohmann::json &status);
// The processes as a tree under "nucleus" (the root).
nlohmann::json build_tree(const nlohmann::json &processes);
void print_tree(std::ostream &out, const nlohmann::json &tree);
void print_dot(std::ostream &out, const nlohmann::json &processes);
void print_ps(std::ostream &out, const nlohmann::json &processes);
// `ps NAME...`: of `processes` (what the caller may see), each named process
// and, unless `only`, its subtree below it (in tree order, each process
// once) into *out. False with *error naming the first name that is no
// process the caller can see, or is a device.
bool select_processes(const nlohmann::json &processes, const std::vector<std::string> &names,
                      bool only, nlohmann::json *out, std::string *error);
void print_stats(std::ostream &out, const nlohmann::json &stats);
void print_devices(std::ostream &out, const nlohmann::json &devices);
// One monitor event per line: time, message or answer, from -> to, buffer,
// result, and its words (words.h).
void print_event(std::ostream &out, const nlohmann::json &event);
// A monitor event's words (its "words" array; none from an older nucleusd).
std::vector<uint64_t> event_words(const nlohmann::json &event);

}  // namespace nucleus::ctl
