// CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and LevelDB), for the
// checksums of K/V blobs: a bit flipped on disk is caught on read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvrag {

// CRC-32C of `size` bytes, continuing from `crc` (0 to start; chain calls to
// checksum several pieces as one stream). crc32c("123456789") = 0xE3069283.
// Uses the CPU's crc32 instruction where it has one (SSE 4.2, detected at
// run time), else crc32c_portable.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

// The same by table lookup (slicing by 8), on any CPU; public so that tests
// can check both paths agree.
uint32_t crc32c_portable(const void* data, size_t size, uint32_t crc = 0);

}  // namespace kvrag
