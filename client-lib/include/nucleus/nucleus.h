/* libnucleus: the C API of the nucleus message primitives.
 *
 * Every function returns 0 (or a count) on success and a negative errno-style
 * code on failure; nucleus_strerror() describes any code in general, and
 * nucleus_last_error() says why this thread's last failed call failed (which
 * claim, right, bound, or exec's errno and path). Timeouts are in
 * nanoseconds: -1 waits forever, 0 polls, and a timeout returns -ETIMEDOUT
 * leaving the queue as it was.
 *
 * Threads: a nucleus_t is not thread-safe. All calls on one handle must be
 * made by one thread at a time (the caller serialises them); different
 * handles are independent and may be used from different threads at once.
 *
 * Errors common to every call:
 *   -ESHUTDOWN  nucleusd is stopping or detached this process
 *   -ECONNRESET nucleusd went away without saying so
 *   -EINVAL     a NULL handle or argument that cannot be valid
 */
#ifndef NUCLEUS_NUCLEUS_H_
#define NUCLEUS_NUCLEUS_H_

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define NUCLEUS_API __attribute__((visibility("default")))
#else
#define NUCLEUS_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* In C the handle is `struct nucleus`. C++ cannot have a struct and the
 * namespace `nucleus` under one name, so there it is `struct nucleus_handle`;
 * both are the same opaque pointer to the library (see docs/decisions.md). */
#ifdef __cplusplus
typedef struct nucleus_handle nucleus_t;
#else
typedef struct nucleus nucleus_t;
#endif
typedef uint64_t nucleus_buffer_t;
typedef struct {
  uint64_t word[8];
} nucleus_message_t;

enum {
  NUCLEUS_RESULT_NORMAL = 1,
  NUCLEUS_RESULT_REJECTED = 2,
  NUCLEUS_RESULT_UNINTELLIGIBLE = 3,
  NUCLEUS_RESULT_MALFUNCTION = 4,
  NUCLEUS_RESULT_DUMMY = 5 /* receiver does not exist; made by the nucleus */
};

#define NUCLEUS_NAME_MAX 31
#define NUCLEUS_TIMEOUT_INFINITE (-1)

enum { NUCLEUS_EVENT_MESSAGE = 1, NUCLEUS_EVENT_ANSWER = 2 };

/* Who sent a message or an answer, stamped by nucleusd from what it knows,
 * never taken from the sender: authorise by these fields, not by a name.
 *   NUCLEUS_FROM_PROCESS  an internal process: uid and gid are its owner's
 *                         (what its program runs as), pid its program's
 *   NUCLEUS_FROM_DEVICE   a device answering: uid and gid are the owner of
 *                         whoever named it (nucleusd's for the configuration's
 *                         devices), pid nucleusd's
 *   NUCLEUS_FROM_NUCLEUS  the nucleus itself: exit notices, handover
 *                         requests, dummy answers (result
 *                         NUCLEUS_RESULT_DUMMY), the answers to stop and
 *                         swap; uid, gid and pid are nucleusd's */
enum { NUCLEUS_FROM_PROCESS = 1, NUCLEUS_FROM_DEVICE = 2, NUCLEUS_FROM_NUCLEUS = 3 };
typedef struct {
  uint32_t uid;
  uint32_t gid;
  int32_t pid;
  uint32_t kind; /* NUCLEUS_FROM_* */
} nucleus_principal_t;

/* A range of the sender's data area lent with a message (docs/data-and-regret.md).
 * Sending: `offset` and `bytes` are in the sender's own data area, `rights`
 * NUCLEUS_LEND_READ, NUCLEUS_LEND_WRITE or both. Receiving: `offset` is 0
 * (the receiver addresses the range from its start and never learns where
 * it lies), `bytes` its length, `rights` what the receiver may do; bytes 0:
 * the message lends nothing. `copied` (receiving; `reserved`, 0, when
 * sending) is what nucleusd copied for the caller in the same hand-off: for
 * a message, its first bytes in the caller's receive window
 * (nucleus_set_receive_window); for an answer, the bytes the answer wrote
 * to the start of the range the caller lent (nucleus_send_answer_data). */
#define NUCLEUS_LEND_READ 1  /* the receiver may copy from the range */
#define NUCLEUS_LEND_WRITE 2 /* the receiver may copy into the range */
typedef struct {
  uint64_t offset;
  uint64_t bytes;
  uint32_t rights; /* NUCLEUS_LEND_* */
  union {
    uint32_t reserved; /* sending: 0 */
    uint32_t copied;   /* receiving: bytes copied for the caller (above) */
  };
} nucleus_lend_t;

