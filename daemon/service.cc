#include "service.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "log.h"
#include "principal.h"
#include "sd_notify.h"

namespace nucleus::daemon {

namespace {

std::string join(const std::vector<std::string> &items) {
  std::string out;
  for (const std::string &s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

Service::Service(Config &config, Core &core, Loop &loop, Requests &requests,
                 const Programs &programs, std::function<void()> reloaded)
    : config_(config),
      core_(core),
      loop_(loop),
      requests_(requests),
      programs_(programs),
      reloaded_(std::move(reloaded)) {
  loop_.route(Kind::kWatchdog, [this](const Completion &) { on_watchdog(); });
}

void Service::ready() {
  log::info("ready");
  notify_status();
  sd_notify("READY=1");
  arm_watchdog();
}

bool Service::boot(std::string *error) {
  for (size_t i = 0; i < config_.boot.size(); ++i) {
    const BootEntry &b = config_.boot[i];
    std::string where = "boot[" + std::to_string(i) + "] (" + b.name + ")";
    // Owned by the user the entry names: its program runs as that user.
    uint32_t uid = 0;
    uint32_t gid = kNoGroup;
    if (!b.group.empty() && lookup_group(b.group, &gid) < 0) {
      *error = where + ": no such group " + b.group;
      return false;
    }
    if (lookup_user(b.user, &uid, &gid) < 0) {
      *error = where + ": no such user " + b.user;
      return false;
    }
    if (geteuid() != 0 && uid != geteuid()) {
      *error = where + ": nucleusd is not root: it runs programs only as its own uid " +
               std::to_string(geteuid()) + ", not as " + b.user;
      return false;
    }
    Result<uint32_t> id = core_.create(kNone, b.name, b.program, b.claims, uid, gid);
    int rc = id.ok() ? 0 : -to_errno(id.error());
    uint64_t step = wire::kStartStepNone;
    if (rc == 0 && b.start) rc = requests_.start(kNone, kNone, id.value(), Waiter{}, &step);
    if (rc < 0) {
      // The step that failed names what it failed on ("cannot execute PATH").
      *error = where + ": ";
      *error += !id.ok()                       ? std::string("cannot create")
                : step == wire::kStartStepNone ? "cannot start " + b.program.path
                                               : start_failure_text(step, b.program, uid, gid);
      *error += std::string(": ") + std::strerror(-rc);
      if (rc == -ENOBUFS) *error += " (its claims exceed pool.buffers or processes.max)";
      return false;
    }
    log::info("boot: {} {} ({}, as uid {} gid {})", b.start ? "started" : "created", b.name,
              b.program.path, uid, gid);
  }
  return true;
}

void Service::arm_watchdog() {
  uint64_t usec = 0, pid = 0;
  if (!watchdog_) {
    if (!env_number("WATCHDOG_USEC", &usec) || usec == 0) return;
    if (env_number("WATCHDOG_PID", &pid) && pid != static_cast<uint64_t>(getpid())) return;
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    // Twice per interval, as sd_watchdog_enabled(3) advises.
    uint64_t half_ns = usec * 1000 / 2;
    watchdog_interval_.tv_sec = static_cast<int64_t>(half_ns / 1000000000);
    watchdog_interval_.tv_nsec = static_cast<int64_t>(half_ns % 1000000000);
    watchdog_ = true;
    log::info("watchdog: every {} ms", half_ns / 1000000);
  }
  // A timeout on the ring: if the loop hangs, the pings stop.
  io_uring_sqe *sqe = loop_.sqe();
  io_uring_prep_timeout(sqe, &watchdog_interval_, 0, 0);
  Loop::set_tag(sqe, Kind::kWatchdog, 0, 0);
}

void Service::on_watchdog() {
  if (stopping_) return;
  sd_notify("WATCHDOG=1");
  notify_status();
  arm_watchdog();
}

void Service::notify_status() {
  if (std::getenv("NOTIFY_SOCKET") == nullptr) return;
  uint64_t in_use = core_.pool().size() - core_.pool().free_count();
  std::string status =
      "STATUS=" + std::to_string(core_.processes().count()) + " processes, " +
      std::to_string(core_.devices().size()) + " devices; " + std::to_string(in_use) + " of " +
      std::to_string(core_.pool().size()) + " buffers held; " +
      (programs_.subtree().mode() == Subtree::Mode::kCgroup ? "cgroup" : "signal") + " control";
  if (status == last_status_) return;
  last_status_ = status;
  sd_notify(status.c_str());
}

void Service::reload() {
  std::string source = config_path_.empty() ? "built-in default configuration" : config_path_;
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  std::string reloading =
      "RELOADING=1\nMONOTONIC_USEC=" +
      std::to_string(static_cast<uint64_t>(now.tv_sec) * 1000000 + now.tv_nsec / 1000);
  sd_notify(reloading.c_str());
  std::string text = default_config_text();
  if (!config_path_.empty()) {
    std::ifstream in(config_path_);
    std::stringstream ss;
    if (in) ss << in.rdbuf();
    if (!in) {
      log::error("reload: cannot read {}; configuration unchanged", config_path_);
      sd_notify("READY=1");
      return;
    }
    text = ss.str();
  }
  Config next;
  std::string error;
  if (!parse_config(text, &next, &error)) {
    log::error("reload: {}: {}; configuration unchanged", source, error);
    sd_notify("READY=1");
    return;
  }
  ConfigChanges changes = diff_config(config_, next);
  // What can change at run time (docs/configuration.md).
  std::string level = config_.log_level;
  apply_reloadable(next, &config_);
  if (!log_level_fixed_) {
    spdlog::set_level(spdlog::level::from_str(config_.log_level));
  } else if (std::erase(changes.applied, "log.level") != 0) {
    config_.log_level = level;
    log::info("reload: log.level changed; --log-level keeps {}",
              spdlog::level::to_string_view(spdlog::get_level()));
  }
  // The rest of nucleusd: bounds, polling, who is an operator, owners'
  // groups.
  reloaded_();
  // "reloaded" comes last: who waits for it finds the whole reload logged.
  if (!changes.restart.empty()) {
    log::warn("reload: {} changed; kept as they were until nucleusd restarts",
              join(changes.restart));
  }
  log::info("reloaded {}: {}", source,
            changes.applied.empty() ? "nothing to change" : "changed " + join(changes.applied));
  sd_notify("READY=1");
}

}  // namespace nucleus::daemon
