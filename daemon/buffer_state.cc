#include "buffer_state.h"

namespace nucleus::daemon {

namespace {

using S = BufferState;
using O = std::optional<BufferState>;
constexpr O kNo = std::nullopt;

// kTable[state][event]; columns in BufferEvent order.
// clang-format off
constexpr O kTable[kBufferStateCount][kBufferEventCount] = {
  //              send        undeliverable  take          answer        release    receiver gone  sender gone   regret
  /* free */     {S::kQueued, S::kAnswered,  kNo,          kNo,          kNo,       kNo,           kNo,          kNo},
  /* queued */   {kNo,        kNo,           S::kReceived, kNo,          kNo,       S::kAnswered,  S::kQueued,   S::kFree},
  /* received */ {kNo,        kNo,           kNo,          S::kAnswered, kNo,       S::kAnswered,  S::kReceived, kNo},
  /* answered */ {kNo,        kNo,           kNo,          kNo,          S::kFree,  S::kAnswered,  S::kFree,     kNo},
};
// clang-format on

}  // namespace

std::optional<BufferState> buffer_transition(BufferState state, BufferEvent event) {
  return kTable[static_cast<int>(state)][static_cast<int>(event)];
}

const char *to_string(BufferState state) {
  switch (state) {
    case S::kFree: return "free";
    case S::kQueued: return "queued";
    case S::kReceived: return "received";
    case S::kAnswered: return "answered";
  }
  return "?";
}

const char *to_string(BufferEvent event) {
  switch (event) {
    case BufferEvent::kSend: return "send";
    case BufferEvent::kSendUndeliverable: return "send-undeliverable";
    case BufferEvent::kTake: return "take";
    case BufferEvent::kAnswer: return "answer";
    case BufferEvent::kRelease: return "release";
    case BufferEvent::kReceiverGone: return "receiver-gone";
    case BufferEvent::kSenderGone: return "sender-gone";
    case BufferEvent::kRegret: return "regret";
  }
  return "?";
}

}  // namespace nucleus::daemon