/* A sender: its name (NUL-terminated; "nucleus" for the nucleus), its
 * principal, and what its message lends (bytes 0: nothing). */
typedef struct {
  char name[32];
  nucleus_principal_t principal;
  nucleus_lend_t lend;
} nucleus_sender_t;

typedef struct {
  int kind;                      /* NUCLEUS_EVENT_MESSAGE or NUCLEUS_EVENT_ANSWER */
  int result;                    /* answers: NUCLEUS_RESULT_* */
  nucleus_buffer_t buffer;       /* the buffer the event is on */
  char sender[32];               /* who it is from: a message's sender, an answer's answerer */
  nucleus_message_t message;     /* the message or the answer */
  nucleus_principal_t principal; /* and that one's principal */
  nucleus_lend_t lend;           /* a message's lend (offset 0; bytes 0: none); an
                                    answer's: bytes 0, copied what it brought back */
} nucleus_event_t;

typedef struct {
  uint64_t pool_buffers;    /* size of the nucleus's pool */
  uint64_t pool_free;       /* buffers neither in use nor held by any claim */
  uint64_t processes;       /* internal processes in the table */
  uint64_t claim_buffers;   /* this process's buffer claim */
  uint64_t claim_used;      /* of which out (sent and not yet waited for) */
  uint64_t protocol_errors; /* requests nucleusd refused from this process */
  uint64_t queue_length;    /* messages queued to or received by this process */
  uint64_t devices;         /* external processes */
} nucleus_stats_t;

/* Attach to the nucleus under `name` (1..31 bytes of [A-Za-z0-9._-]) through
 * the socket in $NUCLEUS_SOCKET, or the default (/run/nucleus/nucleus.sock
 * for root, $XDG_RUNTIME_DIR/nucleus/nucleus.sock otherwise). With name NULL,
 * attach through the connection inherited in $NUCLEUS_FD, bound to the name
 * the parent gave. Errors: -EINVAL invalid name, -EEXIST name taken, -EACCES
 * this uid/gid may not attach, -ENOBUFS not enough free buffers for the
 * default claim, -EDQUOT this uid owns as many processes, names or buffers
 * as limits.per_uid allows, -EPERM a name that is not this uid's to take:
 * one nucleusd hands out to another (nucleusctl-<pid> is only the process
 * with that pid's) or one the configuration's names section reserves for
 * other uids and groups, -ENOENT/-ECONNREFUSED no nucleus listening. With
 * name NULL, -EACCES also when this process is not its entry's owner
 * (another uid or gid than the one its program was started as: the
 * inherited connection attaches only the owner). */
NUCLEUS_API int nucleus_attach(const char *name, nucleus_t **out);
/* Detach and free the handle. Messages queued to this process or received and
 * unanswered get dummy answers; answers still due to it are discarded. */
NUCLEUS_API void nucleus_detach(nucleus_t *n);

/* This process's name (NUL-terminated, valid until detach). */
NUCLEUS_API const char *nucleus_name(const nucleus_t *n);

/* Never blocks. Copies the message into one of this process's buffers and
 * queues it to `receiver`. An unknown receiver gives the buffer a dummy
 * answer. -ENOBUFS: every buffer of the claim is out (no wait, no borrowing);
 * -EINVAL: invalid receiver name. */
NUCLEUS_API int nucleus_send_message(nucleus_t *n, const char *receiver,
                                     const nucleus_message_t *message, nucleus_buffer_t *out);
/* Takes the first message of the queue; the caller then owes an answer on
 * *out. `sender` (may be NULL) receives the sender's name. */
NUCLEUS_API int nucleus_wait_message(nucleus_t *n, int64_t timeout_ns, char sender[32],
                                     nucleus_message_t *message, nucleus_buffer_t *out);
/* The same, with the sender's name and principal in *sender (may be NULL):
 * what an OS asks before it acts for the sender. */
NUCLEUS_API int nucleus_wait_message_from(nucleus_t *n, int64_t timeout_ns,
                                          nucleus_sender_t *sender, nucleus_message_t *message,
                                          nucleus_buffer_t *out);
/* Never blocks. Answers a buffer this process received. -EBADF: a handle this
 * process did not receive (stale, forged, foreign or already answered);
 * -EINVAL: result outside 1..4 (5 is the nucleus's). */
NUCLEUS_API int nucleus_send_answer(nucleus_t *n, nucleus_buffer_t buffer, int result,
                                    const nucleus_message_t *answer);
/* Waits for the answer to a buffer this process sent; the buffer then returns
 * to the claim. -EBADF: not a buffer this process has out. `result` and
 * `answer` may be NULL. */
