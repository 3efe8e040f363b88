// ProcessWorld (process_world.h): environment parsing, the TCP star around the leader, framed
// messages, and the host collectives between processes.
#include "comm/process_world.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace ds {

namespace {

constexpr uint32_t kHelloMagic = 0x64735731;  // "dsW1"

const char* firstEnv(std::initializer_list<const char*> names, const char** which) {
  for (const char* n : names)
    if (const char* v = std::getenv(n); v && *v) {
      *which = n;
      return v;
    }
  return nullptr;
}

StatusOr<long> parseInt(const char* name, const char* text, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno || !end || *end || v < lo || v > hi)
    return invalidArgument(std::string(name) + "=" + text + ": expected an integer in [" + std::to_string(lo) +
                           ", " + std::to_string(hi) + "]");
  return v;
}

double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Waits until fd is readable / writable or the timeout passes (timeout_s < 0: no limit).
Status waitFd(int fd, short events, double timeout_s, const std::string& what) {
  pollfd p{fd, events, 0};
  const int ms = timeout_s < 0 ? -1 : static_cast<int>(std::min(timeout_s, 1e6) * 1000);
  const int r = ::poll(&p, 1, ms);
  if (r == 0) return Status(DS_UNAVAILABLE, what + ": no answer for " + std::to_string(static_cast<int>(timeout_s)) + " s");
  if (r < 0) return Status(DS_UNAVAILABLE, what + ": " + std::strerror(errno));
  return Status::ok();
}

