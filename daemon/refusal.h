// Why a request was refused, beyond its errno (wire::Cause): the object that
// knows (the claim that was short, the bound that was met) notes it where
// it refuses; the decoder takes the note once for the reply's cause fields
// (wire::Event::cause), and a refused attach for its AttachReply.
//
// A note is only made where something is refused, and only read after a
// refusal: a request that succeeds, and the message path, never touch it.
// A note names the Error it was made for, so a stale one (of a refusal an
// object recovered from) is never read for another.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <nucleus/wire.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "error.h"

namespace nucleus::daemon {

struct Refusal {
  wire::Cause cause = wire::kCauseNone;
  uint64_t value = 0;
  int32_t cause_errno = 0;
};

class RefusalNote {
 public:
  // Notes why `e` is returned, and returns it: `return note.refuse(...)`.
  Error refuse(Error e, wire::Cause cause, uint64_t value = 0, int32_t cause_errno = 0) {
    error_ = e;
    refusal_ = Refusal{cause, value, cause_errno};
    return e;
  }
  // The note of `e`, forgotten; none when the note is of another error.
  Refusal take(Error e) {
    Refusal r = error_ == e ? refusal_ : Refusal{};
    error_ = Error::kNone;
    refusal_ = Refusal{};
    return r;
  }
  void clear() { error_ = Error::kNone; }

 private:
  Error error_ = Error::kNone;
  Refusal refusal_;
};

// Fills a refused reply's cause fields.
inline void set_cause(wire::Event *reply, const Refusal &r) {
  reply->cause = r.cause;
  reply->cause_value = r.value;
  reply->cause_errno = r.cause_errno;
}

// Fills a start's reply whose step failed: the step, its errno and the
// path or directory it was about (wire::kStartFailedPath, cut to fit).
inline void set_start_failure(wire::Event *reply, int result, uint64_t step,
                              std::string_view path) {
  reply->message.word[wire::kStartFailedStep] = step;
  if (result >= 0 || step == wire::kStartStepNone) return;
  reply->cause = wire::kCauseStartStep;
  reply->cause_value = step;
  reply->cause_errno = -result;
  char *words = reinterpret_cast<char *>(&reply->message.word[wire::kStartFailedPath]);
  size_t n = std::min(path.size(), wire::kStartFailedPathBytes - 1);
  if (n != 0) std::memcpy(words, path.data(), n);  // an empty path's data() may be null
  words[n] = '\0';
}

}  // namespace nucleus::daemon
