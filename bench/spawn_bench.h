// Starting a program: through the nucleus, and with posix_spawn.
#pragma once

#include <nucleus/nucleus.hpp>

#include "figure.h"

namespace nucleus::bench {

// posix_spawn + waitpid of /bin/true.
Figure posix_spawn_true(int iters);
// create + start + exit notice + remove of /bin/true, as a child of `n`
// (which needs a processes claim of at least 1).
Figure nucleus_spawn_true(nucleus::Nucleus &n, int iters);

}  // namespace nucleus::bench
