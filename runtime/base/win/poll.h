/*
 * poll.h - poll(2) for Windows: Winsock's WSAPoll takes the same struct
 * pollfd and flags.  The only caller waits on curl's socket, which is a
 * Winsock socket.  Only on the include path of the Windows build.
 */
#ifndef MS_WIN_POLL_H
#define MS_WIN_POLL_H

#include <winsock2.h>

#define poll(fds, n, timeout_ms) WSAPoll((fds), (ULONG)(n), (timeout_ms))

#endif
