// The messages the shipped OS personalities understand (docs/personalities.md).
// Word 0 of a message is the request; the answers are described per request.
#pragma once

#include <cstdint>

namespace nucleus::os {

// ---- supervisor ---------------------------------------------------------
// A child says it is ready (when its spec has "wait_ready"): a message to its
// supervisor, whose name is in the child's $NUCLEUS_SUPERVISOR. Answered normal.
inline constexpr uint64_t kReady = 0x5245414459ULL;  // "READY"
// Status. word 1 = index of a child in start order: answer word 0 = number of
// children, word 1 = nucleus_process_t state (0: not created), word 2 = its
// restarts, word 3 = its pid, words 4..6 = its name (up to 23 bytes), word 7
// = 1 when it has said ready (or was adopted); rejected past the end.
// word 1 = kSummary: word 0 = children, word 1 = restarts in all, word 2 =
// the supervisor's --version, word 3 = its pid, word 4 = children running,
// word 5 = children waiting for a name another process holds, word 6 =
// children whose last create or start failed (they wait for a retry).
// word 1 = an index and word 2 = kWhy: why that child does not run: word 0 =
// children, word 1 = the errno of its last create or start that failed
// (0: none since it last started), word 2 = the NUCLEUS_START_STEP_* that
// failed (NONE: the create or start was refused; word 1 says why), word 3 =
// its failures in a row, words 4..6 = its name. The supervisor's log names
// the step, the path and the errno ("cannot start db: cannot execute
// /no/such: No such file or directory; trying again in ...").
// Only its owner's uid, root, and the uids its spec's "controllers" names
// may ask (status and restart); anyone else is rejected, word 0 = EACCES.
inline constexpr uint64_t kStatus = 0x535441545553ULL;  // "STATUS"
inline constexpr uint64_t kSummary = UINT64_MAX;
inline constexpr uint64_t kWhy = 0x574859ULL;  // "WHY"
// Restart. word 1 = index of a child: it is ended (with its subtree) and
// started again from its spec now, as a restart of that child only (not
// counted against the intensity; a wait for a held name is cut short).
// Normal answer: word 0 = its new pid (0: it waits for the children before
// it in start order); rejected, word 0 = errno: EINVAL past the end, or why
// it could not be started (EEXIST: another process holds its name).
inline constexpr uint64_t kRestart = 0x52455354415254ULL;  // "RESTART"

// ---- batch ------------------------------------------------------------------
// A job: word 1 = buffers claim | processes claim << 32; words 2..7 = 48
// bytes: the program and its arguments, NUL-separated ("/bin/sh\0-c\0exit
// 3"), or "@" and the path of a JSON job file ({"program", "argv", "env",
// "claims"}), read with the sender's rights. The job runs as its sender
// (docs/personalities.md, "Who may ask an OS what"). Answered when the job
// ends: normal, word 0 = NUCLEUS_EXIT_*, word 1 = exit code or signal, word
// 2 = pid, word 3 = the job's number; malfunction when it cannot run (word 0
// = errno, word 1 = the NUCLEUS_START_STEP_* that failed, NONE: its create or
// start was refused, word 3 = the job's number); rejected (word 0 = errno)
// when batch does not take jobs from the sender (EACCES) or the job file
// cannot be read with the sender's rights (open's errno, EINVAL not a regular
// file, EFBIG over 64 KiB); unintelligible (word 0 = EINVAL) when the job is
// malformed.
inline constexpr uint64_t kJob = 0x4a4f42ULL;  // "JOB"
// Batch status: answer word 0 = jobs queued, word 1 = running, word 2 = done,
// word 3 = slots, word 4 = its --version.
inline constexpr uint64_t kBatchStatus = kStatus;
inline constexpr uint64_t kJobTextBytes = 48;

}  // namespace nucleus::os
