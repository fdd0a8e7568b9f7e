#include "harness.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <system_error>

#include <nucleus_internal/sys.h>

namespace nucleus::test {

namespace {

int pidfd_open(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

using support::remaining_ms;

// The programs placed for other uids (for_others): a 0755 directory made on
// first need and removed when the test process that made it ends (not by
// the children it forks, which end with _exit or exec).
class PlacedPrograms {
 public:
  PlacedPrograms() = default;
  ~PlacedPrograms() {
    std::error_code ignored;
    if (!dir_.empty() && getpid() == maker_) std::filesystem::remove_all(dir_, ignored);
  }
  PlacedPrograms(const PlacedPrograms &) = delete;
  PlacedPrograms &operator=(const PlacedPrograms &) = delete;

  std::string place(const std::string &program) {
    namespace fs = std::filesystem;
    fs::path relative = fs::path(program).lexically_relative(NUCLEUS_BUILD_DIR);
    if (geteuid() != 0 || relative.empty() || *relative.begin() == ".." || build_reachable()) {
      return program;
    }
    if (dir_.empty() && !make_dir()) return program;
    fs::path placed = fs::path(dir_) / relative;
    if (!fs::exists(placed) && !put(program, placed)) return program;
    return placed.string();
  }

 private:
  // Whether kNobody can search the build directory (every part of its path).
  bool build_reachable() {
    if (reachable_ < 0) {
      pid_t pid = fork();
      if (pid == 0) _exit(become() && access(NUCLEUS_BUILD_DIR, X_OK) == 0 ? 0 : 1);
      int status = 0;
      reachable_ = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                   WEXITSTATUS(status) == 0;
    }
    return reachable_ == 1;
  }

  bool make_dir() {
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/nucleus-programs-XXXXXX";
    if (mkdtemp(tmpl) == nullptr || chmod(tmpl, 0755) != 0) {
      ADD_FAILURE() << "for_others: cannot make a directory in /tmp: " << std::strerror(errno);
      return false;
    }
    dir_ = tmpl;
    maker_ = getpid();
    // The programs find libnucleus by its soname through their runpath
    // ($ORIGIN/../client-lib: CMAKE_BUILD_RPATH_USE_ORIGIN).
    fs::path library(NUCLEUS_LIBRARY_PATH);
    fs::path beside = fs::path(dir_) / library.parent_path().lexically_relative(NUCLEUS_BUILD_DIR) /
                      NUCLEUS_LIBRARY_SONAME;
    return put(library.string(), beside);
  }

  // Links `from` at `to` (same file system, and others may read and run
  // it), else copies it; 0755 directories on the way.
  bool put(const std::string &from, const std::filesystem::path &to) {
    namespace fs = std::filesystem;
    std::vector<fs::path> missing;  // deepest first
    for (fs::path d = to.parent_path(); d.string().size() > dir_.size(); d = d.parent_path()) {
      missing.push_back(d);
    }
    for (auto d = missing.rbegin(); d != missing.rend(); ++d) {
      if (mkdir(d->c_str(), 0755) == 0) chmod(d->c_str(), 0755);  // whatever the umask
    }
    // A link shares the file's mode: only one others may already run.
    struct stat st {};
    if (stat(from.c_str(), &st) == 0 && (st.st_mode & 0005) == 0005 &&
        link(from.c_str(), to.c_str()) == 0) {
      return true;
    }
    std::error_code ec;
    if (fs::copy_file(from, to, ec) && chmod(to.c_str(), 0755) == 0) return true;
    ADD_FAILURE() << "for_others: cannot place " << from << " at " << to.string() << ": "
                  << ec.message();
    return false;
  }

  std::string dir_;
  pid_t maker_ = -1;
  int reachable_ = -1;  // -1: not asked yet
};

}  // namespace

std::string for_others(const std::string &program) {
  static PlacedPrograms placed;
  return placed.place(program);
}

Daemon::Daemon(const std::string &config_json) {
  ready_ = process_.start(NUCLEUSD_PATH, config_json, "debug", kDeadline);
}

Daemon::~Daemon() {
  if (::testing::Test::HasFailure()) {
    std::fprintf(stderr, "---- nucleusd log ----\n%s----\n", log().c_str());
  }
}

void Daemon::let_others_in() const {
  EXPECT_EQ(chmod(dir().c_str(), 0755), 0);
  EXPECT_EQ(chmod((dir() + "/run").c_str(), 0755), 0);
}

bool become(uid_t id) {
  return setgroups(0, nullptr) == 0 && setresgid(id, id, id) == 0 && setresuid(id, id, id) == 0;
}

bool gone(pid_t pid) {
  int fd = pidfd_open(pid);
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  int r = poll(&p, 1, static_cast<int>(kDeadline.count() * 1000));
  close(fd);
  return r == 1;
}

pid_t spawn(const std::function<int()> &body) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int rc = body();
    std::fflush(nullptr);
    _exit(rc);
  }
  return pid;
}

