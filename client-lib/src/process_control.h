// Process control (DESIGN.md, "Process control"): a process's requests about
// its children and devices, each one request on a Channel and one reply from
// nucleusd (list_children: one a child). A program or a device's paths
// travel first as kStageProgram chunks in the same ring.
#pragma once

#include <nucleus/nucleus.h>
#include <nucleus/wire.h>

#include <cstddef>

#include "client.h"

namespace nucleus::client {

int create_process(Channel &ch, const char *name, const nucleus_program_t *program,
                   const nucleus_claims_t *claims);
int act_for(Channel &ch, const char *name);
// *step: with a -errno, the wire::StartStep that failed (kStartStepNone: the
// start was refused, or nucleusd never answered).
int start_process(Channel &ch, const char *name, int *step);
int stop_process(Channel &ch, const char *name, nucleus_buffer_t *out);
int modify_process(Channel &ch, const char *name, const nucleus_program_t *program,
                   const nucleus_claims_t *claims);
int remove_process(Channel &ch, const char *name);
int get_process(Channel &ch, const char *name, nucleus_process_t *out);
int list_children(Channel &ch, nucleus_process_t *out, size_t capacity, size_t *count);
int swap_process(Channel &ch, const char *name, const nucleus_program_t *program,
                 nucleus_buffer_t *out);
int create_external_process(Channel &ch, const char *name, int kind,
                            const nucleus_device_parameters_t *parameters);
// kRemoveExternal, kReserveProcess or kReleaseProcess of `name`.
int device_request(Channel &ch, wire::Op op, const char *name);

}  // namespace nucleus::client
