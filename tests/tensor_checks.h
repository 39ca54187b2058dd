// Tensor helpers shared by the numeric tests: seeded random inputs and the
// relative error the exactness and parity checks compare against a bound.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace kvrag::testing {

// A (rows, cols) tensor of normal(mean, stddev) values from std::mt19937
// seeded with `seed`: the same values on every run.
Tensor random_normal_tensor(int64_t rows, int64_t cols, uint32_t seed, float mean = 0.0f,
                            float stddev = 1.0f);

// max |got − want| / max |want| (max |got − want| when want is all zero).
// Spans of different sizes fail the test and compare the common prefix.
double relative_error(std::span<const float> got, std::span<const float> want);

// The same over two tensors, which must have one shape (else the test fails).
double relative_error(const Tensor& got, const Tensor& want);

}  // namespace kvrag::testing
