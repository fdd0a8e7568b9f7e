// Who may ask an OS what (docs/personalities.md, "Who may ask an OS what"):
// the shipped personalities' authorisation decisions, each a pure function
// of the principal nucleusd stamped on a message or an answer (the sender's
// uid, gid, pid and kind, never taken from the sender: decision 61) and of
// the OS's own owner and spec. The rule behind all of them: an OS never does
// for a sender what the sender could not do itself.
//
// Pure: no system calls, no clock, no state; the unit tests
// (tests/unit/os_authority_test.cc) cover every cell. The OSes log the
// reasons these give (Decision::why) with the sender's name.
#pragma once

#include <nucleus/nucleus.h>

#include <cstdint>
#include <string>
#include <vector>

namespace nucleus::os {

// Allowed, or refused with an errno (what the OS answers in word 0 of a
// REJECTED answer) and one sentence saying why, for the log.
struct Decision {
  bool allowed = false;
  int error = 0;    // when refused: EACCES
  std::string why;  // when refused
  explicit operator bool() const { return allowed; }
};

// "process uid 65534 gid 65534 pid 812", "device named by uid 0", "the
// nucleus": a principal as the logs and the console name it.
std::string describe(const nucleus_principal_t &p);

// ---- batch ----------------------------------------------------------------
// What a batch is configured with (its command line: --allow).
struct BatchPolicy {
  uint32_t owner_uid = 0;  // the batch's own uid and gid (what it runs as)
  uint32_t owner_gid = 0;
  // --allow: for a root-owned batch the only senders it takes besides root
  // (empty: every sender); for any other, the senders it takes besides its
  // owner and root.
  std::vector<uint32_t> allowed;
};

// How an "@file" job's file is read.
enum class JobFile {
  kAsSender,   // by a short-lived child that has dropped to the sender's uid, gid and groups
  kOwnRights,  // by the batch itself: its rights are no more than the sender's
  kRefused,    // neither: the batch cannot take the sender's rights and has others
};

struct JobAuthority {
  Decision take;  // may the sender submit a job (or ask for status)?
  // The job's nucleus::Program user and group: the sender's uid and gid
  // when the batch is root's (only a root-owned creator may name them);
  // empty otherwise, and the job runs as the batch's owner.
  std::string user;
  std::string group;
  JobFile file = JobFile::kRefused;
};

// A job runs as its sender. A root-owned batch names the sender's uid and
// gid as the job's; a batch of another uid takes its owner, root, and the
// uids --allow names (their jobs run as the batch's owner: that is what the
// owner allowed); only a process sends jobs.
JobAuthority job_authority(const nucleus_principal_t &sender, const BatchPolicy &policy);

// ---- console --------------------------------------------------------------
// The console reads commands only from a device named by its own owner or
// by root: `answer` is the principal of a device's answer (a probe, a read,
// a write). A device named by another uid, a process answering under the
// device's name, and the nucleus (no such device) are refused.
Decision console_device(const nucleus_principal_t &answer, uint32_t owner_uid,
                        const std::string &device);

// ---- supervisor -----------------------------------------------------------
// Its control messages (status, restart) come only from a process of its
// owner's uid, root's, or one of the uids its spec's "controllers" names.
Decision supervisor_control(const nucleus_principal_t &sender, uint32_t owner_uid,
                            const std::vector<uint32_t> &controllers);

// A ready message comes from the child itself: a process whose pid is the
// child's program's (`child_pid`, 0 when the supervisor knows none), not
// merely one that bears the child's name.
Decision child_ready(const nucleus_principal_t &sender, int64_t child_pid);

// A create that failed with this code failed because another process (not
// a child of the supervisor) holds the name: that child's failure, retried
// after held_retry_ms, never a restart counted against the intensity.
bool name_held(int create_error);
// The wait before try `tries` (1, 2, ...) to create a child whose name is
// held: the spec's backoff_ms, but at least kHeldRetryMinMs, doubled for
// each try before, up to backoff_max_ms (at least kHeldRetryMinMs).
inline constexpr uint64_t kHeldRetryMinMs = 100;
uint64_t held_retry_ms(uint64_t backoff_ms, uint64_t backoff_max_ms, uint64_t tries);

}  // namespace nucleus::os
