// CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and LevelDB), for the
// checksums of K/V blobs: a bit flipped on disk is caught on read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvrag {

// CRC-32C of `size` bytes, continuing from `crc` (0 to start; chain calls to
// checksum several pieces as one stream). crc32c("123456789") = 0xE3069283.
// Takes the fastest of crc32c_paths().
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

// The same by table lookup (slicing by 8), on any CPU.
uint32_t crc32c_portable(const void* data, size_t size, uint32_t crc = 0);

// One way of computing crc32c, named.
struct Crc32cPath {
  const char* name;
  uint32_t (*crc)(const void* data, size_t size, uint32_t crc);
};

// Every way this CPU runs, fastest first: folding by carry-less
// multiplication (AVX-512 VPCLMULQDQ, from 1 KiB), SSE 4.2's crc32
// instruction, tables. Public so that tests check they all agree.
std::vector<Crc32cPath> crc32c_paths();

}  // namespace kvrag
