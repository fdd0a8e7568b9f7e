// libnucleus: process control requests (process_control.h). Each is one
// request and one reply from nucleusd; a program travels first as
// kStageProgram chunks in the same ring.
#include "process_control.h"

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "causes.h"

namespace nucleus::client {

namespace {

void append(std::string *out, const char *s) {
  out->append(s == nullptr ? "" : s);
  out->push_back('\0');
}

// A user by name or number: its uid and primary gid (*gid stays
// kOwnerDefault for a number the user database does not know). -ENOENT.
int lookup_user(const char *text, uint32_t *uid, uint32_t *gid) {
  passwd pw{};
  passwd *found = nullptr;
  char buf[4096];
  char *end = nullptr;
  errno = 0;
  unsigned long number = std::strtoul(text, &end, 10);
  bool numeric =
      *text >= '0' && *text <= '9' && *end == '\0' && errno == 0 && number < wire::kOwnerDefault;
  int rc = numeric ? getpwuid_r(static_cast<uid_t>(number), &pw, buf, sizeof(buf), &found)
                   : getpwnam_r(text, &pw, buf, sizeof(buf), &found);
  if (rc == 0 && found != nullptr) {
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    return 0;
  }
  if (!numeric) return -ENOENT;
  *uid = static_cast<uint32_t>(number);
  return 0;
}

int lookup_group(const char *text, uint32_t *gid) {
  char *end = nullptr;
  errno = 0;
  unsigned long number = std::strtoul(text, &end, 10);
  if (*text >= '0' && *text <= '9' && *end == '\0' && errno == 0 && number < wire::kOwnerDefault) {
    *gid = static_cast<uint32_t>(number);
    return 0;
  }
  group gr{};
  group *found = nullptr;
  char buf[4096];
  if (getgrnam_r(text, &gr, buf, sizeof(buf), &found) != 0 || found == nullptr) return -ENOENT;
  *gid = gr.gr_gid;
  return 0;
}

void fill_claims(const nucleus_claims_t *claims, wire::Message *m) {
  m->word[wire::kClaimBuffers] = claims->buffers;
  m->word[wire::kClaimProcesses] = claims->processes;
  m->word[wire::kClaimMemory] = claims->memory_bytes;
  m->word[wire::kClaimDevices] = claims->devices;
  m->word[wire::kClaimDataBytes] = claims->data_bytes;
}

void fill_process(const wire::Event &e, nucleus_process_t *out) {
  *out = nucleus_process_t{};
  std::memcpy(out->name, e.sender, sizeof(out->name));
  out->name[sizeof(out->name) - 1] = '\0';
  const uint64_t *w = e.message.word;
  out->state = static_cast<int>(w[wire::kInfoState] & 0xff);
  out->exit_kind = static_cast<int>((w[wire::kInfoState] >> 8) & 0xff);
  out->exit_value = static_cast<int32_t>(w[wire::kInfoState] >> 32);
  out->pid = static_cast<int64_t>(w[wire::kInfoPid] & UINT32_MAX);
  out->uid = static_cast<uint32_t>(w[wire::kInfoPid] >> 32);
  out->gid = static_cast<uint32_t>(e.extra >> 32);
  uint64_t given = w[wire::kInfoGivenProcesses];
  uint64_t used = w[wire::kInfoUsedProcesses];
  out->given = {w[wire::kInfoGivenBuffers], given & UINT32_MAX, w[wire::kInfoGivenMemory],
                given >> 32, e.extra & UINT32_MAX};
  out->used = {w[wire::kInfoUsedBuffers], used & UINT32_MAX, w[wire::kInfoUsedMemory], used >> 32,
               0};
}

// Copies a valid name into the request; then the channel's error, if any.
int checked_name(Channel &ch, const char *name, wire::Request *r) {
  if (name == nullptr) return -EINVAL;
  int len = wire::name_length(name, std::strlen(name) + 1);
  if (len < 0) {
    note_cause(-EINVAL, wire::kCauseBadName);
    return -EINVAL;
  }
  std::memcpy(r->name, name, static_cast<size_t>(len));
  return ch.closed_error();
}

int stage_bytes(Channel &ch, const std::string &bytes) {
  for (size_t pos = 0; pos < bytes.size(); pos += wire::kStageChunkBytes) {
    size_t n = std::min<size_t>(wire::kStageChunkBytes, bytes.size() - pos);
    wire::Request r{};
    r.op = static_cast<uint32_t>(wire::Op::kStageProgram);
    r.arg = static_cast<int64_t>(n);
    char chunk[wire::kStageChunkBytes] = {};
    bytes.copy(chunk, n, pos);
    std::memcpy(r.name, chunk, sizeof(r.name));
    std::memcpy(&r.message, chunk + sizeof(r.name), sizeof(r.message));
    if (int rc = ch.push(r); rc < 0) return rc;
  }
  return 0;
}

int stage_program(Channel &ch, const nucleus_program_t *program) {
  if (program == nullptr || program->path == nullptr || program->path[0] == '\0') return -EINVAL;
  wire::ProgramHeader header{};
  header.uid = wire::kOwnerDefault;
  header.gid = wire::kOwnerDefault;
  if (program->group != nullptr && lookup_group(program->group, &header.gid) < 0) return -EINVAL;
  if (program->user != nullptr) {
    uint32_t primary = wire::kOwnerDefault;
    if (lookup_user(program->user, &header.uid, &primary) < 0) return -EINVAL;
    if (header.gid == wire::kOwnerDefault) header.gid = primary;
  }
  std::string strings;
  append(&strings, program->path);
  append(&strings, program->cwd);
  for (const char *const *a = program->argv; a != nullptr && *a != nullptr; ++a) {
    append(&strings, *a);
    ++header.argc;
  }
  for (const char *const *e = program->envp; e != nullptr && *e != nullptr; ++e) {
    if (std::strchr(*e, '=') == nullptr) return -EINVAL;
    append(&strings, *e);
    ++header.envc;
  }
  if (header.argc + header.envc > wire::kMaxProgramStrings ||
      sizeof(header) + strings.size() > wire::kMaxProgramBytes) {
    note_cause(-E2BIG, wire::kCauseProgramTooBig);
    return -E2BIG;
  }
  std::string bytes(reinterpret_cast<const char *>(&header), sizeof(header));
  bytes += strings;
  return stage_bytes(ch, bytes);
}

}  // namespace

int create_process(Channel &ch, const char *name, const nucleus_program_t *program,
                   const nucleus_claims_t *claims) {
  wire::Request r{};
  if (claims == nullptr) return -EINVAL;
  if (int rc = checked_name(ch, name, &r); rc < 0) return rc;
  if (int rc = stage_program(ch, program); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kCreateProcess);
  fill_claims(claims, &r.message);
  return ch.call(r, nullptr);
}

int act_for(Channel &ch, const char *name) {
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kActFor);
  if (name == nullptr) {
    r.arg = wire::kActForSelf;
  } else if (name[0] == '\0') {
    r.arg = wire::kActForRoot;
  } else {
    if (int rc = checked_name(ch, name, &r); rc < 0) return rc;
    r.arg = wire::kActForProcess;
  }
  return ch.call(r, nullptr);
}

