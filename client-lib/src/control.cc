// libnucleus: process control requests (create, start, stop, modify,
// remove, get, list). Each is one request and one reply from nucleusd; a
// program travels first as kStageProgram chunks in the same ring.
#include <grp.h>
#include <pwd.h>
#include <algorithm>
#include <cstring>
#include <string>

#include "client.h"

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

}  // namespace

int Channel::checked_name(const char *name, wire::Request *r) {
  if (name == nullptr) return -EINVAL;
  int len = wire::name_length(name, std::strlen(name) + 1);
  if (len < 0) return -EINVAL;
  std::memcpy(r->name, name, static_cast<size_t>(len));
  return closed_error();
}

int Channel::control(wire::Request r, wire::Event *reply) {
  r.seq = ++seq_;
  if (int rc = push_request(r, true); rc < 0) return rc;
  return wait_for(-1, [&]() -> int {
    auto it = std::find_if(replies_.begin(), replies_.end(),
                           [&](const wire::Event &e) { return e.seq == r.seq; });
    if (it == replies_.end()) return 1;
    if (reply != nullptr) *reply = *it;
    int rc = it->result;
    replies_.erase(it);
    return rc;
  });
}

int Channel::stage_program(const nucleus_program_t *program) {
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
    return -E2BIG;
  }
  std::string bytes(reinterpret_cast<const char *>(&header), sizeof(header));
  bytes += strings;
  return stage_bytes(bytes);
}

int Channel::stage_bytes(const std::string &bytes) {
  for (size_t pos = 0; pos < bytes.size(); pos += wire::kStageChunkBytes) {
    size_t n = std::min<size_t>(wire::kStageChunkBytes, bytes.size() - pos);
    wire::Request r{};
    r.op = static_cast<uint32_t>(wire::Op::kStageProgram);
    r.arg = static_cast<int64_t>(n);
    char chunk[wire::kStageChunkBytes] = {};
    bytes.copy(chunk, n, pos);
    std::memcpy(r.name, chunk, sizeof(r.name));
    std::memcpy(&r.message, chunk + sizeof(r.name), sizeof(r.message));
    if (int rc = push_request(r, false); rc < 0) return rc;
  }
  return 0;
}

int Channel::create_process(const char *name, const nucleus_program_t *program,
                            const nucleus_claims_t *claims) {
  wire::Request r{};
  if (claims == nullptr) return -EINVAL;
  if (int rc = checked_name(name, &r); rc < 0) return rc;
  if (int rc = stage_program(program); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kCreateProcess);
  fill_claims(claims, &r.message);
  return control(r, nullptr);
}

int Channel::act_for(const char *name) {
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kActFor);
  if (name == nullptr) {
    r.arg = wire::kActForSelf;
  } else if (name[0] == '\0') {
    r.arg = wire::kActForRoot;
  } else {
    if (int rc = checked_name(name, &r); rc < 0) return rc;
    r.arg = wire::kActForProcess;
  }
  return control(r, nullptr);
}

int Channel::start_process(const char *name) {
  wire::Request r{};
  if (int rc = checked_name(name, &r); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kStartProcess);
  return control(r, nullptr);
}

int Channel::stop_process(const char *name, nucleus_buffer_t *out) {
  wire::Request r{};
  if (out == nullptr) return -EINVAL;
  if (int rc = checked_name(name, &r); rc < 0) return rc;
  uint32_t slot = 0;
  if (int rc = take_free_slot(&slot); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kStopProcess);
  return control_on_slot(r, slot, out);
}

int Channel::control_on_slot(wire::Request r, uint32_t slot, nucleus_buffer_t *out) {
  r.handle = wire::next_handle(slots_[slot].handle);
  if (int rc = control(r, nullptr); rc < 0) return rc;
  // The answer comes on this buffer like any answer.
  std::erase(free_slots_, slot);
  slots_[slot].handle = r.handle;
  slots_[slot].out = true;
  *out = r.handle;
  return 0;
}

int Channel::swap_process(const char *name, const nucleus_program_t *program,
                          nucleus_buffer_t *out) {
  wire::Request r{};
  if (out == nullptr || program == nullptr) return -EINVAL;
  if (int rc = checked_name(name, &r); rc < 0) return rc;
  uint32_t slot = 0;
  if (int rc = take_free_slot(&slot); rc < 0) return rc;
  if (int rc = stage_program(program); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kSwapProcess);
  return control_on_slot(r, slot, out);
}

int Channel::hand_over(nucleus_buffer_t handover, const void *state, size_t size) {
  if (state == nullptr && size != 0) return -EINVAL;
  if (received_.count(handover) == 0) return -EBADF;
  if (size > hdr_->data_bytes) return -ENOSPC;
  if (size != 0) std::memmove(base_ + hdr_->data_offset, state, size);
  nucleus_message_t answer{};
  answer.word[wire::kHandoverOffset] = 0;
  answer.word[wire::kHandoverLength] = size;
  return send_answer(handover, NUCLEUS_RESULT_NORMAL, &answer);
}

