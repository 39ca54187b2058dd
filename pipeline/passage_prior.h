// The passage prior: the retriever's belief about which of the k chunks
// holds the answer, given to the reader's cross-attention.
//
// A reader cross-attending to k chunks at once (Fusion-in-Decoder over cached
// memories) must itself find the chunk about the question's entity among
// chunks about others; the small demo reader mostly copies the right kind
// of fact from the wrong chunk (README, "The demo model"). The retriever has
// already judged that: embeddings trained with InfoNCE at temperature τ make
// p(chunk | question) = softmax(q·c / τ) over the k chunks. Adding log(k·p)
// to every cross-attention logit of a chunk's positions weighs the chunk as
// k·p copies of itself (decoder/cross_memory.h): equal p change nothing, and
// the question's own positions are not weighed. The same prior serves every
// mode (cached, fid, concat), over the spans AnswerMemory records.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace kvrag {

// log(k · softmax(similarities / temperature)), one per chunk, computed
// stably. Error(kInvalidArgument) for temperature <= 0 or a similarity that
// is not finite (a damaged embedding must not weigh an answer silently).
std::vector<float> passage_log_weights(std::span<const double> similarities, double temperature);

// The bias of a memory of `memory_tokens` positions (CrossMemory::set_bias):
// log_weights[i] on the positions [first, second) of spans[i], 0 elsewhere.
// Error(kInvalidArgument) for counts that differ or a span outside the memory.
std::vector<float> passage_bias(int64_t memory_tokens,
                                std::span<const std::pair<int64_t, int64_t>> spans,
                                std::span<const float> log_weights);

}  // namespace kvrag