Status sendAll(int fd, const void* data, uint64_t bytes, double timeout_s, const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (bytes) {
    DS_RETURN_IF_ERROR(waitFd(fd, POLLOUT, timeout_s, what));
    const ssize_t n = ::send(fd, p, std::min<uint64_t>(bytes, 1u << 30), MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return Status(DS_UNAVAILABLE, what + ": " + (n < 0 ? std::strerror(errno) : "connection closed"));
    p += n, bytes -= static_cast<uint64_t>(n);
  }
  return Status::ok();
}

Status recvAll(int fd, void* data, uint64_t bytes, double timeout_s, const std::string& what) {
  auto* p = static_cast<uint8_t*>(data);
  while (bytes) {
    DS_RETURN_IF_ERROR(waitFd(fd, POLLIN, timeout_s, what));
    const ssize_t n = ::recv(fd, p, std::min<uint64_t>(bytes, 1u << 30), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return Status(DS_UNAVAILABLE, what + ": " + (n < 0 ? std::strerror(errno) : "the peer closed the connection"));
    p += n, bytes -= static_cast<uint64_t>(n);
  }
  return Status::ok();
}

// No Nagle delay (small step messages), and keepalive probes so a peer whose machine died (no
// FIN ever comes) is noticed within about two minutes even by a follower waiting without limit.
void noDelay(int fd) {
  int one = 1, idle = 60, interval = 10, count = 6;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

struct Hello {
  uint32_t magic = kHelloMagic;
  int32_t rank = 0, size = 0;
};

}  // namespace

StatusOr<WorldConfig> worldConfigFromEnvironment() {
  WorldConfig c;
  const char* which = nullptr;
  // Launchers' variables come in sets: take size, rank and local rank from the first set present.
  struct Set {
    const char *size, *rank, *local;
  };
  for (const Set& s : {Set{"DS_WORLD_SIZE", "DS_RANK", "DS_LOCAL_RANK"},
                       Set{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"},
                       Set{"WORLD_SIZE", "RANK", "LOCAL_RANK"},
                       Set{"SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID"}}) {
    const char* size = firstEnv({s.size}, &which);
    if (!size) continue;
    StatusOr<long> n = parseInt(s.size, size, 1, 4096);
    if (!n.isOk()) return n.status();
    c.size = static_cast<int>(*n);
    if (c.size == 1) return c;
    const char* rank = firstEnv({s.rank}, &which);
    if (!rank) return invalidArgument(std::string(s.size) + " is " + size + " but " + s.rank + " is not set");
    StatusOr<long> r = parseInt(s.rank, rank, 0, c.size - 1);
    if (!r.isOk()) return r.status();
    c.rank = static_cast<int>(*r);
    if (const char* local = firstEnv({s.local}, &which)) {
      StatusOr<long> l = parseInt(s.local, local, 0, 4095);
      if (!l.isOk()) return l.status();
      c.local_rank = static_cast<int>(*l);
    }
    break;
  }
  if (c.size == 1) return c;
  const char* addr = firstEnv({"DS_MASTER_ADDR", "MASTER_ADDR"}, &which);
  if (!addr)
    return invalidArgument("a world of " + std::to_string(c.size) +
                           " processes needs the leader's address: set MASTER_ADDR (or DS_MASTER_ADDR)");
  c.master_addr = addr;
  if (const char* port = firstEnv({"DS_MASTER_PORT", "MASTER_PORT"}, &which)) {
    StatusOr<long> p = parseInt(which, port, 1, 65535);
    if (!p.isOk()) return p.status();
    c.master_port = static_cast<int>(*p);
  }
  if (const char* t = firstEnv({"DS_WORLD_TIMEOUT_S"}, &which)) {
    StatusOr<long> s = parseInt(which, t, 1, 86400);
    if (!s.isOk()) return s.status();
    c.timeout_s = static_cast<double>(*s);
  }
  return c;
}

StatusOr<std::unique_ptr<ProcessWorld>> ProcessWorld::connect(const WorldConfig& config) {
  if (config.size < 1 || config.rank < 0 || config.rank >= config.size)
    return invalidArgument("process world: rank " + std::to_string(config.rank) + " of " + std::to_string(config.size));
  std::unique_ptr<ProcessWorld> w(new ProcessWorld());
  w->config_ = config;
  const std::string where = config.master_addr + ":" + std::to_string(config.master_port);
  if (config.size == 1) return w;
  const auto start = std::chrono::steady_clock::now();
  if (config.rank == 0) {
    const int ls = ::socket(AF_INET6, SOCK_STREAM, 0);
    const bool v6 = ls >= 0;
    const int fd = v6 ? ls : ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return Status(DS_UNAVAILABLE, std::string("process world: socket: ") + std::strerror(errno));
    int one = 1, zero = 0;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // IPv4 peers too
    sockaddr_storage sa{};
    socklen_t len = 0;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&sa);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_any;
      a->sin6_port = htons(static_cast<uint16_t>(config.master_port));
      len = sizeof(sockaddr_in6);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&sa);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_ANY);
      a->sin_port = htons(static_cast<uint16_t>(config.master_port));
      len = sizeof(sockaddr_in);
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::listen(fd, config.size) != 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return Status(DS_UNAVAILABLE, "process world: the leader cannot listen on port " +
                                        std::to_string(config.master_port) + ": " + why + " (MASTER_PORT)");
    }
    w->sockets_.assign(static_cast<size_t>(config.size), -1);
    for (int joined = 0; joined < config.size - 1;) {
      const double left = config.timeout_s - secondsSince(start);
      Status ready = waitFd(fd, POLLIN, std::max(left, 0.001),
                            "process world: the leader waited for " + std::to_string(config.size - 1 - joined) +
                                " of " + std::to_string(config.size - 1) + " followers on port " +
                                std::to_string(config.master_port));
      if (!ready.isOk()) {
        ::close(fd);
        return ready;
      }
      const int peer = ::accept(fd, nullptr, nullptr);
      if (peer < 0) continue;
      noDelay(peer);
      Hello h;
      h.magic = 0;  // a connection that closes or sends something else is not a follower
      const Status got = recvAll(peer, &h, sizeof h, std::min(config.timeout_s, 10.0), "process world: a follower's hello");
      if (!got.isOk() || h.magic != kHelloMagic) {  // a port probe, a health check: keep waiting
        ::close(peer);
        continue;
      }
      std::string refuse;
      if (h.size != config.size)
        refuse = "follower rank " + std::to_string(h.rank) + " was told a world of " + std::to_string(h.size) +
                 " processes, the leader " + std::to_string(config.size);
      else if (h.rank < 1 || h.rank >= config.size || w->sockets_[static_cast<size_t>(h.rank)] >= 0)
        refuse = "rank " + std::to_string(h.rank) + " joined twice or is out of range";
      if (!refuse.empty()) {
        ::close(peer);
        ::close(fd);
        return Status(DS_UNAVAILABLE, "process world: " + refuse);
      }
      w->sockets_[static_cast<size_t>(h.rank)] = peer;
      ++joined;
    }
    ::close(fd);
    return w;
  }
  // A follower: connect (the leader may not listen yet: retry) and say who it is.
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  const std::string port = std::to_string(config.master_port);
  if (int e = ::getaddrinfo(config.master_addr.c_str(), port.c_str(), &hints, &res); e != 0)
    return Status(DS_UNAVAILABLE, "process world: cannot resolve the leader " + where + ": " + ::gai_strerror(e) +
                                      " (MASTER_ADDR)");
  int fd = -1;
  std::string last = "no address";
  while (fd < 0) {
    for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
      const int s = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (s < 0) continue;
      if (::connect(s, a->ai_addr, a->ai_addrlen) == 0) fd = s;
      else {
        last = std::strerror(errno);
        ::close(s);
      }
    }
    if (fd >= 0) break;
    if (secondsSince(start) > config.timeout_s) {
      ::freeaddrinfo(res);
      return Status(DS_UNAVAILABLE, "process world: rank " + std::to_string(config.rank) + " could not reach the leader at " +
                                        where + " for " + std::to_string(static_cast<int>(config.timeout_s)) + " s: " + last);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::freeaddrinfo(res);
  noDelay(fd);
  Hello h;
  h.rank = config.rank;
  h.size = config.size;
  w->sockets_ = {fd};
  DS_RETURN_IF_ERROR(sendAll(fd, &h, sizeof h, config.timeout_s, "process world: hello to the leader at " + where));
  return w;
}

ProcessWorld::~ProcessWorld() {
  for (int s : sockets_)
    if (s >= 0) ::close(s);
}

