// Errors of nucleusd's objects. The values are the Linux errno codes the wire
// carries back to the process, so converting is a cast.
#pragma once

#include <cerrno>
#include <cstdint>
#include <utility>

namespace nucleus::daemon {

enum class Error : int32_t {
  kNone = 0,
  kInvalid = EINVAL,   // malformed request or argument
  kBadHandle = EBADF,  // stale, forged or foreign buffer handle, or wrong state
  kNameTaken = EEXIST,
  kNoBuffers = ENOBUFS,  // claim or pool exhausted
  kDenied = EACCES,
  kProtocol = EPROTO,  // unknown operation or ABI mismatch
  kNoMemory = ENOMEM,
  kNoChild = ESRCH,      // no such child (also for names that exist but are not the caller's)
  kBusy = EBUSY,         // not in a state that allows it (a running child for modify, ...)
  kAlready = EALREADY,   // start of a child that runs
  kTooBig = E2BIG,       // staged program over the limit
  kNotReserver = EPERM,  // release of a device the caller did not reserve
  // Reserving a device without the right to it; a name nucleusd hands out to
  // another (nucleusctl-<pid> is the peer with that pid's).
  kNotPermitted = EPERM,
  kUidQuota = EDQUOT,  // the owner's uid is at one of its limits (processes, names, buffers)
  // Data lent with a message (kCopyData, kSendMessage with a lend).
  kNoLend = ENODATA,     // the message lends nothing
  kLendEnded = ESTALE,   // the sender's run that lent it is gone (died, detached, swapped)
  kFault = EFAULT,       // a range outside the lent range (or a lend outside the sender's area)
  kOutOfRange = ERANGE,  // a range outside the caller's own data area
  kTooMuch = EMSGSIZE,   // more than wire::kMaxCopyBytes in one request
};

inline int32_t to_errno(Error e) {
  return static_cast<int32_t>(e);
}

// A value or an Error. Small on purpose: std::expected is C++23.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : error_(error) {}         // NOLINT(google-explicit-constructor)
  bool ok() const { return error_ == Error::kNone; }
  Error error() const { return error_; }
  T &value() { return value_; }
  const T &value() const { return value_; }

 private:
  T value_{};
  Error error_ = Error::kNone;
};

}  // namespace nucleus::daemon
