// Claims and the accounts that hold them (docs/process-control.md, "Claims").
//
// Every process has an account: the claims its parent gave it and what it
// lent out of them (to its children, and one device claim per device it
// named). The root (the nucleus) has one too: the pool's buffers but its
// notice reserve, the table (processes.max), and no memory or devices limit
// of its own. Lending and repaying are the only ways an account changes.
//
// A multi-step operation (create, modify, attach) takes what it needs as
// Loans first and commits them last: a Loan not committed is undone when it
// goes out of scope, so a step that fails on the way leaves every account as
// it was, without checks ordered by hand.
//
// Buffers are the one part that is not only counted: a buffer lent moves
// from the lender's claim to the borrower's, and only a free one (not out)
// can move. So a lend of buffers fits only when the lender holds that many
// free ones (`free_buffers`, which the Core counts).
//
// Threading: nucleusd's single thread only.
#pragma once

#include <nucleus/wire.h>

#include <cstdint>

namespace nucleus::daemon {

// What a parent gives a child, and what the child lends its own children.
struct Claims {
  uint64_t buffers = 0;
  uint64_t processes = 0;   // descendants it may create
  uint64_t memory = 0;      // bytes; 0: no limit of its own
  uint64_t devices = 0;     // devices it may name (lent: 1 per device it named)
  uint64_t data_bytes = 0;  // its data area; 0: the configured default (not lent)
};

// What a child with `claims` costs its parent: its claims, and 1 of the
// parent's processes for the child itself. Its data area is not lent.
constexpr Claims child_cost(const Claims &claims) {
  return Claims{claims.buffers, 1 + claims.processes, claims.memory, claims.devices, 0};
}

// What naming a device costs its namer.
inline constexpr Claims kDeviceCost{0, 0, 0, 1, 0};

class ClaimsAccount {
 public:
  class Loan;

  ClaimsAccount() = default;
  explicit ClaimsAccount(const Claims &given) : given_(given) {}

  // Its own claims (buffers: those it holds plus those it lent).
  const Claims &given() const { return given_; }
  // What it lent out of them.
  const Claims &lent() const { return lent_; }

  // It can lend `amount` now: processes and devices within what it has not
  // lent, memory too when it has a limit of its own, and buffers among the
  // `free_buffers` it holds.
  bool fits(const Claims &amount, uint64_t free_buffers) const;
  // Its own claims could become `given`: what it lent fits in them.
  bool covers(const Claims &given) const;
  // Unchecked: fits() first (or repay what was lent).
  void lend(const Claims &amount);
  void repay(const Claims &amount);

  // Lends `amount` if it fits; a refused Loan (false) changes nothing.
  Loan try_lend(const Claims &amount, uint64_t free_buffers);
  // Why `amount` does not fit (asked after a refused lend): the part that
  // is short, and *value the size of that claim (buffers: the free ones).
  wire::Cause shortfall(const Claims &amount, uint64_t free_buffers, uint64_t *value) const;
  // Lends `after` in place of `before` (lent earlier) if `after` fits once
  // `before` is repaid; buffers: the growth must be among `free_buffers`.
  Loan try_relend(const Claims &before, const Claims &after, uint64_t free_buffers);
  // Its own claims become `given` if it covers them; buffers: those it
  // gives back must be among `free_buffers`.
  Loan try_resize(const Claims &given, uint64_t free_buffers);

 private:
  Claims given_;
  Claims lent_;
};

// One step's change to an account (a lend, a relend or a resize), undone
// when it goes out of scope unless committed. The account must stay where
// it is while the Loan lives.
class [[nodiscard]] ClaimsAccount::Loan {
 public:
  Loan() = default;  // refused: holds nothing
  Loan(Loan &&other) noexcept;
  Loan(const Loan &) = delete;
  Loan &operator=(const Loan &) = delete;
  Loan &operator=(Loan &&) = delete;
  ~Loan();

  // Granted (and not yet committed or undone).
  explicit operator bool() const { return account_ != nullptr; }
  // Keeps the change.
  void commit() { account_ = nullptr; }

 private:
  friend class ClaimsAccount;
  Loan(ClaimsAccount *account, const Claims &lent, const Claims &repaid)
      : account_(account), lent_(lent), repaid_(repaid) {}

  ClaimsAccount *account_ = nullptr;
  Claims lent_;           // lent by this step
  Claims repaid_;         // repaid by this step
  bool resized_ = false;  // this step changed the account's own claims,
  Claims given_before_;   // which were these
};

}  // namespace nucleus::daemon
