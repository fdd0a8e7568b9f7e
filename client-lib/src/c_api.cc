// The C API (nucleus.h) over client::Channel.
#include <cerrno>
#include <cstring>
#include <memory>

#include "client.h"

struct nucleus_handle {
  std::unique_ptr<nucleus::client::Channel> channel;
};

extern "C" {

int nucleus_attach(const char *name, nucleus_t **out) {
  if (out == nullptr) return -EINVAL;
  std::unique_ptr<nucleus::client::Channel> ch;
  if (int rc = nucleus::client::Channel::attach(name, &ch); rc < 0) return rc;
  *out = new nucleus_t{std::move(ch)};
  return 0;
}

void nucleus_detach(nucleus_t *n) {
  delete n;
}

const char *nucleus_name(const nucleus_t *n) {
  return n == nullptr ? "" : n->channel->name().c_str();
}

int nucleus_send_message(nucleus_t *n, const char *receiver, const nucleus_message_t *message,
                         nucleus_buffer_t *out) {
  if (n == nullptr) return -EINVAL;
  return n->channel->send_message(receiver, message, out);
}

int nucleus_wait_message(nucleus_t *n, int64_t timeout_ns, char sender[32],
                         nucleus_message_t *message, nucleus_buffer_t *out) {
  if (n == nullptr) return -EINVAL;
  return n->channel->wait_message(timeout_ns, sender, message, out);
}

int nucleus_send_answer(nucleus_t *n, nucleus_buffer_t buffer, int result,
                        const nucleus_message_t *answer) {
  if (n == nullptr) return -EINVAL;
  return n->channel->send_answer(buffer, result, answer);
}

int nucleus_wait_answer(nucleus_t *n, nucleus_buffer_t buffer, int64_t timeout_ns, int *result,
                        nucleus_message_t *answer) {
  if (n == nullptr) return -EINVAL;
  return n->channel->wait_answer(buffer, timeout_ns, result, answer);
}

int nucleus_wait_event(nucleus_t *n, nucleus_buffer_t previous, int64_t timeout_ns,
                       nucleus_event_t *out) {
  if (n == nullptr) return -EINVAL;
  return n->channel->wait_event(previous, timeout_ns, out);
}

int nucleus_get_event(nucleus_t *n, nucleus_buffer_t buffer) {
  if (n == nullptr) return -EINVAL;
  return n->channel->get_event(buffer);
}

int nucleus_get_stats(nucleus_t *n, nucleus_stats_t *out) {
  if (n == nullptr) return -EINVAL;
  return n->channel->get_stats(out);
}

void *nucleus_data_area(nucleus_t *n, size_t *size) {
  if (n == nullptr) return nullptr;
  return n->channel->data_area(size);
}

const char *nucleus_strerror(int code) {
  switch (code) {
    case 0: return "success";
    case NUCLEUS_RESULT_NORMAL: return "normal answer";
    case NUCLEUS_RESULT_REJECTED: return "rejected";
    case NUCLEUS_RESULT_UNINTELLIGIBLE: return "unintelligible";
    case NUCLEUS_RESULT_MALFUNCTION: return "malfunction";
    case NUCLEUS_RESULT_DUMMY: return "dummy answer: the receiver does not exist";
    case -ENOBUFS: return "buffer claim exhausted: every message buffer of this process is out";
    case -EBADF: return "not a buffer this process may use here (stale, forged or foreign handle)";
    case -EEXIST: return "name already taken";
    case -EINVAL: return "invalid argument (a name must be 1..31 bytes of [A-Za-z0-9._-])";
    case -EACCES: return "this user or group may not attach to the nucleus";
    case -ETIMEDOUT: return "timed out";
    case -ENOENT: return "no such event in the queue, or no nucleus socket";
    case -ESHUTDOWN: return "the nucleus is shutting down or detached this process";
    case -ECONNRESET: return "the nucleus went away";
    case -ECONNREFUSED: return "no nucleus is listening on the socket";
    case -EPROTO: return "protocol mismatch with the nucleus";
    default: break;
  }
  if (code < 0) return std::strerror(-code);
  return "unknown code";
}

}  // extern "C"
