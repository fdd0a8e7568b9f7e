/* libnucleus: the C API of the nucleus message primitives.
 *
 * Every function returns 0 (or a count) on success and a negative errno-style
 * code on failure; nucleus_strerror() describes any code. Timeouts are in
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

typedef struct {
  int kind;                  /* NUCLEUS_EVENT_MESSAGE or NUCLEUS_EVENT_ANSWER */
  int result;                /* answers: NUCLEUS_RESULT_* */
  nucleus_buffer_t buffer;   /* the buffer the event is on */
  char sender[32];           /* messages: the sender's name */
  nucleus_message_t message; /* the message or the answer */
} nucleus_event_t;

typedef struct {
  uint64_t pool_buffers;    /* size of the nucleus's pool */
  uint64_t pool_free;       /* buffers neither in use nor held by any claim */
  uint64_t processes;       /* attached processes */
  uint64_t claim_buffers;   /* this process's buffer claim */
  uint64_t claim_used;      /* of which out (sent and not yet waited for) */
  uint64_t protocol_errors; /* requests nucleusd refused from this process */
  uint64_t queue_length;    /* messages queued to or received by this process */
} nucleus_stats_t;

/* Attach to the nucleus under `name` (1..31 bytes of [A-Za-z0-9._-]) through
 * the socket in $NUCLEUS_SOCKET, or the default (/run/nucleus/nucleus.sock
 * for root, $XDG_RUNTIME_DIR/nucleus/nucleus.sock otherwise). With name NULL,
 * attach through the connection inherited in $NUCLEUS_FD, bound to the name
 * the parent gave. Errors: -EINVAL invalid name, -EEXIST name taken, -EACCES
 * this uid/gid may not attach, -ENOBUFS not enough free buffers for the
 * default claim, -ENOENT/-ECONNREFUSED no nucleus listening. */
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

/* This process's data area in its channel (for device I/O). */
NUCLEUS_API void *nucleus_data_area(nucleus_t *n, size_t *size);

/* A description of a return code (0, -errno, or a NUCLEUS_RESULT_*). */
NUCLEUS_API const char *nucleus_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* NUCLEUS_NUCLEUS_H_ */
