// Why a call failed, as text (nucleus_last_error): the one table of causes
// (causes.cc) and the thread's record of the last failure. Internal to
// libnucleus.
//
// A refusal's cause comes with nucleusd's reply (wire::Event::cause,
// cause_errno, cause_value; an AttachReply's reserved word), or from the
// library's own checks (wire::kCauseLibrary and on). The Channel notes it
// where the refusal is seen (note_cause); the C API, when the call returns
// the error, makes the per-call text from it (failed). Nothing here runs on
// a call that succeeds.
//
// Threading: the record and the text are the calling thread's own.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace nucleus::client {

// The text of one cause: "the processes claim of the parent is 0
// (claims.processes)". An unknown cause, or none, gives the errno's
// general text (nucleus_strerror).
std::string cause_text(int code, uint32_t cause, int32_t cause_errno, uint64_t value,
                       std::string_view path);

// Every cause up to wire::kCauseLast, and the library's, has its row.
bool every_cause_has_text();

// Notes the cause of a refusal about to be returned as `code` on this
// thread (the last note wins; the next failed() takes it).
void note_cause(int code, uint32_t cause, uint64_t value = 0, int32_t cause_errno = 0,
                std::string_view path = {});
// The cause a refused reply carries (result < 0); a start's path too.
void note_reply_cause(const wire::Event &reply);

// Makes this thread's text for `call` (on `name`, may be null) that
// returned `code` < 0, from the cause noted for that code (then
// forgotten), and returns `code`.
int failed(const char *call, const char *name, int code);

// This thread's text of its last failed call ("" before any).
const char *last_error();

}  // namespace nucleus::client
