#include "dispatch.h"

#include <string_view>

namespace nucleus::daemon {

namespace {

DispatchResult stats_reply(const Core &core, uint32_t id, const wire::Request &r,
                           wire::Event *reply) {
  ProcessStats s = core.stats(id);
  *reply = wire::Event{};
  reply->kind = static_cast<uint32_t>(wire::EventKind::kReply);
  reply->seq = r.seq;
  reply->result = 0;
  uint64_t *w = reply->message.word;
  w[wire::kStatsPoolBuffers] = core.pool().size();
  w[wire::kStatsPoolFree] = core.pool().free_count() + core.notice_free();
  w[wire::kStatsProcesses] = core.processes().count() - core.devices().size();
  w[wire::kStatsDevices] = core.devices().size();
  w[wire::kStatsClaimBuffers] = s.claim_buffers;
  w[wire::kStatsClaimUsed] = s.claim_used;
  w[wire::kStatsProtocolErrors] = core.processes().at(id).protocol_errors;
  w[wire::kStatsQueueLength] = s.queue_length;
  return {Error::kNone, true};
}

}  // namespace

DispatchResult dispatch_request(Core &core, uint32_t id, const wire::Request &r,
                                wire::Event *reply) {
  if (r.op >= wire::kOpCount) return {Error::kProtocol, false};
  switch (static_cast<wire::Op>(r.op)) {
    case wire::Op::kNop: return {};
    case wire::Op::kSendMessage: {
      int len = wire::name_length(r.name, sizeof(r.name));
      if (len < 0) return {Error::kInvalid, false};
      return {core.send_message(id, r.handle, std::string_view(r.name, static_cast<size_t>(len)),
                                r.message),
              false};
    }
    case wire::Op::kGetEvent: return {core.get_event(id, r.handle), false};
    case wire::Op::kSendAnswer:
      if (r.arg < wire::kResultNormal || r.arg > wire::kResultMalfunction) {
        return {Error::kInvalid, false};
      }
      return {core.send_answer(id, r.handle, static_cast<int32_t>(r.arg), r.message), false};
    case wire::Op::kReleaseAnswer: return {core.release_answer(id, r.handle), false};
    case wire::Op::kGetStats: return stats_reply(core, id, r, reply);
    // Process control needs the Linux side: the server serves these
    // (server_control.cc) and never passes them here.
    case wire::Op::kStageProgram:
    case wire::Op::kCreateProcess:
    case wire::Op::kStartProcess:
    case wire::Op::kStopProcess:
    case wire::Op::kModifyProcess:
    case wire::Op::kRemoveProcess:
    case wire::Op::kGetProcess:
    case wire::Op::kListChildren:
    case wire::Op::kCreateExternal:
    case wire::Op::kRemoveExternal:
    case wire::Op::kReserveProcess:
    case wire::Op::kReleaseProcess:
    case wire::Op::kSwapProcess:
    case wire::Op::kSwapReady:
    case wire::Op::kActFor: break;
  }
  return {Error::kProtocol, false};
}

}  // namespace nucleus::daemon
