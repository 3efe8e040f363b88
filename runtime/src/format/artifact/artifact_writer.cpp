// ArtifactWriter: segments streamed into a temp file and checksummed, metadata last, header at 0, rename.
#include "artifact/artifact_writer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>

#include "artifact/format.h"
#include "artifact/layout.h"
#include "artifact/metadata_check.h"
#include "artifact/signature.h"

namespace ds::artifact {
namespace {

std::string errnoText() { return std::strerror(errno); }

std::string directoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Persists the rename itself: without it a crash right after finish() could lose the new name.
void syncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// `fill` is the caller's code: keep its exceptions from crossing our API.
Status callFill(const ArtifactWriter::FillFn& fill, uint8_t* dst, uint64_t offset, uint64_t n) {
  try {
    return fill(dst, offset, n);
  } catch (const std::exception& e) {
    return internalError(std::string("fill threw: ") + e.what());
  } catch (...) {
    return internalError("fill threw an exception");
  }
}

// rename() replaces whatever is at the target: a symbolic link (not its target), a device node,
// a FIFO. Only a regular file or nothing may be there.
Status checkTarget(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Status::ok();
  if (S_ISLNK(st.st_mode)) {
    return invalidArgument(path + ": is a symbolic link; an artifact is not written through a "
                                  "link (give the link's target, or remove the link)");
  }
  if (S_ISDIR(st.st_mode)) {
    return invalidArgument(path + ": is a directory, cannot write an artifact there");
  }
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode)   ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    return invalidArgument(path + ": exists and is " + kind +
                           "; an artifact only replaces a regular file");
  }
  return Status::ok();
}

// The named temp file of the fallback path (no O_TMPFILE), unlinked by SIGINT/SIGTERM. A static
// buffer: the handler may only make async-signal-safe calls. One writer at a time is covered.
char g_signal_temp_path[PATH_MAX];
volatile sig_atomic_t g_signal_temp_armed = 0;
struct sigaction g_previous_int, g_previous_term;

void unlinkTempOnSignal(int sig) {
  if (g_signal_temp_armed) ::unlink(g_signal_temp_path);
  g_signal_temp_armed = 0;
  ::sigaction(sig, sig == SIGINT ? &g_previous_int : &g_previous_term, nullptr);
  ::raise(sig);  // the previous handler, or the default action, runs when we return
}

bool armSignalCleanup(const std::string& temp) {
  if (g_signal_temp_armed || temp.size() >= sizeof(g_signal_temp_path)) return false;
  std::memcpy(g_signal_temp_path, temp.c_str(), temp.size() + 1);
  struct sigaction action {};
  action.sa_handler = unlinkTempOnSignal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &g_previous_int);
  ::sigaction(SIGTERM, &action, &g_previous_term);
  // A signal the process ignores (nohup, a background job) stays ignored.
  if (g_previous_int.sa_handler == SIG_IGN) ::sigaction(SIGINT, &g_previous_int, nullptr);
  if (g_previous_term.sa_handler == SIG_IGN) ::sigaction(SIGTERM, &g_previous_term, nullptr);
  g_signal_temp_armed = 1;
  return true;
}

void disarmSignalCleanup() {
  g_signal_temp_armed = 0;
  ::sigaction(SIGINT, &g_previous_int, nullptr);
  ::sigaction(SIGTERM, &g_previous_term, nullptr);
}

// O_TMPFILE gives a file with no name, linked into place at finish(): a killed compile (even
// SIGKILL) leaves nothing behind. Linking needs /proc/self/fd (linkat with AT_SYMLINK_FOLLOW).
int openUnnamedTemp(const std::string& dir) {
#ifdef O_TMPFILE
  if (::access("/proc/self/fd", X_OK) != 0) {
    errno = EOPNOTSUPP;  // no /proc: the named temp file instead
    return -1;
  }
  return ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
#else
  (void)dir;
  errno = EOPNOTSUPP;
  return -1;
#endif
}

}  // namespace

