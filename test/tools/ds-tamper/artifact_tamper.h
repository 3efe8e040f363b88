// Tampering with a whole artifact file in memory the way an attacker can: every checksum
// recomputed, so only a signature (or refusing native code) stands in the way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ds::test {

// Flips bit 0 of byte `at` of code object 0's segment, then rewrites that segment's checksum in
// the metadata, the metadata checksum and the header checksum. A signature trailer is kept (it
// no longer verifies). Returns "" or what went wrong.
std::string flipCodeByte(std::vector<uint8_t>* file, uint64_t at);

// Removes the signature trailer and fixes file_size and the header checksum: an unsigned file
// with the same content. Returns "" or what went wrong (e.g. the file is not signed).
std::string stripSignature(std::vector<uint8_t>* file);

std::vector<uint8_t> readFileBytes(const std::string& path);
bool writeFileBytes(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace ds::test
