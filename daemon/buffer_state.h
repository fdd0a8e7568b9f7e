// The state machine of one message buffer, as an explicit table.
//
//   free --send--> queued --take--> received --answer--> answered --release--> free
//
// plus the edges for an unknown receiver (free -> answered with a dummy
// answer), for a receiver that goes away (queued/received -> answered with a
// dummy answer), for a sender that goes away (answered -> free; queued and
// received stay and are freed when answered) and for a regret (queued ->
// free: the sender withdraws a message its receiver has not taken; a regret
// of a received or answered buffer is refused and says so, EBUSY or
// EALREADY, messages.h). Every cell not listed is a protocol error and
// leaves the buffer as it was.
#pragma once

#include <cstdint>
#include <optional>

namespace nucleus::daemon {

enum class BufferState : uint8_t { kFree, kQueued, kReceived, kAnswered };
inline constexpr int kBufferStateCount = 4;

enum class BufferEvent : uint8_t {
  kSend,               // the sender queues a message to a known receiver
  kSendUndeliverable,  // the sender names a receiver that does not exist
  kTake,               // the receiver takes the message (wait_message / get_event)
  kAnswer,             // the receiver answers it
  kRelease,            // the sender takes the answer (wait_answer / get_event)
  kReceiverGone,       // the receiver detached or died
  kSenderGone,         // the sender detached or died
  kRegret,             // the sender withdraws it (regret_message)
};
inline constexpr int kBufferEventCount = 8;

// The state after `event` in `state`, or nothing when the event is not
// allowed there.
std::optional<BufferState> buffer_transition(BufferState state, BufferEvent event);

const char *to_string(BufferState state);
const char *to_string(BufferEvent event);

}  // namespace nucleus::daemon