NUCLEUS_API int nucleus_wait_answer(nucleus_t *n, nucleus_buffer_t buffer, int64_t timeout_ns,
                                    int *result, nucleus_message_t *answer);
/* The same, with who answered in *from (may be NULL): the receiver, a device
 * (NUCLEUS_FROM_DEVICE with its namer's owner), or the nucleus for a dummy
 * answer and the answers to stop and swap. */
NUCLEUS_API int nucleus_wait_answer_from(nucleus_t *n, nucleus_buffer_t buffer, int64_t timeout_ns,
                                         int *result, nucleus_message_t *answer,
                                         nucleus_sender_t *from);
/* Waits for the next event (message or answer) after `previous` in the queue
 * (0: from the start) without removing it. -ENOENT: `previous` is not in the
 * queue. */
NUCLEUS_API int nucleus_wait_event(nucleus_t *n, nucleus_buffer_t previous, int64_t timeout_ns,
                                   nucleus_event_t *out);
/* Never blocks. Removes the event on `buffer` from the queue: a message
 * becomes answerable, an answer's buffer returns to the claim. -ENOENT: no
 * event on that buffer is in the queue. */
NUCLEUS_API int nucleus_get_event(nucleus_t *n, nucleus_buffer_t buffer);

/* Asks nucleusd for its counters (waits for the reply). */
NUCLEUS_API int nucleus_get_stats(nucleus_t *n, nucleus_stats_t *out);

/* This process's data area in its channel: device I/O reads into and
 * writes from it, and a message may lend a range of it to its receiver. Its
 * size is the data_bytes claim (channel.data_bytes for a process that
 * attached through the socket). */
NUCLEUS_API void *nucleus_data_area(nucleus_t *n, size_t *size);

/* A descriptor readable when an event waits, for poll, epoll, select,
 * asyncio or libuv: the read end of a pipe nucleusd writes to. The first
 * call asks nucleusd for it (one round trip); later calls return the same
 * descriptor. It belongs to the handle: do not read, close or write it;
 * nucleus_detach closes it. After any call that takes or waits for events
 * (wait_message, wait_answer, wait_event, get_event, or one that waits for a
 * reply) it is readable if and only if a message or an answer waits in this
 * process's queue; an event that arrives later makes it readable. So: when
 * it is readable, take events with timeout 0 until -ETIMEDOUT, then poll
 * again. It may, rarely, be readable with nothing waiting (a byte for an
 * event already taken came late); a call with timeout 0 then returns
 * -ETIMEDOUT and clears it. At the end of the connection it hangs up
 * (POLLHUP, end of file) for good: calls then return -ESHUTDOWN or
 * -ECONNRESET.
 * Returns the descriptor (>= 0) or -errno: -EMFILE/-ENFILE no descriptor
 * left, -EAGAIN nucleusd could not send it (try again). See
 * docs/data-and-regret.md, "A descriptor to poll". */
NUCLEUS_API int nucleus_poll_descriptor(nucleus_t *n);
/* ---- data with a message, and regret (docs/data-and-regret.md) -------------
 * A message may lend its receiver a range of the sender's data area until
 * it is answered, regretted or its sender dies. The receiver copies from
 * and into the range through nucleusd (one copy each way, ranges and rights
 * checked); nothing of the sender is mapped into the receiver. */

/* Sends like nucleus_send_message, lending `lend` (offset, bytes and rights
 * in the caller's data area; NULL or bytes 0 lends nothing). Never blocks.
 * -EFAULT: the range is not inside the data area; -EINVAL: rights other
 * than NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE, none with bytes > 0, or
 * reserved not 0. A lend to a device is accepted and changes nothing: a
 * device addresses the sender's whole data area by its words
 * (docs/devices.md). */
NUCLEUS_API int nucleus_send_message_lend(nucleus_t *n, const char *receiver,
                                          const nucleus_message_t *message,
                                          const nucleus_lend_t *lend, nucleus_buffer_t *out);
/* Words and data in one call: copies `size` bytes of `data` to lend->offset
 * of the caller's data area, then sends `message` lending `lend` (size <=
 * lend->bytes; data may be NULL when size is 0, as for a range lent only
 * for the receiver to write into). Errors as nucleus_send_message_lend;
 * -EFAULT also when size > lend->bytes. */
NUCLEUS_API int nucleus_send_data(nucleus_t *n, const char *receiver,
                                  const nucleus_message_t *message, const nucleus_lend_t *lend,
                                  const void *data, size_t size, nucleus_buffer_t *out);

/* The most one copy request moves; nucleus_copy_from and nucleus_copy_to
 * split larger copies (each part checked again), so one copy never holds
 * nucleusd for long. */
