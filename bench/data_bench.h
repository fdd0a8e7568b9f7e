// Data with a message (issue 21, docs/data-and-regret.md): a request that
// carries `bytes` and an answer that carries them back, through nucleusd
// (nucleus_data_rt_4k, nucleus_data_rt_64k) and over a Unix socket pair
// moving the same bytes (uds_data_rt_4k, uds_data_rt_64k), in the same run.
//
// Through nucleusd: the client writes the bytes into its data area and sends
// a message lending that range read and write; the receiver (a process of
// its own) has them in its receive window as the message comes and answers
// with them (four hand-offs; "data-echo"), or copies the range into its own
// area (copy_from), copies it back (copy_to) and answers (eight;
// "data-echo-copies", the _copies figures); the client checks the bytes
// that came back. Over the socket pair: the client writes the bytes,
// the receiver reads them all and writes them back, the client reads them
// all (SOCK_STREAM, as bulk data goes). Both unpinned.
#pragma once

#include <sys/types.h>

#include <nucleus/nucleus.hpp>

#include <cstddef>
#include <string>

#include "figure.h"

namespace nucleus::bench {

inline constexpr const char *kDataEcho = "data-echo";
inline constexpr const char *kDataEchoCopies = "data-echo-copies";

// Forks the receiver, attached as `name`, and waits until it is; -1 when
// it could not attach. Fork it before this process attaches (the child
// must not inherit a channel). It serves until the nucleus shuts down;
// `window`: with a receive window and answers that carry the bytes, else
// with copy_from and copy_to.
pid_t start_data_echo(const std::string &name, bool window);

// `iters` round trips of `bytes` each way to the data echo `receiver`.
Figure nucleus_data_rt(const std::string &label, nucleus::Nucleus &n, const std::string &receiver,
                       size_t bytes, int iters, int warmup);

// The same bytes each way over a socket pair to a forked echo.
Figure uds_data_rt(const std::string &label, size_t bytes, int iters, int warmup);

}  // namespace nucleus::bench
