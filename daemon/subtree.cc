#include "subtree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace nucleus::daemon {

namespace {

std::string read_file(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The cgroup v2 mount point, from /proc/self/mounts (never assumed).
std::string cgroup2_mount() {
  std::istringstream in(read_file("/proc/self/mounts"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string dev, dir, type;
    fields >> dev >> dir >> type;
    if (type == "cgroup2") return dir;
  }
  return "";
}

// nucleusd's own cgroup v2 path ("0::/path" in /proc/self/cgroup).
std::string own_cgroup() {
  std::istringstream in(read_file("/proc/self/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return "";
}

// A /proc file whole, read with plain system calls (several per check of a
// stop); empty when it cannot be read.
std::string read_proc(const std::string &path) {
  std::string out;
  sys::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The state letter and process group of `pid` (/proc/<pid>/stat, fields 3
// and 5, after the name in parentheses, which may hold anything); false
// when it is gone.
bool state_of(pid_t pid, char *state, pid_t *group) {
  std::string stat = read_proc("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return false;
  long parent = 0, pgrp = 0;
  if (std::sscanf(stat.c_str() + close + 1, " %c %ld %ld", state, &parent, &pgrp) != 3) {
    return false;
  }
  *group = static_cast<pid_t>(pgrp);
  return true;
}

// Appends the children of every thread of `pid`
// (/proc/<pid>/task/<tid>/children, CONFIG_PROC_CHILDREN).
void children_of(pid_t pid, std::vector<pid_t> *out) {
  std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR *d = opendir(task.c_str());
  if (d == nullptr) return;
  while (dirent *e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string list = read_proc(task + "/" + e->d_name + "/children");
    const char *p = list.c_str();
    char *end = nullptr;
    for (long child = std::strtol(p, &end, 10); end != p; child = std::strtol(p, &end, 10)) {
      out->push_back(static_cast<pid_t>(child));
      p = end;
    }
  }
  closedir(d);
}

bool has_word(const std::string &text, const std::string &word) {
  std::istringstream in(text);
  std::string w;
  while (in >> w) {
    if (w == word) return true;
  }
  return false;
}

}  // namespace

bool Subtree::write_file(const std::string &file, const std::string &value) {
  sys::UniqueFd fd(open(file.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return false;
  return write(fd.get(), value.data(), value.size()) == static_cast<ssize_t>(value.size());
}

bool Subtree::init(SubtreeMode wanted, const std::string &cgroup_root, std::string *summary) {
  mode_ = Mode::kSignals;
  // Without the children lists a stop waits only for the programs
  // themselves (what they forked still gets SIGSTOP): say so.
  std::string forked = children_lists()
                           ? ""
                           : " (no /proc/<pid>/task/<tid>/children: a stop waits for the "
                             "programs only, not what they forked)";
  if (wanted == SubtreeMode::kSignals) {
    *summary =
        "signals (configured): SIGSTOP/SIGCONT/SIGKILL to each program's process group" + forked;
    return true;
  }
  std::string why;
  std::string base = cgroup_root;
  if (base.empty()) {
    std::string mount = cgroup2_mount();
    std::string own = own_cgroup();
    if (mount.empty()) why = "no cgroup2 file system is mounted";
    if (why.empty() && own.empty()) why = "/proc/self/cgroup has no cgroup v2 line";
    base = mount + (own == "/" ? "" : own);
  }
  if (why.empty()) {
    // Groups left by a nucleusd that was killed (nucleus.<pid> of a pid
    // that is gone) are removed once empty.
    if (DIR *d = opendir(base.c_str()); d != nullptr) {
      std::vector<std::string> stale;
      while (dirent *e = readdir(d)) {
        if (std::strncmp(e->d_name, "nucleus.", 8) != 0) continue;
        long pid = std::strtol(e->d_name + 8, nullptr, 10);
        if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) < 0 && errno == ESRCH) {
          stale.emplace_back(e->d_name);
        }
      }
      closedir(d);
      for (const std::string &s : stale) {
        root_.assign(base).append("/").append(s);
        remove_group("");
      }
    }
    root_ = base + "/nucleus." + std::to_string(getpid());
    if (mkdir(root_.c_str(), 0755) < 0 && errno != EEXIST) {
      why = "cannot create " + root_ + ": " + std::strerror(errno);
    } else if (access((root_ + "/cgroup.freeze").c_str(), W_OK) < 0 ||
               access((root_ + "/cgroup.kill").c_str(), W_OK) < 0) {
      why = root_ + " has no cgroup.freeze or cgroup.kill (kernel before 5.14?)";
      rmdir(root_.c_str());
    }
  }
  if (!why.empty()) {
    root_.clear();
    *summary = "signals (no usable cgroup v2: " + why +
               "): SIGSTOP/SIGCONT/SIGKILL to each program's process group" + forked;
    return wanted != SubtreeMode::kCgroup;
  }
  memory_controller_ = has_word(read_file(root_ + "/cgroup.controllers"), "memory") &&
                       write_file(root_ + "/cgroup.subtree_control", "+memory");
  mode_ = Mode::kCgroup;
  *summary =
      "cgroup v2 at " + root_ + " (freeze, kill; memory claims " +
      (memory_controller_ ? "as memory.max" : "as RLIMIT_AS per program: no memory controller") +
      ")";
  return true;
}

void Subtree::cleanup() {
  if (mode_ == Mode::kCgroup && !root_.empty()) {
    remove_group("");
  }
}

std::string Subtree::group_path(const std::vector<std::string> &names_from_top) {
  // "p_" keeps names such as ".." or "cgroup.procs" from meaning anything.
  std::string path;
  for (const std::string &n : names_from_top) path += (path.empty() ? "p_" : "/p_") + n;
  return path;
}

int Subtree::make_group(const std::string &path, uint64_t memory_max, sys::UniqueFd *fd) {
  // Parents first; each entry's program runs in <entry>/run so that no
  // group with children has processes of its own (cgroup v2's rule).
  std::string dir = root_;
  std::istringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '/')) {
    dir += "/" + part;
    if (mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return -errno;
    if (memory_controller_) write_file(dir + "/cgroup.subtree_control", "+memory");
  }
  if (memory_controller_ && memory_max != 0) {
    write_file(dir + "/memory.max", std::to_string(memory_max));
  }
  std::string run = dir + "/run";
  if (mkdir(run.c_str(), 0755) < 0 && errno != EEXIST) return -errno;
  fd->reset(open(run.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!*fd) return -errno;
  return 0;
}

void Subtree::freeze(const std::string &path, bool frozen) {
  write_file(full(path) + "/cgroup.freeze", frozen ? "1" : "0");
}

bool Subtree::frozen(const std::string &path) {
  std::string events = read_file(full(path) + "/cgroup.events");
  // No group (a child never started) or an empty one: nothing of it runs.
  if (events.empty() || events.find("populated 0") != std::string::npos) return true;
  return events.find("frozen 1") != std::string::npos;
}

void Subtree::kill(const std::string &path) {
  write_file(full(path) + "/cgroup.kill", "1");
}

bool Subtree::remove_group(const std::string &path) {
  std::string dir = path.empty() ? root_ : full(path);
  bool all = true;
  if (DIR *d = opendir(dir.c_str()); d != nullptr) {
    std::vector<std::string> subs;
    while (dirent *e = readdir(d)) {
      if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 &&
          std::strcmp(e->d_name, "..") != 0) {
        subs.emplace_back(e->d_name);
      }
    }
    closedir(d);
    for (const std::string &s : subs) {
      std::string sub = path;
      if (!sub.empty()) sub += '/';
      sub += s;
      all = remove_group(sub) && all;
    }
  }
  if (rmdir(dir.c_str()) < 0 && errno != ENOENT) return false;
  return all;
}

void Subtree::signal_groups(const std::vector<pid_t> &groups, int signal) {
  for (pid_t g : groups) {
    if (g > 0) ::kill(-g, signal);
  }
}

pid_t Subtree::first_running(const std::vector<pid_t> &programs) {
  std::vector<pid_t> walk;
  for (pid_t pid : programs) {
    // WSTOPPED reports a group stop that has completed (every thread
    // stopped), which /proc/<pid>/stat of the main thread does not say, and
    // not a ptrace stop, from which a tracer may let it run on. WNOWAIT
    // keeps the report (and a zombie) for later; P_PID looks at that child
    // only.
    siginfo_t info{};
    int rc = waitid(P_PID, static_cast<id_t>(pid), &info, WSTOPPED | WEXITED | WNOHANG | WNOWAIT);
    if (rc < 0) {
      if (errno == ECHILD) continue;  // already reaped: nothing of it runs
      return pid;
    }
    if (info.si_pid == 0 || info.si_code == CLD_TRAPPED) return pid;
    if (info.si_code != CLD_STOPPED) continue;  // it ended
    // What it forked, down through the processes of its group: each must
    // show state T (not t: a tracer may let it go on) or be dead. One that
    // left the group is not followed (it escaped, with what it forks).
    walk.clear();
    children_of(pid, &walk);
    while (!walk.empty()) {
      pid_t child = walk.back();
      walk.pop_back();
      char state = 0;
      pid_t group = 0;
      if (!state_of(child, &state, &group) || group != pid) continue;
      if (state != 'T' && state != 'Z' && state != 'X') return child;
      children_of(child, &walk);
    }
  }
  return 0;
}

bool Subtree::children_lists() {
  return access(("/proc/self/task/" + std::to_string(gettid()) + "/children").c_str(), R_OK) == 0;
}

}  // namespace nucleus::daemon
