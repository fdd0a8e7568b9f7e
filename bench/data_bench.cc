#include "data_bench.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "measure.h"

namespace nucleus::bench {

namespace {

// The bytes of round trip `i`: a source the client copies from each time
// (the same work on both sides), with `i` in the first and last word so
// that a stale or partial copy is caught.
void stamp(std::vector<std::byte> &source, uint32_t i) {
  uint64_t w = i;
  std::memcpy(source.data(), &w, sizeof(w));
  std::memcpy(source.data() + source.size() - sizeof(w), &w, sizeof(w));
}

bool stamped(const std::byte *bytes, size_t size, uint32_t i) {
  uint64_t first = 0;
  uint64_t last = 0;
  std::memcpy(&first, bytes, sizeof(first));
  std::memcpy(&last, bytes + size - sizeof(last), sizeof(last));
  return first == i && last == i;
}

std::vector<std::byte> source_of(size_t bytes) {
  std::vector<std::byte> v(bytes);
  for (size_t k = 0; k < bytes; ++k) v[k] = static_cast<std::byte>(k * 131 + 7);
  return v;
}

bool write_all(int fd, const std::byte *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool read_all(int fd, std::byte *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// The receiver's loop: each message's lent bytes brought into its own area
// and answered with them. With a receive window, the bytes come with the
// message (the rest, if any, by copy_from) and go back with the answer:
// four hand-offs. Without (copies): copy_from, copy_to, then the answer:
// eight.
int serve_data(nucleus::Nucleus &n, bool window) {
  std::span<std::byte> area = n.data();
  if (window) {
    std::span<std::byte> w = area.first(std::min<size_t>(area.size(), NUCLEUS_COPY_MAX));
    if (!n.set_receive_window(w)) return 2;
  }
  for (;;) {
    auto m = n.wait_message();
    if (!m) return 0;  // the nucleus went away: the run is over
    size_t bytes = m->lend.bytes;
    if (bytes > area.size()) {
      (void)n.send_answer(m->buffer, NUCLEUS_RESULT_REJECTED, nucleus::Message{});
      continue;
    }
    std::span<std::byte> own = area.first(bytes);
    size_t have = window ? m->lend.copied : 0;
    if (have < bytes && !n.copy_from(m->buffer, have, own.subspan(have))) {
      (void)n.send_answer(m->buffer, NUCLEUS_RESULT_MALFUNCTION, nucleus::Message{});
      continue;
    }
    nucleus::Message answer{{bytes}};
    if (window) {
      if (!n.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, answer, own)) return 1;
      continue;
    }
    if (!n.copy_to(m->buffer, 0, own)) {
      (void)n.send_answer(m->buffer, NUCLEUS_RESULT_MALFUNCTION, nucleus::Message{});
      continue;
    }
    if (!n.send_answer(m->buffer, NUCLEUS_RESULT_NORMAL, answer)) return 1;
  }
}

}  // namespace

pid_t start_data_echo(const std::string &name, bool window) {
  int ready[2];
  if (pipe(ready) < 0) return -1;
  pid_t pid = fork_child([&]() {
    auto n = nucleus::Nucleus::attach(name);
    if (!n) return 1;
    (void)!write(ready[1], "x", 1);
    return serve_data(n.value(), window);
  });
  pollfd p{ready[0], POLLIN, 0};
  char c = 0;
  if (poll(&p, 1, 20000) <= 0 || read(ready[0], &c, 1) != 1) {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    pid = -1;
  }
  close(ready[0]);
  close(ready[1]);
  return pid;
}

Figure nucleus_data_rt(const std::string &label, nucleus::Nucleus &n, const std::string &receiver,
                       size_t bytes, int iters, int warmup) {
  std::span<std::byte> area = n.data();
  if (bytes < 2 * sizeof(uint64_t) || bytes > area.size()) {
    std::fprintf(stderr, "%s: %zu bytes do not fit the data area (%zu)\n", label.c_str(), bytes,
                 area.size());
    return Figure{label};
  }
  std::vector<std::byte> source = source_of(bytes);
  nucleus::Lend lend{0, bytes, NUCLEUS_LEND_READ | NUCLEUS_LEND_WRITE, 0};
  return round_trips(label, iters, warmup, [&](uint32_t i) {
    stamp(source, i);
    std::memcpy(area.data(), source.data(), bytes);
    auto b = n.send_message(receiver, nucleus::Message{{i}}, lend);
    if (!b) {
      std::fprintf(stderr, "%s: send_message: %s\n", label.c_str(), b.message().data());
      return false;
    }
    auto a = n.wait_answer(b.value());
    // The echo with a window says, in the answer, that the bytes came back.
    bool copied = !a || a->copied == 0 || a->copied == bytes;
    if (!a || a->result != NUCLEUS_RESULT_NORMAL || !copied || !stamped(area.data(), bytes, i)) {
      std::fprintf(stderr, "%s: round trip %u: no answer with the bytes back (%s)\n", label.c_str(),
                   i, a ? "result or bytes differ" : a.message().data());
      return false;
    }
    return true;
  });
}

Figure uds_data_rt(const std::string &label, size_t bytes, int iters, int warmup) {
  int sv[2];
  if (bytes < 2 * sizeof(uint64_t) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
    return Figure{label};
  }
  int total = iters + warmup;
  pid_t child = fork_child([&]() {
    close(sv[0]);
    std::vector<std::byte> buf(bytes);
    for (int i = 0; i < total; ++i) {
      if (!read_all(sv[1], buf.data(), bytes) || !write_all(sv[1], buf.data(), bytes)) return 1;
    }
    return 0;
  });
  close(sv[1]);
  std::vector<std::byte> source = source_of(bytes);
  std::vector<std::byte> out(bytes);
  std::vector<std::byte> back(bytes);
  Figure f = round_trips(label, iters, warmup, [&](uint32_t i) {
    stamp(source, i);
    std::memcpy(out.data(), source.data(), bytes);
    return write_all(sv[0], out.data(), bytes) && read_all(sv[0], back.data(), bytes) &&
           stamped(back.data(), bytes, i);
  });
  close(sv[0]);  // a child still reading sees the end and exits
  waitpid(child, nullptr, 0);
  return f;
}

}  // namespace nucleus::bench