StatusOr<std::unique_ptr<ArtifactWriter>> ArtifactWriter::create(const std::string& path,
                                                                  TempFile temp) {
  if (path.empty()) return invalidArgument("artifact path is empty");
  DS_RETURN_IF_ERROR(checkTarget(path));
  std::unique_ptr<ArtifactWriter> w(new ArtifactWriter());
  w->path_ = path;
  w->temp_path_ = path + ".tmp." + std::to_string(::getpid());
  errno = EOPNOTSUPP;
  if (temp == TempFile::kUnnamedIfSupported) w->fd_ = openUnnamedTemp(directoryOf(path));
  if (w->fd_ >= 0) {
    w->unnamed_temp_ = true;
  } else if (errno == ENOENT || errno == ENOTDIR || errno == EACCES || errno == EROFS) {
    const int err = errno;
    return Status(err == ENOENT ? DS_NOT_FOUND : DS_INVALID_ARGUMENT,
                  path + ": cannot create: " + std::strerror(err));
  } else {
    // The file system has no O_TMPFILE: a named temp file, removed on SIGINT/SIGTERM.
    w->fd_ = ::open(w->temp_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd_ < 0) {
      const int err = errno;
      return Status(err == ENOENT ? DS_NOT_FOUND : DS_INVALID_ARGUMENT,
                    w->temp_path_ + ": cannot create: " + std::strerror(err));
    }
    w->signal_cleanup_ = armSignalCleanup(w->temp_path_);
  }
  // The header is written last; reserve its bytes now so segments start at data_offset.
  const FileHeader zero{};
  if (Status s = w->writeAll(&zero, sizeof(zero)); !s.isOk()) return s;
  return StatusOr<std::unique_ptr<ArtifactWriter>>(std::move(w));
}

ArtifactWriter::~ArtifactWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_ && !unnamed_temp_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
  if (signal_cleanup_) disarmSignalCleanup();
}

Status ArtifactWriter::linkIntoPlace() {
  char proc_path[64];
  std::snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", fd_);
  // Nothing at the target yet: the file appears there directly.
  if (::linkat(AT_FDCWD, proc_path, AT_FDCWD, path_.c_str(), AT_SYMLINK_FOLLOW) == 0) {
    return Status::ok();
  }
  if (errno != EEXIST) {
    return internalError(path_ + ": linking the finished artifact into place failed: " + errnoText());
  }
  // Replace the existing file atomically: a name next to it, then rename over it.
  ::unlink(temp_path_.c_str());  // a stale temp of an earlier process with our pid
  if (::linkat(AT_FDCWD, proc_path, AT_FDCWD, temp_path_.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    return internalError(temp_path_ + ": linking the finished artifact failed: " + errnoText());
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const std::string error = errnoText();
    ::unlink(temp_path_.c_str());
    return internalError(temp_path_ + ": rename to " + path_ + " failed: " + error);
  }
  return Status::ok();
}

Status ArtifactWriter::fail(Status status) {
  if (failed_.isOk()) failed_ = status;
  return status;
}

Status ArtifactWriter::writeAll(const void* data, uint64_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(size, 1ull << 30));
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail(Status(DS_INTERNAL, temp_path_ + ": write failed at offset " +
                                          std::to_string(end_) + ": " + errnoText()));
    }
    p += w;
    size -= static_cast<uint64_t>(w);
    end_ += static_cast<uint64_t>(w);
  }
  return Status::ok();
}

Status ArtifactWriter::padTo(uint64_t offset) {
  static const uint8_t kZeros[kAlignment] = {};
  if (offset < end_ || offset - end_ > kAlignment) {
    return fail(internalError(temp_path_ + ": bad padding target " + std::to_string(offset)));
  }
  return writeAll(kZeros, offset - end_);
}

StatusOr<uint32_t> ArtifactWriter::addSegment(uint64_t size, const FillFn& fill) {
  if (!failed_.isOk()) return failed_;
  if (finished_) return invalidArgument(path_ + ": addSegment() after finish()");
  if (segments_.size() >= UINT32_MAX) return fail(invalidArgument(path_ + ": too many segments"));
  StatusOr<SegmentPlacement> place = placeSegment(end_, size);
  if (!place.isOk()) return fail(Status(DS_INVALID_ARGUMENT, path_ + ": " + place.status().message()));
  DS_RETURN_IF_ERROR(padTo(place->offset));

  if (chunk_.empty() && size > 0) chunk_.resize(static_cast<size_t>(std::min(size, kChunkSize)));
  StreamingChecksum sum;
  Status status;
  for (uint64_t done = 0; done < size && status.isOk();) {
    const uint64_t n = std::min<uint64_t>(size - done, chunk_.size());
    status = callFill(fill, chunk_.data(), done, n);
    if (!status.isOk()) {
      status = Status(status.code(), path_ + ": segment " + std::to_string(segments_.size()) +
                                         ": " + status.message());
      break;
    }
    sum.update(chunk_.data(), static_cast<size_t>(n));
    status = writeAll(chunk_.data(), n);
    done += n;
  }
  if (!status.isOk()) return fail(status);
  segments_.push_back({place->offset, size, sum.digest()});
  return static_cast<uint32_t>(segments_.size() - 1);
}

