// How kvrag's processes use glibc's heap.
#pragma once

namespace kvrag {

// Keeps freed blocks of up to 32 MiB in the heap for the next allocation,
// instead of glibc's default of giving each block over its (adaptive)
// mmap threshold back to the kernel on free and faulting its pages in
// again, zeroed, on the next use. A chunk's K/V blob is 2.2 MiB for
// T5-base, read into a fresh buffer for every answer: on this project's
// (virtual) machines reading 20 of them from SQLite took 151 ms, 70 % of
// it page faults, and 4.7 ms with the blocks kept (kvrag_blob_bench,
// BM_GetMany/sqlite/t5base-kv/k:20). All threads share the one heap (see
// heap.cpp). Call once at the start of a process, before it starts threads.
void keep_freed_blocks_in_heap();

}  // namespace kvrag
