// Passing descriptors over a Unix socket (fdpass.hpp).
#include "conclab/fdpass.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "conclab/signals.hpp"

namespace conclab {

namespace {

// Waits until `fd` is ready for `events` or a stop signal arrives (Interrupted).
void wait_for(int fd, short events) {
  pollfd fds[2] = {{fd, events, 0}, {stop_fd(), POLLIN, 0}};
  const nfds_t count = fds[1].fd >= 0 ? 2 : 1;
  for (;;) {
    throw_if_stopped();
    if (::poll(fds, count, -1) >= 0) {
      if (count == 2 && (fds[1].revents & POLLIN)) throw_if_stopped();
      if (fds[0].revents) return;
    } else if (errno != EINTR) {
      throw SocketError(errno, "poll");
    }
  }
}

}  // namespace

void send_fd(Socket& channel, const Socket& socket, char tag) {
  iovec data{&tag, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  const int fd = socket.fileno();
  std::memcpy(CMSG_DATA(header), &fd, sizeof fd);
  for (;;) {
    if (::sendmsg(channel.fileno(), &message, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) return;
    if (errno == EINTR) {
      throw_if_stopped();
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_for(channel.fileno(), POLLOUT);
    } else {
      throw SocketError(errno, "sendmsg (SCM_RIGHTS)");
    }
  }
}

std::optional<ReceivedFd> recv_fd(Socket& channel) {
  // Room for a few descriptors: a sender that puts in more than one must
  // not leave the extra ones open in this process (MSG_CTRUNC would).
  constexpr int kRoom = 4;
  for (;;) {
    char tag = 0;
    iovec data{&tag, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(kRoom * sizeof(int))] = {};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(channel.fileno(), &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) {
        throw_if_stopped();
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        wait_for(channel.fileno(), POLLIN);
      } else {
        throw SocketError(errno, "recvmsg (SCM_RIGHTS)");
      }
      continue;
    }
    std::vector<unique_fd> received;
    for (cmsghdr* h = CMSG_FIRSTHDR(&message); h; h = CMSG_NXTHDR(&message, h)) {
      if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
        received.emplace_back(fd);
      }
    }
    if (n == 0 && received.empty()) return std::nullopt;  // the sender closed the channel
    if (received.empty()) throw SocketError(EBADMSG, "recvmsg (SCM_RIGHTS)", "a message without a descriptor");
    if (received.size() != 1 || (message.msg_flags & MSG_CTRUNC))
      throw ProtocolError("recv_fd: more than one descriptor in a message (all closed)");
    return ReceivedFd{Socket(std::move(received.front())), tag};
  }
}

}  // namespace conclab
