#include "claims.h"

#include <cassert>

namespace nucleus::daemon {

namespace {

uint64_t growth(uint64_t from, uint64_t to) {
  return to > from ? to - from : 0;
}

}  // namespace

bool ClaimsAccount::fits(const Claims &amount, uint64_t free_buffers) const {
  return amount.buffers <= free_buffers && amount.processes <= given_.processes - lent_.processes &&
         amount.devices <= given_.devices - lent_.devices &&
         (given_.memory == 0 || amount.memory <= given_.memory - lent_.memory);
}

bool ClaimsAccount::covers(const Claims &given) const {
  return lent_.buffers <= given.buffers && lent_.processes <= given.processes &&
         lent_.devices <= given.devices && (given.memory == 0 || lent_.memory <= given.memory);
}

void ClaimsAccount::lend(const Claims &amount) {
  lent_.buffers += amount.buffers;
  lent_.processes += amount.processes;
  lent_.memory += amount.memory;
  lent_.devices += amount.devices;
}

void ClaimsAccount::repay(const Claims &amount) {
  assert(amount.buffers <= lent_.buffers && amount.processes <= lent_.processes &&
         amount.memory <= lent_.memory && amount.devices <= lent_.devices);
  lent_.buffers -= amount.buffers;
  lent_.processes -= amount.processes;
  lent_.memory -= amount.memory;
  lent_.devices -= amount.devices;
}

wire::Cause ClaimsAccount::shortfall(const Claims &amount, uint64_t free_buffers,
                                     uint64_t *value) const {
  if (amount.processes > given_.processes - lent_.processes) {
    *value = given_.processes;
    return wire::kCauseClaimProcesses;
  }
  if (amount.devices > given_.devices - lent_.devices) {
    *value = given_.devices;
    return wire::kCauseClaimDevices;
  }
  if (given_.memory != 0 && amount.memory > given_.memory - lent_.memory) {
    *value = given_.memory;
    return wire::kCauseClaimMemory;
  }
  *value = free_buffers;
  return wire::kCauseClaimBuffers;
}

ClaimsAccount::Loan ClaimsAccount::try_lend(const Claims &amount, uint64_t free_buffers) {
  if (!fits(amount, free_buffers)) return Loan{};
  lend(amount);
  return Loan{this, amount, Claims{}};
}

ClaimsAccount::Loan ClaimsAccount::try_relend(const Claims &before, const Claims &after,
                                              uint64_t free_buffers) {
  ClaimsAccount without = *this;
  without.repay(before);
  // Only buffers beyond `before` move now; the rest stay with the borrower.
  Claims more = after;
  more.buffers = growth(before.buffers, after.buffers);
  if (!without.fits(more, free_buffers)) return Loan{};
  repay(before);
  lend(after);
  return Loan{this, after, before};
}

ClaimsAccount::Loan ClaimsAccount::try_resize(const Claims &given, uint64_t free_buffers) {
  if (!covers(given) || growth(given.buffers, given_.buffers) > free_buffers) return Loan{};
  Loan loan{this, Claims{}, Claims{}};
  loan.resized_ = true;
  loan.given_before_ = given_;
  given_ = given;
  return loan;
}

ClaimsAccount::Loan::Loan(Loan &&other) noexcept
    : account_(other.account_),
      lent_(other.lent_),
      repaid_(other.repaid_),
      resized_(other.resized_),
      given_before_(other.given_before_) {
  other.account_ = nullptr;
}

ClaimsAccount::Loan::~Loan() {
  if (account_ == nullptr) return;
  account_->repay(lent_);
  account_->lend(repaid_);
  if (resized_) account_->given_ = given_before_;
}

}  // namespace nucleus::daemon
