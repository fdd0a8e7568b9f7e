// Devices: round trips to the clock and null devices, and 4 KiB random
// reads through the disk device against pread of the same blocks.
#pragma once

#include <nucleus/nucleus.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "figure.h"

namespace nucleus::bench {

// A backing file of `bytes` random bytes (written, so in the page cache).
bool make_backing_file(const std::string &path, uint64_t bytes);
// `count` block numbers below `blocks`, uniformly at random (fixed seed).
std::vector<uint64_t> random_blocks(uint64_t blocks, int count);

// Round trips of one message to a device (clock: NUCLEUS_CLOCK_NOW).
Figure device_rt(const std::string &label, nucleus::Nucleus &n, const std::string &device,
                 const nucleus::Message &message, int iters, int warmup);
// 4 KiB reads of `blocks` through a disk device of 4 KiB blocks, `window`
// in flight, each into its own 4 KiB of the data area.
Figure disk_read_nucleus(const std::string &label, nucleus::Nucleus &n, const std::string &device,
                         const std::vector<uint64_t> &blocks, int window);
// The same reads with pread from one thread (O_DIRECT when `direct`).
Figure disk_read_pread(const std::string &label, const std::string &path,
                       const std::vector<uint64_t> &blocks, bool direct);

}  // namespace nucleus::bench