int start_process(Channel &ch, const char *name, int *step) {
  *step = wire::kStartStepNone;
  wire::Request r{};
  if (int rc = checked_name(ch, name, &r); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kStartProcess);
  wire::Event reply{};  // stays all zero (no step) when no reply came
  int rc = ch.call(r, &reply);
  uint64_t said = reply.message.word[wire::kStartFailedStep];
  if (rc < 0 && said <= wire::kStartStepLast) *step = static_cast<int>(said);
  return rc;
}

int stop_process(Channel &ch, const char *name, nucleus_buffer_t *out) {
  wire::Request r{};
  if (out == nullptr) return -EINVAL;
  if (int rc = checked_name(ch, name, &r); rc < 0) return rc;
  uint32_t slot = 0;
  if (int rc = ch.find_free_slot(&slot); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kStopProcess);
  return ch.call_on_slot(r, slot, out);
}

int swap_process(Channel &ch, const char *name, const nucleus_program_t *program,
                 nucleus_buffer_t *out) {
  wire::Request r{};
  if (out == nullptr || program == nullptr) return -EINVAL;
  if (int rc = checked_name(ch, name, &r); rc < 0) return rc;
  uint32_t slot = 0;
  if (int rc = ch.find_free_slot(&slot); rc < 0) return rc;
  if (int rc = stage_program(ch, program); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kSwapProcess);
  return ch.call_on_slot(r, slot, out);
}

