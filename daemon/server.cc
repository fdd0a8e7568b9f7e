#include "server.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "log.h"
#include "sd_notify.h"

namespace nucleus::daemon {

namespace {

bool make_dirs(const std::string &path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos == path.size() || path[pos] == '/') {
      std::string part = path.substr(0, pos);
      if (mkdir(part.c_str(), 0755) < 0 && errno != EEXIST) return false;
    }
  }
  return true;
}

}  // namespace

Server::Server(Config config)
    : config_(std::move(config)),
      core_(config_.pool_buffers, config_.notice_buffers, config_.max_processes),
      policy_(config_, core_),
      requests_(core_, config_, policy_, *this,
                [this](uint32_t id, const wire::Event &event) {
                  // A request's reply; its requester may have gone meanwhile (a
                  // remove can end the subtree it is in).
                  connections_.push(id, event);
                }),
      connections_(config_, core_, loop_, requests_, *this),
      devices_(loop_, core_, config_, connections_, principals_),
      programs_(config_, core_, loop_, principals_, *this),
      attach_(config_, core_, loop_, policy_, connections_, inspector_, *this),
      swaps_(config_, core_, programs_, connections_, attach_),
      service_(config_, core_, loop_, requests_, programs_,
               [this] {
                 core_.set_notice_limit(config_.limits.parent_exit_notices);
                 connections_.poll().configure(config_.poll);
                 // Who is an operator may have changed: a monitor that no
                 // longer may watch is closed (acting for the root is
                 // checked on every request).
                 inspector_.operators_changed();
               }),
      inspector_(loop_, core_, config_, policy_,
                 Inspector::View{
                     .socket_path = attach_.socket_path(),
                     .socket_activated = attach_.socket_activated(),
                     .started_ns = started_ns_,
                     .connections = connections_,
                     .programs = programs_,
                     .devices = devices_,
                 }) {
  core_.set_notice_limit(config_.limits.parent_exit_notices);
  // What the nucleus's own messages, answers and replies say of their sender.
  core_.set_nucleus_principal(geteuid(), getegid(), getpid());
  loop_.route(Kind::kSignal, [this](const Completion &c) { on_signal(c.result); });
}

Server::~Server() {
  // The ring first, as before nucleusd's objects were split out of Server:
  // SQEs still in flight name memory that connections_ (a doorbell's
  // eventfd read), devices_ (a console's input read, the data areas) and
  // programs_ own, and those are destroyed before loop_, which is declared
  // before them because their constructors route their kinds on it.
  loop_.close();
}

bool Server::start(const std::string &runtime_dir, std::string *error) {
  if (!make_dirs(runtime_dir)) {
    *error = "cannot create runtime directory " + runtime_dir + ": " + std::strerror(errno);
    return false;
  }
  runtime_dir_ = runtime_dir;
  started_ns_ = sys::monotonic_ns();
  if (!attach_.listen(runtime_dir, error)) return false;
  return start_loop(error);
}

bool Server::start_loop(std::string *error) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  // Programs it starts, and what they fork and leave behind, come back to
  // nucleusd rather than to PID 1.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
    *error = std::string("PR_SET_CHILD_SUBREAPER: ") + std::strerror(errno);
    return false;
  }
  if (!programs_.init(error)) return false;
  signal(SIGPIPE, SIG_IGN);
  signal_fd_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signal_fd_) {
    *error = std::string("signalfd: ") + std::strerror(errno);
    return false;
  }

  if (!loop_.setup(config_.defer_taskrun, error)) return false;
  // Before any device, and while this thread has nucleusd's own credentials.
  devices_.setup_credentials();

  if (!connections_.setup(loop_.has_futex_wait(), error)) return false;
  log::info(
      "pool of {} message buffers; default claim {} buffers; channel rings {}/{} entries, "
      "data area {} bytes",
      config_.pool_buffers, config_.default_claim_buffers, config_.request_entries,
      config_.event_entries, config_.data_bytes);

  programs_.serve_at(runtime_dir_, attach_.socket_path());
  if (!devices_.create_configured(error)) return false;
  // The launcher's threads start the boot section's programs too, under its
  // watchdog; this thread waits for each before the next.
  if (!programs_.start_launcher(error)) {
    shutdown();
    return false;
  }
  if (!service_.boot(error)) {
    shutdown();  // what it started before ends with it
    return false;
  }
  // From here a start is answered when its launch comes back.
  programs_.serve();

  attach_.serve();
  arm_signal();
  loop_.submit();
  log::info("listening on {}{}", attach_.socket_path(),
            attach_.socket_activated() ? " (socket activation)" : "");
  return true;
}

