// nucleusd under a service manager (systemd): the boot section's programs,
// the watchdog ($WATCHDOG_USEC), STATUS= lines, and reloading the
// configuration on SIGHUP. Tested without systemd by giving nucleusd the
// same environment (shared/notes/linux-facts.md). Socket activation is the
// listening socket's business (attach.h).
//
// Owns: where the configuration comes from, the watchdog's interval and
// the Loop's kWatchdog route, the last STATUS= line.
// Asks of others: the Core and the decoder (Requests::start) to create and
// start the boot section; Programs for the subtree mode it reports; and,
// after a reload changed the Config in place, `reloaded` for what the rest
// of nucleusd does about it.
//
// Threading: nucleusd's loop thread only.
#pragma once

#include <linux/time_types.h>

#include <functional>
#include <string>

#include "config.h"
#include "core.h"
#include "loop.h"
#include "programs.h"
#include "requests.h"

namespace nucleus::daemon {

class Service {
 public:
  // Registers the kWatchdog route on `loop`.
  Service(Config &config, Core &core, Loop &loop, Requests &requests, const Programs &programs,
          std::function<void()> reloaded);
  Service(const Service &) = delete;
  Service &operator=(const Service &) = delete;

  // Where SIGHUP reloads the configuration from ("": the built-in default);
  // `log_level_fixed`: --log-level was given and wins over the file's.
  void set_config_source(std::string path, bool log_level_fixed) {
    config_path_ = std::move(path);
    log_level_fixed_ = log_level_fixed;
  }
  // Creates and starts the configuration's boot section as the root's
  // children. False with a message that says which entry failed (what it
  // started before is the caller's to end).
  bool boot(std::string *error);
  // Serving: READY=1, the first STATUS=, and the watchdog when asked for.
  void ready();
  // SIGHUP: reads and checks the configuration, applies what can change at
  // run time, and says what it did and what waits for a restart.
  void reload();
  // Stopping: no more watchdog pings.
  void stop() { stopping_ = true; }

 private:
  void arm_watchdog();
  void on_watchdog();
  void notify_status();

  Config &config_;
  Core &core_;
  Loop &loop_;
  Requests &requests_;
  const Programs &programs_;
  std::function<void()> reloaded_;
  std::string config_path_;
  bool log_level_fixed_ = false;
  bool stopping_ = false;
  __kernel_timespec watchdog_interval_{};
  bool watchdog_ = false;
  std::string last_status_;
};

}  // namespace nucleus::daemon