#define NUCLEUS_COPY_MAX ((uint64_t)1 << 20)
/* The receiver of a message that lends (nucleus_sender_t.lend), while it
 * holds it (taken, not answered): copies `bytes` from `lend_offset` of the
 * lent range to `own_offset` of its own data area (copy_from, needs
 * NUCLEUS_LEND_READ), or the other way (copy_to, needs NUCLEUS_LEND_WRITE).
 * 0 or:
 *   -EBADF   `received` is not a message this process holds (never taken,
 *            answered, regretted, stale, forged or another's)
 *   -ENODATA the message lends nothing
 *   -EACCES  the lend does not give that right
 *   -EFAULT  the range is not inside the lent range
 *   -ERANGE  the range is not inside the caller's own data area
 *   -ESTALE  the sender's run that lent it is gone (it died, detached or
 *            was swapped): answer the message, its lend is over
 * A copy larger than NUCLEUS_COPY_MAX goes in parts: a failure after the
 * first leaves the parts before it done. */
NUCLEUS_API int nucleus_copy_from(nucleus_t *n, nucleus_buffer_t received, uint64_t lend_offset,
                                  uint64_t own_offset, uint64_t bytes);
NUCLEUS_API int nucleus_copy_to(nucleus_t *n, nucleus_buffer_t received, uint64_t lend_offset,
                                uint64_t own_offset, uint64_t bytes);
/* A round trip with data in four hand-offs, as one without
 * (docs/data-and-regret.md, "Without the copy requests").
 * A receive window: a range of the caller's own data area (bytes 0: none,
 * the default; at most NUCLEUS_COPY_MAX). When nucleusd delivers a message
 * that lends with NUCLEUS_LEND_READ while the window is free, it first
 * copies the lent range's first bytes (up to the window's size) into the
 * window: the message's sender.lend.copied says how many (0: none, use
 * nucleus_copy_from as usual). The window then holds that message's bytes
 * until the caller answers it (or it is withdrawn): messages delivered
 * meanwhile are not copied. Naming a window again frees it at once. Waits
 * for nucleusd's reply: 0, -ERANGE (not inside the data area) or -EMSGSIZE
 * (over NUCLEUS_COPY_MAX). */
NUCLEUS_API int nucleus_set_receive_window(nucleus_t *n, uint64_t offset, uint64_t bytes);
/* Answers like nucleus_send_answer and, in the same request, copies `bytes`
 * from `own_offset` of the caller's data area to the start of the range the
 * message lent (NUCLEUS_LEND_WRITE needed): the sender's answer says how
 * many came (lend.copied of nucleus_wait_answer_from's `from`; 0 if the
 * sender's run that lent it is gone). bytes 0: nucleus_send_answer. Never
 * blocks. Errors as nucleus_send_answer's and nucleus_copy_to's (-ENODATA,
 * -EACCES, -EFAULT, -ERANGE; -EMSGSIZE over NUCLEUS_COPY_MAX), and then
 * the message is not answered. */
NUCLEUS_API int nucleus_send_answer_data(nucleus_t *n, nucleus_buffer_t buffer, int result,
                                         const nucleus_message_t *answer, uint64_t own_offset,
                                         uint64_t bytes);

/* The sender withdraws a message (waits for nucleusd's reply):
 *   0          withdrawn before its receiver took it: the buffer is back in
 *              the claim at once, its lend is over, the handle is stale; the
 *              receiver never gets it
 *   -EBUSY     the receiver has taken it: its answer comes as usual
 *   -EALREADY  it is answered (or has a dummy answer): wait_answer takes it
 *   -EBADF     not a buffer this process has out */
NUCLEUS_API int nucleus_regret_message(nucleus_t *n, nucleus_buffer_t sent);

/* ---- process control -------------------------------------------------------
 * A process may apply these only to its own children. Any other name (a
 * sibling, an ancestor, a grandchild, an unknown name) gives -ESRCH, whether
 * or not the name exists. Each waits for nucleusd's reply (one round trip)
 * and none waits for the child: nucleus_stop_process answers on a buffer. */

/* A program: `path` (searched in $PATH when it has no '/'), `argv` (NULL-
 * terminated; NULL: just the path), `envp` (NULL-terminated; NULL: only
 * PATH=/usr/local/bin:/usr/bin:/bin), `cwd` (NULL: nucleusd's). The program
 * also gets NUCLEUS_FD and NUCLEUS_SOCKET and attaches with
 * nucleus_attach(NULL, ...) under the name its parent gave. At most 32 KiB
 * of strings in all (-E2BIG); every string UTF-8 (-EINVAL).
 * It runs as its owner: the caller's owner unless `user`/`group` name
 * another, which only a root-owned caller may (-EPERM); an unknown user or
 * group is -EINVAL (looked up here, in the caller's user database). For a
 * non-root owner the program has no capabilities; every program runs with
 * no_new_privs in a session of its own. */
