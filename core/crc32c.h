// CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and LevelDB), for the
// checksums of K/V blobs: a bit flipped on disk is caught on read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvrag {

// CRC-32C of `size` bytes, continuing from `crc` (0 to start; chain calls to
// checksum several pieces as one stream). crc32c("123456789") = 0xE3069283.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

}  // namespace kvrag
