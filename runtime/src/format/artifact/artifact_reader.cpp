// Artifact::open: the ordered checks of header, metadata and segments over an mmapped file.
#include "artifact/artifact_reader.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include "artifact/layout.h"
#include "artifact/metadata_check.h"
#include "artifact/signature.h"
#include "ds/status.h"
#include "format/mapped_file.h"

namespace ds::artifact {
namespace {

std::string n2s(uint64_t v) { return std::to_string(v); }

// Hashing is the cost of open() (every weight byte once), so segments are hashed on several
// threads; chunking lets the others stop soon after one mismatch.
constexpr unsigned kMaxVerifyThreads = 8;
constexpr uint64_t kVerifyChunk = 64ull << 20;
constexpr uint64_t kParallelVerifyMinBytes = 64ull << 20;

// Index of a segment whose checksum does not match, or -1.
int64_t findBadSegment(const uint8_t* base,
                       const flatbuffers::Vector<flatbuffers::Offset<fb::Segment>>& segs) {
  uint64_t total = 0;
  for (const fb::Segment* s : segs) total += s->size();
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> bad{-1};
  auto work = [&] {
    while (!stop.load(std::memory_order_relaxed)) {
      const size_t i = next++;
      if (i >= segs.size()) return;
      const fb::Segment* s = segs.Get(static_cast<flatbuffers::uoffset_t>(i));
      StreamingChecksum sum;
      for (uint64_t done = 0; done < s->size(); done += kVerifyChunk) {
        if (stop.load(std::memory_order_relaxed)) return;
        const uint64_t n = std::min(kVerifyChunk, s->size() - done);
        sum.update(base + s->offset() + done, static_cast<size_t>(n));
      }
      if (sum.digest() != s->xxh64()) {
        bad = static_cast<int64_t>(i);
        stop = true;
      }
    }
  };
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = total < kParallelVerifyMinBytes
                             ? 1
                             : std::min<size_t>({hw, kMaxVerifyThreads, segs.size()});
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // no more threads available: the ones we have finish the queue
    }
  }
  work();
  for (std::thread& t : pool) t.join();
  return bad.load();
}

}  // namespace

StatusOr<std::unique_ptr<Artifact>> Artifact::open(const std::string& path) {
  return open(path, Options());
}

StatusOr<std::unique_ptr<Artifact>> Artifact::open(const std::string& path,
                                                   const Options& options) {
  StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::open(path);
  if (!file.isOk()) return file.status();
  std::unique_ptr<Artifact> a(new Artifact());
  a->file_ = std::move(file.value());
  DS_RETURN_IF_ERROR(a->verify(options));
  return StatusOr<std::unique_ptr<Artifact>>(std::move(a));
}

Artifact::~Artifact() = default;