void Server::arm_signal() {
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_read(sqe, signal_fd_.get(), signal_buffer_, sizeof(signal_buffer_), 0);
  Loop::set_tag(sqe, Kind::kSignal, 0, 0);
}

int Server::run() {
  service_.ready();
  while (!stopping_) {
    bool polling = connections_.any_active();
    int64_t turn_start = polling ? sys::monotonic_ns() : 0;
    // Inspection work left over (a reply in slices) is no reason to poll
    // the channels, but the loop must not sleep on it.
    unsigned seen = loop_.turn(!polling && !inspector_.busy());
    int64_t now = sys::monotonic_ns();
    bool worked = connections_.serve_active(now) || seen > 0;
    flush_dirty();
    if (swaps_.any()) swaps_.advance();
    // After the channels: a turn's slices of inspection replies, bounded
    // by limits.per_turn.control_bytes, so that a reply of any size delays
    // the next turn by no more than that.
    if (inspector_.busy()) inspector_.serve_turn();
    if (core_.tracing()) inspector_.publish_trace();
    connections_.poll_or_arm(turn_start, now, worked);
  }
  shutdown();
  return 0;
}

void Server::on_signal(int result) {
  if (result <= 0) {
    arm_signal();
    return;
  }
  signalfd_siginfo info{};
  std::memcpy(&info, signal_buffer_, sizeof(info));
  if (info.ssi_signo == SIGCHLD) {
    programs_.reap();
    arm_signal();
    return;
  }
  if (info.ssi_signo == SIGHUP) {
    principals_.clear();  // group memberships may have changed too
    service_.reload();
    arm_signal();
    return;
  }
  log::info("signal {}: shutting down", strsignal(static_cast<int>(info.ssi_signo)));
  stopping_ = true;
  attach_.stop();
  service_.stop();
}

void Server::flush_dirty() {
  devices_.drop_removed();
  connections_.sync_slots();
  for (std::vector<uint32_t> dirty = core_.take_dirty(); !dirty.empty();
       dirty = core_.take_dirty()) {
    for (uint32_t id : dirty) {
      if (!core_.processes().live(id)) continue;
      const Process &p = core_.processes().at(id);
      if (p.is_device()) {
        devices_.serve(id, p.generation);
      } else {
        connections_.flush(id);
      }
    }
  }
}

void Server::shutdown() {
  sd_notify("STOPPING=1");
  programs_.shutdown();  // the programs nucleusd started end with it
  attach_.shutdown();
  inspector_.close_all();
  size_t count = connections_.count();
  connections_.shutdown();
  log::info("stopped; {} processes were attached", count);
}

// ---- what the objects tell each other (reactions.h) ----

void Server::answer(const Waiter &waiter, int result, uint64_t step, std::string_view path) {
  connections_.answer(waiter, result, step, path);
}

void Server::detached(uint32_t id, uint32_t generation, bool old_os, uint32_t taken_over) {
  // What devices were doing for it ends; its data area stays mapped until
  // each operation's completion has come back.
  devices_.cancel_ops_of(id, generation);
  if (old_os) swaps_.event(id, SwapEvent::kOldExited);
  // The new program's hang-up: its exit status comes when it is reaped.
  if (taken_over != kNone) swaps_.event(taken_over, SwapEvent::kNewHungUp);
}

void Server::program_ended(uint32_t id) {
  connections_.end(id, "program exited");
}

void Server::removed(uint32_t id) {
  connections_.detach(id, "removed", false);
}

}  // namespace nucleus::daemon
