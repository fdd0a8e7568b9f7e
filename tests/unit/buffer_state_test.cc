// Every cell of the buffer state table, against a table written out here
// independently of daemon/buffer_state.cc.
#include "buffer_state.h"

#include <gtest/gtest.h>

#include <optional>
#include <ostream>

namespace nucleus::daemon {
namespace {

using S = BufferState;
using E = BufferEvent;

struct Cell {
  S from;
  E event;
  std::optional<S> to;
};

// clang-format off
const Cell kExpected[] = {
  {S::kFree, E::kSend, S::kQueued},
  {S::kFree, E::kSendUndeliverable, S::kAnswered},
  {S::kFree, E::kTake, std::nullopt},
  {S::kFree, E::kAnswer, std::nullopt},
  {S::kFree, E::kRelease, std::nullopt},
  {S::kFree, E::kReceiverGone, std::nullopt},
  {S::kFree, E::kSenderGone, std::nullopt},
  {S::kFree, E::kRegret, std::nullopt},  // regret twice, or of a buffer never sent: EBADF

  {S::kQueued, E::kSend, std::nullopt},
  {S::kQueued, E::kSendUndeliverable, std::nullopt},
  {S::kQueued, E::kTake, S::kReceived},
  {S::kQueued, E::kAnswer, std::nullopt},  // must be taken before it is answered
  {S::kQueued, E::kRelease, std::nullopt},
  {S::kQueued, E::kReceiverGone, S::kAnswered},  // dummy answer
  {S::kQueued, E::kSenderGone, S::kQueued},      // stays; freed when answered
  {S::kQueued, E::kRegret, S::kFree},  // withdrawn before its receiver took it

  {S::kReceived, E::kSend, std::nullopt},
  {S::kReceived, E::kSendUndeliverable, std::nullopt},
  {S::kReceived, E::kTake, std::nullopt},
  {S::kReceived, E::kAnswer, S::kAnswered},
  {S::kReceived, E::kRelease, std::nullopt},
  {S::kReceived, E::kReceiverGone, S::kAnswered},  // dummy answer
  {S::kReceived, E::kSenderGone, S::kReceived},
  {S::kReceived, E::kRegret, std::nullopt},  // taken: EBUSY, answered as usual

  {S::kAnswered, E::kSend, std::nullopt},
  {S::kAnswered, E::kSendUndeliverable, std::nullopt},
  {S::kAnswered, E::kTake, std::nullopt},
  {S::kAnswered, E::kAnswer, std::nullopt},  // answered twice
  {S::kAnswered, E::kRelease, S::kFree},
  {S::kAnswered, E::kReceiverGone, S::kAnswered},
  {S::kAnswered, E::kSenderGone, S::kFree},
  {S::kAnswered, E::kRegret, std::nullopt},  // answered: EALREADY
};
// clang-format on

void PrintTo(const Cell &c, std::ostream *os) {
  *os << to_string(c.from) << " x " << to_string(c.event) << " -> "
      << (c.to ? to_string(*c.to) : "refused");
}

class BufferStateCell : public ::testing::TestWithParam<Cell> {};

TEST_P(BufferStateCell, MatchesTheTable) {
  const Cell &c = GetParam();
  EXPECT_EQ(buffer_transition(c.from, c.event), c.to)
      << to_string(c.from) << " x " << to_string(c.event);
}

INSTANTIATE_TEST_SUITE_P(AllCells, BufferStateCell, ::testing::ValuesIn(kExpected),
                         [](const ::testing::TestParamInfo<Cell> &info) {
                           std::string name = std::string(to_string(info.param.from)) + "_" +
                                              to_string(info.param.event);
                           for (char &ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

TEST(BufferStateTable, EveryCellIsListed) {
  EXPECT_EQ(sizeof(kExpected) / sizeof(kExpected[0]),
            static_cast<size_t>(kBufferStateCount * kBufferEventCount));
}

}  // namespace
}  // namespace nucleus::daemon
