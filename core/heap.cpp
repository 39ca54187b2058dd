#include "core/heap.h"

#include <cstdlib>  // defines __GLIBC__ on glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace kvrag {

void keep_freed_blocks_in_heap() {
#if defined(__GLIBC__)
  // 32 MiB is the largest mmap threshold glibc accepts on 64-bit systems;
  // setting it also turns off its adaptive raising. The trim threshold
  // lets up to 1 GiB of free memory at the heap's top stay with the
  // process (without it the blocks still went back: 161 ms for the reads
  // above); malloc_trim still returns it where kvrag asks (after loading
  // int8 weights).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // One arena for every thread. Cached answers read their K/V on a thread
  // of their own (overlapping the question's encoding), and a thread's own
  // arena lives in 64 MiB heaps that glibc unmaps whenever one is wholly
  // free, whatever the trim threshold: the blobs' pages were faulted in and
  // zeroed anew for every answer (perf: clear_page and memset under
  // load_chunk_memories). T5-base, k = 50, 108 MiB of f16 K/V from SQLite:
  // 218-274 ms with per-thread arenas, 40-45 ms with one.
  mallopt(M_ARENA_MAX, 1);
#endif
}

}  // namespace kvrag
