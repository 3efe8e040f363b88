// Shared by the metadata mutation test (a fixed seed list, CTest) and the libFuzzer target
// (test/fuzz/artifact_metadata): build an artifact file from a real one with other metadata and
// valid checksums (what a careless tool or an attacker can produce), then open it, bind it to
// the CPU device and run one step. Every outcome but a crash, a hang or a sanitizer report is
// acceptable; the counts say how far each mutant got.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace ds::test {

struct MutantOutcome {
  int refused_at_open = 0, refused_at_bind = 0, step_error = 0, step_ok = 0;
  int total() const { return refused_at_open + refused_at_bind + step_error + step_ok; }
};

// The artifact `original` (a whole .dsa file) with its metadata replaced by `metadata` (any
// size) and the header's sizes and checksums recomputed.
std::vector<uint8_t> withMetadata(const std::vector<uint8_t>& original, const uint8_t* metadata,
                                  size_t size);
// The metadata bytes of a whole .dsa file.
std::vector<uint8_t> metadataOf(const std::vector<uint8_t>& file);

// One mutation of `metadata` drawn from `rng`: 1-3 random bytes, or an "interesting" value
// (0, -1, 1, 2^31-1, 2^40, -2^31, a small count) written over an aligned 4- or 8-byte word, or a
// run of bytes copied from elsewhere in the buffer.
void mutate(std::vector<uint8_t>* metadata, std::mt19937* rng);

// Writes `file` to a memfd, opens it as an artifact, creates a runner with 8 KV blocks and
// runs a 3-token step. `error_must_name` (if set) must appear in an open error.
void runMutant(const std::vector<uint8_t>& file, MutantOutcome* outcome,
               std::string* open_error = nullptr);

std::vector<uint8_t> readWholeFile(const std::string& path);

}  // namespace ds::test
