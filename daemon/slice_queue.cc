// The rounds of inspection work in a loop turn (slice_queue.h).
#include "slice_queue.h"

#include <algorithm>
#include <vector>

namespace nucleus::daemon {

uint64_t SliceQueue::turn(uint64_t budget, uint64_t slice, const Serve &serve) {
  uint64_t spent = 0;
  std::vector<uint32_t> uids;  // served this round: few (one per uid with work)
  std::deque<Member> resting;  // could do nothing more this turn
  while (spent < budget && !queue_.empty()) {
    uids.clear();
    std::deque<Member> round, passed, served, unreached;
    round.swap(queue_);  // what serve pushes meanwhile waits behind this round
    while (!round.empty()) {
      Member m = round.front();
      round.pop_front();
      if (spent >= budget) {
        unreached.push_back(m);
        continue;
      }
      if (std::find(uids.begin(), uids.end(), m.uid) != uids.end()) {
        passed.push_back(m);
        continue;
      }
      uids.push_back(m.uid);
      Served s = serve(m, std::min(slice, budget - spent));
      spent += s.spent;
      if (!s.more) continue;
      // One that spent nothing cannot go on before the next turn (it has
      // had its requests for this one): serving it again would only turn
      // rounds over.
      (s.spent == 0 ? resting : served).push_back(m);
    }
    // Next: those the budget did not reach, those passed over, those
    // served, then any pushed meanwhile.
    unreached.insert(unreached.end(), passed.begin(), passed.end());
    unreached.insert(unreached.end(), served.begin(), served.end());
    unreached.insert(unreached.end(), queue_.begin(), queue_.end());
    queue_ = std::move(unreached);
  }
  queue_.insert(queue_.end(), resting.begin(), resting.end());
  return spent;
}

}  // namespace nucleus::daemon
