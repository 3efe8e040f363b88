#include "mutant_runner.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "artifact/artifact_reader.h"
#include "artifact/format.h"
#include "artifact/layout.h"
#include "exec/model_runner.h"

namespace ds::test {

std::vector<uint8_t> readWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::vector<uint8_t> metadataOf(const std::vector<uint8_t>& file) {
  artifact::FileHeader h;
  if (file.size() < sizeof(h)) return {};
  std::memcpy(&h, file.data(), sizeof(h));
  if (h.metadata_offset > file.size() || h.metadata_size > file.size() - h.metadata_offset) return {};
  return std::vector<uint8_t>(file.begin() + static_cast<std::ptrdiff_t>(h.metadata_offset),
                              file.begin() + static_cast<std::ptrdiff_t>(h.metadata_offset + h.metadata_size));
}

std::vector<uint8_t> withMetadata(const std::vector<uint8_t>& original, const uint8_t* metadata,
                                  size_t size) {
  artifact::FileHeader h;
  std::memcpy(&h, original.data(), sizeof(h));
  std::vector<uint8_t> file(original.begin(), original.begin() + static_cast<std::ptrdiff_t>(h.metadata_offset));
  if (size) file.insert(file.end(), metadata, metadata + size);
  h.metadata_size = size;
  h.file_size = file.size();
  h.metadata_xxh64 = artifact::checksum(file.data() + h.metadata_offset, size);
  h.header_xxh64 = artifact::headerChecksum(h);
  std::memcpy(file.data(), &h, sizeof(h));
  return file;
}

void mutate(std::vector<uint8_t>* md, std::mt19937* rng) {
  std::vector<uint8_t>& m = *md;
  if (m.size() < 16) return;
  auto pick = [&](size_t n) { return static_cast<size_t>((*rng)() % n); };
  switch (pick(3)) {
    case 0: {  // random bytes
      const int flips = 1 + static_cast<int>(pick(3));
      for (int f = 0; f < flips; ++f) m[pick(m.size())] = static_cast<uint8_t>((*rng)());
      break;
    }
    case 1: {  // an interesting value over an aligned word (flatbuffer scalars are aligned)
      static const int64_t kValues[] = {0, -1, 1, 2, 3, 7, 64, 255, 4096, 65535, INT32_MAX,
                                        INT32_MIN, int64_t{1} << 32, int64_t{1} << 40, INT64_MAX, -64};
      const int64_t v = kValues[pick(std::size(kValues))];
      const size_t width = pick(2) ? 8 : 4;
      const size_t at = pick(m.size() - width) & ~(width - 1);
      std::memcpy(m.data() + at, &v, width);  // little-endian: the low bytes for width 4
      break;
    }
    default: {  // a run copied from elsewhere (duplicates offsets, vectors and strings)
      const size_t len = 4 + pick(28);
      if (m.size() <= 2 * len) break;
      const size_t from = pick(m.size() - len), to = pick(m.size() - len);
      std::memmove(m.data() + to, m.data() + from, len);
      break;
    }
  }
}

void runMutant(const std::vector<uint8_t>& file, MutantOutcome* o, std::string* open_error) {
  const int fd = ::memfd_create("ds_mutant", MFD_CLOEXEC);
  if (fd < 0) return;
  size_t done = 0;
  while (done < file.size()) {
    const ssize_t n = ::write(fd, file.data() + done, file.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};  // after the runner and the artifact (declared later, destroyed first)
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto art = artifact::Artifact::open(path);
  if (!art.isOk()) {
    ++o->refused_at_open;
    if (open_error) *open_error = art.status().message();
    return;
  }
  RunnerOptions ro;
  ro.num_kv_blocks = 8;
  ro.num_threads = 1;
  auto runner = ModelRunner::create(**art, ro);
  if (!runner.isOk()) {
    ++o->refused_at_bind;
    return;
  }
  const int32_t vocab = static_cast<int32_t>(std::min<int64_t>((*runner)->vocabSize(), 1 << 30));
  StepBatch b;
  for (int32_t t = 0; t < 3; ++t) {
    b.token_ids.push_back(vocab > 0 ? (t + 1) % vocab : 0);
    b.positions.push_back(t);
    b.token_seq.push_back(0);
  }
  b.logit_rows = {2};
  b.num_seqs = 1;
  b.max_blocks_per_seq = 2;
  b.block_table = {0, 1};
  auto view = (*runner)->step(b);
  ++(view.isOk() ? o->step_ok : o->step_error);
}

}  // namespace ds::test