typedef struct {
  const char *path;
  const char *const *argv;
  const char *const *envp;
  const char *cwd;
  const char *user;  /* NULL: the creator's owner; else a user name or uid */
  const char *group; /* NULL: the user's primary group (or the creator's); a name or gid */
} nucleus_program_t;

/* Claims a parent gives a child, out of its own. */
typedef struct {
  uint64_t buffers;      /* message buffers it may have out at once */
  uint64_t processes;    /* descendants it may create (each child costs 1 more) */
  uint64_t memory_bytes; /* limit of its subtree; 0: no limit of its own */
  uint64_t devices;      /* devices it (and its descendants, out of its share) may name */
  uint64_t data_bytes;   /* size of its data area; 0: the configured default. Not taken
                            from the caller's claims (it is the child's own storage) */
} nucleus_claims_t;

enum {
  NUCLEUS_PROCESS_CREATED = 1,
  NUCLEUS_PROCESS_RUNNING = 2,
  NUCLEUS_PROCESS_STOPPING = 3,
  NUCLEUS_PROCESS_STOPPED = 4,
  NUCLEUS_PROCESS_EXITED = 5 /* its program ended; its children run on */
};
enum { NUCLEUS_EXIT_NONE = 0, NUCLEUS_EXIT_CODE = 1, NUCLEUS_EXIT_SIGNAL = 2 };

typedef struct {
  char name[32];
  int state;              /* NUCLEUS_PROCESS_* */
  int exit_kind;          /* of its last run: NUCLEUS_EXIT_* */
  int exit_value;         /* exit code or signal number */
  int64_t pid;            /* Linux pid of its current or last run; 0: never ran */
  nucleus_claims_t given; /* by its parent (data_bytes: the size of its data area) */
  nucleus_claims_t used;  /* buffers out or given away; descendants' share; memory given
                             away; devices named or given away */
  uint32_t uid;           /* its owner: its program runs as this uid and gid */
  uint32_t gid;
} nucleus_process_t;

/* Creates a child in state created; its claims come out of the caller's at
 * once. -ENOBUFS: the caller has not that much left (nothing changes);
 * -EDQUOT: its owner's uid is at limits.per_uid; -EPERM: the child would
 * run as an owner the caller could not name (the owner rule: only root may
 * run a program as another uid or gid than its own, and a child of a
 * process acted for inherits that process's owner), or a name that is not
 * the child's owner's to take (nucleusctl-<pid>, or one the configuration's
 * names section reserves for other uids and groups); -EEXIST: the name is
 * taken; -EINVAL: invalid name or program. */
NUCLEUS_API int nucleus_create_process(nucleus_t *n, const char *name,
                                       const nucleus_program_t *program,
                                       const nucleus_claims_t *claims);
/* Runs the program (first start, or again after it exited: same name,
 * claims and children) and resumes a stopped child. -EALREADY: it runs;
 * -EPERM: it would run the program as an owner the caller could not name
 * (a resume is never refused so); when the program cannot run, the errno of
 * the step that failed (exec's -ENOENT, -EACCES, ...), and
 * nucleus_last_start_step says which step. */
NUCLEUS_API int nucleus_start_process(nucleus_t *n, const char *name);
/* The steps of running a program, in the order nucleusd takes them. */
#define NUCLEUS_START_STEP_NONE 0       /* none: the start was refused (the code says why) */
#define NUCLEUS_START_STEP_EXEC 1       /* exec of the program's path, as its owner */
#define NUCLEUS_START_STEP_CHDIR 2      /* entering its working directory, as its owner */
#define NUCLEUS_START_STEP_SET_IDS 3    /* taking its owner's groups, gid and uid */
#define NUCLEUS_START_STEP_CONNECTION 4 /* its connection to the nucleus (NUCLEUS_FD), fds 0-2 */
#define NUCLEUS_START_STEP_OUTPUT 5     /* its output file, opened as its owner */
#define NUCLEUS_START_STEP_PROCESS 6    /* the process: clone, cgroup, memory limit, session */
#define NUCLEUS_START_STEP_DEADLINE                              \
  7 /* it did not reach its exec within limits.launch_timeout_ms \
       (stopped, frozen or slowed before it) and was ended;      \
       the code is -ETIMEDOUT */