int ProcessWorld::socketOf(int peer) const {
  if (config_.rank == 0) return peer > 0 && peer < config_.size ? sockets_[static_cast<size_t>(peer)] : -1;
  return peer == 0 && !sockets_.empty() ? sockets_[0] : -1;
}

Status ProcessWorld::send(int peer, const void* data, uint64_t bytes) {
  const int fd = socketOf(peer);
  if (fd < 0) return internalError("process world: rank " + std::to_string(rank()) + " has no channel to rank " + std::to_string(peer));
  return sendAll(fd, data, bytes, config_.timeout_s, "process world: rank " + std::to_string(rank()) + " sending to rank " + std::to_string(peer));
}

Status ProcessWorld::recv(int peer, void* data, uint64_t bytes, bool idle) {
  const int fd = socketOf(peer);
  if (fd < 0) return internalError("process world: rank " + std::to_string(rank()) + " has no channel to rank " + std::to_string(peer));
  return recvAll(fd, data, bytes, idle ? -1.0 : config_.timeout_s,
                 "process world: rank " + std::to_string(rank()) + " waiting for rank " + std::to_string(peer));
}

void ProcessWorld::tellEveryone(const std::vector<uint8_t>& bytes) {
  if (rank() != 0) return;
  const uint64_t n = bytes.size();
  for (int p = 1; p < size(); ++p)
    if (send(p, &n, sizeof n).isOk()) (void)send(p, bytes.data(), n);
}

Status ProcessWorld::broadcast(std::vector<uint8_t>* bytes, bool idle) {
  if (size() == 1) return Status::ok();
  if (rank() == 0) {
    const uint64_t n = bytes->size();
    for (int p = 1; p < size(); ++p) {
      DS_RETURN_IF_ERROR(send(p, &n, sizeof n));
      DS_RETURN_IF_ERROR(send(p, bytes->data(), n));
    }
    return Status::ok();
  }
  uint64_t n = 0;
  DS_RETURN_IF_ERROR(recv(0, &n, sizeof n, idle));  // the length: the wait between steps
  if (n > (uint64_t{1} << 34)) return Status(DS_DATA_LOSS, "process world: a broadcast of " + std::to_string(n) + " bytes (corrupt channel?)");
  bytes->resize(n);
  return recv(0, bytes->data(), n);
}

namespace {

class ProcessCommunicator final : public Communicator {
 public:
  explicit ProcessCommunicator(ProcessWorld& w) : w_(w) {}
  int rank() const override { return w_.rank(); }
  int size() const override { return w_.size(); }

  Status allReduceSum(float* data, int64_t n) override {
    const uint64_t bytes = static_cast<uint64_t>(n) * sizeof(float);
    if (rank() != 0) {
      DS_RETURN_IF_ERROR(w_.send(0, data, bytes));
      return w_.recv(0, data, bytes);
    }
    std::vector<float> part(static_cast<size_t>(n));
    for (int p = 1; p < size(); ++p) {  // ((x0 + x1) + x2) + ...: the in-process group's order
      DS_RETURN_IF_ERROR(w_.recv(p, part.data(), bytes));
      for (int64_t i = 0; i < n; ++i) data[i] += part[static_cast<size_t>(i)];
    }
    for (int p = 1; p < size(); ++p) DS_RETURN_IF_ERROR(w_.send(p, data, bytes));
    return Status::ok();
  }

  Status allGather(const float* in, int64_t rows, int64_t cols, float* out) override {
    const uint64_t bytes = static_cast<uint64_t>(rows * cols) * sizeof(float);
    const int64_t N = size();
    if (rank() != 0) {
      DS_RETURN_IF_ERROR(w_.send(0, in, bytes));
      return w_.recv(0, out, bytes * static_cast<uint64_t>(N));
    }
    std::vector<float> part(static_cast<size_t>(rows * cols));
    for (int64_t p = 0; p < N; ++p) {
      const float* src = in;
      if (p > 0) {
        DS_RETURN_IF_ERROR(w_.recv(static_cast<int>(p), part.data(), bytes));
        src = part.data();
      }
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(out + r * cols * N + p * cols, src + r * cols, static_cast<size_t>(cols) * sizeof(float));
    }
    for (int p = 1; p < N; ++p) DS_RETURN_IF_ERROR(w_.send(p, out, bytes * static_cast<uint64_t>(N)));
    return Status::ok();
  }

 private:
  ProcessWorld& w_;
};

class ProcessGroup final : public CommGroup {
 public:
  explicit ProcessGroup(ProcessWorld& w) : comm_(w) {}
  int size() const override { return 1; }
  Communicator* rank(int r) override { return r == 0 ? &comm_ : nullptr; }
  void abort() override {}
  Status reset() override {
    return Status(DS_UNAVAILABLE, "a multi-process group cannot go on after a rank failed: restart every process");
  }

 private:
  ProcessCommunicator comm_;
};

}  // namespace

StatusOr<std::unique_ptr<CommGroup>> createProcessGroup(ProcessWorld& world) {
  return std::unique_ptr<CommGroup>(new ProcessGroup(world));
}

}  // namespace ds
