// The owner rule (DESIGN.md, "Principals, privilege and bounds"): every way
// a program comes to run under an owner (a create, a modify of its program,
// a swap, a start of an entry created earlier) runs it only as an owner its
// requester could have named. The requester is the principal of the
// process that sent the request, never that of the one it acts for: acting
// for another gives authority over its children, not its uid (nor root's).
//
// Pure: the decoder (requests.cc) calls owner_rule_allows on every one of
// those paths, ProcessTree uses owner_named to give an entry its owner, so
// the owner checked is the owner the entry gets.
#pragma once

#include <cstdint>

#include "process_table.h"

namespace nucleus::daemon {

// Who owns an entry (its program runs as this uid and primary gid), or who
// asks: the owner of the requesting process's entry (for a process that
// attached through the socket, its SO_PEERCRED).
struct Owner {
  uint32_t uid = 0;
  uint32_t gid = 0;
  bool operator==(const Owner &) const = default;
};

inline Owner owner_of(const Process &p) {
  return Owner{p.uid, p.gid};
}

// The owner an entry has once it runs `program`: the user and the group
// the program names, each else `current`'s.
inline Owner owner_named(const Program &program, Owner current) {
  return Owner{program.uid != kNone ? program.uid : current.uid,
               program.gid != kNone ? program.gid : current.gid};
}

// The rule: `requester` could have named `owner`. Root (uid 0, whatever
// its group) may name anyone; anyone else only exactly its own uid and
// gid, so no program gets a uid or a group its requester does not have.
inline bool owner_rule_allows(Owner requester, Owner owner) {
  return requester.uid == 0 || requester == owner;
}

}  // namespace nucleus::daemon
