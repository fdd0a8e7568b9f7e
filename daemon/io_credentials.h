// The credentials device I/O runs with (docs/devices.md, "Whose rights a
// device's I/O has"). A root nucleusd opens a device's files with the rights
// of the process that names it (open_as), but the kernel checks rights again
// at each read and write: whether the writer may take the blocks a file
// system keeps for root, whether a set-user-ID bit stays (CAP_FSETID),
// quotas, and what a FUSE or network file system asks its server. An
// io_uring read or write runs with the credentials of the thread that
// submits it (root's) unless its SQE names credentials registered with the
// ring (an io_uring "personality"). So each principal with a disk or a
// console gets its own registered once, made on the loop thread switched to
// that principal (run_as: its uid, gid and groups, no capability of
// nucleusd's), and given back with its last device.
//
// Owns: the registrations of the namers' credentials (principal -> id and
// how many devices use it) and that of nucleusd's own, which the
// configuration's devices use: explicit even for nucleusd, so that their
// I/O never runs with whatever the loop thread's credentials are when the
// kernel reissues a request from task work (during open_as or run_as).
// Asks of others: the Loop to register and unregister; run_as (principal.h).
// Invariants: entries_ holds exactly the principals other than nucleusd's
// with at least one device counted, each with an id registered with the
// ring; own_ stays registered for the ring's life and is never counted.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

#include "loop.h"
#include "principal.h"

namespace nucleus::daemon {

class IoCredentials {
 public:
  explicit IoCredentials(Loop &loop) : loop_(loop) {}
  IoCredentials(const IoCredentials &) = delete;
  IoCredentials &operator=(const IoCredentials &) = delete;

  // Once the ring is set up, on the loop thread with nucleusd's own
  // credentials: registers them, which also finds out whether this kernel
  // runs I/O with registered credentials (Linux 5.6), and logs what device
  // I/O will run as.
  void setup();
  // Device I/O can run as another principal than nucleusd.
  bool available() const { return own_ != 0; }
  // The id nucleusd's own devices use (0 where nothing could be registered:
  // the loop thread's credentials, which are nucleusd's).
  uint16_t own() const { return own_; }
  // The id for the I/O of a device of `who`, with one more device counted
  // on it: nucleusd's own id when `who` is nucleusd's principal (or, for a
  // nucleusd that is not root, has its uid: open_as opens nothing for any
  // other, and it could not switch). -errno when who's credentials cannot
  // be registered (-EOPNOTSUPP: not on this kernel); the device must then
  // not be served.
  int acquire(const Principal &who);
  // One device fewer on `id` (an acquire's); the last gives the registration
  // back. nucleusd's own id and 0 change nothing.
  void release(uint16_t id);
  // How many principals other than nucleusd's hold a registration.
  size_t count() const { return entries_.size(); }

 private:
  struct Entry {
    uint16_t id = 0;
    uint32_t devices = 0;
  };

  // `who` with its groups sorted: one principal, one key.
  static Principal key(const Principal &who);
  struct Order {
    bool operator()(const Principal &a, const Principal &b) const {
      return std::tie(a.uid, a.gid, a.groups) < std::tie(b.uid, b.gid, b.groups);
    }
  };

  Loop &loop_;
  Principal own_principal_;  // key() of nucleusd's at setup
  uint16_t own_ = 0;
  std::map<Principal, Entry, Order> entries_;
};

}  // namespace nucleus::daemon
