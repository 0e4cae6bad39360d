// fdpass.hpp — hand an open descriptor to another process over a Unix
// stream socket (SCM_RIGHTS), as UNP's write_fd()/read_fd() (vol. 1, 15.7):
// the prefork-fdpass server's parent accepts and passes each connection to
// a child.
//
//   auto [parent_end, child_end] = conclab::socketpair();
//   conclab::send_fd(parent_end, conn);                 // parent: conn may be closed now
//   if (auto got = conclab::recv_fd(child_end)) serve(got->socket);   // child
//
// The kernel duplicates the descriptor into the receiver (a new number,
// close-on-exec here); the sender's copy stays its own. Every message
// carries one byte of ordinary data (a "tag"), since an empty message
// cannot be told from end of file. A descriptor in flight when the
// receiver's socket is closed is closed by the kernel: none leaks.
#pragma once

#include <optional>

#include "conclab/socket.hpp"

namespace conclab {

// Sends `socket`'s descriptor and one byte `tag` over `channel` (a
// connected Unix stream socket). Throws SocketError (EPIPE when the
// receiver is gone), Interrupted on a stop signal while the channel is full.
void send_fd(Socket& channel, const Socket& socket, char tag = 'F');

struct ReceivedFd {
  Socket socket;
  char tag;
};

// Waits for a descriptor on `channel`: the socket it names (owned now) and
// its tag; nullopt when the sender closed the channel. Throws SocketError
// when a message came without a descriptor, ProtocolError when more than one
// came (all are closed), Interrupted on a stop signal.
std::optional<ReceivedFd> recv_fd(Socket& channel);

}  // namespace conclab
