// nucleus-device-demo: the devices of the nucleus, used as any process is.
//
//   nucleus-device-demo DISK_FILE
//
// Writes a line through the console device, waits on the clock, names a
// disk on DISK_FILE (an existing file of at least 4 KiB; needs a devices
// claim), writes a block from its data area and reads it back, and shows a
// malformed message answered "unintelligible". Exits 0 when all went as
// expected.
#include <nucleus/nucleus.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

using nucleus::Nucleus;

// Sends and waits; prints what came back.
nucleus::Answer ask(Nucleus &n, const char *device, const nucleus::Message &m) {
  auto b = n.send_message(device, m);
  if (!b) return nucleus::Answer{};
  auto a = n.wait_answer(b.value());
  return a ? a.value() : nucleus::Answer{};
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: nucleus-device-demo DISK_FILE\n");
    return 2;
  }
  auto attached = Nucleus::attach("device-demo");
  if (!attached) {
    std::fprintf(stderr, "attach: %s\n", attached.message().data());
    return 1;
  }
  Nucleus &n = attached.value();
  auto area = n.data_area();
  bool ok = true;

  std::string line = "   console | hello from the data area of 'device-demo'\n";
  std::memcpy(area.data(), line.data(), line.size());
  nucleus::Answer a = ask(n, "console", nucleus::device::console_write(0, line.size()));
  std::printf("   console write: result %d, %llu bytes\n", a.result,
              static_cast<unsigned long long>(a.message.word[0]));
  ok = ok && a.result == NUCLEUS_RESULT_NORMAL;

  int64_t t0 = now_ns();
  a = ask(n, "clock", nucleus::device::clock_wait(std::chrono::milliseconds(20)));
  std::printf("   clock wait of 20 ms: result %d after %.1f ms\n", a.result,
              static_cast<double>(now_ns() - t0) / 1e6);
  ok = ok && a.result == NUCLEUS_RESULT_NORMAL;

  nucleus::DeviceParameters disk;
  disk.path = argv[1];
  disk.block_size = 4096;
  auto named = n.create_external_process("demo-disk", nucleus::DeviceKind::kDisk, disk);
  std::printf("   named device 'demo-disk' on %s: %s\n", argv[1],
              named ? "ok" : named.message().data());
  if (!named) return 1;
  a = ask(n, "demo-disk", nucleus::device::disk_info());
  std::printf("   demo-disk: %llu blocks of %llu bytes\n",
              static_cast<unsigned long long>(a.message.word[1]),
              static_cast<unsigned long long>(a.message.word[0]));
  std::memset(area.data(), 0, 8192);
  std::strcpy(reinterpret_cast<char *>(area.data()), "a block written through the nucleus");
  a = ask(n, "demo-disk", nucleus::device::disk_write(0, 1, 0));
  ok = ok && a.result == NUCLEUS_RESULT_NORMAL;
  a = ask(n, "demo-disk", nucleus::device::disk_read(0, 1, 4096));
  std::printf("   read back block 0: \"%s\" (result %d)\n",
              reinterpret_cast<char *>(area.data()) + 4096, a.result);
  ok = ok && a.result == NUCLEUS_RESULT_NORMAL &&
       std::memcmp(area.data(), area.data() + 4096, 4096) == 0;

  a = ask(n, "demo-disk", nucleus::device::disk_read(0, 1, area.size()));
  std::printf("   a read past the end of the data area: result %d (unintelligible), why %s\n",
              a.result, std::strerror(static_cast<int>(a.message.word[0])));
  ok = ok && a.result == NUCLEUS_RESULT_UNINTELLIGIBLE;

  ok = ok && n.remove_external_process("demo-disk").ok();
  a = ask(n, "demo-disk", nucleus::device::disk_info());
  std::printf("   after remove_external_process: result %d (dummy)\n", a.result);
  ok = ok && a.result == NUCLEUS_RESULT_DUMMY;
  return ok ? 0 : 1;
}
