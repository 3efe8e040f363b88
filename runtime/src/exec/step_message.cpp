// encode/decodeStepMessage (step_message.h): a tag, then int64 fields and int32 arrays (count,
// then elements), little-endian as the machines that run us are.
#include "exec/step_message.h"

#include <cstring>

namespace ds {

namespace {

constexpr uint32_t kStep = 0x70657473, kStop = 0x706f7473, kBlocks = 0x736b6c62;  // "step" "stop" "blks"

void put(std::vector<uint8_t>& out, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n);
}
void putI64(std::vector<uint8_t>& out, int64_t v) { put(out, &v, sizeof v); }
void putArray(std::vector<uint8_t>& out, const std::vector<int32_t>& v) {
  putI64(out, static_cast<int64_t>(v.size()));
  put(out, v.data(), v.size() * sizeof(int32_t));
}

struct Reader {
  const std::vector<uint8_t>& in;
  size_t at = 0;
  bool get(void* p, size_t n) {
    if (n > in.size() - at) return false;
    std::memcpy(p, in.data() + at, n);
    at += n;
    return true;
  }
  bool i64(int64_t* v) { return get(v, sizeof *v); }
  bool array(std::vector<int32_t>* v) {
    int64_t n = 0;
    if (!i64(&n) || n < 0 || static_cast<uint64_t>(n) > (in.size() - at) / sizeof(int32_t)) return false;
    v->resize(static_cast<size_t>(n));
    return get(v->data(), v->size() * sizeof(int32_t));
  }
};

}  // namespace

std::vector<uint8_t> encodeStepMessage(const StepBatch& b) {
  std::vector<uint8_t> out;
  put(out, &kStep, sizeof kStep);
  putArray(out, b.token_ids);
  putArray(out, b.positions);
  putArray(out, b.token_seq);
  putArray(out, b.logit_rows);
  putI64(out, b.num_seqs);
  putI64(out, b.max_blocks_per_seq);
  putArray(out, b.block_table);
  return out;
}

std::vector<uint8_t> encodeStopMessage() {
  std::vector<uint8_t> out;
  put(out, &kStop, sizeof kStop);
  return out;
}

std::vector<uint8_t> encodeBlocksMessage(int64_t num_kv_blocks, uint64_t artifact_id) {
  std::vector<uint8_t> out;
  put(out, &kBlocks, sizeof kBlocks);
  putI64(out, num_kv_blocks);
  put(out, &artifact_id, sizeof artifact_id);
  return out;
}

StatusOr<StepMessage> decodeStepMessage(const std::vector<uint8_t>& bytes, StepBatch* b, int64_t* blocks,
                                        uint64_t* artifact_id) {
  Reader r{bytes};
  uint32_t tag = 0;
  if (!r.get(&tag, sizeof tag)) return dataLoss("leader message: shorter than its tag");
  if (tag == kStop && r.at == bytes.size()) return StepMessage::Stop;
  uint64_t id = 0;
  if (tag == kBlocks && r.i64(blocks) && r.get(&id, sizeof id) && r.at == bytes.size()) {
    if (artifact_id) *artifact_id = id;
    return StepMessage::Blocks;
  }
  if (tag == kStep && r.array(&b->token_ids) && r.array(&b->positions) && r.array(&b->token_seq) &&
      r.array(&b->logit_rows) && r.i64(&b->num_seqs) && r.i64(&b->max_blocks_per_seq) &&
      r.array(&b->block_table) && r.at == bytes.size())
    return StepMessage::Step;
  return dataLoss("leader message of " + std::to_string(bytes.size()) + " bytes does not parse (tag " +
                  std::to_string(tag) + "): do the processes run the same ds build?");
}

}  // namespace ds