/* Which step failed in this handle's last nucleus_start_process that
 * returned an error (NUCLEUS_START_STEP_NONE after a refusal). The code that
 * start returned is that step's errno: NUCLEUS_START_STEP_EXEC with -EACCES
 * is a file the owner may not execute or a directory on its path it may not
 * search, not a refusal by the nucleus. A swap's NUCLEUS_SWAP_START_FAILED
 * answer has its step in word NUCLEUS_SWAP_WORD_START_STEP. */
NUCLEUS_API int nucleus_last_start_step(const nucleus_t *n);
/* What a step's failure is, to print before the path it concerns and the
 * errno's text: "cannot execute" (then "/bin/x: Permission denied"). */
NUCLEUS_API const char *nucleus_start_step_text(int step);

/* Operators and owners (what nucleusctl uses): from here on, the process
 * control calls of this handle (create, start, stop, modify, remove, get,
 * list, swap) act on the children of another: `name` "" is the root (only a
 * uid named in the configuration's operators), any other name a process
 * owned by the caller's uid and gid (an operator: any process); NULL acts
 * for the caller again. Buffers of stop and swap are the caller's own, and
 * their answers come to the caller. Only a process that attached through
 * the socket may act for another. -EACCES: not allowed; -ESRCH: no such
 * process. When the process acted for goes away, later calls fail with
 * -ESRCH; when it is given to another owner, with -EACCES. Acting for
 * another gives authority over its children, not its owner: what runs
 * still runs only as an owner the caller could name. */
NUCLEUS_API int nucleus_act_for(nucleus_t *n, const char *name);
/* Returns at once with a buffer of the caller's claim; its answer
 * (NUCLEUS_RESULT_NORMAL) arrives when the child and its whole subtree have
 * really stopped, or NUCLEUS_RESULT_REJECTED when a start came first. Wait
 * with nucleus_wait_answer / nucleus_wait_event. -EBUSY: a stop is pending. */
NUCLEUS_API int nucleus_stop_process(nucleus_t *n, const char *name, nucleus_buffer_t *out);
/* Changes the program (NULL: keep) and/or the claims (NULL: keep) of a
 * child that is created, stopped or exited; claims move between caller and
 * child. -EBUSY: it runs; -ENOBUFS: the side that gives has not enough free;
 * -EPERM: the program would run as an owner the caller could not name (the
 * child's, unless the program names another). */
NUCLEUS_API int nucleus_modify_process(nucleus_t *n, const char *name,
                                       const nucleus_program_t *program,
                                       const nucleus_claims_t *claims);
/* Ends the child and its whole subtree (every Linux process in it); their
 * claims return to the caller; messages queued to them or received by them
 * get dummy answers; their buffers out come back to the caller's claim when
 * answered. */
NUCLEUS_API int nucleus_remove_process(nucleus_t *n, const char *name);
/* The caller's children, oldest first: fills up to `capacity` entries and
 * sets *count to how many children there are (which may be more). */
NUCLEUS_API int nucleus_list_children(nucleus_t *n, nucleus_process_t *out, size_t capacity,
                                      size_t *count);
NUCLEUS_API int nucleus_get_process(nucleus_t *n, const char *name, nucleus_process_t *out);

/* Exit notices: when a child's program ends, its parent receives a message
 * from the sender "nucleus" with word 0 = NUCLEUS_NOTICE_CHILD_EXITED, word 1
 * = NUCLEUS_EXIT_*, word 2 = exit code or signal, word 3 = pid, words 4..7 =
 * the child's name (NUL-terminated). Answer it like any message. */
#define NUCLEUS_SENDER_NUCLEUS "nucleus"
#define NUCLEUS_NOTICE_CHILD_EXITED 1
typedef struct {
  char name[32];
  int exit_kind;
  int exit_value;
  int64_t pid;
} nucleus_exit_notice_t;
/* 0 and *out filled when (sender, message) is an exit notice, else -EINVAL. */
NUCLEUS_API int nucleus_parse_exit_notice(const char *sender, const nucleus_message_t *message,
                                          nucleus_exit_notice_t *out);

/* ---- external processes (devices) ------------------------------------------
 * A device is a process served inside nucleusd: send it messages and wait
 * for their answers like any process's. Word 0 of a message is the
 * operation; offsets and lengths are in the sender's own data area
 * (nucleus_data_area). Answers: NUCLEUS_RESULT_NORMAL; REJECTED when another
 * process has reserved the device; UNINTELLIGIBLE with word 0 = why (an
 * errno: EOPNOTSUPP unknown operation, EFAULT outside the data area, EINVAL
 * a malformed word, ENXIO blocks beyond the disk); MALFUNCTION with word 0 =
 * the errno of the I/O. See docs/devices.md. */
