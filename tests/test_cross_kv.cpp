// concat_cross_kv against CrossKV::append, its one-at-a-time definition:
// same K, V and valid mask for any mix of parts, and the same refusals.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "encoder/cross_kv.h"

namespace kvrag {
namespace {

constexpr int64_t kLayers = 3;
constexpr int64_t kWidth = 4;

// A memory of `tokens` positions whose every value is distinct across parts
// (`seed` picks the part), with `valid` as given (empty: all attended).
CrossKV make_part(int64_t tokens, float seed, std::vector<uint8_t> valid = {}) {
  CrossKV kv;
  for (int64_t l = 0; l < kLayers; ++l) {
    Tensor k(tokens, kWidth);
    Tensor v(tokens, kWidth);
    for (int64_t i = 0; i < k.size(); ++i) {
      k.data()[i] = seed * 1000.0f + static_cast<float>(l * 100 + i);
      v.data()[i] = -k.data()[i];
    }
    kv.k.push_back(std::move(k));
    kv.v.push_back(std::move(v));
  }
  kv.valid = std::move(valid);
  return kv;
}

CrossKV appended(const std::vector<const CrossKV*>& parts) {
  CrossKV joint;
  for (const CrossKV* part : parts) joint.append(*part);
  return joint;
}

void expect_same(const CrossKV& got, const CrossKV& want) {
  ASSERT_EQ(got.layers(), want.layers());
  EXPECT_EQ(got.tokens(), want.tokens());
  for (int64_t l = 0; l < want.layers(); ++l) {
    for (const auto& [g, w] :
         {std::pair{&got.k[l], &want.k[l]}, std::pair{&got.v[l], &want.v[l]}}) {
      ASSERT_EQ(g->rows(), w->rows()) << "layer " << l;
      ASSERT_EQ(g->cols(), w->cols()) << "layer " << l;
      EXPECT_EQ(std::vector<float>(g->data(), g->data() + g->size()),
                std::vector<float>(w->data(), w->data() + w->size()))
          << "layer " << l;
    }
  }
  EXPECT_EQ(got.valid, want.valid);
}

TEST(CrossKvConcat, EqualsRepeatedAppendWithoutMasks) {
  const CrossKV a = make_part(2, 1);
  const CrossKV b = make_part(5, 2);
  const CrossKV c = make_part(1, 3);
  const std::vector<const CrossKV*> parts{&a, &b, &c};
  const CrossKV joint = concat_cross_kv(parts);
  EXPECT_EQ(joint.tokens(), 8);
  EXPECT_TRUE(joint.valid.empty());
  expect_same(joint, appended(parts));
  // Rows land in order: the first row of b follows the two of a.
  EXPECT_EQ(joint.k[1].at(2, 0), b.k[1].at(0, 0));
  EXPECT_EQ(joint.v[2].at(7, 3), c.v[2].at(0, 3));
}

TEST(CrossKvConcat, EqualsRepeatedAppendWithMasks) {
  // A mask on a middle part only: the parts around it count as all attended.
  const CrossKV a = make_part(2, 1);
  const CrossKV b = make_part(3, 2, {1, 0, 1});
  const CrossKV c = make_part(2, 3);
  const CrossKV d = make_part(2, 4, {0, 1});
  const std::vector<const CrossKV*> parts{&a, &b, &c, &d};
  const CrossKV joint = concat_cross_kv(parts);
  EXPECT_EQ(joint.valid, (std::vector<uint8_t>{1, 1, 1, 0, 1, 1, 1, 0, 1}));
  expect_same(joint, appended(parts));
}

TEST(CrossKvConcat, SkipsEmptyPartsAndJoinsNothingToNothing) {
  const CrossKV empty;
  const CrossKV no_tokens = make_part(0, 1);
  const CrossKV a = make_part(3, 2, {1, 1, 0});
  const std::vector<const CrossKV*> parts{&empty, &a, &no_tokens, &empty};
  expect_same(concat_cross_kv(parts), appended(parts));
  expect_same(concat_cross_kv(parts), a);

  const CrossKV none = concat_cross_kv({});
  EXPECT_EQ(none.layers(), 0);
  EXPECT_EQ(none.tokens(), 0);
}

TEST(CrossKvConcat, RefusesMismatchedParts) {
  const CrossKV a = make_part(2, 1);
  CrossKV fewer_layers = make_part(2, 2);
  fewer_layers.k.pop_back();
  fewer_layers.v.pop_back();
  CrossKV wider = make_part(2, 3);
  wider.k[1] = Tensor(2, kWidth + 1);
  CrossKV short_mask = make_part(2, 4, {1});
  for (const CrossKV* bad : {&fewer_layers, &wider, &short_mask}) {
    const std::vector<const CrossKV*> parts{&a, bad};
    try {
      concat_cross_kv(parts);
      ADD_FAILURE() << "joined a mismatched part";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    }
  }
}

}  // namespace
}  // namespace kvrag
