// Answer scoring as the SQuAD v1.1 evaluation script does it: exact match
// and token F1 after normalisation, the best over the gold answers. `kvrag
// eval` and the benchmark score with these.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kvrag {

// SQuAD normalisation: ASCII lower case, ASCII punctuation removed, the
// words "a", "an" and "the" removed, whitespace runs collapsed to one space
// and trimmed. "The Mount-Yydyst!" -> "mountyydyst". Articles are dropped as
// whole whitespace-separated words (the script's \b(a|an|the)\b after its
// punctuation step; they differ only next to non-ASCII symbols).
std::string normalize_answer(std::string_view text);

// The normalised words of `text` (normalize_answer split at spaces).
std::vector<std::string> answer_tokens(std::string_view text);

// 1 when the normalised prediction equals a normalised gold answer, else 0.
// Error(kInvalidArgument) for an empty `golds`.
double exact_match(std::string_view prediction, const std::vector<std::string>& golds);

// The best token F1 of the prediction against any gold answer: 2PR/(P+R)
// over the multiset of shared normalised words; when either side has no
// words, 1 if both have none, else 0. Error(kInvalidArgument) for an empty
// `golds`.
double token_f1(std::string_view prediction, const std::vector<std::string>& golds);

}  // namespace kvrag