enum {
  NUCLEUS_DEVICE_CLOCK = 1,
  NUCLEUS_DEVICE_CONSOLE = 2,
  NUCLEUS_DEVICE_DISK = 3,
  NUCLEUS_DEVICE_NULL = 4
};
/* clock */
#define NUCLEUS_CLOCK_WAIT \
  1                         /* word 1 = ns; answered after that long, word 0 = CLOCK_MONOTONIC ns */
#define NUCLEUS_CLOCK_NOW 2 /* answer word 0 = CLOCK_MONOTONIC ns, word 1 = CLOCK_REALTIME ns */
/* console */
#define NUCLEUS_CONSOLE_WRITE 1 /* word 1 = offset, word 2 = length; answer word 0 = bytes */
#define NUCLEUS_CONSOLE_READ                                                                   \
  2 /* word 1 = offset, word 2 = capacity: one line; answer word 0 = bytes (with its newline), \
       word 1 = 1 at end of input */
/* disk */
#define NUCLEUS_DISK_READ 1  /* word 1 = first block, word 2 = blocks, word 3 = offset */
#define NUCLEUS_DISK_WRITE 2 /* same words; answer word 0 = bytes moved */
#define NUCLEUS_DISK_INFO 3  /* answer word 0 = block size, word 1 = block count */
/* null answers every message normal at once, all answer words 0. */

#define NUCLEUS_DEVICE_DIRECT 1 /* disk: open the backing file with O_DIRECT */

typedef struct {
  const char *path;       /* disk: backing file (absolute); console: output file or terminal */
  const char *input_path; /* console: input (NULL: path) */
  uint32_t block_size;    /* disk: a power of two in 512..65536 (0: 512) */
  uint32_t flags;         /* NUCLEUS_DEVICE_DIRECT */
} nucleus_device_parameters_t;

/* Names a device (NUCLEUS_DEVICE_*); `parameters` may be NULL for clock and
 * null. Needs one of the caller's devices claim (-ENOBUFS) and one of its
 * uid's names (-EDQUOT, limits.per_uid.names). Files are opened
 * once, by nucleusd, with the caller's uid and gid; a disk is as many blocks
 * as the file holds when it is named. A device the caller named itself (its
 * devices outlive its program's run), named again with the same kind and
 * parameters, is 0 and kept as it is (nothing reopened, no claim taken).
 * -EEXIST the name is in use otherwise (another's, a process, or the
 * caller's own device with other parameters), checked before the claim;
 * -EINVAL bad kind, parameters or relative path; an errno of open()
 * (-ENOENT, -EACCES). */
NUCLEUS_API int nucleus_create_external_process(nucleus_t *n, const char *name, int kind,
                                                const nucleus_device_parameters_t *parameters);
/* Removes a device the caller named: every message it holds gets a dummy
 * answer and its operations in flight are cancelled. -ESRCH otherwise. */
NUCLEUS_API int nucleus_remove_external_process(nucleus_t *n, const char *name);
/* Exclusive use of a device until released or the caller ends: messages from
 * anyone else are answered NUCLEUS_RESULT_REJECTED. 0 when the caller has
 * it already; -EBUSY reserved by another; -ESRCH no such name; -EINVAL the
 * name is not a device; -EPERM no right to it: only its namer, the namer's
 * ancestors and the namer's subtree may, and the root's own devices (clock,
 * console, null) only an operator. */
NUCLEUS_API int nucleus_reserve_process(nucleus_t *n, const char *name);
/* -EPERM: the caller has not reserved it. */
NUCLEUS_API int nucleus_release_process(nucleus_t *n, const char *name);

/* ---- hot swap (docs/hot-swap.md) -----------------------------------------
 * Replaces the program behind the caller's child `name` (an OS) while its
 * children run on. Returns at once with a buffer of the caller's claim; its
 * answer says what happened: NUCLEUS_RESULT_NORMAL and word 0 =
 * NUCLEUS_SWAP_DONE, or NUCLEUS_RESULT_REJECTED and word 0 why not (the old
 * program then runs on untouched), word 1 a detail (errno; exit code, or 0x100
 * + signal; with NUCLEUS_SWAP_NEW_EXITED word 7, NUCLEUS_SWAP_WORD_EXIT_KIND, says
 * which), word 2 the new pid, word 3 the old pid, word 4 the state's bytes,
 * word 5 the pause in ns (from the handover to the takeover), word 6
 * (NUCLEUS_SWAP_WORD_START_STEP) with NUCLEUS_SWAP_START_FAILED the step of
 * the new program's start that failed (NUCLEUS_START_STEP_*).
 * -EINVAL: the child is not running (or is stopped); -EBUSY: a swap of it is
 * in progress; -ESRCH: not a child of the caller; -EPERM: the program names
 * another user or group than the OS's (the new program runs as the OS's
 * owner), or the caller could not name the OS's owner. */