int wait_exit(pid_t pid, std::chrono::milliseconds deadline) {
  int fd = pidfd_open(pid);
  if (fd < 0) return -1;
  pollfd p{fd, POLLIN, 0};
  int ready = poll(&p, 1, static_cast<int>(deadline.count()));
  close(fd);
  if (ready <= 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

Signal::Signal() {
  EXPECT_EQ(pipe2(fds_, O_CLOEXEC), 0);
}
Signal::~Signal() {
  close(fds_[0]);
  close(fds_[1]);
}
void Signal::notify(char what) {
  EXPECT_EQ(write(fds_[1], &what, 1), 1);
}
char Signal::wait(std::chrono::milliseconds deadline) {
  pollfd p{fds_[0], POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(deadline.count())) <= 0) return 0;
  char c = 0;
  return read(fds_[0], &c, 1) == 1 ? c : 0;
}

nucleus::Nucleus attach(const std::string &name) {
  auto r = nucleus::Nucleus::attach(name);
  EXPECT_TRUE(r.ok()) << "attach " << name << ": " << r.message();
  return std::move(r).value();
}

nucleus::Message words(uint64_t w0, uint64_t w1) {
  nucleus::Message m{};
  m.word[0] = w0;
  m.word[1] = w1;
  return m;
}

bool eventually(const std::function<bool()> &pred, std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    sched_yield();
  }
}

bool wait_stats(nucleus::Nucleus &n, const std::function<bool(const nucleus::Stats &)> &pred,
                nucleus::Stats *last) {
  bool unreadable = false;
  bool held = eventually([&] {
    auto s = n.get_stats();
    if (!s.ok()) {
      unreadable = true;  // no use trying on
      return true;
    }
    if (last != nullptr) *last = s.value();
    return pred(s.value());
  });
  return held && !unreadable;
}

int connect_to(const std::string &socket_path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) < 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

RawClient::RawClient(const std::string &socket_path, const std::string &name) {
  socket_ = connect_to(socket_path);
  if (socket_ < 0) {
    status_ = -errno;
    return;
  }
  wire::AttachRequest req{};
  req.magic = wire::kMagic;
  req.abi_version = wire::kAbiVersion;
  std::strncpy(req.name, name.c_str(), sizeof(req.name) - 1);
  send(socket_, &req, sizeof(req), MSG_NOSIGNAL);
  wire::AttachReply reply{};
  iovec iov{&reply, sizeof(reply)};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (recvmsg(socket_, &msg, MSG_CMSG_CLOEXEC) != sizeof(reply)) {
    status_ = -EPROTO;
    return;
  }
  status_ = reply.status;
  if (status_ != 0) return;
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(int));
  bytes_ = reply.channel_bytes;
  base_ = static_cast<uint8_t *>(mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  close(fd);
  header_ = reinterpret_cast<wire::ChannelHeader *>(base_);
}

RawClient::~RawClient() {
  if (base_ != nullptr) munmap(base_, bytes_);
  if (socket_ >= 0) close(socket_);
}

uint64_t RawClient::slot(uint32_t i) const {
  return reinterpret_cast<const uint64_t *>(base_ + header_->slots_offset)[i];
}

void RawClient::push(const wire::Request &r) {
  auto *ring = reinterpret_cast<wire::Request *>(base_ + header_->requests_offset);
  // A full ring waits for nucleusd to take entries (it needs no room in the
  // event ring for that); we ring its doorbell until it has.
  eventually([&] {
    if (tail_ - header_->requests_head.load(std::memory_order_acquire) < header_->request_entries) {
      return true;
    }
    sys::futex_wake(&header_->requests_tail, 1);
    return false;
  });
  ring[tail_ & (header_->request_entries - 1)] = r;
  ++tail_;
  header_->requests_tail.store(tail_, std::memory_order_release);
  sys::futex_wake(&header_->requests_tail, 1);
}

void RawClient::push_all(const std::vector<wire::Request> &requests) {
  auto *ring = reinterpret_cast<wire::Request *>(base_ + header_->requests_offset);
  for (const wire::Request &r : requests) ring[tail_++ & (header_->request_entries - 1)] = r;
  header_->requests_tail.store(tail_, std::memory_order_release);
  sys::futex_wake(&header_->requests_tail, 1);
}

bool RawClient::next_event(wire::Event *out, std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  auto *ring = reinterpret_cast<wire::Event *>(base_ + header_->events_offset);
  for (;;) {
    uint32_t tail = header_->events_tail.load(std::memory_order_acquire);
    if (tail != head_) {
      *out = ring[head_ & (header_->event_entries - 1)];
      ++head_;
      header_->events_head.store(head_, std::memory_order_release);
      // As libnucleus does: events that wait for ring space (backlog) come
      // once we ring after draining (pairs with nucleusd's fence after it
      // sets backlog).
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (header_->backlog.load(std::memory_order_relaxed) != 0) {
        sys::futex_wake(&header_->requests_tail, 1);
      }
      return true;
    }
    int ms = remaining_ms(until);
    if (ms == 0) return false;
    header_->process_waiting.store(1);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (header_->events_tail.load() == head_) {
      sys::futex_wait(&header_->events_tail, head_, int64_t{ms} * 1000000);
    }
    header_->process_waiting.store(0);
  }
}

bool RawClient::wait_closed(std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  wire::Event e;
  while (header_->state.load() == static_cast<uint32_t>(wire::ChannelState::kAttached)) {
    int ms = remaining_ms(until);
    if (ms == 0) return false;
    next_event(&e, std::chrono::milliseconds(ms));
  }
  return true;
}

}  // namespace nucleus::test
