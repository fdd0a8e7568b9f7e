#!/usr/bin/env python3
"""A nucleus server on an asyncio loop, over libnucleus's C API with ctypes.

    poll_asyncio.py NAME COUNT

Attaches as NAME, puts its descriptor to poll (nucleus_poll_descriptor) on
the loop with loop.add_reader beside a timer task, answers each message
normal with word 0 + 1000, and ends after COUNT messages. When the
descriptor is readable it takes messages with timeout 0 until there are
none (-ETIMEDOUT): after that call the descriptor is readable again only
when another event waits. $NUCLEUS_LIBRARY names libnucleus (default:
libnucleus.so from the loader's path); $NUCLEUS_SOCKET the nucleus.
See docs/data-and-regret.md, "A descriptor to poll".
"""
import asyncio
import ctypes
import errno
import os
import sys


class Message(ctypes.Structure):
    _fields_ = [("word", ctypes.c_uint64 * 8)]


def load():
    lib = ctypes.CDLL(os.environ.get("NUCLEUS_LIBRARY", "libnucleus.so"))
    handle = ctypes.c_void_p
    lib.nucleus_attach.argtypes = [ctypes.c_char_p, ctypes.POINTER(handle)]
    lib.nucleus_detach.argtypes = [handle]
    lib.nucleus_detach.restype = None
    lib.nucleus_poll_descriptor.argtypes = [handle]
    lib.nucleus_wait_message.argtypes = [handle, ctypes.c_int64, ctypes.c_char_p,
                                         ctypes.POINTER(Message), ctypes.POINTER(ctypes.c_uint64)]
    lib.nucleus_send_answer.argtypes = [handle, ctypes.c_uint64, ctypes.c_int,
                                        ctypes.POINTER(Message)]
    lib.nucleus_strerror.argtypes = [ctypes.c_int]
    lib.nucleus_strerror.restype = ctypes.c_char_p
    return lib


def check(lib, rc, what):
    if rc < 0:
        raise OSError(-rc, f"{what}: {lib.nucleus_strerror(rc).decode()}")
    return rc


async def serve(lib, n, count):
    loop = asyncio.get_running_loop()
    fd = check(lib, lib.nucleus_poll_descriptor(n), "nucleus_poll_descriptor")
    done = loop.create_future()
    served = 0
    ticks = 0

    def on_readable():
        nonlocal served
        sender = ctypes.create_string_buffer(32)
        message = Message()
        buffer = ctypes.c_uint64()
        while True:  # everything that waits, then back to the loop
            rc = lib.nucleus_wait_message(n, 0, sender, ctypes.byref(message),
                                          ctypes.byref(buffer))
            if rc == -errno.ETIMEDOUT:
                return
            if rc < 0:
                done.set_exception(OSError(-rc, lib.nucleus_strerror(rc).decode()))
                loop.remove_reader(fd)
                return
            answer = Message()
            answer.word[0] = message.word[0] + 1000
            check(lib, lib.nucleus_send_answer(n, buffer.value, 1, ctypes.byref(answer)),
                  "nucleus_send_answer")
            served += 1
            if served == count and not done.done():
                loop.remove_reader(fd)
                done.set_result(served)
                return

    async def ticker():  # other work on the same loop
        nonlocal ticks
        while not done.done():
            ticks += 1
            await asyncio.sleep(0.01)

    loop.add_reader(fd, on_readable)
    timer = asyncio.create_task(ticker())
    await done
    await timer
    return served, ticks


def main():
    name, count = sys.argv[1].encode(), int(sys.argv[2])
    lib = load()
    n = ctypes.c_void_p()
    check(lib, lib.nucleus_attach(name, ctypes.byref(n)), "nucleus_attach")
    try:
        served, ticks = asyncio.run(serve(lib, n, count))
        print(f"{name.decode()}: answered {served} messages ({ticks} timer ticks meanwhile)")
    finally:
        lib.nucleus_detach(n)


if __name__ == "__main__":
    main()