int modify_process(Channel &ch, const char *name, const nucleus_program_t *program,
                   const nucleus_claims_t *claims) {
  wire::Request r{};
  if (int rc = checked_name(ch, name, &r); rc < 0) return rc;
  if (program != nullptr) {
    if (int rc = stage_program(ch, program); rc < 0) return rc;
    r.arg |= wire::kModifyProgram;
  }
  if (claims != nullptr) {
    fill_claims(claims, &r.message);
    r.arg |= wire::kModifyClaims;
  }
  r.op = static_cast<uint32_t>(wire::Op::kModifyProcess);
  return ch.call(r, nullptr);
}

int remove_process(Channel &ch, const char *name) {
  wire::Request r{};
  if (int rc = checked_name(ch, name, &r); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kRemoveProcess);
  return ch.call(r, nullptr);
}

int get_process(Channel &ch, const char *name, nucleus_process_t *out) {
  wire::Request r{};
  if (out == nullptr) return -EINVAL;
  if (int rc = checked_name(ch, name, &r); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kGetProcess);
  wire::Event reply{};
  if (int rc = ch.call(r, &reply); rc < 0) return rc;
  fill_process(reply, out);
  return 0;
}

int list_children(Channel &ch, nucleus_process_t *out, size_t capacity, size_t *count) {
  if (count == nullptr || (out == nullptr && capacity > 0)) return -EINVAL;
  if (int rc = ch.closed_error(); rc < 0) return rc;
  size_t total = 0;
  size_t first = 0;
  do {
    wire::Request r{};
    r.op = static_cast<uint32_t>(wire::Op::kListChildren);
    r.arg = static_cast<int64_t>(first);
    // One reply per child from `first` (up to a page), or one that only
    // says how many there are.
    size_t got = 0;
    bool seen = false;
    int rc = ch.call_each(
        r,
        [&](const wire::Event &e) {
          seen = true;
          total = e.handle;
          if (e.index != UINT32_MAX) {
            if (e.index < capacity) fill_process(e, &out[e.index]);
            ++got;
          }
        },
        [&] {
          if (!seen) return false;
          size_t want = first < total ? std::min<size_t>(wire::kListPage, total - first) : 0;
          return got >= want;
        });
    if (rc < 0) return rc;
    first += got;
    if (got == 0) break;
  } while (first < total && first < capacity);
  *count = total;
  return 0;
}

int create_external_process(Channel &ch, const char *name, int kind,
                            const nucleus_device_parameters_t *parameters) {
  wire::Request r{};
  if (int rc = checked_name(ch, name, &r); rc < 0) return rc;
  if (kind < 1 || kind >= static_cast<int>(wire::kDeviceKindCount)) return -EINVAL;
  std::string paths;
  if (parameters != nullptr && (parameters->path != nullptr || parameters->input_path != nullptr)) {
    append(&paths, parameters->path);
    append(&paths, parameters->input_path);
  }
  if (paths.size() > wire::kMaxProgramBytes) return -E2BIG;
  if (int rc = stage_bytes(ch, paths); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kCreateExternal);
  r.arg = kind;
  if (parameters != nullptr) {
    r.message.word[wire::kDeviceBlockSize] = parameters->block_size;
    r.message.word[wire::kDeviceFlags] = parameters->flags;
  }
  return ch.call(r, nullptr);
}

int device_request(Channel &ch, wire::Op op, const char *name) {
  wire::Request r{};
  if (int rc = checked_name(ch, name, &r); rc < 0) return rc;
  r.op = static_cast<uint32_t>(op);
  return ch.call(r, nullptr);
}

}  // namespace nucleus::client
