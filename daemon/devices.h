// The Linux side of device entries (docs/devices.md): each device's files
// and geometry, the console's queues of writes and readers and its input,
// and every operation in flight (an io_uring timeout, read or write). The
// rules (names, claims, reserve) are Core's (core_devices.cc); what a
// message asks for is decoded in device_request.cc.
//
// Owns: the state of each device nucleusd serves (indexed by process id,
// with the entry's generation), the operations in flight, the Loop's
// Kind::kDevice route, whose completions it takes, and the io_uring
// credentials its I/O runs with (IoCredentials: the namer's, or nucleusd's
// for the configuration's devices).
// Asks of others: the Loop for SQEs and cancels; the Core for device
// entries, their messages and answers; the Config for the configured
// devices; Connections for the channel of an attached sender; the
// PrincipalCache for a requester's principal (whose rights open its files
// and run its reads and writes). A device a process names is decoded and
// entered by the decoder (requests.h), which then asks open_device for its
// files.
//
// Rights: a disk's or console's files are opened with its namer's rights,
// and every read and write of them names the namer's registered credentials
// (State::credential, copied into each Op): the kernel's checks at I/O time
// (root's reserved blocks, CAP_FSETID, quotas) see the namer, never root.
//
// Memory: an operation that reads into or writes from a data area holds a
// reference to the sender's Channel, so the mapping stays until the
// operation's completion arrives, even when the sender dies or the device is
// removed first; its descriptor is shared the same way. A completion whose
// device or buffer is gone is dropped.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nucleus/wire.h>
#include <nucleus_internal/sys.h>

#include "channel.h"
#include "config.h"
#include "connections.h"
#include "core.h"
#include "device_request.h"
#include "error.h"
#include "io_credentials.h"
#include "log.h"
#include "loop.h"
#include "principal.h"
#include "uid_accounts.h"

namespace nucleus::daemon {

class Devices {
 public:
  // Registers the Kind::kDevice route on `loop`; keeps the references.
  Devices(Loop &loop, Core &core, const Config &config, const Connections &connections,
          PrincipalCache &principals);
  Devices(const Devices &) = delete;
  Devices &operator=(const Devices &) = delete;

  // Once the ring is set up: registers nucleusd's own credentials for its
  // devices' I/O and finds out whether I/O can run as a namer (io_credentials.h).
  void setup_credentials() { credentials_.setup(); }
  // Creates the configuration's devices as entries of nucleusd's and opens
  // their files. False with a message naming the device on failure.
  bool create_configured(std::string *error);
  // Device `id`, which `caller` just named (kCreateExternal, decoded and
  // checked by the decoder): opens its files with the caller's rights and
  // serves it from now on. 0 or -errno.
  int open_device(uint32_t caller, uint32_t id, const DeviceConfig &spec);
  // Whether device `id` is served as `spec` names it (Requests::create_external).
  bool named_with(uint32_t id, const DeviceConfig &spec) const;
  // Serves the messages waiting for device `id` if nucleusd holds its Linux
  // side with this generation (else leaves them).
  void serve(uint32_t id, uint32_t generation);
  // Cancels the operations of devices that left the table and forgets them.
  void drop_removed();
  // Ends what devices were doing for a process that detached.
  void cancel_ops_of(uint32_t sender, uint32_t generation);
  // The geometry of device `id` while nucleusd holds its Linux side.
  std::optional<DeviceGeometry> geometry(uint32_t id) const;
  // What device I/O runs with: whether as each namer, and how many namers
  // other than nucleusd hold registered credentials.
  bool io_as_namer() const { return credentials_.available(); }
  size_t namer_credentials() const { return credentials_.count(); }

 private:
  // A device's file, shared with the operations in flight on it so that its
  // descriptor outlives every SQE that names it.
  using File = std::shared_ptr<sys::UniqueFd>;

  // The Linux side of a device entry.
  struct State {
    bool live = false;
    uint32_t generation = 0;  // the entry's
    wire::DeviceKind kind{};
    File out;  // disk: the backing file; console: output
    File in;   // console: input (none: reads answer end of input)
    DeviceGeometry geometry;
    DeviceConfig spec;  // what named it (named_with)
    // The io_uring credentials its reads and writes run with (IoCredentials:
    // its namer's, or nucleusd's own; 0 for a clock or null, which do none).
    uint16_t credential = 0;
    // console: one write at a time, in arrival order; reads wait for lines.
    std::deque<uint32_t> writes;
    uint32_t writer = kNone;  // the write in flight
    std::deque<uint32_t> readers;
    std::string input;  // read from the input, not yet given to a reader
    bool input_end = false;
    int input_error = 0;
    bool filling = false;  // a read of the input is in flight
  };

  // One message a device is serving, or the console's read of its input.
  struct Op {
    bool live = false;
    uint32_t generation = 0;
    uint32_t device = 0;
    uint32_t device_generation = 0;
    uint64_t handle = 0;  // the buffer the device received (0: an input fill)
    uint32_t sender = kNone;
    uint32_t sender_generation = 0;
    DeviceRequest request;
    uint16_t credential = 0;           // its device's, while the device lives
    std::shared_ptr<Channel> channel;  // the sender's data area stays mapped while in flight
    File file;
    __kernel_timespec timeout{};
    bool submitted = false;  // an SQE names it
    uint64_t done = 0;       // console write: bytes written so far
    std::vector<char> fill;  // console input fill
  };

  // Opens a device's files with the rights of `who` (open_as); `std_streams`
  // lets "stdin", "stdout" and "stderr" name nucleusd's own (configuration
  // only).
  static int open_files(const DeviceConfig &spec, const Principal &who, bool std_streams,
                        State *out);
  void install(uint32_t id, State state);
  // Ends device `id`'s Linux side: its credentials are given back.
  void forget(uint32_t id);
  void serve_messages(uint32_t id);
  uint32_t new_op(uint32_t device, const DeviceMessage &m, const DeviceRequest &r);
  void submit_op(uint32_t index);
  void on_op(uint32_t index, int result);
  void finish_op(uint32_t index, int32_t result, const wire::Message &answer);
  void next_console_write(uint32_t device);
  void serve_console_readers(uint32_t device);
  void cancel_op(uint32_t index);
  State *state(uint32_t id, uint32_t generation);

  Loop &loop_;
  Core &core_;
  const Config &config_;
  const Connections &connections_;
  PrincipalCache &principals_;
  IoCredentials credentials_;
  log::RateLimited refusals_;  // a namer whose credentials cannot be registered
  std::vector<State> states_;  // indexed by process id
  std::vector<std::unique_ptr<Op>> ops_;
  std::vector<uint32_t> free_ops_;
};

}  // namespace nucleus::daemon