Status Artifact::verify(const Options& options) {
  const std::string& p = file_->path();
  const uint64_t actual = file_->size();
  const uint8_t* base = file_->data();
  auto corrupt = [&p](const std::string& what) { return dataLoss(p + ": " + what); };

  if (actual < sizeof(FileHeader)) {
    return corrupt(actual == 0 ? "truncated: the file is empty"
                               : "truncated: " + n2s(actual) + " bytes, shorter than the " +
                                     n2s(sizeof(FileHeader)) + "-byte artifact header");
  }
  std::memcpy(&header_, base, sizeof(header_));
  const FileHeader& h = header_;
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) {
    return invalidArgument(p + ": not a ds artifact (bad magic; expected a .dsa file written by "
                               "ds-compile)");
  }
  // Checked before the header checksum: a future version may lay the header out differently,
  // and its owner needs "rebuild", not "corrupt".
  if (h.schema_version != kSchemaVersion) {
    return Status(DS_FAILED_PRECONDITION,
                  p + ": artifact schema version " + n2s(h.schema_version) +
                      ", this runtime reads " + n2s(kSchemaVersion) +
                      ": rebuild it with ds-compile " + ds_runtime_version());
  }
  if (headerChecksum(h) != h.header_xxh64) return corrupt("header checksum mismatch");
  if (h.header_size != sizeof(FileHeader)) {
    return corrupt("header_size " + n2s(h.header_size) + ", expected " + n2s(sizeof(FileHeader)));
  }
  if (actual < h.file_size) {
    return corrupt("truncated: " + n2s(actual) + " bytes, the header says " + n2s(h.file_size));
  }
  if (actual > h.file_size) {
    return corrupt("trailing bytes: " + n2s(actual) + " bytes, the header says " +
                   n2s(h.file_size));
  }
  if (h.data_offset < sizeof(FileHeader) || h.data_offset % kAlignment != 0 ||
      h.data_offset > h.file_size) {
    return corrupt("data_offset " + n2s(h.data_offset) + " is not a 64-byte aligned offset " +
                   "inside the file");
  }
  if (h.metadata_offset % kAlignment != 0 ||
      !rangeInside(h.metadata_offset, h.metadata_size, h.data_offset, h.file_size)) {
    return corrupt("metadata range [" + n2s(h.metadata_offset) + ", +" + n2s(h.metadata_size) +
                   ") is not a 64-byte aligned range inside the file (" + n2s(h.file_size) +
                   " bytes)");
  }
  const uint8_t* md = base + h.metadata_offset;
  const size_t md_size = static_cast<size_t>(h.metadata_size);
  if (checksum(md, md_size) != h.metadata_xxh64) return corrupt("metadata checksum mismatch");
  DS_RETURN_IF_ERROR(verifyMetadataBuffer(p, md, md_size, &meta_));

  // Segments live between the header and the metadata, aligned and disjoint.
  const auto* segs = meta_->segments();
  const size_t n = segs ? segs->size() : 0;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  ranges.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const fb::Segment* s = segs->Get(static_cast<flatbuffers::uoffset_t>(i));
    if (s->offset() % kAlignment != 0 ||
        !rangeInside(s->offset(), s->size(), h.data_offset, h.metadata_offset)) {
      return corrupt("segment " + n2s(i) + " [" + n2s(s->offset()) + ", +" + n2s(s->size()) +
                     ") is not a 64-byte aligned range between the header and the metadata");
    }
    ranges.emplace_back(s->offset(), s->size());
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].first + ranges[i - 1].second) {
      return corrupt("segments overlap at offset " + n2s(ranges[i].first));
    }
  }
  DS_RETURN_IF_ERROR(checkReferences(p, *meta_));
  StatusOr<const SignatureTrailer*> trailer = findSignatureTrailer(p, base, actual, h);
  if (!trailer.isOk()) return trailer.status();
  signature_ = trailer.value();
  if (!options.trusted_keys.empty()) DS_RETURN_IF_ERROR(checkTrusted(options.trusted_keys));

  if ((options.verify_weights || !options.trusted_keys.empty()) && n > 0) {
    const int64_t i = findBadSegment(base, *segs);
    if (i >= 0) {
      const fb::Segment* s = segs->Get(static_cast<flatbuffers::uoffset_t>(i));
      return corrupt("weight segment " + n2s(static_cast<uint64_t>(i)) +
                     " checksum mismatch (offset " + n2s(s->offset()) + ", " + n2s(s->size()) +
                     " bytes)");
    }
  }
  if (meta_->tensors()) {
    for (const fb::Tensor* t : *meta_->tensors()) {
      by_name_.emplace(t->name()->string_view(), t);  // emplace keeps the first of a name
    }
  }
  return Status::ok();
}

Status Artifact::checkTrusted(const std::vector<PublicKey>& trusted) {
  const std::string& p = file_->path();
  if (!signature_) {
    return Status(DS_FAILED_PRECONDITION,
                  p + ": the artifact is not signed, and a trusted key is required (it was "
                      "compiled without ds-compile --sign)");
  }
  PublicKey signer;
  std::memcpy(signer.bytes.data(), signature_->public_key, kPublicKeyBytes);
  bool known = false;
  for (const PublicKey& k : trusted) known = known || k == signer;
  if (!known) {
    std::string ids;
    for (const PublicKey& k : trusted) ids += (ids.empty() ? "" : ", ") + keyId(k);
    return Status(DS_FAILED_PRECONDITION, p + ": signed by key " + keyId(signer) +
                                              ", which is not a trusted key (trusted: " + ids +
                                              ")");
  }
  if (!artifact::signatureVerifies(file_->data(), header_, *meta_, *signature_,
                                   &verified_code_hashes_)) {
    return dataLoss(p + ": the signature by key " + keyId(signer) +
                    " does not verify: the artifact was changed after it was signed");
  }
  return Status::ok();
}

bool Artifact::signatureVerifies() const {
  return signature_ && artifact::signatureVerifies(file_->data(), header_, *meta_, *signature_);
}

const uint8_t* Artifact::segmentData(uint32_t index) const {
  const auto* segs = meta_->segments();
  if (!segs || index >= segs->size()) return nullptr;
  return file_->data() + segs->Get(index)->offset();
}

const fb::Tensor* Artifact::findTensor(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

uint64_t Artifact::fileSize() const { return file_->size(); }
void Artifact::dropPages(const void* p, size_t n) const { file_->dropPages(p, n); }


const std::string& Artifact::path() const { return file_->path(); }

}  // namespace ds::artifact
