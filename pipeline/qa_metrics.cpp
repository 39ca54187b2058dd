#include "pipeline/qa_metrics.h"

#include <algorithm>
#include <map>

#include "core/error.h"

namespace kvrag {
namespace {

// Python's string.punctuation.
bool is_punctuation(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

// Python's str.split() whitespace, ASCII part.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool is_article(const std::string& word) { return word == "a" || word == "an" || word == "the"; }

void check_golds(const std::vector<std::string>& golds) {
  KVRAG_CHECK(!golds.empty(), kInvalidArgument, "answers: need at least one gold answer");
}

double f1_of(const std::vector<std::string>& predicted, const std::vector<std::string>& gold) {
  if (predicted.empty() || gold.empty()) return predicted.empty() && gold.empty() ? 1.0 : 0.0;
  std::map<std::string, int> gold_counts;
  for (const std::string& word : gold) ++gold_counts[word];
  int shared = 0;
  for (const std::string& word : predicted) {
    auto found = gold_counts.find(word);
    if (found != gold_counts.end() && found->second > 0) {
      --found->second;
      ++shared;
    }
  }
  if (shared == 0) return 0.0;
  const double precision = static_cast<double>(shared) / static_cast<double>(predicted.size());
  const double recall = static_cast<double>(shared) / static_cast<double>(gold.size());
  return 2.0 * precision * recall / (precision + recall);
}

}  // namespace

std::vector<std::string> answer_tokens(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty() && !is_article(word)) words.push_back(word);
    word.clear();
  };
  for (char c : text) {
    if (is_space(c)) {
      flush();
    } else if (!is_punctuation(c)) {
      word += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
  }
  flush();
  return words;
}

std::string normalize_answer(std::string_view text) {
  std::string out;
  for (const std::string& word : answer_tokens(text)) {
    if (!out.empty()) out += ' ';
    out += word;
  }
  return out;
}

double exact_match(std::string_view prediction, const std::vector<std::string>& golds) {
  check_golds(golds);
  const std::string normalized = normalize_answer(prediction);
  const bool any = std::any_of(golds.begin(), golds.end(), [&](const std::string& gold) {
    return normalize_answer(gold) == normalized;
  });
  return any ? 1.0 : 0.0;
}

double token_f1(std::string_view prediction, const std::vector<std::string>& golds) {
  check_golds(golds);
  const std::vector<std::string> predicted = answer_tokens(prediction);
  double best = 0.0;
  for (const std::string& gold : golds)
    best = std::max(best, f1_of(predicted, answer_tokens(gold)));
  return best;
}

}  // namespace kvrag