NUCLEUS_API int nucleus_swap_process(nucleus_t *n, const char *name,
                                     const nucleus_program_t *program, nucleus_buffer_t *out);
#define NUCLEUS_SWAP_DONE 0
#define NUCLEUS_SWAP_NO_HANDOVER 1  /* the OS did not answer the handover in time */
#define NUCLEUS_SWAP_REFUSED 2      /* it answered other than normal, or a bad offset/length */
#define NUCLEUS_SWAP_START_FAILED 3 /* the new program could not be run */
#define NUCLEUS_SWAP_NEW_EXITED 4   /* the new program ended before it was ready */
#define NUCLEUS_SWAP_NOT_READY 5    /* it did not say ready in time */
#define NUCLEUS_SWAP_OLD_EXITED 6   /* the OS ended during the swap */
#define NUCLEUS_SWAP_CANCELLED 7    /* the OS was removed during the swap */
#define NUCLEUS_SWAP_WORD_START_STEP 6
/* With NUCLEUS_SWAP_NEW_EXITED: how the new program ended, NUCLEUS_EXIT_CODE
 * (word 1: its exit code) or NUCLEUS_EXIT_SIGNAL (word 1: 0x100 + the
 * signal); NUCLEUS_EXIT_NONE: it hung up and had not ended within a second,
 * and nucleusd ended it (word 1: 0). */
#define NUCLEUS_SWAP_WORD_EXIT_KIND 7

/* The old OS's side. It receives a message from "nucleus" with word 0 =
 * NUCLEUS_NOTICE_HANDOVER (word 1: its data area's size). It hands its state
 * over with nucleus_hand_over, which copies `size` bytes to the start of its
 * data area and answers the message; after that it must not call the nucleus
 * until the swap is over: either it is ended, or (the swap failed) its calls
 * are served again and it goes on. Answering the message any other way
 * refuses the swap. -ENOSPC: the state does not fit the data area. */
#define NUCLEUS_NOTICE_HANDOVER 2
NUCLEUS_API int nucleus_hand_over(nucleus_t *n, nucleus_buffer_t handover, const void *state,
                                  size_t size);

/* The new program's side. It attaches (nucleus_attach(NULL, &n)) bearing no name
 * yet, and may prepare (read files, build tables) while the old OS hands
 * over. nucleus_handover_state waits for the state and gives it (at the
 * start of the data area); it returns NULL at once when this program is not
 * a swap's new program, and NULL when the swap failed meanwhile. The program
 * builds what it needs from the state, then calls nucleus_swap_ready, which
 * returns when it has taken over (the name, the children, the queue and
 * every buffer the old program held). -EINVAL: not a swap's new program. */
NUCLEUS_API const void *nucleus_handover_state(nucleus_t *n, size_t *size);
NUCLEUS_API int nucleus_swap_ready(nucleus_t *n);
/* After nucleus_swap_ready: the messages the old program had received and not
 * answered (kind NUCLEUS_EVENT_MESSAGE, buffer, sender, message). The new
 * program answers them; fills up to `capacity`, sets *count to how many. */
NUCLEUS_API int nucleus_inherited(nucleus_t *n, nucleus_event_t *out, size_t capacity,
                                  size_t *count);

/* A general description of a return code (0, -errno, or a NUCLEUS_RESULT_*):
 * true of every call that returns it, so it cannot say which claim, right or
 * bound refused a call. nucleus_last_error does. */
NUCLEUS_API const char *nucleus_strerror(int code);
/* The text of the last call on this thread that failed: the call, the name it
 * was about, what was refused and why, e.g.
 *   create_process "w": the processes claim of the parent is 0 (claims.processes)
 *   start_process "w": cannot execute /opt/w/bin/w: Permission denied
 *   attach "db": the name is reserved by the configuration's names section for other uids
 *   send_message "echo": every buffer of this process's claim (8) is out
 * Set by every call that returns a negative code (nucleus_attach too, before
 * a handle exists); a call that succeeds leaves it as it was. "" before any
 * failure. The pointer stays valid for the thread's life; the text changes
 * with its next failure. Texts of each situation: docs/errors.md. */
NUCLEUS_API const char *nucleus_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* NUCLEUS_NUCLEUS_H_ */