const void *Channel::handover_state(size_t *size) {
  if (!successor_) return nullptr;
  // The old OS hands over while we wait (or the swap fails and we are ended).
  if (wait_for(-1, [&]() { return have_state_ ? 0 : 1; }) < 0) return nullptr;
  if (size != nullptr) *size = handover_bytes_;
  return base_ + hdr_->data_offset;
}

int Channel::swap_ready() {
  if (!successor_) return -EINVAL;
  if (handover_state(nullptr) == nullptr) return closed_error() < 0 ? closed_error() : -EPROTO;
  wire::Request r{};
  r.op = static_cast<uint32_t>(wire::Op::kSwapReady);
  if (int rc = control(r, nullptr); rc < 0) return rc;
  successor_ = false;  // it bears the name now; the kInherit events came first
  return 0;
}

int Channel::modify_process(const char *name, const nucleus_program_t *program,
                            const nucleus_claims_t *claims) {
  wire::Request r{};
  if (int rc = checked_name(name, &r); rc < 0) return rc;
  if (program != nullptr) {
    if (int rc = stage_program(program); rc < 0) return rc;
    r.arg |= wire::kModifyProgram;
  }
  if (claims != nullptr) {
    fill_claims(claims, &r.message);
    r.arg |= wire::kModifyClaims;
  }
  r.op = static_cast<uint32_t>(wire::Op::kModifyProcess);
  return control(r, nullptr);
}

int Channel::remove_process(const char *name) {
  wire::Request r{};
  if (int rc = checked_name(name, &r); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kRemoveProcess);
  return control(r, nullptr);
}

int Channel::get_process(const char *name, nucleus_process_t *out) {
  wire::Request r{};
  if (out == nullptr) return -EINVAL;
  if (int rc = checked_name(name, &r); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kGetProcess);
  wire::Event reply{};
  if (int rc = control(r, &reply); rc < 0) return rc;
  fill_process(reply, out);
  return 0;
}

int Channel::list_children(nucleus_process_t *out, size_t capacity, size_t *count) {
  if (count == nullptr || (out == nullptr && capacity > 0)) return -EINVAL;
  if (int rc = closed_error(); rc < 0) return rc;
  size_t total = 0;
  size_t first = 0;
  do {
    wire::Request r{};
    r.op = static_cast<uint32_t>(wire::Op::kListChildren);
    r.seq = ++seq_;
    r.arg = static_cast<int64_t>(first);
    if (int rc = push_request(r, true); rc < 0) return rc;
    // One reply per child from `first` (up to a page), or one that only
    // says how many there are.
    size_t got = 0;
    bool seen = false;
    int rc = wait_for(-1, [&]() -> int {
      for (auto it = replies_.begin(); it != replies_.end();) {
        if (it->seq != r.seq) {
          ++it;
          continue;
        }
        seen = true;
        total = it->handle;
        if (it->reserved0 != UINT32_MAX) {
          if (it->reserved0 < capacity) fill_process(*it, &out[it->reserved0]);
          ++got;
        }
        it = replies_.erase(it);
      }
      if (!seen) return 1;
      size_t want = first < total ? std::min<size_t>(wire::kListPage, total - first) : 0;
      return got >= want ? 0 : 1;
    });
    if (rc < 0) return rc;
    first += got;
    if (got == 0) break;
  } while (first < total && first < capacity);
  *count = total;
  return 0;
}

int Channel::create_external_process(const char *name, int kind,
                                     const nucleus_device_parameters_t *parameters) {
  wire::Request r{};
  if (int rc = checked_name(name, &r); rc < 0) return rc;
  if (kind < 1 || kind >= static_cast<int>(wire::kDeviceKindCount)) return -EINVAL;
  std::string paths;
  if (parameters != nullptr && (parameters->path != nullptr || parameters->input_path != nullptr)) {
    append(&paths, parameters->path);
    append(&paths, parameters->input_path);
  }
  if (paths.size() > wire::kMaxProgramBytes) return -E2BIG;
  if (int rc = stage_bytes(paths); rc < 0) return rc;
  r.op = static_cast<uint32_t>(wire::Op::kCreateExternal);
  r.arg = kind;
  if (parameters != nullptr) {
    r.message.word[wire::kDeviceBlockSize] = parameters->block_size;
    r.message.word[wire::kDeviceFlags] = parameters->flags;
  }
  return control(r, nullptr);
}

int Channel::device_request(wire::Op op, const char *name) {
  wire::Request r{};
  if (int rc = checked_name(name, &r); rc < 0) return rc;
  r.op = static_cast<uint32_t>(op);
  return control(r, nullptr);
}

}  // namespace nucleus::client
