// How nucleusd stops, resumes and ends a whole subtree of Linux processes.
//
// cgroup mode: a cgroup v2 directory per process entry, nested as the
// process tree is (<root>/p_<name>/p_<child>/...). A program starts in its
// entry's cgroup (born in it by clone3 CLONE_INTO_CGROUP, or joining it
// before exec), so whatever it forks stays there.
// Stop writes cgroup.freeze and is complete when cgroup.events says
// "frozen 1"; remove writes cgroup.kill; memory claims go to memory.max when
// the memory controller is enabled.
//
// signal mode: each program leads its own session and process group (it
// called setsid, so it can join no other group). Stop sends SIGSTOP to the
// groups of the subtree and is complete when every program nucleusd started
// there has stopped (its real parent learns that from waitid(WSTOPPED)) and
// so has what each forked in its group (found down from the program through
// /proc/<pid>/task/<tid>/children): never a scan of all of /proc
// (docs/process-control.md). Resume sends SIGCONT; remove sends SIGKILL to
// the groups. A process that leaves its group (setsid, setpgid) escapes;
// memory claims become RLIMIT_AS per program.
//
// Threading: nucleusd's loop thread; remove_group() also runs on a launcher
// thread (it reads only root_, fixed after init()).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nucleus_internal/sys.h>

#include "config.h"

namespace nucleus::daemon {

class Subtree {
 public:
  enum class Mode { kCgroup, kSignals };

  // Picks the mode (probing cgroup v2 when asked or auto) and says in
  // *summary what it found, for the log. False: cgroup mode was demanded and
  // is not available (*summary says why).
  bool init(SubtreeMode wanted, const std::string &cgroup_root, std::string *summary);
  // Removes nucleusd's cgroup directory (at exit; empty groups only).
  void cleanup();
  Mode mode() const { return mode_; }
  bool memory_controller() const { return memory_controller_; }

  // cgroup mode. `path` is the entry's path under the root, from
  // group_path(). make_group creates it (parents first); the fd is the
  // directory of the cgroup its program starts in (<path>/run).
  static std::string group_path(const std::vector<std::string> &names_from_top);
  int make_group(const std::string &path, uint64_t memory_max, sys::UniqueFd *fd);
  void freeze(const std::string &path, bool frozen);
  bool frozen(const std::string &path);
  void kill(const std::string &path);
  // rmdir of the group and everything under it that is empty; false when
  // something in it still runs (try again later).
  bool remove_group(const std::string &path);

  // signal mode: process groups led by the subtree's programs.
  static void signal_groups(const std::vector<pid_t> &groups, int signal);
  // The first process that has not stopped, or 0: each of these programs
  // (children of nucleusd, not yet reaped) has stopped or ended, and so has
  // every process it forked that is still in its group.
  static pid_t first_running(const std::vector<pid_t> &programs);
  // /proc/<pid>/task/<tid>/children exists (CONFIG_PROC_CHILDREN): what a
  // program forked can be found from it.
  static bool children_lists();

 private:
  std::string full(const std::string &path) const { return root_ + "/" + path; }
  bool write_file(const std::string &file, const std::string &value);

  Mode mode_ = Mode::kSignals;
  bool memory_controller_ = false;
  std::string root_;  // nucleusd's cgroup directory (cgroup mode)
};

}  // namespace nucleus::daemon
