// Who gets the loop's next slice of inspection work: the connections that
// have some (a request read and its reply in progress, or requests
// waiting), served in rounds within a budget per loop turn. In a round each
// uid is served once, by its connections in turn, so that a uid gets no
// more of a turn for opening more connections, and no uid waits more than
// a round for its next slice (DESIGN.md: no client can starve another).
//
// Order: a member served goes to the back; one passed over in a round
// because its uid was served keeps its place; when the budget runs out, the
// members not reached this turn come first in the next. A member whose
// slice spent nothing and that has more (it may not go on before the next
// turn) is not served again this turn, so a turn always ends: each round
// spends something or takes a member out of it.
//
// Owns: the queue of members (connection slot, generation, uid). The
// caller's serve function does the work and says what it spent and whether
// the member has more; a member whose connection is gone is the serve
// function's to drop (it answers "no more").
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>

namespace nucleus::daemon {

class SliceQueue {
 public:
  struct Member {
    uint32_t index = 0;       // the connection's slot
    uint32_t generation = 0;  // of that slot, to know a gone connection
    uint32_t uid = 0;
  };
  struct Served {
    uint64_t spent = 0;  // units of work the slice took
    bool more = false;   // it has more: it stays in the queue
  };
  using Serve = std::function<Served(const Member &, uint64_t slice)>;

  // A member with work; the caller pushes each connection at most once
  // until it is served with "no more".
  void push(const Member &m) { queue_.push_back(m); }
  bool empty() const { return queue_.empty(); }
  size_t size() const { return queue_.size(); }

  // One loop turn: rounds of at most `slice` units a member, one member a
  // uid a round, until `budget` units are spent or no member is left to
  // serve this turn. Returns the units spent.
  uint64_t turn(uint64_t budget, uint64_t slice, const Serve &serve);

 private:
  std::deque<Member> queue_;
};

}  // namespace nucleus::daemon