StatusOr<uint32_t> ArtifactWriter::addSegmentFromMemory(const void* data, uint64_t size) {
  const auto* src = static_cast<const uint8_t*>(data);
  return addSegment(size, [src](uint8_t* dst, uint64_t offset, uint64_t n) {
    std::memcpy(dst, src + offset, static_cast<size_t>(n));
    return Status::ok();
  });
}

Status ArtifactWriter::finish(const uint8_t* metadata, size_t metadata_size) {
  if (!failed_.isOk()) return failed_;
  if (finished_) return invalidArgument(path_ + ": finish() called twice");
  const std::string what = path_ + " (finish)";
  const fb::Artifact* meta = nullptr;
  if (Status s = verifyMetadataBuffer(what, metadata, metadata_size, &meta); !s.isOk()) {
    return fail(Status(DS_INVALID_ARGUMENT, s.message()));
  }
  const size_t listed = meta->segments() ? meta->segments()->size() : 0;
  if (listed != segments_.size()) {
    return fail(invalidArgument(what + ": metadata lists " + std::to_string(listed) +
                                " segments, the writer wrote " + std::to_string(segments_.size())));
  }
  for (size_t i = 0; i < listed; ++i) {
    const fb::Segment* s = meta->segments()->Get(static_cast<flatbuffers::uoffset_t>(i));
    const SegmentInfo& w = segments_[i];
    if (s->offset() != w.offset || s->size() != w.size || s->xxh64() != w.xxh64) {
      return fail(invalidArgument(what + ": metadata segments[" + std::to_string(i) +
                                  "] differs from the written segment (copy segments())"));
    }
  }
  if (Status s = checkReferences(what, *meta); !s.isOk()) {
    return fail(Status(DS_INVALID_ARGUMENT, s.message()));
  }

  FileHeader header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.schema_version = kSchemaVersion;
  header.header_size = sizeof(FileHeader);
  StatusOr<SegmentPlacement> place = placeSegment(end_, metadata_size);
  if (!place.isOk()) return fail(Status(DS_INVALID_ARGUMENT, path_ + ": " + place.status().message()));
  header.metadata_offset = place->offset;
  header.metadata_size = metadata_size;
  header.metadata_xxh64 = checksum(metadata, metadata_size);
  header.data_offset = sizeof(FileHeader);
  header.file_size = place->end;
  header.header_xxh64 = headerChecksum(header);

  DS_RETURN_IF_ERROR(padTo(place->offset));
  DS_RETURN_IF_ERROR(writeAll(metadata, metadata_size));
  if (::pwrite(fd_, &header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header))) {
    return fail(internalError(temp_path_ + ": writing the header failed: " + errnoText()));
  }
  // Read back from the file (opened O_RDWR): the signature covers what was written.
  if (signing_key_) {
    if (Status s = signArtifactFile(fd_, temp_path_, *signing_key_); !s.isOk()) return fail(s);
  }
  if (::fsync(fd_) != 0) return fail(internalError(temp_path_ + ": fsync failed: " + errnoText()));
  // The target may have become a link or a device since create(): check again before replacing.
  if (Status s = checkTarget(path_); !s.isOk()) return fail(s);
  if (unnamed_temp_) {
    if (Status s = linkIntoPlace(); !s.isOk()) return fail(s);
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return fail(internalError(temp_path_ + ": close failed: " + errnoText()));
  if (!unnamed_temp_ && ::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return fail(internalError(temp_path_ + ": rename to " + path_ + " failed: " + errnoText()));
  }
  if (signal_cleanup_) {
    disarmSignalCleanup();
    signal_cleanup_ = false;
  }
  finished_ = true;
  syncDirectory(directoryOf(path_));
  return Status::ok();
}

}  // namespace ds::artifact
